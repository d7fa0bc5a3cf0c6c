//! Encoders for the formats this crate decodes: well-formed NetFlow v5, v9,
//! IPFIX and sFlow v5 datagrams from [`FlowRecord`]-like inputs.
//!
//! The collector never sends flows; these exist so that tests, property
//! tests, fuzz seeds and benchmarks can produce exactly the datagrams they
//! need (thousands of distinct records, withdrawals, options data) without
//! a capture for each case. Each encoder follows the layout documented in
//! the decoder module of its format.

use crate::template::{FieldSpec, VARLEN};
use std::net::IpAddr;

/// One flow to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u8,
    pub packets: u64,
    pub bytes: u64,
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or([0; 4], |v| v.octets()),
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(v) => v.octets(),
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
    }
}

/// A NetFlow v5 datagram (at most 30 flows are encoded).
pub fn netflow5(
    seq: u32,
    unix_secs: u32,
    engine: (u8, u8),
    sampling_interval: u16,
    flows: &[Flow],
) -> Vec<u8> {
    let flows = &flows[..flows.len().min(30)];
    let mut b = Vec::with_capacity(24 + 48 * flows.len());
    b.extend_from_slice(&5u16.to_be_bytes());
    b.extend_from_slice(&(flows.len() as u16).to_be_bytes());
    b.extend_from_slice(&100_000u32.to_be_bytes()); // sys_uptime
    b.extend_from_slice(&unix_secs.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.push(engine.0);
    b.push(engine.1);
    b.extend_from_slice(&sampling_interval.to_be_bytes());
    for f in flows {
        b.extend_from_slice(&v4(f.src));
        b.extend_from_slice(&v4(f.dst));
        b.extend_from_slice(&[0; 4]); // nexthop
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&(f.packets as u32).to_be_bytes());
        b.extend_from_slice(&(f.bytes as u32).to_be_bytes());
        b.extend_from_slice(&99_000u32.to_be_bytes());
        b.extend_from_slice(&99_500u32.to_be_bytes());
        b.extend_from_slice(&f.src_port.to_be_bytes());
        b.extend_from_slice(&f.dst_port.to_be_bytes());
        b.push(0);
        b.push(f.tcp_flags);
        b.push(f.protocol);
        b.push(0);
        b.extend_from_slice(&[0; 8]);
    }
    b
}

/// The field list [`data_record`] encodes: IPv4 or IPv6 addresses, ports,
/// protocol, flags, 8-byte packet and byte counts.
pub fn flow_fields(ipv6: bool) -> Vec<FieldSpec> {
    let f = |id, length| FieldSpec {
        id,
        length,
        enterprise: 0,
    };
    let (s, d, l) = if ipv6 { (27, 28, 16) } else { (8, 12, 4) };
    vec![
        f(s, l),
        f(d, l),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(6, 1),
        f(2, 8),
        f(1, 8),
    ]
}

/// One record in the layout of [`flow_fields`].
pub fn data_record(f: &Flow, ipv6: bool, out: &mut Vec<u8>) {
    if ipv6 {
        out.extend_from_slice(&v6(f.src));
        out.extend_from_slice(&v6(f.dst));
    } else {
        out.extend_from_slice(&v4(f.src));
        out.extend_from_slice(&v4(f.dst));
    }
    out.extend_from_slice(&f.src_port.to_be_bytes());
    out.extend_from_slice(&f.dst_port.to_be_bytes());
    out.push(f.protocol);
    out.push(f.tcp_flags);
    out.extend_from_slice(&f.packets.to_be_bytes());
    out.extend_from_slice(&f.bytes.to_be_bytes());
}

/// A set / FlowSet: id, length, body, zero padding to 4 bytes.
pub fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let mut s = Vec::with_capacity(4 + body.len() + pad);
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&((4 + body.len() + pad) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s.resize(s.len() + pad, 0);
    s
}

/// A template record body (v9 or IPFIX; `ipfix` adds enterprise numbers).
pub fn template_record(id: u16, fields: &[FieldSpec], ipfix: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    push_fields(&mut b, fields, ipfix);
    b
}

fn push_fields(b: &mut Vec<u8>, fields: &[FieldSpec], ipfix: bool) {
    for f in fields {
        let ent = ipfix && f.enterprise != 0;
        let id = if ent { f.id | 0x8000 } else { f.id };
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&f.length.to_be_bytes());
        if ent {
            b.extend_from_slice(&f.enterprise.to_be_bytes());
        }
    }
}

/// An IPFIX options template record body.
pub fn ipfix_options_template(id: u16, scope: &[FieldSpec], options: &[FieldSpec]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&((scope.len() + options.len()) as u16).to_be_bytes());
    b.extend_from_slice(&(scope.len() as u16).to_be_bytes());
    push_fields(&mut b, scope, true);
    push_fields(&mut b, options, true);
    b
}

/// A NetFlow v9 options template record body.
pub fn v9_options_template(id: u16, scope: &[FieldSpec], options: &[FieldSpec]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&((scope.len() * 4) as u16).to_be_bytes());
    b.extend_from_slice(&((options.len() * 4) as u16).to_be_bytes());
    push_fields(&mut b, scope, false);
    push_fields(&mut b, options, false);
    b
}

