//! The uplink against a real server over TCP + TLS on loopback: enrollment
//! and pinning, delivery, an outage with an agent restart in the middle, the
//! bounded queue, answers, PCAP uploads.

use levee_model::{Event, EventBody, IncidentInfo, InterfaceRates, TickObservation};
use levee_proto::Fingerprint;
use levee_server::background::BackgroundServer;
use levee_server::ServerConfig;
use levee_uplink::pin::{client_config, PinVerifier, Trust};
use levee_uplink::{enroll_blocking, Credentials, Uplink, UplinkConfig, UplinkHandle};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Srv {
    bg: Option<BackgroundServer>,
    cfg: ServerConfig,
    url: String,
    fp: Fingerprint,
    admin: String,
}

fn server_config(dir: &Path, listen: SocketAddr) -> ServerConfig {
    let mut cfg = ServerConfig {
        data_dir: dir.to_path_buf(),
        listen,
        ..Default::default()
    };
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.heartbeat_timeout = Duration::from_secs(3);
    cfg
}

impl Srv {
    fn start(dir: &Path) -> Srv {
        let cfg = server_config(dir, "127.0.0.1:0".parse().unwrap());
        let bg = BackgroundServer::start(cfg.clone(), 2).expect("server starts");
        let s = bg.started.clone();
        let admin = s.bootstrap.clone().expect("first start").token;
        let mut cfg = cfg;
        cfg.listen = s.local_addr;
        Srv {
            url: format!("https://127.0.0.1:{}", s.local_addr.port()),
            fp: s.fingerprint,
            bg: Some(bg),
            cfg,
            admin,
        }
    }

    fn stop(&mut self) {
        if let Some(bg) = self.bg.take() {
            bg.stop().unwrap();
        }
    }

    /// Same data dir, same port, same certificate.
    fn restart(&mut self) {
        self.stop();
        let bg = BackgroundServer::start(self.cfg.clone(), 2).expect("server restarts");
        assert_eq!(
            bg.started.fingerprint, self.fp,
            "the certificate is kept in the data dir"
        );
        assert!(bg.started.bootstrap.is_none(), "bootstrap happens once");
        self.bg = Some(bg);
    }

