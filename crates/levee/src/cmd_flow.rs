//! `levee flow decode FILE [--json]`: decode a capture of flow export
//! datagrams (sFlow v5, NetFlow v5/v9, IPFIX; any UDP port, the format
//! detected from the content) and print every flow or sample, plus what
//! could not be decoded in each datagram: the tool for debugging an exporter.
//!
//! JSON output is one object per line, with `record` saying which kind:
//! `flow` (every key always present, `null` when the export lacks it),
//! `counter` (sFlow interface counters) or `error` (one per problem per
//! datagram). A summary goes to stderr.

use anyhow::Context;
use clap::{Args, Subcommand};
use levee_flow::capture::{read_datagrams, Datagram};
use levee_flow::{CounterRecord, DecoderConfig, FlowDecoder, FlowRecord, Output};
use levee_packet::meta::IpProtocol;
use levee_packet::TcpFlags;
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum FlowCommand {
    /// Decode a pcap of sFlow / NetFlow / IPFIX export datagrams.
    Decode(DecodeArgs),
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// The capture (pcap or pcapng) of export datagrams, any UDP port.
    file: PathBuf,
    /// One JSON object per line (`record`: flow, counter or error).
    #[arg(long)]
    json: bool,
    /// Start from a saved template cache (the agent's `flow-templates.json`),
    /// to decode data whose templates were sent before the capture began.
    #[arg(long, value_name = "PATH")]
    templates: Option<PathBuf>,
}

pub fn run(cmd: FlowCommand) -> anyhow::Result<()> {
    match cmd {
        FlowCommand::Decode(a) => run_decode(a),
    }
}

/// A flow line: the record's fields, always present.
#[derive(Serialize)]
struct FlowLine {
    record: &'static str,
    frame: u64,
    ts_ms: i64,
    exporter: IpAddr,
    version: &'static str,
    domain: u32,
    src_addr: Option<IpAddr>,
    dst_addr: Option<IpAddr>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    protocol: Option<u8>,
    tcp_flags: Option<u8>,
    packets: u64,
    bytes: u64,
    sampling_rate: u32,
    sampling_source: levee_flow::SamplingSource,
    tos: Option<u8>,
    input_if: Option<u32>,
    output_if: Option<u32>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
}

impl FlowLine {
    fn of(dg: &Datagram<'_>, r: &FlowRecord) -> Self {
        FlowLine {
            record: "flow",
            frame: dg.frame,
            ts_ms: (dg.ts_ns / 1_000_000) as i64,
            exporter: r.exporter,
            version: r.version.as_str(),
            domain: r.domain,
            src_addr: r.src_addr,
            dst_addr: r.dst_addr,
            src_port: r.src_port,
            dst_port: r.dst_port,
            protocol: r.protocol,
            tcp_flags: r.tcp_flags,
            packets: r.packets,
            bytes: r.bytes,
            sampling_rate: r.sampling_rate,
            sampling_source: r.sampling_source,
            tos: r.tos,
            input_if: r.input_if,
            output_if: r.output_if,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
        }
    }
}

#[derive(Serialize)]
struct CounterLine<'a> {
    record: &'static str,
    frame: u64,
    #[serde(flatten)]
    counters: &'a CounterRecord,
}

#[derive(Serialize)]
struct ErrorLine {
    record: &'static str,
    frame: u64,
    source: IpAddr,
    src_port: u16,
    dst_port: u16,
    kind: &'static str,
    error: String,
}

#[derive(Default)]
struct Totals {
    datagrams: u64,
    flows: u64,
    counters: u64,
    errors: u64,
    undecodable: u64,
}

