//! `levee watch`: the per-second monitor (table on a terminal, JSON with --json).

use anyhow::Context;
use clap::Args;
use is_terminal::IsTerminal;
use levee_agent::config::parse_cli_duration;
use levee_agent::kernel::KernelTicks;
use levee_agent::ticker::Ticker;
use levee_agent::watch::{lines, table};
use levee_agent::TickSource;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// One JSON object per interface per interval instead of the table.
    #[arg(long)]
    json: bool,
    /// Interface to show (repeatable). Default: every interface except loopback.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    interfaces: Vec<String>,
    /// Stop after this many intervals (default: run until Ctrl-C).
    #[arg(long, short = 'n', value_name = "N")]
    count: Option<u64>,
    /// Interval between lines (default 1s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_cli_duration)]
    interval: Duration,
}

pub fn run(a: WatchArgs) -> anyhow::Result<()> {
    if a.interval < Duration::from_millis(100) {
        anyhow::bail!("--interval must be at least 100ms");
    }
    let stop = crate::signals::stop_flag()?;
    let mut src = KernelTicks::with_interfaces(&a.interfaces, 0)
        .context("opening the kernel counter sources")?;
    let tty = !a.json && std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut conn_note: Option<String> = None;
    let _ = src.tick(); // the first read only sets the starting point
    let mut ticker = Ticker::new(a.interval);
    let mut shown = 0u64;
    while a.count.is_none_or(|c| shown < c) && ticker.wait(&stop) {
        let r = src.tick();
        for (source, error) in &r.errors {
            if conn_note.as_deref() != Some(error.as_str()) {
                eprintln!("levee watch: {source}: {error}");
            }
            conn_note = Some(error.clone());
        }
        let Some(obs) = r.obs else { continue };
        let ls = lines(&obs);
        let written = if tty {
            write!(out, "\x1b[H\x1b[2J{}", table(&ls, conn_note.as_deref()))
        } else {
            ls.iter().try_for_each(|l| {
                writeln!(out, "{}", serde_json::to_string(l).expect("serialises"))
            })
        };
        if written.and_then(|_| out.flush()).is_err() {
            return Ok(()); // the reader went away (e.g. `| head`)
        }
        shown += 1;
    }
    Ok(())
}
