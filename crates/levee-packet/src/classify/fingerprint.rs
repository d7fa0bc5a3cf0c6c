//! Attack fingerprints ([`Fingerprint`]): the narrowest header match that
//! covers an attack vector's sampled packets, measured against the sample
//! and, when given, against the pre-attack baseline.
//!
//! A fingerprint becomes the `fingerprint` field of incident events and,
//! later, nftables and BGP FlowSpec rules, so every field is explicit and
//! typed; `null` means "any".
//!
//! Fitting: the vector's sampled packets may lose at most 5% in total
//! (coverage >= 95%). Each dimension in turn (IP version, protocol, fragment
//! state, TCP flags, ICMP types, destination ports, source ports, length, TTL,
//! source prefixes) takes the narrowest value set or range that keeps all but
//! at most 1% of the packets still matching, within what is left of the 5%
//! budget. Categorical dimensions keep a short list of exact values (or no
//! condition when the list would be long); ranges take the narrowest window.
//!
//! Match semantics (what a rule generator must reproduce):
//! - `ip_version`, `protocol`, `length` (IP total length), `ttl` (TTL / hop
//!   limit) and `src_prefixes` apply to every packet;
//! - `fragment: false` matches unfragmented packets only, `true` fragments
//!   only (first or later), `null` both;
//! - `non_first_fragments`: whether later fragments (offset > 0) match. They
//!   carry no transport header, so `src_ports`, `dst_ports`, `tcp_flags` and
//!   `icmp_types` are not applied to them (a reassembling host sees them as
//!   part of the matched datagram; a stateless filter needs a separate
//!   "fragment, not first" rule for them);
//! - a packet without ports never matches a port condition, nor a packet
//!   other than TCP a `tcp_flags` one.

use crate::features::{FragKind, Sample};
use crate::meta::{key_ip, key_is_v4, proto, IpProtocol, TcpFlags};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Share of a vector's packets a fingerprint must match.
pub const MIN_COVERAGE: f64 = 0.95;
/// Largest share one dimension may give up.
const PER_DIMENSION: f64 = 0.01;
/// Longest exact value lists before a dimension falls back to a range / any.
const MAX_PORTS: usize = 8;
const MAX_FLAG_SETS: usize = 4;
const MAX_ICMP_TYPES: usize = 4;
const MAX_PREFIXES: usize = 16;
/// Source prefix lengths used for `src_prefixes`.
const PREFIX_V4: u8 = 24;
const PREFIX_V6: u8 = 48;

/// A port or an inclusive port range: `80` or `[1024, 65535]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortMatch {
    Port(u16),
    Range([u16; 2]),
}

impl PortMatch {
    pub fn contains(&self, p: u16) -> bool {
        match *self {
            PortMatch::Port(x) => x == p,
            PortMatch::Range([lo, hi]) => (lo..=hi).contains(&p),
        }
    }
}

