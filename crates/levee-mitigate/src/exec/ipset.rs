//! The ipset executor: a source block as an ipset (`hash:ip` for single
//! addresses, `hash:net` for prefixes) whose every element carries a
//! **timeout = TTL**, referenced by one iptables rule in the shared
//! `LEVEE` chain (`-m set --match-set levee-<tag>-4 src -j DROP`).
//!
//! When the kernel expires the elements the rule matches nothing, even if
//! the agent was SIGKILLed; refreshing re-adds them with `-exist`, which
//! resets their timeouts; removal deletes the rule, then the set.

use super::iptables::{ChainHandle, CHAIN};
use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::rule::{tag_of, RuleSpec};
use crate::runner::{Cmd, CommandRunner};
use levee_packet::classify::fingerprint::IpPrefix;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Prefix of every set Levee creates.
pub const SET_PREFIX: &str = "levee-";

/// `levee-<tag>-4` / `levee-<tag>-6` (ipset names are at most 31 bytes).
pub fn set_name(id: Uuid, v6: bool) -> String {
    format!("{SET_PREFIX}{}-{}", tag_of(id), if v6 { 6 } else { 4 })
}

/// The tag in a Levee set name.
fn tag_of_set(name: &str) -> Option<String> {
    let rest = name.strip_prefix(SET_PREFIX)?;
    let (tag, fam) = rest.rsplit_once('-')?;
    (tag.len() == 10 && (fam == "4" || fam == "6")).then(|| tag.to_string())
}

pub struct IpsetExecutor {
    runner: Box<dyn CommandRunner>,
    chains: ChainHandle,
}

impl IpsetExecutor {
    /// `chains`: the `LEVEE` chains, shared with the iptables executor.
    pub fn new(runner: Box<dyn CommandRunner>, chains: ChainHandle) -> Self {
        IpsetExecutor { runner, chains }
    }

    fn sources(rule: &RuleSpec, v6: bool) -> Vec<&IpPrefix> {
        rule.sources
            .iter()
            .filter(|p| p.addr.is_ipv6() == v6)
            .collect()
    }

    /// (family, commands) without the chain setup.
    fn plan(&self, rule: &RuleSpec) -> Result<Vec<(bool, Vec<Cmd>)>, ExecError> {
        if rule.action != Action::SourceBlock {
            return Err(ExecError::unsupported(
                ExecutorKind::Ipset,
                &rule.action,
                "ipset carries source blocks only; use iptables or nftables for the rest",
            ));
        }
        let ttl = rule.ttl.as_secs().max(1).to_string();
        let mut out = Vec::new();
        for v6 in [false, true] {
            let srcs = Self::sources(rule, v6);
            if srcs.is_empty() {
                continue;
            }
            let name = set_name(rule.id, v6);
            let full = if v6 { 128 } else { 32 };
            let kind = if srcs.iter().all(|p| p.len == full) {
                "hash:ip"
            } else {
                "hash:net"
            };
            let family = if v6 { "inet6" } else { "inet" };
            let mut cmds = vec![Cmd::new(
                "ipset",
                ["create", &name, kind, "family", family, "timeout", &ttl],
            )];
            for p in srcs {
                let elem = if p.len == full {
                    p.addr.to_string()
                } else {
                    p.to_string()
                };
                cmds.push(Cmd::new(
                    "ipset",
                    ["add", &name, &elem, "timeout", &ttl, "-exist"],
                ));
            }
            cmds.push(Cmd::new(
                if v6 { "ip6tables" } else { "iptables" },
                [
                    "-w",
                    "-A",
                    CHAIN,
                    "-m",
                    "set",
                    "--match-set",
                    &name,
                    "src",
                    "-m",
                    "comment",
                    "--comment",
                    &rule.comment(),
                    "-j",
                    "DROP",
                ],
            ));
            out.push((v6, cmds));
        }
        if out.is_empty() {
            return Err(ExecError::Other {
                executor: ExecutorKind::Ipset,
                message: "source_block without any source prefix (nothing to block)".into(),
            });
        }
        Ok(out)
    }

    fn set_names(&mut self) -> Result<Vec<String>, ExecError> {
        let out = self.runner.check(&Cmd::new("ipset", ["list", "-n"]))?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(SET_PREFIX))
            .map(String::from)
            .collect())
    }

    fn destroy(&mut self, name: &str) -> Result<(), ExecError> {
        let out = self.runner.run(&Cmd::new("ipset", ["destroy", name]))?;
        if out.success() || out.stderr.contains("does not exist") {
            Ok(())
        } else {
            Err(crate::runner::RunError::Failed {
                command: format!("ipset destroy {name}"),
                status: out.status,
                stderr: out.stderr.trim().to_string(),
            }
            .into())
        }
    }
}

