//! Scale-out: two `levee server` processes on one PostgreSQL database (the
//! deployment ARCHITECTURE.md describes). Either replica serves any request;
//! exactly one runs the singleton jobs (an advisory lock), so a node going
//! silent makes one `node_offline` event, not two; when the leader dies the
//! other replica takes over.

mod common;

use common::{free_port, get, post, text, Proc};
use levee_lab::{require_postgres, PgCluster};
use levee_proto::Fingerprint;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

fn leader_flag(url: &str, fp: Fingerprint) -> Option<u8> {
    text(&format!("{url}/metrics"), fp)
        .lines()
        .find(|l| l.starts_with("levee_leader "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn wait(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn replica(db: &str, data: &Path, config: &Path, port: u16, tls: Option<(&Path, &Path)>) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = [
        "server",
        "--listen",
        &listen,
        "--database-url",
        db,
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(data.to_string_lossy().into());
    args.push("--config".into());
    args.push(config.to_string_lossy().into());
    if let Some((c, k)) = tls {
        args.extend([
            "--tls-cert".into(),
            c.to_string_lossy().into(),
            "--tls-key".into(),
            k.to_string_lossy().into(),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn(&refs)
}

#[test]
fn two_replicas_share_one_database_and_one_leader() {
    if require_postgres().is_some() {
        return;
    }
    let pg = PgCluster::start(&[]).expect("start PostgreSQL");
    let db = pg.create_db("levee_scale").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[server]\nheartbeat_interval = \"1s\"\nheartbeat_timeout = \"3s\"\njobs_interval = \"200ms\"\n",
    )
    .unwrap();
    let (pa, pb) = (free_port(), free_port());
    let mut a = replica(&db, &dir.path().join("a"), &config, pa, None);
    let fp: Fingerprint = a.fingerprint(Duration::from_secs(30));
    let admin = common::last_word(&a.wait_line("admin token", Duration::from_secs(5)));
    // The second replica serves the same certificate (as behind a load balancer).
    let tls = dir.path().join("a/tls");
    let mut b = replica(
        &db,
        &dir.path().join("b"),
        &config,
        pb,
        Some((&tls.join("server.crt"), &tls.join("server.key"))),
    );
    let fp_b: Fingerprint = b.fingerprint(Duration::from_secs(30));
    assert_eq!(fp_b, fp);
    let (ua, ub) = (
        format!("https://127.0.0.1:{pa}"),
        format!("https://127.0.0.1:{pb}"),
    );

    // Either replica serves any request.
    assert_eq!(
        get(&format!("{ub}/api/v1/me"), fp, &admin)["role"],
        "admin",
        "B knows A's bootstrap token"
    );
    let e = post(
        &format!("{ua}/api/v1/enrollment-tokens"),
        fp,
        &admin,
        json!({}),
    );
    let enrolled = post(
        &format!("{ub}/api/v1/agent/enroll"),
        fp,
        "",
        json!({"token": e["token"], "node": "web1", "version": "t"}),
    );
    let key = enrolled["agent_key"].as_str().unwrap().to_string();
    post(
        &format!("{ua}/api/v1/agent/heartbeat"),
        fp,
        &key,
        json!({"version": "t"}),
    );
    post(
        &format!("{ub}/api/v1/agent/heartbeat"),
        fp,
        &key,
        json!({"version": "t"}),
    );

    // Exactly one leader.
    wait("a leader", Duration::from_secs(10), || {
        let flags = (leader_flag(&ua, fp), leader_flag(&ub, fp));
        matches!(flags, (Some(1), Some(0)) | (Some(0), Some(1)))
    });
    let a_leads = leader_flag(&ua, fp) == Some(1);
    // The node goes silent: one node_offline event, whichever replica noticed.
    wait("node online", Duration::from_secs(10), || {
        get(&format!("{ua}/api/v1/nodes"), fp, &admin)[0]["online"] == true
    });
    wait("node offline", Duration::from_secs(15), || {
        get(&format!("{ub}/api/v1/nodes"), fp, &admin)[0]["online"] == false
    });
    std::thread::sleep(Duration::from_secs(2));
    let offline = get(&format!("{ua}/api/v1/events?kind=node_offline"), fp, &admin);
    assert_eq!(
        offline.as_array().unwrap().len(),
        1,
        "one event, not one per replica: {offline}"
    );

    // The leader dies (SIGKILL, no goodbye): the other takes over.
    let (mut leader, mut other, other_url) = if a_leads { (a, b, ub) } else { (b, a, ua) };
    leader.child.kill().unwrap();
    let _ = leader.child.wait();
    wait("a new leader", Duration::from_secs(15), || {
        leader_flag(&other_url, fp) == Some(1)
    });
    // The new leader runs the jobs: the node returns, and is seen returning once.
    post(
        &format!("{other_url}/api/v1/agent/heartbeat"),
        fp,
        &key,
        json!({"version": "t"}),
    );
    wait("node back online", Duration::from_secs(10), || {
        get(&format!("{other_url}/api/v1/nodes"), fp, &admin)[0]["online"] == true
    });
    let online = get(
        &format!("{other_url}/api/v1/events?kind=node_online"),
        fp,
        &admin,
    );
    assert_eq!(online.as_array().unwrap().len(), 2, "{online}");
    let _ = other.wait_line("fingerprint", Duration::from_secs(1));
    assert!(other.interrupt().success());
}
