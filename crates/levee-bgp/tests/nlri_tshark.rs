//! Differential test of the FlowSpec NLRI encoder against Wireshark's BGP
//! dissector, an independent decoder: pseudo-random rules of every
//! component (IPv4 RFC 8955, IPv6 RFC 8956, 1- to 8-byte values, long
//! NLRIs with the two-byte length) are encoded, wrapped in
//! BGP UPDATEs (MP_REACH_NLRI, SAFI 133) in a pcap, and `tshark -V` must
//! read back, component by component, the same types, operators, values
//! and prefixes the rule holds. Nothing on the expected side comes from
//! Levee's decoder.
//!
//! Wireshark 4.0 (Debian 12) limits what can be compared, so the generator
//! stays inside them: it does not know type 13 (IPv6 flow label, RFC 8956)
//! and stops at it, and it reads 2-byte TCP flag bitmasks wrongly (it shows
//! the low byte and loses its place), so flow labels are left out and TCP
//! flag values stay within one byte; and it reads an IPv6 prefix with a
//! non-zero offset as `ceil(length / 8)` pattern bytes, where RFC 8956
//! section 3.1 (and its own example 2, `02 68 41 24 68 ac f1 34`) carries
//! `length - offset` bits, so IPv6 prefixes here have offset 0. All three
//! are covered by the RFC golden tests and round-trip property tests in
//! `flowspec::nlri`.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use levee_bgp::flowspec::{nlri, Afi, BitOp, FlowPrefix, FlowSpec, NumOp};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

fn tshark() -> Option<PathBuf> {
    match levee_lab::cmd::which("tshark") {
        Some(p) => Some(p),
        None => {
            assert!(
                !levee_lab::prereq::is_ci(),
                "CI=true and `tshark` (Debian package tshark) is missing: the FlowSpec NLRI differential test needs it"
            );
            eprintln!("SKIPPED: `tshark` (Debian package tshark) is missing; the FlowSpec NLRI differential test did not run");
            None
        }
    }
}

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    /// A value of 1, 2, 4 or 8 bytes (each encoding length).
    fn value(&mut self, max: u64) -> u64 {
        let v = match self.below(4) {
            0 => self.below(256),
            1 => 256 + self.below(65_280),
            2 => 65_536 + self.below(u64::from(u32::MAX) - 65_535),
            _ => self.next() | (1 << 40),
        };
        if max == u64::MAX {
            v
        } else {
            v % (max + 1)
        }
    }
    fn nums(&mut self, max: u64) -> Vec<NumOp> {
        // Now and then a long list, for NLRIs over 240 bytes.
        let n = if self.below(12) == 0 {
            40
        } else {
            self.below(4) as usize
        };
        (0..n)
            .map(|i| NumOp {
                and: i > 0 && self.coin(),
                lt: self.coin(),
                gt: self.coin(),
                eq: self.coin(),
                value: self.value(max),
            })
            .collect()
    }
    fn bits(&mut self, max: u16) -> Vec<BitOp> {
        let n = self.below(3) as usize;
        (0..n)
            .map(|i| BitOp {
                and: i > 0 && self.coin(),
                not: self.coin(),
                matches: self.coin(),
                value: (self.next() as u16) & max,
            })
            .collect()
    }
    fn prefix(&mut self, afi: Afi) -> Option<FlowPrefix> {
        if self.below(4) == 0 {
            return None;
        }
        Some(match afi {
            Afi::Ipv4 => {
                let len = self.below(33) as u8;
                FlowPrefix::new(IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::from(self.next() as u32), len).unwrap(),
                ))
            }
            Afi::Ipv6 => {
                let len = self.below(129) as u8;
                let a = (u128::from(self.next()) << 64) | u128::from(self.next());
                FlowPrefix::new(IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap()))
            }
        })
    }
    fn spec(&mut self) -> FlowSpec {
        let afi = if self.coin() { Afi::Ipv4 } else { Afi::Ipv6 };
        let mut s = FlowSpec::new(afi);
        s.dst = self.prefix(afi);
        s.src = self.prefix(afi);
        s.protocol = self.nums(255);
        s.port = self.nums(65_535);
        s.dst_port = self.nums(65_535);
        s.src_port = self.nums(65_535);
        s.icmp_type = self.nums(255);
        s.icmp_code = self.nums(255);
        s.tcp_flags = self.bits(0x00ff);
        s.length = self.nums(65_535);
        s.dscp = self.nums(63);
        s.fragment = self.bits(0x0f);
        s
    }
}

