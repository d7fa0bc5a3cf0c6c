//! The FlowSpec match model: every component of RFC 8955 (IPv4) and
//! RFC 8956 (IPv6) with its operator lists exactly as they go on the wire,
//! so any rule a router can carry can be held here, plus helpers that build
//! the common forms (one value, inclusive ranges, exact TCP flag bytes).
//!
//! [`nlri`] turns a [`FlowSpec`] into NLRI bytes and back.

pub mod nlri;
pub mod text;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Address family of a rule (AFI 1 / AFI 2, SAFI 133).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    pub fn of(net: &IpNet) -> Afi {
        match net {
            IpNet::V4(_) => Afi::Ipv4,
            IpNet::V6(_) => Afi::Ipv6,
        }
    }
    pub fn max_len(self) -> u8 {
        match self {
            Afi::Ipv4 => 32,
            Afi::Ipv6 => 128,
        }
    }
}

/// One numeric operator (RFC 8955 §4.2.1.1): `and` joins it to the previous
/// operator (else OR); `lt`/`gt`/`eq` compare the packet's value with `value`
/// (all clear = true, all set = false, `lt|gt` = not equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NumOp {
    pub and: bool,
    pub lt: bool,
    pub gt: bool,
    pub eq: bool,
    pub value: u64,
}

impl NumOp {
    pub const fn eq(value: u64) -> NumOp {
        NumOp {
            and: false,
            lt: false,
            gt: false,
            eq: true,
            value,
        }
    }
    pub const fn ge(value: u64) -> NumOp {
        NumOp {
            and: false,
            lt: false,
            gt: true,
            eq: true,
            value,
        }
    }
    pub const fn le(value: u64) -> NumOp {
        NumOp {
            and: false,
            lt: true,
            gt: false,
            eq: true,
            value,
        }
    }
    pub const fn and(mut self) -> NumOp {
        self.and = true;
        self
    }

    /// Whether the operator holds for `x`.
    pub fn test(&self, x: u64) -> bool {
        match (self.lt, self.gt, self.eq) {
            (false, false, false) => true,
            (true, true, true) => false,
            (lt, gt, eq) => {
                (lt && x < self.value) || (gt && x > self.value) || (eq && x == self.value)
            }
        }
    }

    /// The comparison as text: `==`, `>`, `>=`, `<`, `<=`, `!=`, `true`, `false`.
    pub fn symbol(&self) -> &'static str {
        match (self.lt, self.gt, self.eq) {
            (false, false, false) => "true",
            (false, false, true) => "==",
            (false, true, false) => ">",
            (false, true, true) => ">=",
            (true, false, false) => "<",
            (true, false, true) => "<=",
            (true, true, false) => "!=",
            (true, true, true) => "false",
        }
    }
}

/// One bitmask operator (RFC 8955 §4.2.1.2): with `matches` the packet's
/// bits must include all of `value`, without it any of them; `not` negates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BitOp {
    pub and: bool,
    pub not: bool,
    pub matches: bool,
    pub value: u16,
}

impl BitOp {
    /// All bits of `value` set.
    pub const fn all(value: u16) -> BitOp {
        BitOp {
            and: false,
            not: false,
            matches: true,
            value,
        }
    }
    /// Any bit of `value` set.
    pub const fn any(value: u16) -> BitOp {
        BitOp {
            and: false,
            not: false,
            matches: false,
            value,
        }
    }
    /// None of the bits of `value` set.
    pub const fn none(value: u16) -> BitOp {
        BitOp {
            and: false,
            not: true,
            matches: false,
            value,
        }
    }
    pub const fn and(mut self) -> BitOp {
        self.and = true;
        self
    }
    pub fn test(&self, x: u16) -> bool {
        let hit = if self.matches {
            x & self.value == self.value
        } else {
            x & self.value != 0
        };
        hit != self.not
    }
}

/// Evaluates an operator list: AND binds tighter than OR (§4.2.1).
pub fn eval<T: Copy>(ops: &[T], and: impl Fn(&T) -> bool, test: impl Fn(&T) -> bool) -> bool {
    if ops.is_empty() {
        return true;
    }
    let mut any = false;
    let mut group = true;
    for (i, op) in ops.iter().enumerate() {
        if i > 0 && !and(op) {
            any |= group;
            group = true;
        }
        group &= test(op);
    }
    any || group
}

