//! The `[mitigation]` configuration: serde types with `deny_unknown_fields`,
//! defaults for every attack family, and [`MitigationConfig::validate`],
//! which reports every problem at once, each naming its key.
//!
//! Attack profiles map a family to an ordered list of steps; each step is an
//! action with its parameters and, optionally, the executor to use:
//!
//! ```toml
//! [mitigation.profiles]
//! syn_flood = [
//!   { action = "source_block" },
//!   { action = "rate_limit", pps = 2000, burst = 500 },
//!   { action = "syn_cookies", mode = 1 },
//! ]
//! ```
//! A family given in the file replaces that family's default list; the
//! others keep theirs.

use crate::action::{Action, ActionKind, ExecutorKind};
use levee_packet::classify::fingerprint::IpPrefix;
use levee_packet::Family;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Durations as operators write them (`"10m"`, `"30s"`), like the rest of
/// the agent's config.
pub mod duration_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (write e.g. \"30s\", \"10m\", \"1h\")"
            ))
        })
    }
}

/// One step of an attack profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub action: ActionKind,
    /// Packets per second (`rate_limit`, `hash_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<u64>,
    /// Burst in packets (`rate_limit`, `hash_limit`); default pps / 10, at least 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Connections per source (`conn_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Bits per second (`shape`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bps: Option<u64>,
    /// `syn_cookies` mode: 1 (when the SYN queue overflows) or 2 (always). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u8>,
    /// The executor for this step; default: `[mitigation] executor` when it
    /// can, else the natural one (sysctl, tc, route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
}

impl Step {
    pub fn new(action: ActionKind) -> Step {
        Step {
            action,
            pps: None,
            burst: None,
            max: None,
            bps: None,
            mode: None,
            executor: None,
        }
    }

    fn with_pps(mut self, pps: u64, burst: u64) -> Step {
        self.pps = Some(pps);
        self.burst = Some(burst);
        self
    }

    /// The action this step describes, or every problem with it (`key` is
    /// the step's place in the config, for messages).
    pub fn to_action(&self, key: &str) -> Result<Action, Vec<String>> {
        let mut problems = Vec::new();
        let allowed: &[&str] = match self.action {
            ActionKind::RateLimit | ActionKind::HashLimit => &["pps", "burst"],
            ActionKind::ConnLimit => &["max"],
            ActionKind::Shape => &["bps"],
            ActionKind::SynCookies => &["mode"],
            _ => &[],
        };
        for (name, set) in [
            ("pps", self.pps.is_some()),
            ("burst", self.burst.is_some()),
            ("max", self.max.is_some()),
            ("bps", self.bps.is_some()),
            ("mode", self.mode.is_some()),
        ] {
            if set && !allowed.contains(&name) {
                problems.push(format!(
                    "{key}.{name}: not a parameter of action {}; remove it",
                    self.action
                ));
            }
        }
        let positive = |problems: &mut Vec<String>, name: &str, v: Option<u64>| -> u64 {
            match v {
                Some(0) => {
                    problems.push(format!("{key}.{name}: must be above 0"));
                    0
                }
                Some(x) => x,
                None => {
                    problems.push(format!("{key}.{name}: required by action {}", self.action));
                    0
                }
            }
        };
        let action = match self.action {
            ActionKind::Drop => Action::Drop,
            ActionKind::Reject => Action::Reject,
            ActionKind::Blackhole => Action::Blackhole,
            ActionKind::SourceBlock => Action::SourceBlock,
            ActionKind::RateLimit | ActionKind::HashLimit => {
                let pps = positive(&mut problems, "pps", self.pps);
                let burst = match self.burst {
                    Some(0) => {
                        problems.push(format!("{key}.burst: must be above 0"));
                        0
                    }
                    Some(b) => b,
                    None => (pps / 10).max(5),
                };
                if self.action == ActionKind::RateLimit {
                    Action::RateLimit { pps, burst }
                } else {
                    Action::HashLimit { pps, burst }
                }
            }
            ActionKind::ConnLimit => Action::ConnLimit {
                max: positive(&mut problems, "max", self.max.map(u64::from)) as u32,
            },
            ActionKind::Shape => {
                let bps = positive(&mut problems, "bps", self.bps);
                if bps > 0 && bps < 8_000 {
                    problems.push(format!(
                        "{key}.bps: {bps} bit/s is below one packet per second; use at least 8000"
                    ));
                }
                Action::Shape { bps }
            }
            ActionKind::SynCookies => {
                let mode = self.mode.unwrap_or(1);
                if !(1..=2).contains(&mode) {
                    problems.push(format!(
                        "{key}.mode: {mode} is not a SYN cookie mode; use 1 (on overflow) or 2 (always)"
                    ));
                }
                Action::SynCookies { mode }
            }
        };
        if problems.is_empty() {
            Ok(action)
        } else {
            Err(problems)
        }
    }
}

