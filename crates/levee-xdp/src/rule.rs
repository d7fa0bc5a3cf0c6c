//! One fingerprint rule of the XDP program ([`FingerprintMatch`]): what it
//! matches, how it is checked, how it is written into the kernel's `rules`
//! array (byte for byte `struct rule` of `bpf/levee_xdp.c`), and a Rust model
//! of the kernel's match ([`FingerprintMatch::matches`]) that the lab tests
//! compare against the real program.
//!
//! Semantics are levee-packet's fingerprint semantics
//! (`levee_packet::classify::fingerprint`): a packet without ports never
//! matches a port condition, a non-TCP packet never matches a TCP flags
//! condition, and non-first fragments (no transport header) match only rules
//! with [`FingerprintMatch::later_fragments`], which then skip the transport
//! conditions.

use levee_packet::meta::proto;
use levee_packet::PacketMeta;
use std::fmt;

/// Size of `struct rule` in the C program (checked there by `_Static_assert`).
pub const RULE_SIZE: usize = 28;

/// Condition bits of `struct rule.flags` (`R_*` in the C program).
mod bit {
    pub const IPVER: u16 = 1 << 0;
    pub const PROTO: u16 = 1 << 1;
    pub const SPORT: u16 = 1 << 2;
    pub const DPORT: u16 = 1 << 3;
    pub const LEN: u16 = 1 << 4;
    pub const TTL: u16 = 1 << 5;
    pub const TCPFLAGS: u16 = 1 << 6;
    pub const ICMP: u16 = 1 << 7;
    pub const FRAG: u16 = 1 << 8;
    pub const TAILS: u16 = 1 << 9;
    pub const ALL: u16 = (1 << 10) - 1;
}

/// An inclusive range `lo..=hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range<T> {
    pub lo: T,
    pub hi: T,
}

impl<T: Copy + PartialOrd> Range<T> {
    pub fn new(lo: T, hi: T) -> Self {
        Range { lo, hi }
    }

    /// The range holding just `v`.
    pub fn one(v: T) -> Self {
        Range { lo: v, hi: v }
    }

    pub fn contains(&self, v: T) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// The smallest range covering both.
    pub fn hull(self, other: Self) -> Self {
        Range {
            lo: if other.lo < self.lo {
                other.lo
            } else {
                self.lo
            },
            hi: if other.hi > self.hi {
                other.hi
            } else {
                self.hi
            },
        }
    }
}

impl<T: fmt::Display + PartialEq> fmt::Display for Range<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// TCP flags condition: `flags & mask == value`. An exact flag byte is mask
/// `0xff`; "SYN set, ACK clear, rest any" is mask `0x12`, value `0x02`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlagsMatch {
    pub mask: u8,
    pub value: u8,
}

impl TcpFlagsMatch {
    /// Exactly these flag bits, no others.
    pub fn exact(flags: u8) -> Self {
        TcpFlagsMatch {
            mask: 0xff,
            value: flags,
        }
    }

    pub fn matches(&self, flags: u8) -> bool {
        flags & self.mask == self.value
    }
}

/// One XDP drop rule: every `Some` condition must hold (`None` = any).
///
/// Built by hand, or from a levee-packet fingerprint with
/// [`From<&Fingerprint>`](levee_packet::Fingerprint) (one covering rule) or
/// [`exact_matches`](crate::exact_matches) (the exact set of rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FingerprintMatch {
    /// 4 or 6.
    pub ip_version: Option<u8>,
    /// IPv4 protocol / IPv6 next header after the extension headers.
    pub protocol: Option<u8>,
    /// TCP/UDP source port.
    pub src_ports: Option<Range<u16>>,
    /// TCP/UDP destination port.
    pub dst_ports: Option<Range<u16>>,
    /// IP total length (IPv6: 40 + payload length), bytes.
    pub length: Option<Range<u16>>,
    /// TTL / hop limit.
    pub ttl: Option<Range<u8>>,
    pub tcp_flags: Option<TcpFlagsMatch>,
    /// ICMP / ICMPv6 type.
    pub icmp_types: Option<Range<u8>>,
    /// `Some(false)`: unfragmented packets only; `Some(true)`: fragments only.
    pub fragment: Option<bool>,
    /// Whether non-first fragments match (transport conditions are then not
    /// applied to them: they carry no transport header).
    pub later_fragments: bool,
}

