//! What the Levee server asks of a running agent, and the seam it arrives
//! through: a [`Controller`] the loop polls once per tick (it must return at
//! once, e.g. a channel's `try_recv`), so the network never holds up
//! detection. The uplink implements it in the binary; tests script it.

use levee_proto::{AgentCommand, CommandResult, Policy};
use std::path::PathBuf;

/// One instruction from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// The tenant's policy (applied when its version differs from the one in force).
    Policy(Policy),
    /// A queued command (the same id may come again until acknowledged; it
    /// runs once).
    Command(AgentCommand),
}

/// A command handled, for the server.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDone {
    pub result: CommandResult,
    /// A capture to upload with an incident: (incident id, file).
    pub upload: Option<(String, PathBuf)>,
}

/// The source of [`Control`]s and the sink of their results.
pub trait Controller {
    /// Whatever arrived since the last call; never blocks.
    fn poll(&mut self) -> Vec<Control>;
    /// A command from this controller was handled (done or failed).
    fn done(&mut self, done: CommandDone);
}
