//! BGP escalation run by `levee server` for a tenant, end to end in the
//! lab: the server (attacker namespace) has a `[[bgp.tenant]]` announcing
//! through Levee's gobgpd (victim namespace, driven with `ip netns exec`)
//! to an edge gobgpd (attacker namespace). A real agent in the victim
//! namespace is flooded; its incident events reach the server over the
//! uplink, and the server's engine puts the FlowSpec route into the edge
//! router's RIB and withdraws it on resolve. Also: the tenant's threshold
//! set through the API changes the level reached; a server restart
//! withdraws on stop and re-announces the open incident on start; the
//! withdraw button empties the RIB while the attack goes on; a foreign
//! prefix is refused with the reason stored as an event; the API refuses
//! bad tuning naming the field.

use levee_lab::bgp::{write_roas, GoBgpd, BGP_TOOLS, LAB_NET};
use levee_lab::lab::Ns;
use levee_lab::{
    incident_event, levee_binary, require_lab_with, AgentOptions, AgentProcess, FloodKind,
    FloodOptions, Lab, ServerProcess, SERVER_TOOLS,
};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const PORT: u16 = 8443;

fn wait<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("no {what} within {limit:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn server_events(s: &ServerProcess, lab: &Lab, kind: &str) -> Vec<Value> {
    let path = format!("/api/v1/events?kind={kind}&limit=1000");
    let list = s
        .api(lab, "GET", &path, None)
        .unwrap_or_else(|e| panic!("{e}"));
    // Each stored event carries the event itself as `body`.
    list.as_array()
        .map(|a| a.iter().map(|e| e["body"].clone()).collect())
        .unwrap_or_default()
}

