//! The seam in front of `/proc` and `/sys`: [`ProcFs`], with [`RealProcFs`] for
//! the running kernel and [`FakeProcFs`] (an in-memory map) for tests that run
//! without the files, or with files a test invents.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

/// Reads whole pseudo-files by absolute path (`/proc/net/dev`,
/// `/sys/class/net/eth0/ifindex`).
pub trait ProcFs: Send {
    fn read_to_string(&self, path: &str) -> io::Result<String>;
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealProcFs;

impl ProcFs for RealProcFs {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// An in-memory filesystem. Clones share the same files, so a test can keep one
/// handle and change counters while a [`crate::KernelSource`] owns another.
#[derive(Debug, Clone, Default)]
pub struct FakeProcFs {
    files: Arc<Mutex<HashMap<String, String>>>,
}

impl FakeProcFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates or replaces a file.
    pub fn set(&self, path: impl Into<String>, contents: impl Into<String>) {
        // A poisoned lock only means another test thread panicked; the map is
        // still usable.
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.insert(path.into(), contents.into());
    }

    /// Deletes a file; reading it then fails with `NotFound`.
    pub fn remove(&self, path: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.remove(path);
    }
}

impl ProcFs for FakeProcFs {
    fn read_to_string(&self, path: &str) -> io::Result<String> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_shares_files_between_clones() {
        let a = FakeProcFs::new();
        let b = a.clone();
        a.set("/proc/x", "1");
        assert_eq!(b.read_to_string("/proc/x").unwrap(), "1");
        a.remove("/proc/x");
        assert_eq!(
            b.read_to_string("/proc/x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn real_reads_proc() {
        let text = RealProcFs.read_to_string("/proc/net/dev").unwrap();
        assert!(text.contains("Inter-|"));
    }
}
