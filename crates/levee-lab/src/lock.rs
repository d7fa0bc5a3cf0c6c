//! The lab lock: one lab at a time on this machine.
//!
//! Floods on a 2-core machine interfere with each other (and with timing
//! measurements), so every lab user holds an exclusive `flock` on
//! [`LOCK_PATH`]. `flock` locks belong to the open file description, so two
//! tests in one process block each other just like two processes do.

use crate::error::{LabError, Result};
use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// The lock file shared by every lab user on the machine.
pub const LOCK_PATH: &str = "/tmp/levee-lab.lock";

/// An exclusive hold on the lab lock, released on drop.
#[derive(Debug)]
pub struct LabLock {
    file: File,
}

impl LabLock {
    /// Blocks until the lab lock is ours; says so on stderr if it has to wait.
    pub fn acquire() -> Result<Self> {
        Self::acquire_at(Path::new(LOCK_PATH))
    }

    /// Like [`LabLock::acquire`] with another lock file (for tests).
    pub fn acquire_at(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| LabError::io("open lab lock", path, e))?;
        if file.try_lock_exclusive().is_err() {
            eprintln!(
                "levee-lab: waiting for the lab lock {} (another lab test or benchmark is running)",
                path.display()
            );
            file.lock_exclusive()
                .map_err(|e| LabError::io("lock", path, e))?;
        }
        Ok(LabLock { file })
    }
}

impl Drop for LabLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first is explicit.
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = LabLock::acquire_at(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let t = std::thread::spawn(move || {
            let _second = LabLock::acquire_at(&p).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