/// Why a [`FingerprintMatch`] cannot be installed. Each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("ip_version {0}: use 4 or 6")]
    IpVersion(u8),
    #[error("{field} range {lo}-{hi} is empty: lo must not exceed hi")]
    EmptyRange {
        field: &'static str,
        lo: u32,
        hi: u32,
    },
    #[error(
        "tcp_flags value {value:#04x} has bits outside mask {mask:#04x}, so it can never match"
    )]
    FlagsOutsideMask { mask: u8, value: u8 },
    #[error("the rule has no condition and would drop every packet; give at least one field")]
    MatchesEverything,
}

impl FingerprintMatch {
    /// Checks the rule can be installed; reports the first problem.
    pub fn validate(&self) -> Result<(), RuleError> {
        if let Some(v) = self.ip_version {
            if v != 4 && v != 6 {
                return Err(RuleError::IpVersion(v));
            }
        }
        let ranges16 = [
            ("src_ports", self.src_ports),
            ("dst_ports", self.dst_ports),
            ("length", self.length),
        ];
        for (field, r) in ranges16 {
            if let Some(r) = r.filter(|r| r.lo > r.hi) {
                return Err(RuleError::EmptyRange {
                    field,
                    lo: r.lo.into(),
                    hi: r.hi.into(),
                });
            }
        }
        for (field, r) in [("ttl", self.ttl), ("icmp_types", self.icmp_types)] {
            if let Some(r) = r.filter(|r| r.lo > r.hi) {
                return Err(RuleError::EmptyRange {
                    field,
                    lo: r.lo.into(),
                    hi: r.hi.into(),
                });
            }
        }
        if let Some(t) = self.tcp_flags {
            if t.value & !t.mask != 0 {
                return Err(RuleError::FlagsOutsideMask {
                    mask: t.mask,
                    value: t.value,
                });
            }
        }
        if self.condition_bits() & !bit::TAILS == 0 {
            return Err(RuleError::MatchesEverything);
        }
        Ok(())
    }

    fn condition_bits(&self) -> u16 {
        let mut f = 0;
        let mut set = |on: bool, b: u16| {
            if on {
                f |= b;
            }
        };
        set(self.ip_version.is_some(), bit::IPVER);
        set(self.protocol.is_some(), bit::PROTO);
        set(self.src_ports.is_some(), bit::SPORT);
        set(self.dst_ports.is_some(), bit::DPORT);
        set(self.length.is_some(), bit::LEN);
        set(self.ttl.is_some(), bit::TTL);
        set(self.tcp_flags.is_some(), bit::TCPFLAGS);
        set(self.icmp_types.is_some(), bit::ICMP);
        set(self.fragment.is_some(), bit::FRAG);
        set(self.later_fragments, bit::TAILS);
        f
    }

    /// The kernel's `struct rule` bytes for this rule counting into `slot`
    /// (native byte order: the program runs on this host's CPU).
    pub fn encode(&self, slot: u32) -> [u8; RULE_SIZE] {
        let mut b = [0u8; RULE_SIZE];
        let r16 = |r: Option<Range<u16>>| r.map_or((0, 0), |r| (r.lo, r.hi));
        let r8 = |r: Option<Range<u8>>| r.map_or((0, 0), |r| (r.lo, r.hi));
        b[0..4].copy_from_slice(&slot.to_ne_bytes());
        b[4..6].copy_from_slice(&self.condition_bits().to_ne_bytes());
        b[6] = self.ip_version.unwrap_or(0);
        b[7] = self.protocol.unwrap_or(0);
        for (at, (lo, hi)) in [
            (8, r16(self.src_ports)),
            (12, r16(self.dst_ports)),
            (16, r16(self.length)),
        ] {
            b[at..at + 2].copy_from_slice(&lo.to_ne_bytes());
            b[at + 2..at + 4].copy_from_slice(&hi.to_ne_bytes());
        }
        (b[20], b[21]) = r8(self.ttl);
        let t = self
            .tcp_flags
            .unwrap_or(TcpFlagsMatch { mask: 0, value: 0 });
        (b[22], b[23]) = (t.mask, t.value);
        (b[24], b[25]) = r8(self.icmp_types);
        b[26] = u8::from(self.fragment.unwrap_or(false));
        b
    }