/// Fragment bitmask bits (RFC 8955 §4.2.2.12).
pub mod frag {
    /// Don't Fragment.
    pub const DF: u16 = 0x01;
    /// Is a Fragment.
    pub const IS_F: u16 = 0x02;
    /// First Fragment.
    pub const FF: u16 = 0x04;
    /// Last Fragment.
    pub const LF: u16 = 0x08;
}

/// A prefix component. `offset` is RFC 8956's pattern offset (IPv6 only;
/// 0 for IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowPrefix {
    pub net: IpNet,
    #[serde(default)]
    pub offset: u8,
}

impl FlowPrefix {
    pub fn new(net: IpNet) -> FlowPrefix {
        FlowPrefix {
            net: net.trunc(),
            offset: 0,
        }
    }
}

impl fmt::Display for FlowPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        if self.offset > 0 {
            write!(f, "/{}", self.offset)?;
        }
        Ok(())
    }
}

/// One FlowSpec NLRI: the conjunction of the components present. Empty
/// operator lists mean the component is absent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowSpec {
    pub afi: Afi,
    /// Type 1.
    pub dst: Option<FlowPrefix>,
    /// Type 2.
    pub src: Option<FlowPrefix>,
    /// Type 3: IP protocol (IPv4) / upper-layer protocol (IPv6).
    pub protocol: Vec<NumOp>,
    /// Type 4: source or destination port.
    pub port: Vec<NumOp>,
    /// Type 5.
    pub dst_port: Vec<NumOp>,
    /// Type 6.
    pub src_port: Vec<NumOp>,
    /// Type 7.
    pub icmp_type: Vec<NumOp>,
    /// Type 8.
    pub icmp_code: Vec<NumOp>,
    /// Type 9.
    pub tcp_flags: Vec<BitOp>,
    /// Type 10: IP total length (IPv4) / payload length + 40 is *not*
    /// implied: RFC 8956 matches the packet length without the IP header
    /// for IPv6; builders adjust.
    pub length: Vec<NumOp>,
    /// Type 11: DSCP (6 bits).
    pub dscp: Vec<NumOp>,
    /// Type 12.
    pub fragment: Vec<BitOp>,
    /// Type 13 (IPv6 only): flow label.
    pub flow_label: Vec<NumOp>,
}

impl FlowSpec {
    /// A rule matching everything of `afi` (add components to narrow it).
    pub fn new(afi: Afi) -> FlowSpec {
        FlowSpec {
            afi,
            dst: None,
            src: None,
            protocol: Vec::new(),
            port: Vec::new(),
            dst_port: Vec::new(),
            src_port: Vec::new(),
            icmp_type: Vec::new(),
            icmp_code: Vec::new(),
            tcp_flags: Vec::new(),
            length: Vec::new(),
            dscp: Vec::new(),
            fragment: Vec::new(),
            flow_label: Vec::new(),
        }
    }

    /// Everything to `dst`.
    pub fn to(dst: IpNet) -> FlowSpec {
        FlowSpec {
            dst: Some(FlowPrefix::new(dst)),
            ..FlowSpec::new(Afi::of(&dst))
        }
    }

    /// The numeric components with their type codes, in wire order.
    pub fn numeric(&self) -> [(u8, &Vec<NumOp>); 9] {
        [
            (3, &self.protocol),
            (4, &self.port),
            (5, &self.dst_port),
            (6, &self.src_port),
            (7, &self.icmp_type),
            (8, &self.icmp_code),
            (10, &self.length),
            (11, &self.dscp),
            (13, &self.flow_label),
        ]
    }