#[test]
fn the_server_escalates_a_tenants_incident_into_the_edge_router() {
    let mut tools = BGP_TOOLS.to_vec();
    tools.extend_from_slice(SERVER_TOOLS);
    if require_lab_with(&tools).is_some() {
        return;
    }
    let bin = levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
    let lab = Lab::new().unwrap();
    let work = tempfile::Builder::new()
        .prefix("levee-server-bgp-")
        .tempdir()
        .unwrap();
    let vic = IpAddr::V4(lab.victim_ip());
    let (mut edge, _speaker) = GoBgpd::edge_and_speaker(&lab, work.path(), 50091, 50092).unwrap();

    let roas = write_roas(work.path(), LAB_NET).unwrap();
    let o = lab.victim_ip().octets();
    let net = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let config = work.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[bgp]\npoll_interval = \"50ms\"\n\
             [[bgp.tenant]]\ntenant = \"default\"\norigin_as = 64500\nprefixes = [\"{net}\"]\nttl = \"60s\"\n\
             [bgp.tenant.thresholds]\nrate_limit = \"1Mbps\"\ndiscard = \"10Gbps\"\nrtbh = \"20Gbps\"\ndivert = \"40Gbps\"\n\
             [bgp.tenant.rpki]\nroa_file = \"{}\"\n\
             [bgp.tenant.speaker]\nkind = \"gobgp\"\ngobgp_api = \"127.0.0.1:50092\"\nnetns = \"{}\"\n",
            roas.display(),
            lab.victim_ns()
        ),
    )
    .unwrap();
    let data = work.path().join("server");
    let mut server = ServerProcess::start_with(
        &lab,
        Ns::Attacker,
        &bin,
        &data,
        &lab.attacker_ip().to_string(),
        PORT,
        &["--config".into(), config.to_string_lossy().into_owned()],
    )
    .unwrap_or_else(|e| panic!("starting levee server with [[bgp.tenant]]: {e}"));
    let api = |s: &ServerProcess, m: &str, p: &str, b: Option<Value>| {
        s.api(&lab, m, p, b.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    };

    // What the tenant sees of the operator's settings; the engine runs.
    let v = wait("a running engine", Duration::from_secs(10), || {
        let v = api(&server, "GET", "/api/v1/bgp", None);
        if v["running"] == true {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    });
    assert_eq!(v["configured"], true);
    assert_eq!(v["speaker"], "gobgp");
    assert_eq!(v["prefixes"], json!([net]));
    assert_eq!(v["thresholds"]["discard"], "10Gbps");

    // Bad tuning: 400 naming the field and the fix.
    let admin = server.admin_token.clone();
    for (body, field, fix) in [
        (
            json!({"thresholds": {"discard": "fast"}}),
            "thresholds.discard",
            "100Mbps",
        ),
        (json!({"max_rules": 100000}), "max_rules", "1 to 200"),
        (
            json!({"profiles": {"syn": {"discard": "1Mbps"}}}),
            "profiles.syn",
            "syn_flood",
        ),
        (
            json!({"thresholds": {"rate_limit": "20Gbps"}}),
            "thresholds",
            "must grow",
        ),
    ] {
        let (code, e) = server
            .request(&lab, &admin, "PUT", "/api/v1/bgp/thresholds", Some(&body))
            .unwrap();
        assert_eq!(code, 400, "{body} -> {e}");
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains(fix), "{body} -> {msg}");
    }

    // A foreign prefix, reported by an enrolled node through the agent
    // API: refused, the reason stored as an event.
    let key = server.enroll_node(&lab, "probe").unwrap();
    let foreign = |kind: &str, n: u64| json!({"events": [incident_event(n, kind, "foreign-1", "probe", "198.51.100.7", 5e9)]});
    let (code, e) = server
        .request(
            &lab,
            &key,
            "POST",
            "/api/v1/agent/events",
            Some(&foreign("incident_started", 1)),
        )
        .unwrap();
    assert!((200..300).contains(&code), "{code} {e}");
    let refused = wait(
        "the foreign prefix refused",
        Duration::from_secs(10),
        || {
            server_events(&server, &lab, "mitigation_failed")
                .into_iter()
                .find(|e| e["incident_id"] == "foreign-1")
                .ok_or_else(|| {
                    format!(
                        "events {}\nbgp {}",
                        api(&server, "GET", "/api/v1/events?limit=20", None),
                        api(&server, "GET", "/api/v1/bgp", None)
                    )
                })
        },
    );
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("refused")
            && why.contains("198.51.100.7/32")
            && why.contains("not inside the tenant's prefixes"),
        "{refused}"
    );
    assert_eq!(refused["node"], "server");
    assert_eq!(refused["executor"], "gobgp");
    server
        .request(
            &lab,
            &key,
            "POST",
            "/api/v1/agent/events",
            Some(&foreign("incident_resolved", 2)),
        )
        .unwrap();

    // The real agent, enrolled, in the victim namespace.
    let tok = api(
        &server,
        "POST",
        "/api/v1/enrollment-tokens",
        Some(json!({})),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut o = AgentOptions::new(&bin, work.path().join("agent"));
    o.extra_args = vec![
        "--server".into(),
        server.url.clone(),
        "--enroll".into(),
        tok,
        "--server-fingerprint".into(),
        server.fingerprint.clone(),
    ];
    let mut agent = AgentProcess::spawn(&lab, &o).unwrap();
    let expect = |agent: &mut AgentProcess, kind: &str, secs: u64| {
        agent
            .wait_for_event(kind, Duration::from_secs(secs))
            .unwrap_or_else(|| panic!("agent: no {kind} within {secs} s; {}", agent.diagnostics()))
    };
    expect(&mut agent, "baseline_ready", 40);
    let host = format!("[destination: {vic}/32]");

    // 1. A flood: level 1 (rate-limit) from the server's engine.
    let f1 = lab.flood(FloodKind::Syn, Duration::from_secs(5)).unwrap();
    let started = expect(&mut agent, "incident_started", 8);
    let id = started.str("incident_id").unwrap().to_string();
    let rib = edge
        .wait_rib("ipv4-flowspec", Duration::from_secs(15), |r| {
            r.contains(&host)
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nserver events: {:?}",
                server_events(&server, &lab, "mitigation_failed")
            )
        });
    assert!(rib.contains("rate:") && !rib.contains("discard"), "{rib}");
    let applied = server_events(&server, &lab, "mitigation_applied");
    let a1 = applied
        .iter()
        .find(|e| e["incident_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no mitigation_applied for {id}: {applied:?}"));
    assert_eq!(a1["node"], "server");
    assert_eq!(a1["executor"], "gobgp");
    assert!(
        a1["action"]
            .as_str()
            .unwrap_or_default()
            .contains("level 1"),
        "{a1}"
    );
    assert!(
        a1["rule"]
            .as_str()
            .unwrap_or_default()
            .contains("ipv4-flowspec add"),
        "{a1}"
    );
    let v = api(&server, "GET", "/api/v1/bgp", None);
    assert!(
        v["live"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["incident_id"] == id.as_str() && r["level"] == 1),
        "{v}"
    );
    drop(f1);
    expect(&mut agent, "incident_resolved", 30);
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(10), |r| {
        !r.contains(&host)
    })
    .unwrap();
    wait("the withdrawal event", Duration::from_secs(5), || {
        server_events(&server, &lab, "mitigation_rolled_back")
            .into_iter()
            .find(|e| e["incident_id"] == id.as_str() && e["reason"] == "incident resolved")
            .ok_or_else(|| "none".to_string())
    });

    // 2. The tenant lowers its discard threshold: the next flood reaches level 2.
    let v = api(
        &server,
        "PUT",
        "/api/v1/bgp/thresholds",
        Some(json!({"thresholds": {"discard": "5Mbps"}})),
    );
    assert_eq!(v["thresholds"]["discard"], "5Mbps", "{v}");
    assert_eq!(v["tuning"]["thresholds"]["discard"], "5Mbps", "{v}");
    std::thread::sleep(Duration::from_millis(1500)); // the leader applies it within a second
    let f2 = lab
        .flood_with(&FloodOptions::new(FloodKind::Syn, Duration::from_secs(25)))
        .unwrap();
    let started = expect(&mut agent, "incident_started", 8);
    let id2 = started.str("incident_id").unwrap().to_string();
    assert_ne!(id2, id);
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(15), |r| {
        r.contains(&host) && r.contains("discard")
    })
    .unwrap();

    // 3. Restart while the attack goes on: the stop withdraws, the start
    //    re-announces the open incident.
    server.stop().unwrap();
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
        !r.contains(&host)
    })
    .unwrap();
    server.restart().unwrap();
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(15), |r| {
        r.contains(&host) && r.contains("discard")
    })
    .unwrap();
    let started_events = server_events(&server, &lab, "bgp_engine_started");
    assert!(
        started_events
            .iter()
            .any(|e| e["open_incidents"].as_u64() >= Some(1)),
        "{started_events:?}"
    );

    // 4. The withdraw button: everything goes now and stays gone while
    //    the attack continues.
    let (code, w) = server
        .request(&lab, &admin, "POST", "/api/v1/bgp/withdraw", None)
        .unwrap();
    assert_eq!(code, 200, "{w}");
    assert_eq!(w["done"], true);
    assert_eq!(w["live"], 0);
    edge.wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
        !r.contains(&host)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let rib = edge.rib("ipv4-flowspec").unwrap();
    assert!(
        !rib.contains(&host),
        "re-announced after the withdraw: {rib}"
    );
    let withdrawn = server_events(&server, &lab, "bgp_withdrawn");
    assert!(
        withdrawn.iter().any(|e| e["incidents"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(id2)))),
        "{withdrawn:?}"
    );
    assert_eq!(
        server_events(&server, &lab, "bgp_withdraw_requested").len(),
        1
    );
    drop(f2);
    agent.stop().unwrap();
    server.stop().unwrap();

    // Every decision is in the tenant's audit log, and the chain verifies.
    let audit = data.join("bgp/default/bgp-audit.jsonl");
    let text =
        std::fs::read_to_string(&audit).unwrap_or_else(|e| panic!("{}: {e}", audit.display()));
    for step in ["announced", "withdrawn", "refused"] {
        assert!(
            text.contains(&format!("\"step\":\"{step}\"")),
            "{step} in {text}"
        );
    }
    assert!(
        text.contains("withdrawn through the API") && text.contains("server stopping"),
        "{text}"
    );
}
