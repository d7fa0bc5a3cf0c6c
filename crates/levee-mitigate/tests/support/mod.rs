//! Shared helpers of the mitigation lab tests: prerequisites (root, the lab
//! tools and the firewall tool under test), a runner inside the victim
//! namespace, and the victim's delivered packet rate.
#![allow(dead_code)]

use levee_lab::cmd::which;
use levee_lab::prereq::{decide, is_ci, Decision};
use levee_lab::{require_lab, Lab, Ns};
use levee_mitigate::runner::SystemRunner;
use std::io::Write;
use std::time::{Duration, Instant};

/// A lab plus what the tests need around it.
pub struct Ctx {
    pub lab: Lab,
    pub work: tempfile::TempDir,
}

/// `None` (after a loud message) when the lab or one of `tools` (tool,
/// Debian package) is missing and we are not on CI; panics on CI.
pub fn ctx(tools: &[(&str, &str)]) -> Option<Ctx> {
    if require_lab().is_some() {
        return None;
    }
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| which(t).is_none())
        .map(|(t, p)| format!("`{t}` (Debian package {p})"))
        .collect();
    match decide(missing, is_ci()) {
        Decision::Run => {}
        Decision::Fail(msg) => panic!("{msg}"),
        Decision::Skip(skip) => {
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING MITIGATION LAB TEST: {skip}\n!!! (with CI=true this is a failure)\n{bar}\n"
            );
            return None;
        }
    }
    let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
    let work = tempfile::Builder::new()
        .prefix("levee-mitigate-lab-")
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"));
    Some(Ctx { lab, work })
}

impl Ctx {
    /// Runs tools inside the victim namespace.
    pub fn runner(&self) -> SystemRunner {
        SystemRunner::in_netns(self.lab.victim_ns())
    }

    /// Runs `argv` in the victim namespace and returns stdout (panics on failure).
    pub fn victim(&self, argv: &[&str]) -> String {
        self.lab
            .exec_in_stdout(Ns::Victim, argv)
            .unwrap_or_else(|e| panic!("{argv:?} in the victim namespace: {e}"))
    }

    /// Runs `argv` in the victim namespace with `input` on stdin (panics on failure).
    pub fn victim_stdin(&self, argv: &[&str], input: &str) -> String {
        use levee_mitigate::runner::{Cmd, CommandRunner};
        let cmd = Cmd::new(argv[0], argv[1..].iter().copied()).with_stdin(input);
        self.runner()
            .check(&cmd)
            .unwrap_or_else(|e| panic!("in the victim namespace: {e}"))
            .stdout
    }

    /// TCP segments delivered to the victim's TCP stack so far
    /// (`Tcp: InSegs` of its `/proc/net/snmp`).
    pub fn tcp_in_segs(&self) -> u64 {
        let text = self.victim(&["cat", "/proc/net/snmp"]);
        levee_sources::snmp::parse_snmp(&text, None)
            .unwrap_or_else(|e| panic!("victim /proc/net/snmp: {e}"))
            .tcp_in_segs
    }

    /// TCP segments per second delivered to the victim over `over`.
    pub fn delivered_tcp_rate(&self, over: Duration) -> f64 {
        let a = self.tcp_in_segs();
        let t = Instant::now();
        std::thread::sleep(over);
        let b = self.tcp_in_segs();
        b.saturating_sub(a) as f64 / t.elapsed().as_secs_f64()
    }
}

/// Polls `f` every 100 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Everything a mitigation could leave behind in the victim namespace, as
/// text: nftables, iptables and ip6tables (without iptables-save's dated
/// comment lines), ipsets, qdiscs and ingress filters, links, routes, and
/// the SYN cookie setting. Compared byte for byte before and after.
/// (IPv6 link-local routes are left out: the kernel adds them a moment
/// after the lab brings the link up, whatever Levee does.)
pub fn snapshot(c: &Ctx) -> String {
    let dev = c.lab.victim_if();
    let script = format!(
        "set -e
         echo '## nft'; nft list ruleset
         echo '## iptables'; iptables-save | grep -v '^#' || true
         echo '## ip6tables'; ip6tables-save | grep -v '^#' || true
         echo '## ipset'; ipset save 2>/dev/null || true
         echo '## qdisc'; tc qdisc show
         echo '## filters'; tc filter show dev {dev} ingress
         echo '## links'; ip -br link show
         echo '## routes'; {{ ip -4 route show table all; ip -6 route show table all; }} | grep -v fe80:: || true
         echo '## sysctl'; sysctl -n net.ipv4.tcp_syncookies"
    );
    c.victim(&["sh", "-c", &script])
}

