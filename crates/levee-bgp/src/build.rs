//! Rules from an incident. The packets to act on come from
//! `levee_mitigate::matcher` (fingerprint, else family template, else the
//! metrics), the same [`Match`]es on-node mitigation uses, so both layers
//! filter the same traffic; this module only says them in FlowSpec.
//!
//! FlowSpec cannot say everything a `Match` can: TTL ranges and "not part
//! of an established connection" have no component, so they are left out
//! and the rule is that much wider (still bound to the attacked address).
//! A match naming several source prefixes becomes one rule per prefix (at
//! most [`MAX_SOURCES`], else none: a wider rule, not a flood of rules).

use crate::action::Action;
use crate::flowspec::{frag, ranges, Afi, BitOp, FlowPrefix, FlowSpec, NumOp};
use crate::rule::FlowRule;
use ipnet::IpNet;
use levee_mitigate::{Fragments, IncidentView, Match};
use levee_packet::classify::fingerprint::PortMatch;
use std::net::IpAddr;

/// Most source prefixes turned into separate rules for one match.
pub const MAX_SOURCES: usize = 8;

/// FlowSpec rules (without actions) for one match.
pub fn from_match(m: &Match) -> Vec<FlowSpec> {
    let base = spec_of(m);
    let sources: Vec<IpNet> = m
        .src_prefixes
        .iter()
        .filter_map(|p| IpNet::new(p.addr, p.len).ok())
        .filter(|n| n.addr().is_ipv6() == m.dst.is_ipv6())
        .collect();
    if sources.is_empty() || sources.len() > MAX_SOURCES {
        return vec![base];
    }
    sources
        .into_iter()
        .map(|s| FlowSpec {
            src: Some(FlowPrefix::new(s)),
            ..base.clone()
        })
        .collect()
}

