//! A throw-away PostgreSQL cluster for tests and benchmarks: `initdb` into a
//! temporary directory, `pg_ctl start` on a free loopback port, `pg_ctl stop`
//! and removal on drop.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to the
//! `postgres` system user (created by the Debian package `postgresql`) and its
//! tools run under that uid; as any other user they run as that user.
//!
//! Prerequisite rule as for the lab: missing binaries fail under `CI=true` and
//! skip loudly otherwise ([`require_postgres`]).

use crate::cmd::which;
use crate::error::{LabError, Result};
use crate::prereq::{decide, is_ci, Decision};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian installs the server binaries (`/usr/lib/postgresql/<major>/bin`).
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `PATH` first, then
/// the newest `/usr/lib/postgresql/<major>/bin`.
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(initdb) = which("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent() {
            if dir.join("pg_ctl").exists() && dir.join("postgres").exists() {
                return Some(dir.to_path_buf());
            }
        }
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_LIB)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// What is missing to start a cluster here.
pub fn missing_postgres() -> Vec<String> {
    let mut missing = Vec::new();
    if pg_bin_dir().is_none() {
        missing.push(
            "PostgreSQL server binaries `initdb`, `pg_ctl`, `postgres` (Debian package postgresql)"
                .to_string(),
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && postgres_user().is_none() {
        missing.push("the `postgres` system user (created by the Debian package postgresql); PostgreSQL will not run as root".to_string());
    }
    missing
}

/// `None`: go ahead. `Some(reason)`: not on CI and PostgreSQL is missing; a
/// loud message was printed and the caller should return early.
///
/// # Panics
/// When PostgreSQL is missing and `CI=true`.
pub fn require_postgres() -> Option<String> {
    match decide(missing_postgres(), is_ci()) {
        Decision::Run => None,
        Decision::Fail(msg) => {
            panic!("{msg} (PostgreSQL tests need the Debian package postgresql)")
        }
        Decision::Skip(skip) => {
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING POSTGRESQL TEST: {skip}\n!!! (with CI=true this is a failure)\n{bar}\n"
            );
            Some(skip.to_string())
        }
    }
}

/// (uid, gid) of the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: getpwnam with a valid C string; the result is read at once,
    // before any other call that could overwrite the static buffer.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    }
}

/// A running throw-away cluster. Dropping it stops the server (fast
/// shutdown) and deletes its directory.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<(u32, u32)>,
    stopped: bool,
}

impl PgCluster {
    /// `initdb` + `pg_ctl start` with trust authentication on 127.0.0.1 only.
    /// `settings` are extra `-c name=value` server settings.
    pub fn start(settings: &[(&str, &str)]) -> Result<PgCluster> {
        let bin = pg_bin_dir().ok_or_else(|| {
            LabError::Other(
                "PostgreSQL binaries not found (install the Debian package postgresql)".into(),
            )
        })?;
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user().ok_or_else(|| {
                LabError::Other(
                    "running as root and there is no `postgres` user to run PostgreSQL as".into(),
                )
            })?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("levee-pg-")
            .tempdir()
            .map_err(|e| LabError::io("create temp dir", std::env::temp_dir(), e))?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid)?;
        }
        let port = free_port()?;
        let mut cluster = PgCluster {
            bin,
            dir,
            port,
            run_as,
            stopped: true,
        };
        let data = cluster.data_dir();
        let data_s = data.to_string_lossy().into_owned();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )?;
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off",
            cluster.dir.path().display()
        );
        for (k, v) in settings {
            opts.push_str(&format!(" -c {k}={v}"));
        }
        let log = cluster.dir.path().join("postgres.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data_s,
                "-l",
                &log.to_string_lossy(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        cluster.stopped = false;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args)
            .stdin(Stdio::null())
            .current_dir(self.dir.path())
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        crate::cmd::run(&mut cmd).map(|_| ())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database (through `psql` against the template database).
    pub fn create_db(&self, name: &str) -> Result<String> {
        let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(LabError::Other(format!("bad database name `{name}`")));
        }
        let port = self.port.to_string();
        let sql = format!("CREATE DATABASE {name}");
        let psql = crate::cmd::which("psql")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.bin.join("psql").to_string_lossy().into_owned());
        let mut cmd = Command::new(psql);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &sql,
        ])
        .stdin(Stdio::null());
        crate::cmd::run(&mut cmd)?;
        Ok(self.url(name))
    }

    /// The postmaster's pid (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The postmaster and its children (backends, background workers).
    pub fn pids(&self) -> Vec<u32> {
        let Some(pm) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![pm];
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|st| {
                        // Fields after the parenthesised command name: state, ppid, ...
                        st.rsplit_once(')')?
                            .1
                            .split_whitespace()
                            .nth(1)?
                            .parse::<u32>()
                            .ok()
                    });
                if ppid == Some(pm) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let data = self.data_dir().to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("levee-lab: stopping the test PostgreSQL failed: {e}");
        }
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| LabError::io("chown", path, e))
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| {
        LabError::Other(format!("cannot bind 127.0.0.1:0 to find a free port: {e}"))
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| LabError::Other(format!("local_addr: {e}")))
}
