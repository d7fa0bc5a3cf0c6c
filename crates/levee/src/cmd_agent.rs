//! `levee agent`: flags, config loading, and the run loop on kernel counters.

use anyhow::Context;
use clap::Args;
use levee_agent::config::parse_cli_duration;
use levee_agent::kernel::KernelTicks;
use levee_agent::sink::EventSink;
use levee_agent::{Agent, AgentConfig, Overrides};
use std::path::PathBuf;
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
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
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
    };
    let cfg = AgentConfig::load(a.config.as_deref(), &overrides)?;
    if a.print_config {
        println!("{cfg:#?}");
        return Ok(());
    }
    tracing::info!(
        node = %cfg.node,
        tick = %humantime::format_duration(cfg.tick),
        warmup = %humantime::format_duration(cfg.baseline_warmup),
        state_dir = %cfg.state_dir.display(),
        events_file = %cfg.events_file.display(),
        config = %cfg.source.as_ref().map_or("(defaults)".to_string(), |p| p.display().to_string()),
        "levee agent starting"
    );
    let stop = crate::signals::stop_flag()?;
    let source = KernelTicks::new(&cfg).context("opening the kernel counter sources")?;
    let sink = EventSink::open(&cfg.events_file, Some(Box::new(std::io::stdout())))?;
    let agent = Agent::new(
        cfg,
        Box::new(source),
        sink,
        stop,
        levee_agent::runtime::random_seed(),
    )?;
    agent.run(None)?;
    Ok(())
}
