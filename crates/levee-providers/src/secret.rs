//! Credentials: where they come from (an environment variable or a file,
//! never the config file itself) and a [`Secret`] wrapper whose `Debug` and
//! `Display` print `***`, so a secret cannot reach a log line or an error
//! message by accident.

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// A secret value. Read it with [`Secret::expose`], only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret lives: `{ env = "CF_API_TOKEN" }` or
/// `{ file = "/etc/levee/cf.token" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    pub fn env(name: &str) -> Self {
        SecretRef {
            env: Some(name.to_string()),
            file: None,
        }
    }

    /// Reads the secret. A file's content is trimmed of surrounding
    /// whitespace (editors add a final newline).
    pub fn load(&self) -> Result<Secret, String> {
        match (&self.env, &self.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                Ok(_) => Err(format!("environment variable {var} is empty")),
                Err(_) => Err(format!(
                    "environment variable {var} is not set (export it, or use {{ file = \"...\" }})"
                )),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
                Ok(_) => Err(format!("secret file {} is empty", path.display())),
                Err(e) => Err(format!("cannot read secret file {}: {e}", path.display())),
            },
            _ => Err("give exactly one of `env` (a variable name) or `file` (a path)".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    }

    #[test]
    fn file_secrets_are_trimmed_and_missing_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "abc\n").unwrap();
        let r = SecretRef {
            env: None,
            file: Some(p.clone()),
        };
        assert_eq!(r.load().unwrap().expose(), "abc");
        let missing = SecretRef::env("LEVEE_TEST_SURELY_UNSET_VAR");
        assert!(missing
            .load()
            .unwrap_err()
            .contains("LEVEE_TEST_SURELY_UNSET_VAR is not set"));
        let both = SecretRef {
            env: Some("X".into()),
            file: Some(p),
        };
        assert!(both.load().unwrap_err().contains("exactly one"));
    }
}
