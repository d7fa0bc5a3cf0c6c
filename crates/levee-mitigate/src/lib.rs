//! Levee's on-node mitigation.
//!
//! When an incident starts, [`MitigationEngine`] turns it into rules as
//! narrow as the attack's fingerprint and applies them with the node's own
//! tools; when the incident ends, or a rule's TTL passes, or the rule hurts
//! legitimate traffic, they are removed. A rule can never outlive its
//! purpose: where the tool allows it the kernel itself expires the rule
//! (nftables and ipset element timeouts, iptables `time` matches), and on
//! start [`MitigationEngine::reconcile`] removes anything of Levee's that
//! no live mitigation backs.
//!
//! Modules, from the model outwards:
//! - [`action`]: what to do (drop, rate-limit, SYN cookies, ...) and the tools;
//! - [`matcher`]: which packets, from a fingerprint, a family or the metrics;
//! - [`state`]: the lifecycle state machine (previewed -> applied ->
//!   verified -> rolled back | expired | failed);
//! - [`config`]: `[mitigation]` settings and attack profiles;
//! - [`safety`]: what no rule may touch; [`host`]: the node's addresses;
//! - [`rule`]: one mitigation as executors see it;
//! - [`exec`]: the executors (nftables, iptables, ipset, tc, route,
//!   sysctl, ufw, firewalld, CSF) behind the [`exec::Executor`] trait, all
//!   running tools through the [`runner::CommandRunner`] seam;
//! - [`guard`]: the collateral-damage guard; [`audit`]: the hash-chained log;
//! - [`engine`]: the API the agent calls.

pub mod action;
pub mod audit;
pub mod config;
pub mod engine;
pub mod exec;
pub mod guard;
pub mod host;
pub mod matcher;
pub mod meter;
pub mod rule;
pub mod runner;
pub mod safety;
pub mod state;
pub mod system;
pub mod testing;

pub use action::{Action, ActionKind, ExecutorKind};
pub use config::{GuardConfig, MitigationConfig, Profiles, Step};
pub use engine::{EngineError, EngineOptions, IncidentView, Mitigation, MitigationEngine};
pub use matcher::{Fragments, Match};
pub use rule::RuleSpec;
pub use safety::Protected;