/// A NetFlow v9 datagram from ready-made FlowSets.
pub fn netflow9(seq: u32, source_id: u32, unix_secs: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&9u16.to_be_bytes());
    b.extend_from_slice(&(sets.len() as u16).to_be_bytes());
    b.extend_from_slice(&100_000u32.to_be_bytes());
    b.extend_from_slice(&unix_secs.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&source_id.to_be_bytes());
    for s in sets {
        b.extend_from_slice(s);
    }
    b
}

/// An IPFIX message from ready-made sets.
pub fn ipfix(seq: u32, domain: u32, export_time: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let len = 16 + sets.iter().map(Vec::len).sum::<usize>();
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&10u16.to_be_bytes());
    b.extend_from_slice(&(len as u16).to_be_bytes());
    b.extend_from_slice(&export_time.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        b.extend_from_slice(s);
    }
    b
}

/// A variable-length value as RFC 7011 section 7 encodes it.
pub fn varlen_value(v: &[u8], out: &mut Vec<u8>) {
    if v.len() < 255 {
        out.push(v.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(v.len().min(usize::from(VARLEN)) as u16).to_be_bytes());
    }
    out.extend_from_slice(v);
}

/// One sFlow flow sample carrying a raw Ethernet packet header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SflowSample {
    pub sampling_rate: u32,
    pub input: u32,
    pub output: u32,
    pub frame_length: u32,
    /// The sampled frame's first bytes (Ethernet).
    pub header: Vec<u8>,
}

/// An sFlow v5 datagram of flow samples (format 1, raw header records).
pub fn sflow(agent: IpAddr, sub_agent: u32, seq: u32, samples: &[SflowSample]) -> Vec<u8> {
    let mut b = Vec::new();
    let u = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_be_bytes());
    u(&mut b, 5);
    match agent {
        IpAddr::V4(a) => {
            u(&mut b, 1);
            b.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            u(&mut b, 2);
            b.extend_from_slice(&a.octets());
        }
    }
    u(&mut b, sub_agent);
    u(&mut b, seq);
    u(&mut b, 123_456);
    u(&mut b, samples.len() as u32);
    for (i, s) in samples.iter().enumerate() {
        let pad = (4 - s.header.len() % 4) % 4;
        let rec_len = 16 + s.header.len() + pad;
        let mut body = Vec::new();
        u(&mut body, seq.wrapping_mul(64).wrapping_add(i as u32));
        u(&mut body, 3); // source id: ifIndex 3
        u(&mut body, s.sampling_rate);
        u(&mut body, s.sampling_rate.wrapping_mul(i as u32 + 1));
        u(&mut body, 0);
        u(&mut body, s.input);
        u(&mut body, s.output);
        u(&mut body, 1);
        u(&mut body, 1); // raw packet header
        u(&mut body, rec_len as u32);
        u(&mut body, 1); // ethernet
        u(&mut body, s.frame_length);
        u(&mut body, 4);
        u(&mut body, s.header.len() as u32);
        body.extend_from_slice(&s.header);
        body.resize(body.len() + pad, 0);
        u(&mut b, 1);
        u(&mut b, body.len() as u32);
        b.extend_from_slice(&body);
    }
    b
}

/// An Ethernet + IPv4 + TCP/UDP header for an sFlow sample.
pub fn ethernet_ipv4(f: &Flow, ip_len: u16) -> Vec<u8> {
    let mut h = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    h.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, f.protocol, 0, 0]);
    h[16..18].copy_from_slice(&ip_len.to_be_bytes());
    h.extend_from_slice(&v4(f.src));
    h.extend_from_slice(&v4(f.dst));
    h.extend_from_slice(&f.src_port.to_be_bytes());
    h.extend_from_slice(&f.dst_port.to_be_bytes());
    match f.protocol {
        6 => {
            h.extend_from_slice(&[
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0x50,
                f.tcp_flags,
                0xff,
                0xff,
                0,
                0,
                0,
                0,
            ]);
        }
        _ => h.extend_from_slice(&[0, 8, 0, 0]),
    }
    h
}

/// A classic pcap file (Ethernet, microsecond timestamps) of UDP datagrams
/// from `src` to 192.0.2.254 port `port`, one per payload, a second apart.
pub fn pcap(src: std::net::Ipv4Addr, port: u16, payloads: &[Vec<u8>]) -> Vec<u8> {
    let d: Vec<(std::net::Ipv4Addr, u16, &[u8])> =
        payloads.iter().map(|p| (src, port, p.as_slice())).collect();
    pcap_datagrams(&d)
}

/// A classic pcap file of UDP datagrams `(source, destination port,
/// payload)` to 192.0.2.254, from source port 40000, a second apart.
pub fn pcap_datagrams(datagrams: &[(std::net::Ipv4Addr, u16, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, (src, port, p)) in datagrams.iter().enumerate() {
        let udp_len = 8 + p.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&(ip_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&src.octets());
        frame.extend_from_slice(&[192, 0, 2, 254]);
        frame.extend_from_slice(&40_000u16.to_be_bytes());
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(p);
        f.extend_from_slice(&(1_795_225_450u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&frame);
    }
    f
}
