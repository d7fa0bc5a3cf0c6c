//! The storage test-suite, run against SQLite and against PostgreSQL (a
//! throw-away cluster from levee-lab; missing PostgreSQL fails under CI=true).

use levee_lab::{require_postgres, PgCluster};
use levee_model::{ConnCounts, InterfaceRates, TickObservation};
use levee_proto::{EventEnvelope, Policy};
use levee_server::model::{Resolution, Role};
use levee_server::store::auth::EnrollRefusal;
use levee_server::store::events::EventFilter;
use levee_server::store::incidents::IncidentFilter;
use levee_server::store::metrics::{rows_of, TelemetryWrite};
use levee_server::store::nodes::HeartbeatWrite;
use levee_server::store::{now_ms, Store};
use serde_json::json;

fn obs(unix_ms: i64, rx_pps: f64) -> TickObservation {
    TickObservation {
        unix_ms,
        dt: 1.0,
        interfaces: vec![InterfaceRates {
            name: "eth0".into(),
            rx_pps,
            rx_bps: rx_pps * 800.0,
            ..Default::default()
        }],
        tcp_pps: rx_pps / 2.0,
        conns: Some(ConnCounts {
            established: 10,
            syn_recv: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn env(v: serde_json::Value) -> EventEnvelope {
    serde_json::from_value(v).expect("test event")
}

fn incident_event(id: &str, kind: &str, incident: &str, ts: &str, value: f64) -> EventEnvelope {
    env(
        json!({"event_id": id, "ts": ts, "node": "spoofed-name", "event": kind, "incident_id": incident,
        "target": "eth0", "metric": "rx_pps", "value": value, "baseline": 100.0, "ratio": value / 100.0,
        "threshold": 300.0, "metrics": [], "started_at": "2026-11-21T01:44:10.000Z", "family": "syn_flood",
        "confidence": 80, "peak": value, "total_packets": 1000, "total_bytes": 64000}),
    )
}

async fn suite(store: &Store) {
    // --- tenants, users, tokens
    let (t1, admin1) = store
        .create_tenant("acme", "admin")
        .await
        .unwrap()
        .expect("new tenant");
    assert!(
        store.create_tenant("acme", "x").await.unwrap().is_none(),
        "tenant names are unique"
    );
    let (t2, _) = store
        .create_tenant("globex", "admin")
        .await
        .unwrap()
        .unwrap();
    let viewer = store
        .create_user(t1.id, "vic", Role::Viewer, None)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .create_user(t1.id, "vic", Role::Admin, None)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.users(t1.id).await.unwrap().len(), 2);
    assert_eq!(
        store.user(t2.id, viewer.id).await.unwrap(),
        None,
        "users are tenant-scoped"
    );
    let tok = store
        .create_api_token(t1.id, viewer.id, "ci", &[7u8; 32], None)
        .await
        .unwrap();
    let id = store
        .user_by_token_hash(&[7u8; 32])
        .await
        .unwrap()
        .expect("token works");
    assert_eq!(
        (id.tenant_id, id.user_id, id.role),
        (t1.id, viewer.id, Role::Viewer)
    );
    store
        .create_api_token(t1.id, admin1, "old", &[8u8; 32], Some(now_ms() - 1))
        .await
        .unwrap();
    assert_eq!(
        store.user_by_token_hash(&[8u8; 32]).await.unwrap(),
        None,
        "expired tokens fail"
    );
    assert_eq!(
        store.revoke_api_token(t2.id, tok.id).await.unwrap(),
        None,
        "other tenant cannot revoke"
    );
    assert_eq!(
        store.revoke_api_token(t1.id, tok.id).await.unwrap(),
        Some(vec![7u8; 32])
    );
    assert_eq!(
        store.user_by_token_hash(&[7u8; 32]).await.unwrap(),
        None,
        "revoked tokens fail"
    );
    assert!(store.delete_user(t1.id, viewer.id).await.unwrap());
    assert_eq!(
        store
            .login_lookup("acme", "admin")
            .await
            .unwrap()
            .map(|r| r.1),
        Some(admin1)
    );

    // --- enrollment
    store
        .create_enrollment_token(t1.id, &[1u8; 32], now_ms() + 60_000, admin1)
        .await
        .unwrap();
    store
        .create_enrollment_token(t1.id, &[2u8; 32], now_ms() - 1, admin1)
        .await
        .unwrap();
    store
        .create_enrollment_token(t1.id, &[3u8; 32], now_ms() + 60_000, admin1)
        .await
        .unwrap();
    let ifs = vec!["eth0".to_string()];
    let e = store
        .enroll(&[1u8; 32], "web1", "0.1.0", &ifs, &[11u8; 32])
        .await
        .unwrap()
        .expect("enrolls");
    assert_eq!(e.tenant, "acme");
    let node = e.node_id;
    assert_eq!(
        store
            .enroll(&[1u8; 32], "web2", "0.1.0", &ifs, &[12u8; 32])
            .await
            .unwrap(),
        Err(EnrollRefusal::Used)
    );
    assert_eq!(
        store
            .enroll(&[2u8; 32], "web2", "0.1.0", &ifs, &[12u8; 32])
            .await
            .unwrap(),
        Err(EnrollRefusal::Expired)
    );
    assert_eq!(
        store
            .enroll(&[9u8; 32], "web2", "0.1.0", &ifs, &[12u8; 32])
            .await
            .unwrap(),
        Err(EnrollRefusal::Unknown)
    );
    // A reinstalled host enrolls again under its name: same node, new key.
    let again = store
        .enroll(&[3u8; 32], "web1", "0.2.0", &ifs, &[13u8; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.node_id, node);
    assert_eq!(
        store.agent_by_key_hash(&[11u8; 32]).await.unwrap(),
        None,
        "the old key is replaced"
    );
    let agent = store.agent_by_key_hash(&[13u8; 32]).await.unwrap().unwrap();
    assert_eq!(
        (agent.tenant_id, agent.node_id, agent.node.as_str()),
        (t1.id, node, "web1")
    );
    assert_eq!(
        store.node(t2.id, node).await.unwrap(),
        None,
        "nodes are tenant-scoped"
    );
    assert_eq!(
        store.node(t1.id, node).await.unwrap().unwrap().version,
        "0.2.0"
    );

    // --- telemetry: group commit, duplicates ignored, ranges, downsampling, retention
    let base_s = (now_ms() / 1000 / 60) * 60 - 600; // ten minutes ago, on a minute
    let writes: Vec<TelemetryWrite> = (0..120)
        .map(|i| TelemetryWrite {
            node_id: node,
            rows: rows_of(node, &obs((base_s + i) * 1000 + 500, 1000.0 + i as f64)),
            seen_ms: now_ms(),
            baselines: (i == 0).then(|| {
                r#"[{"target":"eth0","metric":"rx_pps","baseline":1000.0,"threshold":3000.0}]"#
                    .into()
            }),
            heartbeat: None,
        })
        .collect();
    store.write_telemetry(&writes).await.unwrap();
    store.write_telemetry(&writes[..10]).await.unwrap(); // a replay
    let pts = store
        .metric_points(
            node,
            Resolution::Second,
            base_s,
            base_s + 120,
            Some("host"),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(pts.len(), 120, "one host row per second, replays ignored");
    assert_eq!(pts[5].rx_pps, Some(1005.0));
    assert_eq!(pts[5].tcp_pps, Some(502.5));
    assert_eq!(pts[5].connections, Some(10.0));
    let all = store
        .metric_points(node, Resolution::Second, base_s, base_s + 120, None, 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 240, "an eth0 row and a host row per second");
    let n = store.node(t1.id, node).await.unwrap().unwrap();
    assert_eq!(n.baselines.len(), 1);
    assert!(n.last_seen_at.is_some());
    let made = store.downsample(base_s, base_s + 120).await.unwrap();
    assert_eq!(made, 4, "2 minutes x 2 targets");
    assert_eq!(
        store.downsample(base_s, base_s + 120).await.unwrap(),
        0,
        "downsampling is idempotent"
    );
    let mins = store
        .metric_points(
            node,
            Resolution::Minute,
            base_s,
            base_s + 120,
            Some("host"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(mins.len(), 2);
    assert_eq!(mins[0].samples, Some(60));
    assert_eq!(mins[0].rx_pps, Some(1029.5), "average of 1000..=1059");
    assert_eq!(mins[0].rx_pps_max, Some(1059.0));
    let (raw_del, min_del) = store.expire_metrics(base_s + 60, base_s).await.unwrap();
    assert_eq!((raw_del, min_del), (120, 0));
    assert_eq!(store.oldest_raw_metric().await.unwrap(), Some(base_s + 60));

    // --- events: dedup by id, effects on incidents and mitigations
    let started = incident_event(
        "0192f0c4-0000-7000-8000-000000000001",
        "incident_started",
        "inc-1",
        "2026-11-21T01:44:10.500Z",
        5000.0,
    );
    let updated = incident_event(
        "0192f0c4-0000-7000-8000-000000000002",
        "incident_updated",
        "inc-1",
        "2026-11-21T01:44:11.500Z",
        9000.0,
    );
    let resolved = incident_event(
        "0192f0c4-0000-7000-8000-000000000003",
        "incident_resolved",
        "inc-1",
        "2026-11-21T01:44:30.000Z",
        100.0,
    );
    let got = store
        .ingest_events(t1.id, node, "web1", &[started.clone(), updated.clone()])
        .await
        .unwrap();
    assert_eq!((got.accepted, got.duplicates), (2, 0));
    let got = store
        .ingest_events(t1.id, node, "web1", &[started, updated, resolved.clone()])
        .await
        .unwrap();
    assert_eq!(
        (got.accepted, got.duplicates),
        (1, 2),
        "replayed events are stored once"
    );
    let incs = store
        .incidents(
            t1.id,
            &IncidentFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(incs.len(), 1);
    let inc = &incs[0];
    assert_eq!(
        (inc.state.as_str(), inc.peak, inc.node.as_str()),
        ("resolved", 9000.0, "web1")
    );
    assert_eq!(inc.family.as_deref(), Some("syn_flood"));
    assert_eq!(inc.total_packets, Some(1000));
    let mut tail = incident_event(
        "0192f0c4-0000-7000-8000-000000000004",
        "incident_updated",
        "inc-1",
        "2026-11-21T01:44:31.000Z",
        1.0,
    );
    tail.fields.insert("family".into(), json!("traffic_spike"));
    tail.fields.insert("confidence".into(), json!(51));
    store
        .ingest_events(t1.id, node, "web1", &[tail])
        .await
        .unwrap();
    let inc = store.incident(t1.id, inc.id).await.unwrap().unwrap();
    assert_eq!(
        (inc.family.as_deref(), inc.confidence),
        (Some("syn_flood"), Some(80)),
        "a less confident tail keeps the family"
    );
    assert_eq!(store.incident(t2.id, inc.id).await.unwrap(), None);
    assert_eq!(
        store.incident_of_agent(node, "inc-1").await.unwrap(),
        Some(inc.id)
    );
    let evs = store
        .events(
            t1.id,
            &EventFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[0].kind, "incident_updated", "newest first");
    assert_eq!(
        evs[0].body["node"], "web1",
        "the node is the key's, not what the agent wrote"
    );
    let only = store
        .events(
            t1.id,
            &EventFilter {
                kind: Some("incident_started".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert!(store
        .events(
            t2.id,
            &EventFilter {
                limit: 10,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .is_empty());
    let mit = |id: &str, kind: &str| {
        env(
            json!({"event_id": id, "ts": "2026-11-21T01:44:12.000Z", "node": "web1", "event": kind,
            "mitigation_id": "m-1", "incident_id": "inc-1", "executor": "nftables", "rule": "drop tcp syn"}),
        )
    };
    store
        .ingest_events(
            t1.id,
            node,
            "web1",
            &[
                mit("0192f0c4-0000-7000-8000-000000000011", "mitigation_applied"),
                mit(
                    "0192f0c4-0000-7000-8000-000000000012",
                    "mitigation_rolled_back",
                ),
            ],
        )
        .await
        .unwrap();
    let ms = store.mitigations(t1.id, None, None, 10).await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(
        (ms[0].state.as_str(), ms[0].rule.as_deref()),
        ("rolled_back", Some("drop tcp syn"))
    );
    assert!(store
        .mitigations(t2.id, None, None, 10)
        .await
        .unwrap()
        .is_empty());
    store
        .server_event(
            t1.id,
            Some(node),
            "web1",
            "node_offline",
            now_ms(),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.expire_events(now_ms() - 1000).await.unwrap(),
        6,
        "old agent events expire, the fresh one stays"
    );

    // --- correlations
    let a = store
        .ingest_events(
            t1.id,
            node,
            "web1",
            &[incident_event(
                "0192f0c4-0000-7000-8000-000000000021",
                "incident_started",
                "inc-2",
                "2026-11-21T02:00:00.000Z",
                5000.0,
            )],
        )
        .await
        .unwrap();
    assert_eq!(a.accepted, 1);
    let i2 = store
        .incident_of_agent(node, "inc-2")
        .await
        .unwrap()
        .unwrap();
    let cands = store.correlation_candidates(300_000).await.unwrap();
    assert!(cands.iter().any(|c| c.id == i2 && c.open));
    let cid = store
        .create_correlation(t1.id, "same_attack", "syn_flood", 0, &[i2])
        .await
        .unwrap();
    assert_eq!(store.open_correlations().await.unwrap().len(), 1);
    assert!(
        store.close_correlations().await.unwrap().is_empty(),
        "an open member keeps it open"
    );
    let c = store.correlation(t1.id, cid).await.unwrap().unwrap();
    assert_eq!(c.members.len(), 1);
    assert_eq!(store.correlation(t2.id, cid).await.unwrap(), None);
    store
        .ingest_events(
            t1.id,
            node,
            "web1",
            &[incident_event(
                "0192f0c4-0000-7000-8000-000000000022",
                "incident_resolved",
                "inc-2",
                "2026-11-21T02:01:00.000Z",
                1.0,
            )],
        )
        .await
        .unwrap();
    assert_eq!(store.close_correlations().await.unwrap(), [(t1.id, cid)]);
    assert_eq!(
        store.correlations(t1.id, 10).await.unwrap()[0].state,
        "resolved"
    );

    // --- policy, commands, heartbeats, liveness
    assert_eq!(store.policy(t1.id).await.unwrap().version, 0);
    let p1 = store
        .set_policy(
            t1.id,
            &Policy {
                allowlist: vec!["10.0.0.0/8".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p2 = store.set_policy(t1.id, &p1).await.unwrap();
    assert_eq!((p1.version, p2.version), (1, 2));
    assert_eq!(store.policy(t1.id).await.unwrap().allowlist, ["10.0.0.0/8"]);
    assert_eq!(store.policy(t2.id).await.unwrap().version, 0);
    let cmd = store
        .create_command(t1.id, node, "save_baseline", &json!({}), admin1)
        .await
        .unwrap();
    let cmd2 = store
        .create_command(t1.id, node, "reload_iocs", &json!({}), admin1)
        .await
        .unwrap();
    assert_eq!(store.nodes_with_pending_commands().await.unwrap(), [node]);
    assert_eq!(store.pending_commands(node).await.unwrap().len(), 2);
    store
        .heartbeat(HeartbeatWrite {
            node_id: node,
            version: "0.3.0".into(),
            interfaces: ifs.clone(),
            queued_events: 4,
            policy_version: 2,
            // An agent acknowledging only (older) and one reporting a result.
            acked_commands: vec![cmd.id, cmd2.id],
            command_results: vec![levee_proto::CommandResult {
                id: cmd2.id,
                ok: false,
                message: "no indicator lists configured".into(),
            }],
        })
        .await
        .unwrap();
    assert!(
        store.pending_commands(node).await.unwrap().is_empty(),
        "acked commands are done"
    );
    let done = store.commands(t1.id, node, 10).await.unwrap();
    assert_eq!(done[0].id, cmd2.id);
    assert_eq!(
        (done[0].ok, done[0].result.as_deref()),
        (Some(false), Some("no indicator lists configured"))
    );
    assert!(done[1].acked_at.is_some());
    assert_eq!((done[1].ok, done[1].result.as_deref()), (None, None));
    let n = store.node(t1.id, node).await.unwrap().unwrap();
    assert_eq!(
        (n.version.as_str(), n.queued_events, n.policy_version),
        ("0.3.0", 4, 2)
    );
    let ch = store.liveness_changes(now_ms() - 30_000).await.unwrap();
    assert_eq!(
        ch.len(),
        1,
        "seen just now and still flagged offline: {ch:?}"
    );
    assert!(ch[0].online);
    store.set_online(node, true).await.unwrap();
    assert!(store
        .liveness_changes(now_ms() - 30_000)
        .await
        .unwrap()
        .is_empty());
    let ch = store.liveness_changes(now_ms() + 1).await.unwrap();
    assert!(!ch[0].online, "silent past the timeout: offline");
    assert_eq!(store.node_counts().await.unwrap(), (1, 0));
    store.add_dropped_events(node, 7).await.unwrap();
    assert_eq!(
        store
            .node(t1.id, node)
            .await
            .unwrap()
            .unwrap()
            .dropped_events,
        7
    );

    // --- pcaps
    store
        .put_pcap(t1.id, inc.id, &[1, 2, 3], "abc")
        .await
        .unwrap();
    assert_eq!(
        store.pcap(t1.id, inc.id).await.unwrap(),
        Some((vec![1, 2, 3], "abc".into()))
    );
    assert_eq!(store.pcap(t2.id, inc.id).await.unwrap(), None);
    assert!(
        store
            .incident(t1.id, inc.id)
            .await
            .unwrap()
            .unwrap()
            .has_pcap
    );

    // --- BGP: tuning, withdraw requests, status, what the engines read
    assert_eq!(store.bgp_row(t1.id).await.unwrap().tuning_version, 0);
    assert_eq!(
        store
            .set_bgp_tuning(t1.id, r#"{"max_rules":5}"#)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.set_bgp_tuning(t1.id, "{}").await.unwrap(), 2);
    assert_eq!(store.request_bgp_withdraw(t1.id).await.unwrap(), 1);
    assert_eq!(store.request_bgp_withdraw(t1.id).await.unwrap(), 2);
    store
        .set_bgp_status(t1.id, r#"{"running":true}"#, 2)
        .await
        .unwrap();
    let row = store.bgp_row(t1.id).await.unwrap();
    assert_eq!(
        (
            row.tuning.as_str(),
            row.tuning_version,
            row.withdraw_requested,
            row.withdraw_done
        ),
        ("{}", 2, 2, 2)
    );
    assert_eq!(row.status.as_deref(), Some(r#"{"running":true}"#));
    assert!(row.status_ms.is_some());
    assert_eq!(
        store.bgp_row(t2.id).await.unwrap().withdraw_requested,
        0,
        "per tenant"
    );
    let before = store.last_event_id(t1.id).await.unwrap();
    assert!(before > 0);
    let bgp_open = incident_event(
        "0192f0c4-0000-7000-8000-0000000000b1",
        "incident_started",
        "bgp-1",
        &levee_model::timefmt::rfc3339_millis(levee_server::store::now_ms()),
        5e4,
    );
    let bgp_upd = incident_event(
        "0192f0c4-0000-7000-8000-0000000000b2",
        "incident_updated",
        "bgp-1",
        &levee_model::timefmt::rfc3339_millis(levee_server::store::now_ms()),
        6e4,
    );
    store
        .ingest_events(t1.id, node, "web1", &[bgp_open, bgp_upd])
        .await
        .unwrap();
    let evs = store
        .incident_events_after(t1.id, before, 10)
        .await
        .unwrap();
    assert_eq!(evs.len(), 2);
    assert!(evs[0].0 < evs[1].0 && evs[1].1.contains("incident_updated"));
    assert_eq!(
        store
            .incident_events_after(t1.id, evs[0].0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .incident_events_after(t1.id, before, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .incident_events_after(t2.id, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.last_event_id(t1.id).await.unwrap(), evs[1].0);
    let now = levee_server::store::now_ms();
    let open = store
        .open_incident_events(t1.id, now - 60_000)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].contains("bgp-1") && open[0].contains("incident_updated"));
    assert!(store
        .open_incident_events(t1.id, now + 60_000)
        .await
        .unwrap()
        .is_empty());

    // --- job state, revocation
    store.set_job_value("w", 5).await.unwrap();
    store.set_job_value("w", 6).await.unwrap();
    assert_eq!(store.job_value("w").await.unwrap(), Some(6));
    assert_eq!(store.revoke_node(t2.id, node).await.unwrap(), None);
    assert!(store.revoke_node(t1.id, node).await.unwrap().is_some());
    assert_eq!(
        store.agent_by_key_hash(&[13u8; 32]).await.unwrap(),
        None,
        "revoked nodes cannot report"
    );
    assert!(store.nodes(t1.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn storage_suite_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("levee.db"), 4)
        .await
        .unwrap();
    suite(&store).await;
    assert!(
        dir.path().join("levee.db-wal").exists(),
        "SQLite runs in WAL mode"
    );
    store.close().await;
    // The file and reopens (migrations are not rerun).
    let again = Store::open_sqlite(&dir.path().join("levee.db"), 4)
        .await
        .unwrap();
    assert_eq!(again.tenant_count().await.unwrap(), 2);
}

#[tokio::test]
async fn storage_suite_postgres() {
    if require_postgres().is_some() {
        return;
    }
    let pg = PgCluster::start(&[]).expect("start PostgreSQL");
    let url = pg.create_db("levee_store").unwrap();
    let store = Store::open_postgres(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    suite(&store).await;
    store.close().await;
    let again = Store::open_postgres(&url, 2).await.unwrap();
    assert_eq!(again.tenant_count().await.unwrap(), 2);
    again.close().await;
}