impl Executor for IpsetExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Ipset
    }

    fn set_exempt(
        &mut self,
        exempt: &[levee_packet::classify::fingerprint::IpPrefix],
    ) -> Result<(), ExecError> {
        self.chains.set_exempt(&mut *self.runner, exempt)
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("ipset", ["version"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`ipset version` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!(
                "{e}; install the Debian packages ipset and iptables"
            )),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        *action == Action::SourceBlock
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        let mut v = Vec::new();
        let chains = self.chains.lock();
        for (v6, cmds) in self.plan(rule)? {
            if !chains.is_ready(v6) {
                v.extend(chains.setup_cmds(v6));
            }
            v.extend(cmds);
        }
        Ok(v)
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for (v6, cmds) in self.plan(rule)? {
            self.chains.lock().ensure(self.runner.as_mut(), v6)?;
            for c in cmds {
                if let Err(e) = self.runner.check(&c) {
                    let _ = self.remove(rule);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        for (v6, _) in self.plan(rule)? {
            let listed = self
                .chains
                .lock()
                .list(self.runner.as_mut(), v6)?
                .unwrap_or_default();
            if !listed.iter().any(|l| l.owner == Some(rule.id)) {
                return Ok(false);
            }
            let out = self
                .runner
                .run(&Cmd::new("ipset", ["list", &set_name(rule.id, v6)]))?;
            let entries = out
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("Number of entries:"))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if !out.success() || entries == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for (_, cmds) in self.plan(rule)? {
            // `ipset add ... -exist` resets an element's timeout.
            for c in cmds
                .iter()
                .filter(|c| c.program == "ipset" && c.args[0] == "add")
            {
                self.runner.check(c)?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for v6 in [false, true] {
            let left = self
                .chains
                .lock()
                .delete(self.runner.as_mut(), v6, |l| l.owner == Some(rule.id))?;
            self.destroy(&set_name(rule.id, v6))?;
            if left == 0 && self.chains.lock().list(self.runner.as_mut(), v6)?.is_some() {
                self.chains.lock().teardown(self.runner.as_mut(), v6)?;
            }
        }
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let mut m = self.chains.lock().counters(self.runner.as_mut(), false)?;
        for (k, c) in self.chains.lock().counters(self.runner.as_mut(), true)? {
            *m.entry(k).or_default() += c;
        }
        Ok(m)
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        // The chain's rules are the iptables executor's to report; the sets are ours.
        // Only names in Levee's exact format: a user's `levee-web` set is not ours.
        Ok(self
            .set_names()?
            .into_iter()
            .filter_map(|n| {
                tag_of_set(&n).map(|tag| Owned {
                    executor: ExecutorKind::Ipset,
                    owner: None,
                    tag: Some(tag),
                    what: format!("ipset {n}"),
                    handle: n,
                })
            })
            .collect())
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        for o in items {
            // A set still referenced by a rule cannot go: drop the rule first.
            let name = o.handle.clone();
            for v6 in [false, true] {
                let left = self.chains.lock().delete(self.runner.as_mut(), v6, |l| {
                    l.line.contains(&format!("--match-set {name} "))
                })?;
                if left == 0 && self.chains.lock().list(self.runner.as_mut(), v6)?.is_some() {
                    self.chains.lock().teardown(self.runner.as_mut(), v6)?;
                }
            }
            self.destroy(&name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{CmdOutput, ScriptedRunner};
    use std::time::Duration;

    fn rule(sources: &[&str]) -> RuleSpec {
        RuleSpec {
            id: "01a1fbca-a736-7516-aa18-813da2481001".parse().unwrap(),
            incident_id: "i".into(),
            action: Action::SourceBlock,
            matches: vec![],
            sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
            interface: None,
            ttl: Duration::from_secs(300),
            expires_unix_ms: 0,
        }
    }

    #[test]
    fn renders_set_elements_and_one_rule() {
        let e = IpsetExecutor::new(Box::new(ScriptedRunner::new()), ChainHandle::default());
        let lines: Vec<String> = e
            .render(&rule(&["203.0.113.0/24", "198.51.100.7/32"]))
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "iptables -w -N LEVEE",
                "iptables -w -I INPUT 1 -m comment --comment levee:hook -j LEVEE",
                "ipset create levee-3da2481001-4 hash:net family inet timeout 300",
                "ipset add levee-3da2481001-4 203.0.113.0/24 timeout 300 -exist",
                "ipset add levee-3da2481001-4 198.51.100.7 timeout 300 -exist",
                "iptables -w -A LEVEE -m set --match-set levee-3da2481001-4 src -m comment --comment levee:01a1fbca-a736-7516-aa18-813da2481001 -j DROP",
            ]
        );
        let six = e.render(&rule(&["2001:db8::1/128"])).unwrap();
        assert!(six[2]
            .to_string()
            .contains("levee-3da2481001-6 hash:ip family inet6"));
        assert!(e.render(&rule(&[])).is_err());
        let mut drop = rule(&["203.0.113.0/24"]);
        drop.action = Action::Drop;
        assert!(e.render(&drop).is_err());
    }

    #[test]
    fn owned_sets_and_refresh() {
        let s = ScriptedRunner::new();
        s.respond(|c| {
            (c.args.join(" ") == "list -n")
                .then(|| CmdOutput::ok("levee-3da2481001-4\nuser-set\nlevee-x\n"))
        });
        let mut e = IpsetExecutor::new(Box::new(s.clone()), ChainHandle::default());
        let o = e.owned().unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].tag.as_deref(), Some("3da2481001"));
        s.clear();
        e.refresh(&rule(&["203.0.113.0/24"])).unwrap();
        assert_eq!(
            s.lines(),
            ["ipset add levee-3da2481001-4 203.0.113.0/24 timeout 300 -exist"]
        );
    }
}
