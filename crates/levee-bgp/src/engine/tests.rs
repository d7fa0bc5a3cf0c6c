use super::*;
use crate::rpki::Roa;
use crate::scrub::RecordingScrubber;
use crate::speaker::SpeakerError;
use levee_model::IncidentMetric;
use std::sync::{Arc, Mutex};

/// A speaker that records (op, rule) and can be told to fail.
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<(Op, Rule)>>>,
}

impl Recorder {
    fn live(&self) -> Vec<Rule> {
        let mut live: Vec<Rule> = Vec::new();
        for (op, r) in self.log.lock().unwrap().iter() {
            // As on the wire: one route per NLRI.
            live.retain(|x| x.key() != r.key());
            if *op == Op::Announce {
                live.push(r.clone());
            }
        }
        live
    }
}

impl Speaker for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError> {
        Ok(crate::render::exabgp::command(rule, op)?)
    }
    fn announce(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        self.log.lock().unwrap().push((Op::Announce, rule.clone()));
        Ok(())
    }
    fn withdraw(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        self.log.lock().unwrap().push((Op::Withdraw, rule.clone()));
        Ok(())
    }
}

const M: f64 = 1e6;

fn cfg() -> BgpConfig {
    let mut c = BgpConfig {
        enabled: true,
        origin_as: 64500,
        prefixes: vec![
            "203.0.113.0/24".parse().unwrap(),
            "198.51.100.0/24".parse().unwrap(),
        ],
        ..BgpConfig::default()
    };
    c.rpki.roa_file = Some("unused".into());
    c
}

fn roas() -> RoaSet {
    RoaSet::new(vec![
        Roa {
            prefix: "203.0.113.0/24".parse().unwrap(),
            max_len: 24,
            asn: 64500,
        },
        Roa {
            prefix: "198.51.100.0/24".parse().unwrap(),
            max_len: 24,
            asn: 64666,
        },
    ])
}

fn incident(id: &str, victim: &str, bps: f64) -> IncidentInfo {
    IncidentInfo {
        incident_id: id.into(),
        target: "eth0".into(),
        metric: "rx_bps".into(),
        value: bps,
        baseline: 1e5,
        ratio: bps / 1e5,
        threshold: 1e6,
        metrics: vec![IncidentMetric {
            target: "eth0".into(),
            metric: "rx_bps".into(),
            value: bps,
            baseline: 1e5,
            threshold: 1e6,
            ratio: bps / 1e5,
            peak: bps,
        }],
        started_at: "2026-11-21T00:00:00.000Z".into(),
        family: Some("syn_flood".into()),
        confidence: Some(99),
        fingerprint: None,
        details: levee_model::IncidentDetails {
            victim: Some(victim.into()),
            ..Default::default()
        },
    }
}

fn kinds(evs: &[EventBody]) -> Vec<&'static str> {
    evs.iter().map(|e| e.kind()).collect()
}

fn engine(rec: &Recorder) -> BgpEngine {
    BgpEngine::new(cfg(), Box::new(rec.clone()))
        .with_roas(roas())
        .with_scrubber(Box::new(RecordingScrubber::default()))
}

#[test]
fn escalates_level_by_level_and_withdraws_on_resolve() {
    let rec = Recorder::default();
    let mut e = engine(&rec);
    let i = |bps| EventBody::IncidentUpdated(incident("inc-1", "203.0.113.7", bps));
    assert!(e
        .on_event(
            &EventBody::IncidentStarted(incident("inc-1", "203.0.113.7", 50.0 * M)),
            0
        )
        .is_empty());
    let evs = e.on_event(&i(150.0 * M), 1000);
    assert_eq!(kinds(&evs), ["mitigation_previewed", "mitigation_applied"]);
    let live = rec.live();
    assert!(matches!(&live[0], Rule::Flow(f) if f.actions == [Action::RateLimit(12_500_000)]));
    // Level 2: the discard replaces the rate-limit (announced first).
    let evs = e.on_event(&i(600.0 * M), 2000);
    assert_eq!(
        kinds(&evs),
        [
            "mitigation_previewed",
            "mitigation_applied",
            "mitigation_rolled_back"
        ]
    );
    // Same NLRI: the new announcement replaced the old route; no withdraw
    // was sent (it would have removed the new one).
    assert_eq!(
        rec.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| *op == Op::Withdraw)
            .count(),
        0
    );
    let live = e.live().map(|l| l.rule.clone()).collect::<Vec<_>>();
    assert!(matches!(&live[..], [Rule::Flow(f)] if f.actions == [Action::Discard]));
    // Level 4 at once adds RTBH and the diversion.
    let evs = e.on_event(&i(6000.0 * M), 3000);
    assert_eq!(
        kinds(&evs)
            .iter()
            .filter(|k| **k == "mitigation_applied")
            .count(),
        2
    );
    let rtbh = rec.live().into_iter().find_map(|r| match r {
        Rule::Rtbh(r) => Some(r),
        _ => None,
    });
    let rtbh = rtbh.expect("RTBH announced");
    assert_eq!(rtbh.communities[0], BLACKHOLE);
    assert_eq!(rtbh.prefix.to_string(), "203.0.113.7/32");
    assert!(e
        .live()
        .any(|l| matches!(&l.rule, Rule::Divert(d) if d.prefix.to_string() == "203.0.113.0/24")));
    assert_eq!(e.live_count(), 3);
    // Steady: nothing new.
    assert!(e.on_event(&i(5500.0 * M), 4000).is_empty());
    let resolved = EventBody::IncidentResolved {
        info: incident("inc-1", "203.0.113.7", 0.0),
        summary: levee_model::IncidentResolvedSummary {
            duration_s: 4.0,
            peak: 6e9,
            total_packets: 1,
            total_bytes: 1,
        },
    };
    let evs = e.on_event(&resolved, 5000);
    assert_eq!(kinds(&evs), ["mitigation_rolled_back"; 3]);
    assert!(rec.live().is_empty());
    assert_eq!(e.live_count(), 0);
}

