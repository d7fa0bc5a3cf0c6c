//! Feature extraction throughput from an in-memory capture (BRIEF target:
//! at least 5 Mpps per core). Input: the spoofed SYN flood of the corpus
//! (37,841 frames), read once into memory.
//!
//! Measured, single thread:
//! - `decode`: frame bytes -> PacketMeta only;
//! - `extract`: decode + interface and per-target features (what the agent
//!   does per sampled packet);
//! - `pcap+extract`: the above plus parsing pcap records from the in-memory
//!   file (what `levee pcap analyze` does).
//!
//! Run: `cargo bench -p levee-packet --bench extract`. Besides Criterion's
//! report it prints a summary table (what, how, result, machine).

use criterion::{criterion_group, Criterion, Throughput};
use levee_packet::pcap::read_frames_from_bytes;
use levee_packet::{decode, Extractor, FeatureConfig, LinkType};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "../tests/support/corpus.rs"]
mod corpus;

const CAPTURE: &str = "stopddos-pkt.TCP.synflood.spoofed.pcap";

struct Input {
    file: Vec<u8>,
    frames: Vec<(u64, Vec<u8>)>,
}

fn input() -> Option<Input> {
    let path = corpus::attack(CAPTURE)?;
    let file = std::fs::read(&path).ok()?;
    let mut frames = Vec::new();
    read_frames_from_bytes(&file, |f| frames.push((f.ts_ns, f.data.to_vec()))).ok()?;
    Some(Input { file, frames })
}

fn extract_all(frames: &[(u64, Vec<u8>)], x: &mut Extractor) {
    x.reset();
    for (ts, data) in frames {
        let _ = x.observe_frame(*ts, LinkType::Ethernet, data);
    }
}

fn benches(c: &mut Criterion) {
    let Some(inp) = input() else { return };
    let n = inp.frames.len() as u64;
    let mut g = c.benchmark_group("syn_flood_capture");
    g.throughput(Throughput::Elements(n));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for (_, d) in &inp.frames {
                let _ = black_box(decode(LinkType::Ethernet, black_box(d)));
            }
        })
    });
    let mut x = Extractor::new(FeatureConfig::default());
    g.bench_function("extract", |b| {
        b.iter(|| extract_all(black_box(&inp.frames), &mut x))
    });
    g.bench_function("pcap+extract", |b| {
        b.iter(|| {
            x.reset();
            let _ = read_frames_from_bytes(black_box(&inp.file), |f| {
                let _ = x.observe_frame(f.ts_ns, LinkType::Ethernet, f.data);
            });
        })
    });
    g.finish();
    summary(&inp);
}

/// Best of a few timed passes, in packets per second.
fn pps(n: u64, mut pass: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = Instant::now();
        pass();
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best
}

fn summary(inp: &Input) {
    let n = inp.frames.len() as u64;
    let mut x = Extractor::new(FeatureConfig::default());
    let decode_pps = pps(n, || {
        for (_, d) in &inp.frames {
            let _ = black_box(decode(LinkType::Ethernet, d));
        }
    });
    let extract_pps = pps(n, || extract_all(&inp.frames, &mut x));
    let file_pps = pps(n, || {
        x.reset();
        let _ = read_frames_from_bytes(&inp.file, |f| {
            let _ = x.observe_frame(f.ts_ns, LinkType::Ethernet, f.data);
        });
    });
    let machine = machine();
    println!();
    println!("| what | how measured | result | target | machine |");
    println!("|---|---|---|---|---|");
    for (what, how, v) in [
        ("decode", "frames in memory -> PacketMeta", decode_pps),
        (
            "feature extraction",
            "frames in memory -> decode + interface and per-target features",
            extract_pps,
        ),
        (
            "pcap + extraction",
            "pcap file in memory -> records -> decode + features",
            file_pps,
        ),
    ] {
        println!(
            "| {what} | {how}; {CAPTURE}, {n} packets, 1 thread, best of 20 | {:.1} Mpps | >= 5 Mpps | {machine} |",
            v / 1e6
        );
    }
    println!("(no peer figure: FastNetMon publishes none for offline extraction)");
}

fn machine() -> String {
    levee_lab::machine::describe()
}

criterion_group!(extract, benches);

fn main() {
    extract();
    Criterion::default().configure_from_args().final_summary();
}
