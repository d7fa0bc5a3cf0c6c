//! Source prefixes as keys of the kernel's LPM tries (`src_v4`, `src_v6`):
//! `struct { __u32 prefixlen; __u8 addr[N]; }`, the length in host byte
//! order and the address in network order.

use crate::error::XdpError;
use levee_packet::classify::IpPrefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An LPM trie key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LpmKey {
    V4 { len: u8, addr: [u8; 4] },
    V6 { len: u8, addr: [u8; 16] },
}

impl LpmKey {
    /// The key as the kernel reads it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (len, addr): (u8, &[u8]) = match self {
            LpmKey::V4 { len, addr } => (*len, addr),
            LpmKey::V6 { len, addr } => (*len, addr),
        };
        let mut b = u32::from(len).to_ne_bytes().to_vec();
        b.extend_from_slice(addr);
        b
    }
}

impl From<IpPrefix> for LpmKey {
    fn from(p: IpPrefix) -> Self {
        match p.addr {
            IpAddr::V4(a) => LpmKey::V4 {
                len: p.len,
                addr: a.octets(),
            },
            IpAddr::V6(a) => LpmKey::V6 {
                len: p.len,
                addr: a.octets(),
            },
        }
    }
}

/// `prefix` with its host bits cleared, so one prefix has one key. A
/// zero-length prefix (every address) or one longer than the address is an
/// error: a mitigation never drops a whole address family.
pub fn normalize(prefix: IpPrefix) -> Result<IpPrefix, XdpError> {
    let max = if prefix.addr.is_ipv4() { 32 } else { 128 };
    if prefix.len == 0 || prefix.len > max {
        return Err(XdpError::BadPrefix {
            prefix: prefix.to_string(),
            reason: format!("length must be 1..={max}"),
        });
    }
    let addr = match prefix.addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX << (32 - u32::from(prefix.len));
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX << (128 - u32::from(prefix.len));
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok(IpPrefix {
        addr,
        len: prefix.len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn keys_have_host_order_length_and_network_order_address() {
        let k = LpmKey::from(normalize(p("198.51.100.9/24")).unwrap());
        let mut want = 24u32.to_ne_bytes().to_vec();
        want.extend([198, 51, 100, 0]);
        assert_eq!(k.to_bytes(), want);
        let k = LpmKey::from(normalize(p("2001:db8:ffff::1/33")).unwrap());
        let b = k.to_bytes();
        assert_eq!(b.len(), 20);
        assert_eq!(&b[4..10], &[0x20, 0x01, 0x0d, 0xb8, 0x80, 0x00]);
        assert!(b[10..].iter().all(|x| *x == 0));
    }

    #[test]
    fn host_routes_stay_whole_and_bad_lengths_are_named() {
        assert_eq!(normalize(p("10.1.2.3/32")).unwrap(), p("10.1.2.3/32"));
        assert_eq!(normalize(p("::1/128")).unwrap(), p("::1/128"));
        let e = normalize(p("0.0.0.0/0")).unwrap_err().to_string();
        assert!(e.contains("0.0.0.0/0") && e.contains("1..=32"), "{e}");
        let e = normalize(IpPrefix {
            addr: "10.0.0.0".parse().unwrap(),
            len: 40,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("1..=32"), "{e}");
    }
}
