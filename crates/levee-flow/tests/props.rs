//! Property tests of the decoders (run in CI; the cargo-fuzz targets in
//! `fuzz/` explore the same entry point for longer):
//! - any bytes, and any mutation of a valid datagram of every format,
//!   decode without a panic and within the limits;
//! - flows encoded by `levee_flow::build` decode back to the same fields, in
//!   every format.

use levee_flow::build::{self, Flow, SflowSample};
use levee_flow::{DecoderConfig, FlowDecoder, Limits, Output, Version};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn exporter() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
}

/// A decoder that already knows templates 256 (IPv4) and 257 (IPv6) and an
/// options template 258, for IPFIX domain 0 and v9 source id 0, so random
/// data sets reach the record decoder.
fn primed() -> FlowDecoder {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = Output::default();
    let t = |id, v6, ipfix| build::template_record(id, &build::flow_fields(v6), ipfix);
    let opt_fields = [levee_flow::template::FieldSpec {
        id: 302,
        length: 4,
        enterprise: 0,
    }];
    let sampling = [
        levee_flow::template::FieldSpec {
            id: 305,
            length: 4,
            enterprise: 0,
        },
        levee_flow::template::FieldSpec {
            id: 82,
            length: 65535,
            enterprise: 0,
        },
    ];
    let ipfix = build::ipfix(
        0,
        0,
        0,
        &[
            build::set(2, &[t(256, false, true), t(257, true, true)].concat()),
            build::set(
                3,
                &build::ipfix_options_template(258, &opt_fields, &sampling),
            ),
        ],
    );
    d.decode(exporter(), 0, &ipfix, &mut out);
    let v9 = build::netflow9(
        0,
        0,
        0,
        &[build::set(
            0,
            &[t(256, false, false), t(257, true, false)].concat(),
        )],
    );
    d.decode(exporter(), 0, &v9, &mut out);
    assert_eq!(d.templates().len(), 5);
    d
}

fn check_bounded(d: &mut FlowDecoder, data: &[u8]) {
    let limits = Limits::default();
    let mut out = Output::default();
    let o = d.decode(exporter(), 1, data, &mut out);
    assert!(out.flows.len() <= limits.max_records_per_datagram);
    assert_eq!(out.flows.len(), o.flows as usize);
    assert!(d.templates().len() <= limits.max_templates);
}

fn arb_ip(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|v| IpAddr::V6(Ipv6Addr::from(v)))
            .boxed()
    } else {
        // Not 0.0.0.0: an all-zero IPv4 address makes a record look IPv6.
        (1u32..).prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))).boxed()
    }
}

fn arb_flow(v6: bool) -> impl Strategy<Value = Flow> {
    (
        arb_ip(v6),
        arb_ip(v6),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(src, dst, sp, dp, proto, flags, p, b)| Flow {
            src,
            dst,
            src_port: sp,
            dst_port: dp,
            protocol: proto,
            tcp_flags: flags,
            packets: u64::from(p),
            bytes: u64::from(b),
        })
}

