//! [`Fake`]: an executor that keeps its "kernel" in memory, for tests of
//! code that embeds the engine (the agent's loop, replays). It touches
//! nothing; `fail_apply` and `leftovers` script failures and crash debris.

use crate::action::{Action, ExecutorKind};
use crate::exec::{Availability, Counter, ExecError, Executor, Owned};
use crate::rule::RuleSpec;
use crate::runner::Cmd;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What a [`Fake`] executor has in its "kernel".
#[derive(Default)]
pub struct Kernel {
    pub applied: BTreeMap<Uuid, RuleSpec>,
    pub refreshed: Vec<Uuid>,
    /// Objects left by "a crash": (owner, what).
    pub leftovers: Vec<(Uuid, String)>,
    pub fail_apply: bool,
}

/// An executor of kind `kind` over an in-memory kernel.
#[derive(Clone)]
pub struct Fake {
    kind: ExecutorKind,
    pub k: Arc<Mutex<Kernel>>,
}

impl Fake {
    pub fn new(kind: ExecutorKind) -> Fake {
        Fake {
            kind,
            k: Arc::new(Mutex::new(Kernel::default())),
        }
    }
    /// The in-memory kernel (a poisoned lock still gives it: the test
    /// that panicked reports its own failure).
    pub fn k(&self) -> std::sync::MutexGuard<'_, Kernel> {
        self.k.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Executor for Fake {
    fn kind(&self) -> ExecutorKind {
        self.kind
    }
    fn availability(&mut self) -> Availability {
        Availability::Ready
    }
    fn supports(&self, action: &Action) -> bool {
        match self.kind {
            ExecutorKind::Sysctl => matches!(action, Action::SynCookies { .. }),
            ExecutorKind::Route => *action == Action::Blackhole,
            ExecutorKind::Xdp => matches!(action, Action::Drop | Action::SourceBlock),
            _ => !matches!(action, Action::SynCookies { .. } | Action::Blackhole),
        }
    }
    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        Ok(vec![Cmd::new(
            self.kind.as_str(),
            [rule.action.to_string()],
        )])
    }
    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        if self.k().fail_apply {
            return Err(ExecError::Other {
                executor: self.kind,
                message: "tool said no".into(),
            });
        }
        self.k().applied.insert(rule.id, rule.clone());
        Ok(())
    }
    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        Ok(self.k().applied.contains_key(&rule.id))
    }
    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        self.k().refreshed.push(rule.id);
        Ok(())
    }
    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        self.k().applied.remove(&rule.id);
        Ok(())
    }
    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        Ok(self
            .k()
            .applied
            .keys()
            .map(|id| {
                (
                    *id,
                    Counter {
                        packets: 7,
                        bytes: 0,
                    },
                )
            })
            .collect())
    }
    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let k = self.k();
        Ok(k.applied
            .keys()
            .map(|id| (*id, format!("rule {id}")))
            .chain(k.leftovers.iter().cloned())
            .map(|(id, what)| Owned {
                executor: self.kind,
                owner: Some(id),
                tag: None,
                handle: what.clone(),
                what,
            })
            .collect())
    }
    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        let mut k = self.k();
        for o in items {
            k.leftovers.retain(|(_, w)| *w != o.what);
            if let Some(id) = o.owner {
                k.applied.remove(&id);
            }
        }
        Ok(())
    }
}
