//! Cross-node correlation, pure: given a tenant's recent incidents and its
//! open correlated incidents, decide which incidents are one attack.
//!
//! Two rules, the more specific first:
//! - `same_prefix`: incidents whose targets are IP addresses in one prefix
//!   (/24 and /64 by default), on any nodes, e.g. a carpet-bombing attack;
//! - `same_attack`: incidents of one attack family (or, unclassified, one
//!   primary metric) on several nodes.
//!
//! Incidents are candidates while open or resolved within the window, and
//! group only with incidents that started within the window of each other.
//! An incident belongs to at most one correlated incident, forever.

use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// An incident as correlation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub tenant_id: i64,
    pub node_id: i64,
    pub target: String,
    pub metric: String,
    pub family: Option<String>,
    pub started_ms: i64,
    pub open: bool,
    pub correlation_id: Option<i64>,
}

/// An open correlated incident.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenGroup {
    pub id: i64,
    pub tenant_id: i64,
    pub reason: String,
    pub key: String,
    pub started_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub window_ms: i64,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    SamePrefix,
    SameAttack,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::SamePrefix => "same_prefix",
            Reason::SameAttack => "same_attack",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Add an incident to an open correlated incident.
    Join {
        tenant_id: i64,
        group: i64,
        incident: i64,
    },
    /// Make a correlated incident of these incidents.
    Create {
        tenant_id: i64,
        reason: Reason,
        key: String,
        started_ms: i64,
        members: Vec<i64>,
    },
}

/// The prefix of an address target (`192.0.2.7`), or of a prefix target
/// (`192.0.2.0/24`) narrower than the configured length; a wider prefix
/// target keeps its own length.
fn prefix_of(target: &str, s: &Settings) -> Option<IpNet> {
    let (ip, own_len) = match target.parse::<IpAddr>() {
        Ok(ip) => (ip, None),
        Err(_) => {
            let net: IpNet = target.parse().ok()?;
            (net.addr(), Some(net.prefix_len()))
        }
    };
    let len = match ip {
        IpAddr::V4(_) => s.ipv4_prefix,
        IpAddr::V6(_) => s.ipv6_prefix,
    };
    IpNet::new(ip, own_len.map_or(len, |l| l.min(len)))
        .ok()
        .map(|n| n.trunc())
}

/// The grouping keys of an incident, most specific first.
fn keys_of(c: &Candidate, s: &Settings) -> Vec<(Reason, String)> {
    let mut keys = Vec::with_capacity(2);
    if let Some(net) = prefix_of(&c.target, s) {
        keys.push((Reason::SamePrefix, net.to_string()));
    }
    let attack = match &c.family {
        Some(f) => f.clone(),
        None => format!("metric:{}", c.metric),
    };
    keys.push((Reason::SameAttack, attack));
    keys
}

/// Whether `a` and `b` are distinct victims under `reason`: another node for
/// one attack family, another address for one prefix.
fn distinct(reason: Reason, a: &Candidate, b: &Candidate) -> bool {
    match reason {
        Reason::SameAttack => a.node_id != b.node_id,
        Reason::SamePrefix => a.target != b.target,
    }
}

