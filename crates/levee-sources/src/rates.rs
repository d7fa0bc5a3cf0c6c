//! [`RateCalculator`]: turns successive cumulative [`RawSample`]s into per-second
//! [`TickObservation`]s. Pure: no clock, no I/O, so a recorded sample stream
//! always yields the same observations.
//!
//! Counter semantics (see [`counter_delta`]): 32-bit wraps are unwrapped, resets
//! count as zero for the tick. Interfaces get a rate from their second sample on;
//! a rename (old name gone, new name with the same ifindex in the same sample)
//! keeps continuity and is reported so the detector can move its baselines.

use levee_model::{InterfaceCounters, InterfaceRates, ProtoCounters, RawSample, TickObservation};
use std::collections::{HashMap, HashSet};
use thiserror::Error;

/// An interface renamed between two samples, recognised by its ifindex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub old: String,
    pub new: String,
    pub ifindex: u32,
}

/// What one [`RateCalculator::push`] yields once there is a previous sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RateTick {
    pub observation: TickObservation,
    /// Renames detected in this tick; the observation already uses the new names.
    pub renames: Vec<Rename>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RateError {
    /// Two samples with the same or a decreasing monotonic time (a duplicated
    /// sample, or a recording spliced from two runs). No rate can be computed;
    /// the new sample becomes the reference for the next one.
    #[error("sample time did not advance (previous mono_ms {prev_ms}, this one {now_ms}); no rates for this tick")]
    TimeNotAdvancing { prev_ms: u64, now_ms: u64 },
}

/// The part of a sample the next tick needs.
#[derive(Debug, Clone)]
struct Reference {
    mono_ms: u64,
    interfaces: Vec<InterfaceCounters>,
    proto: ProtoCounters,
}

impl Reference {
    fn of(sample: &RawSample) -> Self {
        Reference {
            mono_ms: sample.mono_ms,
            interfaces: sample.interfaces.clone(),
            proto: sample.proto,
        }
    }
}

/// Turns a stream of samples into rates; keeps only the previous sample.
#[derive(Debug, Clone, Default)]
pub struct RateCalculator {
    prev: Option<Reference>,
}

impl RateCalculator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the previous sample: the next push yields no observation.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// Feeds the next sample. `Ok(None)` for the first one (rates need two);
    /// an error when time did not advance. Either way `sample` becomes the
    /// reference for the next call.
    pub fn push(&mut self, sample: &RawSample) -> Result<Option<RateTick>, RateError> {
        let result = match &self.prev {
            None => Ok(None),
            Some(prev) if sample.mono_ms <= prev.mono_ms => Err(RateError::TimeNotAdvancing {
                prev_ms: prev.mono_ms,
                now_ms: sample.mono_ms,
            }),
            Some(prev) => Ok(Some(tick(prev, sample))),
        };
        self.prev = Some(Reference::of(sample));
        result
    }
}

