//! The real program in the real kernel (`BPF_PROG_TEST_RUN`, no interface
//! needed) against the Rust model (`ModelMaps`, which decodes with
//! levee-packet): same rules, same frames -> same verdicts and the same
//! counters, on generated frames and on generated frames with random bytes
//! overwritten (a mutational fuzz of the C parser). Needs root; fails on CI
//! without it.

mod common;

use levee_packet::classify::IpPrefix;
use levee_xdp::{
    exact_matches, FingerprintMatch, ModelMaps, Range, RuleId, RuleSet, TcpFlagsMatch, Verdict,
    XdpAction, XdpFilter,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::net::IpAddr;

#[test]
fn xdp_program_is_built_on_ci() {
    if levee_lab::prereq::is_ci() {
        if let Err(e) = levee_xdp::available() {
            panic!("CI=true but {e}");
        }
    } else if let Err(e) = levee_xdp::available() {
        eprintln!("!!! levee-xdp built without its program: {e}");
    }
}

/// Removes every source and rule.
fn clear(f: &mut XdpFilter) {
    let prefixes: Vec<IpPrefix> = f.sources().keys().copied().collect();
    for p in prefixes {
        f.remove_source(p).unwrap();
    }
    let ids: Vec<RuleId> = f.rules().iter().map(|(id, _)| *id).collect();
    for id in ids {
        f.remove_rule(id).unwrap();
    }
    assert!(f.counters().unwrap().is_empty());
}

fn prefix() -> impl Strategy<Value = IpPrefix> {
    prop_oneof![
        (
            common::v4_src(),
            proptest::sample::select(&[16u8, 24, 32][..])
        )
            .prop_map(|(a, len)| {
                IpPrefix {
                    addr: IpAddr::from(a),
                    len,
                }
            }),
        (
            common::v6_src(),
            proptest::sample::select(&[16u8, 48, 128][..])
        )
            .prop_map(|(a, len)| {
                IpPrefix {
                    addr: IpAddr::from(a),
                    len,
                }
            }),
    ]
}

/// Rules as an agent would install them: a fingerprint's exact set or its
/// covering rule, under one id.
fn rules() -> impl Strategy<Value = Vec<(RuleId, FingerprintMatch)>> {
    proptest::collection::vec((0u32..6, common::fingerprint(), any::<bool>()), 0..5).prop_map(
        |fps| {
            let mut out = Vec::new();
            for (id, fp, exact) in fps {
                let ms = if exact {
                    exact_matches(&fp)
                } else {
                    vec![FingerprintMatch::from(&fp)]
                };
                out.extend(ms.into_iter().map(|m| (RuleId(id), m)));
            }
            out.truncate(levee_xdp::MAX_RULES);
            out
        },
    )
}

#[test]
fn kernel_program_matches_the_model() {
    if !common::require_xdp() {
        return;
    }
    let filter = RefCell::new(XdpFilter::load().expect("loading the XDP program"));
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let case = (
        rules(),
        proptest::collection::vec((prefix(), 0u32..6), 0..4),
        proptest::collection::vec(common::mutated_frame(), 1..24),
    );
    let result = runner.run(&case, |(rules, sources, frames)| {
        let mut f = filter.borrow_mut();
        clear(&mut f);
        let mut model = RuleSet::new(ModelMaps::default()).unwrap();
        for (id, m) in &rules {
            let (k, want) = (f.add_rule(*id, m), model.add_rule(*id, m));
            prop_assert_eq!(
                k.is_ok(),
                want.is_ok(),
                "add_rule {} {}: {:?} vs {:?}",
                id,
                m,
                k,
                want
            );
        }
        for (p, id) in &sources {
            let (k, want) = (
                f.add_source(*p, RuleId(*id)),
                model.add_source(*p, RuleId(*id)),
            );
            prop_assert_eq!(k.is_ok(), want.is_ok(), "add_source {} {}", p, id);
        }
        let before = f.totals().unwrap();
        for frame in &frames {
            let got = f
                .test_run(frame, 1)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let want = model.maps_mut().run(frame);
            let want_action = match want {
                Verdict::Pass => XdpAction::Pass,
                Verdict::Drop { .. } => XdpAction::Drop,
            };
            prop_assert_eq!(
                got.action,
                want_action,
                "frame {:02x?} ({:?}) under rules {:?} and sources {:?}",
                frame,
                levee_packet::decode::decode_ethernet(frame),
                f.rules(),
                f.sources()
            );
        }
        prop_assert_eq!(f.counters().unwrap(), model.counters().unwrap());
        let after = f.totals().unwrap();
        let m = model.totals().unwrap();
        prop_assert_eq!(after.seen.packets - before.seen.packets, m.seen.packets);
        prop_assert_eq!(after.seen.bytes - before.seen.bytes, m.seen.bytes);
        prop_assert_eq!(
            after.dropped.packets - before.dropped.packets,
            m.dropped.packets
        );
        prop_assert_eq!(after.dropped.bytes - before.dropped.bytes, m.dropped.bytes);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn syn(spec_tpids: Vec<u16>, dport: u16) -> Vec<u8> {
    common::build(&common::FrameSpec {
        tpids: spec_tpids,
        ip: common::Ip::V4 {
            src: [10, 0, 1, 1],
            options_words: 0,
            frag: common::Frag::None,
        },
        ttl: 64,
        proto: 6,
        len_field: common::LenField::Exact,
        sport: 40000,
        dport,
        tcp_flags: 0x02,
        icmp_type: 0,
        payload: 0,
        truncate: None,
    })
}

#[test]
fn known_frames_rules_counters_and_longest_prefix() {
    if !common::require_xdp() {
        return;
    }
    let mut f = XdpFilter::load().unwrap();
    let syn80 = FingerprintMatch {
        protocol: Some(6),
        dst_ports: Some(Range::one(80)),
        tcp_flags: Some(TcpFlagsMatch::exact(0x02)),
        ..Default::default()
    };
    f.add_rule(RuleId(1), &syn80).unwrap();
    let run = |f: &XdpFilter, frame: &[u8]| f.test_run(frame, 1).unwrap().action;
    assert_eq!(run(&f, &syn(vec![], 80)), XdpAction::Drop);
    assert_eq!(
        run(&f, &syn(vec![0x88a8, 0x8100], 80)),
        XdpAction::Drop,
        "QinQ"
    );
    assert_eq!(run(&f, &syn(vec![], 81)), XdpAction::Pass);
    let c = f.counters().unwrap()[&RuleId(1)];
    assert_eq!(c.packets, 2);
    assert_eq!(c.bytes, 60 + 62, "padded 54-byte frame, 62-byte QinQ frame");

    // Longest prefix wins the count; removal restores the shorter one.
    f.add_source("10.0.0.0/16".parse().unwrap(), RuleId(2))
        .unwrap();
    f.add_source("10.0.1.0/24".parse().unwrap(), RuleId(3))
        .unwrap();
    assert_eq!(run(&f, &syn(vec![], 81)), XdpAction::Drop);
    let c = f.counters().unwrap();
    assert_eq!((c[&RuleId(2)].packets, c[&RuleId(3)].packets), (0, 1));
    assert_eq!(
        f.remove_source("10.0.1.0/24".parse().unwrap()).unwrap(),
        Some(RuleId(3))
    );
    assert_eq!(run(&f, &syn(vec![], 81)), XdpAction::Drop);
    assert_eq!(f.counters().unwrap()[&RuleId(2)].packets, 1);
    assert!(!f.counters().unwrap().contains_key(&RuleId(3)));

    // Removing returns the last counters and lets traffic through.
    f.remove_source("10.0.0.0/16".parse().unwrap()).unwrap();
    let last = f.remove_rule(RuleId(1)).unwrap();
    assert_eq!(last.packets, 2);
    assert_eq!(run(&f, &syn(vec![], 80)), XdpAction::Pass);
    assert!(f.counters().unwrap().is_empty());
    let t = f.totals().unwrap();
    assert_eq!((t.seen.packets, t.dropped.packets), (6, 4));
}

#[test]
fn bad_rules_are_refused_before_the_kernel() {
    if !common::require_xdp() {
        return;
    }
    let mut f = XdpFilter::load().unwrap();
    let e = f
        .add_rule(RuleId(7), &FingerprintMatch::default())
        .unwrap_err();
    assert!(e.to_string().contains("rule 7"), "{e}");
    let e = f
        .add_source("0.0.0.0/0".parse().unwrap(), RuleId(7))
        .unwrap_err();
    assert!(e.to_string().contains("0.0.0.0/0"), "{e}");
    let frame = syn(vec![], 80);
    assert_eq!(f.test_run(&frame, 1).unwrap().action, XdpAction::Pass);
}
