//! Walks every operation of the served OpenAPI document:
//! - without a credential every route answers 401 (the two public routes,
//!   enrollment and login, answer 401 to a bad credential in their body);
//! - with tenant B's credential, every route naming one of tenant A's
//!   objects answers 404, and listings show none of A's objects;
//! - with A's own credential the same requests succeed (so the 404s are
//!   not an accident of the request).

mod common;

use axum::http::StatusCode;
use common::{incident, tiny_pcap, H};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Routes that take their credential in the body.
const PUBLIC: [(&str, &str); 2] = [
    ("post", "/api/v1/agent/enroll"),
    ("post", "/api/v1/auth/login"),
];

struct TenantA {
    tenant: i64,
    admin: String,
    key: String,
    node: i64,
    incident: i64,
    agent_incident: String,
    correlation: i64,
    mitigation: i64,
    user: i64,
    token: i64,
    enrollment: i64,
}

async fn populate(h: &H) -> (TenantA, String, String) {
    let (tenant, admin) = h.tenant("alpha").await;
    let (node, key) = h.enroll(&admin, "a1").await;
    let (_, key2) = h.enroll(&admin, "a2").await;
    let ev = |id: &str, inc: &str| json!({"events": [incident(id, "incident_started", inc, "eth0", "syn_flood", 5e4)]});
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &key,
        Some(ev("0192f0c4-0000-7000-8000-0000000000c1", "ia")),
    )
    .await;
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &key2,
        Some(ev("0192f0c4-0000-7000-8000-0000000000c2", "ib")),
    )
    .await;
    let mit = json!({"events": [{"event_id": "0192f0c4-0000-7000-8000-0000000000c3", "ts": "2026-11-21T01:44:12.000Z",
        "node": "a1", "event": "mitigation_applied", "mitigation_id": "m1", "incident_id": "ia", "executor": "nftables",
        "rule": "drop"}]});
    h.ok("POST", "/api/v1/agent/events", &key, Some(mit)).await;
    let (s, _) = h
        .raw(
            "POST",
            "/api/v1/agent/incidents/ia/pcap",
            Some(&key),
            tiny_pcap(),
            "application/vnd.tcpdump.pcap",
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    levee_server::jobs::correlation(h.state()).await.unwrap();
    let incident = h
        .ok("GET", "/api/v1/incidents", &admin, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["incident_id"] == "ia")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let correlation = h.ok("GET", "/api/v1/correlations", &admin, None).await[0]["id"]
        .as_i64()
        .unwrap();
    let mitigation = h.ok("GET", "/api/v1/mitigations", &admin, None).await[0]["id"]
        .as_i64()
        .unwrap();
    let user = h
        .ok(
            "POST",
            "/api/v1/users",
            &admin,
            Some(json!({"name": "ann", "role": "viewer"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let token = h
        .ok("POST", "/api/v1/tokens", &admin, Some(json!({"name": "t"})))
        .await["id"]
        .as_i64()
        .unwrap();
    let enrollment = h
        .ok("POST", "/api/v1/enrollment-tokens", &admin, None)
        .await["id"]
        .as_i64()
        .unwrap();
    h.ok(
        "POST",
        &format!("/api/v1/nodes/{node}/commands"),
        &admin,
        Some(json!({"kind": "save_baseline"})),
    )
    .await;
    let (_, b_admin) = h.tenant("bravo").await;
    let (_, b_key) = h.enroll(&b_admin, "b1").await;
    let a = TenantA {
        tenant,
        admin,
        key,
        node,
        incident,
        agent_incident: "ia".into(),
        correlation,
        mitigation,
        user,
        token,
        enrollment,
    };
    (a, b_admin, b_key)
}

/// A valid body for each operation that takes one (so a 404 is about the object, not the body).
fn sample_bodies() -> BTreeMap<(&'static str, &'static str), Value> {
    BTreeMap::from([
        (
            ("post", "/api/v1/agent/enroll"),
            json!({"token": "lve_wrong", "node": "x", "version": "1"}),
        ),
        (
            ("post", "/api/v1/auth/login"),
            json!({"tenant": "alpha", "user": "admin", "password": "wrong password"}),
        ),
        (("post", "/api/v1/agent/telemetry"), json!({"samples": []})),
        (("post", "/api/v1/agent/events"), json!({"events": []})),
        (("post", "/api/v1/agent/heartbeat"), json!({"version": "1"})),
        (("post", "/api/v1/tenants"), json!({"name": "zulu"})),
        (
            ("post", "/api/v1/users"),
            json!({"name": "zed", "role": "viewer"}),
        ),
        (("post", "/api/v1/tokens"), json!({"name": "z"})),
        (("post", "/api/v1/enrollment-tokens"), json!({})),
        (("put", "/api/v1/policy"), json!({"allowlist": []})),
        (
            ("put", "/api/v1/bgp/thresholds"),
            json!({"thresholds": {"discard": "300Mbps"}}),
        ),
        (
            ("post", "/api/v1/nodes/{id}/commands"),
            json!({"kind": "save_baseline"}),
        ),
        (
            ("post", "/api/v1/agent/incidents/{incident_id}/pcap"),
            json!(null),
        ),
    ])
}

fn fill(path: &str, a: &TenantA) -> String {
    let id = if path.starts_with("/api/v1/tenants/") {
        a.tenant
    } else if path.starts_with("/api/v1/users/") {
        a.user
    } else if path.starts_with("/api/v1/tokens/") {
        a.token
    } else if path.starts_with("/api/v1/enrollment-tokens/") {
        a.enrollment
    } else if path.starts_with("/api/v1/nodes/") {
        a.node
    } else if path.starts_with("/api/v1/incidents/") {
        a.incident
    } else if path.starts_with("/api/v1/correlations/") {
        a.correlation
    } else if path.starts_with("/api/v1/mitigations/") {
        a.mitigation
    } else {
        -1
    };
    path.replace("{id}", &id.to_string())
        .replace("{incident_id}", &a.agent_incident)
}

async fn send(
    h: &H,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    if path.ends_with("/pcap") && method == "post" {
        let (s, b) = h
            .raw(
                "POST",
                path,
                token,
                tiny_pcap(),
                "application/vnd.tcpdump.pcap",
            )
            .await;
        return (s, serde_json::from_slice(&b).unwrap_or(Value::Null));
    }
    h.call(&method.to_uppercase(), path, token, body.cloned())
        .await
}

#[tokio::test]
async fn every_route_is_authenticated_and_tenant_scoped() {
    // Hundreds of deliberate failures: lift the rate limit (tested in api.rs).
    let h = H::with(|c| {
        c.auth_failures_per_minute = 1_000_000;
        c.logins_per_minute = 1_000_000;
    })
    .await;
    let (a, b_admin, b_key) = populate(&h).await;
    let (_, doc) = h.call("GET", "/api/v1/openapi.json", None, None).await;
    let bodies = sample_bodies();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                ops.push((method, path.clone()));
            }
        }
    }
    assert!(
        ops.len() >= 30,
        "the document lists {} operations",
        ops.len()
    );
    let mut checked_404 = 0;
    for (method, path) in &ops {
        let takes_body = item_has_body(&doc, path, method);
        let body = bodies.get(&(*method, path.as_str()));
        assert!(
            !takes_body || body.is_some(),
            "no sample body for {method} {path}: add one to sample_bodies()"
        );
        let concrete = fill(path, &a);
        let public = PUBLIC.contains(&(*method, path.as_str()));

        // 1. No credential: 401 (public routes: a bad credential in the body, 401).
        let (s, v) = send(&h, method, &concrete, None, body).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token: {v}"
        );
        if public {
            continue;
        }
        let agent_route = path.starts_with("/api/v1/agent/");
        let (own, other) = if agent_route {
            (&a.key, &b_key)
        } else {
            (&a.admin, &b_admin)
        };
        // 2. The wrong kind of credential: 401.
        let wrong_kind = if agent_route { &a.admin } else { &a.key };
        let (s, v) = send(&h, method, &concrete, Some(wrong_kind), body).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with the wrong kind of credential: {v}"
        );
        if path.contains('{') {
            // 3. Another tenant's credential on A's object: 404.
            let (s, v) = send(&h, method, &concrete, Some(other), body).await;
            assert_eq!(
                s,
                StatusCode::NOT_FOUND,
                "{method} {path} as tenant B on tenant A's object: {v}"
            );
            checked_404 += 1;
            // 4. A's own credential: the object is there (deletes are checked last, below).
            if *method != "delete" {
                let (s, v) = send(&h, method, &concrete, Some(own), body).await;
                assert!(s.is_success(), "{method} {path} as tenant A: {s} {v}");
            }
        } else if *method == "get" {
            // 5. Listings as B show nothing of A.
            let (s, v) = send(&h, method, &concrete, Some(other), body).await;
            assert!(s.is_success(), "{method} {path} as B: {s} {v}");
            let text = v.to_string();
            for needle in ["\"a1\"", "\"a2\"", "\"alpha\"", "\"ann\"", "\"ia\""] {
                assert!(
                    !text.contains(needle),
                    "{method} {path} as tenant B shows tenant A's {needle}: {text}"
                );
            }
        }
    }
    assert!(
        checked_404 >= 15,
        "only {checked_404} object routes checked"
    );
    // B's deletes above changed nothing of A's.
    for (method, path) in ops.iter().filter(|(m, _)| *m == "delete") {
        let get = fill(path, &a);
        if path.starts_with("/api/v1/tokens/") || path.starts_with("/api/v1/enrollment-tokens/") {
            continue; // no GET by id for these; the listing shows them
        }
        let (s, v) = h.call("GET", &get, Some(&a.admin), None).await;
        assert!(
            s.is_success(),
            "{method} {path} by B removed A's object: {s} {v}"
        );
    }
    let toks = h.ok("GET", "/api/v1/tokens", &a.admin, None).await;
    assert!(toks
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == a.token && t["revoked_at"].is_null()));
    let enr = h
        .ok("GET", "/api/v1/enrollment-tokens", &a.admin, None)
        .await;
    assert!(enr
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == a.enrollment));
}

fn item_has_body(doc: &Value, path: &str, method: &str) -> bool {
    doc["paths"][path][method].get("requestBody").is_some()
}
