//! nftables executor against the real kernel, inside the lab's victim
//! namespace: a SYN flood from the attacker namespace, Levee's rule applied
//! with `nft -f -`, its counter read back with `nft -j`.
//!
//! Needs root, iproute2, hping3, coreutils and nftables; with CI=true a
//! missing prerequisite fails the test, otherwise it is skipped loudly.

mod support;

use levee_lab::FloodKind;
use levee_mitigate::exec::nft::NftExecutor;
use levee_mitigate::exec::Executor;
use levee_mitigate::matcher::from_family;
use levee_mitigate::{Action, RuleSpec};
use levee_packet::Family;
use std::net::IpAddr;
use std::time::Duration;
use support::{ctx, wait_until, Ctx};
use uuid::Uuid;

const NFT: &[(&str, &str)] = &[("nft", "nftables")];

/// A ruleset the node's operator already has: Levee must leave it alone.
const USER_RULESET: &str = "table inet user {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 22 accept
  }
}
";

fn ruleset(c: &Ctx) -> String {
    c.victim(&["nft", "list", "ruleset"])
}

fn rule(c: &Ctx, action: Action, ttl: Duration) -> RuleSpec {
    let dst = IpAddr::V4(c.lab.victim_ip());
    RuleSpec {
        id: Uuid::now_v7(),
        incident_id: "lab".into(),
        action,
        matches: from_family(Family::SynFlood, dst).unwrap(),
        sources: vec![],
        interface: Some(c.lab.victim_if().to_string()),
        ttl,
        expires_unix_ms: levee_lab::clock::wall_ms() + ttl.as_millis() as i64,
    }
}

#[test]
fn syn_flood_counter_rises_delivered_rate_falls_and_ruleset_is_restored() {
    let Some(c) = ctx(NFT) else { return };
    c.victim_stdin(&["nft", "-f", "-"], USER_RULESET);
    let before = ruleset(&c);
    assert!(before.contains("table inet user"), "{before}");

    let mut exec = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let r = rule(
        &c,
        Action::RateLimit {
            pps: 500,
            burst: 50,
        },
        Duration::from_secs(60),
    );
    let mut flood = c
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(15))
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let unmitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    flood.check().unwrap();
    assert!(
        unmitigated > 5_000.0,
        "the flood should deliver > 5k seg/s, got {unmitigated:.0}"
    );

    exec.apply(&r).unwrap();
    assert!(
        exec.verify(&r).unwrap(),
        "rule not found after apply:\n{}",
        ruleset(&c)
    );
    let during = ruleset(&c);
    assert!(
        during.contains(&format!("comment \"levee:{}\"", r.id)),
        "{during}"
    );
    assert!(
        during.contains("table netdev levee"),
        "stateless rule goes to netdev ingress:\n{during}"
    );
    let c0 = exec
        .counters()
        .unwrap()
        .get(&r.id)
        .copied()
        .unwrap_or_default();
    let mitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    let c1 = exec.counters().unwrap()[&r.id];
    flood.check().unwrap();
    eprintln!(
        "nftables: delivered {unmitigated:.0} seg/s before, {mitigated:.0} seg/s with the rule; counter {} -> {} packets",
        c0.packets, c1.packets
    );
    assert!(
        c1.packets > c0.packets + 1000,
        "counter did not rise: {c0:?} -> {c1:?}"
    );
    assert!(
        mitigated < unmitigated * 0.2 && mitigated < 1_500.0,
        "delivered rate did not fall: {unmitigated:.0} -> {mitigated:.0}"
    );

    exec.remove(&r).unwrap();
    flood.stop();
    assert_eq!(
        ruleset(&c),
        before,
        "nft list ruleset differs after removal"
    );
}

#[test]
fn rule_expires_in_the_kernel_without_the_agent() {
    let Some(c) = ctx(NFT) else { return };
    let before = ruleset(&c);
    let mut exec = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let r = rule(&c, Action::Drop, Duration::from_secs(2));
    exec.apply(&r).unwrap();
    assert!(exec.verify(&r).unwrap());
    // Nobody touches the executor again (as if the agent were SIGKILLed):
    // the timed element disappears and the rule stops matching by itself.
    let gone = wait_until(Duration::from_secs(5), || {
        !c.victim(&["nft", "list", "ruleset"])
            .contains(&c.lab.victim_ip().to_string())
    });
    assert!(gone, "the element outlived its 2 s TTL:\n{}", ruleset(&c));
    assert!(
        !exec.verify(&r).unwrap(),
        "verify must see the expired rule as disarmed"
    );
    // A fresh executor (a restarted agent) reconciles the inert rest away.
    let mut fresh = NftExecutor::new(Box::new(c.runner()), vec![], true);
    let orphans = fresh.owned().unwrap();
    assert!(!orphans.is_empty());
    fresh.remove_owned(&orphans, &[]).unwrap();
    assert_eq!(ruleset(&c), before);
}
