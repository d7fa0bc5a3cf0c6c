//! The sysctl executor: SYN cookies (`net.ipv4.tcp_syncookies`, which also
//! governs IPv6), set while a mitigation asks for them and restored to the
//! value found before when the last one goes.
//!
//! The previous value is also written to a state file before the change,
//! so after a crash `reconcile` restores it (the kernel cannot expire a
//! sysctl). The counter is the kernel's `TcpExt: SyncookiesSent` since the
//! cookies were turned on.
//!
//! The setting belongs to the network namespace: the agent changes its
//! own namespace's value, and the lab tests only ever change a test
//! namespace's.

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::rule::RuleSpec;
use crate::runner::{Cmd, CommandRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use uuid::Uuid;

pub const KEY: &str = "net.ipv4.tcp_syncookies";

pub struct SysctlExecutor {
    runner: Box<dyn CommandRunner>,
    /// Where the value found before the change is kept (crash recovery).
    state_file: Option<PathBuf>,
    /// The value found before the first mitigation changed it.
    saved: Option<String>,
    /// Live mitigations and the mode each asked for.
    users: BTreeMap<Uuid, u8>,
    /// SyncookiesSent when the cookies were turned on.
    sent_at_start: u64,
}

/// `TcpExt: SyncookiesSent` from `/proc/net/netstat` text.
pub fn syncookies_sent(netstat: &str) -> Option<u64> {
    let mut lines = netstat.lines();
    while let Some(h) = lines.next() {
        let v = lines.next()?;
        if let (Some(hn), Some(vn)) = (h.strip_prefix("TcpExt:"), v.strip_prefix("TcpExt:")) {
            let i = hn.split_whitespace().position(|n| n == "SyncookiesSent")?;
            return vn.split_whitespace().nth(i)?.parse().ok();
        }
    }
    None
}

impl SysctlExecutor {
    pub fn new(runner: Box<dyn CommandRunner>, state_file: Option<PathBuf>) -> Self {
        SysctlExecutor {
            runner,
            state_file,
            saved: None,
            users: BTreeMap::new(),
            sent_at_start: 0,
        }
    }

    fn mode(rule: &RuleSpec) -> Result<u8, ExecError> {
        match rule.action {
            Action::SynCookies { mode } => Ok(mode),
            _ => Err(ExecError::unsupported(
                ExecutorKind::Sysctl,
                &rule.action,
                "sysctl only turns SYN cookies on",
            )),
        }
    }

    fn set_cmd(value: &str) -> Cmd {
        Cmd::new("sysctl", ["-w", &format!("{KEY}={value}")])
    }

    fn read(&mut self) -> Result<String, ExecError> {
        Ok(self
            .runner
            .check(&Cmd::new("sysctl", ["-n", KEY]))?
            .stdout
            .trim()
            .to_string())
    }

    fn sent(&mut self) -> u64 {
        self.runner
            .run(&Cmd::new("cat", ["/proc/net/netstat"]))
            .ok()
            .and_then(|o| syncookies_sent(&o.stdout))
            .unwrap_or(0)
    }

    fn wanted(&self) -> Option<u8> {
        self.users.values().copied().max()
    }

    fn restore(&mut self, value: &str) -> Result<(), ExecError> {
        self.runner.check(&Self::set_cmd(value))?;
        if let Some(f) = &self.state_file {
            match std::fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ExecError::Other {
                        executor: ExecutorKind::Sysctl,
                        message: format!("cannot remove {}: {e}", f.display()),
                    })
                }
            }
        }
        Ok(())
    }
}