    /// Reads back what [`encode`](Self::encode) wrote: `(slot, rule)`, or
    /// `None` for bytes it cannot have written (unknown condition bits).
    pub fn decode(b: &[u8; RULE_SIZE]) -> Option<(u32, FingerprintMatch)> {
        let u16_at = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        let slot = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let f = u16_at(4);
        if f & !bit::ALL != 0 {
            return None;
        }
        let on = |x: u16| f & x != 0;
        let r16 = |x: u16, at: usize| on(x).then(|| Range::new(u16_at(at), u16_at(at + 2)));
        let r8 = |x: u16, at: usize| on(x).then(|| Range::new(b[at], b[at + 1]));
        let m = FingerprintMatch {
            ip_version: on(bit::IPVER).then_some(b[6]),
            protocol: on(bit::PROTO).then_some(b[7]),
            src_ports: r16(bit::SPORT, 8),
            dst_ports: r16(bit::DPORT, 12),
            length: r16(bit::LEN, 16),
            ttl: r8(bit::TTL, 20),
            tcp_flags: on(bit::TCPFLAGS).then_some(TcpFlagsMatch {
                mask: b[22],
                value: b[23],
            }),
            icmp_types: r8(bit::ICMP, 24),
            fragment: on(bit::FRAG).then_some(b[26] != 0),
            later_fragments: on(bit::TAILS),
        };
        Some((slot, m))
    }

    /// Whether the XDP program drops `m` by this rule: the Rust model of
    /// `rule_matches()` in `bpf/levee_xdp.c`, kept in step with it by the
    /// kernel differential test (tests/kernel.rs).
    pub fn matches(&self, m: &PacketMeta) -> bool {
        let version = if m.is_ipv6() { 6 } else { 4 };
        if self.ip_version.is_some_and(|v| v != version)
            || self.protocol.is_some_and(|p| p != m.protocol)
            || self.fragment.is_some_and(|f| f != m.fragment.is_some())
        {
            return false;
        }
        if m.is_tail_fragment() {
            if !self.later_fragments {
                return false;
            }
        } else {
            let port_ok = |r: Option<Range<u16>>, p: Option<u16>| match r {
                None => true,
                Some(r) => p.is_some_and(|p| r.contains(p)),
            };
            if !port_ok(self.src_ports, m.src_port()) || !port_ok(self.dst_ports, m.dst_port()) {
                return false;
            }
            if let Some(t) = self.tcp_flags {
                let tcp = m.protocol == proto::TCP;
                if !(tcp && m.tcp_flags().is_some_and(|f| t.matches(f.0))) {
                    return false;
                }
            }
            if let Some(r) = self.icmp_types {
                match m.transport {
                    levee_packet::Transport::Icmp { kind, .. } if r.contains(kind) => {}
                    _ => return false,
                }
            }
        }
        self.length.is_none_or(|r| r.contains(m.ip_len))
            && self.ttl.is_none_or(|r| r.contains(m.ttl))
    }
}

