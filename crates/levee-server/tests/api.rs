//! API tests in-process: the router called without a socket, SQLite underneath.

mod common;

use axum::http::StatusCode;
use common::{incident, sample, tiny_pcap, H};
use levee_server::jobs;
use serde_json::json;

#[tokio::test]
async fn bootstrap_admin_and_openapi() {
    let h = H::new().await;
    let me = h.ok("GET", "/api/v1/me", &h.admin, None).await;
    assert_eq!(
        (me["tenant"].as_str(), me["role"].as_str()),
        (Some("default"), Some("admin"))
    );
    let (s, doc) = h.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/agent/telemetry",
        "/api/v1/nodes/{id}/metrics",
        "/api/v1/agent/incidents/{incident_id}/pcap",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("TelemetryBatch").is_some());
    let (s, _) = h.call("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn enrollment_telemetry_events_incidents_pcap() {
    let h = H::new().await;
    let e = h
        .ok(
            "POST",
            "/api/v1/enrollment-tokens",
            &h.admin,
            Some(json!({"expires_in": "1h"})),
        )
        .await;
    assert!(e["command"]
        .as_str()
        .unwrap()
        .contains(e["token"].as_str().unwrap()));
    let body =
        json!({"token": e["token"], "node": "web1", "version": "0.1.0", "interfaces": ["eth0"]});
    let (s, enrolled) = h
        .call("POST", "/api/v1/agent/enroll", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{enrolled}");
    let key = enrolled["agent_key"].as_str().unwrap().to_string();
    let node = enrolled["node_id"].as_i64().unwrap();
    let (s, _) = h
        .call("POST", "/api/v1/agent/enroll", None, Some(body))
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an enrollment token works once"
    );
    // Agent keys are not API tokens and vice versa.
    let (s, _) = h.call("GET", "/api/v1/nodes", Some(&key), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/agent/heartbeat",
            Some(&h.admin),
            Some(json!({"version": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let now_s = levee_server::store::now_ms() / 1000;
    let samples: Vec<_> = (0..3)
        .map(|i| sample((now_s - 3 + i) * 1000, 100.0 + i as f64, 50.0))
        .collect();
    let answer = h
        .ok(
            "POST",
            "/api/v1/agent/telemetry",
            &key,
            Some(json!({"samples": samples, "baselines": [
            {"target": "eth0", "metric": "rx_pps", "baseline": 100.0, "threshold": 2000.0}]})),
        )
        .await;
    assert_eq!(answer, json!({"commands": []}));
    let m = h
        .ok(
            "GET",
            &format!("/api/v1/nodes/{node}/metrics?target=host"),
            &h.admin,
            None,
        )
        .await;
    assert_eq!(m["resolution"], "1s");
    assert_eq!(m["points"].as_array().unwrap().len(), 3, "{m}");
    assert_eq!(m["points"][2]["rx_pps"], 102.0);
    let n = h
        .ok("GET", &format!("/api/v1/nodes/{node}"), &h.admin, None)
        .await;
    assert_eq!(n["baselines"][0]["threshold"], 2000.0);

    let started = incident(
        "0192f0c4-0000-7000-8000-0000000000a1",
        "incident_started",
        "i-1",
        "eth0",
        "syn_flood",
        9e4,
    );
    let resolved = incident(
        "0192f0c4-0000-7000-8000-0000000000a2",
        "incident_resolved",
        "i-1",
        "eth0",
        "syn_flood",
        10.0,
    );
    let r = h
        .ok(
            "POST",
            "/api/v1/agent/events",
            &key,
            Some(json!({"events": [started.clone()]})),
        )
        .await;
    assert_eq!(r, json!({"accepted": 1, "duplicates": 0}));
    let r = h
        .ok(
            "POST",
            "/api/v1/agent/events",
            &key,
            Some(json!({"events": [started, resolved], "dropped": 3})),
        )
        .await;
    assert_eq!(r, json!({"accepted": 1, "duplicates": 1}));
    let incs = h
        .ok("GET", "/api/v1/incidents?state=resolved", &h.admin, None)
        .await;
    let inc = &incs[0];
    assert_eq!(
        (
            inc["incident_id"].as_str(),
            inc["node"].as_str(),
            inc["has_pcap"].as_bool()
        ),
        (Some("i-1"), Some("web1"), Some(false))
    );
    let kinds: Vec<String> = h
        .ok("GET", "/api/v1/events", &h.admin, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["events_dropped", "incident_resolved", "incident_started"]
    );
    assert_eq!(
        h.ok("GET", &format!("/api/v1/nodes/{node}"), &h.admin, None)
            .await["dropped_events"],
        3
    );

    // PCAP: uploaded by the agent, downloaded by a user, byte for byte.
    let pcap = tiny_pcap();
    let (s, _) = h
        .raw(
            "POST",
            "/api/v1/agent/incidents/i-1/pcap",
            Some(&key),
            pcap.clone(),
            "application/vnd.tcpdump.pcap",
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = h
        .raw(
            "POST",
            "/api/v1/agent/incidents/nope/pcap",
            Some(&key),
            pcap.clone(),
            "application/vnd.tcpdump.pcap",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/agent/incidents/i-1/pcap",
            Some(&key),
            Some(json!({"not": "a pcap, but long enough"})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let id = inc["id"].as_i64().unwrap();
    let (s, got) = h
        .raw(
            "GET",
            &format!("/api/v1/incidents/{id}/pcap"),
            Some(&h.admin),
            vec![],
            "",
        )
        .await;
    assert_eq!((s, got), (StatusCode::OK, pcap));
    let (s, _) = h
        .raw(
            "GET",
            &format!("/api/v1/incidents/{id}/pcap"),
            None,
            vec![],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let h = H::new().await;
    let (_, key) = h.enroll(&h.admin, "web1").await;
    let mut bad = sample(1_795_225_450_000, 1.0, 1.0);
    bad["dt"] = json!(0.0);
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/agent/telemetry",
            Some(&key),
            Some(json!({"samples": [bad]})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("samples[0].dt")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/agent/telemetry",
            Some(&key),
            Some(json!({"samples": [{"unix_ms": 1, "dt": 1.0}]})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("samples[0].interfaces")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/agent/telemetry",
            Some(&key),
            Some(json!({"samples": [{"unix_ms": "soon"}]})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("samples[0].unix_ms")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/agent/events",
            Some(&key),
            Some(json!({"evnts": []})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("events")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "PUT",
            "/api/v1/policy",
            Some(&h.admin),
            Some(json!({"allowlist": ["10.0.0.0/8", "nonsense"]})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("allowlist[1]")),
        "{v}"
    );
    let (s, v) = h
        .call("GET", "/api/v1/incidents?limit=abc", Some(&h.admin), None)
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "GET",
            "/api/v1/incidents?limit=100000",
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit")),
        "{v}"
    );
    let (s, v) = h
        .call(
            "GET",
            "/api/v1/events?since=yesterday",
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("since")),
        "{v}"
    );
    let (s, v) = h
        .raw(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            b"{not json".to_vec(),
            "application/json",
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&v)
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let h = H::new().await;
    let (_, key) = h.enroll(&h.admin, "web1").await;
    let big = json!({"events": [], "padding": "x".repeat(70 * 1024)});
    let (s, v) = h
        .call("POST", "/api/v1/agent/events", Some(&key), Some(big))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    // PCAP uploads have their own, larger limit.
    let mut pcap = tiny_pcap();
    pcap.resize(200 * 1024, 0);
    let (s, _) = h
        .raw(
            "POST",
            "/api/v1/agent/incidents/x/pcap",
            Some(&key),
            pcap.clone(),
            "application/octet-stream",
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "200 KiB is within the pcap limit (no such incident, though)"
    );
    pcap.resize(300 * 1024, 0);
    let (s, _) = h
        .raw(
            "POST",
            "/api/v1/agent/incidents/x/pcap",
            Some(&key),
            pcap,
            "application/octet-stream",
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn failed_authentications_and_logins_are_rate_limited() {
    let h = H::with(|c| {
        c.auth_failures_per_minute = 5;
        c.logins_per_minute = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            h.call("GET", "/api/v1/nodes", Some("lvt_guess"), None)
                .await
                .0,
        );
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 3]);
    // The valid token still works: only failures are budgeted.
    assert_eq!(
        h.call("GET", "/api/v1/nodes", Some(&h.admin), None).await.0,
        StatusCode::OK
    );
    let body = json!({"tenant": "default", "user": "admin", "password": "wrong password"});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            h.call("POST", "/api/v1/auth/login", None, Some(body.clone()))
                .await
                .0,
        );
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    let (_, v) = h.call("POST", "/api/v1/auth/login", None, Some(body)).await;
    assert!(v["error"].as_str().unwrap().contains("retry in"), "{v}");
}

#[tokio::test]
async fn users_roles_passwords_and_tokens() {
    let h = H::new().await;
    let u = h
        .ok(
            "POST",
            "/api/v1/users",
            &h.admin,
            Some(json!({"name": "olga", "role": "viewer", "password": "a long passphrase"})),
        )
        .await;
    let (s, login) = h
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"tenant": "default", "user": "olga", "password": "a long passphrase"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{login}");
    let viewer = login["token"].as_str().unwrap().to_string();
    assert!(login["expires_at"].is_string());
    assert_eq!(
        h.ok("GET", "/api/v1/me", &viewer, None).await["role"],
        "viewer"
    );
    // A viewer reads but does not write.
    h.ok("GET", "/api/v1/incidents", &viewer, None).await;
    assert_eq!(
        h.call("PUT", "/api/v1/policy", Some(&viewer), Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call("POST", "/api/v1/enrollment-tokens", Some(&viewer), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call("GET", "/api/v1/users", Some(&viewer), None).await.0,
        StatusCode::FORBIDDEN
    );
    // Own tokens: made, listed, revoked; revocation is immediate.
    let t = h
        .ok(
            "POST",
            "/api/v1/tokens",
            &viewer,
            Some(json!({"name": "script", "expires_in": "30d"})),
        )
        .await;
    let script = t["token"].as_str().unwrap().to_string();
    h.ok("GET", "/api/v1/me", &script, None).await;
    let listed = h.ok("GET", "/api/v1/tokens", &viewer, None).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none()),
        "secrets are shown once only"
    );
    h.ok(
        "DELETE",
        &format!("/api/v1/tokens/{}", t["id"]),
        &viewer,
        None,
    )
    .await;
    assert_eq!(
        h.call("GET", "/api/v1/me", Some(&script), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Deleting the user ends their sessions.
    h.ok(
        "DELETE",
        &format!("/api/v1/users/{}", u["id"]),
        &h.admin,
        None,
    )
    .await;
    assert_eq!(
        h.call("GET", "/api/v1/me", Some(&viewer), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            Some(json!({"name": "x", "role": "root"})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("role")),
        "{v}"
    );
}

#[tokio::test]
async fn commands_and_policy_reach_the_agent_until_acknowledged() {
    let h = H::new().await;
    let (node, key) = h.enroll(&h.admin, "web1").await;
    let pol = h
        .ok(
            "PUT",
            "/api/v1/policy",
            &h.admin,
            Some(json!({"allowlist": ["192.0.2.0/24"], "detector": {"multiplier": 4.0}})),
        )
        .await;
    assert_eq!(pol["version"], 1);
    // Kinds and arguments are checked when queued, naming the field.
    for (body, field) in [
        (json!({"kind": "resnapshot"}), "kind"),
        (json!({"kind": "rollback_mitigation"}), "args.mitigation_id"),
        (
            json!({"kind": "rollback_mitigation", "args": {"mitigation_id": "x"}}),
            "args.mitigation_id",
        ),
        (
            json!({"kind": "rollback_all", "args": {"now": 1}}),
            "args.now",
        ),
    ] {
        let (s, v) = h
            .call(
                "POST",
                &format!("/api/v1/nodes/{node}/commands"),
                Some(&h.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (s, v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body} -> {v}"
        );
    }
    let cmd = h
        .ok(
            "POST",
            &format!("/api/v1/nodes/{node}/commands"),
            &h.admin,
            Some(json!({"kind": "reload_iocs"})),
        )
        .await;
    let a = h
        .ok(
            "POST",
            "/api/v1/agent/telemetry",
            &key,
            Some(json!({"samples": []})),
        )
        .await;
    assert_eq!(a["commands"][0]["kind"], "reload_iocs");
    assert_eq!(a["policy"]["allowlist"][0], "192.0.2.0/24");
    let a = h
        .ok(
            "POST",
            "/api/v1/agent/heartbeat",
            &key,
            Some(json!({"version": "0.1.0", "policy_version": 1, "acked_commands": [cmd["id"]],
                        "command_results": [{"id": cmd["id"], "ok": true, "message": "2 lists reloaded"}]})),
        )
        .await;
    assert_eq!(
        a,
        json!({"commands": []}),
        "acked and up to date: nothing to say"
    );
    let cmds = h
        .ok(
            "GET",
            &format!("/api/v1/nodes/{node}/commands"),
            &h.admin,
            None,
        )
        .await;
    assert!(cmds[0]["acked_at"].is_string());
    assert_eq!(
        (&cmds[0]["ok"], &cmds[0]["result"]),
        (&json!(true), &json!("2 lists reloaded"))
    );
}

#[tokio::test]
async fn nodes_go_offline_and_online_with_events() {
    let h = H::new().await; // heartbeat_timeout 2 s
    let (node, key) = h.enroll(&h.admin, "web1").await;
    h.ok(
        "POST",
        "/api/v1/agent/heartbeat",
        &key,
        Some(json!({"version": "0.1.0"})),
    )
    .await;
    assert_eq!(jobs::liveness(h.state()).await.unwrap(), 1);
    assert_eq!(
        h.ok("GET", &format!("/api/v1/nodes/{node}"), &h.admin, None)
            .await["online"],
        true
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(jobs::liveness(h.state()).await.unwrap(), 1);
    assert_eq!(
        h.ok("GET", &format!("/api/v1/nodes/{node}"), &h.admin, None)
            .await["online"],
        false
    );
    let off = h
        .ok("GET", "/api/v1/events?kind=node_offline", &h.admin, None)
        .await;
    assert_eq!(off[0]["body"]["node"], "web1");
    assert_eq!(
        jobs::liveness(h.state()).await.unwrap(),
        0,
        "one event per transition"
    );
    h.ok(
        "POST",
        "/api/v1/agent/telemetry",
        &key,
        Some(json!({"samples": []})),
    )
    .await;
    assert_eq!(jobs::liveness(h.state()).await.unwrap(), 1);
    assert_eq!(
        h.ok("GET", "/api/v1/events?kind=node_online", &h.admin, None)
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn one_attack_on_several_nodes_is_one_correlated_incident() {
    let h = H::new().await;
    let (_, k1) = h.enroll(&h.admin, "web1").await;
    let (_, k2) = h.enroll(&h.admin, "web2").await;
    let (_, k3) = h.enroll(&h.admin, "web3").await;
    let ev = |id: &str, inc: &str, target: &str, family: &str| json!({"events": [incident(id, "incident_started", inc, target, family, 5e4)]});
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k1,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b1",
            "a",
            "eth0",
            "syn_flood",
        )),
    )
    .await;
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k2,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b2",
            "b",
            "eth0",
            "syn_flood",
        )),
    )
    .await;
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k3,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b3",
            "c",
            "eth0",
            "udp_flood",
        )),
    )
    .await;
    jobs::correlation(h.state()).await.unwrap();
    let cs = h.ok("GET", "/api/v1/correlations", &h.admin, None).await;
    assert_eq!(cs.as_array().unwrap().len(), 1, "{cs}");
    assert_eq!(cs[0]["reason"], "same_attack");
    let members: Vec<&str> = cs[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["web1", "web2"]);
    // A third node hit by the same attack later joins it.
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k3,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b4",
            "d",
            "eth1",
            "syn_flood",
        )),
    )
    .await;
    jobs::correlation(h.state()).await.unwrap();
    let c = h
        .ok(
            "GET",
            &format!("/api/v1/correlations/{}", cs[0]["id"]),
            &h.admin,
            None,
        )
        .await;
    assert_eq!(c["members"].as_array().unwrap().len(), 3);
    // Carpet bombing: two addresses of one /24 on one node.
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k1,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b5",
            "e",
            "192.0.2.1",
            "ip_fragment_flood",
        )),
    )
    .await;
    h.ok(
        "POST",
        "/api/v1/agent/events",
        &k1,
        Some(ev(
            "0192f0c4-0000-7000-8000-0000000000b6",
            "f",
            "192.0.2.200",
            "icmp_flood",
        )),
    )
    .await;
    jobs::correlation(h.state()).await.unwrap();
    let cs = h.ok("GET", "/api/v1/correlations", &h.admin, None).await;
    assert_eq!(
        (cs[0]["reason"].as_str(), cs[0]["key"].as_str()),
        (Some("same_prefix"), Some("192.0.2.0/24"))
    );
    let started = h
        .ok(
            "GET",
            "/api/v1/events?kind=correlation_started",
            &h.admin,
            None,
        )
        .await;
    assert_eq!(started.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn downsampling_and_retention_jobs() {
    let h = H::new().await;
    let (node, key) = h.enroll(&h.admin, "web1").await;
    let now_s = levee_server::store::now_ms() / 1000;
    let minute = (now_s / 60) * 60 - 300;
    let samples: Vec<_> = (0..60)
        .map(|i| sample((minute + i) * 1000, 10.0, i as f64))
        .collect();
    h.ok(
        "POST",
        "/api/v1/agent/telemetry",
        &key,
        Some(json!({"samples": samples})),
    )
    .await;
    let m = jobs::maintain(h.state(), now_s).await.unwrap();
    assert_eq!(m.minute_rows, 2, "a host and an eth0 row: {m:?}");
    let from = levee_model::timefmt::rfc3339_millis((minute - 60) * 1000);
    let r = h
        .ok(
            "GET",
            &format!("/api/v1/nodes/{node}/metrics?resolution=1m&target=host&from={from}"),
            &h.admin,
            None,
        )
        .await;
    assert_eq!(r["points"][0]["tcp_pps"], 29.5);
    assert_eq!(r["points"][0]["samples"], 60);
    // A day later the seconds are gone, the minute stays.
    let m = jobs::maintain(h.state(), now_s + 86_400 + 600)
        .await
        .unwrap();
    assert_eq!(m.raw_deleted, 120, "{m:?}");
    let r = h
        .ok(
            "GET",
            &format!("/api/v1/nodes/{node}/metrics?resolution=1m&target=host&from={from}"),
            &h.admin,
            None,
        )
        .await;
    assert_eq!(r["points"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn prometheus_metrics_count_requests() {
    let h = H::new().await;
    h.ok("GET", "/api/v1/nodes", &h.admin, None).await;
    let (s, body) = h.raw("GET", "/metrics", None, vec![], "").await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(
            "levee_http_requests_total{route=\"/api/v1/nodes\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("levee_http_request_duration_seconds_bucket"),
        "{text}"
    );
}