fn tick(prev: &Reference, cur: &RawSample) -> RateTick {
    // mono_ms strictly increased, so dt > 0 and finite: no division by zero.
    let dt = (cur.mono_ms - prev.mono_ms) as f64 / 1000.0;

    let mut by_name: HashMap<&str, &InterfaceCounters> = HashMap::new();
    let mut by_index: HashMap<u32, &InterfaceCounters> = HashMap::new();
    for p in &prev.interfaces {
        by_name.entry(p.name.as_str()).or_insert(p);
        if let Some(i) = p.ifindex {
            by_index.entry(i).or_insert(p);
        }
    }
    let current_names: HashSet<&str> = cur.interfaces.iter().map(|c| c.name.as_str()).collect();

    let mut interfaces = Vec::with_capacity(cur.interfaces.len());
    let mut renames = Vec::new();
    let mut emitted: HashSet<&str> = HashSet::new();
    let mut renamed_from: HashSet<&str> = HashSet::new();
    for c in &cur.interfaces {
        // A duplicated name would make two series out of one; keep the first.
        if !emitted.insert(c.name.as_str()) {
            continue;
        }
        let base = match by_name.get(c.name.as_str()) {
            // Same name but another ifindex: deleted and recreated between the
            // samples, so a new interface whose counters restarted.
            Some(p) if matches!((p.ifindex, c.ifindex), (Some(a), Some(b)) if a != b) => None,
            Some(p) => Some(*p),
            None => c
                .ifindex
                .and_then(|i| by_index.get(&i).map(|p| (i, *p)))
                .filter(|(_, p)| {
                    !current_names.contains(p.name.as_str()) && renamed_from.insert(p.name.as_str())
                })
                .map(|(ifindex, p)| {
                    renames.push(Rename {
                        old: p.name.clone(),
                        new: c.name.clone(),
                        ifindex,
                    });
                    p
                }),
        };
        if let Some(p) = base {
            interfaces.push(interface_rates(p, c, dt));
        }
    }

    let rate = |old: u64, new: u64| counter_delta(old, new) as f64 / dt;
    let (a, b) = (&prev.proto, &cur.proto);
    let observation = TickObservation {
        unix_ms: cur.unix_ms,
        dt,
        interfaces,
        tcp_pps: rate(a.tcp_in_segs, b.tcp_in_segs),
        // Every datagram UDP received: delivered (InDatagrams), to a closed port
        // (NoPorts: what a flood at a random port mostly is) and dropped
        // (InErrors). Counting InDatagrams alone misses most UDP floods.
        udp_pps: rate(a.udp_in_datagrams, b.udp_in_datagrams)
            + rate(a.udp_no_ports, b.udp_no_ports)
            + rate(a.udp_in_errors, b.udp_in_errors),
        icmp_pps: rate(a.icmp_in_msgs, b.icmp_in_msgs),
        tcp_opens_ps: rate(a.tcp_passive_opens, b.tcp_passive_opens),
        udp_no_ports_ps: rate(a.udp_no_ports, b.udp_no_ports),
        // Not InErrors + RcvbufErrors: Linux already charges every receive-buffer
        // drop to InErrors as well ("Note that an ENOMEM error is charged twice",
        // __udp_queue_rcv_skb in net/ipv4/udp.c and net/ipv6/udp.c), so adding
        // them would double-count exactly the drops a flood causes.
        udp_errors_ps: rate(a.udp_in_errors, b.udp_in_errors),
        conns: cur.conns,
        targets: Vec::new(),
    };
    RateTick {
        observation,
        renames,
    }
}

fn interface_rates(p: &InterfaceCounters, c: &InterfaceCounters, dt: f64) -> InterfaceRates {
    let rate = |old: u64, new: u64| counter_delta(old, new) as f64 / dt;
    InterfaceRates {
        name: c.name.clone(),
        rx_pps: rate(p.rx_packets, c.rx_packets),
        rx_bps: rate(p.rx_bytes, c.rx_bytes) * 8.0,
        tx_pps: rate(p.tx_packets, c.tx_packets),
        tx_bps: rate(p.tx_bytes, c.tx_bytes) * 8.0,
        rx_drops_ps: rate(p.rx_drops, c.rx_drops),
        rx_errors_ps: rate(p.rx_errors, c.rx_errors),
    }
}

