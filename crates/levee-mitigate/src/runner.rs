//! The seam in front of every tool: executors describe a [`Cmd`] and a
//! [`CommandRunner`] runs it. Production uses [`SystemRunner`]; unit tests
//! use [`ScriptedRunner`], which records commands and answers from a script,
//! so no test of rendering or bookkeeping needs root.
//!
//! [`SystemRunner::with_prefix`] runs every command under a wrapper such as
//! `ip netns exec <ns>`, which is how the lab drives real tools inside a
//! test's own network namespace.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// One command: program, arguments, optional standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Cmd {
    pub fn new<S: Into<String>>(program: &str, args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
        }
    }

    pub fn with_stdin(mut self, text: impl Into<String>) -> Cmd {
        self.stdin = Some(text.into());
        self
    }

    /// The command line, shell-quoted where needed, so a user can paste it.
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Cmd {
    /// The command line, with standard input as a here-document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stdin {
            None => f.write_str(&self.line()),
            Some(text) => {
                let body = text.strip_suffix('\n').unwrap_or(text);
                write!(f, "{} <<'EOF'\n{body}\nEOF", self.line())
            }
        }
    }
}

/// Quotes `s` for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '=' | '@' | '+' | '%')
        });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(stdout: impl Into<String>) -> CmdOutput {
        CmdOutput {
            status: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn failed(status: i32, stderr: impl Into<String>) -> CmdOutput {
        CmdOutput {
            status,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    pub fn success(&self) -> bool {
        self.status == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{command}` could not be started: {source} (is the tool installed and on PATH?)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` exited with status {status}: {stderr}")]
    Failed {
        command: String,
        status: i32,
        stderr: String,
    },
}

/// Runs commands. Implementations must not interpret the output.
pub trait CommandRunner: Send {
    /// Runs `cmd` to completion; a non-zero exit is *not* an error here
    /// (some tools use exit codes as answers).
    fn run(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError>;

    /// Runs `cmd` and fails on a non-zero exit, with its stderr.
    fn check(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let out = self.run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(RunError::Failed {
                command: cmd.to_string(),
                status: out.status,
                stderr: out.stderr.trim().to_string(),
            })
        }
    }
}

impl<T: CommandRunner + ?Sized> CommandRunner for Box<T> {
    fn run(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        (**self).run(cmd)
    }
}

/// Runs real processes, optionally under a wrapper (e.g. `ip netns exec NS`).
#[derive(Debug, Clone, Default)]
pub struct SystemRunner {
    prefix: Vec<String>,
    env: Vec<(String, String)>,
}

impl SystemRunner {
    pub fn new() -> SystemRunner {
        SystemRunner::default()
    }

    /// Every command runs as `prefix... program args...`.
    pub fn with_prefix<S: Into<String>>(prefix: impl IntoIterator<Item = S>) -> SystemRunner {
        SystemRunner {
            prefix: prefix.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }

    /// Runs every command inside network namespace `ns` (`ip netns exec`).
    pub fn in_netns(ns: &str) -> SystemRunner {
        SystemRunner::with_prefix(["ip", "netns", "exec", ns])
    }

    /// Sets an environment variable for every command.
    pub fn env(mut self, key: &str, value: &str) -> SystemRunner {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

impl CommandRunner for SystemRunner {
    fn run(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let argv: Vec<&str> = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(cmd.program.as_str()))
            .chain(cmd.args.iter().map(String::as_str))
            .collect();
        let mut c = Command::new(resolve(argv[0]));
        c.args(&argv[1..])
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Tools print messages we parse; keep them in English.
        c.env("LC_ALL", "C");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let spawn_err = |source| RunError::Spawn {
            command: argv.join(" "),
            source,
        };
        let mut child = c.spawn().map_err(spawn_err)?;
        if let Some(text) = &cmd.stdin {
            if let Some(mut pipe) = child.stdin.take() {
                // A tool that exits early closes the pipe; its exit status
                // then tells what went wrong, so a write error is not reported.
                let _ = pipe.write_all(text.as_bytes());
            }
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        Ok(CmdOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// `program` found on `PATH` or in the sbin directories (where Debian puts
/// `nft`, `ip`, `iptables`; a service's PATH may lack them), else as given.
pub fn resolve(program: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return program.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(std::path::PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| program.into())
}

/// Runs nothing: every command fails to start. For previews, which render
/// commands and must never execute one.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseRunner;

impl CommandRunner for RefuseRunner {
    fn run(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        Err(RunError::Spawn {
            command: cmd.line(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "a preview runs no command",
            ),
        })
    }
}

type Responder = Box<dyn FnMut(&Cmd) -> Option<CmdOutput> + Send>;

/// A fake for unit tests: records every command; answers with the first
/// responder that claims it, else with queued outputs, else success with
/// empty output.
#[derive(Clone, Default)]
pub struct ScriptedRunner {
    inner: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    log: Vec<Cmd>,
    queued: VecDeque<CmdOutput>,
    responders: Vec<Responder>,
}

impl ScriptedRunner {
    pub fn new() -> ScriptedRunner {
        ScriptedRunner::default()
    }

    /// Answers matching commands with `f`'s output.
    pub fn respond(&self, f: impl FnMut(&Cmd) -> Option<CmdOutput> + Send + 'static) {
        self.lock().responders.push(Box::new(f));
    }

    /// Queues the output of the next command no responder claims.
    pub fn push(&self, out: CmdOutput) {
        self.lock().queued.push_back(out);
    }

    /// Every command run so far.
    pub fn log(&self) -> Vec<Cmd> {
        self.lock().log.clone()
    }

    /// Every command line run so far, with stdin (for assertions).
    pub fn lines(&self) -> Vec<String> {
        self.log().iter().map(|c| c.to_string()).collect()
    }

    pub fn clear(&self) {
        self.lock().log.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        // A panicking test thread poisons the lock; the log is still useful.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CommandRunner for ScriptedRunner {
    fn run(&mut self, cmd: &Cmd) -> Result<CmdOutput, RunError> {
        let mut s = self.lock();
        s.log.push(cmd.clone());
        for r in s.responders.iter_mut() {
            if let Some(out) = r(cmd) {
                return Ok(out);
            }
        }
        Ok(s.queued.pop_front().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_display() {
        assert_eq!(shell_quote("10.0.0.2/32"), "10.0.0.2/32");
        assert_eq!(shell_quote("levee:a b"), "'levee:a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let c = Cmd::new("nft", ["-f", "-"]).with_stdin("add table inet levee\n");
        assert_eq!(c.to_string(), "nft -f - <<'EOF'\nadd table inet levee\nEOF");
    }

    #[test]
    fn system_runner_runs_and_reports() {
        let mut r = SystemRunner::new();
        let out = r
            .run(&Cmd::new("sh", ["-c", "cat; echo err >&2; exit 3"]).with_stdin("hi"))
            .unwrap();
        assert_eq!((out.status, out.stdout.as_str()), (3, "hi"));
        assert_eq!(out.stderr, "err\n");
        let e = r.check(&Cmd::new("sh", ["-c", "exit 4"])).unwrap_err();
        assert!(e.to_string().contains("status 4"), "{e}");
        let e = r
            .run(&Cmd::new("levee-no-such-tool", Vec::<String>::new()))
            .unwrap_err();
        assert!(e.to_string().contains("levee-no-such-tool"), "{e}");
        let mut p = SystemRunner::with_prefix(["env", "X=1"]);
        let out = p.run(&Cmd::new("sh", ["-c", "echo $X"])).unwrap();
        assert_eq!(out.stdout, "1\n");
    }

    #[test]
    fn scripted_runner_records_and_answers() {
        let s = ScriptedRunner::new();
        s.respond(|c| (c.program == "nft").then(|| CmdOutput::ok("{}")));
        s.push(CmdOutput::failed(1, "nope"));
        let mut r = s.clone();
        assert_eq!(r.run(&Cmd::new("nft", ["-j"])).unwrap().stdout, "{}");
        assert!(r.check(&Cmd::new("ip", ["x"])).is_err());
        assert!(r.run(&Cmd::new("ip", ["y"])).unwrap().success());
        assert_eq!(s.lines(), ["nft -j", "ip x", "ip y"]);
    }
}