fn run_decode(a: DecodeArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("opening capture {}", a.file.display()))?;
    let mut decoder = FlowDecoder::new(DecoderConfig::default());
    if let Some(p) = &a.templates {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading template cache {}", p.display()))?;
        let snap = levee_flow::CacheSnapshot::from_json(&text)
            .with_context(|| format!("template cache {}", p.display()))?;
        // Templates are restored as if saved now: an offline capture has its
        // own clock, and the point is to use them.
        let mut fresh = snap.clone();
        for t in &mut fresh.templates {
            t.received_ms = i64::MAX / 2;
        }
        for s in &mut fresh.samplers {
            s.received_ms = i64::MAX / 2;
        }
        decoder.restore(&fresh, i64::MAX / 2);
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut out = Output::default();
    let mut totals = Totals::default();
    let mut io_err: Option<std::io::Error> = None;
    if !a.json {
        let _ = writeln!(
            w,
            "{:>6} {:<15} {:<8} {:>39} {:>39} {:<6} {:>5} {:>5} {:<5} {:>10} {:>12} {:>6}",
            "frame",
            "exporter",
            "version",
            "src",
            "dst",
            "proto",
            "sport",
            "dport",
            "flags",
            "packets",
            "bytes",
            "rate"
        );
    }
    let summary = read_datagrams(std::io::BufReader::new(file), |dg| {
        if io_err.is_some() {
            return;
        }
        totals.datagrams += 1;
        out.clear();
        // The capture's own clock drives template expiry, as a live
        // collector's would.
        let now_ms = (dg.ts_ns / 1_000_000) as i64;
        let o = decoder.decode(dg.src, now_ms, dg.payload, &mut out);
        if o.version.is_none() {
            totals.undecodable += 1;
        }
        totals.flows += out.flows.len() as u64;
        totals.counters += out.counters.len() as u64;
        totals.errors += o.errors.len() as u64;
        let res = (|| -> std::io::Result<()> {
            for r in &out.flows {
                if a.json {
                    serde_json::to_writer(&mut w, &FlowLine::of(&dg, r))?;
                    writeln!(w)?;
                } else {
                    writeln!(w, "{}", text_line(&dg, r))?;
                }
            }
            for c in &out.counters {
                if a.json {
                    let line = CounterLine {
                        record: "counter",
                        frame: dg.frame,
                        counters: c,
                    };
                    serde_json::to_writer(&mut w, &line)?;
                    writeln!(w)?;
                } else {
                    writeln!(
                        w,
                        "{:>6} counters ifIndex {} speed {} in {} B / {} pkts, out {} B / {} pkts, errors {}/{}",
                        dg.frame,
                        c.if_index,
                        c.if_speed,
                        c.in_octets,
                        u64::from(c.in_ucast_packets) + u64::from(c.in_multicast_packets) + u64::from(c.in_broadcast_packets),
                        c.out_octets,
                        u64::from(c.out_ucast_packets) + u64::from(c.out_multicast_packets) + u64::from(c.out_broadcast_packets),
                        c.in_errors,
                        c.out_errors
                    )?;
                }
            }
            for e in &o.errors {
                if a.json {
                    let line = ErrorLine {
                        record: "error",
                        frame: dg.frame,
                        source: dg.src,
                        src_port: dg.src_port,
                        dst_port: dg.dst_port,
                        kind: e.kind(),
                        error: e.to_string(),
                    };
                    serde_json::to_writer(&mut w, &line)?;
                    writeln!(w)?;
                } else {
                    writeln!(w, "{:>6} error from {}:{}: {e}", dg.frame, dg.src, dg.src_port)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            io_err = Some(e);
        }
    })
    .with_context(|| format!("reading capture {}", a.file.display()))?;
    match io_err {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => return Err(e).context("writing the records"),
        None => {}
    }
    w.flush().context("writing the records")?;
    eprintln!(
        "{}: {} frames, {} UDP datagrams ({} not flow exports), {} flow records, {} counter records, {} decode errors{}",
        a.file.display(),
        summary.frames,
        totals.datagrams,
        totals.undecodable,
        totals.flows,
        totals.counters,
        totals.errors,
        if summary.truncated { "; the capture ends mid-frame" } else { "" }
    );
    Ok(())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn text_line(dg: &Datagram<'_>, r: &FlowRecord) -> String {
    format!(
        "{:>6} {:<15} {:<8} {:>39} {:>39} {:<6} {:>5} {:>5} {:<5} {:>10} {:>12} {:>6}",
        dg.frame,
        r.exporter.to_string(),
        r.version.as_str(),
        opt(r.src_addr),
        opt(r.dst_addr),
        opt(r.protocol.map(IpProtocol)),
        opt(r.src_port),
        opt(r.dst_port),
        opt(r.tcp_flags.map(TcpFlags)),
        r.packets,
        r.bytes,
        r.sampling_rate
    )
}
