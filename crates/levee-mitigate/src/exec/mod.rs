//! The [`Executor`] trait — what every tool-specific executor does — and
//! the executors built on real tools, one module each.
//!
//! Every executor renders the exact commands it will run before running
//! them (the preview *is* the program), runs them through a
//! [`CommandRunner`], reads its objects back to verify and to count, and
//! can list everything it owns in the kernel so `reconcile` can remove what
//! no live mitigation backs.
//!
//! An executor that is not built here (XDP, in its own crate) fits the same
//! trait: render = the map updates it would make, counters = its per-rule
//! counters, owned = its maps' entries.

pub mod csf;
pub mod deny;
pub mod firewalld;
pub mod ipset;
pub mod iptables;
pub mod nft;
pub mod route;
pub mod sysctl;
pub mod tc;
pub mod ufw;

use crate::action::{Action, ExecutorKind};
use crate::rule::RuleSpec;
use crate::runner::{Cmd, RunError};
use levee_packet::classify::fingerprint::IpPrefix;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Packets and bytes a mitigation's rules matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Counter {
    fn add_assign(&mut self, o: Counter) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// Something of Levee's found in the kernel (for `reconcile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub executor: ExecutorKind,
    /// The mitigation it belongs to, when the object says (comment, name).
    /// `None`: shared scaffolding (tables, chains, hooks) of the executor.
    pub owner: Option<Uuid>,
    /// For objects named by tag only (sets, devices): the tag.
    pub tag: Option<String>,
    /// Human description, e.g. `nft rule inet levee pre_raw handle 7`.
    pub what: String,
    /// Executor-private handle used to remove it.
    pub handle: String,
}

impl Owned {
    /// Whether a live mitigation backs this object.
    pub fn backed_by(&self, live: &[Uuid]) -> bool {
        match (&self.owner, &self.tag) {
            (Some(id), _) => live.contains(id),
            (None, Some(tag)) => live.iter().any(|id| crate::rule::tag_of(*id) == *tag),
            // Scaffolding lives while any mitigation does.
            (None, None) => !live.is_empty(),
        }
    }
}

/// Is the tool there and usable?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// Not usable, with what to do about it.
    Missing(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{executor} cannot do {action}: {why}")]
    Unsupported {
        executor: ExecutorKind,
        action: String,
        why: String,
    },
    #[error("{executor}: cannot understand `{command}` output: {message}")]
    Parse {
        executor: ExecutorKind,
        command: String,
        message: String,
    },
    #[error("{executor}: {message}")]
    Other {
        executor: ExecutorKind,
        message: String,
    },
}

impl ExecError {
    pub fn unsupported(executor: ExecutorKind, action: &Action, why: impl Into<String>) -> Self {
        ExecError::Unsupported {
            executor,
            action: action.to_string(),
            why: why.into(),
        }
    }
}

/// One tool's way of carrying out mitigations.
pub trait Executor: Send {
    fn kind(&self) -> ExecutorKind;

    /// Whether the tool is installed and usable here.
    fn availability(&mut self) -> Availability;

    /// Whether this executor can carry out `action` at all.
    fn supports(&self, action: &Action) -> bool;

    /// The exact commands [`apply`](Self::apply) would run now, in order.
    /// Pure: runs nothing.
    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError>;

    /// Puts the rule in place (what [`render`](Self::render) showed).
    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError>;

    /// Reads the rule back: is it in place?
    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError>;

    /// Extends the rule's kernel-side lifetime to `rule.expires_unix_ms`.
    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError>;

    /// Removes the rule (and the executor's scaffolding once nothing of
    /// it is left).
    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError>;

    /// Per-mitigation counters of matched packets (missing: the tool has none).
    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError>;

    /// Everything of Levee's this executor finds in the kernel.
    fn owned(&mut self) -> Result<Vec<Owned>, ExecError>;

    /// Removes objects found by [`owned`](Self::owned); `live` are the
    /// mitigations still in force (scaffolding stays while they exist).
    fn remove_owned(&mut self, items: &[Owned], live: &[Uuid]) -> Result<(), ExecError>;

    /// The prefixes no rule may touch changed (a new allowlist from the
    /// server): use `exempt` from now on, and update the exemptions already
    /// in the kernel so live rules honour it too. The default suits
    /// executors with no exemption of their own (their rules name only the
    /// sources the engine screened).
    fn set_exempt(&mut self, exempt: &[IpPrefix]) -> Result<(), ExecError> {
        let _ = exempt;
        Ok(())
    }
}

/// Renders commands as text for events and previews (one per line, stdin
/// as here-documents).
pub fn commands_text(cmds: &[Cmd]) -> String {
    cmds.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let o = |owner, tag: Option<&str>| Owned {
            executor: ExecutorKind::Nftables,
            owner,
            tag: tag.map(String::from),
            what: String::new(),
            handle: String::new(),
        };
        assert!(o(Some(a), None).backed_by(&[a]));
        assert!(!o(Some(a), None).backed_by(&[b]));
        assert!(o(None, Some(&crate::rule::tag_of(b))).backed_by(&[a, b]));
        assert!(!o(None, Some("0000000000")).backed_by(&[a]));
        assert!(o(None, None).backed_by(&[a]));
        assert!(!o(None, None).backed_by(&[]));
    }
}
