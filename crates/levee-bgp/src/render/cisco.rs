//! Cisco IOS-XR FlowSpec configuration: a `class-map type traffic`, a
//! `policy-map type pbr` with the action, and the policy attached under
//! `flowspec address-family`. RTBH is a static route with a tag for the
//! operator's export policy to mark with the BLACKHOLE community.

use super::{bit_groups, Format, Op, RenderError};
use crate::action::Action;
use crate::flowspec::{as_ranges, frag, Afi, BitOp, NumOp};
use crate::rule::Rule;
use ipnet::IpNet;

fn err(what: impl Into<String>) -> RenderError {
    RenderError {
        format: Format::Cisco,
        what: what.into(),
    }
}

fn values(ops: &[NumOp], max: u64, what: &str) -> Result<String, RenderError> {
    let rs = as_ranges(ops, max).ok_or_else(|| err(format!("the `!=` operator in {what}")))?;
    Ok(rs
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(" "))
}

fn addr(net: &IpNet) -> String {
    match net {
        IpNet::V4(n) => format!("ipv4 {} {}", n.network(), n.netmask()),
        IpNet::V6(n) => format!("ipv6 {n}"),
    }
}

fn tcp(ops: &[BitOp]) -> Result<String, RenderError> {
    let g = bit_groups(ops);
    if g.len() != 1 {
        return Err(err(
            "TCP flags that are an OR of several flag sets (one class matches one)",
        ));
    }
    let (mut value, mut mask) = (0u16, 0u16);
    for o in &g[0] {
        match (o.not, o.matches) {
            (false, true) => {
                value |= o.value;
                mask |= o.value;
            }
            (true, false) => mask |= o.value,
            (false, false) if o.value.count_ones() == 1 => {
                value |= o.value;
                mask |= o.value;
            }
            _ => return Err(err(format!("the TCP flag operator {o:?}"))),
        }
    }
    Ok(format!("{value:#04x} bit-mask {mask:#04x}"))
}

/// The configuration (announce) or its removal (withdraw).
pub fn config(rule: &Rule, op: Op, name: &str) -> Result<String, RenderError> {
    match rule {
        Rule::Flow(f) => {
            let s = &f.spec;
            let af = if s.afi == Afi::Ipv6 { "ipv6" } else { "ipv4" };
            if op == Op::Withdraw {
                return Ok(format!(
                    "flowspec\n address-family {af}\n  no service-policy type pbr {name}\n!\nno policy-map type pbr {name}\nno class-map type traffic match-all {name}"
                ));
            }
            let mut c = vec![format!("class-map type traffic match-all {name}")];
            for (k, p) in [("destination-address", &s.dst), ("source-address", &s.src)] {
                if let Some(p) = p {
                    if p.offset > 0 {
                        return Err(err("an IPv6 prefix offset"));
                    }
                    c.push(format!(" match {k} {}", addr(&p.net)));
                }
            }
            if !s.protocol.is_empty() {
                c.push(format!(
                    " match protocol {}",
                    values(&s.protocol, 255, "protocol")?
                ));
            }
            for (k, ops, max) in [
                ("destination-port", &s.dst_port, 65535),
                ("source-port", &s.src_port, 65535),
            ] {
                if !ops.is_empty() {
                    c.push(format!(" match {k} {}", values(ops, max, k)?));
                }
            }
            if !s.port.is_empty() {
                return Err(err("a source-or-destination port match"));
            }
            for (k, ops) in [("icmp-type", &s.icmp_type), ("icmp-code", &s.icmp_code)] {
                if !ops.is_empty() {
                    c.push(format!(" match {af} {k} {}", values(ops, 255, k)?));
                }
            }
            if !s.tcp_flags.is_empty() {
                c.push(format!(" match tcp-flag {}", tcp(&s.tcp_flags)?));
            }
            if !s.length.is_empty() {
                c.push(format!(
                    " match packet length {}",
                    values(&s.length, 65535, "length")?
                ));
            }
            if !s.dscp.is_empty() {
                c.push(format!(" match dscp {}", values(&s.dscp, 63, "dscp")?));
            }
            match s.fragment.as_slice() {
                [] => {}
                // IOS-XR has no "not a fragment"; a transport match already
                // never sees later fragments, so the rule stays as narrow.
                [o] if *o == BitOp::none(frag::IS_F) => {
                    c.push(" ! not-a-fragment: not expressible on IOS-XR, left out".into())
                }
                [o] if !o.not && o.value.count_ones() == 1 => {
                    let n = match o.value {
                        frag::DF => "dont-fragment",
                        frag::IS_F => "is-fragment",
                        frag::FF => "first-fragment",
                        _ => "last-fragment",
                    };
                    c.push(format!(" match fragment-type {n}"));
                }
                other => return Err(err(format!("the fragment condition {other:?}"))),
            }
            if !s.flow_label.is_empty() {
                return Err(err("a flow-label match"));
            }
            c.push(" end-class-map".into());
            c.push("!".into());
            c.push(format!("policy-map type pbr {name}"));
            c.push(format!(" class type traffic {name}"));
            for a in &f.actions {
                c.push(match a {
                    Action::Discard => "  drop".to_string(),
                    Action::RateLimit(r) => format!("  police rate {} bps", r * 8),
                    Action::Redirect(rt) => format!("  redirect nexthop route-target {rt}"),
                    Action::Mark(d) => format!("  set dscp {d}"),
                });
            }
            c.push(" !".into());
            c.push(" class type traffic class-default".into());
            c.push(" !".into());
            c.push(" end-policy-map".into());
            c.push("!".into());
            c.push("flowspec".into());
            c.push(format!(" address-family {af}"));
            c.push(format!("  service-policy type pbr {name}"));
            Ok(c.join("\n"))
        }
        Rule::Rtbh(r) => {
            let af = if r.prefix.addr().is_ipv6() {
                "ipv6"
            } else {
                "ipv4"
            };
            let no = if op == Op::Withdraw { "no " } else { "" };
            let comms: Vec<String> = r.communities.iter().map(ToString::to_string).collect();
            Ok(format!(
                "router static\n address-family {af} unicast\n  {no}{} Null0 tag 666\n! export with community {} and next-hop {}",
                r.prefix,
                comms.join(" "),
                r.next_hop
            ))
        }
        Rule::Divert(d) => Err(err(format!(
            "a scrubbing diversion of {} (that goes to the scrubbing provider)",
            d.prefix
        ))),
    }
}
