//! The engine end to end in the lab: the safety rules and the collateral
//! guard against real traffic, and rules outliving a SIGKILLed `levee`
//! only until their kernel TTL.
//!
//! Needs root, iproute2, hping3, coreutils and nftables (CI=true fails
//! without them; elsewhere the tests skip loudly).

mod support;

use levee_lab::{FloodKind, Ns};
use levee_mitigate::config::Step;
use levee_mitigate::engine::IncidentView;
use levee_mitigate::meter::SockDiagLegitMeter;
use levee_mitigate::{ActionKind, GuardConfig, MitigationConfig};
use levee_model::EventBody;
use levee_packet::classify::fingerprint::IpPrefix;
use levee_packet::{Family, Fingerprint, IpProtocol, TcpFlags};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{attacker_prefix, ctx, snapshot, wait_until, Ctx};

const NFT: &[(&str, &str)] = &[("nft", "nftables")];

fn now() -> i64 {
    levee_lab::clock::wall_ms()
}

/// Runs `f` on a thread that has entered network namespace `ns`; sockets
/// it creates stay in that namespace.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

fn engine(c: &Ctx, cfg: MitigationConfig) -> levee_mitigate::MitigationEngine {
    levee_mitigate::system::build(cfg, c.work.path(), c.runner(), vec![], 7)
        .unwrap_or_else(|e| panic!("building the engine: {e}"))
}

fn syn_fp(src: IpPrefix) -> Fingerprint {
    Fingerprint {
        ip_version: Some(4),
        protocol: Some(IpProtocol(6)),
        src_ports: None,
        dst_ports: None,
        tcp_flags: Some(vec![TcpFlags(TcpFlags::SYN)]),
        icmp_types: None,
        length: None,
        ttl: None,
        fragment: None,
        non_first_fragments: false,
        src_prefixes: vec![src],
        coverage: 1.0,
        baseline_match: None,
        sample_packets: 100,
        any_of: vec![],
    }
}

fn view(
    c: &Ctx,
    family: Option<Family>,
    fp: Option<Fingerprint>,
    metrics: &[&str],
) -> IncidentView {
    IncidentView {
        id: "lab-incident".into(),
        target: c.lab.victim_if().into(),
        family,
        fingerprint: fp,
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
        victim: None,
        started_ms: now(),
    }
}

fn kinds(ev: &[EventBody]) -> Vec<&'static str> {
    ev.iter().map(|e| e.kind()).collect()
}

