//! ufw: `ufw prepend deny from <source> to <attacked address> comment
//! 'levee:<id>'` (prepend puts it ahead of the operator's allows), removed
//! with `ufw delete deny from <source> to <address>`, listed with
//! `ufw show added`. Detected when installed *and* active (an inactive
//! ufw's rules filter nothing).
//!
//! ufw has no timeouts: the agent removes the denies at TTL or resolve,
//! and `reconcile` removes Levee-commented ones after a crash.

use super::deny::{prefix_text, Deny, DenyBackend, DenyExecutor};
use super::{Availability, ExecError};
use crate::action::ExecutorKind;
use crate::rule::{id_from_comment, RuleSpec};
use crate::runner::{Cmd, CommandRunner};

pub struct Ufw;

pub type UfwExecutor = DenyExecutor<Ufw>;

impl UfwExecutor {
    pub fn ufw(runner: Box<dyn CommandRunner>) -> Self {
        DenyExecutor::new(runner, Ufw)
    }
}

/// Parses `ufw show added` for Levee's denies.
pub fn parse_added(text: &str) -> Vec<Deny> {
    text.lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let [_, "deny", "from", src, "to", dst, "comment", c] = t.as_slice() else {
                return None;
            };
            let owner = id_from_comment(c.trim_matches('\''))?;
            let source = if src.contains('/') {
                src.parse().ok()?
            } else {
                crate::safety::host_prefix(src.parse().ok()?)
            };
            Some(Deny {
                source,
                dst: dst.parse().ok(),
                owner: Some(owner),
                raw: format!("from {src} to {dst}"),
            })
        })
        .collect()
}

impl DenyBackend for Ufw {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Ufw
    }

    fn uses_dst(&self) -> bool {
        true
    }

    fn has_ttl(&self) -> bool {
        false
    }

    fn availability(&self, runner: &mut dyn CommandRunner) -> Availability {
        match runner.run(&Cmd::new("ufw", ["status"])) {
            Ok(o) if o.success() && o.stdout.contains("Status: active") => Availability::Ready,
            Ok(o) if o.success() => Availability::Missing(
                "ufw is installed but inactive, so its rules filter nothing; enable it (`ufw enable`) or choose another executor".into(),
            ),
            Ok(o) => Availability::Missing(format!("`ufw status` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package ufw")),
        }
    }

    fn add(&self, d: &Deny, rule: &RuleSpec) -> Cmd {
        let dst = d.dst.map(|a| a.to_string()).unwrap_or_else(|| "any".into());
        Cmd::new(
            "ufw",
            [
                "prepend",
                "deny",
                "from",
                &prefix_text(&d.source),
                "to",
                &dst,
                "comment",
                &rule.comment(),
            ],
        )
    }

    fn remove(&self, d: &Deny) -> Cmd {
        let dst = d.dst.map(|a| a.to_string()).unwrap_or_else(|| "any".into());
        Cmd::new(
            "ufw",
            [
                "delete",
                "deny",
                "from",
                &prefix_text(&d.source),
                "to",
                &dst,
            ],
        )
    }

    fn list(&self, runner: &mut dyn CommandRunner) -> Result<Vec<Deny>, ExecError> {
        let out = runner.check(&Cmd::new("ufw", ["show", "added"]))?;
        Ok(parse_added(&out.stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Executor;
    use crate::runner::ScriptedRunner;
    use crate::Action;
    use std::time::Duration;

    #[test]
    fn renders_and_parses() {
        let r = RuleSpec {
            id: "01a1fbca-a736-7516-aa18-813da2481001".parse().unwrap(),
            incident_id: "i".into(),
            action: Action::SourceBlock,
            matches: vec![crate::Match::to("10.0.0.2".parse().unwrap())],
            sources: vec![
                "203.0.113.0/24".parse().unwrap(),
                "2001:db8::/48".parse().unwrap(),
            ],
            interface: None,
            ttl: Duration::from_secs(60),
            expires_unix_ms: 0,
        };
        let e = UfwExecutor::ufw(Box::new(ScriptedRunner::new()));
        let lines: Vec<String> = e
            .render(&r)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        // The IPv6 source has no IPv6 target address: left out.
        assert_eq!(
            lines,
            ["ufw prepend deny from 203.0.113.0/24 to 10.0.0.2 comment levee:01a1fbca-a736-7516-aa18-813da2481001"]
        );
        let added = "Added user rules (see 'ufw status' for running firewall):\n\
            ufw allow 22/tcp\n\
            ufw deny from 203.0.113.0/24 to 10.0.0.2 comment 'levee:01a1fbca-a736-7516-aa18-813da2481001'\n\
            ufw deny from 198.51.100.7 to 10.0.0.2 comment 'someone else'\n";
        let d = parse_added(added);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].owner, Some(r.id));
        assert_eq!(
            Ufw.remove(&d[0]).to_string(),
            "ufw delete deny from 203.0.113.0/24 to 10.0.0.2"
        );
    }
}
