//! [`Match`]: which packets a mitigation acts on, made from the incident's
//! fingerprint when there is one, else from the attack family, else from the
//! metrics that moved.
//!
//! A match is always bound to one destination address (the attacked
//! address on this node), so a rule can never reach traffic for anything
//! else. Match semantics follow `levee_packet::classify::fingerprint`:
//! transport conditions (ports, TCP flags, ICMP types) never match later
//! IP fragments, which get their own [`Fragments::NonFirst`] match.

use levee_packet::classify::fingerprint::{IpPrefix, PortMatch};
use levee_packet::{Family, Fingerprint, TcpFlags};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// IP protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// Which fragments a match selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fragments {
    /// Fragmented or not.
    #[default]
    Any,
    /// Whole datagrams only.
    Unfragmented,
    /// Fragments only (first or later).
    Fragments,
    /// Later fragments only (offset > 0): no transport header.
    NonFirst,
}

/// The packets a mitigation acts on. Empty lists and `None` mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The attacked address on this node.
    pub dst: IpAddr,
    pub protocol: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_ports: Vec<PortMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_ports: Vec<PortMatch>,
    /// Exact TCP flag bytes, any of which matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_flags: Vec<TcpFlags>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icmp_types: Vec<u8>,
    /// Inclusive IP total length (IPv6: payload length + 40) range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<[u16; 2]>,
    /// Inclusive TTL / hop limit range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<[u8; 2]>,
    #[serde(default)]
    pub fragments: Fragments,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub src_prefixes: Vec<IpPrefix>,
    /// Only packets that are not part of an established (or related)
    /// connection: needs connection tracking.
    #[serde(default)]
    pub not_established: bool,
}

