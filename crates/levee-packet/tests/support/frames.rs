//! Building test frames with etherparse's packet builder, and running them
//! through the extractor and classifier.

#![allow(dead_code)]

use etherparse::{IpFragOffset, IpHeaders, IpNumber, Ipv4Header, PacketBuilder};
use levee_packet::{classify, Classification, ClassifyConfig, Extractor, FeatureConfig, LinkType};

pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const VICTIM: [u8; 4] = [10, 0, 0, 1];

/// A small deterministic generator (tests must not be flaky).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 16
    }
    /// A random public-looking IPv4 address.
    pub fn ip(&mut self) -> [u8; 4] {
        let v = self.next() as u32;
        let [a, b, c, d] = v.to_be_bytes();
        [a % 200 + 11, b, c, d]
    }
    pub fn port(&mut self) -> u16 {
        (self.next() % 64_000) as u16 + 1024
    }
}

/// An Ethernet + IPv4 + TCP frame; `flags` in letters (`S`, `SA`, `FPU`...).
pub fn tcp(src: [u8; 4], sport: u16, dport: u16, flags: &str, payload: usize, ttl: u8) -> Vec<u8> {
    tcp_to(src, VICTIM, sport, dport, flags, payload, ttl)
}

pub fn tcp_to(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: &str,
    payload: usize,
    ttl: u8,
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, dst, ttl)
        .tcp(sport, dport, 1000, 64_240);
    for c in flags.chars() {
        b = match c {
            'F' => b.fin(),
            'S' => b.syn(),
            'R' => b.rst(),
            'P' => b.psh(),
            'A' => b.ack(1),
            'U' => b.urg(0),
            'E' => b.ece(),
            'C' => b.cwr(),
            _ => b,
        };
    }
    let data = vec![0x41u8; payload];
    let mut out = Vec::with_capacity(b.size(payload));
    b.write(&mut out, &data).expect("frame builds");
    out
}

/// Ethernet + IPv4 + UDP.
pub fn udp(src: [u8; 4], sport: u16, dport: u16, payload: &[u8], ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, VICTIM, ttl)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// Ethernet + IPv4 + ICMP echo request.
pub fn icmp_echo(src: [u8; 4], payload: usize, ttl: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, VICTIM, ttl)
        .icmpv4_echo_request(1, 1);
    let data = vec![0u8; payload];
    let mut out = Vec::new();
    b.write(&mut out, &data).expect("frame builds");
    out
}

fn ipv4_header(src: [u8; 4], ttl: u8, offset_units: u16, more: bool) -> Ipv4Header {
    let mut h = Ipv4Header::new(0, ttl, IpNumber::UDP, src, VICTIM).expect("header");
    h.more_fragments = more;
    h.fragment_offset = IpFragOffset::try_new(offset_units).expect("offset");
    h.identification = offset_units.wrapping_mul(7);
    h
}

/// An IPv4 packet of protocol `proto` with `payload` bytes after the IP
/// header (no transport header is built), optionally a fragment.
pub fn raw_ip(
    src: [u8; 4],
    proto: u8,
    payload: usize,
    ttl: u8,
    frag: Option<(u16, bool)>,
) -> Vec<u8> {
    let (off, more) = frag.unwrap_or((0, false));
    let h = ipv4_header(src, ttl, off, more);
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B).ip(IpHeaders::Ipv4(h, Default::default()));
    let data = vec![0x5au8; payload];
    let mut out = Vec::new();
    b.write(&mut out, IpNumber(proto), &data)
        .expect("frame builds");
    out
}

/// The first fragment of a UDP datagram: UDP header + the start of the
/// payload, more-fragments set.
pub fn udp_first_fragment(
    src: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
    ttl: u8,
) -> Vec<u8> {
    let h = ipv4_header(src, ttl, 0, true);
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ip(IpHeaders::Ipv4(h, Default::default()))
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// Ethernet (QinQ) + IPv6 + TCP.
pub fn tcp6_qinq(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    syn: bool,
    hop: u8,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(
            etherparse::VlanId::try_new(100).expect("vlan"),
            etherparse::VlanId::try_new(200).expect("vlan"),
        )
        .ipv6(src, dst, hop)
        .tcp(sport, dport, 1, 1024);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut out = Vec::new();
    b.write(&mut out, &[]).expect("frame builds");
    out
}

/// A DNS response header followed by filler, `len` bytes.
pub fn dns_response(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(12)];
    p[0] = 0x12;
    p[1] = 0x34;
    p[2] = 0x81; // QR=1, RD
    p[3] = 0x80;
    p[5] = 1;
    p
}

/// Extracts features from frames (timestamps 10 us apart) and classifies the
/// top target.
pub fn classify_frames(frames: impl IntoIterator<Item = Vec<u8>>) -> Classification {
    classify_with_baseline(frames, None::<Vec<Vec<u8>>>)
}

pub fn extract(frames: impl IntoIterator<Item = Vec<u8>>) -> Extractor {
    let mut x = Extractor::new(FeatureConfig {
        admit_after: 1,
        ..FeatureConfig::default()
    });
    for (i, f) in frames.into_iter().enumerate() {
        x.observe_frame(i as u64 * 10_000, LinkType::Ethernet, &f)
            .expect("test frame decodes");
    }
    x
}

pub fn classify_with_baseline(
    frames: impl IntoIterator<Item = Vec<u8>>,
    baseline: Option<impl IntoIterator<Item = Vec<u8>>>,
) -> Classification {
    let x = extract(frames);
    let b = baseline.map(extract);
    let (ip, f) = x.top_target().expect("a target");
    let bf = b.as_ref().and_then(|b| b.target(ip));
    classify(f, bf, &ClassifyConfig::default()).expect("classification")
}
