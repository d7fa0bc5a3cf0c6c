//! Every executor against the real tool and kernel, inside the lab's
//! victim namespace: a SYN flood from the attacker namespace, the rule
//! applied, its counter read back, the victim's delivered TCP rate
//! measured, and after removal the namespace's whole firewall state
//! (nft, iptables, ipset, tc, links, routes, SYN cookie setting) compared
//! byte for byte with before.
//!
//! Needs root, iproute2, hping3, coreutils and the tool under test; with
//! CI=true a missing prerequisite fails the test, otherwise it is skipped
//! loudly. Tests serialise on the lab lock.

mod support;

use levee_mitigate::exec::ipset::IpsetExecutor;
use levee_mitigate::exec::iptables::{ChainHandle, IptablesExecutor};
use levee_mitigate::exec::nft::NftExecutor;
use levee_mitigate::exec::route::RouteExecutor;
use levee_mitigate::exec::sysctl::SysctlExecutor;
use levee_mitigate::exec::tc::TcExecutor;
use levee_mitigate::exec::Executor;
use levee_mitigate::Action;
use levee_packet::Family;
use std::time::Duration;
use support::{attacker_prefix, ctx, flood_scenario, lab_rule, snapshot, wait_until};

const NFT: &[(&str, &str)] = &[("nft", "nftables")];
const IPTABLES: &[(&str, &str)] = &[
    ("iptables", "iptables"),
    ("ip6tables", "iptables"),
    ("nft", "nftables"),
];
const IPSET: &[(&str, &str)] = &[
    ("ipset", "ipset"),
    ("iptables", "iptables"),
    ("nft", "nftables"),
];
const TC: &[(&str, &str)] = &[("tc", "iproute2"), ("nft", "nftables")];
const SYSCTL: &[(&str, &str)] = &[("sysctl", "procps")];

/// A ruleset the node's operator already has: Levee must leave it alone.
const USER_RULESET: &str = "table inet user {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 22 accept
  }
}
";

#[test]
fn nftables_syn_flood() {
    let Some(c) = ctx(NFT) else { return };
    c.victim_stdin(&["nft", "-f", "-"], USER_RULESET);
    let mut exec = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let r = lab_rule(
        &c,
        Action::RateLimit {
            pps: 500,
            burst: 50,
        },
        Family::SynFlood,
        Duration::from_secs(60),
    );
    flood_scenario(&c, &mut exec, &r, 0.05, true);
    assert!(snapshot(&c).contains("table inet user"));
}

#[test]
fn nftables_rule_expires_in_the_kernel_and_reconcile_removes_the_rest() {
    let Some(c) = ctx(NFT) else { return };
    let before = snapshot(&c);
    let mut exec = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let r = lab_rule(&c, Action::Drop, Family::AckFlood, Duration::from_secs(2));
    exec.apply(&r).unwrap();
    assert!(exec.verify(&r).unwrap());
    // Nobody touches the executor again (as if the agent were SIGKILLed):
    // the timed element goes and the rule stops matching by itself.
    let victim = c.lab.victim_ip().to_string();
    let gone = wait_until(Duration::from_secs(5), || {
        !c.victim(&["nft", "list", "ruleset"]).contains(&victim)
    });
    assert!(gone, "the element outlived its 2 s TTL:\n{}", snapshot(&c));
    assert!(
        !exec.verify(&r).unwrap(),
        "verify must see the expired rule as disarmed"
    );
    // A fresh executor (a restarted agent) reconciles the inert rest away.
    let mut fresh = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let orphans = fresh.owned().unwrap();
    assert!(
        orphans.iter().any(|o| o.owner == Some(r.id)),
        "{orphans:#?}"
    );
    fresh.remove_owned(&orphans, &[]).unwrap();
    assert_eq!(snapshot(&c), before);
}

