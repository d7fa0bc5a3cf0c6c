//! A child process in its own process group, killed (whole group) on drop.
//!
//! Floods run as `timeout … ip netns exec … hping3 …`; `ip netns exec` execs, so
//! hping3 is timeout's child. Killing only `timeout` with SIGKILL would orphan
//! hping3, so we put the child in a new process group and signal the group.

use crate::cmd::describe;
use crate::error::{LabError, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned process group; the whole group gets SIGKILL on drop if still running.
#[derive(Debug)]
pub struct GroupChild {
    child: Child,
    command: String,
    stderr: Option<File>,
    status: Option<ExitStatus>,
}

impl GroupChild {
    /// Spawns `cmd` as leader of a new process group, stdin and stdout from/to
    /// /dev/null and stderr into an anonymous temporary file (read on error).
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let command = describe(&cmd);
        let stderr =
            tempfile::tempfile().map_err(|e| LabError::io("create", "stderr tempfile", e))?;
        let stderr_for_child = stderr
            .try_clone()
            .map_err(|e| LabError::io("clone", "stderr tempfile", e))?;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr_for_child));
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(GroupChild {
            child,
            command,
            stderr: Some(stderr),
            status: None,
        })
    }

    /// The leader's pid (= the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The exit status if the process has ended (reaps it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Whether the leader is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `limit` for the process to end by itself.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the whole group (if the leader has not been reaped yet, so the
    /// group id cannot have been reused) and reaps the leader.
    pub fn kill(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is ours and still exists because its leader is not reaped.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        self.status = self.child.wait().ok();
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_text(&mut self) -> String {
        let Some(f) = self.stderr.as_mut() else {
            return String::new();
        };
        let mut s = String::new();
        if f.seek(SeekFrom::Start(0)).is_ok() {
            let _ = f.read_to_string(&mut s);
        }
        s.trim().to_string()
    }

    /// An error describing an unexpected exit, with stderr.
    pub fn exit_error(&mut self, status: ExitStatus) -> LabError {
        LabError::Command {
            command: self.command.clone(),
            status: status.to_string(),
            stderr: self.stderr_text(),
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_kills_the_whole_group() {
        // sh starts a grandchild sleep; both must die when the handle drops.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo $! >&2; wait"]);
        let mut g = GroupChild::spawn(cmd).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut grandchild = String::new();
        while grandchild.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            grandchild = g.stderr_text();
        }
        let gpid: u32 = grandchild.parse().unwrap();
        assert!(crate::names::pid_alive(gpid));
        drop(g);
        let deadline = Instant::now() + Duration::from_secs(5);
        // The grandchild is reparented and reaped by init; it must disappear
        // (or at least become a zombie, which /proc/<pid>/stat shows as Z).
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{gpid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {gpid} survived: {stat}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn exit_error_carries_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo nope >&2; exit 2"]);
        let mut g = GroupChild::spawn(cmd).unwrap();
        let status = g.wait_timeout(Duration::from_secs(5)).unwrap();
        let msg = g.exit_error(status).to_string();
        assert!(msg.contains("nope") && msg.contains("sh -c"), "{msg}");
    }
}
