//! The whole path in the lab: `levee agent` with `[bgp] enabled` in the
//! victim namespace announcing through its own gobgpd to an edge gobgpd in
//! the attacker namespace. A paced SYN flood crosses level 1 (FlowSpec
//! rate-limit appears in the edge RIB); a full flood crosses level 2 (the
//! same match, now discard); when the incident resolves the edge RIB is
//! empty again, and the BGP audit log verifies. Thresholds are scaled down
//! so a namespace flood crosses them; the rates are the incident's own.

use levee_lab::bgp::{write_roas, GoBgpd, BGP_TOOLS, LAB_NET};
use levee_lab::{require_lab_with, AgentOptions, AgentProcess, FloodKind, FloodOptions, Lab};
use std::net::IpAddr;
use std::time::Duration;

#[test]
fn agent_escalates_a_flood_into_the_edge_router() {
    if require_lab_with(BGP_TOOLS).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let vic = IpAddr::V4(lab.victim_ip());
    let (mut edge, _speaker) = GoBgpd::edge_and_speaker(&lab, work.path(), 50071, 50072).unwrap();

    let roas = write_roas(work.path(), LAB_NET).unwrap();
    let net = ipnet::IpNet::new(vic, 24).unwrap().trunc();
    let config = work.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[bgp]\nenabled = true\norigin_as = 64500\nprefixes = [\"{net}\"]\nttl = \"60s\"\n\
             [bgp.thresholds]\nrate_limit = \"1Mbps\"\ndiscard = \"25Mbps\"\nrtbh = \"10Gbps\"\ndivert = \"20Gbps\"\n\
             [bgp.rpki]\nroa_file = \"{}\"\n\
             [bgp.speaker]\nkind = \"gobgp\"\ngobgp_api = \"127.0.0.1:50072\"\n",
            roas.display()
        ),
    )
    .unwrap();
    let bin = levee_lab::levee_binary().unwrap();
    let mut opts = AgentOptions::new(&bin, work.path().join("agent"));
    opts.baseline_warmup = Duration::from_secs(10);
    opts.quiet_period = Duration::from_secs(3);
    opts.extra_args = vec!["--config".into(), config.to_string_lossy().into_owned()];
    let mut agent = AgentProcess::spawn(&lab, &opts).unwrap();
    let wait = |agent: &mut AgentProcess, kind: &str, secs: u64| match agent
        .wait_for_event(kind, Duration::from_secs(secs))
    {
        Some(e) => e,
        None => {
            let stderr = agent.stderr_text();
            panic!(
                "no {kind} within {secs} s; events {:#?}\nstderr:\n{stderr}",
                agent.events()
            )
        }
    };
    wait(&mut agent, "baseline_ready", 40);
    let host = format!("[destination: {vic}/32]");

    // A paced flood: a few Mbit/s, level 1.
    let mut paced = FloodOptions::new(FloodKind::Syn, Duration::from_secs(6));
    paced.interval_us = Some(100);
    let mut f1 = lab.flood_with(&paced).unwrap();
    let started = wait(&mut agent, "incident_started", 8);
    let applied = agent
        .wait_for(Duration::from_secs(8), |e| {
            e.kind() == "mitigation_applied" && e.str("executor") == Some("gobgp")
        })
        .unwrap_or_else(|| panic!("no gobgp mitigation_applied; events {:#?}", agent.events()));
    assert!(
        applied
            .str("action")
            .unwrap_or_default()
            .contains("level 1"),
        "{:?}",
        applied.str("action")
    );
    let rule = applied.str("rule").unwrap_or_default().to_string();
    assert!(
        rule.contains("ipv4-flowspec add") && rule.contains(&format!("destination {vic}/32")),
        "{rule}"
    );
    let rib = edge
        .wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
            r.contains(&host)
        })
        .unwrap();
    assert!(rib.contains("rate:") && rib.contains("==tcp"), "{rib}");
    eprintln!(
        "level 1 in the edge RIB (family {:?}):\n{rib}",
        started.str("family")
    );
    f1.wait().unwrap();

    // The full flood: tens of Mbit/s, level 2.
    let mut f2 = lab.flood(FloodKind::Syn, Duration::from_secs(6)).unwrap();
    let l2 = agent
        .wait_for(Duration::from_secs(10), |e| {
            e.kind() == "mitigation_applied"
                && e.str("action").is_some_and(|a| a.contains("level 2"))
        })
        .unwrap_or_else(|| panic!("no level 2; events {:#?}", agent.events()));
    assert_eq!(l2.str("incident_id"), started.str("incident_id"));
    let rib = edge
        .wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
            r.contains("discard") && !r.contains("rate:")
        })
        .unwrap();
    assert!(rib.contains(&host), "{rib}");
    f2.wait().unwrap();

    wait(&mut agent, "incident_resolved", 30);
    let back = agent
        .wait_for(Duration::from_secs(5), |e| {
            e.kind() == "mitigation_rolled_back" && e.str("reason") == Some("incident resolved")
        })
        .unwrap_or_else(|| panic!("nothing withdrawn on resolve; events {:#?}", agent.events()));
    assert_eq!(back.str("mitigation_id"), l2.str("mitigation_id"));
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
        !r.contains(&host)
    })
    .unwrap();
    agent.stop().unwrap();
    let log = std::fs::read(opts.state_dir().join("bgp-audit.jsonl")).unwrap();
    assert!(levee_mitigate::audit::verify(&log[..]).unwrap().is_ok());
    let text = String::from_utf8_lossy(&log);
    assert!(
        text.contains("\"step\":\"announced\"") && text.contains("\"step\":\"withdrawn\""),
        "{text}"
    );
}
