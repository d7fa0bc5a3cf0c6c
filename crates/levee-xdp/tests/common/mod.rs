//! Shared by the integration tests: generated Ethernet frames (VLAN tags,
//! IPv4 options and fragments, IPv6 extension headers, truncation, padding),
//! generated fingerprints, and the prerequisite check for tests that load
//! the program into the kernel.

#![allow(dead_code)] // each test binary uses its own part

use levee_packet::classify::{Fingerprint, PortMatch};
use levee_packet::{IpProtocol, TcpFlags};
use proptest::prelude::*;
use std::io::Write;

/// Tests that load the XDP program: root and a build that carries it. On
/// CI a missing prerequisite fails the test; elsewhere it skips loudly.
pub fn require_xdp() -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (loading BPF programs needs CAP_BPF and CAP_NET_ADMIN)".to_string());
    }
    if let Err(e) = levee_xdp::available() {
        missing.push(e.to_string());
    }
    match levee_lab::prereq::decide(missing.clone(), levee_lab::prereq::is_ci()) {
        levee_lab::prereq::Decision::Run => true,
        levee_lab::prereq::Decision::Fail(_) => panic!(
            "CI=true and the XDP tests cannot run: {}. CI must run them as root with the \
             Debian packages {} installed",
            missing.join("; "),
            levee_xdp::BUILD_PACKAGES
        ),
        levee_lab::prereq::Decision::Skip(skip) => {
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING XDP TEST: {skip}\n!!! (with CI=true this is a failure)\n{bar}\n"
            );
            false
        }
    }
}

/// IPv4 fragmentation of a generated packet.
#[derive(Debug, Clone, Copy)]
pub enum Frag {
    None,
    First,
    /// Offset in 8-byte units (> 0), more-fragments flag.
    Tail(u16, bool),
}

/// How the IP length field is filled in.
#[derive(Debug, Clone, Copy)]
pub enum LenField {
    Exact,
    /// 0: "use the captured length" (TSO / jumbogram).
    Zero,
    Value(u16),
}

#[derive(Debug, Clone)]
pub enum Ip {
    V4 {
        src: [u8; 4],
        options_words: u8,
        frag: Frag,
    },
    V6 {
        src: [u8; 16],
        /// Extension header types before the upper layer (0, 43, 60, 51, 135,
        /// 44 = fragment).
        ext: Vec<u8>,
        /// Fragment header contents when 44 is in `ext`.
        frag: Frag,
    },
}

/// One generated frame.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    pub tpids: Vec<u16>,
    pub ip: Ip,
    pub ttl: u8,
    pub proto: u8,
    pub len_field: LenField,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub payload: usize,
    /// Cut the frame to this many bytes (at least 14).
    pub truncate: Option<usize>,
}

/// The bytes of the transport header the spec asks for.
fn l4_header(s: &FrameSpec) -> Vec<u8> {
    let [sp0, sp1] = s.sport.to_be_bytes();
    let [dp0, dp1] = s.dport.to_be_bytes();
    match s.proto {
        6 => {
            let mut h = vec![
                sp0,
                sp1,
                dp0,
                dp1,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0x50,
                s.tcp_flags,
            ];
            h.extend([0xff, 0xff, 0, 0, 0, 0]);
            h
        }
        17 => vec![sp0, sp1, dp0, dp1, 0, 8, 0, 0],
        1 | 58 => vec![s.icmp_type, 0, 0, 0, 0, 1, 0, 1],
        _ => vec![0x45; 8],
    }
}

fn frag_field(f: Frag) -> u16 {
    match f {
        Frag::None => 0,
        Frag::First => 0x2000,
        Frag::Tail(off, more) => (off & 0x1fff) | if more { 0x2000 } else { 0 },
    }
}

