//! From an incident to provider actions, as a pure function: the victim
//! decides what to divert, the fingerprint and top sources decide whom to
//! block. Sources are only blocked when they are believable: a likely
//! spoofed attack has forged sources, and blocking them would only hurt
//! the innocent owners of those addresses.

use crate::action::ProviderAction;
use ipnet::IpNet;
use levee_model::IncidentInfo;
use levee_packet::classify::fingerprint::PortMatch;
use levee_packet::Fingerprint;
use std::net::IpAddr;

/// Knobs of [`actions_for_incident`].
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPolicy {
    /// Longest list of sources to block (provider rules are scarce).
    pub max_sources: usize,
    /// Smallest traffic share a top source needs to be blocked.
    pub min_source_share: f64,
    /// Diverted prefix length for IPv4: /24 is the longest prefix the
    /// Internet accepts in BGP, so it is what scrubbers advertise.
    pub divert_len_v4: u8,
    /// The same for IPv6 (/48).
    pub divert_len_v6: u8,
}

impl Default for ActionPolicy {
    fn default() -> Self {
        ActionPolicy {
            max_sources: 16,
            min_source_share: 0.01,
            divert_len_v4: 24,
            divert_len_v6: 48,
        }
    }
}

/// The actions an incident calls for; either may be absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentActions {
    pub divert: Option<ProviderAction>,
    pub block: Option<ProviderAction>,
    /// Why an action is absent, for the audit trail.
    pub notes: Vec<String>,
}

/// Builds the diversion and block actions for `incident`.
pub fn actions_for_incident(incident: &IncidentInfo, policy: &ActionPolicy) -> IncidentActions {
    let mut out = IncidentActions::default();
    let victim = incident
        .details
        .victim
        .as_deref()
        .or(Some(incident.target.as_str()))
        .and_then(|v| v.parse::<IpAddr>().ok());
    let Some(victim) = victim else {
        out.notes.push(format!(
            "no victim address (target {:?}): nothing to divert or protect",
            incident.target
        ));
        return out;
    };
    let len = if victim.is_ipv4() {
        policy.divert_len_v4
    } else {
        policy.divert_len_v6
    };
    if let Ok(p) = IpNet::new(victim, len) {
        out.divert = Some(ProviderAction::Divert { prefix: p.trunc() });
    }

    let spoofed = incident
        .details
        .spoofing
        .as_ref()
        .and_then(|s| s.get("likely"))
        .and_then(|l| l.as_bool())
        .unwrap_or(false);
    if spoofed {
        out.notes
            .push("sources are likely spoofed: no source blocking".to_string());
        return out;
    }
    let fingerprint: Option<Fingerprint> = incident
        .fingerprint
        .as_ref()
        .and_then(|f| serde_json::from_value(f.clone()).ok());
    let mut sources: Vec<IpNet> = Vec::new();
    if let Some(f) = &fingerprint {
        for p in &f.src_prefixes {
            if let Ok(n) = IpNet::new(p.addr, p.len) {
                sources.push(n.trunc());
            }
        }
    }
    if sources.is_empty() {
        sources = top_sources(incident, policy.min_source_share);
    }
    sources.retain(|s| s.addr().is_ipv4() == victim.is_ipv4());
    sources.sort();
    sources.dedup();
    sources.truncate(policy.max_sources);
    if sources.is_empty() {
        out.notes
            .push("no source prefixes or heavy sources: no source blocking".to_string());
        return out;
    }
    let (protocol, dst_ports) = fingerprint.as_ref().map(match_of).unwrap_or_default();
    out.block = Some(ProviderAction::BlockSources {
        sources,
        dst: Some(IpNet::from(victim)),
        protocol,
        dst_ports,
    });
    out
}

