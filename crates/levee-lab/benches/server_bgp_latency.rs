//! Server-side BGP escalation latency (issue 6 target, through the
//! server): an enrolled agent's `incident_started` POSTed to
//! `levee server` -> the tenant's engine on the leader (events table
//! polled every 100 ms, the default) -> gobgp CLI -> Levee's gobgpd ->
//! eBGP -> the edge gobgpd's RIB; and `incident_resolved` -> route gone.
//! p50 / p95 / max over N incidents.
//!
//! The clock starts before the agent's POST is sent (curl in the server's
//! namespace with the node's agent key, so each figure includes curl's
//! start and TLS handshake, ~15-30 ms) and stops when `gobgp global rib`
//! on the edge shows the route (polled back to back: up to one poll more).
//!
//! `cargo bench -p levee-lab --bench server_bgp_latency [-- N]` (root,
//! iproute2, gobgpd, curl; skipped loudly without them outside CI).

use levee_lab::bgp::{write_roas, GoBgpd, BGP_TOOLS, LAB_NET};
use levee_lab::lab::Ns;
use levee_lab::report::{ms_summary, results_table, Row};
use levee_lab::{incident_event, levee_binary, require_lab_with, Lab, ServerProcess, SERVER_TOOLS};
use serde_json::json;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let mut tools = BGP_TOOLS.to_vec();
    tools.extend_from_slice(SERVER_TOOLS);
    if require_lab_with(&tools).is_some() {
        return;
    }
    let bin = levee_binary().unwrap();
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vic = IpAddr::V4(lab.victim_ip());
    let (mut edge, _speaker) = GoBgpd::edge_and_speaker(&lab, dir.path(), 50121, 50122).unwrap();
    let roas = write_roas(dir.path(), LAB_NET).unwrap();
    let o = lab.victim_ip().octets();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[[bgp.tenant]]\ntenant = \"default\"\norigin_as = 64500\nprefixes = [\"{}.{}.{}.0/24\"]\n\
             [bgp.tenant.rpki]\nroa_file = \"{}\"\n\
             [bgp.tenant.speaker]\nkind = \"gobgp\"\ngobgp_api = \"127.0.0.1:50122\"\nnetns = \"{}\"\n",
            o[0],
            o[1],
            o[2],
            roas.display(),
            lab.victim_ns()
        ),
    )
    .unwrap();
    let server = ServerProcess::start_with(
        &lab,
        Ns::Attacker,
        &bin,
        &dir.path().join("server"),
        &lab.attacker_ip().to_string(),
        8443,
        &["--config".into(), config.to_string_lossy().into_owned()],
    )
    .unwrap();
    let key = server.enroll_node(&lab, "bench").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.api(&lab, "GET", "/api/v1/bgp", None).unwrap()["running"] != true {
        assert!(
            Instant::now() < deadline,
            "the tenant's BGP engine did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let needle = format!("[destination: {vic}/32]");
    let victim = vic.to_string();
    let (mut up, mut down, mut post) = (Vec::new(), Vec::new(), Vec::new());
    let limit = Duration::from_secs(30);
    for i in 0..n as u64 {
        let id = format!("bench-{i}");
        let send = |n: u64, kind: &str, bps: f64| {
            let body = json!({"events": [incident_event(n, kind, &id, "bench", &victim, bps)]});
            let t = Instant::now();
            let (code, v) = server
                .request(&lab, &key, "POST", "/api/v1/agent/events", Some(&body))
                .unwrap();
            assert!((200..300).contains(&code), "{code} {v}");
            t.elapsed().as_secs_f64() * 1000.0
        };
        let t0 = Instant::now();
        post.push(send(2 * i, "incident_started", 700e6));
        edge.ms_until("ipv4-flowspec", true, &needle, limit)
            .unwrap();
        up.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t1 = Instant::now();
        send(2 * i + 1, "incident_resolved", 0.0);
        edge.ms_until("ipv4-flowspec", false, &needle, limit)
            .unwrap();
        down.push(t1.elapsed().as_secs_f64() * 1000.0);
    }
    let peer = "replaced product: < 2 s (its promise; not measured here)";
    let rows = vec![
        Row::new(
            "agent's incident_started POSTed to levee server -> FlowSpec route in the edge router's RIB",
            "curl POST /api/v1/agent/events (agent key) -> events table -> leader's engine (100 ms poll) -> gobgp CLI -> Levee's gobgpd -> eBGP -> edge gobgpd; edge RIB polled with `gobgp global rib`",
            ms_summary(&up),
            "<= 500 ms p95",
            peer.into(),
        ),
        Row::new(
            "agent's incident_resolved POSTed -> route gone from the edge RIB",
            "same path, withdraw",
            ms_summary(&down),
            "<= 500 ms p95",
            peer.into(),
        ),
        Row::new(
            "the POST itself (curl start, TLS, ingest)",
            "curl wall time in the server's namespace",
            ms_summary(&post),
            "-",
            "-".into(),
        ),
    ];
    println!("\n{}", results_table(&rows));
    println!("{}", levee_lab::machine::describe());
}