/// An address prefix, written `192.0.2.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpPrefix {
    /// The prefix of length `len` containing the address with key `key`.
    fn of_key(key: u128, v4: bool) -> IpPrefix {
        let len = if v4 { PREFIX_V4 } else { PREFIX_V6 };
        let bits = if v4 {
            96 + u32::from(len)
        } else {
            u32::from(len)
        };
        let mask = u128::MAX << (128 - bits);
        IpPrefix {
            addr: key_ip(key & mask),
            len,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let l = u32::from(self.len.min(32));
                let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let l = u32::from(self.len.min(128));
                let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("prefix {s:?} lacks /length"))?;
        let addr: IpAddr = a.parse().map_err(|e| format!("prefix {s:?}: {e}"))?;
        let len: u8 = l.parse().map_err(|e| format!("prefix {s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix {s:?}: length above {max}"));
        }
        Ok(IpPrefix { addr, len })
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The narrowest match for an attack vector, with how well it fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// 4 or 6.
    pub ip_version: Option<u8>,
    pub protocol: Option<IpProtocol>,
    pub src_ports: Option<Vec<PortMatch>>,
    pub dst_ports: Option<Vec<PortMatch>>,
    /// Exact flag bytes, any of which matches (e.g. `["S"]`, `["SA"]`).
    pub tcp_flags: Option<Vec<TcpFlags>>,
    pub icmp_types: Option<Vec<u8>>,
    /// Inclusive IP total length range, bytes.
    pub length: Option<[u16; 2]>,
    /// Inclusive TTL / hop limit range.
    pub ttl: Option<[u8; 2]>,
    pub fragment: Option<bool>,
    pub non_first_fragments: bool,
    /// Source prefixes (/24 IPv4, /48 IPv6), when a few cover the vector.
    pub src_prefixes: Vec<IpPrefix>,
    /// Share of the vector's sampled packets this matches.
    pub coverage: f64,
    /// Share of the baseline window's sampled packets this matches (`null`
    /// without a baseline).
    pub baseline_match: Option<f64>,
    /// Sampled packets of the vector the fit was made on.
    pub sample_packets: u64,
    /// For `multi_vector`: one fingerprint per vector, any of which matches.
    /// The fields above are then all `null` except the combined coverage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<Fingerprint>,
}

impl Fingerprint {
    /// Does a sampled packet match? (See the module docs for the semantics.)
    pub fn matches(&self, s: &Sample) -> bool {
        if !self.any_of.is_empty() {
            return self.any_of.iter().any(|f| f.matches(s));
        }
        if let Some(v) = self.ip_version {
            if (v == 6) != s.ipv6 {
                return false;
            }
        }
        if let Some(p) = self.protocol {
            if p.0 != s.protocol {
                return false;
            }
        }
        match (self.fragment, s.frag) {
            (Some(false), FragKind::First | FragKind::Tail) | (Some(true), FragKind::Whole) => {
                return false
            }
            _ => {}
        }
        if s.frag == FragKind::Tail {
            if !self.non_first_fragments {
                return false;
            }
        } else {
            if let Some(ports) = &self.src_ports {
                if !s.has_ports || !ports.iter().any(|p| p.contains(s.src_port)) {
                    return false;
                }
            }
            if let Some(ports) = &self.dst_ports {
                if !s.has_ports || !ports.iter().any(|p| p.contains(s.dst_port)) {
                    return false;
                }
            }
            if let Some(flags) = &self.tcp_flags {
                let is_tcp = s.protocol == proto::TCP && s.has_ports;
                if !is_tcp || !flags.iter().any(|f| f.0 == s.tcp_flags) {
                    return false;
                }
            }
            if let Some(types) = &self.icmp_types {
                if !s.has_icmp || !types.contains(&s.icmp_type) {
                    return false;
                }
            }
        }
        if let Some([lo, hi]) = self.length {
            if !(lo..=hi).contains(&s.ip_len) {
                return false;
            }
        }
        if let Some([lo, hi]) = self.ttl {
            if !(lo..=hi).contains(&s.ttl) {
                return false;
            }
        }
        if !self.src_prefixes.is_empty() {
            let ip = key_ip(s.src);
            if !self.src_prefixes.iter().any(|p| p.contains(ip)) {
                return false;
            }
        }
        true
    }

    /// Combines per-vector fingerprints for a multi-vector attack, measuring
    /// the union on the samples.
    pub fn any_of(
        parts: Vec<Fingerprint>,
        vector: &[Sample],
        baseline: Option<&[Sample]>,
    ) -> Fingerprint {
        let mut fp = Fingerprint {
            ip_version: None,
            protocol: None,
            src_ports: None,
            dst_ports: None,
            tcp_flags: None,
            icmp_types: None,
            length: None,
            ttl: None,
            fragment: None,
            non_first_fragments: false,
            src_prefixes: Vec::new(),
            coverage: 0.0,
            baseline_match: None,
            sample_packets: vector.len() as u64,
            any_of: parts,
        };
        fp.coverage = share(vector, &fp);
        fp.baseline_match = baseline.map(|b| share(b, &fp));
        fp
    }
}