/// Protocol and destination ports a fingerprint pins down. A multi-vector
/// fingerprint keeps a field only when every vector agrees; a port range
/// drops the port condition (blocking the sources on every port is wider,
/// never narrower, than the attack).
fn match_of(f: &Fingerprint) -> (Option<u8>, Vec<u16>) {
    if !f.any_of.is_empty() {
        let parts: Vec<(Option<u8>, Vec<u16>)> = f.any_of.iter().map(match_of).collect();
        let first = parts[0].clone();
        return if parts.iter().all(|p| *p == first) {
            first
        } else {
            let proto = parts[0].0.filter(|p| parts.iter().all(|x| x.0 == Some(*p)));
            (proto, Vec::new())
        };
    }
    let protocol = f.protocol.map(|p| p.0);
    let mut ports = Vec::new();
    if let Some(list) = &f.dst_ports {
        for m in list {
            match m {
                PortMatch::Port(p) => ports.push(*p),
                PortMatch::Range(_) => return (protocol, Vec::new()),
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    (protocol, ports)
}

fn top_sources(incident: &IncidentInfo, min_share: f64) -> Vec<IpNet> {
    let Some(list) = incident
        .details
        .top_sources
        .as_ref()
        .and_then(|v| v.as_array())
    else {
        return Vec::new();
    };
    list.iter()
        .filter(|t| t.get("share").and_then(|s| s.as_f64()).unwrap_or(0.0) >= min_share)
        .filter_map(|t| t.get("address")?.as_str()?.parse::<IpAddr>().ok())
        .map(IpNet::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::IncidentDetails;
    use serde_json::json;

    fn incident(details: IncidentDetails, fingerprint: Option<serde_json::Value>) -> IncidentInfo {
        IncidentInfo {
            incident_id: "i1".into(),
            target: "eth0".into(),
            metric: "rx_pps".into(),
            value: 1e5,
            baseline: 10.0,
            ratio: 1e4,
            threshold: 100.0,
            metrics: vec![],
            started_at: "2026-01-01T00:00:00.000Z".into(),
            family: Some("udp_flood".into()),
            confidence: Some(90),
            fingerprint,
            details,
        }
    }

    fn fp(extra: serde_json::Value) -> serde_json::Value {
        let mut base = json!({"ip_version":4,"protocol":"udp","src_ports":null,"dst_ports":[53],
            "tcp_flags":null,"icmp_types":null,"length":null,"ttl":null,"fragment":false,
            "non_first_fragments":false,"src_prefixes":["198.51.100.0/24"],"coverage":1.0,
            "baseline_match":0.0,"sample_packets":100});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn victim_and_fingerprint_make_a_divert_and_a_narrow_block() {
        let d = IncidentDetails {
            victim: Some("203.0.113.10".into()),
            ..Default::default()
        };
        let a = actions_for_incident(&incident(d, Some(fp(json!({})))), &ActionPolicy::default());
        assert_eq!(
            a.divert,
            Some(ProviderAction::Divert {
                prefix: "203.0.113.0/24".parse().unwrap()
            })
        );
        assert_eq!(
            a.block,
            Some(ProviderAction::BlockSources {
                sources: vec!["198.51.100.0/24".parse().unwrap()],
                dst: Some("203.0.113.10/32".parse().unwrap()),
                protocol: Some(17),
                dst_ports: vec![53],
            })
        );
    }

    #[test]
    fn spoofed_sources_are_not_blocked() {
        let d = IncidentDetails {
            victim: Some("203.0.113.10".into()),
            spoofing: Some(json!({"score":95,"likely":true})),
            ..Default::default()
        };
        let a = actions_for_incident(&incident(d, Some(fp(json!({})))), &ActionPolicy::default());
        assert!(a.divert.is_some());
        assert_eq!(a.block, None);
        assert!(a.notes[0].contains("spoofed"), "{:?}", a.notes);
    }

    #[test]
    fn top_sources_stand_in_for_missing_prefixes_and_ranges_drop_ports() {
        let d = IncidentDetails {
            victim: Some("2001:db8::10".into()),
            top_sources: Some(json!([
                {"address":"2001:db8:ffff::1","packets":900,"share":0.9},
                {"address":"2001:db8:ffff::2","packets":1,"share":0.001},
                {"address":"192.0.2.1","packets":100,"share":0.1}
            ])),
            ..Default::default()
        };
        let f = fp(
            json!({"ip_version":6,"src_prefixes":[],"protocol":"tcp","dst_ports":[[1000,2000]]}),
        );
        let a = actions_for_incident(&incident(d, Some(f)), &ActionPolicy::default());
        assert_eq!(
            a.divert,
            Some(ProviderAction::Divert {
                prefix: "2001:db8::/48".parse().unwrap()
            })
        );
        assert_eq!(
            a.block,
            Some(ProviderAction::BlockSources {
                sources: vec!["2001:db8:ffff::1/128".parse().unwrap()],
                dst: Some("2001:db8::10/128".parse().unwrap()),
                protocol: Some(6),
                dst_ports: vec![],
            })
        );
    }

    #[test]
    fn interface_target_without_victim_gives_nothing() {
        let a = actions_for_incident(
            &incident(IncidentDetails::default(), None),
            &ActionPolicy::default(),
        );
        assert_eq!(a.divert, None);
        assert_eq!(a.block, None);
        assert!(a.notes[0].contains("eth0"));
    }

    #[test]
    fn multi_vector_keeps_only_what_all_vectors_share() {
        let d = IncidentDetails {
            victim: Some("203.0.113.10".into()),
            ..Default::default()
        };
        let f = json!({"ip_version":null,"protocol":null,"src_ports":null,"dst_ports":null,
            "tcp_flags":null,"icmp_types":null,"length":null,"ttl":null,"fragment":null,
            "non_first_fragments":false,"src_prefixes":[],"coverage":1.0,"baseline_match":null,
            "sample_packets":10,"any_of":[fp(json!({})), fp(json!({"dst_ports":[123]}))]});
        let d2 = IncidentDetails {
            top_sources: Some(json!([{"address":"198.51.100.7","packets":5,"share":0.5}])),
            ..d
        };
        let a = actions_for_incident(&incident(d2, Some(f)), &ActionPolicy::default());
        match a.block {
            Some(ProviderAction::BlockSources {
                protocol,
                dst_ports,
                ..
            }) => {
                assert_eq!(protocol, Some(17));
                assert!(dst_ports.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}
