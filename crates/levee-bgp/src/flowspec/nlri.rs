//! FlowSpec NLRI bytes (RFC 8955 §4, RFC 8956 §3): `encode` and `decode`,
//! pure functions over byte slices. The length prefix is one byte below
//! 240 and two bytes (`0xfnnn`) up to 4095. Components are written in
//! increasing type order; the decoder refuses anything else (§4.2: such an
//! NLRI is malformed), unknown types, truncation and trailing bytes, each
//! with the offset at fault.

use super::{Afi, BitOp, FlowPrefix, FlowSpec, NumOp};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why bytes are not a FlowSpec NLRI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    #[error("FlowSpec NLRI truncated at byte {at}: {what}")]
    Truncated { at: usize, what: &'static str },
    #[error("FlowSpec NLRI byte {at}: unknown component type {ty} for {afi:?}")]
    UnknownComponent { at: usize, ty: u8, afi: Afi },
    #[error("FlowSpec NLRI byte {at}: component type {ty} after type {prev} (types must strictly increase)")]
    OutOfOrder { at: usize, ty: u8, prev: u8 },
    #[error(
        "FlowSpec NLRI byte {at}: prefix length {len} (offset {offset}) is not valid for {afi:?}"
    )]
    BadPrefix {
        at: usize,
        len: u8,
        offset: u8,
        afi: Afi,
    },
    #[error("FlowSpec NLRI: length {len} is more than 4095 bytes")]
    TooLong { len: usize },
    #[error("FlowSpec NLRI: {extra} bytes after the declared length")]
    Trailing { extra: usize },
    #[error("FlowSpec NLRI: the rule is not encodable: {0}")]
    Invalid(String),
}

