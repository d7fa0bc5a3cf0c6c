//! Running external commands with errors that name the command line and carry
//! its stderr, and finding tools on `PATH` (plus the sbin directories, where
//! Debian puts `ip` and `hping3`).

use crate::error::{LabError, Result};
use std::path::PathBuf;
use std::process::{Command, Output};

/// The command line as one string, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; a non-zero exit is an error carrying stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().map_err(|source| LabError::Spawn {
        command: describe(cmd),
        source,
    })?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}

/// Runs a program with arguments; see [`run`].
pub fn run_args(program: &str, args: &[&str]) -> Result<Output> {
    run(Command::new(program).args(args))
}

/// Finds `name` on `PATH`, then in `/usr/sbin`, `/sbin`, `/usr/bin`, `/bin`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// The absolute path of `name` if found, else `name` itself (so a later spawn
/// error names it).
pub fn tool(name: &str) -> String {
    which(name)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_command_lines() {
        let mut c = Command::new("ip");
        c.args(["netns", "add", "x"]);
        assert_eq!(describe(&c), "ip netns add x");
    }

    #[test]
    fn failing_command_error_names_it_and_carries_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run_args("/nonexistent/levee-lab-nope", &[]).unwrap_err();
        assert!(matches!(err, LabError::Spawn { .. }), "{err}");
    }

    #[test]
    fn finds_sh() {
        assert!(which("sh").is_some());
        assert!(which("levee-lab-definitely-missing").is_none());
    }
}
