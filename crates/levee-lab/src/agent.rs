//! Runs the `levee` agent inside the victim namespace and reads its events.
//!
//! The agent is started as
//! `ip netns exec <victim-ns> <levee> agent --interface <victim-if> --tick …
//!  --baseline-warmup … --quiet-period … --events-file <work>/events.jsonl
//!  --state-dir <work>/state --node lab-victim [extra args]`.
//! `ip netns exec` execs the program (it does not fork), so the pid we spawn is
//! the agent's own pid: CPU and memory are read from `/proc/<pid>` and
//! [`AgentProcess::exe`] shows the binary to prove it.
//!
//! A reader thread turns stdout lines into [`ReceivedEvent`]s (JSON value plus
//! local receive time) and also copies them to `<work>/agent-<n>.stdout.log`;
//! stderr goes to `<work>/agent-<n>.stderr.log` and is printed when the owning
//! test panics.

use crate::clock::{cli_duration, wall_ms};
use crate::error::{LabError, Result};
use crate::lab::{Lab, Ns};
use crate::procfs::{self, NetDevRow, ProcSample};
use levee_model::timefmt::parse_rfc3339;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the agent is started.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The `levee` binary.
    pub bin: PathBuf,
    /// Directory for the events file, state dir and logs.
    pub work_dir: PathBuf,
    pub tick: Duration,
    pub baseline_warmup: Duration,
    pub quiet_period: Duration,
    pub node: String,
    /// Interfaces to watch; empty means the lab's victim interface.
    pub interfaces: Vec<String>,
    /// Appended after the standard flags.
    pub extra_args: Vec<String>,
}

impl AgentOptions {
    /// Defaults for lab tests: 100 ms ticks, 10 s warmup, 3 s quiet period,
    /// node `lab-victim`, the victim interface.
    pub fn new(bin: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        AgentOptions {
            bin: bin.into(),
            work_dir: work_dir.into(),
            tick: Duration::from_millis(100),
            baseline_warmup: Duration::from_secs(10),
            quiet_period: Duration::from_secs(3),
            node: "lab-victim".into(),
            interfaces: Vec::new(),
            extra_args: Vec::new(),
        }
    }

    pub fn events_file(&self) -> PathBuf {
        self.work_dir.join("events.jsonl")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.work_dir.join("state")
    }

    /// The agent's arguments (after the binary).
    pub fn args(&self, default_interface: &str) -> Vec<String> {
        let mut a = vec!["agent".to_string()];
        let ifaces: Vec<&str> = if self.interfaces.is_empty() {
            vec![default_interface]
        } else {
            self.interfaces.iter().map(String::as_str).collect()
        };
        for i in ifaces {
            a.extend(["--interface".into(), i.to_string()]);
        }
        a.extend([
            "--tick".into(),
            cli_duration(self.tick),
            "--baseline-warmup".into(),
            cli_duration(self.baseline_warmup),
            "--quiet-period".into(),
            cli_duration(self.quiet_period),
            "--events-file".into(),
            self.events_file().to_string_lossy().into_owned(),
            "--state-dir".into(),
            self.state_dir().to_string_lossy().into_owned(),
            "--node".into(),
            self.node.clone(),
        ]);
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// One event line from the agent, with when we read it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub value: Value,
    pub received_wall_ms: i64,
    pub received_at: Instant,
}

impl ReceivedEvent {
    /// The `event` field (`""` if absent).
    pub fn kind(&self) -> &str {
        self.str("event").unwrap_or("")
    }

    /// The `ts` field as ms since the epoch.
    pub fn ts_ms(&self) -> Option<i64> {
        self.str("ts").and_then(parse_rfc3339)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key)?.as_str()
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.value.get(key)?.as_f64()
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.value.get(key)?.as_u64()
    }
}

enum Line {
    Event(ReceivedEvent),
    Noise(String),
}

/// The running agent. Dropping it SIGKILLs the agent if it still runs, and
/// prints its stderr and last events if the thread is panicking.
pub struct AgentProcess {
    child: Child,
    rx: Receiver<Line>,
    reader: Option<JoinHandle<()>>,
    events: Vec<ReceivedEvent>,
    consumed: Vec<bool>,
    noise: Vec<String>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    command: String,
    spawned_at: Instant,
    spawned_wall_ms: i64,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for AgentProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentProcess")
            .field("pid", &self.child.id())
            .field("command", &self.command)
            .field("events", &self.events.len())
            .finish()
    }
}