#[test]
fn iptables_syn_flood_in_a_fresh_namespace() {
    let Some(c) = ctx(IPTABLES) else { return };
    let mut exec = IptablesExecutor::new(Box::new(c.runner()), ChainHandle::new(vec![]));
    let r = lab_rule(
        &c,
        Action::RateLimit {
            pps: 500,
            burst: 50,
        },
        Family::SynFlood,
        Duration::from_secs(60),
    );
    flood_scenario(&c, &mut exec, &r, 0.05, true);
}

#[test]
fn iptables_next_to_the_operators_rules() {
    let Some(c) = ctx(IPTABLES) else { return };
    c.victim(&[
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT",
    ]);
    let mut exec = IptablesExecutor::new(Box::new(c.runner()), ChainHandle::new(vec![]));
    let r = lab_rule(&c, Action::Drop, Family::SynFlood, Duration::from_secs(60));
    flood_scenario(&c, &mut exec, &r, 0.05, true);
    assert!(snapshot(&c).contains("--dport 22 -j ACCEPT"));
}

#[test]
fn iptables_rule_stops_matching_at_its_datestop() {
    let Some(c) = ctx(IPTABLES) else { return };
    let mut exec = IptablesExecutor::new(Box::new(c.runner()), ChainHandle::new(vec![]));
    let r = lab_rule(&c, Action::Drop, Family::SynFlood, Duration::from_secs(2));
    exec.apply(&r).unwrap();
    let mut flood = c
        .lab
        .flood(levee_lab::FloodKind::Syn, Duration::from_secs(8))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let blocked = c.delivered_tcp_rate(Duration::from_millis(1000));
    // Past the datestop the kernel ignores the rule: traffic flows again.
    std::thread::sleep(Duration::from_millis(1500));
    let after = c.delivered_tcp_rate(Duration::from_millis(1000));
    flood.stop();
    eprintln!("iptables datestop: {blocked:.0} seg/s while armed, {after:.0} seg/s after the TTL");
    assert!(
        blocked < 500.0 && after > 5_000.0,
        "{blocked:.0} -> {after:.0}"
    );
    let mut fresh = IptablesExecutor::new(Box::new(c.runner()), ChainHandle::new(vec![]));
    let orphans = fresh.owned().unwrap();
    fresh.remove_owned(&orphans, &[]).unwrap();
    assert!(!snapshot(&c).contains("LEVEE"));
}

#[test]
fn ipset_source_block_syn_flood() {
    let Some(c) = ctx(IPSET) else { return };
    let chains = ChainHandle::new(vec![]);
    let mut exec = IpsetExecutor::new(Box::new(c.runner()), chains);
    let mut r = lab_rule(
        &c,
        Action::SourceBlock,
        Family::SynFlood,
        Duration::from_secs(60),
    );
    r.sources = vec![attacker_prefix(&c)];
    flood_scenario(&c, &mut exec, &r, 0.05, true);
}

#[test]
fn ipset_elements_expire_in_the_kernel() {
    let Some(c) = ctx(IPSET) else { return };
    let before = snapshot(&c);
    let chains = ChainHandle::new(vec![]);
    let mut exec = IpsetExecutor::new(Box::new(c.runner()), chains.clone());
    let mut r = lab_rule(
        &c,
        Action::SourceBlock,
        Family::SynFlood,
        Duration::from_secs(2),
    );
    r.sources = vec![attacker_prefix(&c)];
    exec.apply(&r).unwrap();
    assert!(exec.verify(&r).unwrap());
    let attacker = c.lab.attacker_ip().to_string();
    let gone = wait_until(Duration::from_secs(5), || {
        !c.victim(&["ipset", "save"]).contains(&attacker)
    });
    assert!(gone, "the element outlived its TTL:\n{}", snapshot(&c));
    // Restarted agent: the iptables executor reports the rule, ipset the set.
    let fresh_chains = ChainHandle::new(vec![]);
    let mut ipt = IptablesExecutor::new(Box::new(c.runner()), fresh_chains.clone());
    let mut ips = IpsetExecutor::new(Box::new(c.runner()), fresh_chains);
    let sets = ips.owned().unwrap();
    assert_eq!(sets.len(), 1, "{sets:#?}");
    ips.remove_owned(&sets, &[]).unwrap();
    let rest = ipt.owned().unwrap();
    ipt.remove_owned(&rest, &[]).unwrap();
    assert_eq!(snapshot(&c), before);
}

