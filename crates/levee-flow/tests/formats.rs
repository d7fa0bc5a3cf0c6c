//! Each format's decoder on datagrams built to the letter of its spec
//! (`levee_flow::build`): fields, templates, options, sampling, sequence
//! numbers, withdrawals, limits, and the template cache snapshot.

use levee_flow::build::{self, Flow, SflowSample};
use levee_flow::template::{FieldSpec, VARLEN};
use levee_flow::{
    DecodeError, DecoderConfig, ExporterSampling, FlowDecoder, Limits, Output, SamplingSource,
    SeqCheck, Version,
};
use std::net::IpAddr;

const T0: i64 = 1_795_225_450_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn exporter() -> IpAddr {
    ip("192.0.2.10")
}

fn flow(i: u32) -> Flow {
    Flow {
        src: IpAddr::V4((0xc633_6400 + i).into()),
        dst: ip("203.0.113.7"),
        src_port: 1024 + i as u16,
        dst_port: 80,
        protocol: 6,
        tcp_flags: 0x02,
        packets: 3 + u64::from(i),
        bytes: 120 + u64::from(i) * 40,
    }
}

fn f(id: u16, length: u16) -> FieldSpec {
    FieldSpec {
        id,
        length,
        enterprise: 0,
    }
}

fn decode(d: &mut FlowDecoder, data: &[u8]) -> (levee_flow::Outcome, Output) {
    let mut out = Output::default();
    let o = d.decode(exporter(), T0, data, &mut out);
    (o, out)
}

fn decoder() -> FlowDecoder {
    FlowDecoder::new(DecoderConfig::default())
}

#[test]
fn netflow5_fields_sampling_and_sequence() {
    let mut d = decoder();
    let flows: Vec<Flow> = (0..3).map(flow).collect();
    let (o, out) = decode(
        &mut d,
        &build::netflow5(1000, 1_795_225_450, (1, 2), 0x4000 | 100, &flows),
    );
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        (o.version, o.domain, o.flows),
        (Some(Version::Netflow5), 0x0102, 3)
    );
    let r = &out.flows[1];
    assert_eq!(r.src_addr, Some(ip("198.51.100.1")));
    assert_eq!(r.dst_addr, Some(ip("203.0.113.7")));
    assert_eq!(
        (r.src_port, r.dst_port, r.protocol, r.tcp_flags),
        (Some(1025), Some(80), Some(6), Some(2))
    );
    assert_eq!((r.packets, r.bytes), (4, 160));
    assert_eq!(
        (r.sampling_rate, r.sampling_source),
        (100, SamplingSource::Packet)
    );
    assert_eq!(r.scaled_packets(), 400);
    assert_eq!(r.start_ms, Some(1_795_225_450_000 - 100_000 + 99_000));
    // flow_sequence counts flows: next is 1003; 1010 means 7 lost.
    let (o, _) = decode(&mut d, &build::netflow5(1003, 1, (1, 2), 0, &flows));
    assert_eq!(o.sequence, Some(SeqCheck::InOrder));
    let (o, out) = decode(&mut d, &build::netflow5(1010, 1, (1, 2), 0, &flows));
    assert_eq!(
        o.sequence,
        Some(SeqCheck::Gap {
            expected: 1006,
            received: 1010,
            lost: 4
        })
    );
    assert_eq!(out.flows[0].sampling_rate, 1, "interval 0: unsampled");
}

#[test]
fn netflow5_bad_counts_and_truncation() {
    let mut d = decoder();
    let mut dg = build::netflow5(1, 1, (0, 0), 0, &[flow(0), flow(1)]);
    dg.truncate(dg.len() - 10);
    let (o, out) = decode(&mut d, &dg);
    assert_eq!(out.flows.len(), 1, "the whole first record survives");
    assert!(matches!(o.errors[0], DecodeError::Truncated { .. }));
    let mut dg = build::netflow5(1, 1, (0, 0), 0, &[flow(0)]);
    dg[2..4].copy_from_slice(&31u16.to_be_bytes());
    let (o, out) = decode(&mut d, &dg);
    assert!(out.flows.is_empty());
    assert!(
        o.errors[0].to_string().contains("record count 31"),
        "{}",
        o.errors[0]
    );
}

