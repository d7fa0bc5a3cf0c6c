//! `levee mitigate`: see and run what the agent would do against an attack.
//!
//! - `preview` prints the exact commands / ruleset for a family and target
//!   (the rule generator users can copy); it runs nothing.
//! - `apply` applies them for real, holds them until Ctrl-C or
//!   `--hold-for`, then removes them; events are JSON lines on stdout.
//! - `reconcile` removes every Levee rule, set, route or device left in the
//!   kernel (after a crash); never use it while an agent is mitigating.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use levee_agent::config::parse_cli_duration;
use levee_mitigate::engine::IncidentView;
use levee_mitigate::host::{HostAddr, HostInfo};
use levee_mitigate::runner::{RefuseRunner, SystemRunner};
use levee_mitigate::{ExecutorKind, MitigationConfig, MitigationEngine};
use levee_model::{Event, EventBody};
use levee_packet::{Family, Fingerprint};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum MitigateCommand {
    /// Print the exact commands/ruleset a mitigation would apply; run nothing.
    Preview(PlanArgs),
    /// Apply a mitigation now, hold it, then remove it (needs root).
    Apply(ApplyArgs),
    /// Remove every Levee rule left in the kernel (after a crash; needs root).
    Reconcile(ReconcileArgs),
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Attack family, e.g. syn_flood, udp_flood, dns_amplification.
    #[arg(long)]
    family: String,
    /// The attacked address on this node.
    #[arg(long)]
    target: IpAddr,
    /// The attacked interface (earliest drop on its ingress; needed by tc).
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// Packet filter to use: nftables, iptables, ipset, ufw, firewalld, csf, xdp.
    #[arg(long)]
    executor: Option<ExecutorKind>,
    /// An attack fingerprint (JSON, as in incident events or
    /// `levee pcap analyze --json`) for narrower rules; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    fingerprint: Option<PathBuf>,
    /// A config file whose [mitigation] section sets profiles, allowlist, ttl.
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Rule lifetime (default from the config, 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    ttl: Option<Duration>,
    /// Print the events as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Remove the rules after this long (default: wait for Ctrl-C).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    hold_for: Option<Duration>,
    /// Where the audit log and saved sysctl values live.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Interfaces to check for leftover Levee XDP programs (repeatable).
    #[arg(long = "interface", short = 'i', value_name = "NAME")]
    interfaces: Vec<String>,
}

pub fn run(cmd: MitigateCommand) -> anyhow::Result<()> {
    match cmd {
        MitigateCommand::Preview(a) => preview(a),
        MitigateCommand::Apply(a) => apply(a),
        MitigateCommand::Reconcile(a) => reconcile(a),
    }
}

/// The `[mitigation]` section of `path` (or the defaults).
fn load_config(path: Option<&Path>) -> anyhow::Result<MitigationConfig> {
    let Some(path) = path else {
        return Ok(MitigationConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let cfg: MitigationConfig = match doc.remove("mitigation") {
        None => MitigationConfig::default(),
        Some(v) => v
            .try_into()
            .with_context(|| format!("the [mitigation] section of {}", path.display()))?,
    };
    let problems = cfg.validate("mitigation");
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in {}:\n  - {}",
            problems.len(),
            path.display(),
            problems.join("\n  - ")
        );
    }
    Ok(cfg)
}

fn plan_config(a: &PlanArgs) -> anyhow::Result<MitigationConfig> {
    let mut cfg = load_config(a.config.as_deref())?;
    cfg.enabled = true;
    if let Some(e) = a.executor {
        cfg.executor = e;
    }
    if let Some(t) = a.ttl {
        cfg.ttl = t;
    }
    let problems = cfg.validate("mitigation");
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(cfg)
}

fn incident(a: &PlanArgs) -> anyhow::Result<IncidentView> {
    let family: Family = serde_json::from_value(serde_json::Value::String(a.family.clone()))
        .map_err(|_| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.as_str()).collect();
            anyhow::anyhow!(
                "unknown attack family {:?}: use one of {}",
                a.family,
                names.join(", ")
            )
        })?;
    let fingerprint = match &a.fingerprint {
        None => None,
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("reading the fingerprint from stdin")?
            } else {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            };
            let mut v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            // Accept a whole incident event or analysis too: take its fingerprint.
            if let Some(fp) = v.get_mut("fingerprint") {
                v = fp.take();
            }
            Some(serde_json::from_value::<Fingerprint>(v).with_context(|| {
                format!(
                    "{} is not a Levee fingerprint (see `levee pcap analyze --json`)",
                    p.display()
                )
            })?)
        }
    };
    Ok(IncidentView {
        id: format!("manual-{}", uuid_now()),
        target: a.target.to_string(),
        family: Some(family),
        fingerprint,
        metrics: vec![],
        victim: None,
        started_ms: levee_agent::runtime::unix_now_ms(),
    })
}

fn uuid_now() -> String {
    levee_detector::ids::IdGen::new(levee_agent::runtime::random_seed())
        .next_id(levee_agent::runtime::unix_now_ms())
        .to_string()
}

fn print_event(body: EventBody, json: bool) {
    if json {
        let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        println!(
            "{}",
            Event::new(levee_agent::runtime::unix_now_ms(), node.trim(), body).to_json_line()
        );
        return;
    }
    match body {
        EventBody::MitigationPreviewed(i) => {
            println!("# {} via {} (ttl {}s)", i.action, i.executor, i.ttl_s);
            println!("{}", i.rule);
        }
        EventBody::MitigationFailed { info, error } => {
            println!(
                "# not applied: {} via {}: {error}",
                info.action,
                if info.executor.is_empty() {
                    "-"
                } else {
                    &info.executor
                }
            );
        }
        other => println!("# {}", other.kind()),
    }
}

