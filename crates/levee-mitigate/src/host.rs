//! What the node is: its addresses (per interface) and default gateways,
//! read with `ip -j` through the [`CommandRunner`] seam. The safety rules
//! never let a rule touch these, and an incident on an interface is
//! mitigated for that interface's addresses.

use crate::runner::{Cmd, CommandRunner, RunError};
use serde::Deserialize;
use std::net::IpAddr;

/// One address of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    pub interface: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// `global`, `link`, `host`.
    pub scope: String,
}

/// The node's addresses and default gateways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub addresses: Vec<HostAddr>,
    pub gateways: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot parse the output of `{command}`: {message}")]
    Parse { command: String, message: String },
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    local: IpAddr,
    prefixlen: u8,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct IpRoute {
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    nexthops: Vec<IpNexthop>,
}

#[derive(Deserialize)]
struct IpNexthop {
    #[serde(default)]
    gateway: Option<IpAddr>,
}

impl HostInfo {
    /// Reads addresses (`ip -j addr show`) and default gateways
    /// (`ip -j route show default`, `ip -6 -j route show default`).
    pub fn probe(runner: &mut dyn CommandRunner) -> Result<HostInfo, HostError> {
        let addr_cmd = Cmd::new("ip", ["-j", "addr", "show"]);
        let out = runner.check(&addr_cmd)?;
        let addresses = parse_addrs(&out.stdout).map_err(|message| HostError::Parse {
            command: addr_cmd.line(),
            message,
        })?;
        let mut gateways = Vec::new();
        for fam in ["-4", "-6"] {
            let cmd = Cmd::new("ip", [fam, "-j", "route", "show", "default"]);
            let out = runner.check(&cmd)?;
            gateways.extend(
                parse_gateways(&out.stdout).map_err(|message| HostError::Parse {
                    command: cmd.line(),
                    message,
                })?,
            );
        }
        Ok(HostInfo {
            addresses,
            gateways,
        })
    }

    /// The addresses mitigations protect for an incident on `target`: the
    /// address itself when it is one, else the global addresses of that
    /// interface, else (`host`) every global address.
    pub fn target_addresses(&self, target: &str) -> Vec<IpAddr> {
        if let Ok(ip) = target.parse::<IpAddr>() {
            return vec![ip];
        }
        self.addresses
            .iter()
            .filter(|a| a.scope == "global" && (target == "host" || a.interface == target))
            .map(|a| a.addr)
            .collect()
    }

    /// The interface holding `addr`, if any.
    pub fn interface_of(&self, addr: IpAddr) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.addr == addr)
            .map(|a| a.interface.as_str())
    }

    pub fn is_interface(&self, name: &str) -> bool {
        self.addresses.iter().any(|a| a.interface == name)
    }
}

/// Parses `ip -j addr show`.
pub fn parse_addrs(json: &str) -> Result<Vec<HostAddr>, String> {
    let links: Vec<IpLink> = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
    Ok(links
        .into_iter()
        .flat_map(|l| {
            let ifname = l.ifname;
            l.addr_info.into_iter().map(move |a| HostAddr {
                interface: ifname.clone(),
                addr: a.local,
                prefix_len: a.prefixlen,
                scope: a.scope,
            })
        })
        .collect())
}

/// Parses `ip -j route show default` (gateways of plain and multipath routes).
pub fn parse_gateways(json: &str) -> Result<Vec<IpAddr>, String> {
    let text = json.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let routes: Vec<IpRoute> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(routes
        .into_iter()
        .flat_map(|r| {
            r.gateway
                .into_iter()
                .chain(r.nexthops.into_iter().filter_map(|n| n.gateway))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{CmdOutput, ScriptedRunner};

    const ADDRS: &str = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
      {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global"},
      {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"},{"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global"}]},
      {"ifindex":3,"ifname":"eth1","addr_info":[{"family":"inet","local":"192.168.1.5","prefixlen":24,"scope":"global"}]}]"#;

    #[test]
    fn probes_addresses_and_gateways() {
        let s = ScriptedRunner::new();
        s.respond(|c| {
            let a = c.args.join(" ");
            Some(CmdOutput::ok(match a.as_str() {
                "-j addr show" => ADDRS,
                "-4 -j route show default" => r#"[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"}]"#,
                "-6 -j route show default" => r#"[{"dst":"default","nexthops":[{"gateway":"fe80::a"},{"gateway":"fe80::b"}]}]"#,
                _ => return None,
            }))
        });
        let mut r = s.clone();
        let h = HostInfo::probe(&mut r).unwrap();
        assert_eq!(h.addresses.len(), 5);
        assert_eq!(
            h.gateways,
            ["10.0.0.1", "fe80::a", "fe80::b"].map(|g| g.parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            h.target_addresses("eth0"),
            ["10.0.0.2", "2001:db8::2"].map(|g| g.parse::<IpAddr>().unwrap())
        );
        assert_eq!(h.target_addresses("host").len(), 3);
        assert_eq!(
            h.target_addresses("198.51.100.1"),
            ["198.51.100.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(h.interface_of("192.168.1.5".parse().unwrap()), Some("eth1"));
        assert!(h.is_interface("eth1") && !h.is_interface("eth9"));
    }

    #[test]
    fn bad_output_is_a_clear_error() {
        let s = ScriptedRunner::new();
        s.push(CmdOutput::ok("not json"));
        let e = HostInfo::probe(&mut s.clone()).unwrap_err();
        assert!(e.to_string().contains("ip -j addr show"), "{e}");
        assert!(parse_gateways("").unwrap().is_empty());
        assert!(parse_gateways("[]").unwrap().is_empty());
    }
}