/// What to do about the uncorrelated candidates, in id order.
pub fn correlate(candidates: &[Candidate], groups: &[OpenGroup], s: &Settings) -> Vec<Decision> {
    let mut out = Vec::new();
    let mut taken: HashSet<i64> = candidates
        .iter()
        .filter(|c| c.correlation_id.is_some())
        .map(|c| c.id)
        .collect();
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| c.id);
    let near = |a: i64, b: i64| (a - b).abs() <= s.window_ms;
    for c in &sorted {
        if taken.contains(&c.id) {
            continue;
        }
        for (reason, key) in keys_of(c, s) {
            if let Some(g) = groups.iter().find(|g| {
                g.tenant_id == c.tenant_id
                    && g.reason == reason.name()
                    && g.key == key
                    && near(g.started_ms, c.started_ms)
            }) {
                out.push(Decision::Join {
                    tenant_id: c.tenant_id,
                    group: g.id,
                    incident: c.id,
                });
                taken.insert(c.id);
                break;
            }
            let peers: Vec<&Candidate> = sorted
                .iter()
                .copied()
                .filter(|o| {
                    o.id != c.id
                        && o.tenant_id == c.tenant_id
                        && !taken.contains(&o.id)
                        && near(o.started_ms, c.started_ms)
                        && distinct(reason, c, o)
                        && keys_of(o, s).iter().any(|(r, k)| *r == reason && *k == key)
                })
                .collect();
            if peers.is_empty() || !(c.open || peers.iter().any(|o| o.open)) {
                continue;
            }
            let mut members: Vec<i64> = std::iter::once(c.id)
                .chain(peers.iter().map(|o| o.id))
                .collect();
            members.sort_unstable();
            let started_ms = peers
                .iter()
                .map(|o| o.started_ms)
                .fold(c.started_ms, i64::min);
            taken.extend(members.iter().copied());
            out.push(Decision::Create {
                tenant_id: c.tenant_id,
                reason,
                key,
                started_ms,
                members,
            });
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings {
        window_ms: 300_000,
        ipv4_prefix: 24,
        ipv6_prefix: 64,
    };

    fn inc(
        id: i64,
        tenant: i64,
        node: i64,
        target: &str,
        family: Option<&str>,
        started: i64,
    ) -> Candidate {
        Candidate {
            id,
            tenant_id: tenant,
            node_id: node,
            target: target.into(),
            metric: "rx_pps".into(),
            family: family.map(Into::into),
            started_ms: started,
            open: true,
            correlation_id: None,
        }
    }

    #[test]
    fn same_family_on_two_nodes_is_one_attack() {
        let c = [
            inc(1, 1, 10, "eth0", Some("syn_flood"), 0),
            inc(2, 1, 11, "eth0", Some("syn_flood"), 5_000),
        ];
        assert_eq!(
            correlate(&c, &[], &S),
            [Decision::Create {
                tenant_id: 1,
                reason: Reason::SameAttack,
                key: "syn_flood".into(),
                started_ms: 0,
                members: vec![1, 2]
            }]
        );
    }

    #[test]
    fn one_node_alone_or_other_tenants_or_families_do_not_correlate() {
        let c = [
            inc(1, 1, 10, "eth0", Some("syn_flood"), 0),
            inc(2, 1, 10, "eth1", Some("syn_flood"), 0), // same node
            inc(3, 2, 11, "eth0", Some("syn_flood"), 0), // other tenant
            inc(4, 1, 12, "eth0", Some("udp_flood"), 0), // other family
        ];
        assert_eq!(correlate(&c, &[], &S), []);
    }

    #[test]
    fn far_apart_in_time_do_not_correlate() {
        let c = [
            inc(1, 1, 10, "eth0", Some("syn_flood"), 0),
            inc(2, 1, 11, "eth0", Some("syn_flood"), 300_001),
        ];
        assert_eq!(correlate(&c, &[], &S), []);
    }

    #[test]
    fn addresses_in_one_prefix_correlate_even_on_one_node_and_prefix_wins() {
        let c = [
            inc(1, 1, 10, "192.0.2.10", Some("syn_flood"), 0),
            inc(2, 1, 10, "192.0.2.77", Some("udp_flood"), 0),
            inc(3, 1, 11, "198.51.100.1", Some("syn_flood"), 0),
        ];
        let d = correlate(&c, &[], &S);
        assert_eq!(
            d[0],
            Decision::Create {
                tenant_id: 1,
                reason: Reason::SamePrefix,
                key: "192.0.2.0/24".into(),
                started_ms: 0,
                members: vec![1, 2]
            }
        );
        assert_eq!(d.len(), 1, "incident 3 has no free peer left: {d:?}");
    }

    #[test]
    fn a_new_incident_joins_the_open_group() {
        let g = OpenGroup {
            id: 7,
            tenant_id: 1,
            reason: "same_attack".into(),
            key: "syn_flood".into(),
            started_ms: 0,
        };
        let mut old = inc(1, 1, 10, "eth0", Some("syn_flood"), 0);
        old.correlation_id = Some(7);
        let c = [old, inc(5, 1, 12, "eth0", Some("syn_flood"), 60_000)];
        assert_eq!(
            correlate(&c, &[g], &S),
            [Decision::Join {
                tenant_id: 1,
                group: 7,
                incident: 5
            }]
        );
    }

    #[test]
    fn unclassified_incidents_group_by_metric_and_resolved_ones_need_an_open_peer() {
        let mut a = inc(1, 1, 10, "eth0", None, 0);
        let mut b = inc(2, 1, 11, "eth0", None, 0);
        a.open = false;
        b.open = false;
        assert_eq!(correlate(&[a.clone(), b.clone()], &[], &S), []);
        b.open = true;
        let d = correlate(&[a, b], &[], &S);
        assert!(
            matches!(&d[0], Decision::Create { key, .. } if key == "metric:rx_pps"),
            "{d:?}"
        );
    }

    #[test]
    fn a_prefix_incident_and_an_address_in_it_are_one_attack() {
        // Carpet bombing reported on the prefix, and a hot address on itself.
        let c = [
            inc(1, 1, 10, "203.0.113.0/24", None, 0),
            inc(2, 1, 10, "203.0.113.9", None, 0),
        ];
        let d = correlate(&c, &[], &S);
        assert!(
            matches!(&d[0], Decision::Create { key, reason: Reason::SamePrefix, .. } if key == "203.0.113.0/24"),
            "{d:?}"
        );
        let wide = [
            inc(3, 1, 10, "198.51.0.0/16", None, 0),
            inc(4, 1, 11, "198.51.7.1", None, 0),
        ];
        let d = correlate(&wide, &[], &S);
        assert!(
            !matches!(
                &d[0],
                Decision::Create {
                    reason: Reason::SamePrefix,
                    ..
                }
            ),
            "a /16 is not the /24 of its addresses: {d:?}"
        );
    }

    #[test]
    fn ipv6_uses_its_own_prefix() {
        let c = [
            inc(1, 1, 10, "2001:db8::1", None, 0),
            inc(2, 1, 11, "2001:db8::ffff", None, 0),
        ];
        let d = correlate(&c, &[], &S);
        assert!(
            matches!(&d[0], Decision::Create { key, reason: Reason::SamePrefix, .. } if key == "2001:db8::/64"),
            "{d:?}"
        );
    }
}
