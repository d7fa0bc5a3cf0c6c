//! The attack lab: a pair of throw-away network namespaces joined by a veth pair,
//! hping3 floods from the attacker namespace to the victim namespace, and a
//! harness that runs the `levee` agent inside the victim namespace and reads the
//! JSON events it prints.
//!
//! Safety rules this crate enforces (BRIEF, "Lab"):
//! - every link, address and route is created inside namespaces the lab itself
//!   created (the veth pair is created *inside* the attacker namespace with its
//!   peer moved straight into the victim namespace, so the host's own network is
//!   never touched);
//! - floods only go between those namespaces, always under `timeout`, and are
//!   killed by `Drop`;
//! - namespace names carry the creating pid (`lv-<pid>-<n>-att` / `-vic`), are
//!   removed by `Drop` (also on panic), and leftovers of dead earlier runs are
//!   removed by the next [`Lab::new`];
//! - lab users are serialised with a file lock ([`LabLock`]) because floods on a
//!   small machine interfere with each other.
//!
//! Typical use in a test:
//! ```no_run
//! use levee_lab::{require_lab, AgentOptions, AgentProcess, FloodKind, Lab};
//! use std::time::Duration;
//! # fn main() -> anyhow::Result<()> {
//! if require_lab().is_some() {
//!     return Ok(()); // skipped (not on CI): a loud message was printed
//! }
//! let bin = levee_lab::levee_binary()?;
//! let lab = Lab::new()?;
//! let work = tempfile::tempdir()?;
//! let mut agent = AgentProcess::spawn(&lab, &AgentOptions::new(bin, work.path()))?;
//! agent.wait_for_event("baseline_ready", Duration::from_secs(30));
//! let flood = lab.flood(FloodKind::Syn, Duration::from_secs(5))?;
//! let started = agent.wait_for_event("incident_started", Duration::from_secs(2));
//! # Ok(()) }
//! ```

pub mod agent;
pub mod bgp;
pub mod binary;
pub mod clock;
pub mod cmd;
pub mod error;
pub mod fastnetmon;
pub mod lab;
pub mod legit;
pub mod lock;
pub mod machine;
pub mod names;
pub mod postgres;
pub mod prereq;
pub mod process;
pub mod procfs;
pub mod report;
pub mod server;
pub mod stats;
pub mod traffic;

pub use agent::{AgentOptions, AgentProcess, ReceivedEvent};
pub use binary::levee_binary;
pub use error::{LabError, Result};
pub use lab::{Lab, Ns};
pub use legit::{LegitLoad, LEGIT_TOOLS};
pub use lock::LabLock;
pub use postgres::{require_postgres, PgCluster};
pub use prereq::{require_lab, require_lab_with, LabSkip};
pub use procfs::{NetDevRow, ProcSample};
pub use server::{incident_event, ServerProcess, SERVER_TOOLS};
pub use traffic::{BackgroundTraffic, Flood, FloodKind, FloodOptions, Reflector};