/// Share of `samples` that `fp` matches (0 for no samples).
pub fn share(samples: &[Sample], fp: &Fingerprint) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().filter(|s| fp.matches(s)).count() as f64 / samples.len() as f64
}

/// Fits the narrowest fingerprint to `vector` (a vector's sampled packets).
/// `None` when there are no packets. When the fit matches 5% or more of
/// `baseline`, a second fit allowing more source prefixes is tried and the
/// one matching less baseline traffic kept.
pub fn fit(vector: &[Sample], baseline: Option<&[Sample]>) -> Option<Fingerprint> {
    if vector.is_empty() {
        return None;
    }
    let first = fit_with(vector, baseline, MAX_PREFIXES);
    match first.baseline_match {
        Some(b) if b >= 0.05 => {
            let second = fit_with(vector, baseline, MAX_PREFIXES * 4);
            if second.baseline_match < first.baseline_match {
                Some(second)
            } else {
                Some(first)
            }
        }
        _ => Some(first),
    }
}

/// Tracks which sampled packets the fingerprint still covers, and how many
/// more it may give up.
struct Fitter<'a> {
    pts: &'a [Sample],
    active: Vec<bool>,
    budget: usize,
    per_dim: usize,
}

impl<'a> Fitter<'a> {
    fn allowance(&self) -> usize {
        self.per_dim.min(self.budget)
    }

    fn active(&self) -> impl Iterator<Item = (usize, &'a Sample)> + '_ {
        self.pts
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.active[*i])
    }

    /// The smallest set of values (at most `max`) covering all active packets
    /// that have a value except at most the allowance; drops the rest.
    fn categorical<V: Copy + Eq + std::hash::Hash + Ord>(
        &mut self,
        max: usize,
        value: impl Fn(&Sample) -> Option<V>,
    ) -> Option<Vec<V>> {
        let mut counts: HashMap<V, usize> = HashMap::new();
        let mut total = 0usize;
        for (_, s) in self.active() {
            if let Some(v) = value(s) {
                *counts.entry(v).or_default() += 1;
                total += 1;
            }
        }
        if total == 0 {
            return None;
        }
        let mut by_count: Vec<(V, usize)> = counts.into_iter().collect();
        // Ties broken by value so the result doesn't depend on hash order.
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let need = total - self.allowance().min(total);
        let mut kept = Vec::new();
        let mut covered = 0usize;
        for (v, c) in by_count {
            if covered >= need {
                break;
            }
            kept.push(v);
            covered += c;
        }
        if kept.len() > max {
            return None;
        }
        self.drop_where(|s| value(s).is_some_and(|v| !kept.contains(&v)));
        kept.sort();
        Some(kept)
    }

    /// The narrowest `[lo, hi]` window holding all active values but at most
    /// the allowance; drops the rest.
    fn range(&mut self, value: impl Fn(&Sample) -> Option<u16>) -> Option<[u16; 2]> {
        let mut vals: Vec<u16> = self.active().filter_map(|(_, s)| value(s)).collect();
        if vals.is_empty() {
            return None;
        }
        vals.sort_unstable();
        let keep = vals.len() - self.allowance().min(vals.len() - 1);
        let mut best = (u32::MAX, 0usize);
        for i in 0..=vals.len() - keep {
            let w = u32::from(vals[i + keep - 1]) - u32::from(vals[i]);
            if w < best.0 {
                best = (w, i);
            }
        }
        let lo = vals[best.1];
        let hi = vals[best.1 + keep - 1];
        self.drop_where(|s| value(s).is_some_and(|v| v < lo || v > hi));
        Some([lo, hi])
    }

    fn drop_where(&mut self, out: impl Fn(&Sample) -> bool) {
        for (i, s) in self.pts.iter().enumerate() {
            if self.active[i] && out(s) {
                self.active[i] = false;
                self.budget = self.budget.saturating_sub(1);
            }
        }
    }
}

