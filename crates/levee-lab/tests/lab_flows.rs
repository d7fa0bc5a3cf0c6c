//! Lab tests of flow and mirror modes: real exporters in the victim
//! namespace during hping3 floods from the attacker namespace, and the
//! `levee` agent in flow mode (listening on the victim namespace's
//! loopback) or mirror mode (on the victim's veth) must report the incident
//! on the right IP, or prefix, with the right family.
//!
//! - softflowd exporting NetFlow v5, v9 and IPFIX (`-t maxlife=1 -t
//!   expint=1`, so flows are exported within a second);
//! - pmacct's `pmacctd` with the sfprobe plugin exporting sFlow, 1 in 10;
//! - carpet bombing: UDP to random addresses of a /24 routed to the victim
//!   (each IP near its floors, which bunched exports push it over now and
//!   then) must be one incident on the prefix, with no per-IP incidents;
//! - the same carpet bombing escalated to BGP: the agent's gobgpd
//!   speaker announces a FlowSpec rule for the whole /24 to an edge gobgpd,
//!   withdrawn when the incident resolves;
//! - mirror mode on the victim's veth, with on-node mitigation (nftables in
//!   the victim namespace) of the per-IP incident.
//!
//! Needs root, iproute2, hping3, coreutils, softflowd, pmacct and nftables; without
//! them the tests skip loudly, except with `CI=true`, where they fail.

