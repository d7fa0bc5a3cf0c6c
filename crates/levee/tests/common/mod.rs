//! Shared by the tests that run `levee server` / `levee up` as processes.
#![allow(dead_code)]

use levee_proto::Fingerprint;
use levee_uplink::pin::{client_config, PinVerifier, Trust};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A child process whose stdout and stderr lines are collected.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(args)
            .env("LEVEE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn levee");
        let (tx, lines) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The certificate fingerprint `levee server` / `levee up` prints
    /// (`fingerprint: <hex>`).
    pub fn fingerprint(&mut self, limit: Duration) -> Fingerprint {
        self.wait_line("fingerprint:", limit)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The admin token in `levee up`'s banner (`admin token:  <token>  (valid ...)`).
    pub fn up_admin_token(&mut self, limit: Duration) -> String {
        self.wait_line("admin token:", limit)
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    }

    /// The first line containing `needle` (within `limit`).
    pub fn wait_line(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {limit:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGINT and wait for a clean exit.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "levee did not stop within 20 s of SIGINT:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn last_word(line: &str) -> String {
    line.split_whitespace().last().unwrap().to_string()
}

pub fn get(url: &str, fp: Fingerprint, token: &str) -> Value {
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .build()
        .unwrap();
    let r = c.get(url).bearer_auth(token).send().unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A POST with a bearer token; the answer as JSON (must be 2xx).
pub fn post(url: &str, fp: Fingerprint, token: &str, body: Value) -> Value {
    send("POST", url, fp, token, body)
}

/// A PUT with a bearer token; the answer as JSON (must be 2xx).
pub fn put(url: &str, fp: Fingerprint, token: &str, body: Value) -> Value {
    send("PUT", url, fp, token, body)
}

fn send(method: &str, url: &str, fp: Fingerprint, token: &str, body: Value) -> Value {
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .build()
        .unwrap();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = c
        .request(m, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status();
    let v: Value = r.json().unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {url}: {status} {v}");
    v
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `limit`
/// naming `what` and the last value seen.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("{what} did not happen within {limit:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The text of `url` without a token (e.g. /metrics).
pub fn text(url: &str, fp: Fingerprint) -> String {
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .build()
        .unwrap();
    c.get(url).send().unwrap().text().unwrap()
}
