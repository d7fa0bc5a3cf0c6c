//! Runs `levee server` inside one of the lab's namespaces (the attacker
//! side: agents in the victim namespace reach it over the veth, and the
//! host's own network is never touched) and talks to its API with `curl`
//! run in the same namespace.
//!
//! The server prints its fingerprint and, on first start, an admin token;
//! [`ServerProcess`] reads both. Stopping sends SIGTERM; restarting reuses
//! the data dir and address, so the certificate and data survive.

use crate::cmd::{describe, tool};
use crate::error::{LabError, Result};
use crate::lab::{Lab, Ns};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The Debian packages the server helpers use besides the lab's.
pub const SERVER_TOOLS: &[(&str, &str)] = &[("curl", "curl")];

pub struct ServerProcess {
    ns: Ns,
    ns_name: String,
    bin: PathBuf,
    data_dir: PathBuf,
    listen: String,
    extra_args: Vec<String>,
    child: Option<Child>,
    lines: Option<mpsc::Receiver<String>>,
    pub url: String,
    pub fingerprint: String,
    /// The bootstrap admin token (from the first start).
    pub admin_token: String,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("url", &self.url)
            .finish()
    }
}

impl ServerProcess {
    /// Starts `levee server --listen <ip>:<port> --data-dir <data_dir>` in `ns`.
    pub fn start(
        lab: &Lab,
        ns: Ns,
        bin: &Path,
        data_dir: &Path,
        ip: &str,
        port: u16,
    ) -> Result<ServerProcess> {
        Self::start_with(lab, ns, bin, data_dir, ip, port, &[])
    }

    /// [`ServerProcess::start`] with more arguments (e.g. `--config FILE`).
    pub fn start_with(
        lab: &Lab,
        ns: Ns,
        bin: &Path,
        data_dir: &Path,
        ip: &str,
        port: u16,
        extra_args: &[String],
    ) -> Result<ServerProcess> {
        let mut s = ServerProcess {
            extra_args: extra_args.to_vec(),
            ns,
            ns_name: lab.ns_name(ns).to_string(),
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            listen: format!("{ip}:{port}"),
            child: None,
            lines: None,
            url: format!("https://{ip}:{port}"),
            fingerprint: String::new(),
            admin_token: String::new(),
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let bin = self.bin.to_string_lossy().into_owned();
        let mut cmd = std::process::Command::new(tool("ip"));
        cmd.args([
            "netns",
            "exec",
            &self.ns_name,
            &bin,
            "server",
            "--listen",
            &self.listen,
            "--data-dir",
        ])
        .arg(&self.data_dir)
        .args(&self.extra_args)
        .env("LEVEE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let command = describe(&cmd);
        let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LabError::Other(format!("no stdout of `{command}`")))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        self.lines = Some(rx);
        // `levee server` prints: listening, data dir, certificate, fingerprint
        // and, on first start only, the admin token.
        let deadline = Instant::now() + Duration::from_secs(30);
        let rx = self.lines.as_ref().expect("just set");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                LabError::Other(format!("`{command}` printed no fingerprint within 30 s"))
            })?;
            if let Some(f) = line.strip_prefix("fingerprint: ") {
                self.fingerprint = f.trim().to_string();
                break;
            }
        }
        if let Ok(l) = rx.recv_timeout(Duration::from_secs(1)) {
            if l.starts_with("admin token") {
                self.admin_token = l.split_whitespace().last().unwrap_or_default().to_string();
            }
        }
        Ok(())
    }

    /// SIGTERM and wait (SIGKILL after 15 s).
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child (`ip netns exec` execs, so it is the server).
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while child
            .try_wait()
            .map_err(|e| LabError::Other(e.to_string()))?
            .is_none()
        {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::Other(
                    "levee server did not stop within 15 s of SIGTERM".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Starts again on the same address and data dir.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let (fp, token) = (self.fingerprint.clone(), self.admin_token.clone());
        self.spawn()?;
        if self.fingerprint != fp {
            return Err(LabError::Other(format!(
                "certificate changed across a restart: {fp} -> {}",
                self.fingerprint
            )));
        }
        self.admin_token = token;
        Ok(())
    }

    /// An API call with the admin token (curl in the server's namespace);
    /// the answer as JSON. Non-2xx is an error with the body.
    pub fn api(&self, lab: &Lab, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (code, json) = self.request(lab, &self.admin_token, method, path, body)?;
        if !(200..300).contains(&code) {
            return Err(LabError::Other(format!(
                "{method} {path} answered {code}: {json}"
            )));
        }
        Ok(json)
    }

    /// An API call with `token` (an API token or an agent key): the HTTP
    /// status and the body as JSON (`null` when empty).
    pub fn request(
        &self,
        lab: &Lab,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        let auth = format!("authorization: Bearer {token}");
        let data = body.map(|b| b.to_string());
        let mut argv = vec![
            "curl",
            "-sS",
            "-k",
            "--max-time",
            "10",
            "-X",
            method,
            "-H",
            &auth,
            "-w",
            "\n%{http_code}",
        ];
        if let Some(d) = &data {
            argv.extend(["-H", "content-type: application/json", "--data-binary", d]);
        }
        argv.push(&url);
        let out = lab.exec_in(self.ns, &argv)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
        let code: u16 = code.trim().parse().map_err(|_| {
            LabError::Other(format!("{method} {path}: no HTTP status from curl: {text}"))
        })?;
        let json = if json.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(json)
                .map_err(|e| LabError::Other(format!("{method} {path}: not JSON ({e}): {json}")))?
        };
        Ok((code, json))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An incident event as an agent posts it (`POST /api/v1/agent/events`):
/// `kind` (`incident_started`, `incident_updated`, `incident_resolved`)
/// of `incident` on `victim` at `bps` bits per second, with event id
/// number `n` (unique per node) and the current time.
pub fn incident_event(
    n: u64,
    kind: &str,
    incident: &str,
    node: &str,
    victim: &str,
    bps: f64,
) -> Value {
    let now = levee_model::timefmt::rfc3339_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    );
    serde_json::json!({"event_id": format!("0192f0c4-0000-7000-8000-{n:012x}"), "ts": now,
        "node": node, "event": kind, "incident_id": incident, "target": "eth0",
        "metric": "rx_bps", "value": bps, "baseline": 1e4, "ratio": bps / 1e4, "threshold": 1e5,
        "metrics": [{"target": "eth0", "metric": "rx_bps", "value": bps, "baseline": 1e4,
                     "threshold": 1e5, "ratio": bps / 1e4, "peak": bps}],
        "started_at": now, "family": "syn_flood", "confidence": 90, "victim": victim,
        "duration_s": 1.0, "peak": bps, "total_packets": 1, "total_bytes": 1})
}

impl ServerProcess {
    /// Enrolls a node named `node` (an enrollment token made with the
    /// admin token, then the agent's enroll call); returns its agent key.
    pub fn enroll_node(&self, lab: &Lab, node: &str) -> Result<String> {
        let tok = self.api(
            lab,
            "POST",
            "/api/v1/enrollment-tokens",
            Some(&serde_json::json!({})),
        )?;
        let body = serde_json::json!({"token": tok["token"], "node": node, "version": "lab"});
        let (code, v) = self.request(lab, "", "POST", "/api/v1/agent/enroll", Some(&body))?;
        match v["agent_key"].as_str() {
            Some(k) if code == 201 => Ok(k.to_string()),
            _ => Err(LabError::Other(format!("enrolling {node}: {code} {v}"))),
        }
    }
}
