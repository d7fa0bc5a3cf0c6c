//! The whole path with `executor = "xdp"`: `levee agent` with
//! `[mitigation] enabled` inside the victim namespace, a SYN flood from the
//! attacker namespace. The agent must detect it, attach its XDP program to
//! the victim veth with a fingerprint rule, the victim's TCP stack must stop
//! seeing the flood, and after the incident resolves the rule's counter is
//! reported and the interface carries no XDP program any more.
//!
//! Needs root, iproute2, hping3, coreutils and the XDP build (clang,
//! libbpf-dev); CI=true fails without them, elsewhere the test skips loudly.

mod common;

use levee_lab::lab::VICTIM_IF;
use levee_lab::{require_lab, AgentOptions, AgentProcess, FloodKind, Lab, Ns};
use std::time::{Duration, Instant};

fn link(lab: &Lab) -> String {
    lab.exec_in_stdout(Ns::Victim, &["ip", "-d", "link", "show", VICTIM_IF])
        .expect("ip link show")
}

fn tcp_in(lab: &Lab) -> u64 {
    lab.snmp(Ns::Victim).expect("victim snmp").tcp_in_segs
}

#[test]
fn the_agent_drops_a_syn_flood_with_xdp_and_detaches_after() {
    if require_lab().is_some() || !common::require_xdp() {
        return;
    }
    let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
    let work = tempfile::tempdir().unwrap();
    let bin = levee_lab::levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
    let config = work.path().join("agent.toml");
    std::fs::write(
        &config,
        "[mitigation]\nenabled = true\nexecutor = \"xdp\"\nttl = \"30s\"\n\
         [mitigation.profiles]\nsyn_flood = [{ action = \"drop\" }]\n",
    )
    .unwrap();
    let before = link(&lab);
    assert!(!before.contains("xdp"), "{before}");
    let mut opts = AgentOptions::new(&bin, work.path().join("agent"));
    opts.baseline_warmup = Duration::from_secs(10);
    opts.quiet_period = Duration::from_secs(3);
    opts.extra_args = vec!["--config".into(), config.to_string_lossy().into_owned()];
    let mut agent = AgentProcess::spawn(&lab, &opts).unwrap_or_else(|e| panic!("agent: {e}"));
    let wait = |agent: &mut AgentProcess, kind: &str, secs: u64| match agent
        .wait_for_event(kind, Duration::from_secs(secs))
    {
        Some(e) => e,
        None => {
            let events = format!("{:#?}", agent.events());
            panic!(
                "no {kind} within {secs} s; events {events}\nstderr:\n{}",
                agent.stderr_text()
            )
        }
    };
    wait(&mut agent, "baseline_ready", 40);

    let mut flood = lab.flood(FloodKind::Syn, Duration::from_secs(8)).unwrap();
    let started = wait(&mut agent, "incident_started", 5);
    let applied = agent
        .wait_for(Duration::from_secs(5), |e| {
            e.kind() == "mitigation_applied" && e.str("executor") == Some("xdp")
        })
        .unwrap_or_else(|| panic!("no xdp mitigation_applied; events: {:#?}", agent.events()));
    let rule = applied.str("rule").unwrap_or_default().to_string();
    eprintln!(
        "incident_started -> xdp mitigation_applied: {} ms; family {:?}\n{rule}",
        applied.ts_ms().unwrap() - started.ts_ms().unwrap(),
        started.str("family"),
    );
    assert!(
        rule.starts_with(&format!("xdp {VICTIM_IF} drop ")),
        "{rule}"
    );
    let during = link(&lab);
    assert!(
        during.contains("prog/xdp"),
        "no XDP program attached:\n{during}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (a, t) = (tcp_in(&lab), Instant::now());
    std::thread::sleep(Duration::from_millis(1000));
    let delivered = tcp_in(&lab).saturating_sub(a) as f64 / t.elapsed().as_secs_f64();
    flood.check().unwrap();
    eprintln!("with the XDP rule: {delivered:.0} TCP segments/s reach the victim's stack");
    assert!(
        delivered < 1000.0,
        "the flood still reaches the stack: {delivered:.0} seg/s"
    );
    flood.wait().unwrap();

    wait(&mut agent, "incident_resolved", 15);
    let rolled = agent
        .wait_for(Duration::from_secs(5), |e| {
            e.kind() == "mitigation_rolled_back" && e.str("executor") == Some("xdp")
        })
        .unwrap_or_else(|| panic!("no xdp rollback; events: {:#?}", agent.events()));
    assert_eq!(rolled.str("reason"), Some("incident resolved"));
    let dropped = rolled.u64("packets").unwrap_or(0);
    eprintln!("the XDP rule dropped {dropped} packets");
    assert!(dropped > 5_000, "the rule's counter: {dropped}");
    let after = link(&lab);
    assert!(!after.contains("xdp"), "XDP left attached:\n{after}");
    agent.stop().unwrap();
    let log = std::fs::read(opts.state_dir().join("audit.jsonl")).unwrap();
    assert!(levee_mitigate::audit::verify(&log[..]).unwrap().is_ok());
}
