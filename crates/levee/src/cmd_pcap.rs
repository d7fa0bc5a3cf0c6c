//! `levee pcap analyze`: classify a capture (pcap or pcapng) offline and print
//! what the agent would say about it — family, confidence, fingerprint — plus
//! the statistics behind it.

use anyhow::Context;
use clap::{Args, Subcommand};
use is_terminal::IsTerminal;
use levee_packet::{analyze, Analysis, AnalyzeConfig};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PcapCommand {
    /// Classify a capture: attack family, confidence, fingerprint, top sources.
    Analyze(AnalyzeArgs),
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// The capture file (pcap or pcapng; Ethernet, Linux cooked or raw IP).
    file: PathBuf,
    /// Print the analysis as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: PcapCommand) -> anyhow::Result<()> {
    match cmd {
        PcapCommand::Analyze(a) => run_analyze(a),
    }
}

fn run_analyze(a: AnalyzeArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("opening capture {}", a.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // A progress bar only where a person watches, and only when it is worth it.
    let bar = (std::io::stderr().is_terminal() && size > 16 * 1024 * 1024).then(|| {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let cfg = AnalyzeConfig::default();
    let analysis = match &bar {
        Some(b) => analyze(b.wrap_read(std::io::BufReader::new(file)), &cfg),
        None => analyze(std::io::BufReader::new(file), &cfg),
    }
    .with_context(|| format!("analysing {}", a.file.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&analysis).context("serialising the analysis")?
        );
    } else {
        print!("{}", render(&a.file.display().to_string(), &analysis));
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The human-readable report.
fn render(name: &str, a: &Analysis) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{name}: {} packets ({} IP), {:.1} s",
        a.packets, a.ip_packets, a.duration_s
    );
    let Some(family) = &a.family else {
        let _ = writeln!(s, "no IP traffic to classify");
        return s;
    };
    if let Some(v) = a.victim {
        let _ = writeln!(
            s,
            "victim:      {v} ({} packets, {} bytes)",
            a.victim_packets, a.victim_bytes
        );
    }
    let variant = a
        .variant
        .as_ref()
        .map(|v| format!(" ({v:?})"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "family:      {family}{variant}, confidence {}",
        a.confidence
    );
    if let Some(fp) = &a.fingerprint {
        let _ = writeln!(
            s,
            "fingerprint: {}",
            serde_json::to_string(fp).unwrap_or_else(|_| "(unprintable)".to_string())
        );
    }
    if let Some(sp) = &a.spoofing {
        let _ = writeln!(s, "spoofing:    score {} — {}", sp.score, sp.reason);
    }
    for r in &a.reasons {
        let _ = writeln!(s, "  because:   {r}");
    }
    if a.vectors.len() > 1 {
        let _ = writeln!(s, "vectors:");
        for v in &a.vectors {
            let _ = writeln!(
                s,
                "  {:<26} {:>9} packets  {:>6} of packets  {:>6} of bytes",
                v.family.to_string(),
                v.packets,
                pct(v.packet_share),
                pct(v.byte_share)
            );
        }
    }
    let _ = writeln!(s, "protocols:   {}", kv(a.protocols.iter()));
    if !a.tcp_flags.is_empty() {
        let _ = writeln!(s, "tcp flags:   {}", kv(a.tcp_flags.iter()));
    }
    let _ = writeln!(
        s,
        "sizes:       {}..{} bytes, mean {:.0}; fragments {} ({})",
        a.packet_sizes.min,
        a.packet_sizes.max,
        a.packet_sizes.mean,
        a.fragments,
        pct(a.fragment_share)
    );
    let _ = writeln!(
        s,
        "sources:     ~{} distinct, entropy {:.2} bits",
        a.distinct_sources, a.source_entropy_bits
    );
    let _ = writeln!(s, "top sources:");
    for t in a.top_sources.iter().take(10) {
        let _ = writeln!(
            s,
            "  {:<40} {:>9} packets  {:>6}",
            t.address.to_string(),
            t.packets,
            pct(t.share)
        );
    }
    let ports = |ps: &[levee_packet::analyze::PortCount]| {
        ps.iter()
            .take(5)
            .map(|p| format!("{}/{} {}", p.protocol, p.port, p.packets))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "src ports:   {}", ports(&a.top_source_ports));
    let _ = writeln!(s, "dst ports:   {}", ports(&a.top_destination_ports));
    s
}

fn kv<'a>(it: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    let mut v: Vec<_> = it.collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
