//! `levee-lab-bench`: the detection benchmark (not a test).
//!
//! Starts one agent in the lab's victim namespace (100 ms ticks, short warmup),
//! runs N SYN floods (`hping3 --flood`, each followed by waiting for the
//! incident to resolve) and measures detection latency, the achieved flood rate
//! and the agent's CPU and memory idle and under flood; then the idle cost at
//! 1 s ticks; then, if installed, FastNetMon's time to ban on the same floods.
//! Prints a markdown table. See bench/README.md.
//!
//! `cargo run --release -p levee-lab --bin levee-lab-bench -- --floods 10`

mod fastnetmon;
mod report;

use anyhow::{bail, Context, Result};
use clap::Parser;
use levee_lab::clock::wall_ms;
use levee_lab::stats::{summarize, Summary};
use levee_lab::{AgentOptions, AgentProcess, FloodKind, FloodOptions, Lab};
use report::{num, Row};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Levee detection benchmark in the attack lab (needs root, ip, hping3)")]
struct Args {
    /// Number of SYN floods.
    #[arg(long, default_value_t = 10)]
    floods: usize,
    /// Length of each flood, seconds (>= 2).
    #[arg(long, default_value_t = 5)]
    flood_secs: u64,
    /// Agent --baseline-warmup, seconds.
    #[arg(long, default_value_t = 10)]
    warmup_secs: u64,
    /// Agent --quiet-period, seconds.
    #[arg(long, default_value_t = 3)]
    quiet_secs: u64,
    /// Length of each idle measurement, seconds.
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// Background traffic during the whole run, packets per second.
    #[arg(long, default_value_t = 20)]
    background_pps: u32,
    /// Spoofed random sources (`hping3 --rand-source`).
    #[arg(long)]
    rand_source: bool,
    /// The levee binary (default: LEVEE_BIN, else built with this profile).
    #[arg(long)]
    levee_bin: Option<PathBuf>,
    /// Shape the attacker's egress (tc tbf in the attacker namespace) to
    /// about this many 54-byte SYN frames per second; 0 = unshaped
    /// (`hping3 --flood` at whatever rate it reaches).
    #[arg(long, default_value_t = 0)]
    shape_pps: u64,
    /// Measure FastNetMon side by side: auto (if installed), off.
    #[arg(long, default_value = "auto")]
    fastnetmon: String,
    /// Also write the report to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// One flood's measurements.
#[derive(Debug, Default)]
struct FloodResult {
    /// incident_started.ts - wall clock just before the flood was spawned.
    latency_ms: Option<f64>,
    /// incident_started.ts - first rx counter jump seen at the victim.
    first_packet_latency_ms: Option<f64>,
    pps: f64,
    cpu_pct: f64,
    resolved_after_ms: Option<f64>,
    metric: String,
    ratio: f64,
}

/// An idle measurement.
#[derive(Debug, Clone, Copy)]
struct Idle {
    cpu_pct: f64,
    rss_kb: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.flood_secs < 2 {
        bail!("--flood-secs must be at least 2 (the rate is measured from 1 s to 0.5 s before the end)");
    }
    let missing = levee_lab::prereq::missing_prerequisites();
    if !missing.is_empty() {
        bail!("lab prerequisites missing: {}", missing.join("; "));
    }
    let bin = match &args.levee_bin {
        Some(b) => b.clone(),
        None => levee_lab::levee_binary().context("locating the levee binary")?,
    };
    let fnm_mode = args.fastnetmon.as_str();
    if !matches!(fnm_mode, "auto" | "off") {
        bail!("--fastnetmon must be auto or off, not {fnm_mode}");
    }

    let lab = Lab::new().context("creating the lab")?;
    if args.shape_pps > 0 {
        // 54 bytes per SYN frame (14 Ethernet + 20 IP + 20 TCP); tbf counts
        // the frame length. Inside the lab's attacker namespace only.
        let rate = format!("{}bit", args.shape_pps * 54 * 8);
        lab.exec_in(
            levee_lab::Ns::Attacker,
            &[
                "tc",
                "qdisc",
                "replace",
                "dev",
                lab.attacker_if(),
                "root",
                "tbf",
                "rate",
                &rate,
                "burst",
                "64kb",
                "latency",
                "20ms",
            ],
        )
        .context("shaping the attacker's egress with tc tbf")?;
        progress(&format!(
            "attacker egress shaped to {rate} (~{} pps)",
            args.shape_pps
        ));
    }
    let per_flood = args.flood_secs + args.quiet_secs + 20;
    let total =
        2 * (args.warmup_secs + args.idle_secs + 30) + 2 * args.floods as u64 * per_flood + 120;
    let mut bg = lab
        .background_traffic(args.background_pps, Duration::from_secs(total))
        .context("starting background traffic")?;
    let work = tempfile::Builder::new()
        .prefix("levee-bench-")
        .tempdir()
        .context("creating a work dir")?;
    progress(&format!(
        "lab {} -> {} ({}), agent {}",
        lab.attacker_ns(),
        lab.victim_ns(),
        lab.victim_ip(),
        bin.display()
    ));

