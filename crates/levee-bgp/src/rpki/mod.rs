//! RPKI route origin validation (RFC 6811) against Validated ROA Payloads
//! from a local JSON file ([`json`]: stayrtr / rpki-client format) or an
//! RTR cache ([`rtr`]: RFC 8210, falling back to RFC 6810).

pub mod json;
pub mod rtr;

use ipnet::IpNet;
use serde::Serialize;
use std::fmt;

/// One Validated ROA Payload: `asn` may originate `prefix` and its
/// more-specifics up to `max_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Roa {
    pub prefix: IpNet,
    pub max_len: u8,
    pub asn: u32,
}

impl fmt::Display for Roa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{} AS{}", self.prefix, self.max_len, self.asn)
    }
}

/// RFC 6811 validation states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// A ROA for this origin covers the route within its max length.
    Valid(Roa),
    /// ROAs cover the route, none matching (origin or length); the
    /// covering ones are listed.
    Invalid(Vec<Roa>),
    /// No ROA covers the route.
    NotFound,
}

/// A set of VRPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoaSet {
    roas: Vec<Roa>,
}

impl RoaSet {
    pub fn new(mut roas: Vec<Roa>) -> RoaSet {
        for r in &mut roas {
            r.prefix = r.prefix.trunc();
        }
        roas.sort();
        roas.dedup();
        RoaSet { roas }
    }

    pub fn len(&self) -> usize {
        self.roas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roas.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Roa> {
        self.roas.iter()
    }

    /// The validity of `route` originated by `origin` (RFC 6811 §2). AS 0
    /// ROAs (RFC 6483) cover but never match.
    pub fn validate(&self, route: &IpNet, origin: u32) -> Validity {
        let route = route.trunc();
        let covering: Vec<Roa> = self
            .roas
            .iter()
            .filter(|r| {
                r.prefix.addr().is_ipv4() == route.addr().is_ipv4() && r.prefix.contains(&route)
            })
            .copied()
            .collect();
        if covering.is_empty() {
            return Validity::NotFound;
        }
        match covering
            .iter()
            .find(|r| r.asn == origin && r.asn != 0 && route.prefix_len() <= r.max_len)
        {
            Some(r) => Validity::Valid(*r),
            None => Validity::Invalid(covering),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roa(p: &str, m: u8, asn: u32) -> Roa {
        Roa {
            prefix: p.parse().unwrap(),
            max_len: m,
            asn,
        }
    }

    #[test]
    fn rfc6811_states() {
        let set = RoaSet::new(vec![
            roa("203.0.113.0/24", 24, 64500),
            roa("198.51.100.0/22", 24, 0),
        ]);
        let p = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(matches!(
            set.validate(&p("203.0.113.0/24"), 64500),
            Validity::Valid(_)
        ));
        assert!(matches!(
            set.validate(&p("203.0.113.0/24"), 64501),
            Validity::Invalid(_)
        ));
        // Too specific for the ROA's max length.
        assert!(matches!(
            set.validate(&p("203.0.113.7/32"), 64500),
            Validity::Invalid(_)
        ));
        assert_eq!(set.validate(&p("192.0.2.0/24"), 64500), Validity::NotFound);
        assert!(matches!(
            set.validate(&p("198.51.100.0/24"), 0),
            Validity::Invalid(_)
        ));
        assert_eq!(set.validate(&p("2001:db8::/32"), 64500), Validity::NotFound);
    }
}
