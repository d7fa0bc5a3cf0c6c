//! Legitimate load between the lab's namespaces, for "this is not an attack"
//! tests and for collateral-damage checks: an iperf3 bulk TCP transfer, and
//! many HTTP requests from wrk to an nginx in the victim namespace.
//!
//! Servers run in the victim namespace, clients in the attacker's; every
//! process is bounded by `timeout` and killed with its process group when the
//! [`LegitLoad`] handle drops. nginx runs from a private prefix (its own
//! config, logs and temp dirs in a temporary directory), never touching the
//! system's nginx configuration.

use crate::clock::timeout_arg;
use crate::cmd::tool;
use crate::error::{LabError, Result};
use crate::lab::{Lab, Ns};
use crate::process::GroupChild;
use std::process::Command;
use std::time::{Duration, Instant};

/// Tools this module needs: (command, Debian package).
pub const LEGIT_TOOLS: &[(&str, &str)] =
    &[("iperf3", "iperf3"), ("nginx", "nginx"), ("wrk", "wrk")];

const IPERF_PORT: u16 = 5201;
const HTTP_PORT: u16 = 80;

/// Running legitimate load; stopped on drop.
#[derive(Debug)]
pub struct LegitLoad {
    /// Servers first, then the client.
    children: Vec<GroupChild>,
    client_duration: Duration,
    started: Instant,
    _dir: Option<tempfile::TempDir>,
}

impl LegitLoad {
    /// Waits for the client to finish (its duration plus a grace period) and
    /// returns an error if it failed.
    pub fn wait(&mut self) -> Result<()> {
        let left = self.client_duration.saturating_sub(self.started.elapsed());
        let Some(client) = self.children.last_mut() else {
            return Ok(());
        };
        match client.wait_timeout(left + Duration::from_secs(5)) {
            Some(s) if s.success() || s.code() == Some(124) => Ok(()),
            Some(s) => Err(client.exit_error(s)),
            None => {
                client.kill();
                Err(LabError::Other(format!(
                    "`{}` overran its {:?}",
                    client.command(),
                    self.client_duration
                )))
            }
        }
    }
}

impl Drop for LegitLoad {
    fn drop(&mut self) {
        for c in &mut self.children {
            c.kill();
        }
    }
}

/// `timeout -k 2 <d> ip netns exec <ns> <argv>`.
fn bounded_in(lab: &Lab, ns: Ns, duration: Duration, argv: &[String]) -> Command {
    let mut c = Command::new(tool("timeout"));
    c.args(["-k", "2", &timeout_arg(duration)])
        .arg(tool("ip"))
        .args(["netns", "exec", lab.ns_name(ns)])
        .args(argv);
    c
}

/// Waits until something listens on TCP `port` in the victim namespace.
fn wait_listening(lab: &Lab, port: u16, server: &mut GroupChild) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let filter = format!("sport = :{port}");
    while Instant::now() < deadline {
        let out = lab.exec_in_stdout(Ns::Victim, &["ss", "-Hltn", &filter])?;
        if !out.trim().is_empty() {
            return Ok(());
        }
        if let Some(s) = server.try_status() {
            return Err(server.exit_error(s));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(LabError::Other(format!(
        "`{}` is not listening on port {port} after 5 s",
        server.command()
    )))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Lab {
    /// A bulk TCP transfer (iperf3) from attacker to victim for `duration`.
    pub fn iperf3_transfer(&self, duration: Duration) -> Result<LegitLoad> {
        let ip = self.victim_ip().to_string();
        let port = IPERF_PORT.to_string();
        let server_args = strings(&["iperf3", "-s", "-1", "-B", &ip, "-p", &port]);
        let secs = duration.as_secs().max(1).to_string();
        let client_args = strings(&["iperf3", "-c", &ip, "-p", &port, "-t", &secs]);
        self.server_and_client(duration, &server_args, IPERF_PORT, &client_args, None)
    }

    /// nginx in the victim namespace answering `200 ok`, and wrk sending
    /// requests over `connections` keep-alive connections for `duration`.
    pub fn http_load(&self, duration: Duration, connections: u32) -> Result<LegitLoad> {
        let dir = tempfile::Builder::new()
            .prefix("levee-lab-nginx-")
            .tempdir()
            .map_err(|e| LabError::io("creating a temporary dir in", std::env::temp_dir(), e))?;
        let d = dir.path().display().to_string();
        let ip = self.victim_ip();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 server {{ listen {ip}:{HTTP_PORT}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| LabError::io("writing", &conf_path, e))?;
        let server_args = strings(&[
            "nginx",
            "-p",
            &d,
            "-e",
            &format!("{d}/error.log"),
            "-c",
            &conf_path.display().to_string(),
        ]);
        let secs = format!("{}s", duration.as_secs().max(1));
        let conns = connections.max(1).to_string();
        let client_args = strings(&[
            "wrk",
            "-t",
            "1",
            "-c",
            &conns,
            "-d",
            &secs,
            &format!("http://{ip}:{HTTP_PORT}/"),
        ]);
        self.server_and_client(duration, &server_args, HTTP_PORT, &client_args, Some(dir))
    }

    /// Starts the server in the victim namespace, waits until it listens on
    /// `port`, then starts the client in the attacker's for `duration`.
    fn server_and_client(
        &self,
        duration: Duration,
        server_args: &[String],
        port: u16,
        client_args: &[String],
        dir: Option<tempfile::TempDir>,
    ) -> Result<LegitLoad> {
        let mut server = GroupChild::spawn(bounded_in(
            self,
            Ns::Victim,
            duration + Duration::from_secs(10),
            server_args,
        ))?;
        wait_listening(self, port, &mut server)?;
        let client = GroupChild::spawn(bounded_in(
            self,
            Ns::Attacker,
            duration + Duration::from_secs(5),
            client_args,
        ))?;
        Ok(LegitLoad {
            children: vec![server, client],
            client_duration: duration + Duration::from_secs(1),
            started: Instant::now(),
            _dir: dir,
        })
    }
}
