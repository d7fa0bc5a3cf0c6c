//! FastNetMon side by side: time to ban, CPU and RSS on the same floods.
//!
//! FastNetMon (Debian package `fastnetmon`, 1.2.4) runs inside the victim
//! namespace in AF_PACKET mirror mode on the victim interface, with a static
//! `threshold_pps` equal to Levee's default rx floor (2000 pps). Its config is
//! `/etc/fastnetmon.conf` (the package defaults, e.g. `average_calculation_time
//! = 5`) with only the keys in [`overrides`] replaced; all its files live in the
//! benchmark's work dir. `process_outgoing_traffic = off` because the victim's
//! RST replies would otherwise trigger an *outgoing* ban first.
//!
//! A ban lasts `ban_time`, so one FastNetMon cannot ban the same IP again on
//! the next flood: a fresh instance is started before each flood. Time to ban
//! is the notify script's `date +%s%3N` (called with `<ip> <direction> <pps>
//! ban`) minus the wall clock just before the flood was spawned.

use levee_lab::cmd::which;
use levee_lab::fastnetmon;
use levee_lab::process::GroupChild;
use levee_lab::stats::summarize;
use levee_lab::{procfs, FloodOptions, Lab, Ns};
use std::path::Path;
use std::time::{Duration, Instant};

/// What happened with the peer.
#[derive(Debug)]
pub enum Outcome {
    Skipped(String),
    Failed(String),
    Measured(Measured),
}