#[test]
fn an_allowlisted_source_is_never_blocked() {
    let Some(c) = ctx(NFT) else { return };
    let before = snapshot(&c);
    let attacker = attacker_prefix(&c);
    let cfg = MitigationConfig {
        enabled: true,
        allowlist: vec![attacker],
        ..MitigationConfig::default()
    };
    let mut e = engine(&c, cfg);
    let mut flood = c
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(12))
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let unmitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    // The fingerprint names the attacker: without the allowlist it would be
    // source-blocked and its SYNs rate-limited.
    let inc = view(&c, Some(Family::SynFlood), Some(syn_fp(attacker)), &[]);
    let ev = e.start(&inc, now());
    let applied: Vec<&EventBody> = ev
        .iter()
        .filter(|e| e.kind() == "mitigation_applied")
        .collect();
    assert!(!applied.is_empty(), "{ev:#?}");
    for a in &applied {
        let EventBody::MitigationApplied { info, .. } = a else {
            unreachable!()
        };
        assert_ne!(
            info.action, "source_block",
            "the allowlisted source was source-blocked: {ev:#?}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let mitigated = c.delivered_tcp_rate(Duration::from_millis(1500));
    let counters = e.counters();
    flood.check().unwrap();
    eprintln!("allowlisted attacker: {unmitigated:.0} seg/s before, {mitigated:.0} with rules in place; counters {counters:?}");
    assert!(
        mitigated > unmitigated * 0.5,
        "allowlisted traffic was cut: {unmitigated:.0} -> {mitigated:.0}"
    );
    let nft = c.victim(&["nft", "list", "ruleset"]);
    assert!(
        nft.contains(&c.lab.attacker_ip().to_string()),
        "exempt set lacks the attacker:\n{nft}"
    );
    assert!(
        !nft.contains("_s4"),
        "a source set was made for an allowlisted source:\n{nft}"
    );
    let ev = e.on_incident_resolved("lab-incident", now());
    assert!(
        kinds(&ev).iter().all(|k| *k == "mitigation_rolled_back"),
        "{ev:#?}"
    );
    flood.stop();
    assert_eq!(snapshot(&c), before);
}

/// Ping-pong over one TCP connection from the attacker to the victim,
/// about `rate` round trips per second, until `stop`.
fn legit_traffic(c: &Ctx, rate: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let victim: SocketAddr = (IpAddr::V4(c.lab.victim_ip()), 8080).into();
    let listener = in_netns(c.lab.victim_ns(), move || {
        TcpListener::bind(victim).unwrap()
    });
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            while !stop2.load(Ordering::SeqCst) {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if w.write_all(line.as_bytes()).is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    let ns = c.lab.attacker_ns().to_string();
    let mut client = in_netns(&ns, move || TcpStream::connect(victim).unwrap());
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let gap = Duration::from_micros(1_000_000 / u64::from(rate.max(1)));
    std::thread::spawn(move || {
        let mut buf = [0u8; 6];
        while !stop.load(Ordering::SeqCst) {
            if client.write_all(b"hello\n").is_err() {
                break;
            }
            // A cut connection times out here and keeps trying.
            let _ = client.read_exact(&mut buf);
            std::thread::sleep(gap);
        }
    })
}

#[test]
fn the_collateral_guard_rolls_back_a_rule_that_cuts_legitimate_traffic() {
    let Some(c) = ctx(NFT) else { return };
    let before = snapshot(&c);
    // A careless profile: rate-limit *all* TCP to the target to 2 packets/s.
    let mut cfg = MitigationConfig {
        enabled: true,
        guard: GuardConfig {
            grace: Duration::from_secs(2),
            ..GuardConfig::default()
        },
        ..MitigationConfig::default()
    };
    cfg.profiles.0.insert(
        Family::MultiVector,
        vec![Step {
            pps: Some(2),
            burst: Some(2),
            ..Step::new(ActionKind::RateLimit)
        }],
    );
    let ns = c.lab.victim_ns().to_string();
    let meter = in_netns(&ns, || {
        SockDiagLegitMeter::new().expect("sock_diag in the victim namespace")
    });
    let mut e = engine(&c, cfg).with_meter(Box::new(meter));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = legit_traffic(&c, 300, stop.clone());
    // Learn the legitimate level.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(6) {
        assert!(e.tick(now()).is_empty());
        std::thread::sleep(Duration::from_millis(250));
    }
    let inc = view(&c, None, None, &["rx_pps", "tcp_pps"]);
    let ev = e.start(&inc, now());
    assert!(kinds(&ev).contains(&"mitigation_applied"), "{ev:#?}");
    let mut rolled = None;
    let t1 = Instant::now();
    while rolled.is_none() && t1.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(250));
        rolled = e
            .tick(now())
            .into_iter()
            .find(|e| e.kind() == "mitigation_rolled_back");
    }
    stop.store(true, Ordering::SeqCst);
    let Some(EventBody::MitigationRolledBack {
        reason, expired, ..
    }) = rolled
    else {
        panic!("the guard did not roll the rule back within 15 s")
    };
    eprintln!(
        "guard: rolled back after {:.1} s: {reason}",
        t1.elapsed().as_secs_f64()
    );
    assert!(!expired && reason.contains("collateral damage"), "{reason}");
    let _ = traffic.join();
    assert_eq!(e.live().count(), 0);
    let after = snapshot(&c);
    assert_eq!(after, before);
}

#[test]
fn rules_expire_after_the_process_that_made_them_is_sigkilled() {
    let Some(c) = ctx(NFT) else { return };
    let before = snapshot(&c);
    let bin = levee_lab::levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
    let state = c.work.path().join("state");
    let mut child = c
        .lab
        .command_in(Ns::Victim, &bin.to_string_lossy())
        .args([
            "mitigate",
            "apply",
            "--family",
            "ack_flood",
            "--target",
            &c.lab.victim_ip().to_string(),
            "--ttl",
            "3s",
            "--state-dir",
            &state.to_string_lossy(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !line.contains("\"mitigation_applied\"") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0 && Instant::now() < deadline,
            "no mitigation_applied from levee"
        );
    }
    // The attacked address as a timed element of the mitigation's set (it is
    // also in the exempt set, as one of the node's own addresses).
    let victim = format!("{} timeout", c.lab.victim_ip());
    assert!(c.victim(&["nft", "list", "ruleset"]).contains(&victim));
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    let t = Instant::now();
    let gone = wait_until(Duration::from_secs(8), || {
        !c.victim(&["nft", "list", "ruleset"]).contains(&victim)
    });
    eprintln!(
        "after SIGKILL the rule stopped matching {:.1} s later (TTL 3 s)",
        t.elapsed().as_secs_f64()
    );
    assert!(gone, "the rule outlived its TTL:\n{}", snapshot(&c));
    // A restarted agent (here `levee mitigate reconcile`) removes the rest and says so.
    let out = c.victim(&[
        &bin.to_string_lossy(),
        "mitigate",
        "reconcile",
        "--state-dir",
        &state.to_string_lossy(),
    ]);
    assert!(out.contains("\"mitigation_reconciled\""), "{out}");
    assert_eq!(snapshot(&c), before);
    // Every step is in the audit log, and its chain is intact.
    let log = std::fs::read(state.join("audit.jsonl")).unwrap();
    assert!(levee_mitigate::audit::verify(&log[..]).unwrap().is_ok());
    let text = String::from_utf8_lossy(&log);
    for step in [
        "\"previewed\"",
        "\"applied\"",
        "\"verified\"",
        "\"reconciled\"",
    ] {
        assert!(text.contains(step), "{step} missing in\n{text}");
    }
}
