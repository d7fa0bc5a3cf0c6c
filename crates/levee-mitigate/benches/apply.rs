//! Detection -> rule active: how long each executor takes to put a
//! mitigation in place, and how long the engine takes from
//! `on_incident_started` to its return (plan, render, apply, verify), p50 /
//! p95 / max over N runs. A rule is active when its tool returns: nft,
//! iptables, ipset, tc and ip commit to the kernel before they exit.
//!
//! Runs in a lab namespace (needs root, iproute2, hping3, coreutils and the
//! tools; a missing one is skipped loudly). The benchmark thread enters the
//! victim namespace itself, so commands run exactly as the agent runs them
//! there (no `ip netns exec` in the timing).
//!
//! `cargo bench -p levee-mitigate --bench apply [-- N]`

use levee_lab::stats::summarize;
use levee_lab::{require_lab, Lab};
use levee_mitigate::exec::ipset::IpsetExecutor;
use levee_mitigate::exec::iptables::{ChainHandle, IptablesExecutor};
use levee_mitigate::exec::nft::NftExecutor;
use levee_mitigate::exec::route::RouteExecutor;
use levee_mitigate::exec::sysctl::SysctlExecutor;
use levee_mitigate::exec::tc::TcExecutor;
use levee_mitigate::exec::{Availability, Executor};
use levee_mitigate::matcher::from_family;
use levee_mitigate::runner::SystemRunner;
use levee_mitigate::{Action, MitigationConfig, RuleSpec};
use levee_model::{EventBody, IncidentInfo};
use levee_packet::Family;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Enters `ns`; returns the namespace left, to go back to.
fn enter_netns(ns: &str) -> std::fs::File {
    let here = std::fs::File::open("/proc/thread-self/ns/net").expect("own netns");
    setns(&format!("/run/netns/{ns}"));
    here
}

fn setns(path: &str) {
    let fd = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on a valid namespace fd; affects this (single) thread only.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

fn rule(lab: &Lab, action: Action, family: Family) -> RuleSpec {
    let dst = IpAddr::V4(lab.victim_ip());
    let ttl = Duration::from_secs(60);
    RuleSpec {
        id: uuid::Uuid::now_v7(),
        incident_id: "bench".into(),
        action,
        matches: from_family(family, dst).unwrap_or_default(),
        sources: vec![format!("{}/32", lab.attacker_ip()).parse().unwrap()],
        interface: Some(lab.victim_if().to_string()),
        ttl,
        expires_unix_ms: levee_lab::clock::wall_ms() + 60_000,
    }
}

/// (what, how measured, executor, a fresh rule per run)
type Case<'a> = (
    &'static str,
    &'static str,
    Box<dyn Executor>,
    Box<dyn Fn() -> RuleSpec + 'a>,
);

struct Row {
    what: String,
    how: String,
    result: String,
}

fn measure(
    n: usize,
    exec: &mut dyn Executor,
    mk: &dyn Fn() -> RuleSpec,
) -> Result<Vec<f64>, String> {
    if let Availability::Missing(why) = exec.availability() {
        return Err(why);
    }
    let mut ms = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let r = mk();
        let t0 = Instant::now();
        exec.apply(&r).map_err(|e| e.to_string())?;
        let dt = t0.elapsed().as_secs_f64() * 1000.0;
        exec.remove(&r).map_err(|e| e.to_string())?;
        if i >= 3 {
            ms.push(dt); // the first three warm caches and build the scaffolding
        }
    }
    Ok(ms)
}