#[test]
fn netflow9_templates_data_and_unknown_templates() {
    let mut d = decoder();
    let data = |flows: &[Flow]| {
        let mut body = Vec::new();
        for fl in flows {
            build::data_record(fl, false, &mut body);
        }
        build::set(300, &body)
    };
    // Data before its template: skipped and counted.
    let (o, out) = decode(
        &mut d,
        &build::netflow9(1, 7, 1_795_225_450, &[data(&[flow(0)])]),
    );
    assert_eq!(o.unknown_templates, 1);
    assert!(out.flows.is_empty());
    assert!(matches!(
        o.errors[0],
        DecodeError::UnknownTemplate {
            template_id: 300,
            domain: 7,
            ..
        }
    ));
    let tpl = build::set(
        0,
        &build::template_record(300, &build::flow_fields(false), false),
    );
    let dg = build::netflow9(2, 7, 1_795_225_450, &[tpl, data(&[flow(0), flow(1)])]);
    let (o, out) = decode(&mut d, &dg);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        (o.templates, o.flows, o.sequence),
        (1, 2, Some(SeqCheck::InOrder))
    );
    assert_eq!(out.flows[1].src_addr, Some(ip("198.51.100.1")));
    assert_eq!(out.flows[1].packets, 4);
    assert_eq!(out.flows[1].domain, 7);
    // v9 sequence counts datagrams.
    let (o, _) = decode(&mut d, &build::netflow9(5, 7, 1, &[data(&[flow(2)])]));
    assert_eq!(
        o.sequence,
        Some(SeqCheck::Gap {
            expected: 3,
            received: 5,
            lost: 2
        })
    );
    // Another source id is another domain: its template is unknown.
    let (o, _) = decode(&mut d, &build::netflow9(1, 8, 1, &[data(&[flow(2)])]));
    assert_eq!(o.unknown_templates, 1);
}

#[test]
fn netflow9_options_sampling_by_sampler_id() {
    let mut d = decoder();
    // Options template: scope interface (type 2), FLOW_SAMPLER_ID (48, 1 byte),
    // FLOW_SAMPLER_RANDOM_INTERVAL (50, 4 bytes), as Cisco IOS sends it.
    let opt_tpl = build::set(
        1,
        &build::v9_options_template(256, &[f(2, 4)], &[f(48, 1), f(50, 4)]),
    );
    let opt_data = build::set(256, &[0, 0, 0, 1, 5, 0, 0, 0x03, 0xe8]);
    let mut fields = build::flow_fields(false);
    fields.push(f(48, 1));
    let tpl = build::set(0, &build::template_record(257, &fields, false));
    let mut body = Vec::new();
    build::data_record(&flow(0), false, &mut body);
    body.push(5);
    build::data_record(&flow(1), false, &mut body);
    body.push(9); // a sampler never announced
    let dg = build::netflow9(1, 0, 1, &[opt_tpl, opt_data, tpl, build::set(257, &body)]);
    let (o, out) = decode(&mut d, &dg);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!((o.templates, o.options, o.flows), (2, 1, 2));
    assert_eq!(
        (out.flows[0].sampling_rate, out.flows[0].sampling_source),
        (1000, SamplingSource::Options)
    );
    assert_eq!(
        out.flows[1].sampling_rate, 1,
        "unknown sampler, no domain-wide rate"
    );
}

#[test]
fn ipfix_varlen_enterprise_and_sequence() {
    let mut d = decoder();
    let mut fields = build::flow_fields(true);
    fields.insert(
        2,
        FieldSpec {
            id: 12,
            length: 4,
            enterprise: 29305,
        },
    ); // reverse element: skipped
    fields.push(f(82, VARLEN)); // interfaceName
    let tpl = build::set(2, &build::template_record(400, &fields, true));
    let mut body = Vec::new();
    let mut v6flow = flow(0);
    v6flow.src = ip("2001:db8::1");
    v6flow.dst = ip("2001:db8::2");
    let record = |fl: &Flow, name: &[u8], body: &mut Vec<u8>| {
        let mut r = Vec::new();
        build::data_record(fl, true, &mut r);
        // Insert the 4 enterprise bytes after the two addresses.
        r.splice(32..32, [9, 9, 9, 9]);
        body.extend_from_slice(&r);
        build::varlen_value(name, body);
    };
    record(&v6flow, b"eth0", &mut body);
    record(&v6flow, &[b'x'; 300], &mut body);
    let dg = build::ipfix(500, 3, 1, &[tpl, build::set(400, &body)]);
    let (o, out) = decode(&mut d, &dg);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.flows, 2);
    assert_eq!(out.flows[1].src_addr, Some(ip("2001:db8::1")));
    assert_eq!(out.flows[1].dst_addr, Some(ip("2001:db8::2")));
    assert_eq!(out.flows[1].dst_port, Some(80));
    // IPFIX sequence counts data records: 500 + 2.
    let (o, _) = decode(&mut d, &build::ipfix(502, 3, 1, &[]));
    assert_eq!(o.sequence, Some(SeqCheck::InOrder));
    // Message length longer than the datagram: truncated.
    let mut short = build::ipfix(1, 3, 1, &[build::set(400, &body)]);
    short.truncate(40);
    let (o, _) = decode(&mut d, &short);
    assert!(matches!(
        o.errors[0],
        DecodeError::Truncated {
            what: "IPFIX message",
            ..
        }
    ));
}