/// How much a cumulative counter grew from `old` to `new`.
///
/// - `new >= old`: the difference.
/// - `new < old` and `old` fits in 32 bits: a 32-bit counter (32-bit kernel,
///   some drivers) wrapped, so the growth is `new + 2^32 - old` — but only when
///   that is under 2^31. A larger "wrap" would mean billions of packets in one
///   tick; it is really a small counter that was reset (driver reset, interface
///   recreated), and unwrapping it would report a spike of ~4 billion.
/// - otherwise: a reset; the growth since it is unknown, so 0 for this tick.
pub fn counter_delta(old: u64, new: u64) -> u64 {
    const WRAP: u64 = 1 << 32;
    const HALF_RANGE: u64 = 1 << 31;
    if new >= old {
        return new - old;
    }
    if old < WRAP {
        // new < old < 2^32, so this cannot overflow.
        let wrapped = new + WRAP - old;
        if wrapped < HALF_RANGE {
            return wrapped;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::ConnCounts;

    fn iface(
        name: &str,
        ifindex: Option<u32>,
        rx_packets: u64,
        rx_bytes: u64,
    ) -> InterfaceCounters {
        InterfaceCounters {
            name: name.into(),
            ifindex,
            rx_packets,
            rx_bytes,
            ..InterfaceCounters::default()
        }
    }

    fn sample(mono_ms: u64, interfaces: Vec<InterfaceCounters>) -> RawSample {
        RawSample {
            mono_ms,
            unix_ms: 1_700_000_000_000 + mono_ms as i64,
            interfaces,
            ..RawSample::default()
        }
    }

    fn names(t: &RateTick) -> Vec<&str> {
        t.observation
            .interfaces
            .iter()
            .map(|i| i.name.as_str())
            .collect()
    }

    #[test]
    fn first_sample_yields_nothing_second_yields_rates() {
        let mut rc = RateCalculator::new();
        assert_eq!(
            rc.push(&sample(1_000, vec![iface("eth0", Some(2), 100, 10_000)])),
            Ok(None)
        );
        let mut s = sample(1_500, vec![iface("eth0", Some(2), 600, 60_000)]);
        s.proto = ProtoCounters {
            tcp_in_segs: 50,
            udp_in_datagrams: 10,
            icmp_in_msgs: 5,
            tcp_passive_opens: 2,
            udp_no_ports: 1,
            udp_in_errors: 4,
            udp_rcvbuf_errors: 3,
            ..ProtoCounters::default()
        };
        s.conns = Some(ConnCounts {
            established: 7,
            ..ConnCounts::default()
        });
        let t = rc.push(&s).unwrap().unwrap();
        let o = &t.observation;
        assert_eq!(o.dt, 0.5);
        assert_eq!(o.unix_ms, s.unix_ms);
        assert_eq!(o.interfaces[0].rx_pps, 1_000.0);
        assert_eq!(o.interfaces[0].rx_bps, 50_000.0 * 8.0 / 0.5);
        assert_eq!(o.tcp_pps, 100.0);
        // Delivered 10 + no port 1 + errors 4, over 0.5 s.
        assert_eq!(o.udp_pps, 30.0);
        assert_eq!(o.icmp_pps, 10.0);
        assert_eq!(o.tcp_opens_ps, 4.0);
        assert_eq!(o.udp_no_ports_ps, 2.0);
        // InErrors already includes RcvbufErrors.
        assert_eq!(o.udp_errors_ps, 8.0);
        assert_eq!(o.conns, s.conns);
        assert!(t.renames.is_empty());
    }

    #[test]
    fn thirty_two_bit_wrap_gives_the_right_delta() {
        let old = u64::from(u32::MAX) - 9;
        assert_eq!(counter_delta(old, 5), 15);
        assert_eq!(counter_delta(u64::from(u32::MAX), 0), 1);

        let mut rc = RateCalculator::new();
        rc.push(&sample(0, vec![iface("eth0", None, old, 0)]))
            .unwrap();
        let t = rc
            .push(&sample(1_000, vec![iface("eth0", None, 5, 0)]))
            .unwrap()
            .unwrap();
        assert_eq!(t.observation.interfaces[0].rx_pps, 15.0);
    }

    #[test]
    fn resets_report_zero_not_a_spike() {
        // 64-bit counter went down: reset.
        assert_eq!(counter_delta(u64::from(u32::MAX) + 1, 3), 0);
        assert_eq!(counter_delta(u64::MAX, 0), 0);
        // A small counter that went down is a reset, not a 4-billion wrap.
        assert_eq!(counter_delta(1_000, 3), 0);

        let mut rc = RateCalculator::new();
        rc.push(&sample(
            0,
            vec![iface("eth0", Some(2), 5_000_000_000, 1_000)],
        ))
        .unwrap();
        let t = rc
            .push(&sample(100, vec![iface("eth0", Some(2), 10, 20)]))
            .unwrap()
            .unwrap();
        assert_eq!(t.observation.interfaces[0].rx_pps, 0.0);
        assert_eq!(t.observation.interfaces[0].rx_bps, 0.0);
        // Counting resumes from the reset value.
        let t = rc
            .push(&sample(200, vec![iface("eth0", Some(2), 20, 30)]))
            .unwrap()
            .unwrap();
        assert_eq!(t.observation.interfaces[0].rx_pps, 100.0);
    }

    #[test]
    fn zero_or_negative_dt_is_an_error_and_rebases() {
        let mut rc = RateCalculator::new();
        rc.push(&sample(1_000, vec![])).unwrap();
        assert_eq!(
            rc.push(&sample(1_000, vec![])),
            Err(RateError::TimeNotAdvancing {
                prev_ms: 1_000,
                now_ms: 1_000
            })
        );
        assert!(rc.push(&sample(500, vec![])).is_err());
        // 500 is now the reference.
        let t = rc.push(&sample(600, vec![])).unwrap().unwrap();
        assert_eq!(t.observation.dt, 0.1);
    }

    #[test]
    fn appearing_interface_waits_for_its_second_sample_and_disappearing_is_dropped() {
        let mut rc = RateCalculator::new();
        rc.push(&sample(0, vec![iface("eth0", Some(2), 0, 0)]))
            .unwrap();
        let t = rc
            .push(&sample(
                100,
                vec![iface("eth0", Some(2), 10, 0), iface("eth1", Some(3), 99, 0)],
            ))
            .unwrap()
            .unwrap();
        assert_eq!(names(&t), ["eth0"]);
        let t = rc
            .push(&sample(200, vec![iface("eth1", Some(3), 109, 0)]))
            .unwrap()
            .unwrap();
        assert_eq!(names(&t), ["eth1"]);
        assert_eq!(t.observation.interfaces[0].rx_pps, 100.0);
        assert!(t.renames.is_empty());
    }

    #[test]
    fn rename_keeps_continuity_and_is_reported() {
        let mut rc = RateCalculator::new();
        rc.push(&sample(0, vec![iface("eth0", Some(2), 1_000, 64_000)]))
            .unwrap();
        let t = rc
            .push(&sample(1_000, vec![iface("wan0", Some(2), 1_100, 70_400)]))
            .unwrap()
            .unwrap();
        assert_eq!(
            t.renames,
            [Rename {
                old: "eth0".into(),
                new: "wan0".into(),
                ifindex: 2
            }]
        );
        assert_eq!(names(&t), ["wan0"]);
        assert_eq!(t.observation.interfaces[0].rx_pps, 100.0);
        assert_eq!(t.observation.interfaces[0].rx_bps, 6_400.0 * 8.0);
        // And the next tick continues under the new name.
        let t = rc
            .push(&sample(2_000, vec![iface("wan0", Some(2), 1_200, 76_800)]))
            .unwrap()
            .unwrap();
        assert!(t.renames.is_empty());
        assert_eq!(t.observation.interfaces[0].rx_pps, 100.0);
    }

    #[test]
    fn same_ifindex_under_a_still_present_name_is_not_a_rename() {
        let mut rc = RateCalculator::new();
        rc.push(&sample(0, vec![iface("eth0", Some(2), 0, 0)]))
            .unwrap();
        let t = rc
            .push(&sample(
                100,
                vec![iface("eth0", Some(2), 1, 0), iface("eth9", Some(2), 1, 0)],
            ))
            .unwrap()
            .unwrap();
        assert!(t.renames.is_empty());
        assert_eq!(names(&t), ["eth0"]);
    }

    #[test]
    fn recreated_interface_under_the_same_name_starts_over() {
        let mut rc = RateCalculator::new();
        rc.push(&sample(0, vec![iface("veth0", Some(7), 10, 0)]))
            .unwrap();
        let t = rc
            .push(&sample(100, vec![iface("veth0", Some(8), 500, 0)]))
            .unwrap()
            .unwrap();
        assert!(names(&t).is_empty(), "no spike from the old counters");
        let t = rc
            .push(&sample(200, vec![iface("veth0", Some(8), 510, 0)]))
            .unwrap()
            .unwrap();
        assert_eq!(t.observation.interfaces[0].rx_pps, 100.0);
    }

    #[test]
    fn duplicate_names_do_not_make_two_series() {
        let mut rc = RateCalculator::new();
        let s = sample(0, vec![iface("x", None, 0, 0), iface("x", None, 5, 0)]);
        rc.push(&s).unwrap();
        let t = rc
            .push(&sample(100, s.interfaces.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(names(&t), ["x"]);
    }
}