/// A valid datagram of one of the four formats.
fn arb_datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..5,
        prop::collection::vec(arb_flow(false), 1..20),
        any::<u32>(),
    )
        .prop_map(|(kind, flows, seq)| {
            let mut body = Vec::new();
            for f in &flows {
                build::data_record(f, false, &mut body);
            }
            match kind {
                0 => build::netflow5(seq, 1, (0, 0), 100, &flows),
                1 => build::netflow9(seq, 0, 1, &[build::set(256, &body)]),
                2 => build::ipfix(seq, 0, 1, &[build::set(256, &body)]),
                3 => {
                    let mut opt = vec![0, 0, 0, 1, 0, 0, 0, 9];
                    build::varlen_value(b"sampler", &mut opt);
                    build::ipfix(seq, 0, 1, &[build::set(258, &opt), build::set(256, &body)])
                }
                _ => {
                    let samples: Vec<SflowSample> = flows
                        .iter()
                        .map(|f| SflowSample {
                            sampling_rate: seq,
                            input: 1,
                            output: 2,
                            frame_length: 1000,
                            header: build::ethernet_ipv4(f, 60),
                        })
                        .collect();
                    build::sflow(exporter(), 0, seq, &samples)
                }
            }
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Set16(usize, u16),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u16),
                Just(1),
                Just(3),
                Just(255),
                Just(256),
                Just(65535),
                any::<u16>()
            ]
        )
            .prop_map(|(i, v)| Mutation::Set16(i, v)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i % data.len();
            data[i] ^= b;
        }
        Mutation::Truncate(i) => data.truncate(i % data.len()),
        Mutation::Insert(i, v) => {
            let i = i % data.len();
            data.splice(i..i, v.iter().copied());
        }
        Mutation::Set16(i, v) => {
            let i = i % data.len();
            if i + 2 <= data.len() {
                data[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_decode_without_panic(
        prefix in prop_oneof![
            Just(vec![]),
            Just(vec![0u8, 5]),
            Just(vec![0u8, 9]),
            Just(vec![0u8, 10]),
            Just(vec![0u8, 0, 0, 5, 0, 0, 0, 1]),
            Just(vec![0u8, 0, 0, 5, 0, 0, 0, 2]),
        ],
        rest in prop::collection::vec(any::<u8>(), 0..1500),
    ) {
        let mut d = primed();
        let mut data = prefix;
        data.extend_from_slice(&rest);
        check_bounded(&mut d, &data);
    }

    #[test]
    fn mutated_datagrams_decode_without_panic(
        dg in arb_datagram(),
        muts in prop::collection::vec(arb_mutation(), 1..6),
    ) {
        let mut d = primed();
        let mut data = dg;
        for m in &muts {
            apply(&mut data, m);
        }
        check_bounded(&mut d, &data);
        // Twice: state left by the first (templates, sequences) must not
        // break the second.
        check_bounded(&mut d, &data);
    }

    #[test]
    fn v9_and_ipfix_round_trip(flows in prop::collection::vec(arb_flow(false), 1..40),
                               flows6 in prop::collection::vec(arb_flow(true), 1..20)) {
        let mut d = primed();
        for (ipfix, v6, fl) in [(true, false, &flows), (true, true, &flows6), (false, false, &flows), (false, true, &flows6)] {
            let mut body = Vec::new();
            for f in fl.iter() {
                build::data_record(f, v6, &mut body);
            }
            let id = if v6 { 257 } else { 256 };
            let dg = if ipfix {
                build::ipfix(0, 0, 1, &[build::set(id, &body)])
            } else {
                build::netflow9(0, 0, 1, &[build::set(id, &body)])
            };
            let mut out = Output::default();
            let o = d.decode(exporter(), 1, &dg, &mut out);
            prop_assert!(o.errors.is_empty(), "{:?}", o.errors);
            prop_assert_eq!(out.flows.len(), fl.len());
            for (r, f) in out.flows.iter().zip(fl.iter()) {
                prop_assert_eq!(r.version, if ipfix { Version::Ipfix } else { Version::Netflow9 });
                prop_assert_eq!(r.src_addr, Some(f.src));
                prop_assert_eq!(r.dst_addr, Some(f.dst));
                prop_assert_eq!((r.src_port, r.dst_port), (Some(f.src_port), Some(f.dst_port)));
                prop_assert_eq!((r.protocol, r.tcp_flags), (Some(f.protocol), Some(f.tcp_flags)));
                prop_assert_eq!((r.packets, r.bytes), (f.packets, f.bytes));
            }
        }
    }

    #[test]
    fn netflow5_round_trip(flows in prop::collection::vec(arb_flow(false), 1..=30), interval in 0u16..0x4000) {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = Output::default();
        let o = d.decode(exporter(), 1, &build::netflow5(7, 1, (3, 4), interval, &flows), &mut out);
        prop_assert!(o.errors.is_empty(), "{:?}", o.errors);
        prop_assert_eq!(out.flows.len(), flows.len());
        for (r, f) in out.flows.iter().zip(&flows) {
            prop_assert_eq!((r.src_addr, r.dst_addr), (Some(f.src), Some(f.dst)));
            prop_assert_eq!((r.packets, r.bytes), (f.packets, f.bytes));
            prop_assert_eq!(r.sampling_rate, u32::from(interval.max(1)));
        }
    }

    #[test]
    fn sflow_round_trip(flows in prop::collection::vec(arb_flow(false), 1..30), rate in 1u32..) {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let samples: Vec<SflowSample> = flows
            .iter()
            .map(|f| SflowSample {
                sampling_rate: rate,
                input: 1,
                output: 2,
                frame_length: 1514,
                header: build::ethernet_ipv4(f, 1500),
            })
            .collect();
        let mut out = Output::default();
        let o = d.decode(exporter(), 1, &build::sflow(exporter(), 0, 1, &samples), &mut out);
        prop_assert!(o.errors.is_empty(), "{:?}", o.errors);
        prop_assert_eq!(out.flows.len(), flows.len());
        for (r, f) in out.flows.iter().zip(&flows) {
            prop_assert_eq!((r.src_addr, r.dst_addr, r.protocol), (Some(f.src), Some(f.dst), Some(f.protocol)));
            prop_assert_eq!((r.sampling_rate, r.bytes), (rate, 1514));
            let ports = matches!(f.protocol, 6 | 17);
            prop_assert_eq!(r.dst_port, ports.then_some(f.dst_port));
        }
    }
}