/// Family -> ordered steps, defaults merged under the file's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles(pub BTreeMap<Family, Vec<Step>>);

impl Default for Profiles {
    fn default() -> Self {
        Profiles(default_profiles())
    }
}

impl Profiles {
    pub fn get(&self, family: Family) -> &[Step] {
        self.0.get(&family).map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Serialize for Profiles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Profiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Keys deserialise as `Family`, so an unknown family is an error
        // naming the valid ones.
        let given: BTreeMap<Family, Vec<Step>> = BTreeMap::deserialize(d)?;
        let mut all = default_profiles();
        all.extend(given);
        Ok(Profiles(all))
    }
}

/// The defaults: per family, the narrowest useful steps first.
///
/// - Spoofable floods (SYN, UDP, ICMP, fragments) are rate-limited, never
///   dropped whole: dropping all SYNs to a port is the attacker's goal.
///   `source_block` goes first and only acts when the fingerprint names a
///   few source prefixes (a flood from real, unspoofed addresses).
/// - ACK/RST/flag floods and reflection are dropped outside established
///   connections, which is exact: the node's own connections and the
///   replies to its own queries are established.
/// - HTTP floods are limited per source (connections and new-connection rate).
pub fn default_profiles() -> BTreeMap<Family, Vec<Step>> {
    use ActionKind as A;
    let mut m = BTreeMap::new();
    let block = Step::new(A::SourceBlock);
    let syn_cookies = Step {
        mode: Some(1),
        ..Step::new(A::SynCookies)
    };
    m.insert(
        Family::SynFlood,
        // The packet filter first: it acts in a few ms, the sysctl after it.
        vec![
            block.clone(),
            Step::new(A::RateLimit).with_pps(2_000, 500),
            syn_cookies,
        ],
    );
    for f in [Family::AckFlood, Family::RstFlood, Family::TcpFlagAbuse] {
        m.insert(f, vec![block.clone(), Step::new(A::Drop)]);
    }
    m.insert(
        Family::UdpFlood,
        vec![
            block.clone(),
            Step::new(A::HashLimit).with_pps(1_000, 200),
            Step::new(A::RateLimit).with_pps(20_000, 2_000),
        ],
    );
    m.insert(
        Family::IcmpFlood,
        vec![block.clone(), Step::new(A::RateLimit).with_pps(200, 50)],
    );
    m.insert(
        Family::IpFragmentFlood,
        vec![block.clone(), Step::new(A::RateLimit).with_pps(2_000, 200)],
    );
    for f in [
        Family::DnsAmplification,
        Family::NtpAmplification,
        Family::MemcachedAmplification,
        Family::SsdpAmplification,
        Family::CldapAmplification,
        Family::SnmpAmplification,
        Family::ChargenAmplification,
        Family::UdpReflectionOther,
    ] {
        m.insert(f, vec![Step::new(A::Drop)]);
    }
    m.insert(
        Family::IpProtocolFlood,
        vec![block.clone(), Step::new(A::Drop)],
    );
    m.insert(
        Family::HttpFlood,
        vec![
            Step {
                max: Some(100),
                ..Step::new(A::ConnLimit)
            },
            Step::new(A::HashLimit).with_pps(100, 50),
        ],
    );
    m.insert(
        Family::MultiVector,
        vec![block, Step::new(A::RateLimit).with_pps(20_000, 2_000)],
    );
    m.insert(Family::TrafficSpike, vec![]);
    m
}