fn fmt(v: &[f64]) -> String {
    match summarize(v) {
        Some(s) => format!("{:.1} / {:.1} / {:.1} ms (n={})", s.p50, s.p95, s.max, s.n),
        None => "-".into(),
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    if require_lab().is_some() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let work = tempfile::tempdir().unwrap();
    let home = enter_netns(lab.victim_ns());
    let run = SystemRunner::new;
    let mut rows = Vec::new();
    let mut cases: Vec<Case> = vec![
        (
            "nftables rate_limit (SYN, netdev ingress)",
            "`nft -f -` batch: scaffolding + timed set + rule",
            Box::new(NftExecutor::new(Box::new(run()), vec![], true)),
            Box::new(|| {
                rule(
                    &lab,
                    Action::RateLimit {
                        pps: 1000,
                        burst: 100,
                    },
                    Family::SynFlood,
                )
            }),
        ),
        (
            "nftables drop (ACK, outside connections, inet)",
            "`nft -f -` batch into the conntrack-aware chain",
            Box::new(NftExecutor::new(Box::new(run()), vec![], true)),
            Box::new(|| rule(&lab, Action::Drop, Family::AckFlood)),
        ),
        (
            "iptables rate_limit (SYN)",
            "`iptables -w -A LEVEE …` (chain made once)",
            Box::new(IptablesExecutor::new(
                Box::new(run()),
                ChainHandle::default(),
            )),
            Box::new(|| {
                rule(
                    &lab,
                    Action::RateLimit {
                        pps: 1000,
                        burst: 100,
                    },
                    Family::SynFlood,
                )
            }),
        ),
        (
            "ipset source_block",
            "`ipset create` + `ipset add` + one `iptables -A`",
            Box::new(IpsetExecutor::new(Box::new(run()), ChainHandle::default())),
            Box::new(|| rule(&lab, Action::SourceBlock, Family::SynFlood)),
        ),
        (
            "tc shape (SYN)",
            "`ip link add` ifb + `tc qdisc` tbf + `tc filter` u32/mirred",
            Box::new(TcExecutor::new(Box::new(run()), vec![])),
            Box::new(|| rule(&lab, Action::Shape { bps: 64_000 }, Family::SynFlood)),
        ),
        (
            "null route (blackhole)",
            "`ip route add blackhole … proto 171`",
            Box::new(RouteExecutor::new(Box::new(run()))),
            Box::new(|| rule(&lab, Action::Blackhole, Family::SynFlood)),
        ),
        (
            "SYN cookies (sysctl)",
            "`sysctl -n` + state file + `sysctl -w`",
            Box::new(SysctlExecutor::new(
                Box::new(run()),
                Some(work.path().join("sc.prev")),
            )),
            Box::new(|| rule(&lab, Action::SynCookies { mode: 2 }, Family::SynFlood)),
        ),
    ];
    for (what, how, exec, mk) in cases.iter_mut() {
        let result = match measure(n, exec.as_mut(), mk.as_ref()) {
            Ok(v) => fmt(&v),
            Err(e) => format!("skipped: {e}"),
        };
        rows.push(Row {
            what: format!("apply: {what}"),
            how: how.to_string(),
            result,
        });
    }

    // The engine as the agent calls it, nftables executor.
    let cfg = MitigationConfig {
        enabled: true,
        ..MitigationConfig::default()
    };
    let mut engine =
        levee_mitigate::system::build(cfg, work.path(), run(), vec![], 1).expect("engine");
    let (mut total, mut first) = (Vec::new(), Vec::new());
    for i in 0..n + 3 {
        let info = IncidentInfo {
            incident_id: format!("bench-{i}"),
            target: lab.victim_if().into(),
            metric: "rx_pps".into(),
            value: 1e5,
            baseline: 1e3,
            ratio: 100.0,
            threshold: 3e3,
            metrics: vec![],
            started_at: levee_model::timefmt::rfc3339_millis(levee_lab::clock::wall_ms()),
            family: Some("ack_flood".into()),
            confidence: Some(90),
            fingerprint: None,
            details: Default::default(),
        };
        let t0 = Instant::now();
        let ev = engine.on_incident_started(&info, levee_lab::clock::wall_ms());
        let dt = t0.elapsed().as_secs_f64() * 1000.0;
        let applied = ev.iter().find_map(|e| match e {
            EventBody::MitigationApplied { apply_ms, .. } => Some(*apply_ms),
            _ => None,
        });
        assert!(applied.is_some(), "{ev:#?}");
        if i >= 3 {
            total.push(dt);
            first.push(applied.unwrap_or(f64::NAN));
        }
        engine.on_incident_resolved(&info.incident_id, levee_lab::clock::wall_ms());
    }
    rows.push(Row {
        what: "engine: incident_started -> rule active (ack_flood, nftables)".into(),
        how: "`on_incident_started` call to return: plan, safety, render, apply, read-back verify, audit fsync".into(),
        result: fmt(&total),
    });
    rows.push(Row {
        what: "engine: of which the tool's apply".into(),
        how: "`apply_ms` of the mitigation_applied event".into(),
        result: fmt(&first),
    });

    // Leave the namespace before the lab deletes it (it kills what is inside).
    drop(engine);
    // SAFETY: as above, with the fd of the namespace this thread came from.
    let rc = unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns back: {}", std::io::Error::last_os_error());
    println!(
        "\n{}; levee {}\n",
        levee_lab::machine::describe(),
        env!("CARGO_PKG_VERSION")
    );
    println!("| what | how measured | result p50 / p95 / max | target |");
    println!("| --- | --- | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | detection -> rule active <= 50 ms (p95) |",
            r.what, r.how, r.result
        );
    }
}
