//! BGP daemons for lab tests, each inside a lab namespace with its own
//! config, sockets and logs in the caller's temporary directory: gobgpd
//! (the edge router, or Levee's speaker), ExaBGP, BIRD 2 and stayrtr (an
//! RTR cache serving a local ROA file). Nothing touches the host: every
//! process runs under `ip netns exec`, listens on the namespace's own
//! addresses and dies with its handle.

use crate::cmd::{run, tool};
use crate::error::{LabError, Result};
use crate::process::GroupChild;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Tools the BGP lab tests need: (command, Debian package).
pub const BGP_TOOLS: &[(&str, &str)] = &[("gobgpd", "gobgpd"), ("gobgp", "gobgpd")];
pub const EXABGP_TOOLS: &[(&str, &str)] = &[("exabgp", "exabgp")];
pub const BIRD_TOOLS: &[(&str, &str)] = &[("bird", "bird2"), ("birdc", "bird2")];
pub const STAYRTR_TOOLS: &[(&str, &str)] = &[("stayrtr", "stayrtr")];

fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new(tool("ip"));
    c.args(["netns", "exec", ns, &tool(program)]);
    c
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| LabError::io("write", path, e))
}

/// Writes `dir/roas.json` (rpki-client JSON): one ROA giving `prefix`,
/// up to /24, to [`LEVEE_AS`]. The lab's default is the lab network
/// (`10.213.0.0/16`), which holds every victim address.
pub fn write_roas(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let path = dir.join("roas.json");
    write(
        &path,
        &format!(
            r#"{{"roas":[{{"prefix":"{prefix}","maxLength":24,"asn":"AS{LEVEE_AS}","ta":"lab"}}]}}"#
        ),
    )?;
    Ok(path)
}

/// The lab network: every victim address is inside it.
pub const LAB_NET: &str = "10.213.0.0/16";

/// Polls `f` every 50 ms until it returns `Some` or `limit` passes.
pub fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One BGP neighbor of a gobgpd.
#[derive(Debug, Clone)]
pub struct Neighbor {
    pub address: IpAddr,
    pub asn: u32,
}

/// A gobgpd in a namespace, with its gRPC API on the namespace's loopback.
pub struct GoBgpd {
    child: GroupChild,
    ns: String,
    api_port: u16,
    pub config: PathBuf,
}

/// The lab's BGP roles: the edge router's AS (attacker namespace) and the
/// AS Levee's speaker announces from (victim namespace).
pub const EDGE_AS: u32 = 65000;
pub const LEVEE_AS: u32 = 64500;

impl GoBgpd {
    /// The edge router: gobgpd in the attacker namespace as [`EDGE_AS`],
    /// peering with the victim as [`LEVEE_AS`].
    pub fn edge(lab: &crate::Lab, dir: &Path, api_port: u16) -> Result<GoBgpd> {
        let (vic, att) = (IpAddr::V4(lab.victim_ip()), IpAddr::V4(lab.attacker_ip()));
        let peer = Neighbor {
            address: vic,
            asn: LEVEE_AS,
        };
        GoBgpd::start(lab.attacker_ns(), dir, EDGE_AS, att, &[peer], api_port)
    }

    /// Levee's speaker as gobgpd: in the victim namespace as [`LEVEE_AS`],
    /// peering with the edge router.
    pub fn levee_speaker(lab: &crate::Lab, dir: &Path, api_port: u16) -> Result<GoBgpd> {
        let (vic, att) = (IpAddr::V4(lab.victim_ip()), IpAddr::V4(lab.attacker_ip()));
        let peer = Neighbor {
            address: att,
            asn: EDGE_AS,
        };
        GoBgpd::start(lab.victim_ns(), dir, LEVEE_AS, vic, &[peer], api_port)
    }

    /// The edge router and Levee's gobgpd speaker ([`GoBgpd::edge`],
    /// [`GoBgpd::levee_speaker`]) with their session established: the
    /// start of every test that announces through gobgpd.
    pub fn edge_and_speaker(
        lab: &crate::Lab,
        dir: &Path,
        edge_port: u16,
        speaker_port: u16,
    ) -> Result<(GoBgpd, GoBgpd)> {
        let mut edge = GoBgpd::edge(lab, dir, edge_port)?;
        let speaker = GoBgpd::levee_speaker(lab, dir, speaker_port)?;
        edge.wait_established(IpAddr::V4(lab.victim_ip()), Duration::from_secs(30))?;
        Ok((edge, speaker))
    }