    // 1. 100 ms ticks: idle, then floods.
    let mut opts = AgentOptions::new(&bin, work.path().join("tick100"));
    opts.baseline_warmup = Duration::from_secs(args.warmup_secs);
    opts.quiet_period = Duration::from_secs(args.quiet_secs);
    let (mut agent, version) = start_ready(&lab, &opts)?;
    let idle_100 = measure_idle(&agent, args.idle_secs)?;
    progress(&format!(
        "idle at 100 ms ticks: {:.2}% CPU, RSS {} kB",
        idle_100.cpu_pct, idle_100.rss_kb
    ));

    let mut flood_opts = FloodOptions::new(FloodKind::Syn, Duration::from_secs(args.flood_secs));
    flood_opts.rand_source = args.rand_source;
    let mut results = Vec::new();
    for i in 0..args.floods {
        let r = run_flood(&lab, &mut agent, &flood_opts, &args)
            .with_context(|| format!("flood {}", i + 1))?;
        progress(&format!(
            "flood {}/{}: latency {} (from first packet {}), {:.0} pps, agent {:.1}% CPU, resolved {} after the end",
            i + 1,
            args.floods,
            num(r.latency_ms, 0, " ms"),
            num(r.first_packet_latency_ms, 0, " ms"),
            r.pps,
            r.cpu_pct,
            num(r.resolved_after_ms, 0, " ms")
        ));
        results.push(r);
        std::thread::sleep(Duration::from_secs(1));
    }
    let flood_hwm_kb = agent.sample().map(|s| s.hwm_kb).unwrap_or(0);
    let flood_rss_kb = agent.sample().map(|s| s.rss_kb).unwrap_or(0);
    let stopped = agent.stop().context("stopping the agent")?;
    if !stopped.success() {
        progress(&format!(
            "warning: agent exited with {stopped} after SIGTERM"
        ));
    }
    drop(agent);

    // 2. 1 s ticks: idle only.
    let mut opts_1s = AgentOptions::new(&bin, work.path().join("tick1000"));
    opts_1s.tick = Duration::from_secs(1);
    opts_1s.baseline_warmup = Duration::from_secs(args.warmup_secs);
    opts_1s.quiet_period = Duration::from_secs(args.quiet_secs);
    let (mut agent_1s, _) = start_ready(&lab, &opts_1s)?;
    let idle_1s = measure_idle(&agent_1s, args.idle_secs)?;
    progress(&format!(
        "idle at 1 s ticks: {:.2}% CPU, RSS {} kB",
        idle_1s.cpu_pct, idle_1s.rss_kb
    ));
    agent_1s.stop().context("stopping the 1 s agent")?;
    drop(agent_1s);

    // 3. The peer.
    let peer = if fnm_mode == "off" {
        fastnetmon::Outcome::Skipped("disabled with --fastnetmon off".into())
    } else {
        fastnetmon::measure(&lab, &flood_opts, args.floods, work.path())
    };
    if let Err(e) = bg.check() {
        progress(&format!("warning: background traffic failed: {e}"));
    }
    bg.stop();

