//! `levee server` and `levee up` as users run them: real processes, real
//! HTTPS on loopback, the certificate pinned from what they print.

mod common;

use common::{free_port, get, last_word, Proc};
use levee_proto::Fingerprint;
use std::time::{Duration, Instant};

#[test]
fn levee_server_prints_its_fingerprint_and_a_working_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().to_str().unwrap();
    let mut p = Proc::spawn(&["server", "--listen", &listen, "--data-dir", data]);
    let fp: Fingerprint = p.fingerprint(Duration::from_secs(30));
    let token = last_word(&p.wait_line("admin token", Duration::from_secs(5)));
    let url = format!("https://127.0.0.1:{port}");
    let me = get(&format!("{url}/api/v1/me"), fp, &token);
    assert_eq!(me["role"], "admin");
    let doc = get(&format!("{url}/api/v1/openapi.json"), fp, "none");
    assert!(doc["paths"].as_object().unwrap().len() > 20);
    assert!(p.interrupt().success());
    // A restart keeps the certificate and does not print a new admin token.
    let mut p = Proc::spawn(&["server", "--listen", &listen, "--data-dir", data]);
    let again: Fingerprint = p.fingerprint(Duration::from_secs(30));
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
    let fp: Fingerprint = p.fingerprint(Duration::from_secs(5));
    let token = p.up_admin_token(Duration::from_secs(5));
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
    let token2 = p.up_admin_token(Duration::from_secs(30));
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
