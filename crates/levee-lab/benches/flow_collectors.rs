//! Flow collectors side by side (issue 7 benchmark). Not a test: needs
//! root (the lab), softflowd, hping3; measures peers when installed.
//!
//! 1. Collector CPU per record. The same NetFlow v9 datagrams (built with
//!    `levee_flow::build`: an 8-field IPv4 template, 40 records per
//!    datagram, destinations spread over 10.30.0.0/16, the template resent
//!    every 1,000 datagrams) are sent over loopback UDP, paced, to one
//!    collector at a time: `levee agent --mode flow` (per-IP engine and
//!    detector on 10.30.0.0/16), pmacct's `nfacctd` (print plugin,
//!    aggregate dst_host), and FastNetMon 1.2.4 in netflow mode (networks
//!    10.30.0.0/16, bans off). CPU = on-CPU time of the collector's process
//!    tree (threads and forked plugins, /proc schedstat) from just before
//!    the first datagram to 2 s after the last; drops = the socket's
//!    `drops` in /proc/net/udp.
//! 2. Flow-mode detection latency. In the lab, softflowd in the victim
//!    namespace exports NetFlow v9 (`-t maxlife=1 -t expint=1`) of the
//!    victim interface to Levee (flow mode, no threshold) and a second
//!    softflowd to FastNetMon 1.2.4 (netflow mode, its default static
//!    threshold_pps = 20000, average_calculation_time 5). Each SYN flood
//!    (hping3 --flood): Levee's latency = incident_started.ts − wall clock
//!    just before the flood was spawned; FastNetMon's = its ban
//!    notification − the same instant. A fresh FastNetMon per flood (a ban
//!    lasts ban_time).
//!
//! `cargo bench -p levee-lab --bench flow_collectors -- --floods 5`

use clap::Parser;
use levee_flow::build::{self, Flow};
use levee_lab::cmd::which;
use levee_lab::process::GroupChild;
use levee_lab::stats::summarize;
use levee_lab::{
    fastnetmon, levee_binary, procfs, AgentOptions, AgentProcess, FloodKind, FloodOptions, Lab, Ns,
};
use std::net::{IpAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Flow collectors: CPU per record and detection latency vs peers")]
struct Args {
    /// SYN floods for the latency part.
    #[arg(long, default_value_t = 5)]
    floods: usize,
    /// Length of each flood, seconds.
    #[arg(long, default_value_t = 8)]
    flood_secs: u64,
    /// NetFlow v9 datagrams sent to each collector (40 records each).
    #[arg(long, default_value_t = 100_000)]
    datagrams: usize,
    /// Datagrams per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    #[arg(long)]
    skip_cpu: bool,
    #[arg(long)]
    skip_latency: bool,
    /// Also write the report to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const RECORDS_PER_DATAGRAM: usize = 40;

fn datagrams(n: usize) -> Vec<Vec<u8>> {
    let tpl = build::set(
        0,
        &build::template_record(256, &build::flow_fields(false), false),
    );
    (0..n)
        .map(|d| {
            let mut body = Vec::new();
            for i in 0..RECORDS_PER_DATAGRAM {
                let k = (d * RECORDS_PER_DATAGRAM + i) as u32;
                let f = Flow {
                    src: IpAddr::V4((0xc633_6400 + k % 251).into()),
                    dst: IpAddr::V4(
                        (0x0a1e_0000 | (k.wrapping_mul(2_654_435_761) & 0xffff)).into(),
                    ),
                    src_port: (k % 60_000) as u16 + 1024,
                    dst_port: 443,
                    protocol: 6,
                    tcp_flags: 0x18,
                    packets: u64::from(k % 20 + 1),
                    bytes: u64::from(k % 20 + 1) * 900,
                };
                build::data_record(&f, false, &mut body);
            }
            let mut sets = Vec::new();
            if d % 1000 == 0 {
                sets.push(tpl.clone());
            }
            sets.push(build::set(256, &body));
            build::netflow9(d as u32, 0, 1, &sets)
        })
        .collect()
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(39_055)
}

/// (receive queue drops) of the UDP socket bound to `port`, from
/// /proc/net/udp of the namespace of `pid`; `None` when not bound.
fn udp_drops(pid: u32, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).ok()?;
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&want))
        })
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// On-CPU time of `pid` and every descendant.
fn tree_cpu(pid: u32) -> Duration {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .ok()
                    .and_then(|s| {
                        let after = &s[s.rfind(')')? + 2..];
                        after.split_whitespace().nth(1)?.parse::<u32>().ok()
                    });
                if ppid == Some(parent) && !pids.contains(&p) {
                    pids.push(p);
                }
            }
        }
        i += 1;
    }
    pids.iter()
        .filter_map(|p| procfs::sample(*p).ok())
        .map(|s| s.cpu)
        .sum()
}

