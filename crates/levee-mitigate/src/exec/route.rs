//! The null-route executor: a local blackhole route for each attacking
//! prefix, tagged with routing protocol [`RT_PROTO`] (171, "levee") so
//! Levee's routes are told apart from everyone else's.
//!
//! The node stops answering the prefix (no SYN-ACKs, no RSTs, no ICMP
//! errors), and with strict reverse-path filtering (`rp_filter = 1`) the
//! kernel drops the prefix's packets on arrival. IPv6 routes carry
//! `expires <TTL>`, a kernel-side lifetime; IPv4 routes cannot expire and
//! are removed by the agent, or by `reconcile` after a crash.
//!
//! Routes are added, never replaced: a prefix the operator already routes
//! is left alone (the add fails and the mitigation says so).

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::rule::RuleSpec;
use crate::runner::{Cmd, CommandRunner};
use crate::safety::normalise;
use levee_packet::classify::fingerprint::IpPrefix;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The routing protocol number on Levee's routes (see `ip route ... proto`).
pub const RT_PROTO: &str = "171";

pub struct RouteExecutor {
    runner: Box<dyn CommandRunner>,
    /// Which live mitigations hold each blackholed prefix.
    owners: BTreeMap<IpPrefix, BTreeSet<Uuid>>,
}

fn fam(p: &IpPrefix) -> &'static str {
    if p.addr.is_ipv6() {
        "-6"
    } else {
        "-4"
    }
}

impl RouteExecutor {
    pub fn new(runner: Box<dyn CommandRunner>) -> Self {
        RouteExecutor {
            runner,
            owners: BTreeMap::new(),
        }
    }

    fn add_cmd(p: &IpPrefix, rule: &RuleSpec) -> Cmd {
        let mut a = vec![
            fam(p).to_string(),
            "route".into(),
            "add".into(),
            "blackhole".into(),
            p.to_string(),
            "proto".into(),
            RT_PROTO.into(),
        ];
        if p.addr.is_ipv6() {
            a.extend(["expires".into(), rule.ttl.as_secs().max(1).to_string()]);
        }
        Cmd::new("ip", a)
    }

    fn prefixes(rule: &RuleSpec) -> Result<Vec<IpPrefix>, ExecError> {
        if rule.action != Action::Blackhole {
            return Err(ExecError::unsupported(
                ExecutorKind::Route,
                &rule.action,
                "routes only blackhole",
            ));
        }
        if rule.sources.is_empty() {
            return Err(ExecError::Other {
                executor: ExecutorKind::Route,
                message: "blackhole without any source prefix (nothing to route away)".into(),
            });
        }
        Ok(rule.sources.iter().map(|p| normalise(*p)).collect())
    }

    /// Levee's blackhole routes in the kernel.
    fn listed(&mut self) -> Result<Vec<IpPrefix>, ExecError> {
        let mut v = Vec::new();
        for f in ["-4", "-6"] {
            let cmd = Cmd::new("ip", [f, "-j", "route", "show", "proto", RT_PROTO]);
            let out = self.runner.check(&cmd)?;
            if out.stdout.trim().is_empty() {
                continue;
            }
            let routes: Value =
                serde_json::from_str(&out.stdout).map_err(|e| ExecError::Parse {
                    executor: ExecutorKind::Route,
                    command: cmd.line(),
                    message: e.to_string(),
                })?;
            for r in routes.as_array().into_iter().flatten() {
                let Some(dst) = r.get("dst").and_then(Value::as_str) else {
                    continue;
                };
                let text = if dst.contains('/') {
                    dst.to_string()
                } else if f == "-6" {
                    format!("{dst}/128")
                } else {
                    format!("{dst}/32")
                };
                if let Ok(p) = text.parse::<IpPrefix>() {
                    v.push(p);
                }
            }
        }
        Ok(v)
    }

    fn del(&mut self, p: &IpPrefix) -> Result<(), ExecError> {
        let out = self.runner.run(&Cmd::new(
            "ip",
            [
                fam(p),
                "route",
                "del",
                "blackhole",
                &p.to_string(),
                "proto",
                RT_PROTO,
            ],
        ))?;
        if out.success() || out.stderr.contains("No such process") {
            Ok(())
        } else {
            Err(ExecError::Other {
                executor: ExecutorKind::Route,
                message: format!("deleting blackhole {p}: {}", out.stderr.trim()),
            })
        }
    }
}

