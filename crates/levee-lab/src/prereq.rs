//! Lab prerequisites and the skip rule.
//!
//! Lab tests need root (or CAP_SYS_ADMIN + CAP_NET_ADMIN + CAP_NET_RAW), `ip`
//! (iproute2), `hping3` and `timeout` (coreutils). When something is missing:
//! - with `CI=true` the test **fails** (a CI job that silently skips the lab
//!   proves nothing);
//! - otherwise it prints a loud message naming what is missing and the test
//!   returns early (skips).

use crate::cmd::which;
use std::io::Write;

/// Tools every lab needs, with the Debian package that provides each.
pub const REQUIRED_TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("hping3", "hping3"),
    ("timeout", "coreutils"),
];

/// Why the lab cannot run here (returned when skipping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSkip {
    pub missing: Vec<String>,
}

impl std::fmt::Display for LabSkip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lab prerequisites missing: {}", self.missing.join("; "))
    }
}

/// What to do about missing prerequisites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    Skip(LabSkip),
    Fail(String),
}

/// Pure decision: nothing missing runs; on CI missing things fail; else skip.
pub fn decide(missing: Vec<String>, ci: bool) -> Decision {
    if missing.is_empty() {
        Decision::Run
    } else if ci {
        Decision::Fail(format!(
            "CI=true and the lab cannot run: {}. CI must run the tests as root with the \
             Debian packages iproute2, hping3 and coreutils installed",
            missing.join("; ")
        ))
    } else {
        Decision::Skip(LabSkip { missing })
    }
}

/// Whether `CI` says we are on CI (`true` or `1`, any case).
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// Everything missing on this machine, described for humans.
pub fn missing_prerequisites() -> Vec<String> {
    missing_prerequisites_with(&[])
}

/// As [`missing_prerequisites`], plus `extra` tools: (command, Debian package).
pub fn missing_prerequisites_with(extra: &[(&str, &str)]) -> Vec<String> {
    let mut missing = Vec::new();
    if !has_root_powers() {
        missing.push(
            "root (euid 0 with CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW): run the tests as root"
                .to_string(),
        );
    }
    for (tool, package) in REQUIRED_TOOLS.iter().chain(extra) {
        if which(tool).is_none() {
            missing.push(format!("`{tool}` (Debian package {package})"));
        }
    }
    missing
}

/// Checks the prerequisites. `None`: go ahead. `Some(skip)`: not on CI and
/// something is missing; a loud message was printed and the caller should
/// return early.
///
/// # Panics
/// When something is missing and `CI=true`: lab tests must fail on CI.
pub fn require_lab() -> Option<LabSkip> {
    require_lab_with(&[])
}

/// As [`require_lab`], for tests that also need `extra` tools:
/// (command, Debian package), e.g. `("iperf3", "iperf3")`.
pub fn require_lab_with(extra: &[(&str, &str)]) -> Option<LabSkip> {
    match decide(missing_prerequisites_with(extra), is_ci()) {
        Decision::Run => None,
        Decision::Fail(msg) => panic!("{msg}"),
        Decision::Skip(skip) => {
            // Written to the stderr handle directly, not with eprintln!, so the
            // test harness's output capture cannot hide it.
            let bar = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{bar}\n!!! SKIPPING LAB TEST: {skip}\n!!! (with CI=true this is a failure)\n{bar}\n"
            );
            Some(skip)
        }
    }
}

fn has_root_powers() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid == 0
        && effective_caps().is_none_or(|caps| {
            const SYS_ADMIN: u32 = 21;
            const NET_ADMIN: u32 = 12;
            const NET_RAW: u32 = 13;
            [SYS_ADMIN, NET_ADMIN, NET_RAW]
                .iter()
                .all(|bit| caps & (1u64 << bit) != 0)
        })
}

/// CapEff from /proc/self/status, if readable.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_runs() {
        assert_eq!(decide(vec![], true), Decision::Run);
        assert_eq!(decide(vec![], false), Decision::Run);
    }

    #[test]
    fn missing_on_ci_fails_and_names_the_tool() {
        match decide(vec!["`hping3` (Debian package hping3)".into()], true) {
            Decision::Fail(msg) => assert!(msg.contains("hping3"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_off_ci_skips() {
        let d = decide(vec!["`ip`".into()], false);
        assert_eq!(
            d,
            Decision::Skip(LabSkip {
                missing: vec!["`ip`".into()]
            })
        );
    }

    #[test]
    fn parses_cap_eff() {
        let s = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(s), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }
}
