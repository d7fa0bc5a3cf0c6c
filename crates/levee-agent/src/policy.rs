//! The server's policy made concrete: from the agent's own configuration
//! ([`Base`]), the settings in force now ([`Effective`]) and a [`Policy`],
//! the settings to run with next and the parts refused. Pure: the loop
//! applies the result to the detector and the mitigation engine.
//!
//! A policy is laid over the agent's configuration, not over the previous
//! policy: a floor the server stops setting returns to the config's. Each
//! part is judged on its own: invalid detector settings keep the detector
//! as it is, invalid attack profiles keep the profiles as they are, an
//! allowlist entry that is not an address or prefix is left out. The server
//! validates too, but the agent does not depend on it (an older server, a
//! newer agent).

use levee_detector::DetectorSettings;
use levee_mitigate::config::{Profiles, Step};
use levee_model::Metric;
use levee_packet::classify::fingerprint::IpPrefix;
use levee_packet::Family;
use levee_proto::Policy;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What the agent's configuration says about the parts a policy sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Base {
    pub detector: DetectorSettings,
    /// `[mitigation] allowlist`.
    pub allowlist: Vec<IpPrefix>,
    /// `[mitigation.profiles]` over the defaults.
    pub profiles: Profiles,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The policy version in force (0: none).
    pub version: u64,
    pub detector: DetectorSettings,
    /// The config's allowlist and the policy's.
    pub allowlist: Vec<IpPrefix>,
    /// How many of `allowlist` came from the policy.
    pub policy_allowlist: usize,
    pub profiles: Profiles,
    /// Families whose profile the policy sets.
    pub policy_families: Vec<Family>,
}

impl Effective {
    /// No policy: the configuration as it is.
    pub fn from_base(base: &Base) -> Effective {
        Effective {
            version: 0,
            detector: base.detector.clone(),
            allowlist: base.allowlist.clone(),
            policy_allowlist: 0,
            profiles: base.profiles.clone(),
            policy_families: Vec::new(),
        }
    }
}

/// The outcome of laying a policy over the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub effective: Effective,
    /// Parts refused, each naming its field and why.
    pub rejected: Vec<String>,
}

/// Lays `policy` over `base`; refused parts keep their value in `current`.
pub fn apply(base: &Base, current: &Effective, policy: &Policy) -> Outcome {
    let mut rejected = Vec::new();
    let detector = match detector(&base.detector, policy) {
        Ok(d) => d,
        Err(p) => {
            rejected.extend(p);
            current.detector.clone()
        }
    };
    let mut allowlist = base.allowlist.clone();
    let mut added = 0;
    for (i, entry) in policy.allowlist.iter().enumerate() {
        match parse_entry(entry) {
            Ok(p) => {
                allowlist.push(p);
                added += 1;
            }
            Err(e) => rejected.push(format!("allowlist[{i}]: {e}; entry left out")),
        }
    }
    let (profiles, policy_families) = match profiles(&base.profiles, &policy.attack_profiles) {
        Ok(x) => x,
        Err(p) => {
            rejected.extend(
                p.into_iter()
                    .map(|e| format!("{e}; the attack profiles stay as they were")),
            );
            (current.profiles.clone(), current.policy_families.clone())
        }
    };
    Outcome {
        effective: Effective {
            version: policy.version,
            detector,
            allowlist,
            policy_allowlist: added,
            profiles,
            policy_families,
        },
        rejected,
    }
}

/// The config's detector settings with the policy's on top, validated.
fn detector(base: &DetectorSettings, policy: &Policy) -> Result<DetectorSettings, Vec<String>> {
    let pd = &policy.detector;
    let mut d = base.clone();
    let mut problems = Vec::new();
    if let Some(m) = pd.multiplier {
        d.multiplier = m;
    }
    if let Some(q) = pd.quiet_period_ms {
        if (1_000..=3_600_000).contains(&q) {
            d.quiet_period_ms = q;
        } else {
            problems.push(format!(
                "detector.quiet_period_ms: {q} is outside 1000..=3600000"
            ));
        }
    }
    for (name, v) in &pd.floors {
        match Metric::from_name(name) {
            Some(m) => {
                d.floors.insert(m, *v);
            }
            None => problems.push(format!(
                "detector.floors.{name}: unknown metric (rx_pps, rx_bps, tcp_pps, udp_pps, icmp_pps, syn_recv, connections)"
            )),
        }
    }
    problems.extend(
        d.validate()
            .into_iter()
            .map(|e| format!("detector.{}: {}", e.field, e.problem)),
    );
    if problems.is_empty() {
        Ok(d)
    } else {
        Err(problems
            .into_iter()
            .map(|p| format!("{p}; the detector settings stay as they were"))
            .collect())
    }
}

/// An address (a /32 or /128) or a CIDR prefix.
fn parse_entry(entry: &str) -> Result<IpPrefix, String> {
    if entry.contains('/') {
        entry.parse::<IpPrefix>()
    } else {
        entry
            .parse::<IpAddr>()
            .map(levee_mitigate::safety::host_prefix)
            .map_err(|_| format!("`{entry}` is not an IP address or CIDR prefix"))
    }
}