fn preview(a: PlanArgs) -> anyhow::Result<()> {
    let mut cfg = plan_config(&a)?;
    cfg.dry_run = true;
    let inc = incident(&a)?;
    let host = HostInfo {
        addresses: vec![HostAddr {
            interface: a.interface.clone().unwrap_or_default(),
            addr: a.target,
            prefix_len: if a.target.is_ipv4() { 32 } else { 128 },
            scope: "global".into(),
        }],
        gateways: vec![],
    };
    let protected =
        levee_mitigate::Protected::new(&cfg.allowlist, &cfg.protected, &HostInfo::default());
    let mut executors =
        levee_mitigate::system::standard_executors(&cfg, protected.exempt(), &RefuseRunner, None);
    executors.push(xdp_executor(a.interface.as_slice()));
    let family = inc.profile_family();
    let steps = cfg.steps(family);
    let opts = levee_mitigate::EngineOptions {
        seed: levee_agent::runtime::random_seed(),
    };
    let mut engine = MitigationEngine::new(cfg, host, executors, None, opts)?;
    if !a.json {
        let names: Vec<String> = steps.iter().map(|(s, _)| s.to_string()).collect();
        println!(
            "# {family} on {}{}: profile [{}]; {}",
            a.target,
            a.interface
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default(),
            names.join(", "),
            if inc.fingerprint.is_some() {
                "rules from the fingerprint"
            } else {
                "no fingerprint: rules from the family"
            }
        );
        if inc.fingerprint.is_none() {
            for (s, _) in steps.iter().filter(|(s, _)| s.needs_sources()) {
                println!("# skipped: {s} needs the attack's source prefixes (give --fingerprint)");
            }
        }
    }
    let mut inc = inc;
    if let Some(i) = &a.interface {
        inc.target = i.clone();
    }
    for ev in engine.preview(&inc, levee_agent::runtime::unix_now_ms()) {
        print_event(ev, a.json);
    }
    Ok(())
}

fn state_dir(d: Option<PathBuf>) -> PathBuf {
    d.unwrap_or_else(levee_agent::config::default_state_dir)
}

fn apply(a: ApplyArgs) -> anyhow::Result<()> {
    let cfg = plan_config(&a.plan)?;
    let dir = state_dir(a.state_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stop = crate::signals::stop_flag()?;
    let mut engine = levee_mitigate::system::build(
        cfg,
        &dir,
        SystemRunner::new(),
        vec![xdp_executor(a.plan.interface.as_slice())],
        levee_agent::runtime::random_seed(),
    )?;
    let mut inc = incident(&a.plan)?;
    if let Some(i) = &a.plan.interface {
        inc.target = i.clone();
    }
    let now = levee_agent::runtime::unix_now_ms;
    let info = levee_model::IncidentInfo {
        incident_id: inc.id.clone(),
        target: inc.target.clone(),
        metric: String::new(),
        value: 0.0,
        baseline: 0.0,
        ratio: 0.0,
        threshold: 0.0,
        metrics: vec![],
        started_at: levee_model::timefmt::rfc3339_millis(now()),
        family: inc.family.map(|f| f.to_string()),
        confidence: None,
        details: Default::default(),
        fingerprint: inc
            .fingerprint
            .as_ref()
            .map(|f| serde_json::to_value(f).unwrap_or_default()),
    };
    for ev in engine.on_incident_started(&info, now()) {
        print_event(ev, true);
    }
    let until = a.hold_for.map(|d| std::time::Instant::now() + d);
    while !stop.load(Ordering::SeqCst) && until.is_none_or(|u| std::time::Instant::now() < u) {
        std::thread::park_timeout(Duration::from_millis(500));
        for ev in engine.tick(now()) {
            print_event(ev, true);
        }
    }
    for ev in engine.on_incident_resolved(&inc.id, now()) {
        print_event(ev, true);
    }
    Ok(())
}

fn reconcile(a: ReconcileArgs) -> anyhow::Result<()> {
    let mut cfg = load_config(a.config.as_deref())?;
    cfg.enabled = true;
    let dir = state_dir(a.state_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Reconcile needs no particular executor: dry-run skips the check that
    // the configured one is present.
    cfg.dry_run = true;
    let mut engine = levee_mitigate::system::build(
        cfg,
        &dir,
        SystemRunner::new(),
        vec![xdp_executor(&a.interfaces)],
        0,
    )?;
    let events = engine.reconcile(levee_agent::runtime::unix_now_ms());
    if events.is_empty() {
        eprintln!("levee: nothing of Levee's found in the kernel");
    }
    for ev in events {
        print_event(ev, true);
    }
    Ok(())
}

/// The XDP executor (`executor = "xdp"`) on `interfaces` (the first takes
/// rules whose incident names no interface). Loads nothing until a rule
/// needs it.
pub fn xdp_executor(interfaces: &[String]) -> Box<dyn levee_mitigate::exec::Executor> {
    Box::new(levee_xdp::XdpExecutor::new(
        interfaces,
        levee_xdp::Mode::Auto,
    ))
}

/// [`xdp_executor`] for an agent: when XDP is the configured executor the
/// program is loaded (verified by the kernel) at start, so the first attack
/// only attaches it.
pub fn agent_xdp_executor(
    cfg: &levee_mitigate::MitigationConfig,
    interfaces: &[String],
) -> anyhow::Result<Box<dyn levee_mitigate::exec::Executor>> {
    if cfg.executor != levee_mitigate::ExecutorKind::Xdp || cfg.dry_run {
        return Ok(xdp_executor(interfaces));
    }
    let x = levee_xdp::XdpExecutor::preloaded(interfaces, levee_xdp::Mode::Auto)
        .context("loading the XDP program ([mitigation] executor = \"xdp\")")?;
    Ok(Box::new(x))
}
