//! Decoding throughput, single thread, datagrams in memory. BRIEF targets:
//! at least 5 M records/s per core for NetFlow v9 / IPFIX, 2 M samples/s for
//! sFlow.
//!
//! Input, built with `levee_flow::build` to look like a router's exports:
//! - NetFlow v9 and IPFIX: a 20-field IPv4 template (addresses, ports,
//!   protocol, flags, ToS, 4-byte counters, interfaces, timestamps, next
//!   hop, AS numbers, masks, direction, sampler id; 51 bytes), datagrams of
//!   27 records (about 1,500 bytes), 1,000 distinct datagrams, the template
//!   sent once;
//! - NetFlow v5: 30 records per datagram;
//! - sFlow v5: 7 flow samples of 128-byte raw Ethernet/IPv4/TCP headers per
//!   datagram (each decoded into a PacketMeta).
//!
//! Run: `cargo bench -p levee-flow --bench decode`. Besides Criterion's
//! report it prints a summary table (what, how, result, target, machine).

use criterion::{criterion_group, Criterion, Throughput};
use levee_flow::build::{self, Flow, SflowSample};
use levee_flow::template::FieldSpec;
use levee_flow::{DecoderConfig, FlowDecoder, Output};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const EXPORTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const DATAGRAMS: usize = 1_000;
const PER_DATAGRAM: usize = 27;

fn f(id: u16, length: u16) -> FieldSpec {
    FieldSpec {
        id,
        length,
        enterprise: 0,
    }
}

/// The router-like template: 51 bytes per record.
fn fields() -> Vec<FieldSpec> {
    vec![
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(6, 1),
        f(5, 1),
        f(2, 4),
        f(1, 4),
        f(10, 4),
        f(14, 4),
        f(22, 4),
        f(21, 4),
        f(15, 4),
        f(16, 4),
        f(17, 4),
        f(9, 1),
        f(13, 1),
        f(61, 1),
        f(48, 1),
    ]
}

fn flow(i: u32) -> Flow {
    Flow {
        src: IpAddr::V4((0xc633_6400u32.wrapping_add(i.wrapping_mul(7919))).into()),
        dst: IpAddr::V4((0xcb00_7100 + i % 256).into()),
        src_port: (i % 60_000) as u16 + 1024,
        dst_port: [80, 443, 53, 123][i as usize % 4],
        protocol: [6, 6, 17, 17][i as usize % 4],
        tcp_flags: 0x18,
        packets: u64::from(i % 100 + 1),
        bytes: u64::from(i % 100 + 1) * 700,
    }
}

fn record(fl: &Flow, out: &mut Vec<u8>) {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(v) => v.octets(),
        IpAddr::V6(_) => [0; 4],
    };
    out.extend_from_slice(&v4(fl.src));
    out.extend_from_slice(&v4(fl.dst));
    out.extend_from_slice(&fl.src_port.to_be_bytes());
    out.extend_from_slice(&fl.dst_port.to_be_bytes());
    out.extend_from_slice(&[fl.protocol, fl.tcp_flags, 0]);
    out.extend_from_slice(&(fl.packets as u32).to_be_bytes());
    out.extend_from_slice(&(fl.bytes as u32).to_be_bytes());
    for v in [3u32, 4, 99_000, 99_900, 0x0a00_0001, 64_500, 64_501] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&[24, 24, 0, 1]);
}

struct Input {
    v9: Vec<Vec<u8>>,
    ipfix: Vec<Vec<u8>>,
    v5: Vec<Vec<u8>>,
    sflow: Vec<Vec<u8>>,
    v9_template: Vec<u8>,
    ipfix_template: Vec<u8>,
}