/// How the collateral-damage guard judges a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    pub enabled: bool,
    /// Roll back when legitimate traffic falls by more than this share of
    /// its pre-attack level (0.9 = 90%).
    pub max_drop: f64,
    /// Time after applying before the guard judges (TCP needs a moment to
    /// show the effect).
    #[serde(with = "duration_str")]
    pub grace: Duration,
    /// Legitimate traffic below this many packets per second before the
    /// attack is too little to judge by.
    pub min_pps: f64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enabled: true,
            max_drop: 0.9,
            grace: Duration::from_secs(3),
            min_pps: 5.0,
        }
    }
}

/// The `[mitigation]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MitigationConfig {
    /// Apply rules when incidents start. Off by default: changing a
    /// server's firewall is opt-in.
    pub enabled: bool,
    /// Render and report rules (`mitigation_previewed`) but apply nothing.
    pub dry_run: bool,
    /// The packet filter for filtering actions.
    pub executor: ExecutorKind,
    /// Source prefixes that are never blocked, limited or shaped.
    pub allowlist: Vec<IpPrefix>,
    /// Further addresses that must never be blocked (e.g. the Levee server);
    /// the node's own addresses and default gateways are added automatically.
    pub protected: Vec<IpPrefix>,
    /// Most mitigations live at once; more are refused with an event.
    pub max_rules: usize,
    /// Lifetime of every rule, enforced by the kernel where the tool allows
    /// it; refreshed while the incident lasts.
    #[serde(with = "duration_str")]
    pub ttl: Duration,
    /// nftables: drop stateless matches in a `netdev` ingress chain on the
    /// attacked interface (earliest possible drop), not only in `inet`.
    pub netdev_ingress: bool,
    /// The append-only audit log; default `<state_dir>/audit.jsonl`.
    pub audit_file: Option<PathBuf>,
    pub guard: GuardConfig,
    pub profiles: Profiles,
}

impl Default for MitigationConfig {
    fn default() -> Self {
        MitigationConfig {
            enabled: false,
            dry_run: false,
            executor: ExecutorKind::Nftables,
            allowlist: Vec::new(),
            protected: Vec::new(),
            max_rules: 64,
            ttl: Duration::from_secs(600),
            netdev_ingress: true,
            audit_file: None,
            guard: GuardConfig::default(),
            profiles: Profiles::default(),
        }
    }
}

/// Shortest and longest rule lifetime accepted.
pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);