impl Executor for SysctlExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Sysctl
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("sysctl", ["-n", KEY])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => {
                Availability::Missing(format!("`sysctl -n {KEY}` failed: {}", o.stderr.trim()))
            }
            Err(e) => Availability::Missing(format!("{e}; install the Debian package procps")),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        matches!(action, Action::SynCookies { .. })
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        let mode = Self::mode(rule)?.max(self.wanted().unwrap_or(0));
        Ok(vec![Self::set_cmd(&mode.to_string())])
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let mode = Self::mode(rule)?;
        if self.users.is_empty() {
            let prev = self.read()?;
            if let Some(f) = &self.state_file {
                std::fs::write(f, format!("{prev}\n")).map_err(|e| ExecError::Other {
                    executor: ExecutorKind::Sysctl,
                    message: format!("cannot save the previous {KEY} to {}: {e}", f.display()),
                })?;
            }
            self.saved = Some(prev);
            self.sent_at_start = self.sent();
        }
        let before = self.wanted();
        self.users.insert(rule.id, mode);
        if self.wanted() != before {
            if let Err(e) = self.runner.check(&Self::set_cmd(&mode.to_string())) {
                let _ = self.remove(rule);
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let want = self.wanted().unwrap_or(Self::mode(rule)?);
        Ok(self.read()? == want.to_string())
    }

    fn refresh(&mut self, _rule: &RuleSpec) -> Result<(), ExecError> {
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        if self.users.remove(&rule.id).is_none() {
            return Ok(());
        }
        match self.wanted() {
            None => {
                if let Some(prev) = self.saved.take() {
                    self.restore(&prev)?;
                }
            }
            Some(m) => {
                self.runner.check(&Self::set_cmd(&m.to_string()))?;
            }
        }
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        if self.users.is_empty() {
            return Ok(BTreeMap::new());
        }
        let n = self.sent().saturating_sub(self.sent_at_start);
        let ids: BTreeSet<Uuid> = self.users.keys().copied().collect();
        Ok(ids
            .into_iter()
            .map(|id| {
                (
                    id,
                    Counter {
                        packets: n,
                        bytes: 0,
                    },
                )
            })
            .collect())
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let Some(f) = self.state_file.clone() else {
            return Ok(vec![]);
        };
        let Ok(prev) = std::fs::read_to_string(&f) else {
            return Ok(vec![]);
        };
        Ok(vec![Owned {
            executor: ExecutorKind::Sysctl,
            owner: Some(self.users.keys().next().copied().unwrap_or(Uuid::nil())),
            tag: None,
            what: format!(
                "{KEY} changed by Levee (was {}; saved in {})",
                prev.trim(),
                f.display()
            ),
            handle: prev.trim().to_string(),
        }])
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        for o in items {
            if o.handle.parse::<u8>().is_ok() {
                self.users.clear();
                self.saved = None;
                let v = o.handle.clone();
                self.restore(&v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{CmdOutput, ScriptedRunner};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn rule(id: u128, mode: u8) -> RuleSpec {
        RuleSpec {
            id: Uuid::from_u128(id),
            incident_id: "i".into(),
            action: Action::SynCookies { mode },
            matches: vec![],
            sources: vec![],
            interface: None,
            ttl: Duration::from_secs(60),
            expires_unix_ms: 0,
        }
    }

    /// A fake kernel holding one sysctl value.
    fn kernel(initial: &str) -> (ScriptedRunner, Arc<Mutex<String>>) {
        let s = ScriptedRunner::new();
        let v = Arc::new(Mutex::new(initial.to_string()));
        let v2 = v.clone();
        s.respond(move |c| {
            let a = c.args.join(" ");
            if a == format!("-n {KEY}") {
                return Some(CmdOutput::ok(format!("{}\n", v2.lock().unwrap())));
            }
            if let Some(x) = a.strip_prefix(&format!("-w {KEY}=")) {
                *v2.lock().unwrap() = x.to_string();
                return Some(CmdOutput::ok(""));
            }
            if c.program == "cat" {
                return Some(CmdOutput::ok(
                    "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 7 0\n",
                ));
            }
            None
        });
        (s, v)
    }

    #[test]
    fn sets_and_restores_with_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("syncookies.prev");
        let (s, v) = kernel("0");
        let mut e = SysctlExecutor::new(Box::new(s.clone()), Some(f.clone()));
        assert_eq!(
            e.render(&rule(1, 2)).unwrap()[0].to_string(),
            "sysctl -w net.ipv4.tcp_syncookies=2"
        );
        e.apply(&rule(1, 1)).unwrap();
        assert_eq!(*v.lock().unwrap(), "1");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "0\n");
        e.apply(&rule(2, 2)).unwrap();
        assert_eq!(*v.lock().unwrap(), "2");
        assert!(e.verify(&rule(1, 1)).unwrap());
        assert_eq!(e.counters().unwrap()[&Uuid::from_u128(1)].packets, 0);
        e.remove(&rule(2, 2)).unwrap();
        assert_eq!(
            *v.lock().unwrap(),
            "1",
            "back to the remaining mitigation's mode"
        );
        e.remove(&rule(1, 1)).unwrap();
        assert_eq!(*v.lock().unwrap(), "0", "restored");
        assert!(!f.exists());
    }

    #[test]
    fn reconcile_restores_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("syncookies.prev");
        std::fs::write(&f, "0\n").unwrap();
        let (s, v) = kernel("2");
        let mut e = SysctlExecutor::new(Box::new(s), Some(f.clone()));
        let o = e.owned().unwrap();
        assert_eq!(o.len(), 1);
        assert!(!o[0].backed_by(&[Uuid::from_u128(9)]));
        e.remove_owned(&o, &[]).unwrap();
        assert_eq!(*v.lock().unwrap(), "0");
        assert!(!f.exists());
    }

    #[test]
    fn parses_netstat() {
        let t = "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed\nTcpExt: 12 3 0\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(syncookies_sent(t), Some(12));
        assert_eq!(syncookies_sent("IpExt: A\nIpExt: 1\n"), None);
    }
}
