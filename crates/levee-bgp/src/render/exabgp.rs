//! ExaBGP 4.2 API commands (what a process writes to ExaBGP's stdin):
//! `announce flow route { match { ... } then { ... } }` and
//! `announce route PREFIX next-hop IP community [...]`. Operators follow
//! ExaBGP's flow parser: `=80`, `>=1024&<=2048`, OR terms in `[ ]`;
//! bitmasks `=syn` (all), `!fin+rst` (none), `!=` (not all).

use super::{protocol_name, tcp_names, Format, Op, RenderError, FRAG_NAMES};
use crate::action::Action;
use crate::flowspec::{Afi, BitOp, FlowPrefix, NumOp};
use crate::rule::Rule;

fn err(what: impl Into<String>) -> RenderError {
    RenderError {
        format: Format::Exabgp,
        what: what.into(),
    }
}

fn num(ops: &[NumOp], name: impl Fn(u64) -> Option<&'static str>) -> Result<String, RenderError> {
    let mut terms: Vec<String> = Vec::new();
    for o in ops {
        let sym = match o.symbol() {
            "==" => "=",
            s @ ("true" | "false") => return Err(err(format!("the `{s}` operator"))),
            s => s,
        };
        let v = name(o.value).map_or(o.value.to_string(), str::to_string);
        let t = format!("{sym}{v}");
        match terms.last_mut() {
            Some(last) if o.and => {
                last.push('&');
                last.push_str(&t);
            }
            _ => terms.push(t),
        }
    }
    Ok(format!("[ {} ]", terms.join(" ")))
}

fn bits(
    ops: &[BitOp],
    names: impl Fn(u16) -> Option<Vec<&'static str>>,
    what: &str,
) -> Result<String, RenderError> {
    let mut terms: Vec<String> = Vec::new();
    for o in ops {
        let n = names(o.value).ok_or_else(|| err(format!("{what} bits {:#x}", o.value)))?;
        let pre = match (o.not, o.matches) {
            (false, true) => "=",
            (true, false) => "!",
            (true, true) => "!=",
            (false, false) => "",
        };
        let t = format!("{pre}{}", n.join("+"));
        match terms.last_mut() {
            Some(last) if o.and => {
                last.push('&');
                last.push_str(&t);
            }
            _ => terms.push(t),
        }
    }
    Ok(format!("[ {} ]", terms.join(" ")))
}

fn frag_names(v: u16) -> Option<Vec<&'static str>> {
    if v == 0 {
        return Some(vec!["not-a-fragment"]);
    }
    super::bit_names(v, &FRAG_NAMES)
}

fn prefix(p: &FlowPrefix, afi: Afi) -> String {
    match afi {
        Afi::Ipv4 => p.net.to_string(),
        Afi::Ipv6 => format!("{}/{}", p.net, p.offset),
    }
}

/// The ExaBGP API command for `rule`.
pub fn command(rule: &Rule, op: Op) -> Result<String, RenderError> {
    let verb = match op {
        Op::Announce => "announce",
        Op::Withdraw => "withdraw",
    };
    match rule {
        Rule::Flow(f) => {
            let s = &f.spec;
            let v6 = s.afi == Afi::Ipv6;
            let mut m: Vec<String> = Vec::new();
            if let Some(p) = &s.dst {
                m.push(format!("destination {};", prefix(p, s.afi)));
            }
            if let Some(p) = &s.src {
                m.push(format!("source {};", prefix(p, s.afi)));
            }
            let none = |_| None;
            let proto = if v6 { "next-header" } else { "protocol" };
            let dscp = if v6 { "traffic-class" } else { "dscp" };
            for (k, ops, named) in [
                (proto, &s.protocol, true),
                ("port", &s.port, false),
                ("destination-port", &s.dst_port, false),
                ("source-port", &s.src_port, false),
                ("icmp-type", &s.icmp_type, false),
                ("icmp-code", &s.icmp_code, false),
            ] {
                if !ops.is_empty() {
                    let t = if named {
                        num(ops, protocol_name)?
                    } else {
                        num(ops, none)?
                    };
                    m.push(format!("{k} {t};"));
                }
            }
            if !s.tcp_flags.is_empty() {
                m.push(format!(
                    "tcp-flags {};",
                    bits(&s.tcp_flags, tcp_names, "TCP flag")?
                ));
            }
            if !s.length.is_empty() {
                m.push(format!("packet-length {};", num(&s.length, none)?));
            }
            if !s.dscp.is_empty() {
                m.push(format!("{dscp} {};", num(&s.dscp, none)?));
            }
            if !s.fragment.is_empty() {
                m.push(format!(
                    "fragment {};",
                    bits(&s.fragment, frag_names, "fragment")?
                ));
            }
            if !s.flow_label.is_empty() {
                m.push(format!("flow-label {};", num(&s.flow_label, none)?));
            }
            if m.is_empty() {
                return Err(err("a FlowSpec rule without components"));
            }
            let mut out = format!("{verb} flow route {{ match {{ {} }}", m.join(" "));
            if op == Op::Announce {
                let mut t: Vec<String> = Vec::new();
                for a in &f.actions {
                    t.push(match a {
                        Action::Discard => "discard;".into(),
                        Action::RateLimit(r) => format!("rate-limit {r};"),
                        Action::Redirect(rt) => format!("redirect {rt};"),
                        Action::Mark(d) => format!("mark {d};"),
                    });
                }
                if t.is_empty() {
                    t.push("accept;".into());
                }
                out.push_str(&format!(" then {{ {} }}", t.join(" ")));
            }
            out.push_str(" }");
            Ok(out)
        }
        Rule::Rtbh(r) => {
            let mut out = format!("{verb} route {} next-hop {}", r.prefix, r.next_hop);
            if op == Op::Announce && !r.communities.is_empty() {
                let c: Vec<String> = r.communities.iter().map(ToString::to_string).collect();
                out.push_str(&format!(" community [ {} ]", c.join(" ")));
            }
            Ok(out)
        }
        Rule::Divert(d) => Err(err(format!(
            "a scrubbing diversion of {} (that goes to the scrubbing provider)",
            d.prefix
        ))),
    }
}