fn input() -> Input {
    let mut v9 = Vec::new();
    let mut ipfix = Vec::new();
    let mut v5 = Vec::new();
    let mut sflow = Vec::new();
    for d in 0..DATAGRAMS as u32 {
        let mut body = Vec::new();
        for i in 0..PER_DATAGRAM as u32 {
            record(&flow(d * 64 + i), &mut body);
        }
        v9.push(build::netflow9(d, 0, 1, &[build::set(256, &body)]));
        ipfix.push(build::ipfix(
            d * PER_DATAGRAM as u32,
            0,
            1,
            &[build::set(256, &body)],
        ));
        let flows: Vec<Flow> = (0..30).map(|i| flow(d * 64 + i)).collect();
        v5.push(build::netflow5(d * 30, 1, (0, 0), 0, &flows));
        let samples: Vec<SflowSample> = (0..7)
            .map(|i| {
                let mut h = build::ethernet_ipv4(&flow(d * 64 + i), 1500);
                h.resize(128, 0xab);
                SflowSample {
                    sampling_rate: 1024,
                    input: 1,
                    output: 2,
                    frame_length: 1518,
                    header: h,
                }
            })
            .collect();
        sflow.push(build::sflow(EXPORTER, 0, d, &samples));
    }
    Input {
        v9,
        ipfix,
        v5,
        sflow,
        v9_template: build::netflow9(
            0,
            0,
            1,
            &[build::set(
                0,
                &build::template_record(256, &fields(), false),
            )],
        ),
        ipfix_template: build::ipfix(
            0,
            0,
            1,
            &[build::set(2, &build::template_record(256, &fields(), true))],
        ),
    }
}

/// A decoder holding the templates.
fn primed(inp: &Input) -> FlowDecoder {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = Output::default();
    d.decode(EXPORTER, 0, &inp.v9_template, &mut out);
    d.decode(EXPORTER, 0, &inp.ipfix_template, &mut out);
    d
}

/// Decodes every datagram; returns the records.
fn pass(d: &mut FlowDecoder, dgs: &[Vec<u8>], out: &mut Output) -> usize {
    let mut n = 0;
    for dg in dgs {
        out.clear();
        d.decode(EXPORTER, 1, black_box(dg), out);
        n += out.flows.len();
    }
    n
}

fn benches(c: &mut Criterion) {
    let inp = input();
    let mut out = Output::default();
    let mut g = c.benchmark_group("flow_decode");
    g.measurement_time(Duration::from_secs(3));
    for (name, dgs, per) in [
        ("netflow9", &inp.v9, PER_DATAGRAM),
        ("ipfix", &inp.ipfix, PER_DATAGRAM),
        ("netflow5", &inp.v5, 30),
        ("sflow", &inp.sflow, 7),
    ] {
        let mut d = primed(&inp);
        g.throughput(Throughput::Elements((dgs.len() * per) as u64));
        g.bench_function(name, |b| b.iter(|| pass(&mut d, dgs, &mut out)));
    }
    g.finish();
    summary(&inp);
}

/// Best of a few timed passes, in records per second.
fn rate(mut one_pass: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut n = 0;
    for _ in 0..30 {
        let t = Instant::now();
        n = one_pass();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n as f64 / best, n)
}

fn summary(inp: &Input) {
    let machine = levee_lab::machine::describe();
    let mut out = Output::default();
    println!();
    println!("| what | how measured | result | target | machine |");
    println!("|---|---|---|---|---|");
    for (what, dgs, unit, target) in [
        (
            "NetFlow v9 decoding",
            &inp.v9,
            "records",
            ">= 5 M records/s",
        ),
        ("IPFIX decoding", &inp.ipfix, "records", ">= 5 M records/s"),
        ("NetFlow v5 decoding", &inp.v5, "records", "-"),
        (
            "sFlow v5 decoding",
            &inp.sflow,
            "samples",
            ">= 2 M samples/s",
        ),
    ] {
        let mut d = primed(inp);
        let (r, n) = rate(|| pass(&mut d, dgs, &mut out));
        let bytes: usize = dgs.iter().map(Vec::len).sum();
        println!(
            "| {what} | {} datagrams ({n} {unit}, {:.0} bytes each) in memory -> FlowRecord (sFlow: + raw header decoded to PacketMeta); 1 thread, best of 30 | {:.2} M {unit}/s ({:.0} ns per {}) | {target} | {machine} |",
            dgs.len(),
            bytes as f64 / dgs.len() as f64,
            r / 1e6,
            1e9 / r,
            unit.trim_end_matches('s'),
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
