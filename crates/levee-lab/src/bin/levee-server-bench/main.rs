//! `levee-server-bench`: N simulated agents posting telemetry every second
//! (and a heartbeat every 10 s) to a `levee server` process over HTTPS, on
//! SQLite and on PostgreSQL. Reports ingest latency (client side, and the
//! server's own histogram), the server's CPU and memory, and errors.
//!
//! Each simulated agent has its own HTTPS client and keep-alive connection,
//! like real agents; their sends are spread evenly over the second. The load
//! generator runs on the same machine and its CPU is reported too.
//!
//! `cargo run --release -p levee-lab --bin levee-server-bench -- --agents 5000 --seconds 60`

use anyhow::{bail, Context, Result};
use clap::Parser;
use levee_lab::procfs::{sample, ProcSample};
use levee_lab::report::{num, results_table, Row};
use levee_lab::stats::percentile;
use levee_lab::{levee_binary, PgCluster};
use levee_model::{ConnCounts, InterfaceRates, TickObservation};
use levee_proto::{Fingerprint, Heartbeat, TelemetryBatch};
use levee_uplink::pin::{client_config, PinVerifier, Trust};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Levee server ingest benchmark: N agents at 1 Hz, SQLite and PostgreSQL")]
struct Args {
    /// Simulated agents.
    #[arg(long, default_value_t = 5000)]
    agents: usize,
    /// Measured seconds (after a warm-up of `--warmup` seconds).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Load generator worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// The levee binary (default: LEVEE_BIN, else built with this profile).
    #[arg(long)]
    levee_bin: Option<PathBuf>,
    /// Also write the report to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// A `levee server` child process (its own process group, killed on drop).
struct ServerChild {
    child: Child,
    url: String,
    fp: Fingerprint,
    admin: String,
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of our own child.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(
    bin: &Path,
    data: &Path,
    db_url: Option<&str>,
    threads: usize,
) -> Result<ServerChild> {
    let port = levee_lab::postgres::free_port()?;
    let config = data.join("server.toml");
    std::fs::create_dir_all(data)?;
    // Raised limits: thousands of enrollments from one address in a burst.
    std::fs::write(
        &config,
        "[server]\nauth_failures_per_minute = 1000000\nlogins_per_minute = 1000\ndb_connections = 16\n",
    )?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "server",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--threads",
        &threads.to_string(),
        "--config",
    ])
    .arg(&config)
    .arg("--data-dir")
    .arg(data)
    .env("LEVEE_LOG", "warn")
    .process_group(0)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(u) = db_url {
        cmd.args(["--database-url", u]);
    }
    let mut child = cmd.spawn().context("spawning levee server")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let (mut fp, mut admin) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(f) = line.strip_prefix("fingerprint: ") {
            fp = Some(f.trim().parse::<Fingerprint>()?);
        }
        if line.starts_with("admin token") {
            admin = line.split_whitespace().last().map(str::to_string);
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (Some(fp), Some(admin)) = (fp, admin) else {
        bail!("levee server did not print its fingerprint and admin token");
    };
    Ok(ServerChild {
        child,
        url: format!("https://127.0.0.1:{port}"),
        fp,
        admin,
    })
}

fn client(fp: Fingerprint) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()?)
}

