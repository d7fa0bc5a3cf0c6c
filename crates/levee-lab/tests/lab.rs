//! Lab integration tests: the real `levee` agent inside a victim namespace,
//! hping3 floods from an attacker namespace.
//!
//! Needs root, `ip` (iproute2), `hping3` and `timeout` (coreutils). Without
//! them each test prints a loud SKIPPING message and passes, except with
//! `CI=true`, where it fails. Tests serialise on the lab lock
//! (/tmp/levee-lab.lock), so running them in parallel is safe but not faster.
//!
//! The agent binary: `LEVEE_BIN` if set, else `cargo build -p levee --bin levee`
//! with this test's profile (see `levee_lab::binary`).
//!
//! Timings are printed; see them with
//! `cargo test -p levee-lab --test lab -- --nocapture --test-threads=1`.

use levee_lab::{
    levee_binary, require_lab, AgentOptions, AgentProcess, FloodKind, Lab, ReceivedEvent,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WARMUP: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_secs(3);
/// Light legitimate traffic, far below the 2000 pps rx floor.
const BACKGROUND_PPS: u32 = 20;
/// Upper bound on `incident_started.ts - flood spawn time`.
const MAX_DETECTION_MS: i64 = 1000;

struct Ctx {
    lab: Lab,
    bin: PathBuf,
    work: tempfile::TempDir,
}

impl Ctx {
    /// `None` when the lab cannot run here and we are not on CI (skip).
    fn new() -> Option<Ctx> {
        if require_lab().is_some() {
            return None;
        }
        let bin = levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
        let lab = Lab::new().unwrap_or_else(|e| panic!("creating the lab: {e}"));
        let work = tempfile::Builder::new()
            .prefix("levee-lab-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        Some(Ctx { lab, bin, work })
    }

    fn options(&self) -> AgentOptions {
        let mut o = AgentOptions::new(&self.bin, self.work.path());
        o.baseline_warmup = WARMUP;
        o.quiet_period = QUIET;
        o
    }

    /// Starts the agent and checks its `agent_started` event.
    fn start_agent(&self, opts: &AgentOptions) -> (AgentProcess, ReceivedEvent) {
        let mut agent = AgentProcess::spawn(&self.lab, opts)
            .unwrap_or_else(|e| panic!("spawning the agent: {e}"));
        let started = expect(&mut agent, "agent_started", Duration::from_secs(15));
        let v = &started.value;
        assert_eq!(v["node"], "lab-victim", "{v}");
        assert_eq!(v["tick_ms"], opts.tick.as_millis() as u64, "{v}");
        assert_eq!(
            v["baseline_warmup_s"],
            opts.baseline_warmup.as_secs(),
            "{v}"
        );
        assert!(
            v["interfaces"]
                .as_array()
                .is_some_and(|a| a.iter().any(|i| i == self.lab.victim_if())),
            "agent_started.interfaces lacks {}: {v}",
            self.lab.victim_if()
        );
        assert!(started.ts_ms().is_some(), "ts is not RFC 3339: {v}");
        // `ip netns exec` must have exec'd: the pid we hold is the agent.
        let exe = agent.exe().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            exe.file_name().unwrap_or_default(),
            "ip",
            "pid is still `ip`"
        );
        println!(
            "agent_started after {} ms (restored_samples={})",
            started
                .received_at
                .duration_since(agent.spawned_at())
                .as_millis(),
            v["restored_samples"]
        );
        (agent, started)
    }
}

/// Waits for `kind` or panics (the agent's Drop then prints its stderr).
fn expect(agent: &mut AgentProcess, kind: &str, timeout: Duration) -> ReceivedEvent {
    agent
        .wait_for_event(kind, timeout)
        .unwrap_or_else(|| panic!("no `{kind}` event within {timeout:?}"))
}

fn wait_baseline(agent: &mut AgentProcess, warmup: Duration) -> ReceivedEvent {
    let ready = expect(agent, "baseline_ready", warmup + Duration::from_secs(10));
    println!(
        "baseline_ready {} ms after spawn (warmup {warmup:?})",
        ready
            .received_at
            .duration_since(agent.spawned_at())
            .as_millis()
    );
    ready
}

/// Floods with `kind` for `duration`, asserts `incident_started` within
/// [`MAX_DETECTION_MS`] of the spawn with ratio > 1, then `incident_resolved`
/// for the same incident after the flood ends. Returns the latency in ms.
fn flood_detect_resolve(
    ctx: &Ctx,
    agent: &mut AgentProcess,
    kind: FloodKind,
    duration: Duration,
) -> i64 {
    let before = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    // Every earlier incident_started was consumed by its own flood; one left
    // over is a false positive.
    if let Some(e) = agent.wait_for_event("incident_started", Duration::ZERO) {
        panic!("incident before the {} flood: {}", kind.name(), e.value);
    }

    let mut flood = ctx
        .lab
        .flood(kind, duration)
        .unwrap_or_else(|e| panic!("starting the {} flood: {e}", kind.name()));
    let started = agent
        .wait_for_event("incident_started", Duration::from_secs(5))
        .unwrap_or_else(|| {
            let _ = flood.check().map_err(|e| eprintln!("flood failed: {e}"));
            panic!(
                "no incident_started within 5 s of the {} flood",
                kind.name()
            )
        });
    let ts = started.ts_ms().expect("incident_started.ts parses");
    let latency = ts - flood.spawned_wall_ms();
    let ratio = started.f64("ratio").unwrap_or(f64::NAN);
    println!(
        "{} flood: incident_started {latency} ms after spawn (received {} ms after), metric={} value={} baseline={} ratio={ratio:.1} metrics={}",
        kind.name(),
        started.received_wall_ms - flood.spawned_wall_ms(),
        started.value["metric"],
        started.value["value"],
        started.value["baseline"],
        started.value["metrics"]
    );
    assert!(
        latency <= MAX_DETECTION_MS,
        "detection took {latency} ms > {MAX_DETECTION_MS} ms"
    );
    assert!(ratio > 1.0, "ratio {ratio} not > 1: {}", started.value);
    let id = started.str("incident_id").expect("incident_id").to_string();
    assert_protocol_metric(kind, &started);

    flood
        .wait()
        .unwrap_or_else(|e| panic!("{} flood: {e}", kind.name()));
    let ended = Instant::now();
    let after = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    let packets = after.rx_packets - before.rx_packets;
    println!(
        "{} flood: {packets} packets received by the victim, ~{:.0} pps",
        kind.name(),
        packets as f64 / duration.as_secs_f64()
    );

    let resolved = agent
        .wait_for(QUIET + Duration::from_secs(15), |e| {
            e.kind() == "incident_resolved" && e.str("incident_id") == Some(id.as_str())
        })
        .unwrap_or_else(|| panic!("incident {id} not resolved after the {} flood", kind.name()));
    println!(
        "{} flood: incident_resolved {} ms after the flood ended (quiet period {QUIET:?}), duration_s={} peak={} total_packets={}",
        kind.name(),
        resolved.received_at.duration_since(ended).as_millis(),
        resolved.value["duration_s"],
        resolved.value["peak"],
        resolved.value["total_packets"]
    );
    latency
}

/// The incident must name the flood's protocol metric among its metrics: the
/// protocol counters see the same packets as the interface, in the same tick.
fn assert_protocol_metric(kind: FloodKind, started: &ReceivedEvent) {
    let want = match kind {
        FloodKind::Syn | FloodKind::Ack | FloodKind::Rst | FloodKind::Xmas => "tcp_pps",
        FloodKind::Udp | FloodKind::Fragment | FloodKind::Amplification(_) => "udp_pps",
        FloodKind::Icmp => "icmp_pps",
        FloodKind::Gre => "rx_pps",
    };
    let names: Vec<&str> = started.value["metrics"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["metric"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&want),
        "{} flood incident has no {want} among its metrics {names:?}",
        kind.name()
    );
}

/// Stops the agent with SIGTERM and checks `agent_stopped`.
fn stop_agent(agent: &mut AgentProcess) {
    let status = agent.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "agent exited with {status} after SIGTERM");
    assert!(
        !agent.events_of("agent_stopped").is_empty(),
        "no agent_stopped event after SIGTERM"
    );
}