/// The NLRI bytes of `spec`, length prefix included.
pub fn encode(spec: &FlowSpec) -> Result<Vec<u8>, NlriError> {
    spec.validate().map_err(NlriError::Invalid)?;
    let mut body = Vec::new();
    for (ty, p) in [(1u8, &spec.dst), (2, &spec.src)] {
        if let Some(p) = p {
            body.push(ty);
            put_prefix(&mut body, p);
        }
    }
    let n = spec.numeric();
    for ty in 3u8..=13 {
        if let Some((_, ops)) = n.iter().find(|(t, _)| *t == ty) {
            if !ops.is_empty() {
                body.push(ty);
                put_num(&mut body, ops);
            }
        }
        let bits = match ty {
            9 => &spec.tcp_flags,
            12 => &spec.fragment,
            _ => continue,
        };
        if !bits.is_empty() {
            body.push(ty);
            put_bits(&mut body, bits);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    match body.len() {
        n if n < 240 => out.push(n as u8),
        n if n <= 0xfff => out.extend_from_slice(&(0xf000 | n as u16).to_be_bytes()),
        n => return Err(NlriError::TooLong { len: n }),
    }
    out.extend_from_slice(&body);
    Ok(out)
}

fn put_prefix(out: &mut Vec<u8>, p: &FlowPrefix) {
    let len = p.net.prefix_len();
    out.push(len);
    let bytes: Vec<u8> = match p.net {
        IpNet::V4(n) => n.network().octets().to_vec(),
        IpNet::V6(n) => {
            out.push(p.offset);
            n.network().octets().to_vec()
        }
    };
    // The pattern: bits offset..len, left-aligned, padded to a byte.
    let bits = (len - p.offset) as usize;
    let nbytes = bits.div_ceil(8);
    let start = p.offset as usize;
    for i in 0..nbytes {
        let mut b = 0u8;
        for j in 0..8 {
            let k = start + i * 8 + j;
            if k < len as usize && bytes[k / 8] & (0x80 >> (k % 8)) != 0 {
                b |= 0x80 >> j;
            }
        }
        out.push(b);
    }
}

fn value_len(v: u64) -> (u8, usize) {
    match v {
        0..=0xff => (0, 1),
        0x100..=0xffff => (1, 2),
        0x1_0000..=0xffff_ffff => (2, 4),
        _ => (3, 8),
    }
}

fn put_num(out: &mut Vec<u8>, ops: &[NumOp]) {
    for (i, op) in ops.iter().enumerate() {
        let (code, n) = value_len(op.value);
        let mut b = code << 4;
        if i + 1 == ops.len() {
            b |= 0x80;
        }
        if op.and {
            b |= 0x40;
        }
        if op.lt {
            b |= 0x04;
        }
        if op.gt {
            b |= 0x02;
        }
        if op.eq {
            b |= 0x01;
        }
        out.push(b);
        out.extend_from_slice(&op.value.to_be_bytes()[8 - n..]);
    }
}

fn put_bits(out: &mut Vec<u8>, ops: &[BitOp]) {
    for (i, op) in ops.iter().enumerate() {
        let (code, n) = value_len(u64::from(op.value));
        let mut b = code << 4;
        if i + 1 == ops.len() {
            b |= 0x80;
        }
        if op.and {
            b |= 0x40;
        }
        if op.not {
            b |= 0x02;
        }
        if op.matches {
            b |= 0x01;
        }
        out.push(b);
        out.extend_from_slice(&u64::from(op.value).to_be_bytes()[8 - n..]);
    }
}

/// Reads one NLRI of `afi` from the start of `data`; returns it and the
/// number of bytes used (so a caller can walk an MP_REACH list).
pub fn decode_one(afi: Afi, data: &[u8]) -> Result<(FlowSpec, usize), NlriError> {
    let first = *data.first().ok_or(NlriError::Truncated {
        at: 0,
        what: "length",
    })?;
    let (len, hdr) = if first >= 0xf0 {
        let second = *data.get(1).ok_or(NlriError::Truncated {
            at: 1,
            what: "two-byte length",
        })?;
        ((usize::from(first & 0x0f) << 8) | usize::from(second), 2)
    } else {
        (usize::from(first), 1)
    };
    let end = hdr + len;
    if data.len() < end {
        return Err(NlriError::Truncated {
            at: data.len(),
            what: "components (shorter than the declared length)",
        });
    }
    let mut r = Reader {
        data: &data[..end],
        pos: hdr,
    };
    let mut spec = FlowSpec::new(afi);
    let mut prev = 0u8;
    while r.pos < end {
        let at = r.pos;
        let ty = r.u8("component type")?;
        if ty <= prev {
            return Err(NlriError::OutOfOrder { at, ty, prev });
        }
        prev = ty;
        match ty {
            1 => spec.dst = Some(r.prefix(afi)?),
            2 => spec.src = Some(r.prefix(afi)?),
            9 => spec.tcp_flags = r.bits()?,
            12 => spec.fragment = r.bits()?,
            3..=8 | 10 | 11 => {
                let ops = r.num()?;
                *match ty {
                    3 => &mut spec.protocol,
                    4 => &mut spec.port,
                    5 => &mut spec.dst_port,
                    6 => &mut spec.src_port,
                    7 => &mut spec.icmp_type,
                    8 => &mut spec.icmp_code,
                    10 => &mut spec.length,
                    _ => &mut spec.dscp,
                } = ops;
            }
            13 if afi == Afi::Ipv6 => spec.flow_label = r.num()?,
            _ => return Err(NlriError::UnknownComponent { at, ty, afi }),
        }
    }
    Ok((spec, end))
}

/// Decodes exactly one NLRI filling `data`.
pub fn decode(afi: Afi, data: &[u8]) -> Result<FlowSpec, NlriError> {
    let (spec, used) = decode_one(afi, data)?;
    if used != data.len() {
        return Err(NlriError::Trailing {
            extra: data.len() - used,
        });
    }
    Ok(spec)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self, what: &'static str) -> Result<u8, NlriError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(NlriError::Truncated { at: self.pos, what })?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], NlriError> {
        if self.pos + n > self.data.len() {
            return Err(NlriError::Truncated { at: self.pos, what });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn prefix(&mut self, afi: Afi) -> Result<FlowPrefix, NlriError> {
        let at = self.pos;
        let len = self.u8("prefix length")?;
        let offset = if afi == Afi::Ipv6 {
            self.u8("prefix offset")?
        } else {
            0
        };
        if len > afi.max_len() || offset > len {
            return Err(NlriError::BadPrefix {
                at,
                len,
                offset,
                afi,
            });
        }
        let bits = usize::from(len - offset);
        let pattern = self.take(bits.div_ceil(8), "prefix pattern")?;
        let mut full = [0u8; 16];
        for k in 0..bits {
            if pattern[k / 8] & (0x80 >> (k % 8)) != 0 {
                let t = usize::from(offset) + k;
                full[t / 8] |= 0x80 >> (t % 8);
            }
        }
        let net = match afi {
            Afi::Ipv4 => IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(full[0], full[1], full[2], full[3]), len)
                    .expect("length checked"),
            ),
            Afi::Ipv6 => {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(full), len).expect("length checked"))
            }
        };
        Ok(FlowPrefix { net, offset })
    }

    /// (and, flags, value) triples up to the end-of-list bit.
    fn ops(&mut self) -> Result<Vec<(u8, u64)>, NlriError> {
        let mut out = Vec::new();
        loop {
            let b = self.u8("operator")?;
            let n = 1usize << ((b >> 4) & 3);
            let v = self
                .take(n, "operator value")?
                .iter()
                .fold(0u64, |a, &x| (a << 8) | u64::from(x));
            out.push((b, v));
            if b & 0x80 != 0 {
                return Ok(out);
            }
        }
    }

    fn num(&mut self) -> Result<Vec<NumOp>, NlriError> {
        Ok(self
            .ops()?
            .into_iter()
            .map(|(b, value)| NumOp {
                and: b & 0x40 != 0,
                lt: b & 0x04 != 0,
                gt: b & 0x02 != 0,
                eq: b & 0x01 != 0,
                value,
            })
            .collect())
    }

    fn bits(&mut self) -> Result<Vec<BitOp>, NlriError> {
        let at = self.pos;
        self.ops()?
            .into_iter()
            .map(|(b, value)| {
                Ok(BitOp {
                    and: b & 0x40 != 0,
                    not: b & 0x02 != 0,
                    matches: b & 0x01 != 0,
                    value: u16::try_from(value).map_err(|_| {
                        NlriError::Invalid(format!(
                            "bitmask value {value:#x} at byte {at} is wider than 2 bytes"
                        ))
                    })?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowspec::{frag, ranges};
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b.trim_start_matches("0x"), 16).unwrap())
            .collect()
    }

    fn net(s: &str) -> Option<FlowPrefix> {
        Some(FlowPrefix::new(s.parse().unwrap()))
    }

    /// RFC 8955 §4.2.3, example 1: "all packets to 192.0.2.0/24 and TCP port 25".
    #[test]
    fn rfc8955_example_1() {
        let spec = FlowSpec {
            dst: net("192.0.2.0/24"),
            protocol: vec![NumOp::eq(6)],
            port: vec![NumOp::eq(25)],
            ..FlowSpec::new(Afi::Ipv4)
        };
        let want = hex("0b 01 18 c0 00 02 03 81 06 04 81 19");
        assert_eq!(encode(&spec).unwrap(), want);
        assert_eq!(decode(Afi::Ipv4, &want).unwrap(), spec);
    }

    /// Example 2: "all packets to 192.0.2.0/24 from 203.0.113.0/24 and port
    /// {range [137, 139] or 8080}".
    #[test]
    fn rfc8955_example_2() {
        let spec = FlowSpec {
            dst: net("192.0.2.0/24"),
            src: net("203.0.113.0/24"),
            port: ranges(&[(137, 139), (8080, 8080)]),
            ..FlowSpec::new(Afi::Ipv4)
        };
        let want = hex("12 01 18 c0 00 02 02 18 cb 00 71 04 03 89 45 8b 91 1f 90");
        assert_eq!(encode(&spec).unwrap(), want);
        assert_eq!(decode(Afi::Ipv4, &want).unwrap(), spec);
    }

    /// Example 3: "all packets to 192.0.2.1/32 and fragment { DF or FF }".
    #[test]
    fn rfc8955_example_3() {
        let spec = FlowSpec {
            dst: net("192.0.2.1/32"),
            fragment: vec![BitOp::any(frag::DF | frag::FF)],
            ..FlowSpec::new(Afi::Ipv4)
        };
        let want = hex("09 01 20 c0 00 02 01 0c 80 05");
        assert_eq!(encode(&spec).unwrap(), want);
        assert_eq!(decode(Afi::Ipv4, &want).unwrap(), spec);
    }

    /// RFC 8956 §3.8.1 (with erratum 7571): packets to 2001:db8::/32 from
    /// ::1234:5678:9a00:0/64-104 with upper-layer protocol TCP.
    #[test]
    fn rfc8956_example_1() {
        let spec = FlowSpec {
            dst: net("2001:db8::/32"),
            src: Some(FlowPrefix {
                net: "::1234:5678:9a00:0/104".parse().unwrap(),
                offset: 64,
            }),
            protocol: vec![NumOp::eq(6)],
            ..FlowSpec::new(Afi::Ipv6)
        };
        let want = hex("12 01 20 00 20 01 0d b8 02 68 40 12 34 56 78 9a 03 81 06");
        assert_eq!(encode(&spec).unwrap(), want);
        assert_eq!(decode(Afi::Ipv6, &want).unwrap(), spec);
    }

    /// RFC 8956 §3.8.2: the source ::1234:5678:9a00:0/65-104 (a pattern that
    /// does not start on a byte boundary).
    #[test]
    fn rfc8956_example_2_source() {
        let spec = FlowSpec {
            src: Some(FlowPrefix {
                net: "::1234:5678:9a00:0/104".parse().unwrap(),
                offset: 65,
            }),
            ..FlowSpec::new(Afi::Ipv6)
        };
        let want = hex("08 02 68 41 24 68 ac f1 34");
        assert_eq!(encode(&spec).unwrap(), want);
        assert_eq!(decode(Afi::Ipv6, &want).unwrap(), spec);
    }

    #[test]
    fn long_nlri_uses_two_length_bytes() {
        let spec = FlowSpec {
            dst: net("10.0.0.0/8"),
            dst_port: (0..100u64).map(|p| NumOp::eq(1000 + p)).collect(),
            ..FlowSpec::new(Afi::Ipv4)
        };
        let b = encode(&spec).unwrap();
        assert_eq!(b[0] & 0xf0, 0xf0);
        assert_eq!(decode(Afi::Ipv4, &b).unwrap(), spec);
    }

    #[test]
    fn malformed_input_is_named() {
        assert!(matches!(
            decode(Afi::Ipv4, &hex("05 01 18 c0")),
            Err(NlriError::Truncated { .. })
        ));
        assert!(matches!(
            decode(Afi::Ipv4, &hex("06 03 81 06 01 08 0a")),
            Err(NlriError::OutOfOrder { ty: 1, prev: 3, .. })
        ));
        assert!(matches!(
            decode(Afi::Ipv4, &hex("03 0d 81 01")),
            Err(NlriError::UnknownComponent { ty: 13, .. })
        ));
        assert!(matches!(
            decode(Afi::Ipv4, &hex("02 01 21")),
            Err(NlriError::BadPrefix { len: 33, .. })
        ));
        assert!(matches!(
            decode(Afi::Ipv4, &hex("00 00")),
            Err(NlriError::Trailing { extra: 1 })
        ));
    }

    fn arb_num() -> impl Strategy<Value = Vec<NumOp>> {
        proptest::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
                any::<u64>(),
            ),
            0..4,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (and, lt, gt, eq, value))| NumOp {
                    and: and && i > 0,
                    lt,
                    gt,
                    eq,
                    value,
                })
                .collect()
        })
    }

    fn arb_bits() -> impl Strategy<Value = Vec<BitOp>> {
        proptest::collection::vec(
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<u16>()),
            0..3,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (and, not, matches, value))| BitOp {
                    and: and && i > 0,
                    not,
                    matches,
                    value,
                })
                .collect()
        })
    }

    fn arb_prefix6() -> impl Strategy<Value = Option<FlowPrefix>> {
        proptest::option::of(
            (any::<u128>(), 0u8..=128, any::<u8>()).prop_map(|(a, len, off)| FlowPrefix {
                net: IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc()),
                offset: off % (len + 1),
            }),
        )
    }

    proptest! {
        #[test]
        fn v6_round_trip(dst in arb_prefix6(), src in arb_prefix6(), p in arb_num(), dp in arb_num(),
                         fl in arb_num(), tf in arb_bits(), fr in arb_bits(), len in arb_num()) {
            let spec = FlowSpec { dst, src, protocol: p, dst_port: dp, flow_label: fl,
                                  tcp_flags: tf, fragment: fr, length: len, ..FlowSpec::new(Afi::Ipv6) };
            // The pattern bits before the offset are not carried (RFC 8956).
            let mut want = spec.clone();
            for p in [&mut want.dst, &mut want.src].into_iter().flatten() {
                if let IpNet::V6(n) = p.net {
                    let keep = u128::MAX.checked_shr(u32::from(p.offset)).unwrap_or(0);
                    let a = u128::from(n.network()) & keep;
                    p.net = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), n.prefix_len()).unwrap());
                }
            }
            match encode(&spec) {
                Ok(b) => prop_assert_eq!(decode(Afi::Ipv6, &b).unwrap(), want),
                Err(NlriError::TooLong { .. }) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn v4_round_trip(a in any::<u32>(), l in 0u8..=32, p in arb_num(), sp in arb_num(),
                         it in arb_num(), ic in arb_num(), d in arb_num(), tf in arb_bits()) {
            let spec = FlowSpec {
                dst: Some(FlowPrefix::new(IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap()))),
                protocol: p, src_port: sp, icmp_type: it, icmp_code: ic, dscp: d, tcp_flags: tf,
                ..FlowSpec::new(Afi::Ipv4)
            };
            let b = encode(&spec).unwrap();
            prop_assert_eq!(decode(Afi::Ipv4, &b).unwrap(), spec);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), v6 in any::<bool>()) {
            let afi = if v6 { Afi::Ipv6 } else { Afi::Ipv4 };
            let _ = decode(afi, &data);
        }
    }
}