fn bgp_update(afi: Afi, nlri: &[u8]) -> Vec<u8> {
    let afi_code: u16 = if afi == Afi::Ipv4 { 1 } else { 2 };
    let mut mp = afi_code.to_be_bytes().to_vec();
    mp.extend([133, 0, 0]); // SAFI, next hop length 0, reserved
    mp.extend_from_slice(nlri);
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0]; // ORIGIN, empty AS_PATH
    attrs.extend([0x90, 14]);
    attrs.extend((mp.len() as u16).to_be_bytes());
    attrs.extend(mp);
    let mut body = vec![0, 0];
    body.extend((attrs.len() as u16).to_be_bytes());
    body.extend(attrs);
    let mut msg = vec![0xff; 16];
    msg.extend(((19 + body.len()) as u16).to_be_bytes());
    msg.push(2);
    msg.extend(body);
    msg
}

/// One TCP segment 10.0.0.1:40000 -> 10.0.0.2:179 per message, in a
/// classic pcap (each frame its own segment so tshark needs no reassembly).
fn pcap(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32.to_le_bytes().to_vec(), vec![2, 0, 4, 0]] {
        out.extend(v);
    }
    out.extend([0u8; 8]);
    out.extend(65_535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let mut seq = 1u32;
    for (i, m) in messages.iter().enumerate() {
        let mut tcp = Vec::new();
        tcp.extend(40_000u16.to_be_bytes());
        tcp.extend(179u16.to_be_bytes());
        tcp.extend(seq.to_be_bytes());
        tcp.extend(0u32.to_be_bytes());
        tcp.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        seq = seq.wrapping_add(m.len() as u32);
        let total = (20 + tcp.len() + m.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend(total.to_be_bytes());
        ip.extend((i as u16).to_be_bytes());
        ip.extend([0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let mut frame = vec![
            0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 8, 0,
        ];
        frame.extend(ip);
        frame.extend(tcp);
        frame.extend(m);
        out.extend([0u8; 8]);
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    }
    out
}

/// One component as compared: its type and either a prefix
/// ("addr/len" or "addr/len@offset") or its operators as (end-of-list,
/// and, lt-or-not, gt, eq-or-match, value) -- the bit meanings of RFC 8955
/// section 4.2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Comp {
    Prefix(u8, String),
    Ops(u8, Vec<(bool, bool, bool, bool, bool, u64)>),
}

fn prefix_text(p: &FlowPrefix, afi: Afi) -> String {
    match afi {
        Afi::Ipv4 => format!("{}/{}", p.net.addr(), p.net.prefix_len()),
        Afi::Ipv6 => format!("{}/{}@{}", p.net.addr(), p.net.prefix_len(), p.offset),
    }
}

/// What the rule holds, in NLRI component order.
fn expected(s: &FlowSpec) -> Vec<Comp> {
    let mut out = Vec::new();
    for (ty, p) in [(1u8, &s.dst), (2, &s.src)] {
        if let Some(p) = p {
            out.push(Comp::Prefix(ty, prefix_text(p, s.afi)));
        }
    }
    let num = |ty: u8, ops: &[NumOp]| {
        Comp::Ops(
            ty,
            ops.iter()
                .enumerate()
                .map(|(i, o)| (i + 1 == ops.len(), o.and, o.lt, o.gt, o.eq, o.value))
                .collect(),
        )
    };
    let bits = |ty: u8, ops: &[BitOp]| {
        Comp::Ops(
            ty,
            ops.iter()
                .enumerate()
                .map(|(i, o)| {
                    (
                        i + 1 == ops.len(),
                        o.and,
                        false,
                        o.not,
                        o.matches,
                        u64::from(o.value),
                    )
                })
                .collect(),
        )
    };
    for (ty, ops) in [
        (3u8, &s.protocol),
        (4, &s.port),
        (5, &s.dst_port),
        (6, &s.src_port),
        (7, &s.icmp_type),
        (8, &s.icmp_code),
    ] {
        if !ops.is_empty() {
            out.push(num(ty, ops));
        }
    }
    if !s.tcp_flags.is_empty() {
        out.push(bits(9, &s.tcp_flags));
    }
    for (ty, ops) in [(10u8, &s.length), (11, &s.dscp)] {
        if !ops.is_empty() {
            out.push(num(ty, ops));
        }
    }
    if !s.fragment.is_empty() {
        out.push(bits(12, &s.fragment));
    }
    out
}

/// The text after the last `: ` of a line.
fn after(line: &str, key: &str) -> Option<String> {
    line.trim().strip_prefix(key).map(|r| r.trim().to_string())
}

fn hex_or_dec(t: &str) -> u64 {
    let t = t.trim();
    match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap_or_else(|e| panic!("hex {t}: {e}")),
        None => t.parse().unwrap_or_else(|e| panic!("number {t}: {e}")),
    }
}

/// Wireshark's reading of every FLOW_SPEC_NLRI in `tshark -V` output.
fn wireshark(text: &str) -> Vec<Vec<Comp>> {
    let mut all: Vec<Vec<Comp>> = Vec::new();
    let mut pending_len: Option<String> = None;
    let mut offset: Option<String> = None;
    let mut v6 = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("FLOW_SPEC_NLRI (") {
            all.push(Vec::new());
            continue;
        }
        if l.starts_with("Address family identifier (AFI):") {
            v6 = l.contains("IPv6");
        }
        let Some(cur) = all.last_mut() else { continue };
        if let Some(t) = after(l, "Filter type:") {
            let ty = t
                .rsplit_once('(')
                .and_then(|(_, n)| n.trim_end_matches(')').parse::<u8>().ok())
                .unwrap_or_else(|| panic!("filter type in {l:?}"));
            if ty > 2 {
                cur.push(Comp::Ops(ty, Vec::new()));
            } else {
                cur.push(Comp::Prefix(ty, String::new()));
            }
        } else if let Some(f) = after(l, "Operator flags:") {
            let f = hex_or_dec(f.split(',').next().unwrap_or_default()) as u8;
            if let Some(Comp::Ops(_, ops)) = cur.last_mut() {
                ops.push((
                    f & 0x80 != 0,
                    f & 0x40 != 0,
                    f & 0x04 != 0,
                    f & 0x02 != 0,
                    f & 0x01 != 0,
                    0,
                ));
            }
        } else if let Some(v) = after(l, "Decimal value:")
            .or_else(|| {
                after(l, "TCP flags:").map(|t| t.split(',').next().unwrap_or_default().to_string())
            })
            .or_else(|| {
                after(l, "Fragment Flag:")
                    .map(|t| t.split(',').next().unwrap_or_default().to_string())
            })
            .or_else(|| {
                l.contains("= Differentiated Services Codepoint:")
                    .then(|| {
                        l.rsplit_once('(')
                            .map(|(_, v)| v.trim_end_matches(')').to_string())
                    })
                    .flatten()
            })
        {
            if let Some(Comp::Ops(_, ops)) = cur.last_mut() {
                if let Some(last) = ops.last_mut() {
                    last.5 = hex_or_dec(&v);
                }
            }
        } else if let Some(n) = after(l, "Destination IP filter prefix length:")
            .or_else(|| after(l, "Source IP filter prefix length:"))
            .or_else(|| after(l, "IPv6 prefix length:"))
        {
            pending_len = Some(n);
        } else if let Some(o) = after(l, "IPv6 prefix offset:") {
            offset = Some(o);
        } else if let Some(a) = after(l, "Destination IP filter:")
            .or_else(|| after(l, "Source IP filter:"))
            .or_else(|| after(l, "Destination IPv6 prefix:"))
            .or_else(|| after(l, "Source IPv6 prefix:"))
        {
            if let Some(Comp::Prefix(_, t)) = cur.last_mut() {
                let len = pending_len.take().unwrap_or_default();
                *t = if v6 {
                    format!("{a}/{len}@{}", offset.take().unwrap_or_default())
                } else {
                    format!("{a}/{len}")
                };
            }
        }
    }
    all
}

