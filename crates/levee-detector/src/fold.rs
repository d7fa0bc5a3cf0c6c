//! [`Folds`]: the prefixes whose incident is engaged (confirming or open)
//! in the current tick, and whether an address lies inside one of them.
//!
//! The per-IP bank ([`crate::targets`]) folds such addresses into their
//! prefix's incident instead of letting them start their own: an attack
//! spread over a prefix is one incident on the prefix, whatever the rates
//! of its member IPs do. Those rates jitter (exporters send in bursts, a
//! loaded exporter or collector bunches them), and a thin spread sits near
//! the per-IP floors, so without folding which IPs cross their floor, and
//! when, would be down to timing.

use std::collections::HashSet;
use std::net::IpAddr;

/// The network of a prefix target's CIDR text (`198.18.0.0/24`), host
/// bits cleared; `None` if it is not CIDR.
pub fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= max_len(ip)).then(|| (mask(ip, len), len))
}

fn max_len(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with all but its first `len` bits cleared (`len` at most the
/// address length).
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::from((bits & m).to_be_bytes())
        }
    }
}

/// Engaged prefixes of one tick.
#[derive(Debug, Clone, Default)]
pub struct Folds {
    nets: HashSet<(IpAddr, u8)>,
    /// The distinct prefix lengths in `nets` (one or two in practice: a
    /// membership test is that many lookups).
    lens: Vec<u8>,
}

impl Folds {
    pub fn clear(&mut self) {
        self.nets.clear();
        self.lens.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Adds a prefix target's CIDR text; `false` if it is not CIDR.
    pub fn insert(&mut self, cidr: &str) -> bool {
        let Some((net, len)) = parse_prefix(cidr) else {
            return false;
        };
        self.nets.insert((net, len));
        if !self.lens.contains(&len) {
            self.lens.push(len);
        }
        true
    }

    /// Whether `ip` lies inside one of the prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let max = max_len(ip);
        self.lens
            .iter()
            .any(|&len| len <= max && self.nets.contains(&(mask(ip, len), len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_and_contain_their_addresses_only() {
        assert_eq!(parse_prefix("198.18.0.0/24"), Some((ip("198.18.0.0"), 24)));
        assert_eq!(parse_prefix("198.18.0.77/24"), Some((ip("198.18.0.0"), 24)));
        assert_eq!(
            parse_prefix("2001:db8:1:2::/64"),
            Some((ip("2001:db8:1:2::"), 64))
        );
        for bad in ["198.18.0.0", "198.18.0.0/33", "x/24", "10.0.0.0/", "::/129"] {
            assert_eq!(parse_prefix(bad), None, "{bad}");
        }
        let mut f = Folds::default();
        assert!(f.is_empty() && !f.contains(ip("198.18.0.1")));
        assert!(f.insert("198.18.0.0/24"));
        assert!(f.insert("2001:db8:1:2::/64"));
        assert!(f.insert("10.0.0.0/8"));
        assert!(!f.insert("nonsense"));
        for inside in [
            "198.18.0.0",
            "198.18.0.255",
            "2001:db8:1:2::5",
            "10.200.3.4",
        ] {
            assert!(f.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "198.18.1.0",
            "198.19.0.1",
            "2001:db8:1:3::5",
            "11.0.0.1",
            "::ffff:198.18.0.1",
        ] {
            assert!(!f.contains(ip(outside)), "{outside}");
        }
        f.clear();
        assert!(f.is_empty() && !f.contains(ip("198.18.0.1")));
    }

    #[test]
    fn zero_and_full_lengths() {
        assert_eq!(mask(ip("203.0.113.9"), 0), ip("0.0.0.0"));
        assert_eq!(mask(ip("203.0.113.9"), 32), ip("203.0.113.9"));
        assert_eq!(mask(ip("2001:db8::1"), 0), ip("::"));
        assert_eq!(mask(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        let mut f = Folds::default();
        f.insert("0.0.0.0/0");
        assert!(f.contains(ip("1.2.3.4")) && !f.contains(ip("::1")));
    }

    proptest! {
        /// An address is inside a prefix exactly when it shares the
        /// prefix's first `len` bits.
        #[test]
        fn membership_is_the_first_len_bits(a: u32, b: u32, len in 0u8..=32) {
            let mut f = Folds::default();
            let net = IpAddr::from(a.to_be_bytes());
            let cidr = format!("{net}/{len}");
            prop_assert!(f.insert(&cidr));
            let shift = 32 - u32::from(len);
            let same = len == 0 || (a >> shift) == (b >> shift);
            prop_assert_eq!(f.contains(IpAddr::from(b.to_be_bytes())), same);
        }
    }
}
