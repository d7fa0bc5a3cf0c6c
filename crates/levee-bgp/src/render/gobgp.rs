//! GoBGP's CLI (`gobgp global rib -a ipv4-flowspec add match ... then ...`,
//! docs/sources/flowspec.md of GoBGP 3.x): numeric operators `==`, `>`, `>=`,
//! `<`, `<=`, `!=` with `&` for AND, bitmask operators `=` (all), `!`
//! (none), `!=` (not all) before TCP flag letters or fragment names joined
//! with `+`. One argument per component, its operators separated by spaces.

use super::{protocol_name, Format, Op, RenderError, FRAG_NAMES, TCP_LETTERS};
use crate::action::Action;
use crate::flowspec::{Afi, BitOp, FlowPrefix, NumOp};
use crate::rule::Rule;
use levee_mitigate::runner::shell_quote;

fn num(ops: &[NumOp], name: impl Fn(u64) -> Option<&'static str>) -> String {
    ops.iter()
        .map(|o| {
            let amp = if o.and { "&" } else { "" };
            match o.symbol() {
                s @ ("true" | "false") => format!("{amp}{s}"),
                s => {
                    let v = name(o.value).map_or(o.value.to_string(), str::to_string);
                    format!("{amp}{s}{v}")
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn bit_prefix(o: &BitOp) -> &'static str {
    match (o.not, o.matches) {
        (false, true) => "=",
        (true, false) => "!",
        (true, true) => "!=",
        (false, false) => "",
    }
}

fn tcp_flags(ops: &[BitOp]) -> String {
    ops.iter()
        .map(|o| {
            let letters: String = TCP_LETTERS
                .iter()
                .filter(|(b, _, _)| o.value & b != 0)
                .map(|(_, c, _)| *c)
                .collect();
            format!(
                "{}{}{}",
                if o.and { "&" } else { "" },
                bit_prefix(o),
                letters
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fragments(ops: &[BitOp]) -> Result<String, RenderError> {
    let mut out = Vec::new();
    for o in ops {
        let names: Vec<&str> = FRAG_NAMES
            .iter()
            .filter(|(b, _)| o.value & b != 0)
            .map(|(_, n)| *n)
            .collect();
        if o.value & !0x0f != 0 {
            return Err(RenderError {
                format: Format::Gobgp,
                what: format!("fragment bits {:#x}", o.value),
            });
        }
        let names = if names.is_empty() {
            "not-a-fragment".to_string()
        } else {
            names.join("+")
        };
        out.push(format!(
            "{}{}{}",
            if o.and { "&" } else { "" },
            bit_prefix(o),
            names
        ));
    }
    Ok(out.join(" "))
}

fn prefix(p: &FlowPrefix, afi: Afi) -> Vec<String> {
    let mut v = vec![p.net.to_string()];
    if afi == Afi::Ipv6 && p.offset > 0 {
        v.push(p.offset.to_string());
    }
    v
}

/// The arguments after `gobgp` (without the API address flags).
pub fn args(rule: &Rule, op: Op) -> Result<Vec<String>, RenderError> {
    let verb = match op {
        Op::Announce => "add",
        Op::Withdraw => "del",
    };
    let mut a: Vec<String> = ["global", "rib", "-a"].map(String::from).to_vec();
    match rule {
        Rule::Flow(f) => {
            let s = &f.spec;
            a.push(
                match s.afi {
                    Afi::Ipv4 => "ipv4-flowspec",
                    Afi::Ipv6 => "ipv6-flowspec",
                }
                .into(),
            );
            a.push(verb.into());
            a.push("match".into());
            let mut any = false;
            let mut push = |a: &mut Vec<String>, k: &str, v: Vec<String>| {
                a.push(k.into());
                a.extend(v);
                any = true;
            };
            if let Some(p) = &s.dst {
                push(&mut a, "destination", prefix(p, s.afi));
            }
            if let Some(p) = &s.src {
                push(&mut a, "source", prefix(p, s.afi));
            }
            let none = |_| None;
            if !s.protocol.is_empty() {
                push(&mut a, "protocol", vec![num(&s.protocol, protocol_name)]);
            }
            for (k, ops) in [
                ("port", &s.port),
                ("destination-port", &s.dst_port),
                ("source-port", &s.src_port),
                ("icmp-type", &s.icmp_type),
                ("icmp-code", &s.icmp_code),
            ] {
                if !ops.is_empty() {
                    push(&mut a, k, vec![num(ops, none)]);
                }
            }
            if !s.tcp_flags.is_empty() {
                push(&mut a, "tcp-flags", vec![tcp_flags(&s.tcp_flags)]);
            }
            if !s.length.is_empty() {
                push(&mut a, "packet-length", vec![num(&s.length, none)]);
            }
            if !s.dscp.is_empty() {
                push(&mut a, "dscp", vec![num(&s.dscp, none)]);
            }
            if !s.fragment.is_empty() {
                push(&mut a, "fragment", vec![fragments(&s.fragment)?]);
            }
            if !s.flow_label.is_empty() {
                push(&mut a, "label", vec![num(&s.flow_label, none)]);
            }
            if !any {
                return Err(RenderError {
                    format: Format::Gobgp,
                    what: "a FlowSpec rule without components".into(),
                });
            }
            if op == Op::Announce {
                a.push("then".into());
                if f.actions.is_empty() {
                    a.push("accept".into());
                }
                for act in &f.actions {
                    match act {
                        Action::Discard => a.push("discard".into()),
                        Action::RateLimit(r) => {
                            a.push("rate-limit".into());
                            a.push(r.to_string());
                        }
                        Action::Redirect(rt) => {
                            a.push("redirect".into());
                            a.push(rt.to_string());
                        }
                        Action::Mark(d) => {
                            a.push("mark".into());
                            a.push(d.to_string());
                        }
                    }
                }
            }
        }
        Rule::Rtbh(r) => {
            a.push(
                if r.prefix.addr().is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                }
                .into(),
            );
            a.push(verb.into());
            a.push(r.prefix.to_string());
            if op == Op::Announce {
                a.push("nexthop".into());
                a.push(r.next_hop.to_string());
                if !r.communities.is_empty() {
                    a.push("community".into());
                    a.push(
                        r.communities
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                }
            }
        }
        Rule::Divert(d) => {
            return Err(RenderError {
                format: Format::Gobgp,
                what: format!(
                    "a scrubbing diversion of {} (that goes to the scrubbing provider)",
                    d.prefix
                ),
            })
        }
    }
    Ok(a)
}

/// A complete, pasteable `gobgp ...` command line.
pub fn command(rule: &Rule, op: Op) -> Result<String, RenderError> {
    let a = args(rule, op)?;
    let mut s = String::from("gobgp");
    for x in a {
        s.push(' ');
        s.push_str(&shell_quote(&x));
    }
    Ok(s)
}
