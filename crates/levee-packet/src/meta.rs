//! [`PacketMeta`]: the compact, fixed-size summary of one packet that every
//! later stage (features, classification, fingerprints) works from.
//!
//! It is `Copy` and holds no heap data, so decoding millions of packets per
//! second allocates nothing. Only the first [`PAYLOAD_HEAD`] payload bytes are
//! kept: enough to recognise DNS, NTP, memcached, SSDP, CLDAP, SNMP and chargen
//! responses, which is all the amplification heuristics need.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// How many leading payload bytes [`PacketMeta`] keeps.
pub const PAYLOAD_HEAD: usize = 16;

/// IP protocol numbers used by name in this crate.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// The name of an IP protocol number (`tcp`, `udp`, ...), or `None` when the
/// number has no name here.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    Some(match p {
        proto::ICMP => "icmp",
        2 => "igmp",
        4 => "ipip",
        proto::TCP => "tcp",
        proto::UDP => "udp",
        41 => "ipv6",
        proto::GRE => "gre",
        proto::ESP => "esp",
        proto::AH => "ah",
        proto::ICMPV6 => "icmpv6",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        proto::SCTP => "sctp",
        _ => return None,
    })
}

/// An IP protocol number that serialises as its name when it has one
/// (`"tcp"`), else as the decimal number (`"253"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match protocol_name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for IpProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(n) = s.parse::<u8>() {
            return Ok(IpProtocol(n));
        }
        (0..=255u8)
            .find(|&p| protocol_name(p) == Some(s))
            .map(IpProtocol)
            .ok_or_else(|| format!("unknown IP protocol {s:?}: use a name (tcp, udp, icmp, gre...) or a number 0-255"))
    }
}

impl Serialize for IpProtocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpProtocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The 8 TCP flag bits (byte 13 of the TCP header).
///
/// Text form: the letters `F S R P A U E C` (scapy/hping3 order) of the set
/// bits, e.g. `S`, `SA`, `PA`, `FPU` (xmas); no flag at all is `none`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    const LETTERS: [(u8, char); 8] = [
        (Self::FIN, 'F'),
        (Self::SYN, 'S'),
        (Self::RST, 'R'),
        (Self::PSH, 'P'),
        (Self::ACK, 'A'),
        (Self::URG, 'U'),
        (Self::ECE, 'E'),
        (Self::CWR, 'C'),
    ];

    /// True when every bit of `bits` is set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (bit, c) in Self::LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for TcpFlags {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(TcpFlags(0));
        }
        let mut v = 0u8;
        for ch in s.chars() {
            let bit = Self::LETTERS
                .iter()
                .find(|(_, c)| *c == ch)
                .map(|(b, _)| *b)
                .ok_or_else(|| {
                    format!("unknown TCP flag letter {ch:?} in {s:?}: use F S R P A U E C, or none")
                })?;
            v |= bit;
        }
        if v == 0 {
            return Err("empty TCP flag string: use none for no flags".into());
        }
        Ok(TcpFlags(v))
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The transport header, when the packet carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: TcpFlags,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMP or ICMPv6 (see [`PacketMeta::protocol`]).
    Icmp {
        kind: u8,
        code: u8,
    },
    /// Another protocol (GRE, ESP...), a non-first fragment (no transport
    /// header), or a first fragment too short to hold one.
    None,
}

/// IP fragmentation state of a fragment (IPv4 MF/offset, or an IPv6
/// Fragment extension header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in the original datagram, in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// The first payload bytes of a packet (fewer when the payload is shorter or
/// the capture was truncated).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadHead {
    bytes: [u8; PAYLOAD_HEAD],
    len: u8,
}

impl PayloadHead {
    /// Keeps the first [`PAYLOAD_HEAD`] bytes of `data`.
    pub fn new(data: &[u8]) -> Self {
        let n = data.len().min(PAYLOAD_HEAD);
        let mut bytes = [0u8; PAYLOAD_HEAD];
        bytes[..n].copy_from_slice(&data[..n]);
        PayloadHead {
            bytes,
            len: n as u8,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for PayloadHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayloadHead(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// What the decoder extracts from one IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 next header after the extension headers.
    pub protocol: u8,
    pub transport: Transport,
    /// IP total length from the header (IPv6: 40 + payload length), not the
    /// captured length: Ethernet padding and snap lengths don't change it.
    pub ip_len: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// `Some` when the packet is a fragment.
    pub fragment: Option<Fragment>,
    /// Transport payload length from the headers (for non-first fragments and
    /// protocols without a parsed header: everything after the IP headers).
    pub payload_len: u16,
    /// The first payload bytes that were captured.
    pub payload_head: PayloadHead,
    /// Outermost 802.1Q VLAN id, when tagged.
    pub vlan: Option<u16>,
}

impl PacketMeta {
    pub fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }

    pub fn src_port(&self) -> Option<u16> {
        match self.transport {
            Transport::Tcp { src_port, .. } | Transport::Udp { src_port, .. } => Some(src_port),
            _ => None,
        }
    }

    pub fn dst_port(&self) -> Option<u16> {
        match self.transport {
            Transport::Tcp { dst_port, .. } | Transport::Udp { dst_port, .. } => Some(dst_port),
            _ => None,
        }
    }

    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match self.transport {
            Transport::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }

    /// A fragment other than the first: it carries no transport header.
    pub fn is_tail_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset != 0)
    }

    /// The first fragment of a fragmented datagram (offset 0, more fragments).
    pub fn is_first_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset == 0)
    }
}

/// An IP address as one `u128` key: IPv4 as the IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`), which makes one key type serve both families. A real
/// IPv6 packet from a mapped address would share its IPv4 twin's key; such
/// packets are not routed on the Internet, so the overlap is accepted.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000u128 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address behind an [`ip_key`].
pub fn key_ip(key: u128) -> IpAddr {
    Ipv6Addr::from(key).to_canonical()
}

/// Whether an [`ip_key`] is an IPv4 address.
pub fn key_is_v4(key: u128) -> bool {
    key >> 32 == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn tcp_flags_text_round_trips() {
        for v in 0..=255u8 {
            let f = TcpFlags(v);
            assert_eq!(f.to_string().parse::<TcpFlags>(), Ok(f));
        }
        assert_eq!(TcpFlags(0x12).to_string(), "SA");
        assert_eq!(TcpFlags(0x29).to_string(), "FPU");
        assert_eq!(TcpFlags(0).to_string(), "none");
        assert!("SX".parse::<TcpFlags>().is_err());
    }

    #[test]
    fn protocol_names_round_trip() {
        for p in 0..=255u8 {
            let ip = IpProtocol(p);
            assert_eq!(ip.to_string().parse::<IpProtocol>(), Ok(ip));
        }
        assert_eq!(serde_json::to_string(&IpProtocol(6)).unwrap(), "\"tcp\"");
        assert_eq!(serde_json::to_string(&IpProtocol(253)).unwrap(), "\"253\"");
    }

    #[test]
    fn ip_keys_round_trip() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(key_ip(ip_key(v4)), v4);
        assert!(key_is_v4(ip_key(v4)));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(key_ip(ip_key(v6)), v6);
        assert!(!key_is_v4(ip_key(v6)));
    }
}
