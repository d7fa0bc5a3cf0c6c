//! `levee agent --mode flow` end to end on loopback (no root needed): the
//! binary listens on 127.0.0.1, NetFlow v9 datagrams built here arrive over
//! UDP, and the agent reports a per-IP incident (with its family) for a
//! flood to one IP and a prefix incident for traffic spread thinly over a
//! /24; the template cache and exporter counters land in the state dir;
//! enrolled with a `levee server`, its incidents reach the server.

mod common;

use levee_flow::build::{self, Flow};
use levee_proto::Fingerprint;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

struct Agent {
    child: Child,
    rx: Receiver<Value>,
    seen: Vec<Value>,
}

impl Agent {
    fn spawn(config: &str, dir: &std::path::Path) -> Agent {
        Agent::spawn_with(config, dir, &[])
    }

    fn spawn_with(config: &str, dir: &std::path::Path, extra: &[&str]) -> Agent {
        let cfg = dir.join("agent.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_levee"))
            .args(["agent", "--mode", "flow", "--config"])
            .arg(&cfg)
            .args([
                "--tick",
                "100ms",
                "--baseline-warmup",
                "3s",
                "--quiet-period",
                "2s",
                "--node",
                "flowtest",
            ])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).unwrap(),
            ))
            .spawn()
            .expect("spawn levee agent");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Agent {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    fn wait(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Ok(v) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v.clone());
            if pred(&v) {
                return Some(v);
            }
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own, not yet reaped child: SIGTERM, so the
        // agent stops cleanly.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn flow(src: u32, dst: IpAddr, packets: u64, flags: u8) -> Flow {
    Flow {
        src: IpAddr::V4(src.into()),
        dst,
        src_port: 1024 + (src % 50_000) as u16,
        dst_port: 80,
        protocol: 6,
        tcp_flags: flags,
        packets,
        bytes: packets * 60,
    }
}

/// One send of the carpet bombing: UDP to 128 IPs of 203.0.113.0/24, 50
/// packets each, except that each IP gets a burst of 2000 every 8th send.
fn carpet_send(seq: u32) -> Vec<Flow> {
    (0..128u32)
        .map(|i| Flow {
            protocol: 17,
            dst_port: 53,
            ..flow(
                0x0a00_0000 + seq * 128 + i,
                IpAddr::from([203, 0, 113, 100 + i as u8]),
                if (seq + i) % 8 == 0 { 2000 } else { 50 },
                0,
            )
        })
        .collect()
}

/// Sends one v9 datagram (template + data) of `flows`.
fn send(tx: &UdpSocket, to: SocketAddr, seq: u32, flows: &[Flow]) {
    let tpl = build::set(
        0,
        &build::template_record(256, &build::flow_fields(false), false),
    );
    for chunk in flows.chunks(20) {
        let mut body = Vec::new();
        for f in chunk {
            build::data_record(f, false, &mut body);
        }
        tx.send_to(
            &build::netflow9(seq, 1, 1, &[tpl.clone(), build::set(256, &body)]),
            to,
        )
        .unwrap();
    }
}

/// 5 s of calm (100 pps of established traffic to 203.0.113.10), then a
/// SYN flood on 203.0.113.7 from many sources (20 records of 500 SYNs per
/// 100 ms = 100 kpps) until the agent reports an incident; returns it.
fn calm_then_flood(agent: &mut Agent, tx: &UdpSocket, to: SocketAddr, seq: &mut u32) -> Value {
    let web: IpAddr = "203.0.113.10".parse().unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        *seq += 1;
        send(tx, to, *seq, &[flow(*seq, web, 10, 0x18)]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        agent
            .wait(Duration::from_secs(5), |v| v["event"] == "baseline_ready")
            .is_some(),
        "no baseline_ready"
    );
    let victim: IpAddr = "203.0.113.7".parse().unwrap();
    let t1 = Instant::now();
    let mut inc = None;
    while t1.elapsed() < Duration::from_secs(4) && inc.is_none() {
        *seq += 1;
        let flood: Vec<Flow> = (0..20)
            .map(|i| flow(0xc633_6400 + *seq * 20 + i, victim, 500, 0x02))
            .collect();
        send(tx, to, *seq, &flood);
        inc = agent.wait(Duration::from_millis(100), |v| {
            v["event"] == "incident_started"
        });
    }
    inc.expect("no incident for the flood")
}

