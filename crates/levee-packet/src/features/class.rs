//! The per-packet traffic class ([`Class`]) that feature counters are kept by,
//! and the amplification services ([`AmpService`]) recognised by source port
//! and payload.
//!
//! Classifying each packet once, at extraction time, turns the classifier's
//! job into arithmetic on a few counters instead of a second pass over packets.

use crate::meta::{proto, PacketMeta, TcpFlags, Transport};

/// UDP services abused for reflection/amplification that have their own
/// attack family in the BRIEF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AmpService {
    Dns,
    Ntp,
    Memcached,
    Ssdp,
    Cldap,
    Snmp,
    Chargen,
}

impl AmpService {
    pub const ALL: [AmpService; 7] = [
        AmpService::Dns,
        AmpService::Ntp,
        AmpService::Memcached,
        AmpService::Ssdp,
        AmpService::Cldap,
        AmpService::Snmp,
        AmpService::Chargen,
    ];

    /// The well-known UDP port the responses come from.
    pub fn port(self) -> u16 {
        match self {
            AmpService::Dns => 53,
            AmpService::Ntp => 123,
            AmpService::Memcached => 11211,
            AmpService::Ssdp => 1900,
            AmpService::Cldap => 389,
            AmpService::Snmp => 161,
            AmpService::Chargen => 19,
        }
    }

    pub fn from_port(port: u16) -> Option<AmpService> {
        Some(match port {
            53 => AmpService::Dns,
            123 => AmpService::Ntp,
            11211 => AmpService::Memcached,
            1900 => AmpService::Ssdp,
            389 => AmpService::Cldap,
            161 => AmpService::Snmp,
            19 => AmpService::Chargen,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case protocol name, e.g. `memcached`.
    pub fn name(self) -> &'static str {
        match self {
            AmpService::Dns => "dns",
            AmpService::Ntp => "ntp",
            AmpService::Memcached => "memcached",
            AmpService::Ssdp => "ssdp",
            AmpService::Cldap => "cldap",
            AmpService::Snmp => "snmp",
            AmpService::Chargen => "chargen",
        }
    }

    /// Does this payload start like a response of the service? Used to raise
    /// confidence: a flood that merely uses source port 53 is not DNS.
    pub fn payload_matches(self, head: &[u8]) -> bool {
        match self {
            // DNS header: QR bit (byte 2, top bit) set on responses.
            AmpService::Dns => head.len() >= 12 && head[2] & 0x80 != 0,
            // NTP mode 6 (control) or 7 (private, `monlist`): the modes whose
            // responses amplify; mode 4 is an ordinary server reply.
            AmpService::Ntp => head.first().is_some_and(|b| matches!(b & 0x07, 6 | 7)),
            // memcached UDP: 8-byte frame header, then an ASCII response.
            AmpService::Memcached => head.get(8..).is_some_and(|r| {
                r.starts_with(b"VALUE") || r.starts_with(b"STAT") || r.starts_with(b"END")
            }),
            // SSDP answers an M-SEARCH with an HTTP status line.
            AmpService::Ssdp => head.starts_with(b"HTTP/1.1 200"),
            // CLDAP and SNMP messages are BER SEQUENCEs.
            AmpService::Cldap | AmpService::Snmp => head.first() == Some(&0x30),
            // chargen sends printable ASCII.
            AmpService::Chargen => {
                !head.is_empty()
                    && head
                        .iter()
                        .all(|b| (0x20..0x7f).contains(b) || *b == b'\r' || *b == b'\n')
            }
        }
    }
}

/// Other UDP source ports known to be used for reflection (WS-Discovery,
/// ARMS, Ubiquiti discovery, CoAP, mDNS, NetBIOS, portmap, QOTD, SLP, RIP,
/// MS-SQL browser, STUN, Plex, Jenkins, DVR/DHCPDiscover, OpenVPN, Mitel,
/// BitTorrent DHT, Steam/Source query, TFTP, L2TP, IKE). Sources: public
/// advisories (US-CERT TA14-017A, Cloudflare and NETSCOUT reflection lists).
pub const OTHER_REFLECTION_PORTS: [u16; 22] = [
    17, 69, 111, 137, 427, 500, 520, 1194, 1434, 1701, 3283, 3478, 3702, 5353, 5683, 6881, 10001,
    10074, 27015, 32414, 33848, 37810,
];

/// What kind of packet this is, for counting. The order is the index into
/// per-class counter arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Class {
    /// SYN without ACK/FIN/RST/URG (ECE, CWR, PSH allowed).
    TcpSyn,
    /// SYN+ACK without FIN/RST/URG.
    TcpSynAck,
    /// ACK (optionally PSH) without SYN/FIN/RST/URG: established-flow traffic
    /// or an ACK flood, decided later from the sources.
    TcpAck,
    /// FIN+ACK without SYN/RST/URG: the normal way a connection closes.
    TcpFin,
    /// RST (optionally with ACK/PSH), no SYN/FIN.
    TcpRst,
    /// Everything else: null, xmas, FIN without ACK, SYN+FIN, URG...
    TcpOdd,
    /// UDP not from a reflection port.
    Udp,
    UdpDns,
    UdpNtp,
    UdpMemcached,
    UdpSsdp,
    UdpCldap,
    UdpSnmp,
    UdpChargen,
    /// UDP from one of [`OTHER_REFLECTION_PORTS`].
    UdpReflector,
    /// ICMP and ICMPv6.
    Icmp,
    /// A non-first fragment: no transport header to say what it is.
    FragmentTail,
    /// Another IP protocol (GRE, ESP, IPIP, SCTP...), or a tiny first
    /// fragment without a transport header.
    OtherProto,
}

impl Class {
    pub const COUNT: usize = 18;

