//! Executors for host firewalls managed by their own front-ends (ufw,
//! firewalld, CSF): Levee uses each one's native deny command for a source
//! block, so the operator's tool stays the single source of truth and shows
//! Levee's entries in its own listings.
//!
//! [`DenyExecutor`] holds what the three share (pairs of source prefix and
//! attacked address, bookkeeping, reconcile); a [`DenyBackend`] says how
//! one tool adds, lists and removes a deny.

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::rule::RuleSpec;
use crate::runner::{Cmd, CommandRunner};
use levee_packet::classify::fingerprint::IpPrefix;
use std::collections::BTreeMap;
use std::net::IpAddr;
use uuid::Uuid;

/// One deny as the tool lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub source: IpPrefix,
    /// The attacked address, for tools that can restrict a deny to one.
    pub dst: Option<IpAddr>,
    /// The mitigation, when the tool keeps Levee's comment.
    pub owner: Option<Uuid>,
    /// The tool's own text for the entry (used to delete it).
    pub raw: String,
}

/// How one tool adds, lists and removes denies.
pub trait DenyBackend: Send {
    fn kind(&self) -> ExecutorKind;
    /// Whether denies can name the attacked address.
    fn uses_dst(&self) -> bool;
    fn availability(&self, runner: &mut dyn CommandRunner) -> Availability;
    fn add(&self, d: &Deny, rule: &RuleSpec) -> Cmd;
    fn remove(&self, d: &Deny) -> Cmd;
    /// Levee's denies currently in the tool.
    fn list(&self, runner: &mut dyn CommandRunner) -> Result<Vec<Deny>, ExecError>;
    /// Whether the tool forgets a deny by itself at its TTL (then refresh
    /// re-adds it).
    fn has_ttl(&self) -> bool;
}

pub struct DenyExecutor<B: DenyBackend> {
    runner: Box<dyn CommandRunner>,
    backend: B,
    /// Live mitigations and their denies.
    live: BTreeMap<Uuid, Vec<Deny>>,
}

/// `p` as the tools write it: a bare address for a single host.
pub fn prefix_text(p: &IpPrefix) -> String {
    let full = if p.addr.is_ipv4() { 32 } else { 128 };
    if p.len == full {
        p.addr.to_string()
    } else {
        p.to_string()
    }
}

impl<B: DenyBackend> DenyExecutor<B> {
    pub fn new(runner: Box<dyn CommandRunner>, backend: B) -> Self {
        DenyExecutor {
            runner,
            backend,
            live: BTreeMap::new(),
        }
    }

    fn denies(&self, rule: &RuleSpec) -> Result<Vec<Deny>, ExecError> {
        if rule.action != Action::SourceBlock {
            return Err(ExecError::unsupported(
                self.backend.kind(),
                &rule.action,
                "only source blocks map onto the tool's deny command",
            ));
        }
        let mut v = Vec::new();
        for s in &rule.sources {
            if self.backend.uses_dst() {
                let mut dsts: Vec<IpAddr> = rule
                    .matches
                    .iter()
                    .map(|m| m.dst)
                    .filter(|d| d.is_ipv6() == s.addr.is_ipv6())
                    .collect();
                dsts.sort();
                dsts.dedup();
                for d in dsts {
                    v.push(Deny {
                        source: *s,
                        dst: Some(d),
                        owner: Some(rule.id),
                        raw: String::new(),
                    });
                }
            } else {
                v.push(Deny {
                    source: *s,
                    dst: None,
                    owner: Some(rule.id),
                    raw: String::new(),
                });
            }
        }
        if v.is_empty() {
            return Err(ExecError::Other {
                executor: self.backend.kind(),
                message: "source_block without a source of the attacked address's family (nothing to deny)".into(),
            });
        }
        Ok(v)
    }

    fn same(a: &Deny, b: &Deny) -> bool {
        a.source == b.source && a.dst == b.dst
    }
}

impl<B: DenyBackend> Executor for DenyExecutor<B> {
    fn kind(&self) -> ExecutorKind {
        self.backend.kind()
    }

    fn availability(&mut self) -> Availability {
        self.backend.availability(self.runner.as_mut())
    }

    fn supports(&self, action: &Action) -> bool {
        *action == Action::SourceBlock
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        Ok(self
            .denies(rule)?
            .iter()
            .map(|d| self.backend.add(d, rule))
            .collect())
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let denies = self.denies(rule)?;
        let mut done = Vec::new();
        for d in denies {
            if let Err(e) = self.runner.check(&self.backend.add(&d, rule)) {
                for x in &done {
                    let _ = self.runner.run(&self.backend.remove(x));
                }
                return Err(e.into());
            }
            done.push(d);
        }
        self.live.insert(rule.id, done);
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let listed = self.backend.list(self.runner.as_mut())?;
        Ok(self
            .denies(rule)?
            .iter()
            .all(|d| listed.iter().any(|l| Self::same(l, d))))
    }

    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        if !self.backend.has_ttl() {
            return Ok(());
        }
        let listed = self.backend.list(self.runner.as_mut())?;
        for d in self.denies(rule)? {
            if let Some(l) = listed.iter().find(|l| Self::same(l, &d)) {
                self.runner.check(&self.backend.remove(l))?;
            }
            self.runner.check(&self.backend.add(&d, rule))?;
        }
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let mine = self.live.remove(&rule.id).unwrap_or_default();
        let listed = self.backend.list(self.runner.as_mut())?;
        for d in &mine {
            // Another live mitigation may deny the same pair: keep it then.
            let shared = self.live.values().flatten().any(|o| Self::same(o, d));
            if shared {
                continue;
            }
            if let Some(l) = listed.iter().find(|l| Self::same(l, d)) {
                self.runner.check(&self.backend.remove(l))?;
            }
        }
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        // These front-ends report no per-entry packet counts.
        Ok(BTreeMap::new())
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let kind = self.backend.kind();
        Ok(self
            .backend
            .list(self.runner.as_mut())?
            .into_iter()
            .map(|d| {
                // Tools without comments: the owner is whoever holds the pair now.
                let owner = d.owner.or_else(|| {
                    self.live
                        .iter()
                        .find(|(_, v)| v.iter().any(|x| Self::same(x, &d)))
                        .map(|(id, _)| *id)
                });
                Owned {
                    executor: kind,
                    owner: Some(owner.unwrap_or(Uuid::nil())),
                    tag: None,
                    what: format!("{kind} deny {}", d.raw),
                    handle: d.raw,
                }
            })
            .collect())
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        let listed = self.backend.list(self.runner.as_mut())?;
        for o in items {
            if let Some(d) = listed.iter().find(|d| d.raw == o.handle) {
                self.runner.check(&self.backend.remove(d))?;
            }
        }
        Ok(())
    }
}