#[test]
fn wireshark_reads_every_component_as_encoded() {
    let Some(ts) = tshark() else { return };
    let mut rng = Rng(0x5eed_f10c);
    let specs: Vec<FlowSpec> = (0..400).map(|_| rng.spec()).collect();
    let encoded: Vec<Vec<u8>> = specs.iter().map(|s| nlri::encode(s).unwrap()).collect();
    assert!(
        encoded.iter().any(|b| b.len() > 241),
        "some rules need the two-byte NLRI length"
    );
    let msgs: Vec<Vec<u8>> = specs
        .iter()
        .zip(&encoded)
        .map(|(s, b)| bgp_update(s.afi, b))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flowspec.pcap");
    std::fs::write(&file, pcap(&msgs)).unwrap();
    let out = Command::new(&ts)
        .arg("-r")
        .arg(&file)
        .args(["-V", "-O", "bgp"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = wireshark(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(got.len(), specs.len(), "one FLOW_SPEC_NLRI per UPDATE");
    let mut bad = Vec::new();
    for (i, (s, g)) in specs.iter().zip(&got).enumerate() {
        let want = expected(s);
        if &want != g {
            bad.push(format!(
                "rule {i} ({:02x?}):\n  want {want:?}\n  got  {g:?}",
                encoded[i]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        specs.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}
