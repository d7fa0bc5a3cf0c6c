//! The node's credentials: server URL, pinned fingerprint and agent key, in
//! `<state_dir>/uplink.json`, readable by the agent's user only (0600).

use levee_proto::Fingerprint;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const FILE: &str = "uplink.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub server: String,
    pub fingerprint: Fingerprint,
    pub node_id: i64,
    pub node: String,
    pub tenant: String,
    pub agent_key: String,
    /// Seconds between heartbeats, as the server asked at enrollment.
    pub heartbeat_interval_s: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("this node is not enrolled: {path} is missing (run `levee agent --server URL --enroll TOKEN`)")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {detail} (enroll again with --enroll TOKEN)")]
    Read { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Credentials {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE)
    }

    pub fn load(state_dir: &Path) -> Result<Credentials, CredsError> {
        let path = Self::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CredsError::Missing { path })
            }
            Err(e) => {
                return Err(CredsError::Read {
                    path,
                    detail: e.to_string(),
                })
            }
        };
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by others; it holds the agent key (chmod 600 it)",
                    path.display()
                );
            }
        }
        serde_json::from_str(&text).map_err(|e| CredsError::Read {
            path,
            detail: e.to_string(),
        })
    }

    /// Writes atomically with mode 0600 (the key never exists world-readable).
    pub fn save(&self, state_dir: &Path) -> Result<PathBuf, CredsError> {
        let path = Self::path(state_dir);
        let err = |source| CredsError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(err)?;
        let tmp = state_dir.join(format!(".{FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        let text = serde_json::to_string_pretty(self).expect("credentials serialise");
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials {
            server: "https://s:8443".into(),
            fingerprint: Fingerprint([3; 32]),
            node_id: 4,
            node: "web1".into(),
            tenant: "t".into(),
            agent_key: "lva_x".into(),
            heartbeat_interval_s: 10,
        };
        let p = c.save(dir.path()).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Credentials::load(dir.path()).unwrap(), c);
        let other = tempfile::tempdir().unwrap();
        let e = Credentials::load(other.path()).unwrap_err().to_string();
        assert!(e.contains("--enroll"), "{e}");
    }
}
