//! The agent's state directory: the baseline snapshot, written atomically and
//! read back at start, so a restarted agent keeps what it learnt; and the
//! server's policy in force, so a restart without the server keeps it too.
//!
//! A snapshot that cannot be used (corrupt, another format version, too old) is
//! never fatal: it is set aside with a reason and the agent learns afresh.

use levee_detector::BaselineSnapshot;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SNAPSHOT_FILE: &str = "baseline.json";
/// The policy in force (the uplink keeps what the server sent in `policy.json`).
pub const POLICY_FILE: &str = "policy-applied.json";

#[derive(Debug, thiserror::Error)]
#[error("state directory {path}: {source} (choose another with --state-dir DIR)")]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Why a snapshot on disk was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum Unusable {
    Corrupt { moved_to: PathBuf, reason: String },
    Stale { age: Duration },
}

#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Creates the directory (mode 0700: baselines reveal traffic patterns).
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let err = |source| StateError {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The last policy from the server this agent applied (and reported).
    pub fn policy_path(&self) -> PathBuf {
        self.dir.join(POLICY_FILE)
    }

    /// Saves the policy in force, atomically.
    pub fn save_policy(&self, policy: &levee_proto::Policy) -> Result<(), StateError> {
        let text = serde_json::to_vec_pretty(policy).expect("a policy serialises");
        self.write_atomic(POLICY_FILE, &text)
    }

    /// Writes to a temporary file, syncs it and renames it over the old one, so
    /// a crash mid-write leaves the previous file intact.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let err = |source| StateError {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// The policy saved by [`save_policy`](Self::save_policy); `None` when
    /// there is none or it cannot be read (then the config alone applies,
    /// until the server sends the policy again).
    pub fn load_policy(&self) -> Option<levee_proto::Policy> {
        let path = self.policy_path();
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("{}: {e}; running without the saved policy", path.display());
                None
            }
        }
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    /// Writes to a temporary file, syncs it and renames it over the old one, so
    /// a crash mid-write leaves the previous snapshot intact.
    pub fn save_snapshot(&self, snap: &BaselineSnapshot) -> Result<(), StateError> {
        self.write_atomic(SNAPSHOT_FILE, snap.to_json().as_bytes())
    }

    /// Loads the snapshot if there is a usable one.
    pub fn load_snapshot(
        &self,
        now_unix_ms: i64,
        max_age: Duration,
    ) -> Result<Option<BaselineSnapshot>, Unusable> {
        let path = self.snapshot_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.set_aside(&path, e.to_string())),
        };
        let snap = match BaselineSnapshot::from_json(&text) {
            Ok(s) => s,
            Err(e) => return Err(self.set_aside(&path, e.to_string())),
        };
        let age_ms = now_unix_ms.saturating_sub(snap.saved_unix_ms).max(0) as u64;
        let age = Duration::from_millis(age_ms);
        if age > max_age {
            return Err(Unusable::Stale { age });
        }
        Ok(Some(snap))
    }

    /// Keeps a bad snapshot for inspection instead of deleting evidence.
    fn set_aside(&self, path: &Path, reason: String) -> Unusable {
        let moved_to = self.dir.join(format!("{SNAPSHOT_FILE}.corrupt"));
        let _ = std::fs::rename(path, &moved_to);
        Unusable::Corrupt { moved_to, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_detector::{Detector, DetectorSettings};

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::open(&dir.path().join("state")).unwrap();
        assert_eq!(st.load_snapshot(0, Duration::from_secs(60)), Ok(None));
        let snap = Detector::new(DetectorSettings::default(), 1).snapshot(1_000);
        st.save_snapshot(&snap).unwrap();
        assert_eq!(
            st.load_snapshot(2_000, Duration::from_secs(60)).unwrap(),
            Some(snap)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn stale_snapshot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::open(dir.path()).unwrap();
        st.save_snapshot(&Detector::new(DetectorSettings::default(), 1).snapshot(0))
            .unwrap();
        assert!(matches!(
            st.load_snapshot(120_000, Duration::from_secs(60)),
            Err(Unusable::Stale { .. })
        ));
    }

    #[test]
    fn corrupt_snapshot_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::open(dir.path()).unwrap();
        std::fs::write(st.snapshot_path(), "{not json").unwrap();
        let Err(Unusable::Corrupt { moved_to, .. }) = st.load_snapshot(0, Duration::from_secs(60))
        else {
            panic!("expected corrupt")
        };
        assert!(moved_to.exists());
        assert!(!st.snapshot_path().exists());
        assert_eq!(st.load_snapshot(0, Duration::from_secs(60)), Ok(None));
    }
}