#[test]
fn ipfix_withdrawal_and_id_reuse() {
    let mut d = decoder();
    let tpl = |id| {
        build::set(
            2,
            &build::template_record(id, &build::flow_fields(false), true),
        )
    };
    let rec = |id| {
        let mut body = Vec::new();
        build::data_record(&flow(1), false, &mut body);
        build::set(id, &body)
    };
    let (o, _) = decode(&mut d, &build::ipfix(0, 1, 1, &[tpl(256), tpl(257)]));
    assert_eq!(o.templates, 2);
    // Withdraw 256 alone.
    let (o, _) = decode(
        &mut d,
        &build::ipfix(0, 1, 1, &[build::set(2, &[1, 0, 0, 0])]),
    );
    assert_eq!(o.withdrawn, 1);
    let (o, out) = decode(&mut d, &build::ipfix(0, 1, 1, &[rec(256), rec(257)]));
    assert_eq!((o.unknown_templates, out.flows.len()), (1, 1));
    // Reuse 257 as an options template (selector 7, 1 out of 100): data of
    // 257 is now options data, and records of 258 carrying selector 7 get
    // its rate.
    let opt = build::set(
        3,
        &build::ipfix_options_template(257, &[f(302, 4)], &[f(305, 4), f(306, 4)]),
    );
    let mut fields = build::flow_fields(false);
    fields.push(f(302, 4));
    let t258 = build::set(2, &build::template_record(258, &fields, true));
    let opt_data = build::set(257, &[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 99]);
    let mut body = Vec::new();
    build::data_record(&flow(2), false, &mut body);
    body.extend_from_slice(&[0, 0, 0, 7]);
    let dg = build::ipfix(0, 1, 1, &[opt, t258, opt_data, build::set(258, &body)]);
    let (o, out) = decode(&mut d, &dg);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!((o.options, o.flows), (1, 1));
    assert_eq!(
        (out.flows[0].sampling_rate, out.flows[0].sampling_source),
        (100, SamplingSource::Options)
    );
    // Withdraw all options templates (template id 3 in set 3): 257 goes,
    // data template 258 stays.
    let (o, _) = decode(
        &mut d,
        &build::ipfix(0, 1, 1, &[build::set(3, &[0, 3, 0, 0])]),
    );
    assert_eq!(o.withdrawn, 1);
    let (o, _) = decode(&mut d, &build::ipfix(0, 1, 1, &[rec(257)]));
    assert_eq!(o.unknown_templates, 1);
    // Withdraw all data templates (id 2 in set 2).
    let (o, _) = decode(
        &mut d,
        &build::ipfix(0, 1, 1, &[build::set(2, &[0, 2, 0, 0])]),
    );
    assert_eq!(o.withdrawn, 1);
    assert!(d.templates().is_empty());
}

#[test]
fn ipfix_options_scope_count_zero_is_rejected() {
    let mut d = decoder();
    let mut body = vec![1, 0, 0, 2, 0, 0];
    body.extend_from_slice(&[1, 46, 0, 4, 0, 34, 0, 4]);
    let (o, _) = decode(&mut d, &build::ipfix(0, 1, 1, &[build::set(3, &body)]));
    assert!(
        o.errors[0].to_string().contains("scope field count 0"),
        "{:?}",
        o.errors
    );
    assert!(d.templates().is_empty());
}

