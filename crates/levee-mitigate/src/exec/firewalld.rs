//! firewalld: a runtime rich rule per (source, attacked address),
//! `rule priority="-31337" family="ipv4" source address="S" destination
//! address="D" drop`, added with `--timeout=<TTL>s` so firewalld itself
//! removes it at its TTL even if the agent is gone (runtime rules also
//! vanish on a firewalld reload). The unusual priority marks Levee's rules
//! (rich rules carry no comment) and puts them ahead of the zone's others.
//! Detected when `firewall-cmd --state` says `running`.

use super::deny::{prefix_text, Deny, DenyBackend, DenyExecutor};
use super::{Availability, ExecError};
use crate::action::ExecutorKind;
use crate::rule::RuleSpec;
use crate::runner::{Cmd, CommandRunner};

/// The rich-rule priority that marks Levee's rules.
pub const PRIORITY: &str = "-31337";

pub struct Firewalld;

pub type FirewalldExecutor = DenyExecutor<Firewalld>;

impl FirewalldExecutor {
    pub fn firewalld(runner: Box<dyn CommandRunner>) -> Self {
        DenyExecutor::new(runner, Firewalld)
    }
}

pub fn rich_rule(d: &Deny) -> String {
    let fam = if d.source.addr.is_ipv6() {
        "ipv6"
    } else {
        "ipv4"
    };
    let dst = d
        .dst
        .map(|a| format!(" destination address=\"{a}\""))
        .unwrap_or_default();
    format!(
        "rule priority=\"{PRIORITY}\" family=\"{fam}\" source address=\"{}\"{dst} drop",
        prefix_text(&d.source)
    )
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(&format!("{key}=\""))? + key.len() + 2;
    let rest = &line[i..];
    Some(&rest[..rest.find('"')?])
}

/// Parses `firewall-cmd --list-rich-rules` for Levee's rules.
pub fn parse_rich_rules(text: &str) -> Vec<Deny> {
    text.lines()
        .map(str::trim)
        .filter(|l| attr(l, "priority") == Some(PRIORITY))
        .filter_map(|l| {
            let src = attr(l, "source address")?;
            let source = if src.contains('/') {
                src.parse().ok()?
            } else {
                crate::safety::host_prefix(src.parse().ok()?)
            };
            Some(Deny {
                source,
                dst: attr(l, "destination address").and_then(|d| d.parse().ok()),
                owner: None,
                raw: l.to_string(),
            })
        })
        .collect()
}

impl DenyBackend for Firewalld {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Firewalld
    }

    fn uses_dst(&self) -> bool {
        true
    }

    fn has_ttl(&self) -> bool {
        true
    }

    fn availability(&self, runner: &mut dyn CommandRunner) -> Availability {
        match runner.run(&Cmd::new("firewall-cmd", ["--state"])) {
            Ok(o) if o.stdout.trim() == "running" => Availability::Ready,
            Ok(o) => Availability::Missing(format!(
                "firewalld is not running (`firewall-cmd --state`: {}{})",
                o.stdout.trim(),
                o.stderr.trim()
            )),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package firewalld")),
        }
    }

    fn add(&self, d: &Deny, rule: &RuleSpec) -> Cmd {
        Cmd::new(
            "firewall-cmd",
            [
                format!("--add-rich-rule={}", rich_rule(d)),
                format!("--timeout={}s", rule.ttl.as_secs().max(1)),
            ],
        )
    }

    fn remove(&self, d: &Deny) -> Cmd {
        let text = if d.raw.is_empty() {
            rich_rule(d)
        } else {
            d.raw.clone()
        };
        Cmd::new("firewall-cmd", [format!("--remove-rich-rule={text}")])
    }

    fn list(&self, runner: &mut dyn CommandRunner) -> Result<Vec<Deny>, ExecError> {
        let out = runner.check(&Cmd::new("firewall-cmd", ["--list-rich-rules"]))?;
        Ok(parse_rich_rules(&out.stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_rules_round_trip() {
        let d = Deny {
            source: "203.0.113.0/24".parse().unwrap(),
            dst: Some("10.0.0.2".parse().unwrap()),
            owner: None,
            raw: String::new(),
        };
        let text = rich_rule(&d);
        assert_eq!(
            text,
            "rule priority=\"-31337\" family=\"ipv4\" source address=\"203.0.113.0/24\" destination address=\"10.0.0.2\" drop"
        );
        let listed = parse_rich_rules(&format!(
            "rule family=\"ipv4\" source address=\"198.51.100.0/24\" accept\n{text}\n"
        ));
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].source, listed[0].dst), (d.source, d.dst));
        assert_eq!(
            Firewalld.remove(&listed[0]).args[0],
            format!("--remove-rich-rule={text}")
        );
    }
}