impl MitigationConfig {
    /// Every problem, each naming its key under `prefix` (e.g. `mitigation`).
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_rules == 0 {
            p.push(format!(
                "{prefix}.max_rules: must be at least 1 (set enabled = false to turn mitigation off)"
            ));
        }
        if self.ttl < MIN_TTL || self.ttl > MAX_TTL {
            p.push(format!(
                "{prefix}.ttl: {} is outside 1s..7d",
                humantime::format_duration(self.ttl)
            ));
        }
        if !(0.0..=1.0).contains(&self.guard.max_drop) || self.guard.max_drop.is_nan() {
            p.push(format!(
                "{prefix}.guard.max_drop: {} is not a share between 0 and 1 (0.9 = 90%)",
                self.guard.max_drop
            ));
        }
        if self.guard.min_pps.is_nan() || self.guard.min_pps < 0.0 {
            p.push(format!("{prefix}.guard.min_pps: must be 0 or more"));
        }
        if self.executor == ExecutorKind::Sysctl
            || self.executor == ExecutorKind::Route
            || self.executor == ExecutorKind::Tc
        {
            p.push(format!(
                "{prefix}.executor: {} is not a packet filter; use nftables, iptables, ipset, ufw, firewalld, csf or xdp",
                self.executor
            ));
        }
        for (family, steps) in &self.profiles.0 {
            for (i, step) in steps.iter().enumerate() {
                if let Err(e) = step.to_action(&format!("{prefix}.profiles.{family}[{i}]")) {
                    p.extend(e);
                }
            }
        }
        p
    }

    /// The actions of `family`'s profile, in order (valid config assumed;
    /// invalid steps are skipped).
    pub fn steps(&self, family: Family) -> Vec<(Action, Option<ExecutorKind>)> {
        self.profiles
            .get(family)
            .iter()
            .filter_map(|s| s.to_action("").ok().map(|a| (a, s.executor)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_every_family_and_are_valid() {
        let c = MitigationConfig::default();
        assert!(c.validate("mitigation").is_empty(), "{:?}", c.validate("m"));
        for f in Family::ALL {
            assert!(c.profiles.0.contains_key(&f), "no default profile for {f}");
        }
        assert!(c.steps(Family::TrafficSpike).is_empty());
        let syn = c.steps(Family::SynFlood);
        assert_eq!(syn[2].0, Action::SynCookies { mode: 1 });
        assert!(!c.enabled && !c.dry_run);
    }

    #[test]
    fn toml_overrides_one_family_keeps_others() {
        let c: MitigationConfig = toml::from_str(
            r#"
            enabled = true
            ttl = "2m"
            allowlist = ["192.0.2.0/24"]
            [profiles]
            syn_flood = [{ action = "rate_limit", pps = 100, executor = "iptables" }]
            "#,
        )
        .unwrap();
        assert!(c.enabled);
        assert_eq!(c.ttl, Duration::from_secs(120));
        assert_eq!(c.allowlist[0].to_string(), "192.0.2.0/24");
        let syn = c.steps(Family::SynFlood);
        assert_eq!(
            syn,
            vec![(
                Action::RateLimit {
                    pps: 100,
                    burst: 10
                },
                Some(ExecutorKind::Iptables)
            )]
        );
        assert_eq!(
            c.steps(Family::UdpFlood),
            MitigationConfig::default().steps(Family::UdpFlood)
        );
    }

    #[test]
    fn unknown_keys_and_families_are_errors() {
        let e = toml::from_str::<MitigationConfig>("enabeld = true").unwrap_err();
        assert!(e.to_string().contains("enabeld"), "{e}");
        let e = toml::from_str::<MitigationConfig>("[profiles]\nsyn_flod = []").unwrap_err();
        assert!(e.to_string().contains("syn_flod"), "{e}");
        let e = toml::from_str::<MitigationConfig>(
            "[profiles]\nsyn_flood = [{ action = \"drop\", ppps = 3 }]",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ppps"), "{e}");
        let e = toml::from_str::<MitigationConfig>("ttl = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
    }

    #[test]
    fn validation_reports_every_problem() {
        let c: MitigationConfig = toml::from_str(
            r#"
            max_rules = 0
            ttl = "0s"
            executor = "tc"
            [guard]
            max_drop = 1.5
            [profiles]
            udp_flood = [{ action = "rate_limit" }, { action = "drop", bps = 5 }, { action = "shape", bps = 10 }]
            syn_flood = [{ action = "syn_cookies", mode = 3 }]
            "#,
        )
        .unwrap();
        let p = c.validate("mitigation");
        for want in [
            "mitigation.max_rules",
            "mitigation.ttl",
            "mitigation.executor",
            "mitigation.guard.max_drop",
            "mitigation.profiles.udp_flood[0].pps: required",
            "mitigation.profiles.udp_flood[1].bps: not a parameter",
            "mitigation.profiles.udp_flood[2].bps",
            "mitigation.profiles.syn_flood[0].mode",
        ] {
            assert!(
                p.iter().any(|x| x.contains(want)),
                "{want} missing in {p:#?}"
            );
        }
        assert_eq!(p.len(), 8, "{p:#?}");
    }

    #[test]
    fn serialises_back_to_toml() {
        let c = MitigationConfig::default();
        let text = toml::to_string(&c).unwrap();
        let back: MitigationConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }
}