    /// Starts gobgpd in `ns` as `asn` with `router_id`, peering with
    /// `neighbors` for IPv4/IPv6 unicast and FlowSpec. The config is written
    /// to `dir/gobgpd-<api_port>.toml`.
    pub fn start(
        ns: &str,
        dir: &Path,
        asn: u32,
        router_id: IpAddr,
        neighbors: &[Neighbor],
        api_port: u16,
    ) -> Result<GoBgpd> {
        let mut conf = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n\n");
        for n in neighbors {
            conf.push_str(&format!(
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n  [neighbors.timers.config]\n    connect-retry = 1\n",
                n.address, n.asn
            ));
            for fam in [
                "ipv4-unicast",
                "ipv6-unicast",
                "ipv4-flowspec",
                "ipv6-flowspec",
            ] {
                conf.push_str(&format!(
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{fam}\"\n"
                ));
            }
        }
        let config = dir.join(format!("gobgpd-{api_port}.toml"));
        write(&config, &conf)?;
        let mut c = in_ns(ns, "gobgpd");
        c.arg("-f").arg(&config).args([
            "--api-hosts",
            &format!("127.0.0.1:{api_port}"),
            "--pprof-disable",
            "-l",
            "warn",
        ]);
        let mut d = GoBgpd {
            child: GroupChild::spawn(c)?,
            ns: ns.to_string(),
            api_port,
            config,
        };
        let up = wait_until(Duration::from_secs(10), || d.cli(&["global"]).ok());
        if up.is_none() {
            let err = d.child.stderr_text();
            return Err(LabError::Other(format!(
                "gobgpd in {ns} did not answer on 127.0.0.1:{api_port} within 10 s: {err}"
            )));
        }
        Ok(d)
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// `gobgp -u 127.0.0.1 -p PORT args...` inside the namespace; stdout.
    pub fn cli(&mut self, args: &[&str]) -> Result<String> {
        if let Some(s) = self.child.try_status() {
            return Err(self.child.exit_error(s));
        }
        let mut c = in_ns(&self.ns, "gobgp");
        c.args(["-u", "127.0.0.1", "-p", &self.api_port.to_string()])
            .args(args);
        let out = run(&mut c)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The RIB of `family` (`ipv4-flowspec`, `ipv6`, ...) as text.
    pub fn rib(&mut self, family: &str) -> Result<String> {
        self.cli(&["global", "rib", "-a", family])
    }

    /// Waits until the session with `peer` is established.
    pub fn wait_established(&mut self, peer: IpAddr, limit: Duration) -> Result<()> {
        let p = peer.to_string();
        wait_until(limit, || {
            self.cli(&["neighbor"]).ok().filter(|t| {
                t.lines().any(|l| {
                    l.split_whitespace().next() == Some(p.as_str()) && l.contains("Establ")
                })
            })
        })
        .map(|_| ())
        .ok_or_else(|| {
            let state = self.cli(&["neighbor"]).unwrap_or_default();
            LabError::Other(format!(
                "BGP session {} -> {peer} not established within {limit:?}: {state}",
                self.ns
            ))
        })
    }

    /// Milliseconds until the RIB of `family` does (`present`) or does not
    /// hold `needle`, polled back to back (benchmarks: each figure is an
    /// upper bound including up to one poll); an error after `limit`.
    pub fn ms_until(
        &mut self,
        family: &str,
        present: bool,
        needle: &str,
        limit: Duration,
    ) -> Result<f64> {
        let t0 = Instant::now();
        loop {
            let rib = self.rib(family).unwrap_or_default();
            if rib.contains(needle) == present {
                return Ok(t0.elapsed().as_secs_f64() * 1000.0);
            }
            if t0.elapsed() >= limit {
                return Err(LabError::Other(format!(
                    "{family} RIB in {} did not {} {needle} within {limit:?}:\n{rib}",
                    self.ns,
                    if present { "show" } else { "drop" }
                )));
            }
        }
    }

    /// Waits until `pred` holds for the RIB of `family`; returns that RIB.
    pub fn wait_rib(
        &mut self,
        family: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let mut last = String::new();
        let r = wait_until(limit, || {
            let t = self.rib(family).ok()?;
            last = t.clone();
            pred(&t).then_some(t)
        });
        r.ok_or_else(|| {
            LabError::Other(format!(
                "{family} RIB in {} after {limit:?}:\n{last}",
                self.ns
            ))
        })
    }
}

/// stayrtr serving `roas_json` over RTR on `127.0.0.1:port` in `ns`.
pub struct StayRtr {
    _child: GroupChild,
    pub port: u16,
}

impl StayRtr {
    pub fn start(ns: &str, dir: &Path, roas_json: &str, port: u16) -> Result<StayRtr> {
        let file = dir.join("roas.json");
        write(&file, roas_json)?;
        let mut c = in_ns(ns, "stayrtr");
        c.arg("-cache").arg(&file).args([
            "-bind",
            &format!("127.0.0.1:{port}"),
            "-checktime=false",
            "-metrics.addr",
            "127.0.0.1:0",
            "-log.verbose=false",
        ]);
        let mut child = GroupChild::spawn(c)?;
        // Ready when its log says the cache was loaded and the server started.
        let ok = wait_until(Duration::from_secs(10), || {
            child.stderr_text().contains("Server started").then_some(())
        });
        if ok.is_none() {
            return Err(LabError::Other(format!(
                "stayrtr in {ns} did not start within 10 s: {}",
                child.stderr_text()
            )));
        }
        Ok(StayRtr {
            _child: child,
            port,
        })
    }
}

/// ExaBGP in a namespace, peering with one neighbor, fed by Levee through
/// a named pipe (`dir/exabgp.cmd`, acknowledgements in `dir/exabgp.acks`).
pub struct ExaBgpd {
    child: GroupChild,
    pub pipe: PathBuf,
    pub acks: PathBuf,
}

impl ExaBgpd {
    /// `script` is the process script (levee-bgp's `process_script`).
    pub fn start(
        ns: &str,
        dir: &Path,
        local: (IpAddr, u32),
        peer: (IpAddr, u32),
        script: &str,
    ) -> Result<ExaBgpd> {
        let pipe = dir.join("exabgp.cmd");
        let acks = dir.join("exabgp.acks");
        let script_path = dir.join("exabgp-levee.sh");
        write(&script_path, script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| LabError::io("chmod", &script_path, e))?;
        let conf = format!(
            "process levee {{\n  run {script};\n  encoder text;\n}}\n\
             neighbor {peer_ip} {{\n  router-id {local_ip};\n  local-address {local_ip};\n  local-as {local_as};\n  peer-as {peer_as};\n\
               family {{\n    ipv4 unicast;\n    ipv6 unicast;\n    ipv4 flow;\n    ipv6 flow;\n  }}\n\
               api {{\n    processes [ levee ];\n  }}\n}}\n",
            script = script_path.display(),
            peer_ip = peer.0,
            peer_as = peer.1,
            local_ip = local.0,
            local_as = local.1,
        );
        let conf_path = dir.join("exabgp.conf");
        write(&conf_path, &conf)?;
        let mut c = in_ns(ns, "exabgp");
        c.arg(&conf_path)
            .env("exabgp.daemon.user", "root")
            .env("exabgp.daemon.drop", "false")
            .env("exabgp.api.ack", "true")
            .env("exabgp.api.cli", "false")
            .env("exabgp.log.destination", "stderr")
            .env("exabgp.tcp.port", "179");
        let child = GroupChild::spawn(c)?;
        Ok(ExaBgpd { child, pipe, acks })
    }

    pub fn stderr(&mut self) -> String {
        self.child.stderr_text()
    }

    pub fn check(&mut self) -> Result<()> {
        match self.child.try_status() {
            Some(s) => Err(self.child.exit_error(s)),
            None => Ok(()),
        }
    }
}

/// BIRD 2 in a namespace with its control socket in `dir`.
pub struct Bird {
    child: GroupChild,
    pub socket: PathBuf,
    pub config: PathBuf,
}

impl Bird {
    /// Starts `bird -f` with `config` (written to `dir/bird.conf`).
    pub fn start(ns: &str, dir: &Path, config: &str) -> Result<Bird> {
        let conf_path = dir.join("bird.conf");
        write(&conf_path, config)?;
        let socket = dir.join("bird.ctl");
        let mut c = in_ns(ns, "bird");
        c.arg("-f")
            .arg("-c")
            .arg(&conf_path)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let mut child = GroupChild::spawn(c)?;
        let up = wait_until(Duration::from_secs(10), || socket.exists().then_some(()));
        if up.is_none() {
            return Err(match child.try_status() {
                Some(s) => child.exit_error(s),
                None => LabError::Other(format!("bird in {ns}: no control socket after 10 s")),
            });
        }
        Ok(Bird {
            child,
            socket,
            config: conf_path,
        })
    }

    pub fn check(&mut self) -> Result<()> {
        match self.child.try_status() {
            Some(s) => Err(self.child.exit_error(s)),
            None => Ok(()),
        }
    }
}

/// FRR's daemons for the lab: (command, Debian package).
pub const FRR_TOOLS: &[(&str, &str)] = &[("vtysh", "frr")];

/// Where Debian's `frr` package puts its daemons (not on PATH).
const FRR_DAEMONS: &str = "/usr/lib/frr";

/// FRR (zebra, staticd, bgpd) in a namespace, peering with one neighbor.
/// The daemons drop to the `frr` user, so their config, pid files and vty
/// sockets live in a directory of their own that user can write
/// (`vty_dir`, removed on drop); `vtysh --vty_socket <vty_dir>` reaches
/// this instance and no other.
pub struct Frr {
    children: Vec<GroupChild>,
    dir: tempfile::TempDir,
}

impl Frr {
    /// Starts the daemons with `router bgp <local.1>` peering with `peer`
    /// for IPv4 and IPv6 unicast (no outbound policy required, as on a
    /// lab edge).
    pub fn start(ns: &str, local: (IpAddr, u32), peer: (IpAddr, u32)) -> Result<Frr> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("levee-frr-")
            .tempdir()
            .map_err(|e| LabError::io("create", Path::new("/tmp/levee-frr-*"), e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .map_err(|e| LabError::io("chmod", dir.path(), e))?;
        let (pip, pas) = peer;
        write(
            &dir.path().join("bgpd.conf"),
            &format!(
                "router bgp {}\n bgp router-id {}\n no bgp ebgp-requires-policy\n neighbor {pip} remote-as {pas}\n neighbor {pip} timers connect 1\n \
                 address-family ipv6 unicast\n  neighbor {pip} activate\n exit-address-family\n",
                local.1, local.0
            ),
        )?;
        let mut children = Vec::new();
        for d in ["zebra", "staticd", "bgpd"] {
            let conf = dir.path().join(format!("{d}.conf"));
            if !conf.exists() {
                write(&conf, "")?;
            }
            let mut c = Command::new(tool("ip"));
            c.args(["netns", "exec", ns])
                .arg(Path::new(FRR_DAEMONS).join(d))
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(dir.path().join(format!("{d}.pid")))
                .arg("-z")
                .arg(dir.path().join("zserv.api"))
                .arg("--vty_socket")
                .arg(dir.path())
                .arg("--log")
                .arg(format!(
                    "file:{}",
                    dir.path().join(format!("{d}.log")).display()
                ));
            if d == "bgpd" {
                c.args(["-p", "179", "-l", &local.0.to_string()]);
            }
            children.push(GroupChild::spawn(c)?);
            let sock = dir.path().join(format!("{d}.vty"));
            if wait_until(Duration::from_secs(10), || sock.exists().then_some(())).is_none() {
                let last = children.last_mut().expect("just pushed");
                return Err(match last.try_status() {
                    Some(s) => last.exit_error(s),
                    None => LabError::Other(format!("FRR {d} in {ns}: no vty socket after 10 s")),
                });
            }
        }
        Ok(Frr { children, dir })
    }

    /// The directory to give `vtysh --vty_socket`.
    pub fn vty_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `vtysh -c command` against this instance; stdout.
    pub fn show(&self, command: &str) -> Result<String> {
        let mut c = Command::new(tool("vtysh"));
        c.arg("--vty_socket")
            .arg(self.dir.path())
            .args(["-c", command]);
        let out = run(&mut c)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An error if a daemon has exited.
    pub fn check(&mut self) -> Result<()> {
        for c in &mut self.children {
            if let Some(s) = c.try_status() {
                return Err(c.exit_error(s));
            }
        }
        Ok(())
    }
}