    fn http(&self) -> reqwest::blocking::Client {
        let v = Arc::new(PinVerifier::new(Trust::Pinned(self.fp)));
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(client_config(v))
            .build()
            .unwrap()
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let c = self.http();
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => c.get(&url),
            "PUT" => c.put(&url),
            _ => c.post(&url),
        }
        .bearer_auth(&self.admin);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().unwrap();
        let status = resp.status();
        let v: Value = resp.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    fn enrollment_token(&self) -> String {
        self.api("POST", "/api/v1/enrollment-tokens", Some(json!({})))["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ev(n: usize) -> Event {
    Event::new(
        1_795_225_450_000 + n as i64,
        "agent-name",
        EventBody::BaselineReady { series: n },
    )
}

fn uplink(state: &Path, cap: usize) -> UplinkHandle {
    let mut cfg = UplinkConfig::new(state);
    cfg.queue_cap = cap;
    cfg.backoff.max = Duration::from_secs(2);
    Uplink::start(cfg).expect("uplink starts")
}

fn event_ids(srv: &Srv, kind: &str) -> Vec<String> {
    let v = srv.api(
        "GET",
        &format!("/api/v1/events?kind={kind}&limit=1000"),
        None,
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn enrolls_with_a_pinned_certificate_and_delivers() {
    let sdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let srv = Srv::start(sdir.path());
    // A wrong fingerprint is refused before anything is sent.
    let wrong = Fingerprint([0xab; 32]);
    let token = srv.enrollment_token();
    let e = enroll_blocking(&srv.url, &token, "web1", &[], Some(wrong), adir.path()).unwrap_err();
    assert!(format!("{e:#}").contains("pinned"), "{e:#}");
    // The right one enrolls (and the token, unused so far, still works).
    let creds = enroll_blocking(
        &srv.url,
        &token,
        "web1",
        &["eth0".into()],
        Some(srv.fp),
        adir.path(),
    )
    .unwrap();
    assert_eq!(creds.fingerprint, srv.fp);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(Credentials::path(adir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the agent key is private");
    let again = enroll_blocking(
        &srv.url,
        &token,
        "web1",
        &[],
        Some(srv.fp),
        tempfile::tempdir().unwrap().path(),
    );
    assert!(
        again.unwrap_err().to_string().contains("refused"),
        "one-time token"
    );
    // Trust on first use pins what it saw.
    let tofu = tempfile::tempdir().unwrap();
    let c2 = enroll_blocking(
        &srv.url,
        &srv.enrollment_token(),
        "web2",
        &[],
        None,
        tofu.path(),
    )
    .unwrap();
    assert_eq!(c2.fingerprint, srv.fp);

    let up = uplink(adir.path(), 2000);
    let now = levee_server::store::now_ms();
    for i in 0..30 {
        up.tick(&TickObservation {
            unix_ms: now - 3_000 + i * 100,
            dt: 0.1,
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_pps: 1000.0,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    for n in 0..5 {
        up.event(&ev(n));
    }
    wait_until(
        "events and telemetry delivered",
        Duration::from_secs(10),
        || {
            let s = up.status();
            s.events_delivered == 5 && s.samples_delivered >= 1 && s.heartbeats >= 1
        },
    );
    assert_eq!(event_ids(&srv, "baseline_ready").len(), 5);
    let node = creds.node_id;
    let m = srv.api(
        "GET",
        &format!("/api/v1/nodes/{node}/metrics?target=eth0"),
        None,
    );
    let pts = m["points"].as_array().unwrap();
    assert!(
        !pts.is_empty()
            && pts
                .iter()
                .all(|p| (p["rx_pps"].as_f64().unwrap() - 1000.0).abs() < 1e-6),
        "{m}"
    );
    wait_until("node online", Duration::from_secs(5), || {
        srv.api("GET", &format!("/api/v1/nodes/{node}"), None)["online"] == true
    });
    up.shutdown(Duration::from_secs(2));
}

#[test]
fn an_outage_with_an_agent_restart_loses_no_event() {
    let sdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let mut srv = Srv::start(sdir.path());
    enroll_blocking(
        &srv.url,
        &srv.enrollment_token(),
        "web1",
        &[],
        Some(srv.fp),
        adir.path(),
    )
    .unwrap();
    let up = uplink(adir.path(), 2000);
    up.event(&ev(0));
    wait_until("first event", Duration::from_secs(10), || {
        up.status().events_delivered == 1
    });
    srv.stop();
    let mut sent = vec![];
    for n in 1..=40 {
        let e = ev(n);
        sent.push(e.event_id.unwrap().to_string());
        up.event(&e);
    }
    wait_until("the uplink notices", Duration::from_secs(15), || {
        !up.status().link_up
    });
    // The agent restarts during the outage: the queue is on disk.
    up.shutdown(Duration::from_millis(200));
    let up = uplink(adir.path(), 2000);
    assert_eq!(up.status().queued, 40);
    for n in 41..=60 {
        let e = ev(n);
        sent.push(e.event_id.unwrap().to_string());
        up.event(&e);
    }
    std::thread::sleep(Duration::from_secs(3));
    srv.restart();
    wait_until("replay after the outage", Duration::from_secs(20), || {
        up.status().queued == 0
    });
    let got = event_ids(&srv, "baseline_ready");
    for id in &sent {
        assert!(got.contains(id), "event {id} was lost");
    }
    assert_eq!(got.len(), 61, "each event stored once");
    // In order: the server's row ids follow the agent's order.
    let rows = srv.api("GET", "/api/v1/events?kind=baseline_ready&limit=1000", None);
    let series: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["body"]["series"].as_u64().unwrap())
        .collect();
    assert_eq!(series, (0..=60).collect::<Vec<u64>>());
    up.shutdown(Duration::from_secs(1));
}

#[test]
fn a_full_queue_drops_the_oldest_and_reports_how_many() {
    let sdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let mut srv = Srv::start(sdir.path());
    let creds = enroll_blocking(
        &srv.url,
        &srv.enrollment_token(),
        "web1",
        &[],
        Some(srv.fp),
        adir.path(),
    )
    .unwrap();
    srv.stop();
    let up = uplink(adir.path(), 10);
    for n in 0..25 {
        up.event(&ev(n));
    }
    wait_until("queue full", Duration::from_secs(5), || {
        up.status().dropped_unreported == 15
    });
    srv.restart();
    wait_until("delivery", Duration::from_secs(20), || {
        let s = up.status();
        s.queued == 0 && s.dropped_unreported == 0
    });
    let rows = srv.api("GET", "/api/v1/events?kind=baseline_ready&limit=1000", None);
    let series: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["body"]["series"].as_u64().unwrap())
        .collect();
    assert_eq!(series, (15..25).collect::<Vec<u64>>(), "the newest ten");
    let node = srv.api("GET", &format!("/api/v1/nodes/{}", creds.node_id), None);
    assert_eq!(node["dropped_events"], 15);
    let dropped = srv.api("GET", "/api/v1/events?kind=events_dropped", None);
    assert_eq!(dropped[0]["body"]["count"], 15);
    up.shutdown(Duration::from_secs(1));
}

#[test]
fn policy_commands_acks_and_pcaps() {
    let sdir = tempfile::tempdir().unwrap();
    let adir = tempfile::tempdir().unwrap();
    let srv = Srv::start(sdir.path());
    let creds = enroll_blocking(
        &srv.url,
        &srv.enrollment_token(),
        "web1",
        &[],
        Some(srv.fp),
        adir.path(),
    )
    .unwrap();
    srv.api(
        "PUT",
        "/api/v1/policy",
        Some(json!({"allowlist": ["198.51.100.0/24"]})),
    );
    let cmd = srv.api(
        "POST",
        &format!("/api/v1/nodes/{}/commands", creds.node_id),
        Some(json!({"kind": "save_baseline"})),
    );
    let up = uplink(adir.path(), 100);
    let mut got = None;
    wait_until("an answer", Duration::from_secs(10), || {
        got = up.try_answer();
        got.is_some()
    });
    let a = got.unwrap();
    assert_eq!(a.policy.as_ref().unwrap().allowlist, ["198.51.100.0/24"]);
    assert_eq!(a.commands[0].id, cmd["id"].as_i64().unwrap());
    let saved: levee_proto::Policy =
        serde_json::from_str(&std::fs::read_to_string(adir.path().join("policy.json")).unwrap())
            .unwrap();
    assert_eq!(saved.version, 1);
    up.command_done(levee_proto::CommandResult {
        id: a.commands[0].id,
        ok: true,
        message: "baseline saved".into(),
    });
    wait_until(
        "the result reaches the server",
        Duration::from_secs(10),
        || {
            let c = &srv.api(
                "GET",
                &format!("/api/v1/nodes/{}/commands", creds.node_id),
                None,
            )[0];
            c["acked_at"].is_string() && c["ok"] == true && c["result"] == "baseline saved"
        },
    );
    // An incident, then its capture.
    let inc = Event::new(
        levee_server::store::now_ms(),
        "web1",
        EventBody::IncidentStarted(IncidentInfo {
            incident_id: "inc-77".into(),
            target: "eth0".into(),
            metric: "rx_pps".into(),
            value: 1e5,
            baseline: 1e3,
            ratio: 100.0,
            threshold: 3e3,
            metrics: vec![],
            started_at: levee_model::timefmt::rfc3339_millis(levee_server::store::now_ms()),
            family: None,
            confidence: None,
            fingerprint: None,
            details: Default::default(),
        }),
    );
    up.event(&inc);
    let pcap_path = adir.path().join("inc-77.pcap");
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    pcap.resize(24, 0);
    std::fs::write(&pcap_path, &pcap).unwrap();
    up.upload_pcap("inc-77", &pcap_path);
    wait_until("pcap uploaded", Duration::from_secs(15), || {
        up.status().pcaps_uploaded == 1
    });
    let incs = srv.api("GET", "/api/v1/incidents", None);
    assert_eq!(incs[0]["has_pcap"], true);
    let id = incs[0]["id"].as_i64().unwrap();
    let body = srv
        .http()
        .get(format!("{}/api/v1/incidents/{id}/pcap", srv.url))
        .bearer_auth(&srv.admin)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(body.as_ref(), &pcap[..]);
    up.shutdown(Duration::from_secs(1));
}
