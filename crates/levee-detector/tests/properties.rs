//! Properties of the detector the issue pins down: replay determinism, no alert
//! on a constant stream, a 10x step alerts within the confirmation window, and
//! attack samples never enter the baseline.

use levee_detector::{Detector, DetectorOutput, DetectorSettings};
use levee_model::{ConnCounts, InterfaceRates, Metric, SeriesKey, Target, TickObservation};
use proptest::prelude::*;

const T0: i64 = 1_795_225_450_000;

fn settings(tick_ms: u64, warmup: u64) -> DetectorSettings {
    DetectorSettings {
        tick_ms,
        warmup_samples: warmup,
        quiet_period_ms: 2_000,
        ..Default::default()
    }
}

fn obs(i: i64, tick_ms: u64, rx_pps: f64) -> TickObservation {
    let dt = tick_ms as f64 / 1000.0;
    TickObservation {
        unix_ms: T0 + i * tick_ms as i64,
        dt,
        interfaces: vec![InterfaceRates {
            name: "eth0".into(),
            rx_pps,
            rx_bps: rx_pps * 600.0 * 8.0,
            ..Default::default()
        }],
        tcp_pps: rx_pps * 0.9,
        udp_pps: rx_pps * 0.05,
        icmp_pps: 1.0,
        conns: Some(ConnCounts {
            established: 20,
            syn_recv: 0,
            time_wait: 3,
            total: 30,
        }),
        ..Default::default()
    }
}

fn run(d: &mut Detector, stream: &[TickObservation]) -> Vec<(usize, DetectorOutput)> {
    stream
        .iter()
        .enumerate()
        .flat_map(|(i, o)| d.observe(o).into_iter().map(move |e| (i, e)))
        .collect()
}