#[test]
fn ttl_lapse_withdraws() {
    let rec = Recorder::default();
    let mut c = cfg();
    c.ttl = std::time::Duration::from_secs(5);
    let mut e = BgpEngine::new(c, Box::new(rec.clone())).with_roas(roas());
    e.on_event(
        &EventBody::IncidentStarted(incident("i", "203.0.113.7", 700.0 * M)),
        0,
    );
    assert_eq!(rec.live().len(), 1);
    assert!(e.tick(4999).is_empty());
    // The attack continues above level 1: refreshed.
    e.on_event(
        &EventBody::IncidentUpdated(incident("i", "203.0.113.7", 300.0 * M)),
        4000,
    );
    assert!(e.tick(8999).is_empty());
    let evs = e.tick(9000);
    assert!(
        matches!(&evs[..], [EventBody::MitigationRolledBack { expired: true, reason, .. }] if reason == "ttl expired")
    );
    assert!(rec.live().is_empty());
}

#[test]
fn refusals_are_events_with_reasons() {
    let rec = Recorder::default();
    let mut e = engine(&rec);
    let evs = e.on_event(
        &EventBody::IncidentStarted(incident("a", "192.0.2.9", 700.0 * M)),
        0,
    );
    match &evs[..] {
        [EventBody::MitigationFailed { error, .. }] => {
            assert!(
                error.starts_with(
                    "refused: destination 192.0.2.9/32 is not inside the tenant's prefixes"
                ),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    let evs = e.on_event(
        &EventBody::IncidentStarted(incident("b", "198.51.100.9", 700.0 * M)),
        0,
    );
    match &evs[..] {
        [EventBody::MitigationFailed { error, .. }] => {
            assert!(error.contains("RPKI-invalid for origin AS64500"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let mut no_victim = incident("c", "x", 700.0 * M);
    no_victim.details.victim = None;
    let evs = e.on_event(&EventBody::IncidentStarted(no_victim), 0);
    assert!(
        matches!(&evs[..], [EventBody::MitigationFailed { error, .. }] if error.contains("no attacked address"))
    );
    assert!(rec.live().is_empty());
}

#[test]
fn rule_cap_refuses_extra_rules() {
    let rec = Recorder::default();
    let mut c = cfg();
    c.max_rules = 2;
    let mut e = BgpEngine::new(c, Box::new(rec.clone())).with_roas(roas());
    for (n, v) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let evs = e.on_event(
            &EventBody::IncidentStarted(incident(&format!("i{n}"), v, 700.0 * M)),
            0,
        );
        if n < 2 {
            assert_eq!(kinds(&evs), ["mitigation_previewed", "mitigation_applied"]);
        } else {
            match &evs[..] {
                [EventBody::MitigationFailed { error, .. }] => {
                    assert!(
                        error.contains("2 BGP rules are live") && error.contains("max_rules = 2"),
                        "{error}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(e.live_count(), 2);
    assert_eq!(e.shutdown(1).len(), 2);
    assert!(rec.live().is_empty());
}

#[test]
fn decisions_are_audited_in_a_verifiable_chain() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("bgp-audit.jsonl");
    let rec = Recorder::default();
    let mut e = engine(&rec).with_audit(AuditLog::open(&path).unwrap());
    e.on_event(
        &EventBody::IncidentStarted(incident("a", "203.0.113.7", 700.0 * M)),
        0,
    );
    e.on_event(
        &EventBody::IncidentStarted(incident("b", "192.0.2.9", 700.0 * M)),
        0,
    );
    e.shutdown(10);
    let text = std::fs::read_to_string(&path).unwrap();
    let steps: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(steps, ["announced", "refused", "withdrawn"]);
    assert!(
        text.contains("covered by 203.0.113.0/24 (ROA 203.0.113.0/24-24 AS64500)"),
        "{text}"
    );
    let n = levee_mitigate::audit::verify(std::fs::File::open(&path).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn observed_rate_falls_back_to_packets() {
    let mut i = incident("a", "203.0.113.7", 1.0);
    i.metric = "rx_pps".into();
    i.value = 1000.0;
    i.metrics[0].metric = "rx_pps".into();
    i.metrics[0].value = 1000.0;
    i.fingerprint = Some(serde_json::json!({"length": [40, 60]}));
    assert_eq!(observed_bps(&i), 1000.0 * 50.0 * 8.0);
}

struct FailingSource;
impl RoaSource for FailingSource {
    fn describe(&self) -> String {
        "test".into()
    }
    fn load(&mut self) -> Result<RoaSet, String> {
        Err("RTR cache 127.0.0.1:1: connection refused".into())
    }
}

#[test]
fn roa_reload_failure_keeps_the_old_set() {
    let rec = Recorder::default();
    let mut e = engine(&rec).with_roa_source(Box::new(FailingSource));
    let evs = e.tick(0);
    assert!(
        matches!(&evs[..], [EventBody::SourceError { error, .. }] if error.contains("keeping 2 ROAs"))
    );
    assert!(e.tick(1).is_empty(), "not due again yet");
}

#[test]
fn retune_changes_the_level_the_next_rate_reaches() {
    let rec = Recorder::default();
    let mut e = engine(&rec);
    e.on_event(
        &EventBody::IncidentStarted(incident("a", "203.0.113.7", 300.0 * M)),
        0,
    );
    let levels = |e: &BgpEngine| {
        e.incidents()
            .flat_map(|(_, _, l)| l.iter().map(|r| r.level))
            .collect::<Vec<_>>()
    };
    assert_eq!(levels(&e), [Level::RateLimit]);
    let mut t = e.config().thresholds;
    t.discard = crate::config::Bps(200_000_000);
    e.retune(t, BTreeMap::new(), 7);
    assert_eq!(e.config().max_rules, 7);
    e.on_event(
        &EventBody::IncidentUpdated(incident("a", "203.0.113.7", 300.0 * M)),
        1,
    );
    assert_eq!(levels(&e), [Level::Discard]);
    let (id, state, _) = e.incidents().next().unwrap();
    assert_eq!(id, "a");
    assert!(matches!(
        state,
        State::Active {
            level: Level::Discard,
            ..
        }
    ));
    let out = e.withdraw_everything(2, "withdrawn by admin through the API");
    assert!(
        matches!(&out[..], [EventBody::MitigationRolledBack { reason, .. }] if reason == "withdrawn by admin through the API"),
        "{out:?}"
    );
    assert!(rec.live().is_empty());
    assert_eq!(e.incidents().count(), 0);
}

/// Flow mode's prefix incidents (carpet bombing across a /24): the
/// FlowSpec destination is the whole prefix, level 4 diverts that prefix,
/// and a prefix reaching outside the tenant's is refused.
#[test]
fn prefix_incident_filters_the_whole_prefix() {
    let rec = Recorder::default();
    let mut e = engine(&rec);
    let carpet = |target: &str, bps| {
        let mut i = incident("carpet", "", bps);
        i.target = target.into();
        i.details.victim = None;
        i.family = Some("udp_flood".into());
        EventBody::IncidentStarted(i)
    };
    let evs = e.on_event(&carpet("203.0.113.0/24", 700.0 * M), 0);
    assert!(kinds(&evs).contains(&"mitigation_applied"), "{evs:?}");
    let live = rec.live();
    assert!(
        live.iter().all(|r| matches!(r,
            Rule::Flow(f) if f.spec.dst.map(|d| d.net.to_string()) == Some("203.0.113.0/24".into()))),
        "{live:?}"
    );
    let evs = e.on_event(&carpet("203.0.113.0/24", 6000.0 * M), 1000);
    assert!(!kinds(&evs).contains(&"mitigation_failed"), "{evs:?}");
    assert!(e
        .live()
        .any(|l| matches!(&l.rule, Rule::Divert(d) if d.prefix.to_string() == "203.0.113.0/24")));
    assert!(e
        .live()
        .any(|l| matches!(&l.rule, Rule::Rtbh(r) if r.prefix.to_string() == "203.0.113.0/24")));
    // A /16 is wider than the tenant's /24s: refused, nothing announced.
    let rec2 = Recorder::default();
    let mut e2 = engine(&rec2);
    let mut wide = carpet("203.0.0.0/16", 700.0 * M);
    if let EventBody::IncidentStarted(i) = &mut wide {
        i.incident_id = "wide".into();
    }
    let evs = e2.on_event(&wide, 0);
    let failed: Vec<&String> = evs
        .iter()
        .filter_map(|e| match e {
            EventBody::MitigationFailed { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|f| f.contains("203.0.0.0/16")),
        "{evs:?}"
    );
    assert!(rec2.live().is_empty());
}