    pub const ALL: [Class; Class::COUNT] = [
        Class::TcpSyn,
        Class::TcpSynAck,
        Class::TcpAck,
        Class::TcpFin,
        Class::TcpRst,
        Class::TcpOdd,
        Class::Udp,
        Class::UdpDns,
        Class::UdpNtp,
        Class::UdpMemcached,
        Class::UdpSsdp,
        Class::UdpCldap,
        Class::UdpSnmp,
        Class::UdpChargen,
        Class::UdpReflector,
        Class::Icmp,
        Class::FragmentTail,
        Class::OtherProto,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<Class> {
        Class::ALL.get(i).copied()
    }

    pub fn amp_service(self) -> Option<AmpService> {
        Some(match self {
            Class::UdpDns => AmpService::Dns,
            Class::UdpNtp => AmpService::Ntp,
            Class::UdpMemcached => AmpService::Memcached,
            Class::UdpSsdp => AmpService::Ssdp,
            Class::UdpCldap => AmpService::Cldap,
            Class::UdpSnmp => AmpService::Snmp,
            Class::UdpChargen => AmpService::Chargen,
            _ => return None,
        })
    }

    pub fn from_amp(s: AmpService) -> Class {
        match s {
            AmpService::Dns => Class::UdpDns,
            AmpService::Ntp => Class::UdpNtp,
            AmpService::Memcached => Class::UdpMemcached,
            AmpService::Ssdp => Class::UdpSsdp,
            AmpService::Cldap => Class::UdpCldap,
            AmpService::Snmp => Class::UdpSnmp,
            AmpService::Chargen => Class::UdpChargen,
        }
    }

    /// Classifies one packet.
    #[inline]
    pub fn of(m: &PacketMeta) -> Class {
        if m.is_tail_fragment() {
            return Class::FragmentTail;
        }
        match m.transport {
            Transport::Tcp { flags, .. } => tcp_class(flags),
            Transport::Udp { src_port, .. } => udp_class(src_port),
            Transport::Icmp { .. } => Class::Icmp,
            Transport::None => match m.protocol {
                proto::ICMP | proto::ICMPV6 => Class::Icmp,
                _ => Class::OtherProto,
            },
        }
    }
}

#[inline]
fn tcp_class(flags: TcpFlags) -> Class {
    const S: u8 = TcpFlags::SYN;
    const A: u8 = TcpFlags::ACK;
    const F: u8 = TcpFlags::FIN;
    const R: u8 = TcpFlags::RST;
    const U: u8 = TcpFlags::URG;
    // ECE/CWR (ECN) and PSH don't change what a segment is for.
    let f = flags.0 & (S | A | F | R | U);
    match f {
        S => Class::TcpSyn,
        x if x == S | A => Class::TcpSynAck,
        A => Class::TcpAck,
        x if x == F | A => Class::TcpFin,
        R => Class::TcpRst,
        x if x == R | A => Class::TcpRst,
        _ => Class::TcpOdd,
    }
}

#[inline]
fn udp_class(src_port: u16) -> Class {
    if let Some(s) = AmpService::from_port(src_port) {
        return Class::from_amp(s);
    }
    if OTHER_REFLECTION_PORTS.contains(&src_port) {
        Class::UdpReflector
    } else {
        Class::Udp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flag_classes() {
        assert_eq!(tcp_class(TcpFlags(0x02)), Class::TcpSyn);
        assert_eq!(tcp_class(TcpFlags(0xc2)), Class::TcpSyn, "ECN SYN");
        assert_eq!(tcp_class(TcpFlags(0x12)), Class::TcpSynAck);
        assert_eq!(tcp_class(TcpFlags(0x10)), Class::TcpAck);
        assert_eq!(tcp_class(TcpFlags(0x18)), Class::TcpAck);
        assert_eq!(tcp_class(TcpFlags(0x11)), Class::TcpFin);
        assert_eq!(tcp_class(TcpFlags(0x04)), Class::TcpRst);
        assert_eq!(tcp_class(TcpFlags(0x14)), Class::TcpRst);
        assert_eq!(tcp_class(TcpFlags(0x00)), Class::TcpOdd, "null");
        assert_eq!(tcp_class(TcpFlags(0x29)), Class::TcpOdd, "xmas");
        assert_eq!(tcp_class(TcpFlags(0x03)), Class::TcpOdd, "SYN+FIN");
        assert_eq!(tcp_class(TcpFlags(0x01)), Class::TcpOdd, "bare FIN");
    }

    #[test]
    fn class_table_is_consistent() {
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(Class::from_index(i), Some(*c));
        }
        for s in AmpService::ALL {
            assert_eq!(AmpService::from_port(s.port()), Some(s));
            assert_eq!(Class::from_amp(s).amp_service(), Some(s));
            assert_eq!(udp_class(s.port()), Class::from_amp(s));
        }
    }

    #[test]
    fn payload_signatures() {
        let mut dns = [0u8; 12];
        dns[2] = 0x81;
        assert!(AmpService::Dns.payload_matches(&dns));
        dns[2] = 0x01;
        assert!(!AmpService::Dns.payload_matches(&dns));
        assert!(AmpService::Ntp.payload_matches(&[0x17]));
        assert!(!AmpService::Ntp.payload_matches(&[0x24]));
        assert!(AmpService::Memcached.payload_matches(b"\0\0\0\0\0\x01\0\0VALUE a"));
        assert!(AmpService::Ssdp.payload_matches(b"HTTP/1.1 200 OK\r\n"));
        assert!(AmpService::Chargen.payload_matches(b"!\"#$%&'()*+,-./"));
        assert!(!AmpService::Chargen.payload_matches(&[0, 1, 2]));
    }
}