/// The config's profiles with the families the policy names replaced.
fn profiles(
    base: &Profiles,
    given: &serde_json::Value,
) -> Result<(Profiles, Vec<Family>), Vec<String>> {
    let map: BTreeMap<Family, Vec<Step>> = match given {
        serde_json::Value::Null => BTreeMap::new(),
        serde_json::Value::Object(_) => serde_json::from_value(given.clone())
            .map_err(|e| vec![format!("attack_profiles: {e}")])?,
        _ => {
            return Err(vec![
                "attack_profiles: must be an object mapping an attack family to its steps, e.g. {\"syn_flood\": [{\"action\": \"rate_limit\", \"pps\": 2000}]}".into(),
            ])
        }
    };
    let problems: Vec<String> = map
        .iter()
        .flat_map(|(family, steps)| {
            steps.iter().enumerate().flat_map(move |(i, s)| {
                s.to_action(&format!("attack_profiles.{family}[{i}]"))
                    .err()
                    .unwrap_or_default()
            })
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let families: Vec<Family> = map.keys().copied().collect();
    let mut all = base.clone();
    all.0.extend(map);
    Ok((all, families))
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_mitigate::action::{Action, ActionKind};
    use levee_proto::DetectorPolicy;
    use serde_json::json;

    fn base() -> Base {
        let mut profiles = Profiles::default();
        profiles
            .0
            .insert(Family::IcmpFlood, vec![Step::new(ActionKind::Drop)]);
        Base {
            detector: DetectorSettings {
                tick_ms: 100,
                ..Default::default()
            },
            allowlist: vec!["192.0.2.0/24".parse().unwrap()],
            profiles,
        }
    }

    fn policy(v: serde_json::Value) -> Policy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_good_policy_is_laid_over_the_config() {
        let b = base();
        let cur = Effective::from_base(&b);
        let out = apply(
            &b,
            &cur,
            &policy(json!({
                "version": 4,
                "allowlist": ["198.51.100.7", "2001:db8::/32"],
                "attack_profiles": {"syn_flood": [{"action": "rate_limit", "pps": 500}]},
                "detector": {"multiplier": 5.0, "quiet_period_ms": 30000, "floors": {"rx_pps": 50000}}
            })),
        );
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let e = out.effective;
        assert_eq!(e.version, 4);
        assert_eq!(e.detector.multiplier, 5.0);
        assert_eq!(e.detector.quiet_period_ms, 30_000);
        assert_eq!(e.detector.floor(Metric::RxPps), 50_000.0);
        assert_eq!(
            e.detector.floor(Metric::UdpPps),
            2_000.0,
            "others keep theirs"
        );
        assert_eq!(e.detector.tick_ms, 100, "what a policy cannot set stays");
        let text: Vec<String> = e.allowlist.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32"]);
        assert_eq!(e.policy_allowlist, 2);
        assert_eq!(e.policy_families, [Family::SynFlood]);
        assert_eq!(
            e.profiles.get(Family::SynFlood)[0].to_action("x").unwrap(),
            Action::RateLimit {
                pps: 500,
                burst: 50
            }
        );
        assert_eq!(
            e.profiles.get(Family::IcmpFlood),
            b.profiles.get(Family::IcmpFlood),
            "the config's own profile of another family stays"
        );
    }

    #[test]
    fn a_later_policy_starts_from_the_config_not_the_last_policy() {
        let b = base();
        let first = apply(
            &b,
            &Effective::from_base(&b),
            &policy(json!({"version": 1, "allowlist": ["203.0.113.0/24"],
                            "detector": {"multiplier": 9.0, "floors": {"udp_pps": 1}}})),
        )
        .effective;
        let second = apply(&b, &first, &policy(json!({"version": 2}))).effective;
        assert_eq!(
            second,
            Effective {
                version: 2,
                ..Effective::from_base(&b)
            }
        );
    }

    #[test]
    fn bad_parts_are_refused_and_keep_what_was_in_force() {
        let b = base();
        let good = apply(
            &b,
            &Effective::from_base(&b),
            &policy(json!({"version": 1,
                "attack_profiles": {"udp_flood": [{"action": "drop"}]},
                "detector": {"multiplier": 4.0}})),
        )
        .effective;
        let bad = Policy {
            version: 2,
            allowlist: vec!["10.0.0.0/8".into(), "nonsense".into(), "10.1.2.3/40".into()],
            attack_profiles: json!({"syn_flood": [{"action": "rate_limit"}], "udp_flood": []}),
            detector: DetectorPolicy {
                multiplier: Some(0.5),
                quiet_period_ms: None,
                floors: [("bogus".to_string(), 3.0)].into(),
            },
        };
        let out = apply(&b, &good, &bad);
        let r = &out.rejected;
        for want in [
            "detector.floors.bogus",
            "detector.multiplier",
            "allowlist[1]: `nonsense`",
            "allowlist[2]",
            "attack_profiles.syn_flood[0].pps: required",
        ] {
            assert!(r.iter().any(|x| x.contains(want)), "{want} not in {r:#?}");
        }
        assert_eq!(r.len(), 5, "{r:#?}");
        let e = out.effective;
        assert_eq!(e.version, 2);
        assert_eq!(
            e.detector, good.detector,
            "the previous detector settings stay"
        );
        assert_eq!(e.profiles, good.profiles, "the previous profiles stay");
        assert_eq!(e.policy_families, [Family::UdpFlood]);
        assert_eq!(e.policy_allowlist, 1, "the good entry is used");
        // A shape serde rejects outright is a refusal too, not a panic.
        for shape in [json!([1, 2]), json!({"syn_flod": []}), json!("x")] {
            let p = Policy {
                version: 3,
                attack_profiles: shape.clone(),
                ..Default::default()
            };
            let out = apply(&b, &good, &p);
            assert_eq!(out.rejected.len(), 1, "{shape}: {:?}", out.rejected);
            assert!(out.rejected[0].starts_with("attack_profiles"));
            assert_eq!(out.effective.profiles, good.profiles);
        }
    }
}