impl AgentProcess {
    /// Starts the agent in the lab's victim namespace.
    pub fn spawn(lab: &Lab, opts: &AgentOptions) -> Result<AgentProcess> {
        std::fs::create_dir_all(&opts.work_dir)
            .map_err(|e| LabError::io("create", &opts.work_dir, e))?;
        let n = (0..)
            .find(|n| !opts.work_dir.join(format!("agent-{n}.stderr.log")).exists())
            .unwrap_or(0);
        let stderr_log = opts.work_dir.join(format!("agent-{n}.stderr.log"));
        let stdout_log = opts.work_dir.join(format!("agent-{n}.stdout.log"));
        let stderr =
            File::create(&stderr_log).map_err(|e| LabError::io("create", &stderr_log, e))?;
        let mut stdout_copy =
            File::create(&stdout_log).map_err(|e| LabError::io("create", &stdout_log, e))?;

        let bin = opts.bin.to_string_lossy().into_owned();
        let mut cmd = lab.command_in(Ns::Victim, &bin);
        cmd.args(opts.args(lab.victim_if()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let command = crate::cmd::describe(&cmd);
        let spawned_wall_ms = wall_ms();
        let spawned_at = Instant::now();
        let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LabError::Other(format!("no stdout pipe for `{command}`")))?;

        let (tx, rx) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("levee-agent-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let received_wall_ms = wall_ms();
                    let received_at = Instant::now();
                    let _ = writeln!(stdout_copy, "{line}");
                    let msg = match serde_json::from_str::<Value>(&line) {
                        Ok(value) if value.is_object() => Line::Event(ReceivedEvent {
                            value,
                            received_wall_ms,
                            received_at,
                        }),
                        _ => Line::Noise(line),
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| LabError::Other(format!("cannot start stdout reader thread: {e}")))?;

        Ok(AgentProcess {
            child,
            rx,
            reader: Some(reader),
            events: Vec::new(),
            consumed: Vec::new(),
            noise: Vec::new(),
            stdout_log,
            stderr_log,
            command,
            spawned_at,
            spawned_wall_ms,
            status: None,
        })
    }

    /// The agent's pid (`ip netns exec` execs, so this is the agent itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The full command line used.
    pub fn command(&self) -> &str {
        &self.command
    }

    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    pub fn spawned_wall_ms(&self) -> i64 {
        self.spawned_wall_ms
    }

    /// The executable the pid runs now (`/proc/<pid>/exe`).
    pub fn exe(&self) -> Result<PathBuf> {
        let p = PathBuf::from(format!("/proc/{}/exe", self.pid()));
        std::fs::read_link(&p).map_err(|e| LabError::io("readlink", &p, e))
    }

    fn accept(&mut self, line: Line) {
        match line {
            Line::Event(e) => {
                self.events.push(e);
                self.consumed.push(false);
            }
            Line::Noise(s) => self.noise.push(s),
        }
    }

    /// Moves everything the reader has delivered into `events`.
    pub fn poll(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            self.accept(line);
        }
    }

    /// Every event received so far, in order.
    pub fn events(&mut self) -> &[ReceivedEvent] {
        self.poll();
        &self.events
    }

    /// Every event of `kind` received so far.
    pub fn events_of(&mut self, kind: &str) -> Vec<ReceivedEvent> {
        self.poll();
        self.events
            .iter()
            .filter(|e| e.kind() == kind)
            .cloned()
            .collect()
    }

    /// Non-JSON lines the agent printed on stdout.
    pub fn noise(&mut self) -> &[String] {
        self.poll();
        &self.noise
    }

    /// Waits up to `timeout` for the next not yet returned event of `kind`.
    /// Returns `None` on timeout or when the agent's stdout closed.
    pub fn wait_for_event(&mut self, kind: &str, timeout: Duration) -> Option<ReceivedEvent> {
        self.wait_for(timeout, |e| e.kind() == kind)
    }

    /// Waits up to `timeout` for the first not yet returned event matching
    /// `pred`, and marks it returned.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&ReceivedEvent) -> bool,
    ) -> Option<ReceivedEvent> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            self.poll();
            for i in checked..self.events.len() {
                if !self.consumed[i] && pred(&self.events[i]) {
                    self.consumed[i] = true;
                    return Some(self.events[i].clone());
                }
            }
            checked = self.events.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(left) {
                Ok(line) => self.accept(line),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    // Stdout closed: check what arrived last, then give up.
                    self.poll();
                    let found = (checked..self.events.len())
                        .find(|&i| !self.consumed[i] && pred(&self.events[i]));
                    return found.map(|i| {
                        self.consumed[i] = true;
                        self.events[i].clone()
                    });
                }
            }
        }
    }

    /// Whether the agent process still runs.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_none()
    }

    /// The exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.is_running();
        self.status
    }

    /// SIGTERM, then waits up to 10 s for exit (SIGKILL and an error after
    /// that) and for stdout to close, so `agent_stopped` is in [`events`](Self::events).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_within(Duration::from_secs(10))
    }

    /// [`stop`](Self::stop) with an explicit limit.
    pub fn stop_within(&mut self, limit: Duration) -> Result<ExitStatus> {
        if self.is_running() {
            self.signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        while self.is_running() {
            if Instant::now() >= deadline {
                self.kill();
                return Err(LabError::Other(format!(
                    "agent pid {} did not exit within {limit:?} of SIGTERM; killed it (`{}`)",
                    self.pid(),
                    self.command
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.finish_reader();
        self.status
            .ok_or_else(|| LabError::Other("agent exit status unknown".into()))
    }

    /// SIGKILL and reap (no `agent_stopped`, no saved state).
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.finish_reader();
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, sig);
        }
    }

    /// Collects the remaining stdout after exit (bounded, in case a grandchild
    /// keeps the pipe open).
    fn finish_reader(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.accept(line),
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(h) = self.reader.take() {
                        let _ = h.join();
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => return,
            }
        }
    }

    /// CPU time and memory now.
    pub fn sample(&self) -> Result<ProcSample> {
        procfs::sample(self.pid())
    }

    /// The counters of `iface` in the agent's namespace (read via
    /// `/proc/<agent-pid>/net/dev`, no fork).
    pub fn net_dev(&self, iface: &str) -> Result<NetDevRow> {
        procfs::net_dev_of_pid(self.pid(), iface)
    }

    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    pub fn stdout_log(&self) -> &Path {
        &self.stdout_log
    }

    /// Stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// A report for failing tests: command, exit status, stderr tail, stray
    /// stdout lines and the last events.
    pub fn diagnostics(&mut self) -> String {
        self.poll();
        let status = self.exit_status();
        let stderr = self.stderr_text();
        let tail: Vec<&str> = stderr.lines().rev().take(60).collect();
        let mut s = format!(
            "agent `{}` (pid {}) status: {}\n--- stderr (last {} lines of {}) ---\n",
            self.command,
            self.pid(),
            status.map_or("running".to_string(), |s| s.to_string()),
            tail.len(),
            self.stderr_log.display()
        );
        for l in tail.iter().rev() {
            s.push_str(l);
            s.push('\n');
        }
        if !self.noise.is_empty() {
            s.push_str("--- non-JSON stdout lines ---\n");
            for l in self.noise.iter().rev().take(20).rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s.push_str(&format!(
            "--- last events ({} total) ---\n",
            self.events.len()
        ));
        for e in self.events.iter().rev().take(20).rev() {
            s.push_str(&e.value.to_string());
            s.push('\n');
        }
        s
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_follow_the_cli_contract() {
        let mut o = AgentOptions::new("/bin/levee", "/tmp/w");
        o.extra_args = vec!["--config".into(), "/tmp/c.toml".into()];
        let a = o.args("lv-vic0");
        assert_eq!(
            a,
            [
                "agent",
                "--interface",
                "lv-vic0",
                "--tick",
                "100ms",
                "--baseline-warmup",
                "10s",
                "--quiet-period",
                "3s",
                "--events-file",
                "/tmp/w/events.jsonl",
                "--state-dir",
                "/tmp/w/state",
                "--node",
                "lab-victim",
                "--config",
                "/tmp/c.toml"
            ]
        );
    }

    #[test]
    fn received_event_accessors() {
        let e = ReceivedEvent {
            value: serde_json::json!({"ts": "2026-11-21T01:44:10.123Z", "event": "incident_started", "ratio": 12.5, "restored_samples": 12}),
            received_wall_ms: 0,
            received_at: Instant::now(),
        };
        assert_eq!(e.kind(), "incident_started");
        assert_eq!(e.ts_ms(), Some(1_795_225_450_123));
        assert_eq!(e.f64("ratio"), Some(12.5));
        assert_eq!(e.u64("restored_samples"), Some(12));
        assert_eq!(e.str("missing"), None);
    }
}
