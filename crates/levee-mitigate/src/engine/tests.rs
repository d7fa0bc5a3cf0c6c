//! Engine tests over in-memory executors: the whole lifecycle, the safety
//! rules, TTLs, the guard and reconcile, without root.

use super::*;
use crate::config::{GuardConfig, Step};
use crate::host::HostAddr;
use levee_model::IncidentMetric;
use levee_packet::classify::fingerprint::{IpPrefix, PortMatch};
use levee_packet::{IpProtocol, TcpFlags};
use std::sync::{Arc, Mutex};

use crate::testing::Fake;

const NOW: i64 = 1_795_225_450_000;

fn host() -> HostInfo {
    HostInfo {
        addresses: vec![HostAddr {
            interface: "eth0".into(),
            addr: "10.0.0.2".parse().unwrap(),
            prefix_len: 24,
            scope: "global".into(),
        }],
        gateways: vec!["10.0.0.1".parse().unwrap()],
    }
}

struct Rig {
    engine: MitigationEngine,
    nft: Fake,
    sysctl: Fake,
    dir: tempfile::TempDir,
}

fn rig(cfg: MitigationConfig) -> Rig {
    let nft = Fake::new(ExecutorKind::Nftables);
    let sysctl = Fake::new(ExecutorKind::Sysctl);
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
    let engine = MitigationEngine::new(
        cfg,
        host(),
        vec![Box::new(nft.clone()), Box::new(sysctl.clone())],
        Some(audit),
        EngineOptions { seed: 1 },
    )
    .unwrap();
    Rig {
        engine,
        nft,
        sysctl,
        dir,
    }
}

fn enabled() -> MitigationConfig {
    MitigationConfig {
        enabled: true,
        allowlist: vec!["192.0.2.0/24".parse().unwrap()],
        ..MitigationConfig::default()
    }
}

fn syn_fp(srcs: &[&str]) -> Fingerprint {
    Fingerprint {
        ip_version: Some(4),
        protocol: Some(IpProtocol(6)),
        src_ports: None,
        dst_ports: Some(vec![PortMatch::Port(80)]),
        tcp_flags: Some(vec![TcpFlags(TcpFlags::SYN)]),
        icmp_types: None,
        length: Some([40, 60]),
        ttl: None,
        fragment: Some(false),
        non_first_fragments: false,
        src_prefixes: srcs
            .iter()
            .map(|s| s.parse::<IpPrefix>().unwrap())
            .collect(),
        coverage: 0.99,
        baseline_match: None,
        sample_packets: 1000,
        any_of: vec![],
    }
}

fn incident(family: Option<&str>, fp: Option<Fingerprint>, metrics: &[&str]) -> IncidentInfo {
    IncidentInfo {
        incident_id: "inc-1".into(),
        target: "eth0".into(),
        metric: "rx_pps".into(),
        value: 1e5,
        baseline: 1e3,
        ratio: 100.0,
        threshold: 3e3,
        metrics: metrics
            .iter()
            .map(|m| IncidentMetric {
                target: "eth0".into(),
                metric: m.to_string(),
                value: 1e5,
                baseline: 1e3,
                threshold: 3e3,
                ratio: 100.0,
                peak: 1e5,
            })
            .collect(),
        started_at: levee_model::timefmt::rfc3339_millis(NOW),
        family: family.map(String::from),
        confidence: Some(90),
        fingerprint: fp.map(|f| serde_json::to_value(f).unwrap()),
        details: Default::default(),
    }
}

fn kinds(ev: &[EventBody]) -> Vec<&'static str> {
    ev.iter().map(|e| e.kind()).collect()
}

