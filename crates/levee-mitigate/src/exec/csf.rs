//! CSF (ConfigServer Security & Firewall): a temporary deny per source,
//! `csf -td <ip/cidr> <ttl> -d in levee:<id>`, which lfd removes by itself
//! at its TTL; removed early with `csf -trd <ip>`; listed with `csf -t`.
//! Detected when `csf -v` runs.
//!
//! CSF is not packaged for Debian; this follows its documented command
//! line (csf(1), "csf -h", and ConfigServer's readme.txt as mirrored in the
//! maintained fork's docs, Aetherinox/csf-firewall
//! `docs/docs/cheatsheet/commands.md`):
//! - `-td, --tempdeny ip ttl [-p port] [-d direction] [comment]`: "ttl is
//!   how long to block for (default: seconds, can use one suffix of
//!   h/m/d)", direction `in`, `out` or `inout` (default `in`);
//! - `-trd, --temprmd ip`: remove an IP from the temporary ban list only;
//! - `-t, --temp`: the temporary entries with their TTL and comment, under
//!   the header `A/D  IP address  Port  Dir  Time To Live  Comment`.
//!
//! A temporary deny cannot name the attacked address, so it blocks the
//! source towards the whole node.

use super::deny::{prefix_text, Deny, DenyBackend, DenyExecutor};
use super::{Availability, ExecError};
use crate::action::ExecutorKind;
use crate::rule::{id_from_comment, RuleSpec};
use crate::runner::{Cmd, CommandRunner};

pub struct Csf;

pub type CsfExecutor = DenyExecutor<Csf>;

impl CsfExecutor {
    pub fn csf(runner: Box<dyn CommandRunner>) -> Self {
        DenyExecutor::new(runner, Csf)
    }
}

/// Parses `csf -t` for Levee's temporary denies.
pub fn parse_temp(text: &str) -> Vec<Deny> {
    text.lines()
        .filter_map(|l| {
            let mut t = l.split_whitespace();
            if t.next()? != "DENY" {
                return None;
            }
            let ip = t.next()?;
            let owner = l.split_whitespace().find_map(id_from_comment)?;
            let source = if ip.contains('/') {
                ip.parse().ok()?
            } else {
                crate::safety::host_prefix(ip.parse().ok()?)
            };
            Some(Deny {
                source,
                dst: None,
                owner: Some(owner),
                raw: ip.to_string(),
            })
        })
        .collect()
}

impl DenyBackend for Csf {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Csf
    }

    fn uses_dst(&self) -> bool {
        false
    }

    fn has_ttl(&self) -> bool {
        true
    }

    fn availability(&self, runner: &mut dyn CommandRunner) -> Availability {
        match runner.run(&Cmd::new("csf", ["-v"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`csf -v` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!(
                "{e}; CSF is installed from ConfigServer's tarball (it is not packaged)"
            )),
        }
    }

    fn add(&self, d: &Deny, rule: &RuleSpec) -> Cmd {
        Cmd::new(
            "csf",
            [
                "-td".to_string(),
                prefix_text(&d.source),
                rule.ttl.as_secs().max(1).to_string(),
                "-d".into(),
                "in".into(),
                rule.comment(),
            ],
        )
    }

    fn remove(&self, d: &Deny) -> Cmd {
        let ip = if d.raw.is_empty() {
            prefix_text(&d.source)
        } else {
            d.raw.clone()
        };
        Cmd::new("csf", ["-trd".to_string(), ip])
    }

    fn list(&self, runner: &mut dyn CommandRunner) -> Result<Vec<Deny>, ExecError> {
        let out = runner.check(&Cmd::new("csf", ["-t"]))?;
        Ok(parse_temp(&out.stdout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_listing() {
        let t = "A/D   IP address          Port    Dir     Time To Live     Comment\n\
                 ALLOW 142.250.189.142     *       inout   58m 56s          Manually added\n\
                 DENY  203.0.113.0/24      *       in      9m 58s           levee:01a1fbca-a736-7516-aa18-813da2481001\n\
                 DENY  198.51.100.7        *       in      1h               lfd: too many logins\n";
        let d = parse_temp(t);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].raw, "203.0.113.0/24");
        assert_eq!(Csf.remove(&d[0]).to_string(), "csf -trd 203.0.113.0/24");
    }
}
