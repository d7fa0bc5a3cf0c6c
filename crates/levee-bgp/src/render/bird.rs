//! BIRD 2 static routes: `route flow4 { dst ...; proto = 6; ... } { attrs };`
//! for FlowSpec (BIRD's flowspec syntax: numeric terms joined by `&&` and
//! `||`, bitmasks as `value/mask` meaning `(data & mask) == value`) and
//! `route P blackhole { bgp_community.add(...); };` for RTBH. Actions are
//! the RFC 8955 extended communities as BIRD `generic` pairs.

use super::{Format, RenderError};
use crate::flowspec::{Afi, BitOp, NumOp};
use crate::rule::Rule;

fn err(what: impl Into<String>) -> RenderError {
    RenderError {
        format: Format::Bird,
        what: what.into(),
    }
}

fn num(ops: &[NumOp]) -> Result<String, RenderError> {
    let mut s = String::new();
    for (i, o) in ops.iter().enumerate() {
        let sym = match o.symbol() {
            t @ ("true" | "false") => return Err(err(format!("the `{t}` operator"))),
            "==" => "=",
            t => t,
        };
        if i > 0 {
            s.push_str(if o.and { " && " } else { " || " });
        }
        s.push_str(&format!("{sym} {}", o.value));
    }
    Ok(s)
}

fn tcp(ops: &[BitOp]) -> Result<String, RenderError> {
    let mut s = String::new();
    for (i, o) in ops.iter().enumerate() {
        if i > 0 {
            s.push_str(if o.and { " && " } else { " || " });
        }
        let v = o.value;
        s.push_str(&match (o.not, o.matches) {
            (false, true) => format!("{v:#04x}/{v:#04x}"),
            (true, false) => format!("0x00/{v:#04x}"),
            (true, true) => format!("!{v:#04x}/{v:#04x}"),
            (false, false) if v.count_ones() <= 1 => format!("{v:#04x}/{v:#04x}"),
            (false, false) => format!("!0x00/{v:#04x}"),
        });
    }
    Ok(s)
}

const FRAG: [(u16, &str); 4] = [
    (0x01, "dont_fragment"),
    (0x02, "is_fragment"),
    (0x04, "first_fragment"),
    (0x08, "last_fragment"),
];

fn frag(ops: &[BitOp]) -> Result<String, RenderError> {
    let mut s = String::new();
    for (i, o) in ops.iter().enumerate() {
        let names: Vec<&str> = FRAG
            .iter()
            .filter(|(b, _)| o.value & b != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() || o.value & !0x0f != 0 {
            return Err(err(format!("fragment bits {:#x}", o.value)));
        }
        if i > 0 {
            s.push_str(if o.and { " && " } else { " || " });
        }
        let t = match (o.not, o.matches, names.len()) {
            (false, _, 1) => names[0].to_string(),
            (true, false, _) | (true, true, 1) => names
                .iter()
                .map(|n| format!("!{n}"))
                .collect::<Vec<_>>()
                .join(" && "),
            (false, true, _) => names.join(" && "),
            _ => return Err(err(format!("fragment operator {o:?} inside a list"))),
        };
        s.push_str(&t);
    }
    Ok(s)
}

/// The body of a flow4/flow6 route (`{ dst ...; ... }`).
pub fn flow_body(spec: &crate::flowspec::FlowSpec) -> Result<String, RenderError> {
    let v6 = spec.afi == Afi::Ipv6;
    let mut m: Vec<String> = Vec::new();
    for (k, p) in [("dst", &spec.dst), ("src", &spec.src)] {
        if let Some(p) = p {
            if v6 && p.offset > 0 {
                m.push(format!("{k} {} offset {};", p.net, p.offset));
            } else {
                m.push(format!("{k} {};", p.net));
            }
        }
    }
    let proto = if v6 { "next header" } else { "proto" };
    for (k, ops) in [
        (proto, &spec.protocol),
        ("port", &spec.port),
        ("dport", &spec.dst_port),
        ("sport", &spec.src_port),
        ("icmp type", &spec.icmp_type),
        ("icmp code", &spec.icmp_code),
        ("length", &spec.length),
        ("dscp", &spec.dscp),
        ("label", &spec.flow_label),
    ] {
        if !ops.is_empty() {
            m.push(format!("{k} {};", num(ops)?));
        }
    }
    if !spec.tcp_flags.is_empty() {
        m.push(format!("tcp flags {};", tcp(&spec.tcp_flags)?));
    }
    if !spec.fragment.is_empty() {
        m.push(format!("fragment {};", frag(&spec.fragment)?));
    }
    if m.is_empty() {
        return Err(err("a FlowSpec rule without components"));
    }
    Ok(format!("{{ {} }}", m.join(" ")))
}

/// The static route for `rule` (one line).
pub fn route(rule: &Rule) -> Result<String, RenderError> {
    match rule {
        Rule::Flow(f) => {
            let fam = if f.spec.afi == Afi::Ipv6 {
                "flow6"
            } else {
                "flow4"
            };
            let attrs: Vec<String> = f
                .actions
                .iter()
                .map(|a| {
                    let c = a.ext_community();
                    let hi = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                    let lo = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
                    format!("bgp_ext_community.add((generic, {hi:#010x}, {lo:#010x}));")
                })
                .collect();
            Ok(format!(
                "route {fam} {} {{ {} }};",
                flow_body(&f.spec)?,
                attrs.join(" ")
            ))
        }
        Rule::Rtbh(r) => {
            let mut attrs: Vec<String> = r
                .communities
                .iter()
                .map(|c| format!("bgp_community.add(({},{}));", c.0, c.1))
                .collect();
            attrs.push(format!("bgp_next_hop = {};", r.next_hop));
            Ok(format!(
                "route {} blackhole {{ {} }};",
                r.prefix,
                attrs.join(" ")
            ))
        }
        Rule::Divert(d) => Err(err(format!(
            "a scrubbing diversion of {} (that goes to the scrubbing provider)",
            d.prefix
        ))),
    }
}