    let text = render(
        &args,
        &version,
        &results,
        idle_100,
        idle_1s,
        flood_rss_kb,
        flood_hwm_kb,
        &peer,
    );
    println!("{text}");
    if let Some(path) = &args.output {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    let detected = results.iter().filter(|r| r.latency_ms.is_some()).count();
    if detected < results.len() {
        bail!(
            "{} of {} floods were not detected",
            results.len() - detected,
            results.len()
        );
    }
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// Starts an agent and waits for `baseline_ready` plus 2 s to settle.
/// Returns the agent and its version.
fn start_ready(lab: &Lab, opts: &AgentOptions) -> Result<(AgentProcess, String)> {
    let mut agent = AgentProcess::spawn(lab, opts).context("spawning the agent")?;
    let started = agent
        .wait_for_event("agent_started", Duration::from_secs(15))
        .with_context(|| format!("no agent_started:\n{}", agent.diagnostics()))?;
    let version = started.str("version").unwrap_or("?").to_string();
    let limit = opts.baseline_warmup + Duration::from_secs(15);
    agent
        .wait_for_event("baseline_ready", limit)
        .with_context(|| {
            format!(
                "no baseline_ready within {limit:?}:\n{}",
                agent.diagnostics()
            )
        })?;
    std::thread::sleep(Duration::from_secs(2));
    Ok((agent, version))
}

fn measure_idle(agent: &AgentProcess, secs: u64) -> Result<Idle> {
    let a = agent.sample().context("sampling the agent")?;
    std::thread::sleep(Duration::from_secs(secs));
    let b = agent.sample().context("sampling the agent")?;
    Ok(Idle {
        cpu_pct: b.cpu_percent_since(&a),
        rss_kb: b.rss_kb,
    })
}

fn sleep_until(t: Instant) {
    std::thread::sleep(t.saturating_duration_since(Instant::now()));
}

fn run_flood(
    lab: &Lab,
    agent: &mut AgentProcess,
    opts: &FloodOptions,
    args: &Args,
) -> Result<FloodResult> {
    let vif = lab.victim_if();
    if let Some(e) = agent.wait_for_event("incident_started", Duration::ZERO) {
        progress(&format!("warning: incident before the flood: {}", e.value));
    }
    let c0 = agent.net_dev(vif)?;
    let mut flood = lab.flood_with(opts)?;
    let spawned = flood.spawned_at();

    // First packets at the victim: poll its counters every ms (cheap: a read
    // of /proc/<agent>/net/dev, no fork), stop at the first jump.
    let mut first_packet_ms = None;
    while spawned.elapsed() < Duration::from_secs(2) {
        if agent.net_dev(vif)?.rx_packets >= c0.rx_packets + 50 {
            first_packet_ms = Some(wall_ms());
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    let mut r = FloodResult::default();
    match agent.wait_for_event("incident_started", Duration::from_secs(5)) {
        Some(e) => {
            if let Some(ts) = e.ts_ms() {
                r.latency_ms = Some((ts - flood.spawned_wall_ms()) as f64);
                r.first_packet_latency_ms = first_packet_ms.map(|f| (ts - f) as f64);
            }
            r.metric = e.str("metric").unwrap_or("?").to_string();
            r.ratio = e.f64("ratio").unwrap_or(f64::NAN);
        }
        None => {
            flood.check()?;
            progress("warning: no incident_started within 5 s");
        }
    }

    // Steady state: from 1 s after the spawn to 0.5 s before the end.
    sleep_until(spawned + Duration::from_secs(1));
    let (c1, p1) = (agent.net_dev(vif)?, agent.sample()?);
    sleep_until(spawned + opts.duration - Duration::from_millis(500));
    let (c2, p2) = (agent.net_dev(vif)?, agent.sample()?);
    r.pps = (c2.rx_packets - c1.rx_packets) as f64 / p2.at.duration_since(p1.at).as_secs_f64();
    r.cpu_pct = p2.cpu_percent_since(&p1);

    flood.wait()?;
    let ended = Instant::now();
    let limit = Duration::from_secs(args.quiet_secs + 20);
    match agent.wait_for_event("incident_resolved", limit) {
        Some(e) => {
            r.resolved_after_ms =
                Some(e.received_at.saturating_duration_since(ended).as_millis() as f64)
        }
        None => progress(&format!(
            "warning: no incident_resolved within {limit:?} of the flood's end"
        )),
    }
    // Drop the incident's remaining updates so the next flood starts clean.
    while agent
        .wait_for_event("incident_updated", Duration::ZERO)
        .is_some()
    {}
    Ok(r)
}

fn fmt_summary(s: Option<Summary>, unit: &str) -> String {
    match s {
        Some(s) => format!(
            "{:.0} / {:.0} / {:.0}{unit} (n={})",
            s.p50, s.p95, s.max, s.n
        ),
        None => "n/a".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &Args,
    version: &str,
    results: &[FloodResult],
    idle_100: Idle,
    idle_1s: Idle,
    flood_rss_kb: u64,
    flood_hwm_kb: u64,
    peer: &fastnetmon::Outcome,
) -> String {
    let lat: Vec<f64> = results.iter().filter_map(|r| r.latency_ms).collect();
    let lat_fp: Vec<f64> = results
        .iter()
        .filter_map(|r| r.first_packet_latency_ms)
        .collect();
    let pps = summarize(&results.iter().map(|r| r.pps).collect::<Vec<_>>());
    let cpu = summarize(&results.iter().map(|r| r.cpu_pct).collect::<Vec<_>>());
    let res = summarize(
        &results
            .iter()
            .filter_map(|r| r.resolved_after_ms)
            .collect::<Vec<_>>(),
    );
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let kind = if args.rand_source {
        "SYN flood, random spoofed sources"
    } else {
        "SYN flood"
    };
    let (peer_ban, peer_cpu, peer_rss, peer_pps) = peer.cells();

    let rows = vec![
        Row::new(
            "Detection latency p50 / p95 / max",
            &format!("incident_started.ts − wall clock just before `timeout … hping3 -S -p 80 --flood` was spawned; {} × {} s {kind}; 100 ms ticks", args.floods, args.flood_secs),
            fmt_summary(summarize(&lat), " ms"),
            "p95 ≤ 500 ms",
            peer_ban,
        ),
        Row::new(
            "Detection latency from first packet p50 / p95 / max",
            "incident_started.ts − first rx_packets jump (≥ 50) on the victim interface, polled every 1 ms from /proc/<agent>/net/dev",
            fmt_summary(summarize(&lat_fp), " ms"),
            "p95 ≤ 500 ms",
            "-".into(),
        ),
        Row::new(
            "Floods detected",
            "incident_started within 5 s of the spawn",
            format!("{}/{}", lat.len(), results.len()),
            "all",
            "-".into(),
        ),
        Row::new(
            "Flood rate achieved (mean, min–max)",
            "victim rx_packets delta from 1 s after the spawn to 0.5 s before the end (/proc/net/dev in the victim ns)",
            pps.map_or("n/a".into(), |s| format!("{:.0} pps ({:.0}–{:.0})", s.mean, s.min, s.max)),
            "≥ 150 kpps (BRIEF's FastNetMon figure)",
            peer_pps,
        ),
        Row::new(
            "Resolution after the flood ends p50 / p95 / max",
            &format!("incident_resolved received − flood process exit; --quiet-period {} s", args.quiet_secs),
            fmt_summary(res, " ms"),
            "≈ quiet period",
            "-".into(),
        ),
        Row::new(
            "Agent CPU idle, 100 ms ticks",
            &format!("on-CPU time summed over threads (/proc/<pid>/task/*/schedstat) over {} s after baseline_ready, {} pps background traffic", args.idle_secs, args.background_pps),
            format!("{:.2} % of one core", idle_100.cpu_pct),
            "≤ 0.2 %",
            "-".into(),
        ),
        Row::new(
            "Agent RSS idle, 100 ms ticks",
            "VmRSS (/proc/<pid>/status) at the end of the idle window",
            mb(idle_100.rss_kb),
            "≤ 20 MB",
            "-".into(),
        ),
        Row::new(
            "Agent CPU during floods, 100 ms ticks, p50 / max",
            "on-CPU time over each flood's steady-state window (1 s after spawn to 0.5 s before the end)",
            cpu.map_or("n/a".into(), |s| format!("{:.2} % / {:.2} % of one core", s.p50, s.max)),
            "≤ ½ of FastNetMon's",
            peer_cpu,
        ),
        Row::new(
            "Agent RSS during floods (now / peak)",
            "VmRSS and VmHWM after the last flood",
            format!("{} / {}", mb(flood_rss_kb), mb(flood_hwm_kb)),
            "≤ 20 MB",
            peer_rss,
        ),
        Row::new(
            "Agent CPU idle, 1 s ticks",
            &format!("as above, separate agent with --tick 1s, {} s window", args.idle_secs),
            format!("{:.2} % of one core", idle_1s.cpu_pct),
            "≤ 0.2 %",
            "-".into(),
        ),
        Row::new(
            "Agent RSS idle, 1 s ticks",
            "VmRSS at the end of the idle window",
            mb(idle_1s.rss_kb),
            "≤ 20 MB",
            "-".into(),
        ),
    ];

    let mut s = String::from("## Levee detection benchmark (levee-lab-bench)\n\n");
    s.push_str(&format!("{}; levee {version}\n\n", report::machine()));
    s.push_str(&report::results_table(&rows));
    s.push_str(&format!("\nPeer: {}\n", peer.describe()));
    s.push_str("\n### Per flood\n\n");
    let per: Vec<Vec<String>> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                (i + 1).to_string(),
                num(r.latency_ms, 0, " ms"),
                num(r.first_packet_latency_ms, 0, " ms"),
                format!("{:.0}", r.pps),
                format!("{:.2} %", r.cpu_pct),
                r.metric.clone(),
                num(Some(r.ratio), 1, ""),
                num(r.resolved_after_ms, 0, " ms"),
            ]
        })
        .collect();
    s.push_str(&report::table(
        &[
            "#",
            "latency (spawn)",
            "latency (first packet)",
            "pps",
            "agent CPU",
            "metric",
            "ratio",
            "resolved after end",
        ],
        &per,
    ));
    s
}