struct CpuResult {
    name: String,
    cpu: Duration,
    /// Records sent.
    records: usize,
    /// Datagrams the socket dropped (its receive queue was full).
    drops: Option<u64>,
    note: String,
}

impl CpuResult {
    /// Records that reached the collector.
    fn received(&self) -> usize {
        self.records
            .saturating_sub(self.drops.unwrap_or(0) as usize * RECORDS_PER_DATAGRAM)
    }
}

/// Sends the datagrams to `port`, paced; returns (cpu used, drops).
fn drive(pid: u32, port: u16, dgs: &[Vec<u8>], rate: u64) -> (Duration, Option<u64>) {
    let tx = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    let to = ("127.0.0.1", port);
    let d0 = udp_drops(pid, port).unwrap_or(0);
    let c0 = tree_cpu(pid);
    let t0 = Instant::now();
    for (i, d) in dgs.iter().enumerate() {
        let _ = tx.send_to(d, to);
        if i % 100 == 99 {
            let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let cpu = tree_cpu(pid).saturating_sub(c0);
    (cpu, udp_drops(pid, port).map(|d| d.saturating_sub(d0)))
}

fn wait_bound(pid: u32, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if udp_drops(pid, port).is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn cpu_levee(bin: &Path, dgs: &[Vec<u8>], rate: u64, work: &Path) -> Result<CpuResult, String> {
    let port = free_port();
    let cfg = work.join("levee-cpu.toml");
    std::fs::write(
        &cfg,
        format!("[networks]\nmonitored_networks = [\"10.30.0.0/16\"]\n[flow]\nlisten = [\"127.0.0.1:{port}\"]\n"),
    )
    .map_err(|e| e.to_string())?;
    let state = work.join("levee-cpu-state");
    let mut c = Command::new(bin);
    c.args([
        "agent",
        "--mode",
        "flow",
        "--tick",
        "1s",
        "--baseline-warmup",
        "30s",
        "--node",
        "bench",
    ])
    .arg("--config")
    .arg(&cfg)
    .arg("--state-dir")
    .arg(&state);
    let mut child = GroupChild::spawn(c).map_err(|e| e.to_string())?;
    if !wait_bound(child.pid(), port) {
        return Err(format!(
            "levee agent did not bind port {port}: {}",
            child.stderr_text()
        ));
    }
    let (cpu, drops) = drive(child.pid(), port, dgs, rate);
    // SAFETY: kill(2) on our own child: SIGTERM so it writes its counters.
    unsafe {
        libc::kill(child.pid() as libc::pid_t, libc::SIGTERM);
    }
    child.wait_timeout(Duration::from_secs(10));
    let status: serde_json::Value = std::fs::read_to_string(state.join("flow-exporters.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    Ok(CpuResult {
        name: "Levee (levee agent --mode flow)".into(),
        cpu,
        records: dgs.len() * RECORDS_PER_DATAGRAM,
        drops,
        note: format!(
            "decoded {} records, {} decode errors",
            status["totals"]["records"], status["totals"]["decode_errors"]
        ),
    })
}

fn cpu_nfacctd(dgs: &[Vec<u8>], rate: u64, work: &Path) -> Result<CpuResult, String> {
    let bin = which("nfacctd").ok_or("`nfacctd` is not installed (Debian package pmacct)")?;
    let port = free_port();
    let conf = work.join("nfacctd.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: {port}\nplugins: print\n\
             aggregate: dst_host\nprint_output: csv\nprint_refresh_time: 60\n\
             print_output_file: {}/nfacctd-%s.csv\n",
            work.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut c = Command::new(bin);
    c.arg("-f").arg(&conf);
    let mut child = GroupChild::spawn(c).map_err(|e| e.to_string())?;
    if !wait_bound(child.pid(), port) {
        return Err(format!(
            "nfacctd did not bind port {port}: {}",
            child.stderr_text()
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, drops) = drive(child.pid(), port, dgs, rate);
    child.kill();
    Ok(CpuResult {
        name: "pmacct nfacctd 1.7.7 (print plugin, aggregate dst_host)".into(),
        cpu,
        records: dgs.len() * RECORDS_PER_DATAGRAM,
        drops,
        note: "core + plugin processes".into(),
    })
}

fn fastnetmon_netflow_overrides(
    dir: &Path,
    port: u16,
    threshold_pps: u64,
    ban: bool,
) -> Vec<(&'static str, String)> {
    let mut o = fastnetmon::file_overrides(dir);
    o.extend([
        ("mirror_afpacket", "off".into()),
        ("netflow", "on".into()),
        ("netflow_port", port.to_string()),
        ("netflow_host", "127.0.0.1".into()),
        ("enable_ban", if ban { "on" } else { "off" }.into()),
        ("ban_for_pps", "on".into()),
        ("ban_for_bandwidth", "off".into()),
        ("ban_for_flows", "off".into()),
        ("threshold_pps", threshold_pps.to_string()),
        ("process_outgoing_traffic", "off".into()),
        ("disable_usage_report", "on".into()),
        ("enable_api", "off".into()),
        ("prometheus", "off".into()),
    ]);
    o
}

fn cpu_fastnetmon(dgs: &[Vec<u8>], rate: u64, work: &Path) -> Result<CpuResult, String> {
    let bin = which("fastnetmon").ok_or("`fastnetmon` is not installed")?;
    let port = free_port();
    let dir = work.join("fastnetmon-cpu");
    let files = fastnetmon::prepare(
        &dir,
        &fastnetmon_netflow_overrides(&dir, port, 20_000, false),
        &["10.30.0.0/16".into()],
    )?;
    let mut c = Command::new(&bin);
    c.arg("--configuration_file")
        .arg(&files.conf)
        .arg("--log_file")
        .arg(dir.join("fastnetmon.log"))
        .arg("--disable_pid_logic");
    let mut child = GroupChild::spawn(c).map_err(|e| e.to_string())?;
    if !wait_bound(child.pid(), port) {
        return Err(format!(
            "fastnetmon did not bind port {port}: {}",
            child.stderr_text()
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, drops) = drive(child.pid(), port, dgs, rate);
    child.kill();
    Ok(CpuResult {
        name: format!("{} (netflow mode, bans off)", fastnetmon::version(&bin)),
        cpu,
        records: dgs.len() * RECORDS_PER_DATAGRAM,
        drops,
        note: String::new(),
    })
}

fn cpu_part(args: &Args, bin: &Path, work: &Path) -> String {
    let dgs = datagrams(args.datagrams);
    let n = dgs.len() * RECORDS_PER_DATAGRAM;
    let mut out = String::new();
    out.push_str(&format!(
        "\n### Collector CPU per record\n\n{} NetFlow v9 datagrams ({} records, {} per datagram) at {} datagrams/s ({} records/s) over loopback UDP to each collector in turn.\n\n",
        dgs.len(),
        n,
        RECORDS_PER_DATAGRAM,
        args.rate,
        args.rate as usize * RECORDS_PER_DATAGRAM
    ));
    out.push_str("| collector | CPU time | CPU per record received | records per CPU-second | datagrams dropped by the socket | note |\n|---|---|---|---|---|---|\n");
    let runs: Vec<Result<CpuResult, String>> = vec![
        cpu_levee(bin, &dgs, args.rate, work),
        cpu_nfacctd(&dgs, args.rate, work),
        cpu_fastnetmon(&dgs, args.rate, work),
    ];
    for r in runs {
        match r {
            Ok(r) => {
                let s = r.cpu.as_secs_f64();
                let got = r.received().max(1) as f64;
                out.push_str(&format!(
                    "| {} | {:.2} s | {:.2} µs | {:.2} M | {} | {} |\n",
                    r.name,
                    s,
                    s * 1e6 / got,
                    got / s.max(1e-9) / 1e6,
                    r.drops.map_or("n/a".into(), |d| d.to_string()),
                    r.note
                ));
            }
            Err(e) => out.push_str(&format!("| (not measured) | | | | | {e} |\n")),
        }
    }
    out
}

struct Latency {
    levee_ms: Vec<Option<f64>>,
    fnm_ms: Vec<Option<f64>>,
    fnm_version: String,
    notes: Vec<String>,
}

fn softflowd(lab: &Lab, work: &Path, port: u16, tag: &str) -> Result<GroupChild, String> {
    let mut c = lab.command_in(Ns::Victim, "softflowd");
    c.args([
        "-d",
        "-i",
        lab.victim_if(),
        "-n",
        &format!("127.0.0.1:{port}"),
        "-v",
        "9",
    ])
    .args(["-t", "maxlife=1", "-t", "expint=1"])
    .arg("-c")
    .arg(work.join(format!("softflowd-{tag}.ctl")))
    .arg("-p")
    .arg(work.join(format!("softflowd-{tag}.pid")));
    GroupChild::spawn(c).map_err(|e| e.to_string())
}

fn latency_part(args: &Args, bin: &Path, work: &Path) -> Result<(String, Latency), String> {
    let lab = Lab::new().map_err(|e| e.to_string())?;
    let cfg = work.join("levee-latency.toml");
    std::fs::write(
        &cfg,
        format!(
            "[networks]\nmonitored_networks = [\"{}/32\"]\n[flow]\nlisten = [\"127.0.0.1:2055\"]\n",
            lab.victim_ip()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut o = AgentOptions::new(bin, work.join("levee-latency"));
    o.baseline_warmup = Duration::from_secs(10);
    o.quiet_period = Duration::from_secs(3);
    o.extra_args = vec![
        "--mode".into(),
        "flow".into(),
        "--config".into(),
        cfg.display().to_string(),
    ];
    let mut agent = AgentProcess::spawn(&lab, &o).map_err(|e| e.to_string())?;
    agent
        .wait_for_event("baseline_ready", Duration::from_secs(30))
        .ok_or("no baseline_ready")?;
    let _sf_levee = softflowd(&lab, work, 2055, "levee")?;
    let _sf_fnm = softflowd(&lab, work, 2056, "fnm")?;
    let fnm_bin = which("fastnetmon");
    let fnm_dir = work.join("fastnetmon-latency");
    let fnm_files = match &fnm_bin {
        Some(_) => Some(fastnetmon::prepare(
            &fnm_dir,
            &fastnetmon_netflow_overrides(&fnm_dir, 2056, 20_000, true),
            &[format!("{}/32", lab.victim_ip())],
        )?),
        None => None,
    };
    let mut lat = Latency {
        levee_ms: Vec::new(),
        fnm_ms: Vec::new(),
        fnm_version: fnm_bin
            .as_deref()
            .map(fastnetmon::version)
            .unwrap_or_else(|| "FastNetMon (not installed)".into()),
        notes: Vec::new(),
    };
    for i in 0..args.floods {
        let mut fnm = match (&fnm_bin, &fnm_files) {
            (Some(b), Some(f)) => {
                let _ = std::fs::remove_file(&f.notify_log);
                let mut c = lab.command_in(Ns::Victim, &b.to_string_lossy());
                c.arg("--configuration_file")
                    .arg(&f.conf)
                    .arg("--log_file")
                    .arg(fnm_dir.join(format!("fastnetmon-{i}.log")))
                    .arg("--disable_pid_logic");
                Some(GroupChild::spawn(c).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        // Let FastNetMon's listener and speed counters settle, and the
        // previous incident's quiet period pass.
        std::thread::sleep(Duration::from_secs(4));
        let opts = FloodOptions::new(FloodKind::Syn, Duration::from_secs(args.flood_secs));
        let mut flood = lab.flood_with(&opts).map_err(|e| e.to_string())?;
        let spawned = flood.spawned_wall_ms();
        let started =
            agent.wait_for_event("incident_started", Duration::from_secs(args.flood_secs));
        let levee = started
            .and_then(|e| e.ts_ms())
            .map(|t| (t - spawned) as f64);
        let mut ban = None;
        let deadline = Instant::now() + Duration::from_secs(args.flood_secs + 3);
        while ban.is_none() && Instant::now() < deadline {
            ban = fnm_files
                .as_ref()
                .and_then(|f| fastnetmon::ban_time(&f.notify_log));
            std::thread::sleep(Duration::from_millis(10));
        }
        let fnm_lat = ban.map(|t| (t - spawned) as f64);
        eprintln!(
            "[flow bench] flood {}/{}: Levee {} ms, FastNetMon {} ms",
            i + 1,
            args.floods,
            levee.map_or("-".into(), |v| format!("{v:.0}")),
            fnm_lat.map_or("-".into(), |v| format!("{v:.0}"))
        );
        lat.levee_ms.push(levee);
        lat.fnm_ms.push(fnm_lat);
        let _ = flood.wait();
        if let Some(f) = fnm.as_mut() {
            if !f.is_running() {
                lat.notes.push(format!(
                    "FastNetMon exited during flood {}: {}",
                    i + 1,
                    f.stderr_text()
                ));
            }
            f.kill();
        }
        agent.wait_for_event("incident_resolved", Duration::from_secs(15));
    }
    let fmt = |v: &[Option<f64>]| {
        let got: Vec<f64> = v.iter().flatten().copied().collect();
        summarize(&got).map_or("none detected".into(), |s| {
            format!(
                "{:.0} / {:.0} / {:.0} ms ({}/{})",
                s.p50,
                s.p95,
                s.max,
                got.len(),
                v.len()
            )
        })
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n### Flow-mode detection latency\n\nsoftflowd -v 9 -t maxlife=1 -t expint=1 in the victim namespace, hping3 -S --flood for {} s, {} floods.\n\n",
        args.flood_secs, args.floods
    ));
    out.push_str("| collector | flood start -> incident / ban, p50 / p95 / max | threshold |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Levee (flow mode) | {} | none (learnt per-IP baseline; floor 2000 pps) |\n",
        fmt(&lat.levee_ms)
    ));
    out.push_str(&format!(
        "| {} (netflow mode) | {} | static threshold_pps = 20000, average_calculation_time = 5 |\n",
        lat.fnm_version,
        fmt(&lat.fnm_ms)
    ));
    for n in &lat.notes {
        out.push_str(&format!("\n{n}\n"));
    }
    Ok((out, lat))
}

fn main() {
    let args = Args::parse();
    let bin = match levee_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("levee binary: {e}");
            std::process::exit(1);
        }
    };
    let work = tempfile::Builder::new()
        .prefix("levee-flow-bench-")
        .tempdir()
        .expect("tempdir");
    let mut report = format!("## Flow collectors ({})\n", levee_lab::machine::describe());
    if !args.skip_cpu {
        report.push_str(&cpu_part(&args, &bin, work.path()));
    }
    if !args.skip_latency {
        let missing = levee_lab::prereq::missing_prerequisites_with(&[("softflowd", "softflowd")]);
        if missing.is_empty() {
            match latency_part(&args, &bin, work.path()) {
                Ok((text, _)) => report.push_str(&text),
                Err(e) => report.push_str(&format!("\nlatency part failed: {e}\n")),
            }
        } else {
            report.push_str(&format!("\nlatency part not run: {}\n", missing.join("; ")));
        }
    }
    println!("{report}");
    if let Some(p) = &args.output {
        let _ = std::fs::write(p, &report);
    }
}
