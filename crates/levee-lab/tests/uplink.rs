//! Agent and server end to end in the lab: the agent runs in the victim
//! namespace, `levee server` in the attacker namespace, and the agent's
//! uplink crosses the veth the flood comes over.
//!
//! 1. An attack detected by the agent arrives at the server as the same
//!    incident (events, incident row, telemetry, pcap).
//! 2. With the server stopped for 60 s during an attack, every event the
//!    agent printed reaches the server after it returns, once each.

use levee_lab::lab::Ns;
use levee_lab::{
    levee_binary, require_lab_with, AgentOptions, AgentProcess, FloodKind, Lab, ServerProcess,
    SERVER_TOOLS,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PORT: u16 = 8443;

struct Ctx {
    lab: Lab,
    bin: PathBuf,
    work: tempfile::TempDir,
    server: ServerProcess,
}

fn setup() -> Option<Ctx> {
    if require_lab_with(SERVER_TOOLS).is_some() {
        return None;
    }
    let bin = levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
    let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
    let work = tempfile::Builder::new()
        .prefix("levee-lab-uplink-")
        .tempdir()
        .unwrap();
    let ip = lab.attacker_ip().to_string();
    let server = ServerProcess::start(
        &lab,
        Ns::Attacker,
        &bin,
        &work.path().join("server"),
        &ip,
        PORT,
    )
    .unwrap_or_else(|e| panic!("starting levee server in the attacker namespace: {e}"));
    assert!(
        server.admin_token.starts_with("lvt_"),
        "no admin token printed"
    );
    Some(Ctx {
        lab,
        bin,
        work,
        server,
    })
}

impl Ctx {
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.server
            .api(&self.lab, method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An agent in the victim namespace, enrolled with the server.
    /// An enrolled agent that has started and learned its baseline.
    fn ready_agent(&self) -> AgentProcess {
        let mut agent = self.agent();
        expect(&mut agent, "agent_started", Duration::from_secs(20));
        expect(&mut agent, "baseline_ready", Duration::from_secs(30));
        agent
    }

    fn agent(&self) -> AgentProcess {
        let tok = self.api("POST", "/api/v1/enrollment-tokens", Some(json!({})))["token"]
            .as_str()
            .unwrap()
            .to_string();
        let mut o = AgentOptions::new(&self.bin, self.work.path().join("agent"));
        o.extra_args = vec![
            "--server".into(),
            self.server.url.clone(),
            "--enroll".into(),
            tok,
            "--server-fingerprint".into(),
            self.server.fingerprint.clone(),
        ];
        AgentProcess::spawn(&self.lab, &o).unwrap_or_else(|e| panic!("spawning the agent: {e}"))
    }

    fn wait_server(&self, what: &str, limit: Duration, mut ok: impl FnMut(&Ctx) -> bool) {
        let deadline = Instant::now() + limit;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "server: no {what} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn server_event_ids(&self) -> Vec<String> {
        self.api("GET", "/api/v1/events?limit=1000", None)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn expect(agent: &mut AgentProcess, kind: &str, limit: Duration) -> levee_lab::ReceivedEvent {
    agent
        .wait_for_event(kind, limit)
        .unwrap_or_else(|| panic!("agent: no `{kind}` within {limit:?}"))
}

#[test]
fn an_attack_seen_by_the_agent_arrives_at_the_server() {
    let Some(ctx) = setup() else { return };
    let mut agent = ctx.ready_agent();
    let flood = ctx
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(5))
        .unwrap();
    let started = expect(&mut agent, "incident_started", Duration::from_secs(5));
    drop(flood);
    let resolved = expect(&mut agent, "incident_resolved", Duration::from_secs(20));
    let id = started.str("incident_id").unwrap().to_string();
    assert_eq!(resolved.str("incident_id"), Some(id.as_str()));

    ctx.wait_server("resolved incident", Duration::from_secs(15), |c| {
        c.api("GET", "/api/v1/incidents?state=resolved", None)
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["incident_id"] == id.as_str())
    });
    let incs = ctx.api("GET", "/api/v1/incidents", None);
    let inc = incs
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["incident_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(inc["node"], "lab-victim");
    assert_eq!(inc["target"].as_str(), started.str("target"));
    if let Some(f) = started.str("family") {
        assert_eq!(inc["family"].as_str(), Some(f), "{inc}");
    }
    let ids = ctx.server_event_ids();
    for e in [&started, &resolved] {
        assert!(
            ids.contains(&e.str("event_id").unwrap().to_string()),
            "event {} missing on the server",
            e.kind()
        );
    }
    let node = &ctx.api("GET", "/api/v1/nodes", None)[0];
    assert_eq!(
        (node["name"].as_str(), node["online"].as_bool()),
        (Some("lab-victim"), Some(true)),
        "{node}"
    );
    // Telemetry carried the flood: the victim interface's peak rate is far above idle.
    let m = ctx.api(
        "GET",
        &format!(
            "/api/v1/nodes/{}/metrics?target={}",
            node["id"],
            ctx.lab.victim_if()
        ),
        None,
    );
    let peak = m["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["rx_pps"].as_f64())
        .fold(0.0, f64::max);
    assert!(peak > 10_000.0, "peak rx_pps in telemetry {peak}: {m}");
    // The incident's capture follows its resolution.
    if started.str("pcap").is_some() {
        ctx.wait_server("pcap", Duration::from_secs(20), |c| {
            c.api("GET", &format!("/api/v1/incidents/{}", inc["id"]), None)["has_pcap"] == true
        });
    }
    agent.stop().unwrap();
}

#[test]
fn a_server_away_for_60_s_during_an_attack_loses_no_event() {
    let Some(mut ctx) = setup() else { return };
    let mut agent = ctx.agent();
    let first = expect(&mut agent, "agent_started", Duration::from_secs(20));
    let first_id = first.str("event_id").unwrap().to_string();
    ctx.wait_server("agent_started", Duration::from_secs(15), |c| {
        c.server_event_ids().contains(&first_id)
    });
    expect(&mut agent, "baseline_ready", Duration::from_secs(30));

    ctx.server.stop().unwrap();
    let down = Instant::now();
    let flood = ctx
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(6))
        .unwrap();
    let started = expect(&mut agent, "incident_started", Duration::from_secs(5));
    drop(flood);
    expect(&mut agent, "incident_resolved", Duration::from_secs(30));
    let away = Duration::from_secs(60);
    std::thread::sleep(away.saturating_sub(down.elapsed()));
    println!("server was away {:?}", down.elapsed());
    ctx.server.restart().unwrap();

    let printed: Vec<String> = agent
        .events()
        .iter()
        .filter_map(|e| e.str("event_id").map(str::to_string))
        .collect();
    assert!(printed.len() >= 4, "{printed:?}");
    // Backoff is capped at 30 s: the replay comes within that plus a moment.
    ctx.wait_server("replayed events", Duration::from_secs(45), |c| {
        let have: HashSet<String> = c.server_event_ids().into_iter().collect();
        printed.iter().all(|id| have.contains(id))
    });
    let ids = ctx.server_event_ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event stored twice");
    let id = started.str("incident_id").unwrap();
    let incs = ctx.api("GET", "/api/v1/incidents?state=resolved", None);
    assert!(
        incs.as_array()
            .unwrap()
            .iter()
            .any(|i| i["incident_id"] == id),
        "{incs}"
    );
    agent.stop().unwrap();
}

/// An operator asks for a capture during an attack: the agent writes its
/// pcap ring now and uploads it as the open incident's capture, before the
/// incident ends; the result comes back on the command.
#[test]
fn an_operator_captures_a_pcap_during_an_attack() {
    let Some(ctx) = setup() else { return };
    let mut agent = ctx.ready_agent();
    let flood = ctx
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(20))
        .unwrap();
    let started = expect(&mut agent, "incident_started", Duration::from_secs(5));
    let id = started.str("incident_id").unwrap().to_string();
    let node = ctx.api("GET", "/api/v1/nodes", None)[0]["id"].clone();
    let cmd = ctx.api(
        "POST",
        &format!("/api/v1/nodes/{node}/commands"),
        Some(json!({"kind": "capture_pcap"})),
    );
    let mut result = Value::Null;
    ctx.wait_server("the command's result", Duration::from_secs(15), |c| {
        result = c.api("GET", &format!("/api/v1/nodes/{node}/commands"), None)[0].clone();
        result["id"] == cmd["id"] && !result["ok"].is_null()
    });
    assert_eq!(result["ok"], true, "{result}");
    let msg = result["result"].as_str().unwrap();
    assert!(
        msg.contains(&format!("uploading it as incident {id}'s capture")),
        "{msg}"
    );
    let server_id = ctx
        .api("GET", "/api/v1/incidents?state=open", None)
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["incident_id"] == id.as_str())
        .unwrap_or_else(|| panic!("incident {id} not open on the server"))["id"]
        .clone();
    ctx.wait_server("the capture", Duration::from_secs(15), |c| {
        c.api("GET", &format!("/api/v1/incidents/{server_id}"), None)["has_pcap"] == true
    });
    assert!(
        agent.events_of("incident_resolved").is_empty(),
        "the capture came from the command, while the attack went on"
    );
    let executed = agent.events_of("command_executed");
    assert_eq!(executed.len(), 1);
    assert_eq!(executed[0].str("kind"), Some("capture_pcap"));
    drop(flood);
    agent.stop().unwrap();
}