/// Builds the Ethernet frame (padded to 60 bytes like a real NIC would).
pub fn build(s: &FrameSpec) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for (i, tpid) in s.tpids.iter().enumerate() {
        f.extend(tpid.to_be_bytes());
        f.extend((100 + i as u16).to_be_bytes());
    }
    let mut upper = l4_header(s);
    upper.extend((0..s.payload).map(|i| i as u8));
    match &s.ip {
        Ip::V4 {
            src,
            options_words,
            frag,
        } => {
            f.extend([0x08, 0x00]);
            let ihl = 5 + options_words;
            let total = usize::from(ihl) * 4 + upper.len();
            let len = match s.len_field {
                LenField::Exact => total as u16,
                LenField::Zero => 0,
                LenField::Value(v) => v,
            };
            let ff = frag_field(*frag);
            f.push(0x40 | ihl);
            f.push(0);
            f.extend(len.to_be_bytes());
            f.extend([0x12, 0x34]);
            f.extend(ff.to_be_bytes());
            f.extend([s.ttl, s.proto, 0, 0]);
            f.extend(src);
            f.extend([10, 99, 0, 2]);
            f.extend(std::iter::repeat_n(1u8, usize::from(*options_words) * 4));
            f.extend(upper);
        }
        Ip::V6 { src, ext, frag } => {
            f.extend([0x86, 0xdd]);
            let mut chain = Vec::new();
            for (i, t) in ext.iter().enumerate() {
                let next = ext.get(i + 1).copied().unwrap_or(s.proto);
                match t {
                    44 => {
                        let field = match frag {
                            Frag::None | Frag::First => 1u16, // offset 0, M
                            Frag::Tail(off, more) => (off << 3) | u16::from(*more),
                        };
                        chain.extend([next, 0]);
                        chain.extend(field.to_be_bytes());
                        chain.extend([0, 0, 0, 7]);
                    }
                    51 => chain.extend([next, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                    _ => chain.extend([next, 0, 1, 4, 0, 0, 0, 0]),
                }
            }
            let first = ext.first().copied().unwrap_or(s.proto);
            chain.extend(upper);
            let len = match s.len_field {
                LenField::Exact => chain.len() as u16,
                LenField::Zero => 0,
                LenField::Value(v) => v,
            };
            f.extend([0x60, 0, 0, 0]);
            f.extend(len.to_be_bytes());
            f.extend([first, s.ttl]);
            f.extend(src);
            f.extend([0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            f.extend(chain);
        }
    }
    if f.len() < 60 {
        f.resize(60, 0);
    }
    if let Some(n) = s.truncate {
        f.truncate(n.max(14));
    }
    f
}

pub const PORTS: [u16; 5] = [53, 80, 123, 443, 1024];
pub const FLAGS: [u8; 6] = [0x02, 0x12, 0x10, 0x18, 0x04, 0x11];
pub const ICMP_TYPES: [u8; 5] = [0, 3, 8, 128, 129];
pub const PROTOS: [u8; 5] = [6, 17, 1, 58, 47];
pub const TTLS: [u8; 5] = [1, 64, 128, 240, 255];

fn pick<T: Copy + std::fmt::Debug + 'static>(pool: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(pool)
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![3 => pick(&PORTS), 1 => any::<u16>()]
}

pub fn v4_src() -> impl Strategy<Value = [u8; 4]> {
    (0u8..4, 1u8..4).prop_map(|(c, d)| [10, 0, c, d])
}

pub fn v6_src() -> impl Strategy<Value = [u8; 16]> {
    (0u8..4, 1u8..4).prop_map(|(c, d)| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[5] = c;
        a[15] = d;
        a
    })
}

fn frag() -> impl Strategy<Value = Frag> {
    prop_oneof![
        6 => Just(Frag::None),
        1 => Just(Frag::First),
        1 => (1u16..200, any::<bool>()).prop_map(|(o, m)| Frag::Tail(o, m)),
    ]
}

fn ip() -> impl Strategy<Value = Ip> {
    prop_oneof![
        (v4_src(), prop_oneof![4 => Just(0u8), 1 => 1u8..3], frag()).prop_map(
            |(src, options_words, frag)| Ip::V4 {
                src,
                options_words,
                frag
            }
        ),
        (
            v6_src(),
            proptest::collection::vec(pick(&[0u8, 43, 60, 51, 135]), 0..3),
            proptest::option::of(0usize..3),
            frag()
        )
            .prop_map(|(src, mut ext, frag_at, frag)| {
                if let Some(at) = frag_at {
                    ext.insert(at.min(ext.len()), 44);
                }
                Ip::V6 { src, ext, frag }
            }),
    ]
}

prop_compose! {
    pub fn frame_spec()(
        tpids in proptest::collection::vec(pick(&[0x8100u16, 0x88a8, 0x9100]), 0..3),
        ip in ip(),
        ttl in prop_oneof![3 => pick(&TTLS), 1 => any::<u8>()],
        proto in prop_oneof![4 => pick(&PROTOS), 1 => any::<u8>()],
        len_field in prop_oneof![
            8 => Just(LenField::Exact),
            1 => Just(LenField::Zero),
            1 => any::<u16>().prop_map(LenField::Value),
        ],
        sport in port(), dport in port(),
        tcp_flags in prop_oneof![3 => pick(&FLAGS), 1 => any::<u8>()],
        icmp_type in prop_oneof![3 => pick(&ICMP_TYPES), 1 => any::<u8>()],
        payload in 0usize..48,
        truncate in prop_oneof![8 => Just(None), 1 => (14usize..90).prop_map(Some)],
    ) -> FrameSpec {
        FrameSpec { tpids, ip, ttl, proto, len_field, sport, dport, tcp_flags, icmp_type, payload, truncate }
    }
}

/// A generated frame, sometimes with a few bytes overwritten at random.
pub fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        frame_spec(),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ],
    )
        .prop_map(|(spec, edits)| {
            let mut f = build(&spec);
            for (at, byte) in edits {
                let i = at.index(f.len());
                f[i] = byte;
            }
            f
        })
}

