//! Property tests: the parsers never panic on arbitrary input, and the rate
//! calculator never panics nor yields negative/NaN/infinite rates.

use levee_model::{InterfaceCounters, ProtoCounters, RawSample};
use levee_sources::{counter_delta, parse_proc_net_dev, parse_snmp, RateCalculator};
use proptest::prelude::*;

const DEV: &str = include_str!("fixtures/proc_net_dev.txt");
const SNMP: &str = include_str!("fixtures/proc_net_snmp.txt");
const SNMP6: &str = include_str!("fixtures/proc_net_snmp6.txt");

/// Mutations of real files reach deeper than random strings, which almost
/// always fail at the first line.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    (0..base.len(), 0..base.len(), "[ -~\t\n|:-]{0,12}").prop_map(move |(a, b, ins)| {
        let (lo, hi) = (a.min(b), a.max(b));
        let (lo, hi) = (floor(base, lo), floor(base, hi));
        format!("{}{}{}", &base[..lo], ins, &base[hi..])
    })
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn iface() -> impl Strategy<Value = InterfaceCounters> {
    (
        prop::sample::select(vec!["eth0", "eth1", "wan0", "lo"]),
        prop::option::of(1u32..4),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        prop_oneof![any::<u64>(), 0u64..=u64::from(u32::MAX)],
    )
        .prop_map(|(name, ifindex, p, b, t, d)| InterfaceCounters {
            name: name.into(),
            ifindex,
            rx_packets: p,
            rx_bytes: b,
            tx_packets: t,
            tx_bytes: t.wrapping_mul(3),
            rx_drops: d,
            rx_errors: d / 2,
            ..InterfaceCounters::default()
        })
}

fn raw_sample() -> impl Strategy<Value = RawSample> {
    (
        prop_oneof![any::<u64>(), 0u64..10_000],
        prop::collection::vec(iface(), 0..4),
        prop::array::uniform9(any::<u64>()),
    )
        .prop_map(|(mono_ms, interfaces, c)| RawSample {
            mono_ms,
            unix_ms: 0,
            interfaces,
            proto: ProtoCounters {
                tcp_in_segs: c[0],
                tcp_passive_opens: c[1],
                tcp_attempt_fails: c[2],
                tcp_estab_resets: c[3],
                udp_in_datagrams: c[4],
                udp_no_ports: c[5],
                udp_in_errors: c[6],
                udp_rcvbuf_errors: c[7],
                icmp_in_msgs: c[8],
            },
            conns: None,
        })
}

fn sane(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

proptest! {
    #[test]
    fn proc_net_dev_never_panics(text in ".{0,400}") {
        let _ = parse_proc_net_dev(&text);
    }

    #[test]
    fn proc_net_dev_mutations_never_panic(text in mutated(DEV)) {
        let _ = parse_proc_net_dev(&text);
    }

    #[test]
    fn snmp_never_panics(v4 in ".{0,400}", v6 in prop::option::of(".{0,200}")) {
        let _ = parse_snmp(&v4, v6.as_deref());
    }

    #[test]
    fn snmp_mutations_never_panic(v4 in mutated(SNMP), v6 in mutated(SNMP6)) {
        let _ = parse_snmp(&v4, Some(&v6));
        let _ = parse_snmp(SNMP, Some(&v6));
    }

    #[test]
    fn counter_delta_is_bounded(old in any::<u64>(), new in any::<u64>()) {
        let d = counter_delta(old, new);
        if new >= old {
            prop_assert_eq!(d, new - old);
        } else {
            prop_assert!(d < 1 << 31);
        }
    }

    #[test]
    fn rates_are_never_negative_nan_or_infinite(
        samples in prop::collection::vec(raw_sample(), 0..12)
    ) {
        let mut rc = RateCalculator::new();
        for s in &samples {
            if let Ok(Some(t)) = rc.push(s) {
                let o = &t.observation;
                prop_assert!(o.dt > 0.0 && o.dt.is_finite());
                for x in [o.tcp_pps, o.udp_pps, o.icmp_pps, o.tcp_opens_ps,
                          o.udp_no_ports_ps, o.udp_errors_ps] {
                    prop_assert!(sane(x), "{:?}", o);
                }
                for i in &o.interfaces {
                    for x in [i.rx_pps, i.rx_bps, i.tx_pps, i.tx_bps,
                              i.rx_drops_ps, i.rx_errors_ps] {
                        prop_assert!(sane(x), "{:?}", i);
                    }
                }
            }
        }
    }
}
