//! GoBGP through its CLI (`gobgp [-u HOST -p PORT] global rib ...`): the
//! command is exactly what `levee flowspec build --format gobgp` prints.

use super::{Speaker, SpeakerError};
use crate::render::{gobgp, Op};
use crate::rule::Rule;
use levee_mitigate::runner::{Cmd, CommandRunner};
use std::net::SocketAddr;

pub struct GoBgp {
    runner: Box<dyn CommandRunner>,
    program: String,
    api: Option<SocketAddr>,
}

impl GoBgp {
    pub fn new(runner: Box<dyn CommandRunner>, program: &str, api: Option<SocketAddr>) -> GoBgp {
        GoBgp {
            runner,
            program: program.to_string(),
            api,
        }
    }

    fn cmd(&self, rule: &Rule, op: Op) -> Result<Cmd, SpeakerError> {
        let mut args: Vec<String> = Vec::new();
        if let Some(a) = self.api {
            args.extend([
                "-u".into(),
                a.ip().to_string(),
                "-p".into(),
                a.port().to_string(),
            ]);
        }
        args.extend(gobgp::args(rule, op)?);
        Ok(Cmd::new(&self.program, args))
    }

    fn run(&mut self, rule: &Rule, op: Op) -> Result<(), SpeakerError> {
        let c = self.cmd(rule, op)?;
        let out = self.runner.check(&c)?;
        // gobgp prints nothing on success; anything on stdout is a complaint.
        if !out.stdout.trim().is_empty() {
            return Err(SpeakerError::Rejected {
                speaker: "gobgp".into(),
                output: out.stdout.trim().to_string(),
            });
        }
        Ok(())
    }
}

impl Speaker for GoBgp {
    fn name(&self) -> &str {
        "gobgp"
    }
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError> {
        Ok(self.cmd(rule, op)?.line())
    }
    fn announce(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        self.run(rule, Op::Announce)
    }
    fn withdraw(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        self.run(rule, Op::Withdraw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_mitigate::runner::{CmdOutput, ScriptedRunner};

    #[test]
    fn runs_the_rendered_command() {
        let r = ScriptedRunner::new();
        let mut g = GoBgp::new(
            Box::new(r.clone()),
            "gobgp",
            Some("127.0.0.1:50051".parse().unwrap()),
        );
        let rule = crate::render::tests::rtbh();
        g.announce(&rule).unwrap();
        assert_eq!(
            r.lines(),
            vec!["gobgp -u 127.0.0.1 -p 50051 global rib -a ipv4 add 203.0.113.7/32 nexthop 192.0.2.1 community 65535:666,65000:666"]
        );
        assert_eq!(g.render(&rule, Op::Announce).unwrap(), r.lines()[0]);
        r.push(CmdOutput::failed(1, "rpc error: connection refused"));
        let e = g.withdraw(&rule).unwrap_err().to_string();
        assert!(e.contains("connection refused"), "{e}");
    }
}