fn started(out: &[(usize, DetectorOutput)]) -> Vec<usize> {
    out.iter()
        .filter(|(_, e)| matches!(e, DetectorOutput::Started(_)))
        .map(|(i, _)| *i)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn replay_is_deterministic(rates in proptest::collection::vec(0.0f64..200_000.0, 50..400), seed in any::<u64>()) {
        let stream: Vec<_> = rates.iter().enumerate().map(|(i, r)| obs(i as i64, 100, *r)).collect();
        let s = settings(100, 5);
        let a = run(&mut Detector::new(s.clone(), seed), &stream);
        let b = run(&mut Detector::new(s, seed), &stream);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn constant_stream_never_alerts(rate in 0.0f64..10_000_000.0, tick_ms in prop::sample::select(vec![100u64, 250, 1000])) {
        let s = settings(tick_ms, 10);
        let mut d = Detector::new(s, 1);
        let stream: Vec<_> = (0..(60_000 / tick_ms as i64)).map(|i| obs(i, tick_ms, rate)).collect();
        let out = run(&mut d, &stream);
        prop_assert!(started(&out).is_empty(), "alerted on a constant {rate} pps");
    }

    #[test]
    fn ten_x_step_alerts_within_confirmation(base in 2_000.0f64..50_000.0, warm_s in 5u64..40) {
        let tick_ms = 100u64;
        let s = settings(tick_ms, warm_s);
        let confirm = s.confirm_ticks_effective() as usize;
        let mut d = Detector::new(s, 7);
        // Learn for warm_s seconds (+1 s margin), then step to 10x.
        let learn_ticks = ((warm_s + 1) * 1000 / tick_ms) as i64;
        let mut stream: Vec<_> = (0..learn_ticks).map(|i| obs(i, tick_ms, base)).collect();
        stream.extend((learn_ticks..learn_ticks + 20).map(|i| obs(i, tick_ms, base * 10.0)));
        let out = run(&mut d, &stream);
        let starts = started(&out);
        prop_assert_eq!(starts.len(), 1);
        // The step's first tick is learn_ticks; confirmation needs `confirm` ticks.
        prop_assert_eq!(starts[0], learn_ticks as usize + confirm - 1);
    }

    #[test]
    fn baseline_excludes_attack_samples(base in 2_000.0f64..20_000.0, attack_s in 30i64..400) {
        let tick_ms = 1000u64;
        let s = settings(tick_ms, 20);
        let mut d = Detector::new(s, 3);
        let key = SeriesKey::new(Target::Interface("eth0".into()), Metric::RxPps);
        let mut stream: Vec<_> = (0..30).map(|i| obs(i, tick_ms, base)).collect();
        run(&mut d, &stream);
        let before = d.threshold_of(&key).unwrap();
        stream = (30..30 + attack_s).map(|i| obs(i, tick_ms, base * 20.0)).collect();
        let out = run(&mut d, &stream);
        prop_assert_eq!(started(&out).len(), 1);
        prop_assert!(d.has_open_incident(), "a long attack stays an incident");
        prop_assert_eq!(d.threshold_of(&key).unwrap(), before, "attack leaked into the baseline");
    }
}

#[test]
fn microburst_is_not_an_attack() {
    let s = settings(100, 5);
    let mut d = Detector::new(s, 1);
    let mut stream: Vec<_> = (0..100).map(|i| obs(i, 100, 3_000.0)).collect();
    // Two ticks at 100x, then back to normal: shorter than the 3-tick confirmation.
    stream.extend((100..102).map(|i| obs(i, 100, 300_000.0)));
    stream.extend((102..200).map(|i| obs(i, 100, 3_000.0)));
    assert!(started(&run(&mut d, &stream)).is_empty());
}

#[test]
fn full_lifecycle_started_updated_resolved() {
    let s = settings(100, 5);
    let mut d = Detector::new(s, 9);
    let mut stream: Vec<_> = (0..60).map(|i| obs(i, 100, 3_000.0)).collect();
    // A 10 s flood; its TCP share (50%) is below the baseline's (90%).
    stream.extend((60..160).map(|i| TickObservation {
        tcp_pps: 75_000.0,
        ..obs(i, 100, 150_000.0)
    }));
    stream.extend((160..220).map(|i| obs(i, 100, 3_000.0))); // 6 s quiet
    let out = run(&mut d, &stream);
    let kinds: Vec<&str> = out
        .iter()
        .map(|(_, e)| match e {
            DetectorOutput::BaselineReady { .. } => "ready",
            DetectorOutput::Started(_) => "started",
            DetectorOutput::Updated(_) => "updated",
            DetectorOutput::Resolved(..) => "resolved",
        })
        .collect();
    assert_eq!(kinds.first(), Some(&"ready"));
    assert_eq!(kinds.iter().filter(|k| **k == "started").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "resolved").count(), 1);
    let updates = kinds.iter().filter(|k| **k == "updated").count();
    assert!(
        (10..=12).contains(&updates),
        "one update per second of the 12 s incident, got {updates}"
    );

    let (si, start) = out
        .iter()
        .find_map(|(i, e)| {
            if let DetectorOutput::Started(s) = e {
                Some((*i, s))
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(si, 62, "third flood tick");
    assert_eq!(start.target, "eth0");
    assert_eq!(start.metric, "rx_pps");
    assert_eq!(start.baseline, 3_000.0);
    assert_eq!(start.ratio, 50.0);
    assert!(start
        .metrics
        .iter()
        .any(|m| m.metric == "tcp_pps" && m.target == "host"));

    let (ri, info, summary) = out
        .iter()
        .find_map(|(i, e)| {
            if let DetectorOutput::Resolved(a, b) = e {
                Some((*i, a, b))
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(ri, 160 + 20, "2 s quiet period after the first quiet tick");
    assert_eq!(info.incident_id, start.incident_id);
    assert_eq!(summary.peak, 150_000.0);
    assert!(
        (summary.duration_s - 11.8).abs() < 1e-9,
        "{}",
        summary.duration_s
    );
    // 98 flood ticks of the open incident (62..160) x 15,000 packets, plus quiet ticks.
    assert_eq!(summary.total_packets, 98 * 15_000 + 20 * 300);
}

#[test]
fn snapshot_round_trip_keeps_warmth() {
    let s = settings(1000, 20);
    let mut d = Detector::new(s.clone(), 1);
    let stream: Vec<_> = (0..12).map(|i| obs(i, 1000, 5_000.0)).collect();
    run(&mut d, &stream);
    let snap = d.snapshot(T0 + 12_000);
    let json = snap.to_json();
    let mut restored = Detector::new(s, 2);
    let report = restored
        .restore(&levee_detector::BaselineSnapshot::from_json(&json).unwrap())
        .unwrap();
    assert_eq!(report.max_samples, 12);
    // 8 more seconds complete the 20 s warm-up: ready at the 8th tick, not the 20th.
    let more: Vec<_> = (12..40).map(|i| obs(i, 1000, 5_000.0)).collect();
    let out = run(&mut restored, &more);
    let ready = out
        .iter()
        .find(|(_, e)| matches!(e, DetectorOutput::BaselineReady { .. }))
        .unwrap()
        .0;
    assert_eq!(ready, 7);
}

#[test]
fn rename_moves_baseline() {
    let s = settings(1000, 5);
    let mut d = Detector::new(s, 1);
    run(
        &mut d,
        &(0..10).map(|i| obs(i, 1000, 5_000.0)).collect::<Vec<_>>(),
    );
    d.rename_interface("eth0", "wan0");
    let key = SeriesKey::new(Target::Interface("wan0".into()), Metric::RxPps);
    assert_eq!(d.threshold_of(&key), Some((5_000.0, 15_000.0)));
}

/// A tick carrying per-IP rates: `rates[k]` for IP 203.0.113.k.
fn ip_obs(i: i64, rates: &[f64]) -> TickObservation {
    TickObservation {
        unix_ms: T0 + i * 1000,
        dt: 1.0,
        targets: rates
            .iter()
            .enumerate()
            .filter(|(_, r)| **r > 0.0)
            .map(|(k, r)| levee_model::TargetRates {
                target: Target::Ip(std::net::IpAddr::from([203, 0, 113, k as u8])),
                pps: *r,
                bps: r * 8_000.0,
                flows: r / 4.0,
                tcp_pps: *r,
                udp_pps: 0.0,
                icmp_pps: 0.0,
                alertable: true,
            })
            .collect(),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn per_ip_replay_is_deterministic_and_constant_ips_stay_quiet(
        levels in proptest::collection::vec(0.0f64..1_000_000.0, 1..20),
        victim in 0usize..20,
        seed in any::<u64>(),
    ) {
        let s = settings(1000, 10);
        // 60 s of constant per-IP traffic: no incident, however high.
        let calm: Vec<_> = (0..60).map(|i| ip_obs(i, &levels)).collect();
        let mut d = Detector::new(s.clone(), seed);
        prop_assert!(started(&run(&mut d, &calm)).is_empty());
        // Then one IP (maybe one never seen) gets 20x its level plus the floor.
        let mut attack = levels.clone();
        attack.resize(attack.len().max(victim + 1), 0.0);
        attack[victim] = attack[victim] * 20.0 + 10_000.0;
        let mut stream = calm.clone();
        stream.extend((60..70).map(|i| ip_obs(i, &attack)));
        let a = run(&mut Detector::new(s.clone(), seed), &stream);
        let b = run(&mut Detector::new(s, seed), &stream);
        prop_assert_eq!(&a, &b);
        let starts: Vec<String> = a
            .iter()
            .filter_map(|(_, e)| match e {
                DetectorOutput::Started(i) => Some(i.target.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(starts, vec![format!("203.0.113.{victim}")]);
    }
}

/// Regression: a first-ever target after a silent warm-up (no target at all
/// before the attack) must be warm at once, not learn the attack.
#[test]
fn first_target_after_a_silent_warm_up_alerts() {
    let mut d = Detector::new(settings(1000, 10), 1);
    let mut stream: Vec<_> = (0..15).map(|i| ip_obs(i, &[])).collect();
    stream.extend((15..20).map(|i| ip_obs(i, &[0.0, 0.0, 50_000.0])));
    let out = run(&mut d, &stream);
    assert_eq!(started(&out), [15]);
}

/// A policy from the server retunes a running detector: the new multiplier
/// and floor decide the very next tick, learnt baselines stay, and a change
/// that would reshape the windows is refused without touching anything.
#[test]
fn retune_takes_effect_at_the_next_tick_and_keeps_the_baseline() {
    let s = settings(100, 5);
    let mut d = Detector::new(s.clone(), 3);
    let calm: Vec<_> = (0..100).map(|i| obs(i, 100, 3_000.0)).collect();
    assert!(started(&run(&mut d, &calm)).is_empty());
    let key = SeriesKey::new(Target::Interface("eth0".into()), Metric::RxPps);
    let (base, t) = d.threshold_of(&key).unwrap();
    assert_eq!(t, (base * 3.0).max(2_000.0));

    let mut tighter = s.clone();
    tighter.multiplier = 1.5;
    tighter.floors.insert(Metric::RxPps, 100.0);
    d.retune(tighter).unwrap();
    let (base2, t2) = d.threshold_of(&key).unwrap();
    assert_eq!(base2, base, "the learnt baseline stays");
    assert_eq!(t2, base * 1.5);
    // 2x the baseline: below the old 3x threshold, above the new 1.5x one.
    let step: Vec<_> = (100..110).map(|i| obs(i, 100, 6_000.0)).collect();
    assert!(!started(&run(&mut d, &step)).is_empty());

    let mut reshaped = s.clone();
    reshaped.window = 600;
    reshaped.multiplier = 0.5;
    let fields: Vec<String> = d
        .retune(reshaped)
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["multiplier", "window"]);
    assert_eq!(d.settings().multiplier, 1.5, "nothing changed");
}