/// [`snapshot`] with packet and byte counts blanked (rule counters and
/// iptables-save's chain counters), for namespaces where another tool's
/// rules count (ufw's): those move with the traffic whatever Levee does.
pub fn snapshot_without_counters(c: &Ctx) -> String {
    let s = snapshot(c);
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut l = line.to_string();
        while let Some(i) = l.find("counter packets ") {
            let rest = &l[i + "counter packets ".len()..];
            let end = rest
                .find(" bytes ")
                .map(|j| j + " bytes ".len())
                .and_then(|j| {
                    rest[j..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map(|k| j + k)
                        .or(Some(rest.len()))
                })
                .unwrap_or(0);
            l = format!("{}counter{}", &l[..i], &rest[end..]);
        }
        // iptables-save's chain counters: `:OUTPUT ACCEPT [1:96]`.
        if l.starts_with(':') {
            if let (Some(a), true) = (l.rfind('['), l.ends_with(']')) {
                l = format!("{}[-:-]", &l[..a]);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// One flood scenario: a SYN flood runs, `apply` puts the mitigation in
/// place, its counter must rise (when the tool counts) and the victim's
/// delivered TCP rate must fall below `max_share` of the unmitigated rate;
/// `remove` must then restore [`snapshot`] byte for byte.
pub fn flood_scenario(
    c: &Ctx,
    exec: &mut dyn levee_mitigate::exec::Executor,
    rule: &levee_mitigate::RuleSpec,
    max_share: f64,
    counts: bool,
) {
    flood_scenario_with(c, exec, rule, max_share, counts, &snapshot)
}

/// [`flood_scenario`] comparing state with `snap`.
pub fn flood_scenario_with(
    c: &Ctx,
    exec: &mut dyn levee_mitigate::exec::Executor,
    rule: &levee_mitigate::RuleSpec,
    max_share: f64,
    counts: bool,
    snap: &dyn Fn(&Ctx) -> String,
) {
    let before = snap(c);
    let mut flood = c
        .lab
        .flood(levee_lab::FloodKind::Syn, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("flood: {e}"));
    std::thread::sleep(Duration::from_millis(800));
    let unmitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    flood.check().unwrap();
    assert!(
        unmitigated > 5_000.0,
        "the flood should deliver > 5k seg/s, got {unmitigated:.0}"
    );

    exec.apply(rule).unwrap_or_else(|e| panic!("apply: {e}"));
    assert!(
        exec.verify(rule).unwrap(),
        "not in place after apply:\n{}",
        snapshot(c)
    );
    let c0 = exec
        .counters()
        .unwrap()
        .get(&rule.id)
        .copied()
        .unwrap_or_default();
    // Let queues drain before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let mitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    let c1 = exec
        .counters()
        .unwrap()
        .get(&rule.id)
        .copied()
        .unwrap_or_default();
    flood.check().unwrap();
    eprintln!(
        "{}: delivered {unmitigated:.0} seg/s unmitigated, {mitigated:.0} seg/s mitigated; counter {} -> {} packets",
        exec.kind(),
        c0.packets,
        c1.packets
    );
    if counts {
        assert!(
            c1.packets > c0.packets + 1000,
            "counter did not rise: {c0:?} -> {c1:?}"
        );
    }
    assert!(
        mitigated < unmitigated * max_share,
        "delivered rate did not fall below {max_share} of {unmitigated:.0}: {mitigated:.0}"
    );
    exec.remove(rule).unwrap_or_else(|e| panic!("remove: {e}"));
    flood.stop();
    let after = snap(c);
    assert_same(&before, &after);
}

/// Asserts two snapshots are byte-identical, showing the differing lines.
pub fn assert_same(before: &str, after: &str) {
    if before != after {
        let b: Vec<&str> = before.lines().collect();
        let a: Vec<&str> = after.lines().collect();
        let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
        panic!(
            "the namespace's firewall state differs after removal\nonly before: {gone:#?}\nonly after: {new:#?}\n--- after:\n{after}"
        );
    }
}

/// A rule for the lab's victim address, from the family's template.
pub fn lab_rule(
    c: &Ctx,
    action: levee_mitigate::Action,
    family: levee_packet::Family,
    ttl: Duration,
) -> levee_mitigate::RuleSpec {
    let dst = std::net::IpAddr::V4(c.lab.victim_ip());
    levee_mitigate::RuleSpec {
        id: uuid::Uuid::now_v7(),
        incident_id: "lab".into(),
        action,
        matches: levee_mitigate::matcher::from_family(family, dst).unwrap_or_default(),
        sources: vec![],
        interface: Some(c.lab.victim_if().to_string()),
        ttl,
        expires_unix_ms: levee_lab::clock::wall_ms() + ttl.as_millis() as i64,
    }
}

/// The attacker's address as a /32 source prefix.
pub fn attacker_prefix(c: &Ctx) -> levee_packet::classify::fingerprint::IpPrefix {
    format!("{}/32", c.lab.attacker_ip()).parse().unwrap()
}
