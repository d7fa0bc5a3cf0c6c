//! The crate's error types: [`ParseError`] for the pure `/proc` parsers and
//! [`SourceError`] for everything that touches the kernel or a recording.

use std::io;
use thiserror::Error;

/// A `/proc` file did not have the shape the parser expects.
///
/// Every variant names the file (its canonical path, even though the parsers never
/// open it) and, where there is one, the 1-based line the problem was found on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("{file}: empty, expected the kernel's header line")]
    Empty { file: &'static str },

    #[error("{file} line {line}: expected {expected}, found {found:?}")]
    Unexpected {
        file: &'static str,
        line: usize,
        expected: String,
        found: String,
    },

    #[error("{file} line {line}: required column {column:?} is missing from the header")]
    MissingColumn {
        file: &'static str,
        line: usize,
        column: String,
    },

    #[error(
        "{file} line {line}: column {column:?}: expected an unsigned integer, found {found:?}"
    )]
    NotANumber {
        file: &'static str,
        line: usize,
        column: String,
        found: String,
    },

    #[error("{file}: required section {section:?} is missing (expected a \"{section}: ...\" header line followed by a values line)")]
    MissingSection {
        file: &'static str,
        section: &'static str,
    },

    #[error("{file}: required counter {name:?} is missing")]
    MissingCounter {
        file: &'static str,
        name: &'static str,
    },
}

impl ParseError {
    /// The file the error is about, e.g. `/proc/net/snmp`.
    pub fn file(&self) -> &'static str {
        match self {
            ParseError::Empty { file }
            | ParseError::Unexpected { file, .. }
            | ParseError::MissingColumn { file, .. }
            | ParseError::NotANumber { file, .. }
            | ParseError::MissingSection { file, .. }
            | ParseError::MissingCounter { file, .. } => file,
        }
    }

    /// The 1-based line the problem was found on, when it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Unexpected { line, .. }
            | ParseError::MissingColumn { line, .. }
            | ParseError::NotANumber { line, .. } => Some(*line),
            ParseError::Empty { .. }
            | ParseError::MissingSection { .. }
            | ParseError::MissingCounter { .. } => None,
        }
    }
}

/// Quotes at most a short prefix of the offending input: garbage input must not
/// turn into a multi-kilobyte error message in the event log.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 60;
    match s.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

/// A counter source failed to produce a sample (or a part of one).
///
/// The I/O variants carry the `io::Error` in their message rather than as a
/// `source()`, so `to_string()` alone (what a `source_error` event records) says
/// everything without duplicating it in error chains.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: io::Error },

    #[error(transparent)]
    Parse(#[from] ParseError),

    /// The kernel refused the request: the process lacks a privilege. `levee
    /// watch` turns this into "connection counts need CAP_NET_ADMIN/root".
    #[error("connection counts need CAP_NET_ADMIN/root: sock_diag {op}: {error}")]
    PermissionDenied { op: &'static str, error: io::Error },

    #[error("sock_diag {op}: {error}")]
    Netlink { op: &'static str, error: io::Error },

    /// The kernel's reply did not decode; a kernel/crate mismatch or a bug.
    #[error("sock_diag: malformed reply from the kernel: {0}")]
    Protocol(String),

    #[error("recorded samples, line {line}: not a RawSample JSON object: {error}")]
    Recording {
        line: usize,
        error: serde_json::Error,
    },

    /// A [`crate::RecordedSource`] has replayed every sample.
    #[error("recorded samples: end of recording")]
    EndOfRecording,
}

impl SourceError {
    /// Maps a failed sock_diag system call, keeping EPERM/EACCES distinct so
    /// callers can tell "needs privilege" from "broken".
    pub(crate) fn netlink(op: &'static str, error: io::Error) -> SourceError {
        match error.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => SourceError::PermissionDenied { op, error },
            _ if error.kind() == io::ErrorKind::PermissionDenied => {
                SourceError::PermissionDenied { op, error }
            }
            _ => SourceError::Netlink { op, error },
        }
    }

    /// True for [`SourceError::PermissionDenied`].
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, SourceError::PermissionDenied { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_and_eacces_are_permission_denied() {
        for errno in [libc::EPERM, libc::EACCES] {
            let e = SourceError::netlink("dump", io::Error::from_raw_os_error(errno));
            assert!(e.is_permission_denied(), "{e}");
            assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        }
        let e = SourceError::netlink("dump", io::Error::from_raw_os_error(libc::EINVAL));
        assert!(!e.is_permission_denied());
    }

    #[test]
    fn excerpt_is_bounded_and_char_safe() {
        let long = "é".repeat(500);
        let e = excerpt(&long);
        assert!(e.chars().count() <= 63);
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn parse_error_names_file_and_line() {
        let e = ParseError::NotANumber {
            file: "/proc/net/dev",
            line: 3,
            column: "Receive bytes".into(),
            found: "x".into(),
        };
        assert_eq!(e.file(), "/proc/net/dev");
        assert_eq!(e.line(), Some(3));
        assert!(e.to_string().starts_with("/proc/net/dev line 3:"));
    }
}
