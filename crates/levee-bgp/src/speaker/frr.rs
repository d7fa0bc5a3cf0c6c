//! FRR through `vtysh`: RTBH only. FRR's bgpd can receive FlowSpec but not
//! originate it, so FlowSpec rules are refused with an error that says to
//! use GoBGP, ExaBGP or BIRD. A black hole is a static route tagged 666;
//! [`Frr::setup_commands`] creates the route-map that gives tagged statics
//! the BLACKHOLE community and next hop and redistributes them into BGP.

use super::{Speaker, SpeakerError};
use crate::render::Op;
use crate::rule::{Community, Rule};
use levee_mitigate::runner::{Cmd, CommandRunner};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The route tag marking Levee's black hole routes.
pub const TAG: u32 = 666;

pub struct Frr {
    runner: Box<dyn CommandRunner>,
    vtysh: String,
    vty_socket: Option<PathBuf>,
    asn: u32,
    set_up: bool,
}

fn vtysh(program: &str, vty_socket: Option<&Path>, lines: &[String]) -> Cmd {
    let mut args: Vec<String> = Vec::new();
    if let Some(dir) = vty_socket {
        args.push("--vty_socket".into());
        args.push(dir.display().to_string());
    }
    for l in lines {
        args.push("-c".into());
        args.push(l.clone());
    }
    Cmd::new(program, args)
}

impl Frr {
    /// `vty_socket`: the daemons' vty socket directory when it is not
    /// FRR's default (several FRR instances on one host).
    pub fn new(
        runner: Box<dyn CommandRunner>,
        vtysh: &str,
        vty_socket: Option<&Path>,
        asn: u32,
    ) -> Frr {
        Frr {
            runner,
            vtysh: vtysh.to_string(),
            vty_socket: vty_socket.map(Path::to_path_buf),
            asn,
            set_up: false,
        }
    }

    /// The route-maps and redistribution for RTBH (idempotent).
    pub fn setup_commands(
        &self,
        communities: &[Community],
        nh4: IpAddr,
        nh6: IpAddr,
    ) -> Vec<String> {
        let comms: Vec<String> = communities.iter().map(ToString::to_string).collect();
        let mut l = vec!["configure terminal".to_string()];
        for (name, nh, set) in [
            ("LEVEE-RTBH4", nh4, "ip next-hop"),
            ("LEVEE-RTBH6", nh6, "ipv6 next-hop global"),
        ] {
            l.push(format!("route-map {name} permit 10"));
            l.push(format!("match tag {TAG}"));
            l.push(format!("set community {}", comms.join(" ")));
            l.push(format!("set {set} {nh}"));
            l.push("exit".into());
        }
        l.push(format!("router bgp {}", self.asn));
        l.push("address-family ipv4 unicast".into());
        l.push("redistribute static route-map LEVEE-RTBH4".into());
        l.push("exit-address-family".into());
        l.push("address-family ipv6 unicast".into());
        l.push("redistribute static route-map LEVEE-RTBH6".into());
        l.push("exit-address-family".into());
        l
    }

    fn lines(&self, rule: &Rule, op: Op) -> Result<Vec<String>, SpeakerError> {
        match rule {
            Rule::Rtbh(r) => {
                let fam = if r.prefix.addr().is_ipv4() { "ip" } else { "ipv6" };
                let no = if op == Op::Withdraw { "no " } else { "" };
                Ok(vec![
                    "configure terminal".into(),
                    format!("{no}{fam} route {} blackhole tag {TAG}", r.prefix),
                ])
            }
            Rule::Flow(_) => Err(SpeakerError::Unsupported {
                speaker: "frr".into(),
                why: "FRR cannot originate BGP FlowSpec (bgpd only receives it); use speaker gobgp, exabgp or bird for FlowSpec, FRR for RTBH".into(),
            }),
            Rule::Divert(d) => Err(SpeakerError::Unsupported {
                speaker: "frr".into(),
                why: format!("a scrubbing diversion of {} goes to the scrubbing provider", d.prefix),
            }),
        }
    }

    fn run(&mut self, rule: &Rule, op: Op) -> Result<(), SpeakerError> {
        let lines = self.lines(rule, op)?;
        if !self.set_up {
            if let Rule::Rtbh(r) = rule {
                let nh6: IpAddr = "100::1".parse().expect("literal");
                let nh4: IpAddr = "192.0.2.1".parse().expect("literal");
                let (n4, n6) = if r.next_hop.is_ipv4() {
                    (r.next_hop, nh6)
                } else {
                    (nh4, r.next_hop)
                };
                let setup = self.setup_commands(&r.communities, n4, n6);
                self.check(&setup)?;
                self.set_up = true;
            }
        }
        self.check(&lines)
    }

    fn check(&mut self, lines: &[String]) -> Result<(), SpeakerError> {
        let out = self
            .runner
            .check(&vtysh(&self.vtysh, self.vty_socket.as_deref(), lines))?;
        // vtysh exits 0 on some command errors but prints them.
        let t = out.stdout.trim();
        if t.contains("% ") {
            return Err(SpeakerError::Rejected {
                speaker: "frr".into(),
                output: t.replace('\n', " | "),
            });
        }
        Ok(())
    }
}

impl Speaker for Frr {
    fn name(&self) -> &str {
        "frr"
    }
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError> {
        Ok(vtysh(
            &self.vtysh,
            self.vty_socket.as_deref(),
            &self.lines(rule, op)?,
        )
        .line())
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
    use levee_mitigate::runner::ScriptedRunner;

    #[test]
    fn rtbh_only() {
        let r = ScriptedRunner::new();
        let mut f = Frr::new(Box::new(r.clone()), "vtysh", None, 64500);
        let e = f
            .announce(&crate::render::tests::syn_rule())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("FRR cannot originate BGP FlowSpec") && e.contains("gobgp"),
            "{e}"
        );
        f.announce(&crate::render::tests::rtbh()).unwrap();
        let l = r.lines();
        assert_eq!(l.len(), 2);
        assert!(
            l[0].contains("'set community 65535:666 65000:666'")
                && l[0].contains("'redistribute static route-map LEVEE-RTBH4'"),
            "{}",
            l[0]
        );
        assert_eq!(
            l[1],
            "vtysh -c 'configure terminal' -c 'ip route 203.0.113.7/32 blackhole tag 666'"
        );
        f.withdraw(&crate::render::tests::rtbh()).unwrap();
        assert_eq!(
            r.lines()[2],
            "vtysh -c 'configure terminal' -c 'no ip route 203.0.113.7/32 blackhole tag 666'"
        );
    }
}
