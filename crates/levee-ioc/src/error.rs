//! Typed errors for building sets and reloading lists.

use std::io;
use std::path::PathBuf;

use crate::parse::LineError;

/// Errors while declaring lists in a set or store.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// Two lists share a name; matches would be ambiguous.
    #[error("indicator list `{0}` is configured twice; give each list a unique name")]
    DuplicateList(String),
    /// More lists than the compact list id (u16) can address.
    #[error("too many indicator lists (at most {max})")]
    TooManyLists {
        /// The limit.
        max: usize,
    },
}

/// Why one list could not be (re)loaded; the previous version of the list is kept.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The file could not be opened or read.
    #[error("cannot read indicator list {path}: {source}; check the path and permissions")]
    Io {
        /// The list file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// More bad lines than good ones: probably not an indicator list (an HTML error
    /// page, a truncated download, the wrong file).
    #[error(
        "indicator list {path} looks corrupt: {bad} bad lines vs {good} good{}",
        first.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
    )]
    Corrupt {
        /// The list file.
        path: PathBuf,
        /// Bad lines.
        bad: usize,
        /// Good lines.
        good: usize,
        /// The first bad line.
        first: Option<LineError>,
    },
    /// The file has no indicators although the previous version had some; an emptied
    /// feed is far more often a failed download than a real all-clear.
    #[error("indicator list {path} is empty but previously held {previous} indicators")]
    Emptied {
        /// The list file.
        path: PathBuf,
        /// Indicators in the version kept.
        previous: usize,
    },
}