#[test]
fn tc_shapes_a_syn_flood() {
    let Some(c) = ctx(TC) else { return };
    let mut exec = TcExecutor::new(Box::new(c.runner()), vec![]);
    let r = lab_rule(
        &c,
        Action::Shape { bps: 64_000 },
        Family::SynFlood,
        Duration::from_secs(60),
    );
    flood_scenario(&c, &mut exec, &r, 0.05, true);
}

#[test]
fn tc_exempt_source_is_not_shaped_and_reconcile_cleans_up() {
    let Some(c) = ctx(TC) else { return };
    let before = snapshot(&c);
    let mut exec = TcExecutor::new(Box::new(c.runner()), vec![attacker_prefix(&c)]);
    let r = lab_rule(
        &c,
        Action::Shape { bps: 64_000 },
        Family::SynFlood,
        Duration::from_secs(60),
    );
    let mut flood = c
        .lab
        .flood(levee_lab::FloodKind::Syn, Duration::from_secs(8))
        .unwrap();
    exec.apply(&r).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let rate = c.delivered_tcp_rate(Duration::from_millis(1500));
    flood.stop();
    eprintln!("tc with the attacker exempt: {rate:.0} seg/s delivered");
    assert!(
        rate > 5_000.0,
        "an exempt source was shaped: {rate:.0} seg/s"
    );
    // As after a crash: a fresh executor finds and removes everything.
    let mut fresh = TcExecutor::new(Box::new(c.runner()), vec![]);
    let owned = fresh.owned().unwrap();
    assert!(
        owned.len() >= 3,
        "ifb, mitigation filter, exempt filter: {owned:#?}"
    );
    fresh.remove_owned(&owned, &[]).unwrap();
    assert_eq!(snapshot(&c), before);
}

#[test]
fn null_route_blackholes_the_attacker() {
    let Some(c) = ctx(&[]) else { return };
    // Strict reverse-path filtering (in the test namespace only) turns a
    // blackhole for a source into a drop of its packets.
    let dev = c.lab.victim_if();
    c.victim(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
    c.victim(&["sysctl", "-qw", &format!("net.ipv4.conf.{dev}.rp_filter=1")]);
    let mut exec = RouteExecutor::new(Box::new(c.runner()));
    let mut r = lab_rule(
        &c,
        Action::Blackhole,
        Family::SynFlood,
        Duration::from_secs(60),
    );
    r.sources = vec![attacker_prefix(&c)];
    flood_scenario(&c, &mut exec, &r, 0.05, false);
}

#[test]
fn syn_cookies_only_in_the_namespace_and_restored() {
    let Some(c) = ctx(SYSCTL) else { return };
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syncookies").unwrap();
    let before = snapshot(&c);
    let ns_value = c.victim(&["sysctl", "-n", "net.ipv4.tcp_syncookies"]);
    let state = c.work.path().join("syncookies.prev");
    let mut exec = SysctlExecutor::new(Box::new(c.runner()), Some(state.clone()));
    let r = lab_rule(
        &c,
        Action::SynCookies { mode: 2 },
        Family::SynFlood,
        Duration::from_secs(60),
    );
    exec.apply(&r).unwrap();
    assert!(exec.verify(&r).unwrap());
    assert_eq!(
        c.victim(&["sysctl", "-n", "net.ipv4.tcp_syncookies"])
            .trim(),
        "2"
    );
    assert_eq!(
        std::fs::read_to_string(&state).unwrap().trim(),
        ns_value.trim()
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syncookies").unwrap(),
        host_before,
        "the host's own setting must never change"
    );
    // A restarted agent restores the saved value.
    let mut fresh = SysctlExecutor::new(Box::new(c.runner()), Some(state.clone()));
    let o = fresh.owned().unwrap();
    fresh.remove_owned(&o, &[]).unwrap();
    assert_eq!(snapshot(&c), before);
    assert!(!state.exists());
}
