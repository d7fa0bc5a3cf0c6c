//! In-process harness: a server on SQLite in a temp dir, called through its
//! router without a socket.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use levee_server::{Server, ServerConfig, Store};
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

pub struct H {
    pub server: Server,
    pub router: axum::Router,
    /// The bootstrap admin token (system tenant).
    pub admin: String,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> ServerConfig {
    let mut cfg = ServerConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        body_limit_bytes: 64 * 1024,
        pcap_max_bytes: 256 * 1024,
        ..Default::default()
    };
    cfg.heartbeat_interval = Duration::from_secs(1);
    cfg.heartbeat_timeout = Duration::from_secs(2);
    cfg
}

impl H {
    pub async fn new() -> H {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut ServerConfig)) -> H {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        let store = Store::open_sqlite(&cfg.sqlite_path(), 4).await.unwrap();
        let server = Server::with_store(cfg, store, None).await.unwrap();
        let admin = server
            .bootstrap
            .clone()
            .expect("first start bootstraps")
            .token;
        let router = server.router();
        H {
            server,
            router,
            admin,
            dir,
        }
    }

    /// A request; returns the status and the body as JSON (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (s, b) = self
            .raw(method, path, token, bytes, "application/json")
            .await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        ctype: &str,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("content-type", ctype);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// A must-succeed call.
    pub async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, Some(token), body).await;
        assert!(s.is_success(), "{method} {path} -> {s}: {v}");
        v
    }

    /// A new tenant (by the system admin); returns (tenant id, its admin token).
    pub async fn tenant(&self, name: &str) -> (i64, String) {
        let v = self
            .ok(
                "POST",
                "/api/v1/tenants",
                &self.admin,
                Some(json!({"name": name})),
            )
            .await;
        (
            v["tenant"]["id"].as_i64().unwrap(),
            v["admin_token"]["token"].as_str().unwrap().to_string(),
        )
    }

    /// Enrolls a node with `token`'s tenant; returns (node id, agent key).
    pub async fn enroll(&self, token: &str, node: &str) -> (i64, String) {
        let e = self
            .ok("POST", "/api/v1/enrollment-tokens", token, None)
            .await;
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/agent/enroll",
                None,
                Some(json!({"token": e["token"], "node": node, "version": "0.1.0", "interfaces": ["eth0"]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["node_id"].as_i64().unwrap(),
            v["agent_key"].as_str().unwrap().to_string(),
        )
    }

    pub fn state(&self) -> &levee_server::AppState {
        &self.server.state
    }
}

/// An agent event as JSON.
pub fn incident(
    id: &str,
    kind: &str,
    incident: &str,
    target: &str,
    family: &str,
    value: f64,
) -> Value {
    json!({"event_id": id, "ts": levee_model::timefmt::rfc3339_millis(levee_server::store::now_ms()),
        "node": "n", "event": kind, "incident_id": incident, "target": target, "metric": "rx_pps",
        "value": value, "baseline": 100.0, "ratio": value / 100.0, "threshold": 300.0, "metrics": [],
        "started_at": levee_model::timefmt::rfc3339_millis(levee_server::store::now_ms()),
        "family": family, "confidence": 90, "peak": value, "total_packets": 10, "total_bytes": 600})
}

/// The smallest valid pcap (global header only).
pub fn tiny_pcap() -> Vec<u8> {
    let mut p = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    p.extend([0u8; 8]);
    p.extend(65535u32.to_le_bytes());
    p.extend(1u32.to_le_bytes());
    p
}

/// A per-second sample as the agent sends it.
pub fn sample(unix_ms: i64, rx_pps: f64, tcp_pps: f64) -> Value {
    json!({"unix_ms": unix_ms, "dt": 1.0,
        "interfaces": [{"name": "eth0", "rx_pps": rx_pps, "rx_bps": rx_pps * 800.0, "tx_pps": 1.0, "tx_bps": 1.0,
                        "rx_drops_ps": 0.0, "rx_errors_ps": 0.0}],
        "tcp_pps": tcp_pps, "udp_pps": 1.0, "icmp_pps": 0.0, "tcp_opens_ps": 0.0, "udp_no_ports_ps": 0.0,
        "udp_errors_ps": 0.0, "conns": {"established": 5, "syn_recv": 0, "time_wait": 0, "total": 9}})
}
