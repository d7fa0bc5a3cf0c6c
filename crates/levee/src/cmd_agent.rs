//! `levee agent`: flags, config loading, and the run loop on kernel counters.

use anyhow::Context;
use clap::Args;
use levee_agent::config::parse_cli_duration;
use levee_agent::kernel::KernelTicks;
use levee_agent::netmode::Mode;
use levee_agent::sink::EventSink;
use levee_agent::visibility::sampler::afpacket_opener;
use levee_agent::visibility::Visibility;
use levee_agent::{Agent, AgentConfig, Overrides};
use levee_ioc::{IocStore, ListOutcome};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Config file (TOML). Default: /etc/levee/agent.toml if it exists, else built-in defaults.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Interface to watch (repeatable). Default: every interface except loopback.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    interfaces: Vec<String>,
    /// Counter read interval, 100ms to 1m (default 1s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    tick: Option<Duration>,
    /// Learning phase before any incident (default 300s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    baseline_warmup: Option<Duration>,
    /// Time below threshold before an incident resolves (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    quiet_period: Option<Duration>,
    /// Event log, appended as JSON lines (default <state-dir>/events.jsonl).
    #[arg(long, value_name = "PATH")]
    events_file: Option<PathBuf>,
    /// Directory for the baseline snapshot (default /var/lib/levee as root, else ~/.local/state/levee).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Node name in events (default: the host name).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Counters only: no packet sampler (incidents carry no family, fingerprint or pcap).
    #[arg(long)]
    no_capture: bool,
    /// What to watch: host (this host), flow (sFlow/NetFlow/IPFIX exports),
    /// mirror (a SPAN port); flow and mirror detect per IP of
    /// networks.monitored_networks (see docs/flows.md).
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    mode: Option<Mode>,
    /// The Levee server to report to (with --enroll the first time).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// One-time enrollment token from the server (POST /api/v1/enrollment-tokens).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LEVEE_ENROLL_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    enroll: Option<String>,
    /// The server certificate's fingerprint to pin (as `levee server` prints it).
    #[arg(long, value_name = "SHA256")]
    server_fingerprint: Option<levee_proto::Fingerprint>,
    /// Do not report to the server, even when enrolled.
    #[arg(long)]
    no_uplink: bool,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::from_name(s).ok_or_else(|| format!("unknown mode {s:?}: use host, flow or mirror"))
}

pub fn run(a: AgentArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        node: a.node,
        interfaces: a.interfaces,
        tick: a.tick,
        baseline_warmup: a.baseline_warmup,
        quiet_period: a.quiet_period,
        events_file: a.events_file,
        state_dir: a.state_dir,
        no_capture: a.no_capture,
        mode: a.mode,
        server: a.server,
        server_fingerprint: a.server_fingerprint,
        no_uplink: a.no_uplink,
    };
    let cfg = AgentConfig::load(a.config.as_deref(), &overrides)?;
    if a.print_config {
        println!("{cfg:#?}");
        return Ok(());
    }
    run_agent(cfg, a.enroll.as_deref())
}

/// Runs the agent on `cfg` until SIGTERM/SIGINT, enrolling first with `enroll`
/// (also used by `levee up`).
pub fn run_agent(mut cfg: AgentConfig, enroll: Option<&str>) -> anyhow::Result<()> {
    tracing::info!(
        node = %cfg.node,
        tick = %humantime::format_duration(cfg.tick),
        warmup = %humantime::format_duration(cfg.baseline_warmup),
        state_dir = %cfg.state_dir.display(),
        events_file = %cfg.events_file.display(),
        config = %cfg.source.as_ref().map_or("(defaults)".to_string(), |p| p.display().to_string()),
        "levee agent starting"
    );
    // Enrollment problems stop the agent before any thread starts.
    let uplink = crate::uplink_glue::prepare(&cfg, enroll)?;
    if let Some(up) = &uplink {
        // Never block the server: the uplink is how the node is managed.
        for a in crate::uplink_glue::server_addresses(&up.server) {
            tracing::info!(address = %a, "the Levee server's address is protected from mitigation rules");
            cfg.mitigation
                .protected
                .push(levee_mitigate::safety::host_prefix(a));
        }
    }
    let flags = crate::signals::install()?;
    if cfg.netmode.mode != Mode::Host {
        return run_netmode(cfg, flags, uplink);
    }
    let source = KernelTicks::new(&cfg).context("opening the kernel counter sources")?;
    let sink = EventSink::open(&cfg.events_file, Some(Box::new(std::io::stdout())))?;
    let vis = start_visibility(&cfg, &flags.stop)?;
    let mitigation = start_mitigation(&cfg)?;
    let bgp = start_bgp(&cfg)?;
    let state_dir = cfg.state_dir.clone();
    let agent = Agent::new(
        cfg,
        Box::new(source),
        sink,
        flags.stop,
        levee_agent::runtime::random_seed(),
    )?
    .with_visibility(vis)
    .with_reload_flag(flags.reload);
    attach(agent, mitigation, bgp, uplink, &state_dir).run(None)?;
    Ok(())
}

