//! The generic webhook against a receiver enforcing Levee's documented
//! contract (docs/providers.md#generic-webhook): POST, JSON, fresh
//! timestamp, valid HMAC, no replayed signature, deduplication on the
//! delivery id; it keeps the active actions.

use crate::server::{dead_url, quick, Req, Resp, TestServer};
use levee_providers::providers::webhook::Webhook;
use levee_providers::secret::Secret;
use levee_providers::sign::{unix_now, webhook_verify};
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec-test";

#[derive(Default)]
pub struct Receiver {
    /// Receiver id -> action.
    pub active: BTreeMap<String, Value>,
    /// Delivery id -> receiver id (deduplication).
    pub deliveries: BTreeMap<String, String>,
    pub seen_signatures: HashSet<String>,
    pub next: u32,
}

fn err(status: u16, msg: &str) -> Resp {
    Resp::json(status, json!({"error": msg}))
}

pub fn handle(st: &Mutex<Receiver>, r: &Req) -> Resp {
    if r.path != "/hooks/levee" {
        return err(404, "no such hook");
    }
    if r.method != "POST" {
        return err(405, "POST only");
    }
    if r.header("content-type") != Some("application/json") {
        return err(415, "JSON only");
    }
    let Some(ts) = r
        .header("x-levee-timestamp")
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return err(400, "missing X-Levee-Timestamp");
    };
    if (unix_now() - ts).abs() > 300 {
        return err(401, "stale timestamp");
    }
    let Some(sig) = r.header("x-levee-signature") else {
        return err(401, "missing X-Levee-Signature");
    };
    if !webhook_verify(SECRET.as_bytes(), ts, &r.body, sig) {
        return err(401, "signature mismatch");
    }
    let mut s = st.lock().unwrap();
    if !s.seen_signatures.insert(sig.to_string()) {
        return err(409, "replayed request");
    }
    let Some(body) = r.json() else {
        return err(400, "body is not JSON");
    };
    let (Some(event), Some(id), Some(action)) = (
        body["event"].as_str(),
        body["id"].as_str(),
        body["action"]["action"].as_str(),
    ) else {
        return err(422, "event, id and action.action are required");
    };
    if r.header("x-levee-event") != Some(event) || r.header("x-levee-delivery") != Some(id) {
        return err(
            400,
            "X-Levee-Event / X-Levee-Delivery disagree with the body",
        );
    }
    if !matches!(action, "divert" | "block_sources") {
        return err(422, "unknown action");
    }
    match event {
        "apply" => {
            if let Some(theirs) = s.deliveries.get(id) {
                return Resp::json(200, json!({"id": theirs}));
            }
            s.next += 1;
            let theirs = format!("wh-{}", s.next);
            s.deliveries.insert(id.to_string(), theirs.clone());
            s.active.insert(theirs.clone(), body["action"].clone());
            Resp::json(201, json!({"id": theirs}))
        }
        "withdraw" => {
            let Some(theirs) = body["receipt"]["ids"][1].as_str() else {
                return err(422, "withdraw needs receipt.ids");
            };
            s.active.remove(theirs);
            Resp::empty(204)
        }
        _ => err(422, "unknown event"),
    }
}

fn start() -> (TestServer, Arc<Mutex<Receiver>>) {
    let st = Arc::new(Mutex::new(Receiver::default()));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn hook(base: &str, secret: &str) -> Webhook {
    Webhook::new(
        "hook",
        &format!("{base}/hooks/levee"),
        Secret::new(secret),
        quick(),
    )
    .unwrap()
}

fn block() -> ProviderAction {
    ProviderAction::BlockSources {
        sources: vec!["198.51.100.0/24".parse().unwrap()],
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: Some(17),
        dst_ports: vec![53],
    }
}

#[test]
fn apply_then_withdraw_changes_and_restores_the_receivers_state() {
    let (srv, st) = start();
    let mut w = hook(&srv.base, SECRET);
    let receipt = w.apply(&block()).unwrap();
    assert_eq!(receipt.provider, "hook");
    assert_eq!(receipt.ids.len(), 2, "{receipt:?}");
    assert_eq!(receipt.ids[1], "wh-1");
    {
        let s = st.lock().unwrap();
        assert_eq!(s.active.len(), 1);
        assert_eq!(s.active["wh-1"]["sources"], json!(["198.51.100.0/24"]));
    }
    w.withdraw(&receipt).unwrap();
    assert!(st.lock().unwrap().active.is_empty());
}

#[test]
fn a_wrong_secret_is_refused_with_the_receivers_message() {
    let (srv, st) = start();
    let mut w = hook(&srv.base, "not-the-secret");
    let e = w.apply(&block()).unwrap_err();
    match &e {
        ProviderError::Http {
            provider,
            status,
            message,
            ..
        } => {
            assert_eq!((provider.as_str(), *status), ("hook", 401));
            assert_eq!(message, "signature mismatch");
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("HTTP 401") && !text.contains("not-the-secret"),
        "{text}"
    );
    assert!(st.lock().unwrap().active.is_empty());
}

#[test]
fn a_replayed_request_is_refused_by_the_receiver() {
    let (srv, _st) = start();
    let body = br#"{"event":"apply","id":"d1","provider":"x","action":{"action":"divert","prefix":"203.0.113.0/24"}}"#;
    let ts = unix_now();
    let sig = levee_providers::sign::webhook_signature(SECRET.as_bytes(), ts, body);
    let send = || {
        levee_providers::http::client_builder()
            .build()
            .unwrap()
            .post(format!("{}/hooks/levee", srv.base))
            .header("content-type", "application/json")
            .header("x-levee-timestamp", ts.to_string())
            .header("x-levee-signature", &sig)
            .header("x-levee-event", "apply")
            .header("x-levee-delivery", "d1")
            .body(body.to_vec())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send(), 201);
    assert_eq!(send(), 409);
}

#[test]
fn transient_errors_are_retried_and_rate_limits_reported() {
    // 503 once, then the real receiver: the delivery is retried (same id,
    // fresh signature) and lands once.
    let st = Arc::new(Mutex::new(Receiver::default()));
    let st2 = st.clone();
    let failures = Arc::new(Mutex::new(1));
    let f2 = failures.clone();
    let srv = TestServer::start(move |r| {
        let mut f = f2.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return err(503, "warming up");
        }
        handle(&st2, r)
    });
    let mut w = hook(&srv.base, SECRET);
    w.apply(&block()).unwrap();
    assert_eq!(srv.calls().len(), 2);
    assert_eq!(st.lock().unwrap().active.len(), 1);

    // 429 asking for two minutes: not waited for, reported with the delay.
    let srv = TestServer::start(|_| err(429, "slow down").with_header("Retry-After", "120"));
    let mut w = hook(&srv.base, SECRET);
    match w.apply(&block()).unwrap_err() {
        ProviderError::RateLimited {
            retry_after,
            message,
            ..
        } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(120)));
            assert_eq!(message, "slow down");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.calls().len(), 1);

    // A 500 that persists: retried, then reported with the status.
    let srv = TestServer::start(|_| err(500, "boom"));
    let mut w = hook(&srv.base, SECRET);
    let e = w.apply(&block()).unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert!(e.is_transient());
    assert_eq!(
        srv.calls().len(),
        1,
        "500 is not retried, only 502-504 and 429"
    );

    // Nobody listening: a transport error naming the URL.
    let mut w = hook(&dead_url(), SECRET);
    let e = w.apply(&block()).unwrap_err();
    assert!(matches!(e, ProviderError::Transport { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot reach"), "{e}");
}