/// FastNetMon's figures.
#[derive(Debug, Default)]
pub struct Measured {
    pub version: String,
    /// Time to ban per flood (None: no ban within the limit).
    pub bans_ms: Vec<Option<f64>>,
    /// CPU % of one core during each flood's steady state.
    pub cpu_pct: Vec<f64>,
    /// Flood rate at the victim during each flood's steady state.
    pub pps: Vec<f64>,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

impl Outcome {
    /// Cells for the latency, CPU, RSS and flood-rate rows.
    pub fn cells(&self) -> (String, String, String, String) {
        match self {
            Outcome::Measured(m) => {
                let bans: Vec<f64> = m.bans_ms.iter().flatten().copied().collect();
                let ban = summarize(&bans).map_or("no bans".to_string(), |s| {
                    format!(
                        "FastNetMon time to ban {:.0} / {:.0} / {:.0} ms ({}/{} banned)",
                        s.p50,
                        s.p95,
                        s.max,
                        bans.len(),
                        m.bans_ms.len()
                    )
                });
                let cpu = summarize(&m.cpu_pct).map_or("n/a".to_string(), |s| {
                    format!("FastNetMon {:.1} % / {:.1} %", s.p50, s.max)
                });
                let rss = format!(
                    "FastNetMon {:.1} MB / {:.1} MB",
                    m.rss_kb as f64 / 1024.0,
                    m.hwm_kb as f64 / 1024.0
                );
                let pps = summarize(&m.pps).map_or("n/a".to_string(), |s| {
                    format!(
                        "{:.0} pps ({:.0}–{:.0}) with FastNetMon",
                        s.mean, s.min, s.max
                    )
                });
                (ban, cpu, rss, pps)
            }
            _ => {
                let n = "not measured (see below)".to_string();
                (n.clone(), n.clone(), n.clone(), n)
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Skipped(why) => format!("FastNetMon not measured: {why}."),
            Outcome::Failed(why) => format!("FastNetMon measurement failed: {why}."),
            Outcome::Measured(m) => format!(
                "{} in AF_PACKET mirror mode on the victim interface inside the victim namespace, \
                 static threshold_pps = 2000 (Levee's rx floor), ban_for_pps on, \
                 process_outgoing_traffic off, other settings the Debian defaults \
                 (average_calculation_time = 5, check_period = 1); a fresh instance per flood; \
                 time to ban = notify script timestamp − flood spawn.",
                m.version
            ),
        }
    }
}

/// Config keys replaced in /etc/fastnetmon.conf.
fn overrides(dir: &Path, iface: &str) -> Vec<(&'static str, String)> {
    let mut o = fastnetmon::file_overrides(dir);
    o.extend([
        ("mirror_afpacket", "on".into()),
        ("interfaces", iface.into()),
        ("enable_ban", "on".into()),
        ("ban_for_pps", "on".into()),
        ("ban_for_bandwidth", "off".into()),
        ("ban_for_flows", "off".into()),
        ("threshold_pps", "2000".into()),
        ("process_outgoing_traffic", "off".into()),
        ("disable_usage_report", "on".into()),
        ("enable_api", "off".into()),
        ("prometheus", "off".into()),
    ]);
    o
}

/// Runs FastNetMon on `floods` floods like `opts`; never fails the benchmark.
pub fn measure(lab: &Lab, opts: &FloodOptions, floods: usize, work: &Path) -> Outcome {
    let Some(bin) = which("fastnetmon") else {
        return Outcome::Skipped(
            "`fastnetmon` is not installed (apt-get install fastnetmon)".into(),
        );
    };
    match run(lab, &bin, opts, floods, &work.join("fastnetmon")) {
        Ok(m) => Outcome::Measured(m),
        Err(e) => Outcome::Failed(e),
    }
}

fn run(
    lab: &Lab,
    bin: &Path,
    opts: &FloodOptions,
    floods: usize,
    dir: &Path,
) -> Result<Measured, String> {
    let files = fastnetmon::prepare(
        dir,
        &overrides(dir, lab.victim_if()),
        &[format!("{}/32", lab.victim_ip())],
    )?;
    let (conf, notify_log) = (files.conf, files.notify_log);
    let version = fastnetmon::version(bin);

    let mut m = Measured {
        version,
        ..Measured::default()
    };
    for i in 0..floods {
        let log = dir.join(format!("fastnetmon-{i}.log"));
        let _ = std::fs::remove_file(&notify_log);
        let mut cmd = lab.command_in(Ns::Victim, &bin.to_string_lossy());
        cmd.arg("--configuration_file")
            .arg(&conf)
            .arg("--log_file")
            .arg(&log)
            .arg("--disable_pid_logic");
        let mut fnm = GroupChild::spawn(cmd).map_err(|e| e.to_string())?;
        wait_ready(&mut fnm, &log)?;
        // Its speed counters need a few 1 s periods before they mean anything.
        std::thread::sleep(Duration::from_secs(3));

        let mut flood = lab.flood_with(opts).map_err(|e| e.to_string())?;
        let spawned = flood.spawned_at();
        let mut ban = None;
        let mut p1 = None;
        let mut p2 = None;
        let steady_end = spawned + opts.duration - Duration::from_millis(500);
        while Instant::now() < spawned + opts.duration + Duration::from_secs(5) {
            if ban.is_none() {
                ban = fastnetmon::ban_time(&notify_log);
            }
            if p1.is_none() && spawned.elapsed() >= Duration::from_secs(1) {
                p1 = steady_point(&fnm, lab.victim_if());
            }
            if p2.is_none() && Instant::now() >= steady_end {
                p2 = steady_point(&fnm, lab.victim_if());
            }
            if ban.is_some() && p2.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let (Some((a, ca)), Some((b, cb))) = (p1, p2) {
            m.cpu_pct.push(b.cpu_percent_since(&a));
            let secs = b.at.duration_since(a.at).as_secs_f64();
            m.pps.push(cb.saturating_sub(ca) as f64 / secs);
            m.rss_kb = m.rss_kb.max(b.rss_kb);
            m.hwm_kb = m.hwm_kb.max(b.hwm_kb);
        }
        m.bans_ms
            .push(ban.map(|t| (t - flood.spawned_wall_ms()) as f64));
        eprintln!(
            "[bench] fastnetmon flood {}/{floods}: time to ban {}",
            i + 1,
            ban.map_or("none".to_string(), |t| format!(
                "{} ms",
                t - flood.spawned_wall_ms()
            ))
        );
        flood.wait().map_err(|e| e.to_string())?;
        if !fnm.is_running() {
            return Err(format!("fastnetmon exited early: {}", fnm.stderr_text()));
        }
        fnm.kill();
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(m)
}

/// FastNetMon's CPU/memory and the victim's rx packet counter (read through
/// FastNetMon's own pid, which lives in the victim namespace).
fn steady_point(fnm: &GroupChild, iface: &str) -> Option<(procfs::ProcSample, u64)> {
    let sample = procfs::sample(fnm.pid()).ok()?;
    let rx = procfs::net_dev_of_pid(fnm.pid(), iface).ok()?.rx_packets;
    Some((sample, rx))
}

/// Waits until FastNetMon's log says the AF_PACKET workers started.
fn wait_ready(fnm: &mut GroupChild, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = fnm.try_status() {
            return Err(format!(
                "fastnetmon exited with {status} at start: {} {}",
                fnm.stderr_text(),
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Start AF_PACKET worker") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "fastnetmon not ready within 15 s; see {}",
        log.display()
    ))
}