/// The agent with on-node mitigation, network (BGP) mitigation and the
/// uplink to the server, when configured: the same in every mode.
fn attach(
    mut agent: Agent,
    mitigation: Option<levee_mitigate::MitigationEngine>,
    bgp: Option<levee_bgp::engine::BgpEngine>,
    uplink: Option<crate::uplink_glue::Uplinked>,
    state_dir: &std::path::Path,
) -> Agent {
    if let Some(engine) = mitigation {
        agent = agent.with_mitigation(engine);
    }
    if let Some(engine) = bgp {
        agent = agent.with_bgp(engine);
    }
    if let Some(up) = uplink {
        let (observer, controller) = up.into_parts(state_dir);
        agent = agent
            .with_observer(Box::new(observer))
            .with_controller(Box::new(controller));
    }
    agent
}

/// Flow or mirror mode: per-IP detection on the monitored networks.
/// Incidents on IPs and prefixes are mitigated and reported like any other.
fn run_netmode(
    cfg: AgentConfig,
    flags: crate::signals::Flags,
    uplink: Option<crate::uplink_glue::Uplinked>,
) -> anyhow::Result<()> {
    let mitigation = start_mitigation(&cfg)?;
    let bgp = start_bgp(&cfg)?;
    let (ticks, enricher) = levee_agent::netmode::start(&cfg, &flags.stop)
        .with_context(|| format!("starting {} mode", cfg.netmode.mode.name()))?;
    tracing::info!(
        mode = cfg.netmode.mode.name(),
        networks = ?cfg.netmode.networks.monitored_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        listen = ?ticks.local_addrs(),
        "per-IP detection on"
    );
    let sink = EventSink::open(&cfg.events_file, Some(Box::new(std::io::stdout())))?;
    let state_dir = cfg.state_dir.clone();
    let agent = Agent::new(
        cfg,
        Box::new(ticks),
        sink,
        flags.stop,
        levee_agent::runtime::random_seed(),
    )?
    .with_enricher(Box::new(enricher));
    attach(agent, mitigation, bgp, uplink, &state_dir).run(None)?;
    Ok(())
}

/// The BGP network mitigation engine when `[bgp] enabled = true`: the
/// speaker adapter, the ROAs (loaded now; a failure stops the agent) and
/// the audit log.
fn start_bgp(cfg: &AgentConfig) -> anyhow::Result<Option<levee_bgp::engine::BgpEngine>> {
    if !cfg.bgp.enabled {
        return Ok(None);
    }
    let engine = levee_bgp::system::build(&cfg.bgp, &cfg.state_dir)
        .context("starting network mitigation ([bgp] enabled = true)")?;
    tracing::info!(
        speaker = ?cfg.bgp.speaker.kind,
        roas = engine.roas().map_or(0, |r| r.len()),
        prefixes = cfg.bgp.prefixes.len(),
        "network mitigation (BGP) on"
    );
    Ok(Some(engine))
}

/// The on-node mitigation engine when `[mitigation] enabled = true`. A
/// configured but unusable executor stops the agent: running unprotected
/// while the config says otherwise would be worse.
fn start_mitigation(cfg: &AgentConfig) -> anyhow::Result<Option<levee_mitigate::MitigationEngine>> {
    if !cfg.mitigation.enabled {
        return Ok(None);
    }
    let engine = levee_mitigate::system::build(
        cfg.mitigation.clone(),
        &cfg.state_dir,
        levee_mitigate::runner::SystemRunner::new(),
        vec![crate::cmd_mitigate::agent_xdp_executor(
            &cfg.mitigation,
            &cfg.interfaces,
        )?],
        levee_agent::runtime::random_seed(),
    )
    .context("starting on-node mitigation ([mitigation] enabled = true)")?;
    tracing::info!(
        executor = %cfg.mitigation.executor,
        dry_run = cfg.mitigation.dry_run,
        "on-node mitigation on"
    );
    Ok(Some(engine))
}

/// The packet sampler on the configured interfaces, and the indicator lists.
fn start_visibility(cfg: &AgentConfig, stop: &Arc<AtomicBool>) -> anyhow::Result<Visibility> {
    let interfaces = capture_interfaces(cfg);
    let mut vis = Visibility::start(
        cfg.capture.clone(),
        &cfg.state_dir,
        &interfaces,
        |_| afpacket_opener(),
        stop,
        levee_agent::runtime::unix_now_ms().max(0) as u64 * 1_000_000,
    )
    .context("starting the packet sampler threads")?;
    if cfg.capture.enabled {
        tracing::info!(interfaces = ?interfaces, "packet sampler on");
    } else {
        tracing::info!("packet sampler off (capture.enabled = false or --no-capture)");
    }
    if !cfg.ioc.lists.is_empty() {
        // A list that cannot be read is reported and left empty; the agent
        // runs without it rather than not at all.
        let (store, report) = IocStore::open(cfg.ioc.lists.clone())
            .context("loading the indicator lists ([[ioc.lists]])")?;
        for l in &report.lists {
            match &l.outcome {
                ListOutcome::Loaded(p) => {
                    tracing::info!(list = %l.name, "indicator list loaded: {p}")
                }
                ListOutcome::KeptPrevious { error, .. } => {
                    tracing::warn!(list = %l.name, "indicator list not loaded: {error}")
                }
            }
        }
        vis.set_iocs(store);
    }
    Ok(vis)
}

/// `capture.interfaces`, else `agent.interfaces`, else every interface but
/// loopback present now.
fn capture_interfaces(cfg: &AgentConfig) -> Vec<String> {
    if !cfg.capture.interfaces.is_empty() {
        return cfg.capture.interfaces.clone();
    }
    if !cfg.interfaces.is_empty() {
        return cfg.interfaces.clone();
    }
    let mut all: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lo")
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}