/// The rule as one line, e.g.
/// `ipv4 proto 6 dport 80 tcp-flags 0x02/0xff length 40-48 ttl 240-243 unfragmented`.
impl fmt::Display for FingerprintMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = self.ip_version {
            parts.push(format!("ipv{v}"));
        }
        if let Some(p) = self.protocol {
            parts.push(format!("proto {p}"));
        }
        if let Some(r) = self.src_ports {
            parts.push(format!("sport {r}"));
        }
        if let Some(r) = self.dst_ports {
            parts.push(format!("dport {r}"));
        }
        if let Some(t) = self.tcp_flags {
            parts.push(format!("tcp-flags {:#04x}/{:#04x}", t.value, t.mask));
        }
        if let Some(r) = self.icmp_types {
            parts.push(format!("icmp-type {r}"));
        }
        if let Some(r) = self.length {
            parts.push(format!("length {r}"));
        }
        if let Some(r) = self.ttl {
            parts.push(format!("ttl {r}"));
        }
        match self.fragment {
            Some(false) => parts.push("unfragmented".into()),
            Some(true) => parts.push("fragments".into()),
            None => {}
        }
        if self.later_fragments {
            parts.push("later-fragments".into());
        }
        if parts.is_empty() {
            parts.push("any".into());
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn syn80() -> FingerprintMatch {
        FingerprintMatch {
            ip_version: Some(4),
            protocol: Some(6),
            dst_ports: Some(Range::one(80)),
            tcp_flags: Some(TcpFlagsMatch::exact(0x02)),
            length: Some(Range::new(40, 48)),
            ttl: Some(Range::new(240, 243)),
            fragment: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn encodes_the_c_layout() {
        let b = syn80().encode(7);
        let le = cfg!(target_endian = "little");
        assert_eq!(&b[0..4], &7u32.to_ne_bytes(), "slot");
        let flags =
            bit::IPVER | bit::PROTO | bit::DPORT | bit::LEN | bit::TTL | bit::TCPFLAGS | bit::FRAG;
        assert_eq!(&b[4..6], &flags.to_ne_bytes());
        assert_eq!((b[6], b[7]), (4, 6));
        assert_eq!(&b[8..12], &[0; 4], "no source port condition");
        assert_eq!(
            &b[12..16],
            if le { &[80, 0, 80, 0] } else { &[0, 80, 0, 80] }
        );
        assert_eq!(
            &b[16..20],
            if le { &[40, 0, 48, 0] } else { &[0, 40, 0, 48] }
        );
        assert_eq!(&b[20..28], &[240, 243, 0xff, 0x02, 0, 0, 0, 0]);
        let tails = FingerprintMatch {
            fragment: Some(true),
            later_fragments: true,
            ..Default::default()
        };
        let b = tails.encode(0);
        assert_eq!(&b[4..6], &(bit::FRAG | bit::TAILS).to_ne_bytes());
        assert_eq!(b[26], 1);
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            FingerprintMatch::default().validate(),
            Err(RuleError::MatchesEverything)
        );
        let only_tails = FingerprintMatch {
            later_fragments: true,
            ..Default::default()
        };
        assert_eq!(only_tails.validate(), Err(RuleError::MatchesEverything));
        let mut m = syn80();
        assert_eq!(m.validate(), Ok(()));
        m.ip_version = Some(5);
        assert_eq!(m.validate(), Err(RuleError::IpVersion(5)));
        m = syn80();
        m.dst_ports = Some(Range::new(90, 80));
        let e = m.validate().unwrap_err();
        assert!(e.to_string().contains("dst_ports range 90-80"), "{e}");
        m = syn80();
        m.ttl = Some(Range::new(9, 1));
        assert!(m.validate().unwrap_err().to_string().contains("ttl"));
        m = syn80();
        m.tcp_flags = Some(TcpFlagsMatch {
            mask: 0x02,
            value: 0x12,
        });
        assert!(matches!(
            m.validate(),
            Err(RuleError::FlagsOutsideMask { .. })
        ));
    }

    #[test]
    fn renders_one_line() {
        assert_eq!(
            syn80().to_string(),
            "ipv4 proto 6 dport 80 tcp-flags 0x02/0xff length 40-48 ttl 240-243 unfragmented"
        );
        assert_eq!(FingerprintMatch::default().to_string(), "any");
    }

    fn range16() -> impl Strategy<Value = Option<Range<u16>>> {
        proptest::option::of((any::<u16>(), any::<u16>()).prop_map(|(a, b)| Range::new(a, b)))
    }

    fn range8() -> impl Strategy<Value = Option<Range<u8>>> {
        proptest::option::of((any::<u8>(), any::<u8>()).prop_map(|(a, b)| Range::new(a, b)))
    }

    prop_compose! {
        pub(crate) fn any_match()(
            ip_version in proptest::option::of(prop_oneof![Just(4u8), Just(6u8)]),
            protocol in proptest::option::of(any::<u8>()),
            src_ports in range16(), dst_ports in range16(), length in range16(),
            ttl in range8(), icmp_types in range8(),
            tcp in proptest::option::of((any::<u8>(), any::<u8>())),
            fragment in proptest::option::of(any::<bool>()),
            later_fragments in any::<bool>(),
        ) -> FingerprintMatch {
            FingerprintMatch {
                ip_version, protocol, src_ports, dst_ports, length, ttl, icmp_types,
                tcp_flags: tcp.map(|(mask, v)| TcpFlagsMatch { mask, value: v & mask }),
                fragment, later_fragments,
            }
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(m in any_match(), slot in any::<u32>()) {
            // Absent ranges encode as zeros and decode as absent.
            prop_assert_eq!(FingerprintMatch::decode(&m.encode(slot)), Some((slot, m)));
        }
    }
}