/// The lab itself: addresses, a short flood reaching the victim, cleanup.
#[test]
fn lab_namespaces_carry_a_flood_and_are_removed() {
    let Some(ctx) = Ctx::new() else { return };
    let (att, vic) = (
        ctx.lab.attacker_ns().to_string(),
        ctx.lab.victim_ns().to_string(),
    );
    let addrs = ctx
        .lab
        .exec_in_stdout(levee_lab::Ns::Victim, &["ip", "-o", "addr", "show"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(addrs.contains(&ctx.lab.victim_ip().to_string()), "{addrs}");

    let before = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    let mut flood = ctx
        .lab
        .flood(FloodKind::Syn, Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    flood.wait().unwrap_or_else(|e| panic!("{e}"));
    let after = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    let got = after.rx_packets - before.rx_packets;
    println!("1 s SYN flood: {got} packets at the victim");
    assert!(got > 10_000, "only {got} packets reached the victim");

    drop(ctx);
    let list = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned();
    assert!(
        !list.contains(&att) && !list.contains(&vic),
        "namespaces left: {list}"
    );
}

/// Leftover namespaces of a dead run are removed by the next lab.
#[test]
fn leftovers_of_dead_runs_are_removed() {
    if require_lab().is_some() {
        return;
    }
    // A pid that surely existed and is gone now.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait true");
    let stale = format!("lv-{dead}-0-vic");
    let lock = levee_lab::LabLock::acquire().expect("lab lock");
    levee_lab::cmd::run_args("ip", &["netns", "add", &stale]).expect("ip netns add");
    let lab = Lab::new_unlocked().expect("lab");
    let list = levee_lab::cmd::run_args("ip", &["netns", "list"]).expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    drop(lab);
    drop(lock);
    if list.contains(&stale) {
        let _ = levee_lab::cmd::run_args("ip", &["netns", "del", &stale]);
        panic!("stale namespace {stale} survived: {list}");
    }
}

/// a. Light background traffic through the warmup and after: no incident.
#[test]
fn background_traffic_raises_no_incident() {
    let Some(ctx) = Ctx::new() else { return };
    let mut bg = ctx
        .lab
        .background_traffic(BACKGROUND_PPS, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let before = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    let (mut agent, _) = ctx.start_agent(&ctx.options());
    wait_baseline(&mut agent, WARMUP);
    let quiet = agent.wait_for_event("incident_started", Duration::from_secs(6));
    bg.check()
        .unwrap_or_else(|e| panic!("background traffic: {e}"));
    let after = ctx.lab.victim_counters().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "background traffic: {} packets at the victim",
        after.rx_packets - before.rx_packets
    );
    assert!(
        after.rx_packets - before.rx_packets > 100,
        "background traffic did not flow"
    );
    assert!(
        quiet.is_none(),
        "false positive: {:?}",
        quiet.map(|e| e.value)
    );
    stop_agent(&mut agent);
    let all = agent.events_of("incident_started");
    assert!(all.is_empty(), "false positive: {:?}", all[0].value);
}

/// b. A 10 s SYN flood after baseline_ready is detected within 1 s and resolved.
#[test]
fn syn_flood_detected_within_a_second_and_resolved() {
    let Some(ctx) = Ctx::new() else { return };
    let _bg = ctx
        .lab
        .background_traffic(BACKGROUND_PPS, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut agent, _) = ctx.start_agent(&ctx.options());
    wait_baseline(&mut agent, WARMUP);
    std::thread::sleep(Duration::from_secs(1));
    let before = agent.sample().unwrap_or_else(|e| panic!("{e}"));
    flood_detect_resolve(&ctx, &mut agent, FloodKind::Syn, Duration::from_secs(10));
    let after = agent.sample().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "agent during flood+resolution: {:.1}% CPU, RSS {} kB (peak {} kB)",
        after.cpu_percent_since(&before),
        after.rss_kb,
        after.hwm_kb
    );
    stop_agent(&mut agent);
}

/// c. UDP and ICMP floods, one after the other with one agent, each detected
/// within 1 s and resolved.
#[test]
fn udp_and_icmp_floods_detected_and_resolved() {
    let Some(ctx) = Ctx::new() else { return };
    let _bg = ctx
        .lab
        .background_traffic(BACKGROUND_PPS, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut agent, _) = ctx.start_agent(&ctx.options());
    wait_baseline(&mut agent, WARMUP);
    std::thread::sleep(Duration::from_secs(1));
    for kind in [FloodKind::Udp, FloodKind::Icmp] {
        flood_detect_resolve(&ctx, &mut agent, kind, Duration::from_secs(5));
        std::thread::sleep(Duration::from_secs(2));
        let stray = agent.wait_for_event("incident_started", Duration::ZERO);
        assert!(
            stray.is_none(),
            "incident between floods: {:?}",
            stray.map(|e| e.value)
        );
    }
    stop_agent(&mut agent);
}

/// d. A restart in the middle of the warmup keeps the learned samples.
#[test]
fn restart_mid_warmup_keeps_the_baseline() {
    let Some(ctx) = Ctx::new() else { return };
    let _bg = ctx
        .lab
        .background_traffic(BACKGROUND_PPS, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut opts = ctx.options();
    opts.baseline_warmup = Duration::from_secs(20);

    let (mut first, started) = ctx.start_agent(&opts);
    assert_eq!(
        started.u64("restored_samples"),
        Some(0),
        "fresh state dir: {}",
        started.value
    );
    let run_for = Duration::from_secs(12);
    std::thread::sleep(run_for.saturating_sub(first.spawned_at().elapsed()));
    assert!(
        first.events_of("baseline_ready").is_empty(),
        "baseline_ready before the 20 s warmup ended"
    );
    stop_agent(&mut first);
    let stopped_after = first.spawned_at().elapsed();
    let state_files = std::fs::read_dir(opts.state_dir())
        .map(|d| d.count())
        .unwrap_or(0);
    println!("first agent stopped after {stopped_after:?}; state dir has {state_files} entries");
    assert!(
        state_files > 0,
        "nothing saved in {}",
        opts.state_dir().display()
    );
    drop(first);

    let (mut second, restarted) = ctx.start_agent(&opts);
    let restored = restarted.u64("restored_samples").unwrap_or(0);
    assert!(
        restored >= 10,
        "restored only {restored} samples: {}",
        restarted.value
    );
    let ready = expect(&mut second, "baseline_ready", Duration::from_secs(14));
    let after = ready.received_at.duration_since(second.spawned_at());
    println!(
        "restart: restored_samples={restored}, baseline_ready {} ms after restart",
        after.as_millis()
    );
    assert!(
        after < Duration::from_secs(14),
        "baseline_ready took {after:?} after restart"
    );
    stop_agent(&mut second);
}
