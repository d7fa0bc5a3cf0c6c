//! An IP prefix (network address + length), parsed from list text and kept canonical.
//!
//! Lists in the wild contain prefixes with host bits set (`10.1.2.3/8`); we mask them
//! rather than reject them, because a feed author's sloppiness should not make us lose
//! the indicator. [`Parsed::normalised`] tells the caller so it can count a warning.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A canonical IPv4 or IPv6 prefix: no host bits are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a token is not a prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("`{0}` is not an IPv4/IPv6 address or CIDR prefix")]
    BadAddress(String),
    /// The part after `/` is not a number within the family's range.
    #[error("bad prefix length `{len}` (must be 0..={max})")]
    BadLength {
        /// The offending text.
        len: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

/// Result of parsing one token: the canonical prefix and whether host bits were cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The canonical prefix.
    pub prefix: Prefix,
    /// True if the text had host bits set and was masked.
    pub normalised: bool,
}

/// Mask keeping the top `len` bits of a 32-bit value (`len` <= 32).
pub(crate) fn mask32(len: u8) -> u32 {
    // checked_shl because `u32::MAX << 32` would overflow for /0.
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// Mask keeping the top `len` bits of a 128-bit value (`len` <= 128).
pub(crate) fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl Prefix {
    /// A prefix from an address and a length, masking host bits.
    /// Returns `None` if `len` exceeds the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            IpAddr::V4(a) if len <= 32 => Some(Prefix::v4(u32::from(a) & mask32(len), len)),
            IpAddr::V6(a) if len <= 128 => Some(Prefix::v6(u128::from(a) & mask128(len), len)),
            _ => None,
        }
    }

    /// Build from raw bits; callers guarantee the bits are already masked.
    pub(crate) fn v4(bits: u32, len: u8) -> Prefix {
        Prefix {
            addr: IpAddr::V4(Ipv4Addr::from(bits)),
            len,
        }
    }

    /// Build from raw bits; callers guarantee the bits are already masked.
    pub(crate) fn v6(bits: u128, len: u8) -> Prefix {
        Prefix {
            addr: IpAddr::V6(Ipv6Addr::from(bits)),
            len,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for `/0` (matches every address of the family).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` falls inside this prefix (always false across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.len) == u128::from(n),
            _ => false,
        }
    }

    /// Parse `addr` or `addr/len`, masking host bits.
    pub fn parse(text: &str) -> Result<Parsed, PrefixError> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| PrefixError::BadAddress(text.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(PrefixError::BadLength {
                        len: l.to_owned(),
                        max,
                    })
                }
            },
        };
        // `len <= max` was checked above, so `new` cannot fail; map defensively anyway.
        let prefix = Prefix::new(addr, len).ok_or_else(|| PrefixError::BadLength {
            len: len.to_string(),
            max,
        })?;
        Ok(Parsed {
            normalised: prefix.addr != addr,
            prefix,
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_networks() {
        let p = Prefix::parse("192.0.2.1").unwrap();
        assert_eq!(p.prefix.to_string(), "192.0.2.1/32");
        assert!(!p.normalised);
        let p = Prefix::parse("2001:db8::/32").unwrap();
        assert_eq!(p.prefix.to_string(), "2001:db8::/32");
        let p = Prefix::parse("0.0.0.0/0").unwrap();
        assert!(p.prefix.is_empty());
    }

    #[test]
    fn masks_host_bits() {
        let p = Prefix::parse("10.1.2.3/8").unwrap();
        assert_eq!(p.prefix.to_string(), "10.0.0.0/8");
        assert!(p.normalised);
        let p = Prefix::parse("2001:db8::1/64").unwrap();
        assert_eq!(p.prefix.to_string(), "2001:db8::/64");
        assert!(p.normalised);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Prefix::parse("1.2.3.4/33"),
            Err(PrefixError::BadLength { max: 32, .. })
        ));
        assert!(matches!(
            Prefix::parse("::/129"),
            Err(PrefixError::BadLength { max: 128, .. })
        ));
        assert!(Prefix::parse("1.2.3").is_err());
        assert!(Prefix::parse("1.2.3.4/").is_err());
        assert!(Prefix::parse("example.com").is_err());
    }

    #[test]
    fn contains_respects_family() {
        let p = Prefix::parse("10.0.0.0/8").unwrap().prefix;
        assert!(p.contains("10.255.0.1".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::a00:1".parse().unwrap()));
    }
}
