//! Junos `set routing-options flow route NAME ...` commands (IPv6 under
//! `rib inet6.0`). Junos takes port/length/type values as numbers and
//! ranges, TCP flags as a bit-field expression (`"(syn & !ack) | rst"`),
//! and rate-limit in bits per second.

use super::{bit_groups, tcp_names, Format, Op, RenderError};
use crate::action::Action;
use crate::flowspec::{as_ranges, frag, Afi, BitOp, NumOp};
use crate::rule::Rule;

fn err(what: impl Into<String>) -> RenderError {
    RenderError {
        format: Format::Junos,
        what: what.into(),
    }
}

fn values(ops: &[NumOp], max: u64, what: &str) -> Result<String, RenderError> {
    let rs = as_ranges(ops, max).ok_or_else(|| err(format!("the `!=` operator in {what}")))?;
    let v: Vec<String> = rs
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    Ok(if v.len() == 1 {
        v[0].clone()
    } else {
        format!("[ {} ]", v.join(" "))
    })
}

fn tcp_expr(ops: &[BitOp]) -> Result<String, RenderError> {
    let mut groups = Vec::new();
    for g in bit_groups(ops) {
        let mut terms = Vec::new();
        for o in g {
            let names =
                tcp_names(o.value).ok_or_else(|| err(format!("TCP flag bits {:#x}", o.value)))?;
            match (o.not, o.matches) {
                (false, true) => terms.extend(names.iter().map(|n| n.to_string())),
                (true, false) => terms.extend(names.iter().map(|n| format!("!{n}"))),
                (false, false) => terms.push(format!("({})", names.join(" | "))),
                (true, true) => terms.push(format!("!({})", names.join(" & "))),
            }
        }
        groups.push(format!("({})", terms.join(" & ")));
    }
    Ok(format!("\"{}\"", groups.join(" | ")))
}

fn fragment(ops: &[BitOp]) -> Result<&'static str, RenderError> {
    match ops {
        [o] if *o == BitOp::none(frag::IS_F) => Ok("not-a-fragment"),
        [o] if o.value == frag::IS_F && !o.not => Ok("is-fragment"),
        [o] if o.value == frag::FF && !o.not => Ok("first-fragment"),
        [o] if o.value == frag::LF && !o.not => Ok("last-fragment"),
        [o] if o.value == frag::DF && !o.not => Ok("dont-fragment"),
        _ => Err(err(format!("the fragment condition {ops:?}"))),
    }
}

/// `set` (announce) or `delete` (withdraw) commands, one per line.
pub fn commands(rule: &Rule, op: Op, name: &str) -> Result<String, RenderError> {
    let rib = match rule {
        Rule::Flow(f) if f.spec.afi == Afi::Ipv6 => "routing-options rib inet6.0 flow route",
        Rule::Flow(_) => "routing-options flow route",
        Rule::Rtbh(r) if r.prefix.addr().is_ipv6() => "routing-options rib inet6.0 static route",
        Rule::Rtbh(_) => "routing-options static route",
        Rule::Divert(d) => {
            return Err(err(format!(
                "a scrubbing diversion of {} (that goes to the scrubbing provider)",
                d.prefix
            )))
        }
    };
    match rule {
        Rule::Flow(f) => {
            let base = format!("{rib} {name}");
            if op == Op::Withdraw {
                return Ok(format!("delete {base}"));
            }
            let s = &f.spec;
            let mut lines = Vec::new();
            let mut m = |k: &str, v: String| lines.push(format!("set {base} match {k} {v}"));
            for (k, p) in [("destination", &s.dst), ("source", &s.src)] {
                if let Some(p) = p {
                    if p.offset > 0 {
                        return Err(err("an IPv6 prefix offset"));
                    }
                    m(k, p.net.to_string());
                }
            }
            if !s.protocol.is_empty() {
                m("protocol", values(&s.protocol, 255, "protocol")?);
            }
            for (k, ops, max) in [
                ("port", &s.port, 65535),
                ("destination-port", &s.dst_port, 65535),
                ("source-port", &s.src_port, 65535),
                ("icmp-type", &s.icmp_type, 255),
                ("icmp-code", &s.icmp_code, 255),
                ("packet-length", &s.length, 65535),
                ("dscp", &s.dscp, 63),
            ] {
                if !ops.is_empty() {
                    m(k, values(ops, max, k)?);
                }
            }
            if !s.tcp_flags.is_empty() {
                m("tcp-flags", tcp_expr(&s.tcp_flags)?);
            }
            if !s.fragment.is_empty() {
                m("fragment", fragment(&s.fragment)?.to_string());
            }
            if !s.flow_label.is_empty() {
                return Err(err("a flow-label match"));
            }
            for a in &f.actions {
                lines.push(format!(
                    "set {base} then {}",
                    match a {
                        Action::Discard => "discard".to_string(),
                        Action::RateLimit(r) => format!("rate-limit {}", r * 8),
                        Action::Redirect(rt) => format!("routing-instance target:{rt}"),
                        Action::Mark(d) => format!("mark {d}"),
                    }
                ));
            }
            Ok(lines.join("\n"))
        }
        Rule::Rtbh(r) => {
            let base = format!("{rib} {}", r.prefix);
            if op == Op::Withdraw {
                return Ok(format!("delete {base}"));
            }
            let mut lines = vec![format!("set {base} next-hop {}", r.next_hop)];
            for c in &r.communities {
                lines.push(format!("set {base} community {c}"));
            }
            Ok(lines.join("\n"))
        }
        Rule::Divert(_) => unreachable!("handled above"),
    }
}
