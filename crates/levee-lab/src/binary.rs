//! Finding (and building) the `levee` binary the lab runs.
//!
//! A bin crate cannot be a dev-dependency, and `CARGO_BIN_EXE_levee` only
//! exists inside the `levee` crate's own tests, so:
//! 1. `LEVEE_BIN=/path/to/levee` wins: used as is, nothing is built.
//! 2. Otherwise `cargo build -p levee --bin levee` is run from the workspace
//!    root with the profile (and target dir / target triple) of the running
//!    executable, derived from its path (`target/<profile>/deps/lab-…` for
//!    tests, `target/<profile>/levee-lab-bench` for the benchmark). Cargo makes
//!    this a no-op when the binary is fresh, and it means a lab run never tests
//!    a stale agent. `LEVEE_LAB_NO_BUILD=1` skips the build and only locates.
//! 3. The binary is `<target-dir>/[<triple>/]<profile>/levee`.
//!
//! The result is computed once per process.

use crate::cmd::describe;
use crate::error::{LabError, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the executable lives in a Cargo target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLayout {
    /// The target directory (has `CACHEDIR.TAG`).
    pub target_dir: PathBuf,
    /// `Some(triple)` for `--target <triple>` builds.
    pub triple: Option<String>,
    /// Profile directory name: `debug`, `release` or a custom profile.
    pub profile: String,
    /// `<target-dir>/[<triple>/]<profile>`.
    pub profile_dir: PathBuf,
}

impl TargetLayout {
    /// Derives the layout from an executable's path inside a target dir;
    /// `is_target_dir` says whether a directory is a Cargo target dir.
    pub fn from_exe(exe: &Path, is_target_dir: impl Fn(&Path) -> bool) -> Option<TargetLayout> {
        let mut dir = exe.parent()?;
        if matches!(
            dir.file_name().and_then(|n| n.to_str()),
            Some("deps" | "examples")
        ) {
            dir = dir.parent()?;
        }
        let profile = dir.file_name()?.to_str()?.to_string();
        let up = dir.parent()?;
        if is_target_dir(up) {
            return Some(TargetLayout {
                target_dir: up.to_path_buf(),
                triple: None,
                profile,
                profile_dir: dir.to_path_buf(),
            });
        }
        let upup = up.parent()?;
        if is_target_dir(upup) {
            return Some(TargetLayout {
                target_dir: upup.to_path_buf(),
                triple: Some(up.file_name()?.to_str()?.to_string()),
                profile,
                profile_dir: dir.to_path_buf(),
            });
        }
        None
    }

    /// The `cargo build` arguments for this layout.
    pub fn cargo_args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["build", "-p", "levee", "--bin", "levee"]
            .map(String::from)
            .to_vec();
        match self.profile.as_str() {
            "debug" => {}
            "release" => a.push("--release".into()),
            other => a.extend(["--profile".into(), other.into()]),
        }
        a.extend([
            "--target-dir".into(),
            self.target_dir.to_string_lossy().into_owned(),
        ]);
        if let Some(t) = &self.triple {
            a.extend(["--target".into(), t.clone()]);
        }
        a
    }

    /// The `levee` binary in this layout.
    pub fn levee_path(&self) -> PathBuf {
        self.profile_dir.join("levee")
    }
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `levee` binary, built if needed (see the module docs). Cached per process.
pub fn levee_binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_or_build().map_err(|e| e.to_string()))
        .clone()
        .map_err(LabError::Other)
}

fn find_or_build() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LEVEE_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(LabError::Other(format!(
                "LEVEE_BIN={} is not a file; unset it to build the binary automatically",
                p.display()
            )))
        };
    }
    let exe =
        std::env::current_exe().map_err(|e| LabError::io("locate", "current executable", e))?;
    let layout =
        TargetLayout::from_exe(&exe, |d| d.join("CACHEDIR.TAG").is_file()).ok_or_else(|| {
            LabError::Other(format!(
                "{} is not inside a Cargo target directory; set LEVEE_BIN to the levee binary",
                exe.display()
            ))
        })?;
    let no_build = std::env::var("LEVEE_LAB_NO_BUILD").is_ok_and(|v| v == "1");
    if !no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(layout.cargo_args()).current_dir(workspace_root());
        eprintln!("levee-lab: building the agent: {}", describe(&cmd));
        crate::cmd::run(&mut cmd)?;
    }
    let bin = layout.levee_path();
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(LabError::Other(format!(
            "levee binary not found at {} (build it with `cargo build -p levee` or set LEVEE_BIN)",
            bin.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exe_in_default_layout() {
        let l = TargetLayout::from_exe(Path::new("/w/target/debug/deps/lab-0123abcd"), |d| {
            d == Path::new("/w/target")
        })
        .unwrap();
        assert_eq!(l.profile, "debug");
        assert_eq!(l.triple, None);
        assert_eq!(l.levee_path(), Path::new("/w/target/debug/levee"));
        assert_eq!(
            l.cargo_args(),
            [
                "build",
                "-p",
                "levee",
                "--bin",
                "levee",
                "--target-dir",
                "/w/target"
            ]
        );
    }

    #[test]
    fn release_bench_exe() {
        let l = TargetLayout::from_exe(Path::new("/w/target/release/levee-lab-bench"), |d| {
            d == Path::new("/w/target")
        })
        .unwrap();
        assert!(l.cargo_args().contains(&"--release".to_string()));
        assert_eq!(l.levee_path(), Path::new("/w/target/release/levee"));
    }

    #[test]
    fn triple_and_custom_profile() {
        let l = TargetLayout::from_exe(
            Path::new("/t/x86_64-unknown-linux-gnu/bench2/deps/lab-1"),
            |d| d == Path::new("/t"),
        )
        .unwrap();
        assert_eq!(l.triple.as_deref(), Some("x86_64-unknown-linux-gnu"));
        let a = l.cargo_args();
        assert!(a.windows(2).any(|w| w == ["--profile", "bench2"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["--target", "x86_64-unknown-linux-gnu"]));
        assert_eq!(
            l.levee_path(),
            Path::new("/t/x86_64-unknown-linux-gnu/bench2/levee")
        );
    }

    #[test]
    fn outside_a_target_dir() {
        assert_eq!(
            TargetLayout::from_exe(Path::new("/usr/bin/x"), |_| false),
            None
        );
    }
}
