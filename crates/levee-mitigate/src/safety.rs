//! The safety rules, as pure functions over a [`Protected`] set:
//! never block an allowlisted prefix, the node's own addresses, its default
//! gateways or the server's address.
//!
//! They apply twice. Source prefixes a rule would name are screened here
//! (one that overlaps anything protected is left out of the rule, with the
//! reason), and every packet-filter executor puts an "accept" for the
//! protected prefixes ahead of all its rules, so even a rule that names no
//! sources (a rate limit on SYNs to port 80) never touches them.

use levee_packet::classify::fingerprint::IpPrefix;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

use crate::host::HostInfo;

/// Why a prefix is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    Allowlist,
    OwnAddress,
    Gateway,
    /// Configured `protected` (e.g. the Levee server).
    Protected,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Allowlist => "allowlisted",
            Why::OwnAddress => "one of this node's addresses",
            Why::Gateway => "a default gateway",
            Why::Protected => "a protected address",
        })
    }
}

/// Everything no rule may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    entries: Vec<(IpPrefix, Why)>,
}

/// A source prefix left out of a rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub prefix: IpPrefix,
    pub overlaps: IpPrefix,
    pub why: Why,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} not blocked: it overlaps {} ({})",
            self.prefix, self.overlaps, self.why
        )
    }
}

/// A single address as a prefix (/32 or /128).
pub fn host_prefix(addr: IpAddr) -> IpPrefix {
    IpPrefix {
        addr,
        len: if addr.is_ipv4() { 32 } else { 128 },
    }
}

/// The prefix with host bits cleared (`10.1.2.3/24` -> `10.1.2.0/24`):
/// the form every tool accepts.
pub fn normalise(p: IpPrefix) -> IpPrefix {
    let addr = match p.addr {
        IpAddr::V4(a) => {
            let l = u32::from(p.len.min(32));
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let l = u32::from(p.len.min(128));
            let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    IpPrefix { addr, len: p.len }
}

/// Whether two prefixes share any address.
pub fn overlaps(a: &IpPrefix, b: &IpPrefix) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}

impl Protected {
    /// From the config's allowlist and protected prefixes and what the
    /// node is (its addresses and gateways).
    pub fn new(allowlist: &[IpPrefix], protected: &[IpPrefix], host: &HostInfo) -> Protected {
        let mut entries: Vec<(IpPrefix, Why)> = Vec::new();
        entries.extend(allowlist.iter().map(|p| (normalise(*p), Why::Allowlist)));
        entries.extend(protected.iter().map(|p| (normalise(*p), Why::Protected)));
        entries.extend(
            host.addresses
                .iter()
                .map(|a| (host_prefix(a.addr), Why::OwnAddress)),
        );
        entries.extend(
            host.gateways
                .iter()
                .map(|g| (host_prefix(*g), Why::Gateway)),
        );
        Protected { entries }
    }

    /// The first protected entry `p` overlaps.
    pub fn conflict(&self, p: &IpPrefix) -> Option<(IpPrefix, Why)> {
        self.entries.iter().find(|(q, _)| overlaps(p, q)).copied()
    }

    /// Splits `sources` into those a rule may name and those it must not.
    pub fn screen(&self, sources: &[IpPrefix]) -> (Vec<IpPrefix>, Vec<Refusal>) {
        let mut kept = Vec::new();
        let mut refused = Vec::new();
        for p in sources {
            let p = normalise(*p);
            match self.conflict(&p) {
                None => {
                    if !kept.contains(&p) {
                        kept.push(p)
                    }
                }
                Some((overlaps, why)) => refused.push(Refusal {
                    prefix: p,
                    overlaps,
                    why,
                }),
            }
        }
        (kept, refused)
    }

    /// Prefixes every executor exempts ahead of its rules, IPv4 then IPv6,
    /// without duplicates.
    pub fn exempt(&self) -> Vec<IpPrefix> {
        let mut v: Vec<IpPrefix> = Vec::new();
        for (p, _) in &self.entries {
            if !v.contains(p) {
                v.push(*p);
            }
        }
        v.sort_by_key(|p| (p.addr.is_ipv6(), p.addr, p.len));
        v
    }

    /// Whether `addr` is protected.
    pub fn covers(&self, addr: IpAddr) -> Option<Why> {
        self.entries
            .iter()
            .find(|(p, _)| p.contains(addr))
            .map(|(_, w)| *w)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostAddr;
    use proptest::prelude::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn host() -> HostInfo {
        HostInfo {
            addresses: vec![HostAddr {
                interface: "eth0".into(),
                addr: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                scope: "global".into(),
            }],
            gateways: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn screens_sources() {
        let prot = Protected::new(&[p("192.0.2.0/24")], &[p("198.51.100.7/32")], &host());
        let (kept, refused) = prot.screen(&[
            p("203.0.113.0/24"),
            p("192.0.2.128/25"),  // inside the allowlist
            p("10.0.0.0/24"),     // holds the node and its gateway
            p("198.51.100.0/24"), // holds the server
            p("203.0.113.9/24"),  // same as the first once normalised
        ]);
        assert_eq!(kept, vec![p("203.0.113.0/24")]);
        let whys: Vec<Why> = refused.iter().map(|r| r.why).collect();
        assert_eq!(whys, vec![Why::Allowlist, Why::OwnAddress, Why::Protected]);
        assert!(refused[1].to_string().contains("this node's addresses"));
        assert_eq!(prot.covers("10.0.0.1".parse().unwrap()), Some(Why::Gateway));
        assert_eq!(prot.covers("8.8.8.8".parse().unwrap()), None);
        assert_eq!(
            prot.exempt(),
            vec![
                p("10.0.0.1/32"),
                p("10.0.0.2/32"),
                p("192.0.2.0/24"),
                p("198.51.100.7/32")
            ]
        );
    }

    #[test]
    fn normalises() {
        assert_eq!(normalise(p("10.1.2.3/24")), p("10.1.2.0/24"));
        assert_eq!(normalise(p("2001:db8::1/48")), p("2001:db8::/48"));
        assert_eq!(normalise(p("1.2.3.4/0")), p("0.0.0.0/0"));
    }

    proptest! {
        /// Whatever sources a fingerprint names, nothing kept overlaps a
        /// protected prefix, and nothing refused is free.
        #[test]
        fn kept_never_overlaps_protected(
            srcs in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
            allow in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..6),
        ) {
            let mk = |(a, l): (u32, u8)| IpPrefix { addr: IpAddr::V4(a.into()), len: l };
            let allow: Vec<IpPrefix> = allow.into_iter().map(mk).collect();
            let srcs: Vec<IpPrefix> = srcs.into_iter().map(mk).collect();
            let prot = Protected::new(&allow, &[], &host());
            let (kept, refused) = prot.screen(&srcs);
            for k in &kept {
                prop_assert!(prot.conflict(k).is_none());
                for a in &allow {
                    prop_assert!(!overlaps(k, &normalise(*a)));
                }
            }
            for r in &refused {
                prop_assert!(overlaps(&r.prefix, &r.overlaps));
            }
            prop_assert!(kept.len() + refused.len() <= srcs.len());
        }
    }
}