#[test]
fn sflow_raw_headers_become_packet_meta() {
    let mut d = decoder();
    let f0 = Flow {
        protocol: 17,
        dst_port: 53,
        ..flow(0)
    };
    let samples = vec![
        SflowSample {
            sampling_rate: 2048,
            input: 3,
            output: 4,
            frame_length: 1518,
            header: build::ethernet_ipv4(&flow(1), 1500),
        },
        SflowSample {
            sampling_rate: 2048,
            input: 3,
            output: 4,
            frame_length: 64,
            header: build::ethernet_ipv4(&f0, 46),
        },
    ];
    let agent = ip("2001:db8::99");
    let (o, out) = decode(&mut d, &build::sflow(agent, 2, 77, &samples));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        (o.version, o.flows, o.agent),
        (Some(Version::Sflow5), 2, Some(agent))
    );
    let r = &out.flows[0];
    assert_eq!(r.exporter, agent, "the agent address is the exporter");
    assert_eq!((r.packets, r.bytes, r.sampling_rate), (1, 1518, 2048));
    assert_eq!(
        (r.src_port, r.dst_port, r.tcp_flags),
        (Some(1025), Some(80), Some(2))
    );
    let meta = r.packet.expect("decoded header");
    assert_eq!(meta.ip_len, 1500);
    assert_eq!(out.flows[1].protocol, Some(17));
    assert_eq!(out.flows[1].tcp_flags, None);
    let (o, _) = decode(&mut d, &build::sflow(agent, 2, 79, &samples));
    assert_eq!(
        o.sequence,
        Some(SeqCheck::Gap {
            expected: 78,
            received: 79,
            lost: 1
        })
    );
}

#[test]
fn sflow_counter_samples() {
    // One datagram with a compact counter sample (format 2) holding a
    // generic interface record (format 1, 88 bytes).
    let mut dg: Vec<u8> = Vec::new();
    let u = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_be_bytes());
    for v in [5, 1, 0x0a00_0001, 0, 1, 1000, 1] {
        u(&mut dg, v);
    }
    let mut rec = Vec::new();
    for v in [7u32, 6] {
        u(&mut rec, v);
    }
    rec.extend_from_slice(&1_000_000_000u64.to_be_bytes());
    for v in [1u32, 1] {
        u(&mut rec, v);
    }
    rec.extend_from_slice(&5_000u64.to_be_bytes());
    for v in [10u32, 11, 12, 13, 14, 15] {
        u(&mut rec, v);
    }
    rec.extend_from_slice(&6_000u64.to_be_bytes());
    for v in [20u32, 21, 22, 23, 24, 0] {
        u(&mut rec, v);
    }
    assert_eq!(rec.len(), 88);
    let mut sample = Vec::new();
    for v in [9u32, 7, 1, 1, 88] {
        u(&mut sample, v);
    }
    sample.extend_from_slice(&rec);
    u(&mut dg, 2);
    u(&mut dg, sample.len() as u32);
    dg.extend_from_slice(&sample);
    let mut d = decoder();
    let (o, out) = decode(&mut d, &dg);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!((o.counters, o.flows), (1, 0));
    let c = &out.counters[0];
    assert_eq!(
        (c.if_index, c.if_speed, c.in_octets, c.in_errors),
        (7, 1_000_000_000, 5_000, 14)
    );
    assert_eq!(
        (c.out_octets, c.out_ucast_packets, c.out_errors),
        (6_000, 20, 24)
    );
}

#[test]
fn configured_rates_fall_back_or_force() {
    let cfg = DecoderConfig {
        exporters: vec![ExporterSampling {
            exporter: exporter(),
            rate: 64,
            force: false,
        }],
        ..DecoderConfig::default()
    };
    let mut d = FlowDecoder::new(cfg.clone());
    let (_, out) = decode(&mut d, &build::netflow5(1, 1, (0, 0), 0, &[flow(0)]));
    assert_eq!(
        (out.flows[0].sampling_rate, out.flows[0].sampling_source),
        (64, SamplingSource::Config)
    );
    let (_, out) = decode(&mut d, &build::netflow5(2, 1, (0, 0), 10, &[flow(0)]));
    assert_eq!(
        out.flows[0].sampling_rate, 10,
        "the packet's own rate wins over a fallback"
    );
    let mut forced = cfg;
    forced.exporters[0].force = true;
    let mut d = FlowDecoder::new(forced);
    let (_, out) = decode(&mut d, &build::netflow5(2, 1, (0, 0), 10, &[flow(0)]));
    assert_eq!(out.flows[0].sampling_rate, 64);
}