impl Match {
    /// Everything to `dst`.
    pub fn to(dst: IpAddr) -> Match {
        Match {
            dst,
            protocol: None,
            dst_ports: Vec::new(),
            src_ports: Vec::new(),
            tcp_flags: Vec::new(),
            icmp_types: Vec::new(),
            length: None,
            ttl: None,
            fragments: Fragments::Any,
            src_prefixes: Vec::new(),
            not_established: false,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// Whether transport conditions (ports, flags, ICMP types) are present.
    pub fn has_transport(&self) -> bool {
        !self.dst_ports.is_empty()
            || !self.src_ports.is_empty()
            || !self.tcp_flags.is_empty()
            || !self.icmp_types.is_empty()
    }

    /// Narrow enough to discard every packet it matches: it names the
    /// attack's sources, its source ports (reflection), its TCP flags or
    /// ICMP types, fragments, traffic outside established connections, or
    /// a protocol other than TCP/UDP. "All TCP to port 443" is not narrow:
    /// dropping it is the attacker's goal, not a mitigation.
    pub fn is_narrow(&self) -> bool {
        !self.src_prefixes.is_empty()
            || !self.src_ports.is_empty()
            || !self.tcp_flags.is_empty()
            || !self.icmp_types.is_empty()
            || self.not_established
            || matches!(self.fragments, Fragments::Fragments | Fragments::NonFirst)
            || self
                .protocol
                .is_some_and(|p| p != proto::TCP && p != proto::UDP)
    }

    /// Whether the match needs connection tracking state.
    pub fn needs_conntrack(&self) -> bool {
        self.not_established
    }

    /// The protocol's name for rule text (`tcp`, `udp`, `icmp`, ... or the number).
    pub fn protocol_name(&self) -> Option<String> {
        self.protocol.map(|p| match p {
            proto::ICMP if self.is_v6() => "icmpv6".to_string(),
            p => levee_packet::IpProtocol(p).to_string(),
        })
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.protocol_name() {
            parts.push(p);
        }
        if !self.tcp_flags.is_empty() {
            parts.push(format!("flags {}", join(&self.tcp_flags)));
        }
        if !self.src_ports.is_empty() {
            parts.push(format!("sport {}", ports(&self.src_ports)));
        }
        if !self.dst_ports.is_empty() {
            parts.push(format!("dport {}", ports(&self.dst_ports)));
        }
        if !self.icmp_types.is_empty() {
            parts.push(format!("icmp type {}", join(&self.icmp_types)));
        }
        match self.fragments {
            Fragments::Any => {}
            Fragments::Unfragmented => parts.push("unfragmented".into()),
            Fragments::Fragments => parts.push("fragments".into()),
            Fragments::NonFirst => parts.push("later fragments".into()),
        }
        if let Some([lo, hi]) = self.length {
            parts.push(format!("length {lo}-{hi}"));
        }
        if let Some([lo, hi]) = self.ttl {
            parts.push(format!("ttl {lo}-{hi}"));
        }
        if self.not_established {
            parts.push("not established".into());
        }
        if !self.src_prefixes.is_empty() {
            parts.push(format!("from {}", join(&self.src_prefixes)));
        }
        parts.push(format!("to {}", self.dst));
        f.write_str(&parts.join(" "))
    }
}

fn join<T: fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn ports(v: &[PortMatch]) -> String {
    v.iter()
        .map(|p| match p {
            PortMatch::Port(x) => x.to_string(),
            PortMatch::Range([lo, hi]) => format!("{lo}-{hi}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Matches for `dst` from what an incident says about its packets: the
/// fingerprint when there is one, else the family's template, else the
/// metrics that moved. On-node mitigation and BGP FlowSpec both start here.
pub fn for_incident(
    fingerprint: Option<&Fingerprint>,
    family: Option<Family>,
    metrics: &[&str],
    dst: IpAddr,
) -> Vec<Match> {
    match (fingerprint, family.and_then(|f| from_family(f, dst))) {
        (Some(fp), _) => from_fingerprint(fp, dst),
        (None, Some(t)) => t,
        (None, None) => from_metrics(metrics, dst),
    }
}

/// Matches for `dst` from a fingerprint (one per vector of a multi-vector
/// fingerprint, plus one for later fragments where the fingerprint covers
/// them). Empty when the fingerprint is for the other IP version.
pub fn from_fingerprint(fp: &Fingerprint, dst: IpAddr) -> Vec<Match> {
    if !fp.any_of.is_empty() {
        return fp
            .any_of
            .iter()
            .flat_map(|v| from_fingerprint(v, dst))
            .collect();
    }
    if let Some(v) = fp.ip_version {
        if (v == 6) != dst.is_ipv6() {
            return Vec::new();
        }
    }
    let src_prefixes: Vec<IpPrefix> = fp
        .src_prefixes
        .iter()
        .filter(|p| p.addr.is_ipv6() == dst.is_ipv6())
        .copied()
        .collect();
    let main = Match {
        dst,
        protocol: fp.protocol.map(|p| p.0),
        dst_ports: fp.dst_ports.clone().unwrap_or_default(),
        // A source-port *range* is the attack tool's ephemeral-port walk
        // caught at sampling time (hping3 counts up, others pick at random):
        // it drifts, and a rule holding it would let the rest through. Exact
        // source ports (a reflected service's 53, 123...) are kept.
        src_ports: fp
            .src_ports
            .clone()
            .filter(|v| v.iter().all(|p| matches!(p, PortMatch::Port(_))))
            .unwrap_or_default(),
        tcp_flags: fp.tcp_flags.clone().unwrap_or_default(),
        icmp_types: fp.icmp_types.clone().unwrap_or_default(),
        length: fp.length,
        ttl: fp.ttl,
        fragments: match fp.fragment {
            None => Fragments::Any,
            Some(false) => Fragments::Unfragmented,
            Some(true) => Fragments::Fragments,
        },
        src_prefixes,
        not_established: false,
    };
    let mut out = Vec::new();
    if fp.non_first_fragments && fp.fragment != Some(false) && main.has_transport() {
        // Later fragments carry no transport header: the main match cannot
        // see them, so they get a match of their own (module docs).
        out.push(Match {
            dst_ports: Vec::new(),
            src_ports: Vec::new(),
            tcp_flags: Vec::new(),
            icmp_types: Vec::new(),
            fragments: Fragments::NonFirst,
            ..main.clone()
        });
    }
    out.insert(0, main);
    out
}

/// Matches for `dst` when there is no fingerprint, from the family alone:
/// what every attack of that family has in common. `None` for families
/// that say nothing about the packets (`multi_vector`, `traffic_spike`).
pub fn from_family(family: Family, dst: IpAddr) -> Option<Vec<Match>> {
    let tcp = |flags: &[u8], not_established: bool| Match {
        protocol: Some(proto::TCP),
        tcp_flags: flags.iter().map(|&f| TcpFlags(f)).collect(),
        fragments: Fragments::Unfragmented,
        not_established,
        ..Match::to(dst)
    };
    let reflection = |port: Option<u16>| {
        let main = Match {
            protocol: Some(proto::UDP),
            src_ports: port.map(PortMatch::Port).into_iter().collect(),
            // Replies to this node's own queries belong to connections it
            // opened; reflected traffic never does.
            not_established: true,
            ..Match::to(dst)
        };
        let tails = Match {
            protocol: Some(proto::UDP),
            fragments: Fragments::NonFirst,
            ..Match::to(dst)
        };
        vec![main, tails]
    };
    const S: u8 = TcpFlags::SYN;
    const A: u8 = TcpFlags::ACK;
    const R: u8 = TcpFlags::RST;
    const F: u8 = TcpFlags::FIN;
    const P: u8 = TcpFlags::PSH;
    const U: u8 = TcpFlags::URG;
    Some(match family {
        Family::SynFlood => vec![tcp(&[S], false)],
        Family::AckFlood => vec![tcp(&[A, P | A], true)],
        Family::RstFlood => vec![tcp(&[R, R | A], true)],
        Family::TcpFlagAbuse => vec![tcp(&[0, F | P | U, S | A, F | A], true)],
        Family::UdpFlood => vec![Match {
            protocol: Some(proto::UDP),
            ..Match::to(dst)
        }],
        Family::IcmpFlood => vec![Match {
            protocol: Some(if dst.is_ipv6() {
                proto::ICMPV6
            } else {
                proto::ICMP
            }),
            icmp_types: vec![if dst.is_ipv6() { 128 } else { 8 }],
            ..Match::to(dst)
        }],
        Family::IpFragmentFlood => vec![Match {
            fragments: Fragments::Fragments,
            ..Match::to(dst)
        }],
        Family::DnsAmplification => reflection(Some(53)),
        Family::NtpAmplification => reflection(Some(123)),
        Family::MemcachedAmplification => reflection(Some(11211)),
        Family::SsdpAmplification => reflection(Some(1900)),
        Family::CldapAmplification => reflection(Some(389)),
        Family::SnmpAmplification => reflection(Some(161)),
        Family::ChargenAmplification => reflection(Some(19)),
        Family::UdpReflectionOther => reflection(None),
        Family::HttpFlood => vec![Match {
            protocol: Some(proto::TCP),
            dst_ports: vec![PortMatch::Port(80), PortMatch::Port(443)],
            ..Match::to(dst)
        }],
        Family::IpProtocolFlood | Family::MultiVector | Family::TrafficSpike => return None,
    })
}

/// Matches for `dst` from the names of the metrics an incident moved
/// (`syn_recv`, `tcp_pps`, `udp_pps`, `icmp_pps`; anything else says
/// nothing about the packets). Always at least one match.
pub fn from_metrics(metrics: &[&str], dst: IpAddr) -> Vec<Match> {
    let has = |m: &str| metrics.contains(&m);
    let mut out = Vec::new();
    if has("syn_recv") {
        out.push(Match {
            protocol: Some(proto::TCP),
            tcp_flags: vec![TcpFlags(TcpFlags::SYN)],
            ..Match::to(dst)
        });
    } else if has("tcp_pps") {
        out.push(Match {
            protocol: Some(proto::TCP),
            ..Match::to(dst)
        });
    }
    if has("udp_pps") {
        out.push(Match {
            protocol: Some(proto::UDP),
            ..Match::to(dst)
        });
    }
    if has("icmp_pps") {
        out.push(Match {
            protocol: Some(if dst.is_ipv6() {
                proto::ICMPV6
            } else {
                proto::ICMP
            }),
            icmp_types: vec![if dst.is_ipv6() { 128 } else { 8 }],
            ..Match::to(dst)
        });
    }
    if out.is_empty() {
        out.push(Match::to(dst));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_packet::IpProtocol;

    fn fp() -> Fingerprint {
        Fingerprint {
            ip_version: Some(4),
            protocol: Some(IpProtocol(6)),
            src_ports: None,
            dst_ports: Some(vec![PortMatch::Port(80)]),
            tcp_flags: Some(vec![TcpFlags(TcpFlags::SYN)]),
            icmp_types: None,
            length: Some([40, 48]),
            ttl: Some([240, 243]),
            fragment: Some(false),
            non_first_fragments: false,
            src_prefixes: vec![],
            coverage: 0.99,
            baseline_match: None,
            sample_packets: 1000,
            any_of: vec![],
        }
    }

    fn v4() -> IpAddr {
        "10.0.0.2".parse().unwrap()
    }

    #[test]
    fn fingerprint_becomes_one_narrow_match() {
        let m = from_fingerprint(&fp(), v4());
        assert_eq!(m.len(), 1);
        let m = &m[0];
        assert_eq!(m.protocol, Some(6));
        assert_eq!(m.dst_ports, vec![PortMatch::Port(80)]);
        assert_eq!(m.fragments, Fragments::Unfragmented);
        assert!(m.is_narrow());
        assert_eq!(
            m.to_string(),
            "tcp flags S dport 80 unfragmented length 40-48 ttl 240-243 to 10.0.0.2"
        );
        assert!(from_fingerprint(&fp(), "fd00::2".parse().unwrap()).is_empty());
    }

    #[test]
    fn fragments_of_reflection_get_their_own_match() {
        let mut f = fp();
        f.protocol = Some(IpProtocol(17));
        f.tcp_flags = None;
        f.dst_ports = None;
        f.src_ports = Some(vec![PortMatch::Port(53)]);
        f.fragment = None;
        f.non_first_fragments = true;
        let m = from_fingerprint(&f, v4());
        assert_eq!(m.len(), 2);
        let mut walk = fp();
        walk.src_ports = Some(vec![PortMatch::Range([162, 58241])]);
        assert!(
            from_fingerprint(&walk, v4())[0].src_ports.is_empty(),
            "port walks are left out"
        );
        assert_eq!(m[1].fragments, Fragments::NonFirst);
        assert!(m[1].src_ports.is_empty() && m[1].protocol == Some(17));
        let multi = Fingerprint {
            any_of: vec![fp(), f],
            ..fp()
        };
        assert_eq!(from_fingerprint(&multi, v4()).len(), 3);
    }

    #[test]
    fn families_give_templates() {
        let syn = from_family(Family::SynFlood, v4()).unwrap();
        assert_eq!(syn[0].tcp_flags, vec![TcpFlags(TcpFlags::SYN)]);
        let dns = from_family(Family::DnsAmplification, v4()).unwrap();
        assert_eq!(dns[0].src_ports, vec![PortMatch::Port(53)]);
        assert!(dns[0].not_established && dns[0].needs_conntrack());
        let icmp6 = from_family(Family::IcmpFlood, "fd00::2".parse().unwrap()).unwrap();
        assert_eq!(icmp6[0].protocol_name().as_deref(), Some("icmpv6"));
        assert_eq!(icmp6[0].icmp_types, vec![128]);
        assert!(from_family(Family::TrafficSpike, v4()).is_none());
        for f in Family::ALL {
            for m in from_family(f, v4()).unwrap_or_default() {
                assert_eq!(m.dst, v4());
            }
        }
        // A UDP flood without a fingerprint is not narrow: never dropped whole.
        assert!(!from_family(Family::UdpFlood, v4()).unwrap()[0].is_narrow());
    }

    #[test]
    fn metrics_fallback() {
        let m = from_metrics(&["rx_pps", "syn_recv", "tcp_pps"], v4());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].tcp_flags, vec![TcpFlags(TcpFlags::SYN)]);
        let m = from_metrics(&["udp_pps", "icmp_pps"], v4());
        assert_eq!(m.len(), 2);
        let m = from_metrics(&["rx_bps"], v4());
        assert_eq!(m, vec![Match::to(v4())]);
        assert!(!m[0].is_narrow());
    }

    #[test]
    fn match_serde_round_trip() {
        let m = from_family(Family::DnsAmplification, v4()).unwrap();
        let j = serde_json::to_string(&m).unwrap();
        let back: Vec<Match> = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
    }
}
