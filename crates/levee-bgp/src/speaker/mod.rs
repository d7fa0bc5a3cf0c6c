//! BGP speakers Levee announces through, behind [`Speaker`]. Each adapter
//! renders the rule (the exact text it runs, which the events carry) and
//! runs it: GoBGP and FRR through their CLIs via levee-mitigate's
//! `CommandRunner` seam, ExaBGP by writing its API commands to the pipe its
//! `process` reads, BIRD 2 by rewriting include files and `birdc configure`.

pub mod bird;
pub mod exabgp;
pub mod frr;
pub mod gobgp;

use crate::render::{Op, RenderError};
use crate::rule::Rule;

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{speaker} cannot announce this: {why}")]
    Unsupported { speaker: String, why: String },
    #[error(transparent)]
    Command(#[from] levee_mitigate::runner::RunError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{speaker} refused the change: {output}")]
    Rejected { speaker: String, output: String },
}

pub trait Speaker: Send {
    /// `gobgp`, `exabgp`, `bird`, `frr`.
    fn name(&self) -> &str;
    /// The exact text `announce`/`withdraw` runs for `rule`.
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError>;
    fn announce(&mut self, rule: &Rule) -> Result<(), SpeakerError>;
    fn withdraw(&mut self, rule: &Rule) -> Result<(), SpeakerError>;
}