impl Executor for RouteExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Route
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("ip", ["-V"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`ip -V` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package iproute2")),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        *action == Action::Blackhole
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        Ok(Self::prefixes(rule)?
            .iter()
            .filter(|p| !self.owners.contains_key(p))
            .map(|p| Self::add_cmd(p, rule))
            .collect())
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for p in Self::prefixes(rule)? {
            if !self.owners.contains_key(&p) {
                if let Err(e) = self.runner.check(&Self::add_cmd(&p, rule)) {
                    let _ = self.remove(rule);
                    return Err(e.into());
                }
            }
            self.owners.entry(p).or_default().insert(rule.id);
        }
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let listed = self.listed()?;
        Ok(Self::prefixes(rule)?.iter().all(|p| listed.contains(p)))
    }

    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for p in Self::prefixes(rule)?.iter().filter(|p| p.addr.is_ipv6()) {
            self.runner.check(&Cmd::new(
                "ip",
                [
                    "-6",
                    "route",
                    "change",
                    "blackhole",
                    &p.to_string(),
                    "proto",
                    RT_PROTO,
                    "expires",
                    &rule.ttl.as_secs().max(1).to_string(),
                ],
            ))?;
        }
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for p in Self::prefixes(rule)? {
            let last = match self.owners.get_mut(&p) {
                Some(o) => {
                    o.remove(&rule.id);
                    o.is_empty()
                }
                None => true,
            };
            if last {
                self.owners.remove(&p);
                self.del(&p)?;
            }
        }
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        // Routes keep no per-route packet counts.
        Ok(BTreeMap::new())
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        Ok(self
            .listed()?
            .into_iter()
            .map(|p| Owned {
                executor: ExecutorKind::Route,
                // A route names no mitigation; the executor knows who holds it.
                owner: Some(
                    self.owners
                        .get(&p)
                        .and_then(|o| o.iter().next().copied())
                        .unwrap_or(Uuid::nil()),
                ),
                tag: None,
                what: format!("blackhole route {p} proto {RT_PROTO}"),
                handle: p.to_string(),
            })
            .collect())
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        for o in items {
            if let Ok(p) = o.handle.parse::<IpPrefix>() {
                self.owners.remove(&p);
                self.del(&p)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{CmdOutput, ScriptedRunner};
    use std::time::Duration;

    fn rule(id: u128, srcs: &[&str]) -> RuleSpec {
        RuleSpec {
            id: Uuid::from_u128(id),
            incident_id: "i".into(),
            action: Action::Blackhole,
            matches: vec![],
            sources: srcs.iter().map(|s| s.parse().unwrap()).collect(),
            interface: None,
            ttl: Duration::from_secs(120),
            expires_unix_ms: 0,
        }
    }

    #[test]
    fn renders_and_shares_prefixes() {
        let s = ScriptedRunner::new();
        let mut e = RouteExecutor::new(Box::new(s.clone()));
        let a = rule(1, &["203.0.113.9/24", "2001:db8:5::/48"]);
        let lines: Vec<String> = e
            .render(&a)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "ip -4 route add blackhole 203.0.113.0/24 proto 171",
                "ip -6 route add blackhole 2001:db8:5::/48 proto 171 expires 120"
            ]
        );
        e.apply(&a).unwrap();
        let b = rule(2, &["203.0.113.0/24"]);
        assert!(e.render(&b).unwrap().is_empty(), "already blackholed");
        e.apply(&b).unwrap();
        s.clear();
        e.remove(&a).unwrap();
        // 203.0.113.0/24 is still held by b.
        assert_eq!(
            s.lines(),
            ["ip -6 route del blackhole 2001:db8:5::/48 proto 171"]
        );
        e.remove(&b).unwrap();
        assert_eq!(
            s.lines()[1],
            "ip -4 route del blackhole 203.0.113.0/24 proto 171"
        );
        assert!(e.render(&rule(3, &[])).is_err());
    }

    #[test]
    fn owned_routes_without_a_live_owner_are_orphans() {
        let s = ScriptedRunner::new();
        s.respond(|c| match c.args.join(" ").as_str() {
            "-4 -j route show proto 171" => Some(CmdOutput::ok(r#"[{"type":"blackhole","dst":"203.0.113.0/24","flags":[]},{"type":"blackhole","dst":"198.51.100.7","flags":[]}]"#)),
            "-6 -j route show proto 171" => Some(CmdOutput::ok("")),
            _ => None,
        });
        let mut e = RouteExecutor::new(Box::new(s.clone()));
        let owned = e.owned().unwrap();
        assert_eq!(owned.len(), 2);
        assert_eq!(owned[1].handle, "198.51.100.7/32");
        assert!(owned.iter().all(|o| !o.backed_by(&[Uuid::from_u128(1)])));
        assert!(e.verify(&rule(1, &["203.0.113.0/24"])).unwrap());
        assert!(!e.verify(&rule(1, &["192.0.2.0/24"])).unwrap());
    }
}
