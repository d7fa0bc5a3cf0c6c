//! The server's BGP escalation in process: the leader loop drives a
//! tenant's engine (GoBGP adapter over a scripted command runner, so the
//! commands it would run are checked) from events posted by an enrolled
//! agent; the tenant's API shows and tunes it; another tenant sees and
//! changes nothing of it; roles gate writes; leadership loss withdraws.

mod common;

use axum::http::StatusCode;
use common::H;
use levee_bgp::config::BgpConfig;
use levee_bgp::engine::BgpEngine;
use levee_bgp::rpki::{Roa, RoaSet};
use levee_bgp::speaker::gobgp::GoBgp;
use levee_lab::incident_event;
use levee_mitigate::runner::ScriptedRunner;
use levee_server::bgp::config::TenantBgp;
use levee_server::bgp::service::{self, TenantEngine};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn tenant_cfg() -> BgpConfig {
    let mut c = BgpConfig {
        enabled: true,
        origin_as: 64500,
        prefixes: vec!["203.0.113.0/24".parse().unwrap()],
        max_rules: 20,
        ..BgpConfig::default()
    };
    c.rpki.roa_file = Some("unused.json".into());
    c.speaker.gobgp_api = Some("127.0.0.1:50051".parse().unwrap());
    c
}

fn entry() -> TenantBgp {
    TenantBgp {
        tenant: "alpha".into(),
        bgp: tenant_cfg(),
    }
}

async fn harness() -> H {
    H::with(|c| {
        c.bgp.tenants.push(entry());
        c.bgp.poll_interval = Duration::from_millis(20);
    })
    .await
}

