//! `levee server` and `levee up` as users run them: real processes, real
//! HTTPS on loopback, the certificate pinned from what they print.

use levee_proto::Fingerprint;
use levee_uplink::pin::{client_config, PinVerifier, Trust};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A child process whose stdout and stderr lines are collected.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
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

    /// The first line containing `needle` (within `limit`).
    fn wait_line(&mut self, needle: &str, limit: Duration) -> String {
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
    fn interrupt(mut self) -> std::process::ExitStatus {
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

fn last_word(line: &str) -> String {
    line.split_whitespace().last().unwrap().to_string()
}

fn get(url: &str, fp: Fingerprint, token: &str) -> Value {
    let c = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .build()
        .unwrap();
    let r = c.get(url).bearer_auth(token).send().unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn levee_server_prints_its_fingerprint_and_a_working_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().to_str().unwrap();
    let mut p = Proc::spawn(&["server", "--listen", &listen, "--data-dir", data]);
    let fp: Fingerprint = p
        .wait_line("fingerprint:", Duration::from_secs(30))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let token = last_word(&p.wait_line("admin token", Duration::from_secs(5)));
    let url = format!("https://127.0.0.1:{port}");
    let me = get(&format!("{url}/api/v1/me"), fp, &token);
    assert_eq!(me["role"], "admin");
    let doc = get(&format!("{url}/api/v1/openapi.json"), fp, "none");
    assert!(doc["paths"].as_object().unwrap().len() > 20);
    assert!(p.interrupt().success());
    // A restart keeps the certificate and does not print a new admin token.
    let mut p = Proc::spawn(&["server", "--listen", &listen, "--data-dir", data]);
    let again: Fingerprint = p
        .wait_line("fingerprint:", Duration::from_secs(30))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(again, fp);
    assert_eq!(
        get(&format!("{url}/api/v1/me"), fp, &token)["role"],
        "admin"
    );
    assert!(p.interrupt().success());
    assert!(!p_has_token_line(dir.path()), "no token is written to disk");
}

fn p_has_token_line(dir: &std::path::Path) -> bool {
    walk(dir).iter().any(|f| {
        std::fs::read(f)
            .map(|b| String::from_utf8_lossy(&b).contains("lvt_"))
            .unwrap_or(false)
    })
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn levee_up_runs_a_server_and_an_enrolled_agent() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "up",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--listen",
        &listen,
        "--no-capture",
        "--tick",
        "200ms",
        "--node",
        "up-test",
    ];
    let mut p = Proc::spawn(&args);
    let url = p
        .wait_line("server:", Duration::from_secs(30))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(url, format!("https://127.0.0.1:{port}"));
    let fp: Fingerprint = p
        .wait_line("fingerprint:", Duration::from_secs(5))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let token = p
        .wait_line("admin token:", Duration::from_secs(5))
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    p.wait_line("\"event\":\"agent_started\"", Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let nodes = get(&format!("{url}/api/v1/nodes"), fp, &token);
        if nodes[0]["name"] == "up-test" && nodes[0]["online"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never showed up online: {nodes}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let kinds: Vec<String> = get(&format!("{url}/api/v1/events"), fp, &token)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"agent_started".to_string()), "{kinds:?}");
    assert!(p.interrupt().success());
    // Second run: already enrolled, same node, a fresh admin token that works.
    let mut p = Proc::spawn(&args);
    let token2 = p
        .wait_line("admin token:", Duration::from_secs(30))
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_ne!(token2, token);
    p.wait_line("\"event\":\"agent_started\"", Duration::from_secs(15));
    let nodes = get(&format!("{url}/api/v1/nodes"), fp, &token2);
    assert_eq!(
        nodes.as_array().unwrap().len(),
        1,
        "no second enrollment: {nodes}"
    );
    assert!(p.interrupt().success());
}