#[test]
fn limits_bound_what_a_datagram_can_do() {
    let limits = Limits {
        max_templates_per_domain: 3,
        max_fields: 8,
        max_records_per_datagram: 5,
        ..Limits::default()
    };
    let mut d = FlowDecoder::new(DecoderConfig {
        limits,
        ..DecoderConfig::default()
    });
    let sets: Vec<Vec<u8>> = (256..262)
        .map(|id| {
            build::set(
                2,
                &build::template_record(id, &build::flow_fields(false), true),
            )
        })
        .collect();
    let (o, _) = decode(&mut d, &build::ipfix(0, 1, 1, &sets));
    assert_eq!(o.templates, 3);
    assert_eq!(o.errors.len(), 3);
    assert!(o
        .errors
        .iter()
        .all(|e| matches!(e, DecodeError::Limit { .. })));
    let wide: Vec<FieldSpec> = (0..9).map(|_| f(1, 4)).collect();
    let (o, _) = decode(
        &mut d,
        &build::ipfix(
            0,
            2,
            1,
            &[build::set(2, &build::template_record(300, &wide, true))],
        ),
    );
    assert!(
        o.errors[0].to_string().contains("fields per template"),
        "{:?}",
        o.errors
    );
    let mut body = Vec::new();
    for i in 0..8 {
        build::data_record(&flow(i), false, &mut body);
    }
    let (o, out) = decode(&mut d, &build::ipfix(0, 1, 1, &[build::set(256, &body)]));
    assert_eq!(out.flows.len(), 5);
    assert!(
        o.errors[0]
            .to_string()
            .contains("records per datagram (limit 5)"),
        "{:?}",
        o.errors
    );
}

#[test]
fn snapshot_restores_templates_and_rates_after_a_restart() {
    let mut d = decoder();
    let opt = build::set(
        3,
        &build::ipfix_options_template(260, &[f(302, 4)], &[f(34, 4)]),
    );
    let opt_data = build::set(260, &[0, 0, 0, 1, 0, 0, 0, 50]);
    let mut fields = build::flow_fields(false);
    fields.push(f(302, 4));
    let tpl = build::set(2, &build::template_record(300, &fields, true));
    decode(&mut d, &build::ipfix(0, 9, 1, &[opt, opt_data, tpl]));
    let json = d.snapshot(T0).to_json();
    let snap = levee_flow::CacheSnapshot::from_json(&json).unwrap();
    let mut restarted = decoder();
    let rep = restarted.restore(&snap, T0 + 1_000);
    assert_eq!((rep.templates, rep.samplers, rep.dropped), (2, 1, 0));
    let mut body = Vec::new();
    build::data_record(&flow(0), false, &mut body);
    body.extend_from_slice(&[0, 0, 0, 1]);
    let (o, out) = decode(
        &mut restarted,
        &build::ipfix(1, 9, 1, &[build::set(300, &body)]),
    );
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(out.flows[0].sampling_rate, 50);
    // Restored long after: everything has expired.
    let mut late = decoder();
    let rep = late.restore(&snap, T0 + 31 * 60 * 1000);
    assert_eq!((rep.templates, rep.dropped), (0, 3));
    assert!(levee_flow::CacheSnapshot::from_json(
        "{\"version\":2,\"saved_ms\":0,\"templates\":[],\"samplers\":[]}"
    )
    .is_err());
}

#[test]
fn templates_expire_without_resends() {
    let mut d = decoder();
    let tpl = build::set(
        2,
        &build::template_record(300, &build::flow_fields(false), true),
    );
    let mut out = Output::default();
    d.decode(exporter(), T0, &build::ipfix(0, 1, 1, &[tpl]), &mut out);
    let mut body = Vec::new();
    build::data_record(&flow(0), false, &mut body);
    let data = build::ipfix(0, 1, 1, &[build::set(300, &body)]);
    let o = d.decode(exporter(), T0 + 29 * 60 * 1000, &data, &mut out);
    assert_eq!(o.flows, 1);
    let o = d.decode(exporter(), T0 + 31 * 60 * 1000, &data, &mut out);
    assert_eq!(
        o.unknown_templates, 1,
        "expired 30 min after it was last sent"
    );
}