#[test]
fn flood_to_one_ip_and_carpet_bombing_are_separate_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = format!(
        "[networks]\nmonitored_networks = [\"203.0.113.0/24\"]\ncarpet_min_ips = 16\n\
         [flow]\nlisten = [\"127.0.0.1:{port}\"]\n"
    );
    let mut agent = Agent::spawn(&config, dir.path());
    let started = agent
        .wait(Duration::from_secs(10), |v| v["event"] == "agent_started")
        .expect("agent_started");
    assert_eq!(started["node"], "flowtest");
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seq = 0;
    let inc = calm_then_flood(&mut agent, &tx, to, &mut seq);
    assert_eq!(inc["target"], "203.0.113.7", "{inc}");
    assert_eq!(inc["family"], "syn_flood", "{inc}");
    assert_eq!(inc["victim"], "203.0.113.7");
    assert!(inc["value"].as_f64().unwrap() > 10_000.0, "{inc}");
    // Let it resolve.
    assert!(
        agent
            .wait(Duration::from_secs(8), |v| v["event"]
                == "incident_resolved"
                && v["target"] == "203.0.113.7")
            .is_some(),
        "flood incident did not resolve"
    );
    // Carpet bombing: UDP to 128 IPs of the /24, 50 packets each per
    // 100 ms (500 pps per IP, under the 2000 pps floor), except that each
    // IP gets a burst of 2000 every 8th send, as bunched exports make it:
    // every IP goes over its floor now and then, and must still be folded
    // into the prefix's incident.
    let t2 = Instant::now();
    let mut carpet = None;
    while t2.elapsed() < Duration::from_secs(4) && carpet.is_none() {
        seq += 1;
        send(&tx, to, seq, &carpet_send(seq));
        carpet = agent.wait(Duration::from_millis(100), |v| {
            v["event"] == "incident_started" && v["target"] != "203.0.113.7"
        });
    }
    let carpet = carpet.expect("no incident for the carpet bombing");
    assert_eq!(carpet["target"], "203.0.113.0/24", "{carpet}");
    assert_eq!(carpet["family"], "udp_flood", "{carpet}");
    assert_eq!(carpet["members"], 128, "{carpet}");
    // Keep the carpet going a while: members stay folded.
    let t3 = Instant::now();
    while t3.elapsed() < Duration::from_secs(2) {
        seq += 1;
        send(&tx, to, seq, &carpet_send(seq));
        agent.wait(Duration::from_millis(100), |_| false);
    }
    let ip_incidents = agent
        .seen
        .iter()
        .filter(|v| v["event"] == "incident_started")
        .count();
    assert_eq!(
        ip_incidents, 2,
        "no per-IP incident for the carpet's members"
    );
    // Counters and templates are written every 10 s.
    let state = dir.path().join("state");
    let read = || -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(state.join("flow-exporters.json")).ok()?).ok()
    };
    let deadline = Instant::now() + Duration::from_secs(22);
    let mut status = read();
    while status
        .as_ref()
        .is_none_or(|s| s["exporters"][0]["records"].as_u64() <= Some(300))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        status = read();
    }
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let status =
        status.unwrap_or_else(|| panic!("no flow-exporters.json; agent stderr:\n{stderr}"));
    assert_eq!(status["exporters"][0]["exporter"], "127.0.0.1");
    assert!(
        status["exporters"][0]["records"].as_u64().unwrap() > 300,
        "{status}\nevents: {:#?}\nagent stderr:\n{stderr}",
        agent
            .seen
            .iter()
            .map(|v| format!("{} {} {}", v["ts"], v["event"], v["target"]))
            .collect::<Vec<_>>()
    );
    assert_eq!(status["exporters"][0]["decode_errors"], 0);
    let templates = std::fs::read_to_string(state.join("flow-templates.json")).unwrap();
    assert!(templates.contains("\"id\":256"), "{templates}");
}

/// Enrolled with a server (`--server`, `--enroll`), a flow-mode agent
/// reports like a host-mode one: the per-IP incident reaches the server's
/// API with its target and family.
#[test]
fn a_flow_mode_incident_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let data = dir.path().join("server");
    let mut server = common::Proc::spawn(&[
        "server",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let fp: Fingerprint = server.fingerprint(Duration::from_secs(30));
    let admin = common::last_word(&server.wait_line("admin token", Duration::from_secs(5)));
    let url = format!("https://{listen}");
    let enroll = common::post(
        &format!("{url}/api/v1/enrollment-tokens"),
        fp,
        &admin,
        json!({}),
    );
    let port = free_port();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = format!(
        "[networks]\nmonitored_networks = [\"203.0.113.0/24\"]\n\
         [flow]\nlisten = [\"127.0.0.1:{port}\"]\n"
    );
    let fp_text = fp.to_string();
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let mut agent = Agent::spawn_with(
        &config,
        &agent_dir,
        &[
            "--server",
            &url,
            "--enroll",
            enroll["token"].as_str().unwrap(),
            "--server-fingerprint",
            &fp_text,
        ],
    );
    agent
        .wait(Duration::from_secs(10), |v| v["event"] == "agent_started")
        .expect("agent_started");
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seq = 0;
    let inc = calm_then_flood(&mut agent, &tx, to, &mut seq);
    assert_eq!(inc["target"], "203.0.113.7", "{inc}");
    let id = inc["incident_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    let on_server = loop {
        let all = common::get(&format!("{url}/api/v1/incidents"), fp, &admin);
        if let Some(i) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["incident_id"] == id.as_str())
        {
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "incident {id} never reached the server: {all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(on_server["node"], "flowtest", "{on_server}");
    assert_eq!(on_server["target"], "203.0.113.7", "{on_server}");
    assert_eq!(on_server["family"], "syn_flood", "{on_server}");
}
