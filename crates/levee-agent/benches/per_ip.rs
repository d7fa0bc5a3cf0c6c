//! Per-IP detection at the scale of a /16 (issue 7 target: 65,536 monitored
//! IPs with per-IP baselines in <= 256 MB).
//!
//! The agent's flow-mode path without sockets: every simulated second, one
//! flow record per IP of 10.20.0.0/16 (rates varying per IP and per second)
//! goes into the per-IP [`Engine`], the engine's tick rates (65,536 IPs + 256
//! /24 prefixes) go into the [`Detector`], with the default detector
//! settings (300-second windows, 1 s ticks, p99 every 10 s). After 330
//! seconds every window is full. Measured: the process's resident memory
//! growth (VmRSS, /proc/self/status) and the CPU time per simulated second
//! (engine + detector), plus the baseline snapshot's size and time.
//!
//! Run: `cargo bench -p levee-agent --bench per_ip` (prints a table).

use levee_agent::netmode::config::NetworksConfig;
use levee_agent::netmode::Engine;
use levee_detector::{Detector, DetectorSettings};
use levee_flow::{FlowRecord, Version};
use levee_model::TickObservation;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const IPS: u32 = 65_536;
const SECONDS: i64 = 330;
const T0: i64 = 1_795_225_450_000;

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // Criterion passes flags such as --bench; this benchmark takes none.
    let rss0 = status_kb("VmRSS:");
    let cfg = NetworksConfig {
        monitored_networks: vec!["10.20.0.0/16".parse().unwrap()],
        ..NetworksConfig::default()
    };
    let settings = DetectorSettings {
        warmup_samples: 60,
        max_targets: 100_000,
        ..DetectorSettings::default()
    };
    let mut engine = Engine::new(cfg, T0);
    let mut det = Detector::new(settings, 1);
    let mut rec = FlowRecord::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), Version::Ipfix, 0);
    rec.src_addr = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
    rec.src_port = Some(40_000);
    rec.dst_port = Some(443);
    rec.protocol = Some(6);
    rec.tcp_flags = Some(0x18);
    let mut per_second = Vec::new();
    let mut incidents = 0;
    for s in 1..=SECONDS {
        let now = T0 + s * 1000;
        let t = Instant::now();
        for i in 0..IPS {
            // 1 to 400 pps per IP, varying: a busy hosting /16 at ~13 Mpps.
            let pps = 1 + (i.wrapping_mul(2_654_435_761) ^ (s as u32).wrapping_mul(40_503)) % 400;
            rec.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a14_0000 | i)));
            rec.packets = u64::from(pps);
            rec.bytes = u64::from(pps) * 800;
            engine.observe_record(now - 500, &rec);
        }
        let targets = engine.tick(now);
        let obs = TickObservation {
            unix_ms: now,
            dt: 1.0,
            targets,
            ..TickObservation::default()
        };
        incidents += det
            .observe(&obs)
            .iter()
            .filter(|o| matches!(o, levee_detector::DetectorOutput::Started(_)))
            .count();
        per_second.push(t.elapsed().as_secs_f64());
    }
    let rss1 = status_kb("VmRSS:");
    let hwm = status_kb("VmHWM:");
    let t = Instant::now();
    let snap = det.snapshot(T0).to_json();
    let snap_ms = t.elapsed().as_secs_f64() * 1e3;
    let steady = &mut per_second[60..].to_vec();
    steady.sort_by(f64::total_cmp);
    let p50 = steady[steady.len() / 2] * 1e3;
    let max = steady[steady.len() - 1] * 1e3;
    let bank = det.targets();
    let machine = levee_lab::machine::describe();
    println!("| what | how measured | result | target | machine |");
    println!("|---|---|---|---|---|");
    println!(
        "| Memory for per-IP baselines of a /16 | VmRSS growth after {SECONDS} s of 1 s ticks with 65,536 IPs of 10.20.0.0/16 + 256 /24 prefixes all active (default 300 s windows full), engine + detector in one process | {:.0} MB (VmRSS {:.0} -> {:.0} MB, peak {:.0} MB; windows {:.0} MB, {} targets) | <= 256 MB | {machine} |",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        hwm as f64 / 1024.0,
        bank.window_bytes() as f64 / 1e6,
        bank.len(),
    );
    println!(
        "| CPU per second of traffic at a /16 | wall time of one simulated second (65,536 flow records into the engine, its tick, the detector's tick over 65,792 targets), 1 thread, seconds 60-{SECONDS} | p50 {p50:.0} ms / max {max:.0} ms per second ({:.1} % / {:.1} % of a core) | - | {machine} |",
        p50 / 10.0,
        max / 10.0
    );
    println!(
        "| Baseline snapshot of a /16 | Detector::snapshot().to_json() with every window full | {:.0} MB in {snap_ms:.0} ms | - | {machine} |",
        snap.len() as f64 / 1e6
    );
    println!("\n(incidents started on this steady, varying traffic: {incidents})");
}
