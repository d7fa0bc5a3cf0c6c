//! The lab's error type. Every variant names the thing that failed (the command
//! line, the file, the process) and carries what the OS or the tool said.

use std::path::PathBuf;

/// Errors from the lab. Messages name the command or file and include stderr.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command ran but exited unsuccessfully.
    #[error("command `{command}` failed ({status}); stderr: {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A command could not be started at all.
    #[error("could not start `{command}`: {source} (is it installed and on PATH?)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file had unexpected content.
    #[error("cannot parse {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    /// Something else the lab could not do, described in words.
    #[error("{0}")]
    Other(String),
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

impl LabError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LabError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
