//! levee-packet fingerprints -> XDP rules.
//!
//! A fingerprint holds lists (up to 8 ports, 4 flag sets, 4 ICMP types) and,
//! for multi-vector attacks, alternatives (`any_of`); one kernel rule holds
//! one range per field. Two conversions:
//! - [`From<&Fingerprint>`] for [`FingerprintMatch`]: the single narrowest rule
//!   covering the fingerprint (lists become their hull, flag sets keep the bits
//!   they agree on). It matches everything the fingerprint matches, and maybe
//!   more.
//! - [`exact_matches`]: the rules whose union is exactly the fingerprint (one
//!   per combination of list values), for when the filter has room.
//!
//! Source prefixes (`src_prefixes`) are not part of either: a rule has no
//! source condition. Drop by source with
//! [`XdpFilter::add_source`](crate::XdpFilter::add_source) instead; without it
//! the rules match the fingerprint's packets from any source.

use crate::rule::{FingerprintMatch, Range, TcpFlagsMatch};
use levee_packet::classify::PortMatch;
use levee_packet::Fingerprint;

fn port_range(p: &PortMatch) -> Range<u16> {
    match *p {
        PortMatch::Port(x) => Range::one(x),
        PortMatch::Range([lo, hi]) => Range::new(lo.min(hi), hi.max(lo)),
    }
}

fn hull<T: Copy + PartialOrd>(items: impl IntoIterator<Item = Range<T>>) -> Option<Range<T>> {
    items.into_iter().reduce(Range::hull)
}

/// The bits every flag byte agrees on, as a mask/value condition.
fn common_flags(flags: &[u8]) -> Option<TcpFlagsMatch> {
    let first = *flags.first()?;
    let differ = flags.iter().fold(0u8, |acc, f| acc | (f ^ first));
    let mask = !differ;
    Some(TcpFlagsMatch {
        mask,
        value: first & mask,
    })
}

/// The fields one fingerprint (not `any_of`) fixes, lists kept as lists.
struct Parts {
    base: FingerprintMatch,
    src_ports: Option<Vec<Range<u16>>>,
    dst_ports: Option<Vec<Range<u16>>>,
    tcp_flags: Option<Vec<u8>>,
    icmp_types: Option<Vec<u8>>,
}

fn parts(fp: &Fingerprint) -> Parts {
    let ports = |l: &Option<Vec<PortMatch>>| l.as_ref().map(|v| v.iter().map(port_range).collect());
    Parts {
        base: FingerprintMatch {
            // levee-packet reads any version but 6 as "IPv4 only".
            ip_version: fp.ip_version.map(|v| if v == 6 { 6 } else { 4 }),
            protocol: fp.protocol.map(|p| p.0),
            length: fp.length.map(|[lo, hi]| Range::new(lo, hi)),
            ttl: fp.ttl.map(|[lo, hi]| Range::new(lo, hi)),
            fragment: fp.fragment,
            later_fragments: fp.non_first_fragments,
            ..Default::default()
        },
        src_ports: ports(&fp.src_ports),
        dst_ports: ports(&fp.dst_ports),
        tcp_flags: fp
            .tcp_flags
            .as_ref()
            .map(|v| v.iter().map(|f| f.0).collect()),
        icmp_types: fp.icmp_types.clone(),
    }
}

/// The covering rule of a fingerprint without alternatives. An empty list
/// (nothing allowed) stays an impossible condition rather than "any".
fn covering(fp: &Fingerprint) -> FingerprintMatch {
    let p = parts(fp);
    let never16 = Range::new(1, 0);
    let list16 = |l: Option<Vec<Range<u16>>>| l.map(|v| hull(v).unwrap_or(never16));
    FingerprintMatch {
        src_ports: list16(p.src_ports),
        dst_ports: list16(p.dst_ports),
        tcp_flags: p.tcp_flags.map(|v| {
            common_flags(&v).unwrap_or(TcpFlagsMatch {
                mask: 0,
                value: 0xff,
            })
        }),
        icmp_types: p
            .icmp_types
            .map(|v| hull(v.into_iter().map(Range::one)).unwrap_or(Range::new(1, 0))),
        ..p.base
    }
}

/// Field-wise union of two covering rules: a condition survives only when
/// both have it (widened to cover both).
fn union(a: FingerprintMatch, b: FingerprintMatch) -> FingerprintMatch {
    fn both<T>(x: Option<T>, y: Option<T>, f: impl Fn(T, T) -> Option<T>) -> Option<T> {
        match (x, y) {
            (Some(x), Some(y)) => f(x, y),
            _ => None,
        }
    }
    fn eq<T: PartialEq>(x: T, y: T) -> Option<T> {
        (x == y).then_some(x)
    }
    let r16 = |x: Range<u16>, y: Range<u16>| Some(x.hull(y));
    let r8 = |x: Range<u8>, y: Range<u8>| Some(x.hull(y));
    FingerprintMatch {
        ip_version: both(a.ip_version, b.ip_version, eq),
        protocol: both(a.protocol, b.protocol, eq),
        src_ports: both(a.src_ports, b.src_ports, r16),
        dst_ports: both(a.dst_ports, b.dst_ports, r16),
        length: both(a.length, b.length, r16),
        ttl: both(a.ttl, b.ttl, r8),
        tcp_flags: both(a.tcp_flags, b.tcp_flags, |x, y| {
            let mask = x.mask & y.mask & !(x.value ^ y.value);
            Some(TcpFlagsMatch {
                mask,
                value: x.value & mask,
            })
        }),
        icmp_types: both(a.icmp_types, b.icmp_types, r8),
        fragment: both(a.fragment, b.fragment, eq),
        later_fragments: a.later_fragments || b.later_fragments,
    }
}

impl From<&Fingerprint> for FingerprintMatch {
    /// The single narrowest rule covering `fp` (see the module docs); source
    /// prefixes are not carried.
    fn from(fp: &Fingerprint) -> Self {
        if fp.any_of.is_empty() {
            covering(fp)
        } else {
            fp.any_of
                .iter()
                .map(FingerprintMatch::from)
                .reduce(union)
                .unwrap_or_default()
        }
    }
}

/// The rules whose union matches exactly what `fp` matches (source prefixes
/// aside): one per combination of source port, destination port, TCP flag
/// set and ICMP type, over every `any_of` alternative. Empty when the
/// fingerprint can match nothing (an empty list).
pub fn exact_matches(fp: &Fingerprint) -> Vec<FingerprintMatch> {
    if !fp.any_of.is_empty() {
        return fp.any_of.iter().flat_map(exact_matches).collect();
    }
    let p = parts(fp);
    let out = expand(vec![p.base], p.src_ports, |m, r| m.src_ports = Some(r));
    let out = expand(out, p.dst_ports, |m, r| m.dst_ports = Some(r));
    let out = expand(out, p.tcp_flags, |m, f| {
        m.tcp_flags = Some(TcpFlagsMatch::exact(f))
    });
    expand(out, p.icmp_types, |m, t| m.icmp_types = Some(Range::one(t)))
}

/// Each rule of `rules` once per value of `values` (unchanged for `None`).
fn expand<T: Copy>(
    rules: Vec<FingerprintMatch>,
    values: Option<Vec<T>>,
    set: impl Fn(&mut FingerprintMatch, T),
) -> Vec<FingerprintMatch> {
    let Some(values) = values else {
        return rules;
    };
    let mut out = Vec::with_capacity(rules.len() * values.len());
    for r in &rules {
        for v in &values {
            let mut r = *r;
            set(&mut r, *v);
            out.push(r);
        }
    }
    out
}