/// Enrolls `n` agents (64 at a time); returns their keys.
async fn enroll_all(s: &ServerChild, n: usize) -> Result<Vec<String>> {
    let admin = client(s.fp)?;
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (admin, url, token, sem) = (admin.clone(), s.url.clone(), s.admin.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await?;
            let e: serde_json::Value = admin
                .post(format!("{url}/api/v1/enrollment-tokens"))
                .bearer_auth(&token)
                .json(&serde_json::json!({}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let r: serde_json::Value = admin
                .post(format!("{url}/api/v1/agent/enroll"))
                .json(&serde_json::json!({"token": e["token"], "node": format!("sim-{i:05}"), "version": "bench"}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            r["agent_key"].as_str().map(str::to_string).context("no agent_key")
        }));
    }
    let mut keys = Vec::with_capacity(n);
    for t in tasks {
        keys.push(t.await??);
    }
    Ok(keys)
}

fn sample_obs(i: usize) -> TickObservation {
    let rx = 1_000.0 + (i % 100) as f64;
    TickObservation {
        unix_ms: levee_lab::clock::wall_ms(),
        dt: 1.0,
        interfaces: vec![InterfaceRates {
            name: "eth0".into(),
            rx_pps: rx,
            rx_bps: rx * 8_000.0,
            tx_pps: rx / 2.0,
            tx_bps: rx * 4_000.0,
            ..Default::default()
        }],
        tcp_pps: rx * 0.8,
        udp_pps: rx * 0.2,
        icmp_pps: 1.0,
        conns: Some(ConnCounts {
            established: 120,
            syn_recv: 2,
            time_wait: 30,
            total: 160,
        }),
        ..Default::default()
    }
}

/// What the simulated agents measured.
#[derive(Default)]
struct Load {
    latencies_ms: Mutex<Vec<f64>>,
    /// (second of the run, latency) for the per-second view on stderr.
    timeline: Mutex<Vec<(u64, f64)>>,
    t0: Mutex<Option<Instant>>,
    sent: AtomicU64,
    errors: AtomicU64,
    measuring: std::sync::atomic::AtomicBool,
}

async fn agent(
    i: usize,
    n: usize,
    url: String,
    key: String,
    http: reqwest::Client,
    load: Arc<Load>,
    stop: Instant,
) {
    // Spread the agents evenly over the second.
    let offset = Duration::from_micros((i as u64 * 1_000_000) / n as u64);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + offset, Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut k = 0u64;
    while Instant::now() < stop {
        tick.tick().await;
        k += 1;
        let started = Instant::now();
        let r = if k % 10 == 0 {
            let hb = Heartbeat {
                version: "bench".into(),
                uptime_s: k,
                ..Default::default()
            };
            http.post(format!("{url}/api/v1/agent/heartbeat"))
                .bearer_auth(&key)
                .json(&hb)
                .send()
                .await
        } else {
            let b = TelemetryBatch {
                samples: vec![sample_obs(i)],
                ..Default::default()
            };
            http.post(format!("{url}/api/v1/agent/telemetry"))
                .bearer_auth(&key)
                .json(&b)
                .send()
                .await
        };
        let ok = match r {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        };
        if load.measuring.load(Ordering::Relaxed) {
            load.sent.fetch_add(1, Ordering::Relaxed);
            if ok {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                load.latencies_ms.lock().unwrap().push(ms);
                if let Some(t0) = *load.t0.lock().unwrap() {
                    load.timeline
                        .lock()
                        .unwrap()
                        .push((started.duration_since(t0).as_secs(), ms));
                }
            } else {
                load.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The p99 of a histogram series (lines starting with `name_bucket` and
/// containing `filter`), from its buckets: an upper bound, the bucket edge.
fn hist_p99_ms(metrics: &str, name: &str, filter: &str) -> Option<f64> {
    let prefix = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(filter))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    let want = total * 0.99;
    buckets
        .iter()
        .find(|(_, c)| *c >= want)
        .map(|(le, _)| le * 1e3)
}

/// `sum / count` of a histogram in the exposition.
fn hist_mean(metrics: &str, name: &str) -> Option<f64> {
    let get = |suffix: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}_{suffix} ")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let (sum, count) = (get("sum")?, get("count")?);
    (count > 0.0).then(|| sum / count)
}

struct Outcome {
    backend: String,
    achieved_rps: f64,
    p50: f64,
    p99: f64,
    max: f64,
    server_p99: Option<f64>,
    write_ms: Option<f64>,
    write_p99: Option<f64>,
    batch_nodes: Option<f64>,
    errors: u64,
    sent: u64,
    server_cpu: f64,
    server_rss_mb: f64,
    server_hwm_mb: f64,
    client_cpu: f64,
    /// PostgreSQL's processes together (`None` on SQLite).
    pg_cpu: Option<f64>,
}

/// Total CPU time of `pids` (those that still exist).
fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter()
        .filter_map(|p| sample(*p).ok())
        .map(|s| s.cpu)
        .sum()
}

fn run_backend(args: &Args, bin: &Path, backend: &str) -> Result<Outcome> {
    let work = tempfile::Builder::new()
        .prefix("levee-server-bench-")
        .tempdir()?;
    let pg = if backend == "postgres" {
        Some(PgCluster::start(&[
            ("max_connections", "100"),
            ("shared_buffers", "256MB"),
        ])?)
    } else {
        None
    };
    let db_url = match &pg {
        Some(pg) => Some(pg.create_db("levee_bench")?),
        None => None,
    };
    let server = start_server(bin, work.path(), db_url.as_deref(), args.server_threads)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    eprintln!("[{backend}] enrolling {} agents", args.agents);
    let keys = rt.block_on(enroll_all(&server, args.agents))?;
    let load = Arc::new(Load::default());
    let stop = Instant::now() + Duration::from_secs(args.warmup + args.seconds);
    let mut tasks = Vec::with_capacity(args.agents);
    for (i, key) in keys.into_iter().enumerate() {
        let http = client(server.fp)?;
        tasks.push(rt.spawn(agent(
            i,
            args.agents,
            server.url.clone(),
            key,
            http,
            load.clone(),
            stop,
        )));
    }
    eprintln!("[{backend}] warm-up {} s", args.warmup);
    std::thread::sleep(Duration::from_secs(args.warmup));
    let me = std::process::id();
    let (s0, c0): (ProcSample, ProcSample) = (sample(server.child.id())?, sample(me)?);
    let pg_pids = pg.as_ref().map(|p| p.pids()).unwrap_or_default();
    let pg0 = cpu_of(&pg_pids);
    let t0 = Instant::now();
    *load.t0.lock().unwrap() = Some(t0);
    load.measuring.store(true, Ordering::Relaxed);
    eprintln!("[{backend}] measuring {} s", args.seconds);
    let mut rss_max = 0u64;
    while Instant::now() < stop {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(sample(server.child.id())?.rss_kb);
    }
    load.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let (s1, c1) = (sample(server.child.id())?, sample(me)?);
    let pg_cpu = pg
        .as_ref()
        .map(|_| 100.0 * cpu_of(&pg_pids).saturating_sub(pg0).as_secs_f64() / elapsed);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let http = client(server.fp)?;
    let metrics = rt.block_on(async {
        http.get(format!("{}/metrics", server.url))
            .send()
            .await?
            .text()
            .await
    })?;
    let mut per_sec: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for (sec, ms) in load.timeline.lock().unwrap().iter() {
        per_sec.entry(*sec).or_default().push(*ms);
    }
    let line: Vec<String> = per_sec
        .iter_mut()
        .map(|(sec, v)| {
            v.sort_by(f64::total_cmp);
            format!("{sec}s:{:.0}", percentile(v, 99.0))
        })
        .collect();
    eprintln!(
        "[{backend}] p99 ms per second of the run: {}",
        line.join(" ")
    );
    let mut lat = load.latencies_ms.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    Ok(Outcome {
        backend: backend.into(),
        achieved_rps: lat.len() as f64 / elapsed,
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        max: lat.last().copied().unwrap_or(f64::NAN),
        server_p99: hist_p99_ms(
            &metrics,
            "levee_http_request_duration_seconds",
            "route=\"/api/v1/agent/telemetry\"",
        ),
        write_p99: hist_p99_ms(&metrics, "levee_db_write_duration_seconds", ""),
        write_ms: hist_mean(&metrics, "levee_db_write_duration_seconds").map(|s| s * 1e3),
        batch_nodes: hist_mean(&metrics, "levee_db_write_batch_nodes"),
        errors: load.errors.load(Ordering::Relaxed),
        sent: load.sent.load(Ordering::Relaxed),
        server_cpu: s1.cpu_percent_since(&s0),
        server_rss_mb: rss_max as f64 / 1024.0,
        server_hwm_mb: s1.hwm_kb as f64 / 1024.0,
        client_cpu: c1.cpu_percent_since(&c0),
        pg_cpu,
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.levee_bin {
        Some(b) => b.clone(),
        None => levee_binary()?,
    };
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => bail!("--backend {other}: expected sqlite, postgres or both"),
    };
    let load_start = loadavg();
    let mut rows = Vec::new();
    for b in backends {
        let o = run_backend(&args, &bin, b)?;
        let how = format!(
            "{} agents, 1 telemetry POST/s each (heartbeat every 10th), HTTPS keep-alive, {} s after {} s warm-up; server {} threads",
            args.agents, args.seconds, args.warmup, args.server_threads
        );
        rows.push(Row::new(
            &format!("ingest latency p99 ({})", o.backend),
            &format!("client side, send to body read; {how}"),
            format!(
                "p50 {} / p99 {} / max {}",
                num(Some(o.p50), 1, " ms"),
                num(Some(o.p99), 1, " ms"),
                num(Some(o.max), 0, " ms")
            ),
            "<= 50 ms at 5,000 agents",
            "-".into(),
        ));
        rows.push(Row::new(
            &format!("ingest latency p99, server side ({})", o.backend),
            "levee_http_request_duration_seconds, telemetry route, bucket upper edge",
            num(o.server_p99, 1, " ms"),
            "",
            "-".into(),
        ));
        rows.push(Row::new(
            &format!("group commits ({})", o.backend),
            "levee_db_write_duration_seconds and levee_db_write_batch_nodes over the run (p99: bucket upper edge)",
            format!(
                "mean {} (p99 <= {}) per commit, {} nodes per commit",
                num(o.write_ms, 1, " ms"),
                num(o.write_p99, 1, " ms"),
                num(o.batch_nodes, 0, "")
            ),
            "",
            "-".into(),
        ));
        rows.push(Row::new(
            &format!("throughput ({})", o.backend),
            "successful requests per second",
            format!(
                "{:.0} req/s; errors {} of {}",
                o.achieved_rps, o.errors, o.sent
            ),
            &format!("{} req/s", args.agents),
            "-".into(),
        ));
        rows.push(Row::new(
            &format!("server CPU and memory ({})", o.backend),
            "/proc/<pid> of the levee server process over the measured window",
            format!(
                "{:.0}% of one core; RSS max {:.0} MB (peak {:.0} MB)",
                o.server_cpu, o.server_rss_mb, o.server_hwm_mb
            ),
            "2 cores",
            "-".into(),
        ));
        if let Some(pg) = o.pg_cpu {
            rows.push(Row::new(
                "PostgreSQL CPU",
                "the postmaster and its backends (/proc), same window",
                format!("{pg:.0}% of one core"),
                "",
                "-".into(),
            ));
        }
        rows.push(Row::new(
            &format!("load generator CPU ({})", o.backend),
            "this process, same machine (competes with the server)",
            format!("{:.0}% of one core", o.client_cpu),
            "",
            "-".into(),
        ));
    }
    let mut s = String::from("### levee-server-bench\n\n");
    s.push_str(&format!(
        "{}; levee {}\n\n",
        levee_lab::machine::describe(),
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str(&format!(
        "load average (1/5/15 min) at start: {load_start}; at end: {}. The server, PostgreSQL and the load generator share these cores with whatever else runs.\n\n",
        loadavg()
    ));
    s.push_str(&results_table(&rows));
    print!("{s}");
    if let Some(p) = &args.output {
        std::fs::write(p, &s).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