    /// Problems that make the rule unencodable or meaningless, named by
    /// component: a prefix of the other family, an offset on IPv4 or past
    /// the prefix length, a flow label on IPv4, a first operator with the
    /// AND bit.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, p) in [("destination", &self.dst), ("source", &self.src)] {
            if let Some(p) = p {
                if Afi::of(&p.net) != self.afi {
                    problems.push(format!("{name} {} is not {:?}", p.net, self.afi));
                }
                if p.offset > 0 && (self.afi == Afi::Ipv4 || p.offset > p.net.prefix_len()) {
                    problems.push(format!(
                        "{name} offset {} (only IPv6, and at most the prefix length)",
                        p.offset
                    ));
                }
            }
        }
        if self.afi == Afi::Ipv4 && !self.flow_label.is_empty() {
            problems.push("flow-label is an IPv6 component".into());
        }
        for (t, ops) in self.numeric() {
            if ops.first().is_some_and(|o| o.and) {
                problems.push(format!("component {t}: the first operator cannot be AND"));
            }
        }
        for (t, ops) in [(9, &self.tcp_flags), (12, &self.fragment)] {
            if ops.first().is_some_and(|o| o.and) {
                problems.push(format!("component {t}: the first operator cannot be AND"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Operators matching any value in the inclusive ranges (one `==` for a
/// single value, `>=lo & <=hi` for a range), ORed together.
pub fn ranges(rs: &[(u64, u64)]) -> Vec<NumOp> {
    let mut out = Vec::new();
    for &(lo, hi) in rs {
        if lo == hi {
            out.push(NumOp::eq(lo));
        } else {
            out.push(NumOp::ge(lo));
            out.push(NumOp::le(hi).and());
        }
    }
    out
}

/// The inclusive ranges an operator list matches within `0..=max`, when it
/// can be said as ranges (every AND group an interval); `None` when it
/// cannot (e.g. `!=`). Used by syntaxes that only know ranges.
pub fn as_ranges(ops: &[NumOp], max: u64) -> Option<Vec<(u64, u64)>> {
    if ops.is_empty() {
        return Some(vec![(0, max)]);
    }
    let mut out = Vec::new();
    let mut cur: Option<(u64, u64)> = None;
    let flush = |cur: &mut Option<(u64, u64)>, out: &mut Vec<(u64, u64)>| {
        if let Some((lo, hi)) = cur.take() {
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    };
    for (i, op) in ops.iter().enumerate() {
        if i > 0 && !op.and {
            flush(&mut cur, &mut out);
        }
        let (lo, hi) = match (op.lt, op.gt, op.eq) {
            (false, false, false) => (0, max),
            (false, false, true) => (op.value, op.value),
            (false, true, false) => (op.value.saturating_add(1), max),
            (false, true, true) => (op.value, max),
            (true, false, false) if op.value == 0 => (1, 0),
            (true, false, false) => (0, op.value - 1),
            (true, false, true) => (0, op.value),
            (true, true, true) => (1, 0),
            (true, true, false) => return None,
        };
        let (a, b) = cur.unwrap_or((0, max));
        cur = Some((a.max(lo), b.min(hi.min(max))));
    }
    flush(&mut cur, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_round_trip() {
        let ops = ranges(&[(137, 139), (8080, 8080)]);
        assert_eq!(ops.len(), 3);
        assert_eq!(as_ranges(&ops, 65535), Some(vec![(137, 139), (8080, 8080)]));
        assert!(eval(&ops, |o| o.and, |o| o.test(138)));
        assert!(!eval(&ops, |o| o.and, |o| o.test(140)));
        let ne = [NumOp {
            lt: true,
            gt: true,
            eq: false,
            and: false,
            value: 3,
        }];
        assert_eq!(as_ranges(&ne, 255), None);
        assert_eq!(
            as_ranges(
                &[NumOp {
                    gt: true,
                    eq: false,
                    ..NumOp::ge(1024)
                }],
                65535
            ),
            Some(vec![(1025, 65535)])
        );
    }

    #[test]
    fn bitops() {
        assert!(BitOp::all(0x12).test(0x12));
        assert!(!BitOp::all(0x12).test(0x02));
        assert!(BitOp::any(0x12).test(0x02));
        assert!(BitOp::none(0x02).test(0x10));
        assert!(!BitOp::none(0x02).test(0x12));
    }

    #[test]
    fn validation_names_the_component() {
        let mut f = FlowSpec::to("10.0.0.1/32".parse().unwrap());
        assert!(f.validate().is_ok());
        f.flow_label = vec![NumOp::eq(1)];
        f.dst_port = vec![NumOp::eq(1).and()];
        let e = f.validate().unwrap_err();
        assert!(e.contains("flow-label") && e.contains("component 5"), "{e}");
    }

    proptest! {
        #[test]
        fn ranges_match_exactly(rs in proptest::collection::vec((0u64..2000, 0u64..50), 1..4), x in 0u64..2100) {
            let rs: Vec<(u64, u64)> = rs.into_iter().map(|(a, w)| (a, a + w)).collect();
            let ops = ranges(&rs);
            let want = rs.iter().any(|&(lo, hi)| lo <= x && x <= hi);
            prop_assert_eq!(eval(&ops, |o| o.and, |o| o.test(x)), want);
            let back = as_ranges(&ops, 65535).unwrap();
            prop_assert_eq!(back.iter().any(|&(lo, hi)| lo <= x && x <= hi), want);
        }
    }
}
