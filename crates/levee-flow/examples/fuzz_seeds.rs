//! Writes seed inputs for the cargo-fuzz targets (`fuzz/`): the UDP
//! payloads of every capture in the shared corpus (`shared/corpus/flows`)
//! and datagrams built by `levee_flow::build`, each filed under the target
//! of its format (without the version bytes the target prepends).
//!
//! `cargo run -p levee-flow --example fuzz_seeds -- crates/levee-flow/fuzz/corpus [CORPUS_FLOWS_DIR]`

use levee_flow::build::{self, Flow, SflowSample};
use levee_flow::{detect, Version};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn write(root: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(name), data).expect("write seed");
}

/// Files a datagram under decode_any and under its format's target.
fn file(root: &Path, name: &str, dg: &[u8]) {
    write(root, "decode_any", name, dg);
    let (target, skip) = match detect(dg) {
        Some(Version::Netflow5) => ("netflow5", 2),
        Some(Version::Netflow9) => ("netflow9", 2),
        Some(Version::Ipfix) => ("ipfix", 2),
        Some(Version::Sflow5) => ("sflow", 4),
        None => return,
    };
    write(root, target, name, &dg[skip..]);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().expect("usage: fuzz_seeds OUT_DIR [FLOWS_DIR]"));
    let flows_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus/flows"));
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(&flows_dir) {
        for e in rd.flatten() {
            let path = e.path();
            let Ok(f) = std::fs::File::open(&path) else {
                continue;
            };
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let _ = levee_flow::capture::read_datagrams(f, |dg| {
                file(&root, &format!("{stem}-{}", dg.frame), dg.payload);
                n += 1;
            });
        }
    }
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let fl = Flow {
        src: ip("198.51.100.1"),
        dst: ip("203.0.113.1"),
        src_port: 53,
        dst_port: 4444,
        protocol: 17,
        tcp_flags: 0,
        packets: 10,
        bytes: 14_000,
    };
    let mut body = Vec::new();
    build::data_record(&fl, false, &mut body);
    let seeds = [
        ("built-v5", build::netflow5(1, 1, (0, 0), 100, &[fl, fl])),
        (
            "built-v9",
            build::netflow9(1, 0, 1, &[build::set(256, &body)]),
        ),
        (
            "built-ipfix",
            build::ipfix(1, 0, 1, &[build::set(256, &body)]),
        ),
        (
            "built-sflow",
            build::sflow(
                ip("192.0.2.1"),
                0,
                1,
                &[SflowSample {
                    sampling_rate: 1000,
                    input: 1,
                    output: 2,
                    frame_length: 1514,
                    header: build::ethernet_ipv4(&fl, 1500),
                }],
            ),
        ),
    ];
    for (name, dg) in &seeds {
        file(&root, name, dg);
        n += 1;
    }
    println!("{n} seeds written under {}", root.display());
}