async fn events_of(h: &H, token: &str, kind: &str) -> Vec<Value> {
    h.ok("GET", &format!("/api/v1/events?kind={kind}"), token, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].clone())
        .collect()
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_escalates_a_tenants_incidents_and_the_api_shows_and_tunes_it() {
    let h = harness().await;
    let (_, a) = h.tenant("alpha").await;
    let (_, a_key) = h.enroll(&a, "a1").await;
    let (_, b) = h.tenant("bravo").await;

    let runner = ScriptedRunner::new();
    let roas = RoaSet::new(vec![Roa {
        prefix: "203.0.113.0/24".parse().unwrap(),
        max_len: 24,
        asn: 64500,
    }]);
    let engine = BgpEngine::new(
        tenant_cfg(),
        Box::new(GoBgp::new(
            Box::new(runner.clone()),
            "gobgp",
            tenant_cfg().speaker.gobgp_api,
        )),
    )
    .with_roas(roas);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    h.state().leader.store(true, Ordering::Release);
    let task = tokio::spawn(service::run(
        h.state().clone(),
        vec![TenantEngine::with_engine(entry(), engine).unwrap()],
        stop_rx,
    ));
    let view = until("a running engine", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        (v["running"] == true).then_some(v)
    })
    .await;
    assert_eq!(view["configured"], true);
    assert_eq!(view["speaker"], "gobgp");
    assert_eq!(view["prefixes"], json!(["203.0.113.0/24"]));
    assert_eq!(view["thresholds"]["discard"], "500Mbps");

    // 300 Mbit/s: level 1, through gobgp, stored as the tenant's event.
    let post = |n: u64, kind: &'static str, inc: &'static str, victim: &'static str, bps: f64| {
        let key = a_key.clone();
        let h = &h;
        async move {
            h.ok(
                "POST",
                "/api/v1/agent/events",
                &key,
                Some(json!({"events": [incident_event(n, kind, inc, "a1", victim, bps)]})),
            )
            .await;
        }
    };
    post(1, "incident_started", "i1", "203.0.113.7", 300e6).await;
    let applied = until("level 1 applied", async || {
        events_of(&h, &a, "mitigation_applied").await.pop()
    })
    .await;
    assert_eq!(applied["node"], "server");
    assert_eq!(applied["executor"], "gobgp");
    assert_eq!(applied["incident_id"], "i1");
    assert!(
        applied["action"].as_str().unwrap().contains("level 1"),
        "{applied}"
    );
    let lines = runner.lines();
    assert!(
        lines.iter().any(|l| l.contains("ipv4-flowspec add")
            && l.contains("203.0.113.7/32")
            && l.contains("127.0.0.1")),
        "{lines:?}"
    );
    let v = until("the live rule in the status", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        (v["live"].as_array().unwrap().len() == 1).then_some(v)
    })
    .await;
    assert_eq!(v["live"][0]["level"], 1);
    assert_eq!(v["incidents"][0]["state"], "active");

    // Tenant B sees nothing of A's BGP and cannot change it.
    let vb = h.ok("GET", "/api/v1/bgp", &b, None).await;
    assert_eq!(vb["configured"], false);
    for needle in ["203.0.113", "i1", "gobgp"] {
        assert!(!vb.to_string().contains(needle), "B sees {needle}: {vb}");
    }
    let (s, _) = h
        .call(
            "PUT",
            "/api/v1/bgp/thresholds",
            Some(&b),
            Some(json!({"thresholds": {"discard": "1Mbps"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h.call("POST", "/api/v1/bgp/withdraw", Some(&b), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An operator (not admin) of A cannot tune.
    h.ok(
        "POST",
        "/api/v1/users",
        &a,
        Some(json!({"name": "otto", "role": "operator", "password": "a long passphrase"})),
    )
    .await;
    let (_, login) = h
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"tenant": "alpha", "user": "otto", "password": "a long passphrase"})),
        )
        .await;
    let op = login["token"].as_str().unwrap().to_string();
    let (s, _) = h
        .call("PUT", "/api/v1/bgp/thresholds", Some(&op), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .call("POST", "/api/v1/bgp/withdraw", Some(&op), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A's admin lowers the discard threshold for SYN floods: the next
    // update escalates to level 2.
    let (s, e) = h
        .call(
            "PUT",
            "/api/v1/bgp/thresholds",
            Some(&a),
            Some(json!({"profiles": {"syn_flood": {"discard": "fast"}}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["field"], "profiles.syn_flood.discard", "{e}");
    let v = h
        .ok(
            "PUT",
            "/api/v1/bgp/thresholds",
            &a,
            Some(json!({"profiles": {"syn_flood": {"discard": "200Mbps"}}, "max_rules": 5})),
        )
        .await;
    assert_eq!(v["profiles"]["syn_flood"]["discard"], "200Mbps");
    assert_eq!(
        v["thresholds"]["discard"], "500Mbps",
        "other families keep it"
    );
    assert_eq!(v["max_rules"], 5);
    tokio::time::sleep(Duration::from_millis(1200)).await; // applied at the next tick
    post(2, "incident_updated", "i1", "203.0.113.7", 300e6).await;
    until("level 2", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        (v["live"][0]["level"] == 2).then_some(())
    })
    .await;

    // A foreign prefix: refused, the reason in an event and the status.
    post(3, "incident_started", "i2", "192.0.2.9", 300e6).await;
    let refused = until("the refusal", async || {
        events_of(&h, &a, "mitigation_failed").await.pop()
    })
    .await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("192.0.2.9/32 is not inside the tenant's prefixes"),
        "{refused}"
    );
    until("the refusal in the status", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("192.0.2.9"))
            .then_some(())
    })
    .await;

    // The withdraw button: gone now; the incident's later updates ignored.
    let (s, w) = h.call("POST", "/api/v1/bgp/withdraw", Some(&a), None).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["done"], true);
    assert_eq!(w["live"], 0);
    assert!(runner
        .lines()
        .iter()
        .any(|l| l.contains("ipv4-flowspec del")));
    post(4, "incident_updated", "i1", "203.0.113.7", 300e6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
    assert_eq!(v["live"], json!([]), "{v}");
    assert_eq!(events_of(&h, &a, "bgp_withdrawn").await.len(), 1);
    assert_eq!(events_of(&h, &a, "bgp_withdraw_requested").await.len(), 1);
    assert!(events_of(&h, &b, "bgp_withdrawn").await.is_empty());

    // A new incident escalates; losing leadership withdraws it.
    post(5, "incident_started", "i3", "203.0.113.8", 300e6).await;
    until("i3 announced", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        (v["live"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    h.state().leader.store(false, Ordering::Release);
    let back = until("the handover withdrawal", async || {
        events_of(&h, &a, "mitigation_rolled_back")
            .await
            .into_iter()
            .find(|e| e["incident_id"] == "i3")
    })
    .await;
    assert_eq!(back["reason"], "this server is no longer the jobs leader");
    // Leader again: the open incident is announced again from the store.
    h.state().leader.store(true, Ordering::Release);
    until("i3 re-announced", async || {
        let v = h.ok("GET", "/api/v1/bgp", &a, None).await;
        (v["running"] == true
            && v["live"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["incident_id"] == "i3"))
        .then_some(())
    })
    .await;
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let stops = events_of(&h, &a, "mitigation_rolled_back").await;
    assert!(
        stops.iter().any(|e| e["reason"] == "server stopping"),
        "{stops:?}"
    );
}