fn sorted_pair<T: Ord + Copy>((a, b): (T, T)) -> [T; 2] {
    [a.min(b), a.max(b)]
}

fn port_match() -> impl Strategy<Value = PortMatch> {
    prop_oneof![
        3 => pick(&PORTS).prop_map(PortMatch::Port),
        1 => (port(), port()).prop_map(|p| PortMatch::Range(sorted_pair(p))),
    ]
}

prop_compose! {
    fn single_fingerprint()(
        ip_version in proptest::option::of(prop_oneof![Just(4u8), Just(6u8)]),
        protocol in proptest::option::of(pick(&PROTOS)),
        src_ports in proptest::option::of(proptest::collection::vec(port_match(), 1..3)),
        dst_ports in proptest::option::of(proptest::collection::vec(port_match(), 1..3)),
        tcp_flags in proptest::option::of(proptest::collection::vec(pick(&FLAGS), 1..3)),
        icmp_types in proptest::option::of(proptest::collection::vec(pick(&ICMP_TYPES), 1..3)),
        length in proptest::option::of((20u16..200, 20u16..200).prop_map(sorted_pair)),
        ttl in proptest::option::of((any::<u8>(), any::<u8>()).prop_map(sorted_pair)),
        fragment in proptest::option::of(any::<bool>()),
        non_first_fragments in any::<bool>(),
    ) -> Fingerprint {
        Fingerprint {
            ip_version,
            protocol: protocol.map(IpProtocol),
            src_ports,
            dst_ports,
            tcp_flags: tcp_flags.map(|v| v.into_iter().map(TcpFlags).collect()),
            icmp_types,
            length,
            ttl,
            fragment,
            non_first_fragments,
            src_prefixes: Vec::new(),
            coverage: 1.0,
            baseline_match: None,
            sample_packets: 0,
            any_of: Vec::new(),
        }
    }
}

/// A fingerprint, sometimes multi-vector (`any_of`).
pub fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    prop_oneof![
        3 => single_fingerprint(),
        1 => proptest::collection::vec(single_fingerprint(), 2..3).prop_map(|parts| {
            let mut fp = parts[0].clone();
            fp = Fingerprint { any_of: parts, ..fp };
            fp.ip_version = None;
            fp.protocol = None;
            fp
        }),
    ]
}
