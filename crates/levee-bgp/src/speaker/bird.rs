//! BIRD 2: Levee owns four include files in its directory (`flow4.conf`,
//! `flow6.conf`, `rtbh4.conf`, `rtbh6.conf`), each the body of a static
//! protocol in the operator's bird.conf ([`config_snippet`]). Every change
//! rewrites them (write to a temporary file, then rename) and runs
//! `birdc configure`; a rejected configuration is rolled back.

use super::{Speaker, SpeakerError};
use crate::flowspec::Afi;
use crate::render::{bird, Op};
use crate::rule::Rule;
use levee_mitigate::runner::{Cmd, CommandRunner};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const FILES: [&str; 4] = ["flow4.conf", "flow6.conf", "rtbh4.conf", "rtbh6.conf"];

/// What the operator's bird.conf needs: the flow tables and the four static
/// protocols including Levee's files (export them to the edge sessions:
/// `levee_fs4`/`levee_fs6` on the flow channels, `levee_bh4`/`levee_bh6` on
/// the unicast ones). BIRD only takes `include` at the start of a line, and
/// protocol names share one namespace with table names.
pub fn config_snippet(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# Levee's announcements (levee-bgp writes the included files).\n\
         flow4 table levee_flow4;\nflow6 table levee_flow6;\n\
         protocol static levee_fs4 {{\n  flow4 {{ table levee_flow4; }};\n  include \"{d}/flow4.conf\";\n}}\n\
         protocol static levee_fs6 {{\n  flow6 {{ table levee_flow6; }};\n  include \"{d}/flow6.conf\";\n}}\n\
         protocol static levee_bh4 {{\n  ipv4;\n  include \"{d}/rtbh4.conf\";\n}}\n\
         protocol static levee_bh6 {{\n  ipv6;\n  include \"{d}/rtbh6.conf\";\n}}\n"
    )
}

pub struct Bird {
    runner: Box<dyn CommandRunner>,
    birdc: String,
    socket: Option<PathBuf>,
    dir: PathBuf,
    routes: BTreeSet<Rule>,
}

impl Bird {
    /// Writes empty include files (so bird.conf parses before any rule).
    pub fn new(
        runner: Box<dyn CommandRunner>,
        birdc: &str,
        socket: Option<&Path>,
        dir: &Path,
    ) -> Result<Bird, SpeakerError> {
        let b = Bird {
            runner,
            birdc: birdc.to_string(),
            socket: socket.map(Path::to_path_buf),
            dir: dir.to_path_buf(),
            routes: BTreeSet::new(),
        };
        b.write_files()?;
        Ok(b)
    }

    fn file_of(rule: &Rule) -> Option<usize> {
        match rule {
            Rule::Flow(f) if f.spec.afi == Afi::Ipv4 => Some(0),
            Rule::Flow(_) => Some(1),
            Rule::Rtbh(r) if r.prefix.addr().is_ipv4() => Some(2),
            Rule::Rtbh(_) => Some(3),
            Rule::Divert(_) => None,
        }
    }

    /// The four files' contents for the current routes.
    pub fn contents(&self) -> Result<[String; 4], SpeakerError> {
        let mut out: [String; 4] = Default::default();
        for o in &mut out {
            o.push_str("# Written by Levee (levee-bgp); rewritten on every change.\n");
        }
        for r in &self.routes {
            let i = Self::file_of(r).expect("only speaker rules are kept");
            out[i].push_str(&bird::route(r)?);
            out[i].push('\n');
        }
        Ok(out)
    }

    fn write_files(&self) -> Result<(), SpeakerError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| SpeakerError::Io {
            what: format!("creating BIRD include directory {}", self.dir.display()),
            source,
        })?;
        for (name, text) in FILES.iter().zip(self.contents()?) {
            let path = self.dir.join(name);
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let io = |source| SpeakerError::Io {
                what: format!("writing {}", path.display()),
                source,
            };
            std::fs::write(&tmp, text).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
        }
        Ok(())
    }

    fn configure_cmd(&self) -> Cmd {
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = &self.socket {
            args.extend(["-s".into(), s.display().to_string()]);
        }
        args.push("configure".into());
        Cmd::new(&self.birdc, args)
    }

    fn apply(&mut self, before: BTreeSet<Rule>) -> Result<(), SpeakerError> {
        let result = self.write_files().and_then(|()| {
            let out = self.runner.check(&self.configure_cmd())?;
            let text = out.stdout.trim();
            if text.contains("Reconfigured") || text.contains("Reconfiguration in progress") {
                Ok(())
            } else {
                Err(SpeakerError::Rejected {
                    speaker: "bird".into(),
                    output: text.replace('\n', " | "),
                })
            }
        });
        if result.is_err() {
            // Leave BIRD's files as they were: the next configure must not
            // pick up a rule BIRD rejected.
            self.routes = before;
            let _ = self.write_files();
        }
        result
    }
}

impl Speaker for Bird {
    fn name(&self) -> &str {
        "bird"
    }
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError> {
        let line = bird::route(rule)?;
        Ok(match op {
            Op::Announce => format!("{line}  # + {}", self.configure_cmd().line()),
            Op::Withdraw => format!("remove: {line}  # + {}", self.configure_cmd().line()),
        })
    }
    fn announce(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        bird::route(rule)?;
        let before = self.routes.clone();
        // Same NLRI: the new rule replaces the old one, as on the wire.
        self.routes.retain(|r| r.key() != rule.key());
        self.routes.insert(rule.clone());
        self.apply(before)
    }
    fn withdraw(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        let before = self.routes.clone();
        if !self.routes.remove(rule) {
            return Ok(());
        }
        self.apply(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_mitigate::runner::{CmdOutput, ScriptedRunner};

    #[test]
    fn rewrites_files_and_rolls_back_rejections() {
        let d = tempfile::tempdir().unwrap();
        let r = ScriptedRunner::new();
        let mut b = Bird::new(
            Box::new(r.clone()),
            "birdc",
            Some(Path::new("/run/b.ctl")),
            d.path(),
        )
        .unwrap();
        r.push(CmdOutput::ok(
            "Reading configuration from /etc/bird.conf\nReconfigured\n",
        ));
        b.announce(&crate::render::tests::rtbh()).unwrap();
        let f = std::fs::read_to_string(d.path().join("rtbh4.conf")).unwrap();
        assert!(f.contains("route 203.0.113.7/32 blackhole"), "{f}");
        assert_eq!(r.lines(), vec!["birdc -s /run/b.ctl configure"]);
        r.push(CmdOutput::ok("/etc/bird.conf:3:1 syntax error\n"));
        let e = b
            .announce(&crate::render::tests::syn_rule())
            .unwrap_err()
            .to_string();
        assert!(e.contains("syntax error"), "{e}");
        let f = std::fs::read_to_string(d.path().join("flow4.conf")).unwrap();
        assert!(!f.contains("route flow4"), "rolled back: {f}");
        r.push(CmdOutput::ok("Reconfigured\n"));
        b.withdraw(&crate::render::tests::rtbh()).unwrap();
        let f = std::fs::read_to_string(d.path().join("rtbh4.conf")).unwrap();
        assert!(!f.contains("route "), "{f}");
        assert!(config_snippet(d.path()).contains("include"));
    }
}
