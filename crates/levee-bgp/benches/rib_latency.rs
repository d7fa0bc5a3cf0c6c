//! Detection event -> FlowSpec route present in the edge router's RIB, and
//! resolve -> route gone: the time from handing `incident_started` (or
//! `incident_resolved`) to `BgpEngine::on_event` until the edge gobgpd's
//! RIB shows (or no longer shows) the rule, p50 / p95 / max over N runs.
//! Levee's speaker is a real gobgpd in the lab's victim namespace, the
//! edge router a second gobgpd in the attacker namespace (one eBGP hop).
//! The edge RIB is polled with `gobgp ... global rib` back to back, so each
//! figure is an upper bound that includes up to one poll (~10-20 ms).
//!
//! `cargo bench -p levee-bgp --bench rib_latency [-- N]` (root, iproute2,
//! gobgpd; skipped loudly without them).

use ipnet::IpNet;
use levee_bgp::config::BgpConfig;
use levee_bgp::engine::BgpEngine;
use levee_bgp::rpki::{Roa, RoaSet};
use levee_bgp::speaker::gobgp::GoBgp;
use levee_bgp::testing::{incident, resolved};
use levee_lab::bgp::{GoBgpd, BGP_TOOLS};
use levee_lab::report::{ms_summary, results_table, Row};
use levee_lab::{require_lab_with, Lab};
use levee_mitigate::runner::SystemRunner;
use levee_model::EventBody;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Milliseconds until the edge RIB does (or does not) hold `needle`.
fn until(edge: &mut GoBgpd, present: bool, needle: &str) -> f64 {
    edge.ms_until("ipv4-flowspec", present, needle, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    if require_lab_with(BGP_TOOLS).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vic = IpAddr::V4(lab.victim_ip());
    let (mut edge, _speaker) = GoBgpd::edge_and_speaker(&lab, dir.path(), 50101, 50102).unwrap();
    let cfg = BgpConfig {
        enabled: true,
        origin_as: 64500,
        prefixes: vec![IpNet::new(vic, 24).unwrap().trunc()],
        ..BgpConfig::default()
    };
    let roas = RoaSet::new(vec![Roa {
        prefix: "10.213.0.0/16".parse().unwrap(),
        max_len: 24,
        asn: 64500,
    }]);
    let speaker = GoBgp::new(
        Box::new(SystemRunner::in_netns(lab.victim_ns())),
        "gobgp",
        Some("127.0.0.1:50102".parse().unwrap()),
    );
    let mut engine = BgpEngine::new(cfg, Box::new(speaker)).with_roas(roas);
    let needle = format!("[destination: {vic}/32]");
    let (mut up, mut down, mut call) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("bench-{i}");
        let t0 = Instant::now();
        let evs = engine.on_event(
            &EventBody::IncidentStarted(incident(&id, vic, 700e6, "syn_flood")),
            i as i64 * 1000,
        );
        call.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(
            evs.iter().any(|e| e.kind() == "mitigation_applied"),
            "{evs:?}"
        );
        until(&mut edge, true, &needle);
        up.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t1 = Instant::now();
        let resolved = resolved(&id, vic, "syn_flood");
        engine.on_event(&resolved, i as i64 * 1000 + 500);
        until(&mut edge, false, &needle);
        down.push(t1.elapsed().as_secs_f64() * 1000.0);
    }
    let peer = "replaced product: < 2 s (its promise; not measured here)";
    let rows = vec![
        Row::new(
            "incident_started -> FlowSpec route in the edge router's RIB",
            "BgpEngine::on_event -> gobgp CLI -> Levee's gobgpd -> eBGP -> edge gobgpd; edge RIB polled with `gobgp global rib`",
            ms_summary(&up),
            "<= 500 ms p95",
            peer.into(),
        ),
        Row::new(
            "incident_resolved -> route gone from the edge RIB",
            "same path, withdraw",
            ms_summary(&down),
            "<= 500 ms p95",
            peer.into(),
        ),
        Row::new(
            "engine call (plan, safety, announce via the gobgp CLI)",
            "BgpEngine::on_event wall time",
            ms_summary(&call),
            "-",
            "-".into(),
        ),
    ];
    println!("\n{}", results_table(&rows));
    println!("{}", levee_lab::machine::describe());
}