use levee_lab::bgp::{write_roas, GoBgpd, BGP_TOOLS, LEVEE_AS};
use levee_lab::process::GroupChild;
use levee_lab::{
    levee_binary, require_lab_with, AgentOptions, AgentProcess, FloodKind, FloodOptions, Lab, Ns,
    ReceivedEvent,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_secs(4);
const QUIET: Duration = Duration::from_secs(3);
/// A flood lasts this long at most; tests stop it once detected.
const FLOOD: Duration = Duration::from_secs(8);
const COLLECTOR: &str = "127.0.0.1:2055";
const CARPET_NET: &str = "198.18.0.0/24";

struct Run {
    lab: Lab,
    agent: AgentProcess,
    work: tempfile::TempDir,
}

impl Run {
    /// A lab and an agent in the victim namespace with `mode` and the
    /// `[networks]`/`[flow]`/`[mirror]` sections in `config`.
    fn start(
        tools: &[(&'static str, &'static str)],
        mode: &str,
        config: impl Fn(&Lab) -> String,
    ) -> Option<Run> {
        if require_lab_with(tools).is_some() {
            return None;
        }
        let bin: PathBuf = levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
        let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
        let work = tempfile::Builder::new()
            .prefix("levee-lab-flow-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let cfg = work.path().join("agent.toml");
        std::fs::write(&cfg, config(&lab)).unwrap();
        let mut o = AgentOptions::new(&bin, work.path());
        o.baseline_warmup = WARMUP;
        o.quiet_period = QUIET;
        o.extra_args = vec![
            "--mode".into(),
            mode.into(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        let mut agent =
            AgentProcess::spawn(&lab, &o).unwrap_or_else(|e| panic!("spawning the agent: {e}"));
        agent
            .wait_for_event("baseline_ready", WARMUP + Duration::from_secs(15))
            .unwrap_or_else(|| panic!("no baseline_ready\n{}", agent.diagnostics()));
        Some(Run { lab, agent, work })
    }

    /// Runs a flood until the agent reports an incident matching `target`,
    /// then lets it resolve. Returns incident_started.
    fn attack(&mut self, what: &str, opts: &FloodOptions, target: &str) -> ReceivedEvent {
        if let Some(e) = self.agent.wait_for_event("source_error", Duration::ZERO) {
            panic!("source_error before {what}: {}", e.value);
        }
        let mut flood = self
            .lab
            .flood_with(opts)
            .unwrap_or_else(|e| panic!("{what}: flood: {e}"));
        let started = self
            .agent
            .wait_for(FLOOD, |e| e.kind() == "incident_started");
        flood.stop();
        let started = started.unwrap_or_else(|| {
            panic!(
                "{what}: no incident within {FLOOD:?} of the flood\n{}",
                self.agent.diagnostics()
            )
        });
        assert_eq!(
            started.str("target"),
            Some(target),
            "{what}: {}",
            started.value
        );
        let id = started.str("incident_id").unwrap_or_default().to_string();
        let resolved = self.agent.wait_for(Duration::from_secs(20), |e| {
            e.kind() == "incident_resolved" && e.str("incident_id") == Some(id.as_str())
        });
        assert!(
            resolved.is_some(),
            "{what}: incident did not resolve\n{}",
            self.agent.diagnostics()
        );
        started
    }
}

fn flow_config(lab: &Lab, networks: &str) -> String {
    let _ = lab;
    format!(
        "[networks]\nmonitored_networks = [\"{networks}\"]\n\
         [flow]\nlisten = [\"{COLLECTOR}\"]\n"
    )
}

/// softflowd in the victim namespace, exporting `version` to the agent.
fn softflowd(lab: &Lab, work: &Path, version: &str) -> GroupChild {
    let mut c = lab.command_in(Ns::Victim, "softflowd");
    c.args(["-d", "-i", lab.victim_if(), "-n", COLLECTOR, "-v", version])
        .args(["-t", "maxlife=1", "-t", "expint=1"])
        .arg("-c")
        .arg(work.join(format!("softflowd-{version}.ctl")))
        .arg("-p")
        .arg(work.join(format!("softflowd-{version}.pid")));
    GroupChild::spawn(c).unwrap_or_else(|e| panic!("softflowd -v {version}: {e}"))
}

fn family(e: &ReceivedEvent) -> &str {
    e.str("family").unwrap_or("(none)")
}

#[test]
fn softflowd_netflow_v5_v9_and_ipfix_floods_are_per_ip_incidents() {
    let tools = [("softflowd", "softflowd")];
    let Some(mut run) = Run::start(&tools, "flow", |lab| {
        flow_config(lab, &format!("{}/32", lab.victim_ip()))
    }) else {
        return;
    };
    let victim = run.lab.victim_ip().to_string();
    let mut failures = Vec::new();
    for (version, kind, want) in [
        ("5", FloodKind::Syn, "syn_flood"),
        ("9", FloodKind::Udp, "udp_flood"),
        ("10", FloodKind::Icmp, "icmp_flood"),
    ] {
        let mut sf = softflowd(&run.lab, run.work.path(), version);
        std::thread::sleep(Duration::from_secs(1));
        let what = format!("softflowd -v {version}, {} flood", kind.name());
        let e = run.attack(&what, &FloodOptions::new(kind, FLOOD), &victim);
        if family(&e) != want {
            failures.push(format!(
                "{what}: family {} (want {want}): {}",
                family(&e),
                e.value
            ));
        }
        assert!(
            sf.is_running(),
            "softflowd -v {version} died: {}",
            sf.stderr_text()
        );
        sf.kill();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn pmacct_sfprobe_sflow_flood_is_a_per_ip_incident() {
    let tools = [("pmacctd", "pmacct")];
    let Some(mut run) = Run::start(&tools, "flow", |lab| {
        flow_config(lab, &format!("{}/32", lab.victim_ip()))
    }) else {
        return;
    };
    let conf = run.work.path().join("pmacctd.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\npcap_interface: {}\nplugins: sfprobe\nsfprobe_receiver: {COLLECTOR}\n\
             sfprobe_agentip: {}\nsampling_rate: 10\n",
            run.lab.victim_if(),
            run.lab.victim_ip()
        ),
    )
    .unwrap();
    let mut c = run.lab.command_in(Ns::Victim, "pmacctd");
    c.arg("-f").arg(&conf);
    let mut pm = GroupChild::spawn(c).unwrap_or_else(|e| panic!("pmacctd: {e}"));
    std::thread::sleep(Duration::from_secs(2));
    let victim = run.lab.victim_ip().to_string();
    let e = run.attack(
        "sfprobe, SYN flood",
        &FloodOptions::new(FloodKind::Syn, FLOOD),
        &victim,
    );
    assert_eq!(family(&e), "syn_flood", "{}", e.value);
    // sFlow samples 1 in 10: the estimate is scaled back up.
    assert_eq!(e.u64("sampling_rate"), Some(10), "{}", e.value);
    assert!(e.f64("value").unwrap_or(0.0) > 2_000.0, "{}", e.value);
    assert!(pm.is_running(), "pmacctd died: {}", pm.stderr_text());
}

#[test]
fn carpet_bombing_a_slash_24_is_one_prefix_incident() {
    let tools = [("softflowd", "softflowd")];
    let Some(mut run) = Run::start(&tools, "flow", |lab| flow_config(lab, CARPET_NET)) else {
        return;
    };
    // Inside the lab only: the attacker routes the /24 to the victim, whose
    // veth (and softflowd on it) sees the packets; the victim drops them.
    let via = run.lab.victim_ip().to_string();
    run.lab
        .exec_in(
            Ns::Attacker,
            &["ip", "route", "add", CARPET_NET, "via", &via],
        )
        .unwrap_or_else(|e| panic!("route: {e}"));
    let mut sf = softflowd(&run.lab, run.work.path(), "9");
    std::thread::sleep(Duration::from_secs(1));
    let mut opts = FloodOptions::new(FloodKind::Udp, FLOOD);
    opts.rand_dest = Some("198.18.0.x".into());
    let e = run.attack("carpet bombing", &opts, CARPET_NET);
    assert_eq!(family(&e), "udp_flood", "{}", e.value);
    // Its IPs are folded into it, however their own thin rates jitter
    // (softflowd's export bursts, more so under load): they are counted
    // as members, and none has an incident of its own.
    assert!(e.u64("members").unwrap_or(0) >= 16, "{}", e.value);
    let per_ip: Vec<String> = run
        .agent
        .events_of("incident_started")
        .iter()
        .filter_map(|e| e.str("target").map(String::from))
        .filter(|t| t != CARPET_NET)
        .collect();
    assert!(
        per_ip.is_empty(),
        "IP incidents for a thin spread: {per_ip:?}"
    );
    assert!(sf.is_running(), "softflowd died: {}", sf.stderr_text());
}

/// Flow mode has no packet on the node to drop for a prefix incident; the
/// network does it: a FlowSpec rule whose destination is the attacked /24
/// reaches the edge router's RIB and leaves it when the incident resolves.
#[test]
fn carpet_bombing_is_filtered_upstream_for_the_whole_prefix() {
    let mut tools = vec![("softflowd", "softflowd")];
    tools.extend_from_slice(BGP_TOOLS);
    let bgp = tempfile::tempdir().unwrap();
    let roas = write_roas(bgp.path(), "198.18.0.0/15").unwrap();
    let Some(mut run) = Run::start(&tools, "flow", |lab| {
        format!(
            "{}[bgp]\nenabled = true\norigin_as = {LEVEE_AS}\nprefixes = [\"{CARPET_NET}\"]\nttl = \"60s\"\n\
             [bgp.thresholds]\nrate_limit = \"1Mbps\"\ndiscard = \"2Mbps\"\nrtbh = \"10Gbps\"\ndivert = \"20Gbps\"\n\
             [bgp.rpki]\nroa_file = \"{}\"\n\
             [bgp.speaker]\nkind = \"gobgp\"\ngobgp_api = \"127.0.0.1:50074\"\n",
            flow_config(lab, CARPET_NET),
            roas.display()
        )
    }) else {
        return;
    };
    let vic = IpAddr::V4(run.lab.victim_ip());
    let (mut edge, _speaker) =
        GoBgpd::edge_and_speaker(&run.lab, bgp.path(), 50073, 50074).unwrap();
    run.lab
        .exec_in(
            Ns::Attacker,
            &["ip", "route", "add", CARPET_NET, "via", &vic.to_string()],
        )
        .unwrap_or_else(|e| panic!("route: {e}"));
    let mut sf = softflowd(&run.lab, run.work.path(), "9");
    std::thread::sleep(Duration::from_secs(1));
    let mut opts = FloodOptions::new(FloodKind::Udp, FLOOD);
    opts.rand_dest = Some("198.18.0.x".into());
    let mut flood = run.lab.flood_with(&opts).unwrap();
    let want = format!("[destination: {CARPET_NET}]");
    let rib = edge.wait_rib("ipv4-flowspec", FLOOD, |r| r.contains(&want));
    flood.stop();
    let rib = rib.unwrap_or_else(|e| {
        panic!(
            "no FlowSpec rule for {CARPET_NET} in the edge RIB: {e}\n{}",
            run.agent.diagnostics()
        )
    });
    assert!(rib.contains("==udp"), "{rib}");
    let applied = run
        .agent
        .wait_for(Duration::ZERO, |e| {
            e.kind() == "mitigation_applied" && e.str("executor") == Some("gobgp")
        })
        .unwrap_or_else(|| panic!("no gobgp mitigation_applied\n{}", run.agent.diagnostics()));
    assert_eq!(applied.str("target"), Some(CARPET_NET), "{}", applied.value);
    run.agent
        .wait_for(Duration::from_secs(30), |e| e.kind() == "incident_resolved")
        .unwrap_or_else(|| panic!("no incident_resolved\n{}", run.agent.diagnostics()));
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
        !r.contains(&want)
    })
    .unwrap_or_else(|e| panic!("the /24 rule stayed after the incident resolved: {e}"));
    assert!(sf.is_running(), "softflowd died: {}", sf.stderr_text());
}

/// Mirror mode on the victim's veth, with on-node mitigation on: the
/// per-IP incident is mitigated like any other (an nftables rule in the
/// victim namespace, removed when the incident resolves).
#[test]
fn mirror_mode_catches_the_flood_per_ip_and_mitigates_it() {
    let Some(mut run) = Run::start(&[("nft", "nftables")], "mirror", |lab| {
        format!(
            "[networks]\nmonitored_networks = [\"{}/32\"]\n[mirror]\ninterface = \"{}\"\n\
             [mitigation]\nenabled = true\nexecutor = \"nftables\"\nttl = \"30s\"\n",
            lab.victim_ip(),
            lab.victim_if()
        )
    }) else {
        return;
    };
    let t0 = Instant::now();
    let victim = run.lab.victim_ip().to_string();
    let e = run.attack(
        "mirror, SYN flood",
        &FloodOptions::new(FloodKind::Syn, FLOOD),
        &victim,
    );
    assert_eq!(family(&e), "syn_flood", "{}", e.value);
    assert_eq!(e.str("victim"), Some(victim.as_str()));
    assert!(t0.elapsed() < Duration::from_secs(30));
    let id = e.str("incident_id").unwrap_or_default().to_string();
    let applied: Vec<ReceivedEvent> = run
        .agent
        .events_of("mitigation_applied")
        .into_iter()
        .filter(|m| m.str("incident_id") == Some(id.as_str()))
        .collect();
    if !applied.iter().any(|m| {
        m.str("executor") == Some("nftables")
            && m.str("rule").is_some_and(|r| r.contains(victim.as_str()))
    }) {
        panic!("no nftables rule for {victim}\n{}", run.agent.diagnostics());
    }
    for m in &applied {
        let mid = m.str("mitigation_id").unwrap_or_default().to_string();
        let back = run.agent.wait_for(Duration::from_secs(10), |r| {
            r.kind() == "mitigation_rolled_back" && r.str("mitigation_id") == Some(mid.as_str())
        });
        assert!(back.is_some(), "mitigation {mid} never rolled back");
    }
    let rules = run
        .lab
        .exec_in_stdout(Ns::Victim, &["nft", "list", "ruleset"])
        .unwrap_or_else(|e| panic!("nft list ruleset: {e}"));
    assert!(!rules.contains("levee"), "left behind:\n{rules}");
}
