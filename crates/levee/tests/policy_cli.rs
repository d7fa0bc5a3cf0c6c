//! The server's policy and commands reach a running agent: `levee up` (a
//! real server and an enrolled agent on this host, over pinned TLS), an
//! operator changing the tenant policy and queueing commands through the
//! REST API, and what the agent does with them, seen from its events and
//! from the server. Needs no root: counters only, no mitigation.

mod common;

use common::{free_port, get, post, put, wait_for, Proc};
use levee_proto::Fingerprint;
use serde_json::{json, Value};
use std::time::Duration;

struct Up {
    p: Proc,
    url: String,
    fp: Fingerprint,
    token: String,
    node: i64,
}

fn up(dir: &std::path::Path) -> Up {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut p = Proc::spawn(&[
        "up",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        &listen,
        "--no-capture",
        "--tick",
        "200ms",
        "--baseline-warmup",
        "2s",
        "--node",
        "policy-test",
    ]);
    let url = format!("https://127.0.0.1:{port}");
    let fp: Fingerprint = p.fingerprint(Duration::from_secs(30));
    let token = p.up_admin_token(Duration::from_secs(5));
    p.wait_line("\"event\":\"agent_started\"", Duration::from_secs(15));
    let node = wait_for("the node online", Duration::from_secs(15), || {
        let nodes = get(&format!("{url}/api/v1/nodes"), fp, &token);
        match nodes.get(0) {
            Some(n) if n["online"] == true => Ok(n["id"].as_i64().unwrap()),
            _ => Err(nodes.to_string()),
        }
    });
    Up {
        p,
        url,
        fp,
        token,
        node,
    }
}

impl Up {
    fn get(&self, path: &str) -> Value {
        get(&format!("{}{path}", self.url), self.fp, &self.token)
    }

    /// The node's command `id` once the agent has reported its result.
    fn result_of(&self, id: &Value) -> Value {
        wait_for("the command's result", Duration::from_secs(30), || {
            let cmds = self.get(&format!("/api/v1/nodes/{}/commands", self.node));
            cmds.as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == *id && !c["ok"].is_null())
                .cloned()
                .ok_or(cmds.to_string())
        })
    }
}

#[test]
fn a_tenant_policy_retunes_the_running_agent_and_commands_come_back_with_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = up(dir.path());
    // Floors no real traffic reaches, so the threshold the detector reports
    // is the floor itself.
    let pol = put(
        &format!("{}/api/v1/policy", u.url),
        u.fp,
        &u.token,
        json!({"allowlist": ["198.51.100.0/24"],
               "detector": {"multiplier": 4.5, "floors": {"rx_pps": 5.0e7, "udp_pps": 4.0e7}}}),
    );
    let version = pol["version"].as_u64().unwrap();
    assert!(version >= 1);
    let line =
        u.p.wait_line("\"event\":\"policy_applied\"", Duration::from_secs(15));
    let ev: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(ev["version"], version, "{ev}");
    assert_eq!(ev["multiplier"], 4.5);
    assert_eq!(ev["floors"]["rx_pps"], 5.0e7);
    assert_eq!(
        ev["floors"]["tcp_pps"], 2000.0,
        "unset floors keep the agent's"
    );
    assert_eq!(ev["allowlist"], 1);
    assert_eq!(ev["rejected"], json!([]));

    // The detector itself runs with them: the thresholds it reports (with
    // its baselines, every 10 s) are the policy's floors.
    let node = format!("/api/v1/nodes/{}", u.node);
    wait_for(
        "thresholds at the policy's floors",
        Duration::from_secs(40),
        || {
            let n = u.get(&node);
            let b = n["baselines"].as_array().cloned().unwrap_or_default();
            let th = |target_host: bool, metric: &str| {
                b.iter()
                    .filter(|e| e["metric"] == metric && (e["target"] == "host") == target_host)
                    .map(|e| e["threshold"].as_f64().unwrap())
                    .collect::<Vec<_>>()
            };
            let (rx, udp) = (th(false, "rx_pps"), th(true, "udp_pps"));
            if !rx.is_empty() && rx.iter().all(|t| *t == 5.0e7) && udp == [4.0e7] {
                Ok(())
            } else {
                Err(format!("{b:?}"))
            }
        },
    );
    // The server sees the event and the node's policy version.
    wait_for(
        "policy_applied on the server",
        Duration::from_secs(20),
        || {
            let evs = u.get("/api/v1/events?kind=policy_applied");
            (evs.as_array().unwrap().len() == 1)
                .then_some(())
                .ok_or(evs.to_string())
        },
    );
    wait_for("the node's policy version", Duration::from_secs(20), || {
        let n = u.get(&node);
        (n["policy_version"] == version)
            .then_some(())
            .ok_or(n.to_string())
    });

    // Commands: queued, run by the agent, the result back on the server.
    let cmds = format!("{}/api/v1/nodes/{}/commands", u.url, u.node);
    let save = post(&cmds, u.fp, &u.token, json!({"kind": "save_baseline"}));
    let rollback = post(
        &cmds,
        u.fp,
        &u.token,
        json!({"kind": "rollback_mitigation",
               "args": {"mitigation_id": "01a1fbca-a736-7516-aa18-813da2481001"}}),
    );
    let reload = post(&cmds, u.fp, &u.token, json!({"kind": "reload_iocs"}));
    let r = u.result_of(&save["id"]);
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        r["result"].as_str().unwrap().starts_with("baseline saved"),
        "{r}"
    );
    assert!(r["acked_at"].is_string());
    assert!(dir.path().join("agent/baseline.json").exists());
    let r = u.result_of(&rollback["id"]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["result"].as_str().unwrap().contains("mitigation is off"),
        "{r}"
    );
    let r = u.result_of(&reload["id"]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["result"].as_str().unwrap().contains("no indicator lists"),
        "{r}"
    );
    // Each ran once, however often the server repeated it before the ack.
    let line_count = |needle: &str| {
        std::fs::read_to_string(find_events(dir.path()))
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    assert_eq!(line_count("\"event\":\"command_executed\""), 3);
    assert!(u.p.interrupt().success());
}

/// The agent's event log under `levee up`'s data dir.
fn find_events(dir: &std::path::Path) -> std::path::PathBuf {
    fn walk(d: &std::path::Path) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = walk(&p) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == "events.jsonl") {
                return Some(p);
            }
        }
        None
    }
    walk(dir).expect("an events.jsonl under the data dir")
}
