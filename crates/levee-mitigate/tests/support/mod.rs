//! Shared helpers of the mitigation lab tests: prerequisites (root, the lab
//! tools and the firewall tool under test), a runner inside the victim
//! namespace, and the victim's delivered packet rate.
#![allow(dead_code)]

use levee_lab::cmd::which;
use levee_lab::prereq::{decide, is_ci, Decision};
use levee_lab::{require_lab, Lab, Ns};
use levee_mitigate::runner::SystemRunner;
use std::io::Write;
use std::time::{Duration, Instant};

/// A lab plus what the tests need around it.
pub struct Ctx {
    pub lab: Lab,
    pub work: tempfile::TempDir,
}

/// `None` (after a loud message) when the lab or one of `tools` (tool,
/// Debian package) is missing and we are not on CI; panics on CI.
pub fn ctx(tools: &[(&str, &str)]) -> Option<Ctx> {
    if require_lab().is_some() {
        return None;
    }
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| which(t).is_none())
        .map(|(t, p)| format!("`{t}` (Debian package {p})"))
        .collect();
    match decide(missing, is_ci()) {
        Decision::Run => {}
        Decision::Fail(msg) => panic!("{msg}"),
        Decision::Skip(skip) => {
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING MITIGATION LAB TEST: {skip}\n!!! (with CI=true this is a failure)\n{bar}\n"
            );
            return None;
        }
    }
    let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
    let work = tempfile::Builder::new()
        .prefix("levee-mitigate-lab-")
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"));
    Some(Ctx { lab, work })
}

impl Ctx {
    /// Runs tools inside the victim namespace.
    pub fn runner(&self) -> SystemRunner {
        SystemRunner::in_netns(self.lab.victim_ns())
    }

    /// Runs `argv` in the victim namespace and returns stdout (panics on failure).
    pub fn victim(&self, argv: &[&str]) -> String {
        self.lab
            .exec_in_stdout(Ns::Victim, argv)
            .unwrap_or_else(|e| panic!("{argv:?} in the victim namespace: {e}"))
    }

    /// Runs `argv` in the victim namespace with `input` on stdin (panics on failure).
    pub fn victim_stdin(&self, argv: &[&str], input: &str) -> String {
        use levee_mitigate::runner::{Cmd, CommandRunner};
        let cmd = Cmd::new(argv[0], argv[1..].iter().copied()).with_stdin(input);
        self.runner()
            .check(&cmd)
            .unwrap_or_else(|e| panic!("in the victim namespace: {e}"))
            .stdout
    }

    /// TCP segments delivered to the victim's TCP stack so far
    /// (`Tcp: InSegs` of its `/proc/net/snmp`).
    pub fn tcp_in_segs(&self) -> u64 {
        let text = self.victim(&["cat", "/proc/net/snmp"]);
        levee_sources::snmp::parse_snmp(&text, None)
            .unwrap_or_else(|e| panic!("victim /proc/net/snmp: {e}"))
            .tcp_in_segs
    }

    /// TCP segments per second delivered to the victim over `over`.
    pub fn delivered_tcp_rate(&self, over: Duration) -> f64 {
        let a = self.tcp_in_segs();
        let t = Instant::now();
        std::thread::sleep(over);
        let b = self.tcp_in_segs();
        b.saturating_sub(a) as f64 / t.elapsed().as_secs_f64()
    }
}

/// Polls `f` every 100 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