fn host(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

fn ports(p: &[PortMatch]) -> Vec<NumOp> {
    let rs: Vec<(u64, u64)> = p
        .iter()
        .map(|p| match *p {
            PortMatch::Port(x) => (u64::from(x), u64::from(x)),
            PortMatch::Range([lo, hi]) => (u64::from(lo), u64::from(hi)),
        })
        .collect();
    ranges(&rs)
}

/// Exact TCP flag bytes, any of which matches: per byte, "all of these
/// set and none of the others".
pub fn exact_tcp_flags(bytes: &[u8]) -> Vec<BitOp> {
    let mut out = Vec::new();
    for &f in bytes {
        let rest = u16::from(!f);
        if f == 0 {
            out.push(BitOp::none(0xff));
            continue;
        }
        out.push(BitOp::all(u16::from(f)));
        if rest != 0 {
            out.push(BitOp::none(rest).and());
        }
    }
    out
}

fn spec_of(m: &Match) -> FlowSpec {
    let afi = if m.is_v6() { Afi::Ipv6 } else { Afi::Ipv4 };
    let length = m
        .length
        .map(|[lo, hi]| {
            // IPv6 packet length in FlowSpec excludes the 40-byte base
            // header (RFC 8956); `Match` counts it, like IPv4's total length.
            let cut = if afi == Afi::Ipv6 { 40 } else { 0 };
            ranges(&[(
                u64::from(lo).saturating_sub(cut),
                u64::from(hi).saturating_sub(cut),
            )])
        })
        .unwrap_or_default();
    FlowSpec {
        dst: Some(FlowPrefix::new(host(m.dst))),
        protocol: m
            .protocol
            .map(|p| vec![NumOp::eq(u64::from(p))])
            .unwrap_or_default(),
        dst_port: ports(&m.dst_ports),
        src_port: ports(&m.src_ports),
        icmp_type: m
            .icmp_types
            .iter()
            .map(|&t| NumOp::eq(u64::from(t)))
            .collect(),
        tcp_flags: exact_tcp_flags(&m.tcp_flags.iter().map(|f| f.0).collect::<Vec<_>>()),
        length,
        fragment: match m.fragments {
            Fragments::Any => Vec::new(),
            Fragments::Unfragmented => vec![BitOp::none(frag::IS_F)],
            Fragments::Fragments => vec![BitOp::any(frag::IS_F)],
            Fragments::NonFirst => vec![BitOp::all(frag::IS_F), BitOp::none(frag::FF).and()],
        },
        ..FlowSpec::new(afi)
    }
}

/// What an incident attacks, as a prefix: the packet view's victim (a
/// host route), else the target when it is an address or a prefix (flow
/// mode's prefix incidents: carpet bombing across a /24), else nothing
/// (an interface name says nothing routable).
pub fn target(inc: &IncidentView) -> Option<IpNet> {
    inc.victim.map(IpNet::from).or_else(|| {
        inc.target
            .parse::<IpAddr>()
            .ok()
            .map(IpNet::from)
            .or_else(|| inc.target.parse::<IpNet>().ok().map(|n| n.trunc()))
    })
}

/// FlowSpec rules with `actions` for an incident on `dst` (a host or a
/// whole attacked prefix: the rule's destination component is `dst`).
pub fn flow_rules(inc: &IncidentView, dst: IpNet, actions: &[Action]) -> Vec<FlowRule> {
    let metrics: Vec<&str> = inc.metrics.iter().map(String::as_str).collect();
    let mut out: Vec<FlowRule> = Vec::new();
    for m in levee_mitigate::matcher::for_incident(
        inc.fingerprint.as_ref(),
        inc.family,
        &metrics,
        dst.addr(),
    ) {
        for mut spec in from_match(&m) {
            spec.dst = Some(FlowPrefix::new(dst));
            let r = FlowRule {
                spec,
                actions: actions.to_vec(),
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowspec::{eval, nlri};
    use levee_packet::{Family, TcpFlags};

    fn v4() -> IpAddr {
        "203.0.113.7".parse().unwrap()
    }

    #[test]
    fn syn_flood_becomes_exact_flags() {
        let m = &levee_mitigate::matcher::from_family(Family::SynFlood, v4()).unwrap()[0];
        let s = &from_match(m)[0];
        assert_eq!(s.dst.unwrap().net.to_string(), "203.0.113.7/32");
        assert_eq!(s.protocol, vec![NumOp::eq(6)]);
        let t = |x: u16| eval(&s.tcp_flags, |o| o.and, |o| o.test(x));
        assert!(t(TcpFlags::SYN as u16));
        assert!(!t((TcpFlags::SYN | TcpFlags::ACK) as u16));
        assert_eq!(s.fragment, vec![BitOp::none(frag::IS_F)]);
        nlri::encode(s).unwrap();
    }

    #[test]
    fn reflection_keeps_source_port_and_later_fragments() {
        let ms = levee_mitigate::matcher::from_family(Family::DnsAmplification, v4()).unwrap();
        let main = &from_match(&ms[0])[0];
        assert_eq!(main.src_port, vec![NumOp::eq(53)]);
        let tails = &from_match(&ms[1])[0];
        let f = |x: u16| eval(&tails.fragment, |o| o.and, |o| o.test(x));
        assert!(f(frag::IS_F) && !f(frag::IS_F | frag::FF) && !f(0));
    }

    #[test]
    fn sources_split_and_cap() {
        let mut m = Match::to(v4());
        m.src_prefixes = vec![
            levee_packet::classify::fingerprint::IpPrefix {
                addr: "198.51.100.0".parse().unwrap(),
                len: 24,
            },
            levee_packet::classify::fingerprint::IpPrefix {
                addr: "192.0.2.0".parse().unwrap(),
                len: 24,
            },
        ];
        assert_eq!(from_match(&m).len(), 2);
        m.src_prefixes = (0..9)
            .map(|i| levee_packet::classify::fingerprint::IpPrefix {
                addr: IpAddr::from([10, i, 0, 0]),
                len: 16,
            })
            .collect();
        let all = from_match(&m);
        assert_eq!(all.len(), 1);
        assert!(all[0].src.is_none());
    }

    #[test]
    fn v6_length_excludes_the_base_header() {
        let mut m = Match::to("2001:db8::7".parse().unwrap());
        m.length = Some([100, 140]);
        let s = &from_match(&m)[0];
        assert_eq!(s.afi, Afi::Ipv6);
        assert_eq!(s.length, ranges(&[(60, 100)]));
    }
}