fn fit_with(pts: &[Sample], baseline: Option<&[Sample]>, max_prefixes: usize) -> Fingerprint {
    let n = pts.len();
    let mut f = Fitter {
        pts,
        active: vec![true; n],
        budget: ((1.0 - MIN_COVERAGE) * n as f64).floor() as usize,
        per_dim: ((PER_DIMENSION * n as f64).floor() as usize).max(usize::from(n >= 50)),
    };
    let ip_version = f
        .categorical(1, |s| Some(if s.ipv6 { 6u8 } else { 4 }))
        .and_then(|v| v.first().copied());
    let protocol = f
        .categorical(1, |s| Some(s.protocol))
        .and_then(|v| v.first().copied());
    let fragment = f
        .categorical(1, |s| Some(s.frag != FragKind::Whole))
        .and_then(|v| v.first().copied());
    let tails = f.active().filter(|(_, s)| s.frag == FragKind::Tail).count();
    let non_first_fragments = if fragment == Some(false) || tails == 0 {
        false
    } else if tails <= f.allowance() && fragment.is_none() {
        f.drop_where(|s| s.frag == FragKind::Tail);
        false
    } else {
        true
    };
    let l4 = |s: &Sample| s.frag != FragKind::Tail;
    let tcp_flags = if protocol == Some(proto::TCP) {
        f.categorical(MAX_FLAG_SETS, |s| {
            (l4(s) && s.has_ports).then_some(s.tcp_flags)
        })
        .map(|v| v.into_iter().map(TcpFlags).collect())
    } else {
        None
    };
    let icmp_types = if matches!(protocol, Some(proto::ICMP | proto::ICMPV6)) {
        f.categorical(MAX_ICMP_TYPES, |s| {
            (l4(s) && s.has_icmp).then_some(s.icmp_type)
        })
    } else {
        None
    };
    let has_ports = matches!(protocol, Some(proto::TCP | proto::UDP | proto::SCTP));
    let ports = |f: &mut Fitter, get: fn(&Sample) -> u16| -> Option<Vec<PortMatch>> {
        if !has_ports {
            return None;
        }
        let value = |s: &Sample| (l4(s) && s.has_ports).then_some(get(s));
        if let Some(list) = f.categorical(MAX_PORTS, value) {
            return Some(list.into_iter().map(PortMatch::Port).collect());
        }
        // Too many distinct ports for a list: a range, when it excludes a
        // meaningful part of the port space (otherwise it says nothing).
        let mut probe = Fitter {
            pts: f.pts,
            active: f.active.clone(),
            budget: f.budget,
            per_dim: f.per_dim,
        };
        let [lo, hi] = probe.range(value)?;
        if u32::from(hi - lo) >= 59_000 {
            return None;
        }
        *f = probe;
        Some(vec![PortMatch::Range([lo, hi])])
    };
    let dst_ports = ports(&mut f, |s| s.dst_port);
    let src_ports = ports(&mut f, |s| s.src_port);
    let length = f.range(|s| Some(s.ip_len));
    let ttl = f
        .range(|s| Some(u16::from(s.ttl)))
        .map(|[lo, hi]| [lo as u8, hi as u8]);
    let src_prefixes = if ip_version.is_some() {
        f.categorical(max_prefixes, |s| {
            Some(IpPrefix::of_key(s.src, key_is_v4(s.src)))
        })
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut fp = Fingerprint {
        ip_version,
        protocol: protocol.map(IpProtocol),
        src_ports,
        dst_ports,
        tcp_flags,
        icmp_types,
        length,
        ttl,
        fragment,
        non_first_fragments,
        src_prefixes,
        coverage: 0.0,
        baseline_match: None,
        sample_packets: n as u64,
        any_of: Vec::new(),
    };
    fp.coverage = share(pts, &fp);
    fp.baseline_match = baseline.map(|b| share(b, &fp));
    fp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Class;
    use crate::meta::ip_key;
    use std::net::Ipv4Addr;

    fn syn(i: u32) -> Sample {
        Sample {
            src: ip_key(IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))),
            ip_len: 40 + (i % 3) as u16 * 4,
            src_port: (i.wrapping_mul(40_503) % 65_536) as u16,
            dst_port: 80,
            class: Class::TcpSyn,
            protocol: proto::TCP,
            tcp_flags: TcpFlags::SYN,
            ttl: 240 + (i % 4) as u8,
            icmp_type: 0,
            frag: FragKind::Whole,
            has_ports: true,
            has_icmp: false,
            ipv6: false,
        }
    }

    #[test]
    fn syn_flood_fingerprint() {
        let pts: Vec<Sample> = (0..1000).map(syn).collect();
        let fp = fit(&pts, None).unwrap();
        assert_eq!(fp.protocol, Some(IpProtocol(6)));
        assert_eq!(fp.tcp_flags, Some(vec![TcpFlags(TcpFlags::SYN)]));
        assert_eq!(fp.dst_ports, Some(vec![PortMatch::Port(80)]));
        assert_eq!(fp.src_ports, None, "random source ports: no condition");
        assert_eq!(fp.fragment, Some(false));
        assert_eq!(fp.length, Some([40, 48]));
        assert_eq!(fp.ttl, Some([240, 243]));
        assert!(fp.src_prefixes.is_empty());
        assert!(fp.coverage >= 0.95);
        let json = serde_json::to_value(&fp).unwrap();
        assert_eq!(json["protocol"], "tcp");
        assert_eq!(json["tcp_flags"][0], "S");
        assert_eq!(json["dst_ports"][0], 80);
        let back: Fingerprint = serde_json::from_value(json).unwrap();
        assert_eq!(back, fp);
    }

    #[test]
    fn outliers_are_trimmed_within_budget() {
        let mut pts: Vec<Sample> = (0..1000).map(syn).collect();
        // 0.5% of packets with an odd length and TTL: left out.
        for s in pts.iter_mut().take(5) {
            s.ip_len = 1400;
            s.ttl = 3;
        }
        let fp = fit(&pts, None).unwrap();
        assert_eq!(fp.length, Some([40, 48]));
        assert_eq!(fp.ttl, Some([240, 243]));
        assert!(fp.coverage >= 0.99 && fp.coverage < 1.0);
    }

    #[test]
    fn baseline_match_is_measured() {
        let pts: Vec<Sample> = (0..500).map(syn).collect();
        let mut base: Vec<Sample> = (0..100).map(syn).collect();
        for s in base.iter_mut().skip(2) {
            s.tcp_flags = TcpFlags::ACK;
        }
        let fp = fit(&pts, Some(&base)).unwrap();
        assert_eq!(fp.baseline_match, Some(0.02));
    }

    #[test]
    fn prefixes() {
        let p: IpPrefix = "192.0.2.0/24".parse().unwrap();
        assert!(p.contains("192.0.2.77".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        let k = ip_key("198.51.100.9".parse().unwrap());
        assert_eq!(IpPrefix::of_key(k, true).to_string(), "198.51.100.0/24");
        let k6 = ip_key("2001:db8:1:2::5".parse().unwrap());
        assert_eq!(IpPrefix::of_key(k6, false).to_string(), "2001:db8:1::/48");
        assert!("1.2.3.4/33".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn reflectors_get_prefixes() {
        let pts: Vec<Sample> = (0..400u32)
            .map(|i| {
                let mut s = syn(i);
                s.src = ip_key(IpAddr::V4(Ipv4Addr::new(
                    203,
                    0,
                    113 + (i % 2) as u8,
                    (i % 200) as u8,
                )));
                s
            })
            .collect();
        let fp = fit(&pts, None).unwrap();
        assert_eq!(fp.src_prefixes.len(), 2);
        assert_eq!(fp.coverage, 1.0);
    }
}