fn audit_steps(r: &Rig) -> Vec<String> {
    let text = std::fs::read_to_string(r.dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(
        crate::audit::verify(text.as_bytes()).unwrap(),
        Ok(text.lines().count() as u64)
    );
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn syn_flood_lifecycle_with_fingerprint() {
    let mut r = rig(enabled());
    let ev = r.engine.on_incident_started(
        &incident(
            Some("syn_flood"),
            Some(syn_fp(&["203.0.113.0/24", "192.0.2.0/24"])),
            &["rx_pps"],
        ),
        NOW,
    );
    // source_block, rate_limit, syn_cookies: each previewed then applied.
    assert_eq!(
        kinds(&ev),
        [
            "mitigation_previewed",
            "mitigation_applied",
            "mitigation_previewed",
            "mitigation_applied",
            "mitigation_previewed",
            "mitigation_applied"
        ]
    );
    let EventBody::MitigationApplied { info, .. } = &ev[1] else {
        panic!()
    };
    assert_eq!(info.executor, "nftables");
    assert_eq!(info.action, "source_block");
    assert_eq!(info.rule, "nftables source_block");
    assert_eq!(info.incident_id, "inc-1");
    let EventBody::MitigationApplied { info, .. } = &ev[5] else {
        panic!()
    };
    assert_eq!(
        info.executor, "sysctl",
        "SYN cookies go to their natural executor"
    );
    // The allowlisted /24 never reaches a rule.
    let block = r
        .nft
        .k()
        .applied
        .values()
        .find(|s| s.action == Action::SourceBlock)
        .unwrap()
        .clone();
    assert_eq!(
        block.sources,
        vec!["203.0.113.0/24".parse::<IpPrefix>().unwrap()]
    );
    assert_eq!(block.interface.as_deref(), Some("eth0"));
    let limit = r
        .nft
        .k()
        .applied
        .values()
        .find(|s| matches!(s.action, Action::RateLimit { .. }))
        .unwrap()
        .clone();
    assert_eq!(
        limit.matches[0].dst_ports,
        vec![PortMatch::Port(80)],
        "from the fingerprint"
    );
    assert!(limit.sources.is_empty());
    assert_eq!(r.sysctl.k().applied.len(), 1);
    assert_eq!(r.engine.counters().len(), 3);

    let ev = r.engine.on_incident_resolved("inc-1", NOW + 5_000);
    assert_eq!(kinds(&ev), ["mitigation_rolled_back"; 3]);
    let EventBody::MitigationRolledBack {
        reason, expired, ..
    } = &ev[0]
    else {
        panic!()
    };
    assert_eq!((reason.as_str(), *expired), ("incident resolved", false));
    assert!(r.nft.k().applied.is_empty() && r.sysctl.k().applied.is_empty());
    assert_eq!(r.engine.live().count(), 0);
    let steps = audit_steps(&r);
    assert_eq!(steps.iter().filter(|s| *s == "previewed").count(), 3);
    assert_eq!(steps.iter().filter(|s| *s == "verified").count(), 3);
    assert_eq!(steps.iter().filter(|s| *s == "rolled_back").count(), 3);
}

#[test]
fn without_fingerprint_family_templates_and_no_source_steps() {
    let mut r = rig(enabled());
    let ev = r
        .engine
        .on_incident_started(&incident(Some("syn_flood"), None, &["rx_pps"]), NOW);
    // No sources known: source_block is skipped, not failed.
    assert_eq!(kinds(&ev).len(), 4, "{ev:#?}");
    let limit = r.nft.k().applied.values().next().unwrap().clone();
    assert_eq!(limit.matches[0].tcp_flags, vec![TcpFlags(TcpFlags::SYN)]);
}

#[test]
fn without_classification_metrics_choose_and_drop_is_refused() {
    let mut cfg = enabled();
    cfg.profiles.0.insert(
        Family::MultiVector,
        vec![Step::new(crate::ActionKind::Drop)],
    );
    let mut r = rig(cfg);
    let ev = r
        .engine
        .on_incident_started(&incident(None, None, &["rx_pps", "tcp_pps"]), NOW);
    assert_eq!(kinds(&ev), ["mitigation_failed"]);
    let EventBody::MitigationFailed { error, .. } = &ev[0] else {
        panic!()
    };
    assert!(
        error.contains("refused") && error.contains("tcp to 10.0.0.2"),
        "{error}"
    );
    assert!(r.nft.k().applied.is_empty());
}

#[test]
fn dry_run_previews_only() {
    let mut r = rig(MitigationConfig {
        dry_run: true,
        ..enabled()
    });
    let ev = r
        .engine
        .on_incident_started(&incident(Some("syn_flood"), None, &[]), NOW);
    assert_eq!(kinds(&ev), ["mitigation_previewed", "mitigation_previewed"]);
    let EventBody::MitigationPreviewed(info) = &ev[0] else {
        panic!()
    };
    assert!(info.dry_run);
    assert!(r.nft.k().applied.is_empty() && r.sysctl.k().applied.is_empty());
    assert!(r.engine.on_incident_resolved("inc-1", NOW + 1).is_empty());
    assert_eq!(r.engine.live().count(), 0);
}

#[test]
fn the_cap_refuses_more_rules() {
    let mut r = rig(MitigationConfig {
        max_rules: 1,
        ..enabled()
    });
    let ev = r
        .engine
        .on_incident_started(&incident(Some("syn_flood"), None, &[]), NOW);
    assert_eq!(
        kinds(&ev),
        [
            "mitigation_previewed",
            "mitigation_applied",
            "mitigation_failed"
        ]
    );
    let EventBody::MitigationFailed { error, .. } = &ev[2] else {
        panic!()
    };
    assert!(error.contains("max_rules"), "{error}");
}

#[test]
fn apply_failure_is_reported_and_audited() {
    let mut r = rig(enabled());
    r.nft.k().fail_apply = true;
    let ev = r
        .engine
        .on_incident_started(&incident(Some("ack_flood"), None, &[]), NOW);
    assert_eq!(kinds(&ev), ["mitigation_previewed", "mitigation_failed"]);
    assert_eq!(r.engine.live().count(), 0);
    assert!(audit_steps(&r).contains(&"failed".to_string()));
}

#[test]
fn ttl_is_refreshed_while_open_and_expires_after() {
    let mut r = rig(MitigationConfig {
        ttl: Duration::from_secs(60),
        ..enabled()
    });
    r.engine
        .on_incident_started(&incident(Some("ack_flood"), None, &[]), NOW);
    assert!(r.engine.tick(NOW + 10_000).is_empty());
    assert!(
        r.nft.k().refreshed.is_empty(),
        "more than half the TTL left"
    );
    assert!(r.engine.tick(NOW + 40_000).is_empty());
    assert_eq!(
        r.nft.k().refreshed.len(),
        1,
        "refreshed while the incident is open"
    );
    // The engine loses track of the incident (as if the resolve was never
    // delivered): the refreshed TTL runs out and the rule expires.
    r.engine.open.clear();
    assert!(r.engine.tick(NOW + 90_000).is_empty());
    let ev = r.engine.tick(NOW + 100_001);
    assert_eq!(kinds(&ev), ["mitigation_rolled_back"]);
    let EventBody::MitigationRolledBack {
        expired, reason, ..
    } = &ev[0]
    else {
        panic!()
    };
    assert!(*expired && reason.contains("TTL"), "{reason}");
    assert!(audit_steps(&r).contains(&"expired".to_string()));
}

struct FakeMeter(Arc<Mutex<u64>>);

impl LegitMeter for FakeMeter {
    fn sample(&mut self) -> Result<BTreeMap<IpAddr, u64>, String> {
        Ok([("10.0.0.2".parse().unwrap(), *self.0.lock().unwrap())].into())
    }
}

#[test]
fn collateral_guard_rolls_back_a_rule_that_cuts_legitimate_traffic() {
    let count = Arc::new(Mutex::new(0u64));
    let mut r = rig(MitigationConfig {
        guard: GuardConfig {
            grace: Duration::from_secs(2),
            ..GuardConfig::default()
        },
        ..enabled()
    });
    r.engine = r.engine.with_meter(Box::new(FakeMeter(count.clone())));
    // 40 s of 200 legitimate packets/s before the attack.
    for s in 0..40 {
        *count.lock().unwrap() = s * 200;
        r.engine.tick(NOW - 40_000 + s as i64 * 1000);
    }
    let mut inc = incident(Some("ack_flood"), None, &[]);
    inc.started_at = levee_model::timefmt::rfc3339_millis(NOW);
    r.engine.on_incident_started(&inc, NOW);
    // After the rule, legitimate traffic stops.
    let frozen = *count.lock().unwrap();
    let mut rolled = Vec::new();
    for s in 1..=8 {
        *count.lock().unwrap() = frozen + s;
        rolled.extend(r.engine.tick(NOW + s as i64 * 1000));
    }
    assert_eq!(kinds(&rolled), ["mitigation_rolled_back"], "{rolled:#?}");
    let EventBody::MitigationRolledBack { reason, .. } = &rolled[0] else {
        panic!()
    };
    assert!(
        reason.contains("collateral damage") && reason.contains("200.0"),
        "{reason}"
    );
    assert!(r.nft.k().applied.is_empty());
}

#[test]
fn collateral_guard_keeps_a_rule_that_spares_legitimate_traffic() {
    let count = Arc::new(Mutex::new(0u64));
    let mut r = rig(enabled());
    r.engine = r.engine.with_meter(Box::new(FakeMeter(count.clone())));
    for s in 0..60 {
        *count.lock().unwrap() = s * 200;
        let ev = r.engine.tick(NOW - 40_000 + s as i64 * 1000);
        if s == 40 {
            r.engine
                .on_incident_started(&incident(Some("ack_flood"), None, &[]), NOW);
        }
        assert!(ev.is_empty(), "{ev:#?}");
    }
    assert_eq!(r.nft.k().applied.len(), 1);
}

#[test]
fn reconcile_removes_orphans_only() {
    let mut r = rig(enabled());
    r.engine
        .on_incident_started(&incident(Some("ack_flood"), None, &[]), NOW);
    r.nft
        .k()
        .leftovers
        .push((Uuid::from_u128(99), "nft rule of a dead agent".into()));
    let ev = r.engine.reconcile(NOW);
    assert_eq!(kinds(&ev), ["mitigation_reconciled"]);
    let EventBody::MitigationReconciled { executor, removed } = &ev[0] else {
        panic!()
    };
    assert_eq!(
        (executor.as_str(), removed.clone()),
        ("nftables", vec!["nft rule of a dead agent".to_string()])
    );
    assert_eq!(r.nft.k().applied.len(), 1, "the live rule stays");
    assert!(
        r.engine.reconcile(NOW).is_empty(),
        "nothing left to reconcile"
    );
    assert!(audit_steps(&r).contains(&"reconciled".to_string()));
}

#[test]
fn preview_applies_nothing_and_shutdown_removes_all() {
    let mut r = rig(enabled());
    let view = IncidentView::from_info(&incident(Some("udp_flood"), None, &[]));
    let ev = r.engine.preview(&view, NOW);
    assert!(
        kinds(&ev).iter().all(|k| *k == "mitigation_previewed"),
        "{ev:#?}"
    );
    assert!(r.nft.k().applied.is_empty());
    assert_eq!(r.engine.live().count(), 0);
    r.engine
        .on_incident_started(&incident(Some("udp_flood"), None, &[]), NOW);
    assert_eq!(r.nft.k().applied.len(), 2);
    let ev = r.engine.shutdown(NOW + 1);
    assert_eq!(kinds(&ev), ["mitigation_rolled_back"; 2]);
    assert!(r.nft.k().applied.is_empty());
}

#[test]
fn the_packet_views_victim_narrows_the_target() {
    let mut h = host();
    h.addresses.push(HostAddr {
        interface: "eth0".into(),
        addr: "10.0.0.3".parse().unwrap(),
        prefix_len: 24,
        scope: "global".into(),
    });
    let nft = Fake::new(ExecutorKind::Nftables);
    let mut e = MitigationEngine::new(
        enabled(),
        h,
        vec![Box::new(nft.clone())],
        None,
        EngineOptions::default(),
    )
    .unwrap();
    let mut i = incident(Some("ack_flood"), None, &[]);
    e.on_incident_started(&i, NOW);
    let dsts: Vec<IpAddr> = nft
        .k()
        .applied
        .values()
        .flat_map(|s| s.matches.iter().map(|m| m.dst))
        .collect();
    assert_eq!(dsts.len(), 2, "both addresses of eth0 without a victim");
    e.on_incident_resolved("inc-1", NOW);
    i.details.victim = Some("10.0.0.3".into());
    e.on_incident_started(&i, NOW);
    let dsts: Vec<IpAddr> = nft
        .k()
        .applied
        .values()
        .flat_map(|s| s.matches.iter().map(|m| m.dst))
        .collect();
    assert_eq!(dsts, vec!["10.0.0.3".parse::<IpAddr>().unwrap()]);
}

#[test]
fn unknown_target_and_traffic_spike() {
    let mut r = rig(enabled());
    let mut i = incident(Some("syn_flood"), None, &[]);
    i.target = "eth9".into();
    let ev = r.engine.on_incident_started(&i, NOW);
    assert_eq!(kinds(&ev), ["mitigation_failed"]);
    assert!(r
        .engine
        .on_incident_started(&incident(Some("traffic_spike"), None, &[]), NOW)
        .is_empty());
}

#[test]
fn unavailable_default_executor_is_an_error() {
    let e = MitigationEngine::new(enabled(), host(), vec![], None, EngineOptions::default());
    assert!(matches!(
        e,
        Err(EngineError::Unavailable(ExecutorKind::Nftables, _))
    ));
    let bad = MitigationConfig {
        max_rules: 0,
        ..enabled()
    };
    let e = MitigationEngine::new(bad, host(), vec![], None, EngineOptions::default());
    assert!(matches!(e, Err(EngineError::Config(_))));
}

#[test]
fn with_xdp_configured_what_it_cannot_do_goes_to_nftables() {
    let xdp = Fake::new(ExecutorKind::Xdp);
    let nft = Fake::new(ExecutorKind::Nftables);
    let mut cfg = enabled();
    cfg.executor = ExecutorKind::Xdp;
    cfg.profiles.0.insert(
        Family::SynFlood,
        vec![
            Step::new(crate::ActionKind::SourceBlock),
            Step {
                action: crate::ActionKind::RateLimit,
                pps: Some(100),
                burst: Some(10),
                ..Step::new(crate::ActionKind::RateLimit)
            },
        ],
    );
    let mut engine = MitigationEngine::new(
        cfg,
        host(),
        vec![Box::new(xdp.clone()), Box::new(nft.clone())],
        None,
        EngineOptions { seed: 1 },
    )
    .unwrap();
    let fp = syn_fp(&["203.0.113.0/24"]);
    let ev = engine.on_incident_started(&incident(Some("syn_flood"), Some(fp), &["rx_pps"]), NOW);
    assert!(!kinds(&ev).contains(&"mitigation_failed"), "{ev:#?}");
    let on_xdp: Vec<Action> = xdp.k().applied.values().map(|r| r.action).collect();
    let on_nft: Vec<Action> = nft.k().applied.values().map(|r| r.action).collect();
    assert_eq!(on_xdp, [Action::SourceBlock]);
    assert_eq!(
        on_nft,
        [Action::RateLimit {
            pps: 100,
            burst: 10
        }]
    );
}
