//! `levee audit verify [FILE]`: checks the mitigation audit log's hash
//! chain and names the first broken entry (exit status 1).

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The audit log (default: <state dir>/audit.jsonl).
    file: Option<PathBuf>,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(a) => verify(a),
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let path = a
        .file
        .unwrap_or_else(|| levee_agent::config::default_state_dir().join("audit.jsonl"));
    let f = std::fs::File::open(&path)
        .with_context(|| format!("opening the audit log {}", path.display()))?;
    match levee_mitigate::audit::verify(f).with_context(|| format!("reading {}", path.display()))? {
        Ok(n) => {
            println!("{}: {n} entries, hash chain intact", path.display());
            Ok(())
        }
        Err(b) => anyhow::bail!("{}: broken {b}", path.display()),
    }
}
