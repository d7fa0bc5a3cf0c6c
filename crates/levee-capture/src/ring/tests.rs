//! Ring tests: wraparound, time selection, bounded memory, pcap output
//! checked with pcap-file and, when installed, tcpdump and tshark.

use super::*;
use crate::testutil::syn_frame;
use std::process::Command;

fn frame(ts_ns: u64, data: &[u8]) -> Frame<'_> {
    Frame {
        ts_ns,
        linktype: LINKTYPE_ETHERNET,
        wire_len: data.len() as u32,
        data,
        ifindex: 1,
    }
}

fn small(capacity: usize) -> PcapRing {
    PcapRing::new(RingConfig {
        capacity,
        snaplen: 64,
    })
}

#[test]
fn wraps_around_keeping_the_newest() {
    let mut r = small(3);
    for i in 0..5u8 {
        assert!(r.push(&frame(u64::from(i), &syn_frame(i, None)), 1));
    }
    assert_eq!(r.len(), 3);
    let ts: Vec<u64> = r.iter().map(|(ts, ..)| ts).collect();
    assert_eq!(ts, [2, 3, 4]);
    // Contents moved with the slots: source address byte is the index.
    let srcs: Vec<u8> = r.iter().map(|(_, _, d, _)| d[14 + 15]).collect();
    assert_eq!(srcs, [2, 3, 4]);
}

#[test]
fn truncates_to_slot_and_keeps_wire_len() {
    let mut r = PcapRing::new(RingConfig {
        capacity: 2,
        snaplen: 16,
    });
    let big = vec![0xaa; 1500];
    r.push(&frame(1, &big), 7);
    let (_, wire, data, rate) = r.iter().next().unwrap();
    assert_eq!((wire, data.len(), rate), (1500, 16 + VLAN_HLEN, 7));
}

#[test]
fn memory_is_preallocated_and_bounded() {
    let mut r = PcapRing::new(RingConfig::default());
    assert_eq!(r.capacity(), 10_000);
    assert_eq!(r.data_bytes(), 10_000 * (256 + VLAN_HLEN));
    let big = vec![0u8; 9000];
    for i in 0..25_000u64 {
        r.push(&frame(i, &big), 1);
    }
    assert_eq!(r.len(), 10_000);
    assert_eq!(r.data_bytes(), 10_000 * (256 + VLAN_HLEN));
}

#[test]
fn refuses_non_ethernet() {
    let mut r = small(2);
    let mut f = frame(1, &[0x45, 0, 0, 20]);
    f.linktype = 101;
    assert!(!r.push(&f, 1));
    assert_eq!((r.len(), r.rejected()), (0, 1));
}

fn filled(n: u64) -> PcapRing {
    let mut r = small(100);
    for i in 0..n {
        let data = syn_frame((i % 200) as u8, (i % 2 == 0).then_some(42));
        r.push(&frame(1_700_000_000_000_000_000 + i * 1_000_000, &data), 10);
    }
    r
}

fn read_back(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let f = std::fs::File::open(path).unwrap();
    levee_packet::pcap::read_frames(f, |fr| {
        assert_eq!(fr.linktype, 1);
        out.push((fr.ts_ns, fr.data.to_vec()));
    })
    .unwrap();
    out
}

#[test]
fn writes_frames_from_a_time_with_a_limit() {
    let r = filled(150); // keeps frames 50..150
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incident.pcap");
    let t0 = 1_700_000_000_000_000_000u64;
    let sum = r.write_pcap(&path, t0 + 120 * 1_000_000, 10_000).unwrap();
    assert_eq!(sum.frames, 30);
    assert_eq!(sum.first_ts_ns, Some(t0 + 120 * 1_000_000));
    assert_eq!(sum.max_sampling_rate, 10);
    let back = read_back(&path);
    assert_eq!(back.len(), 30);
    assert_eq!(back[0].0, t0 + 120 * 1_000_000);
    // Decodes as the SYN it was, VLAN tag preserved on even frames.
    let meta = levee_packet::decode(levee_packet::LinkType::Ethernet, &back[0].1).unwrap();
    assert_eq!(meta.vlan, Some(42));
    assert_eq!(meta.dst_port(), Some(80));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    // Limit keeps the earliest frames after from_ts.
    let sum = r.write_pcap(&path, 0, 7).unwrap();
    assert_eq!(sum.frames, 7);
    assert_eq!(sum.first_ts_ns, Some(t0 + 50 * 1_000_000));
    assert_eq!(read_back(&path).len(), 7);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn write_error_names_the_path() {
    let r = filled(3);
    let e = r
        .write_pcap(Path::new("/nonexistent-dir/x.pcap"), 0, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent-dir/x.pcap"), "{e}");
}

/// Packets counted by an external reader, or None when it is not installed.
fn count_with(tool: &str, args: &[&str], path: &Path) -> Option<usize> {
    let out = Command::new(tool).args(args).arg(path).output().ok()?;
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}

#[test]
fn tcpdump_and_tshark_read_it() {
    let r = filled(150);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incident.pcap");
    r.write_pcap(&path, 0, 10_000).unwrap();
    let mut checked = 0;
    // -r reads the file; -n no name resolution.
    if let Some(n) = count_with("tcpdump", &["-n", "-r"], &path) {
        assert_eq!(n, 100);
        checked += 1;
    }
    if let Some(n) = count_with("tshark", &["-n", "-r"], &path) {
        assert_eq!(n, 100);
        checked += 1;
    }
    if checked == 0 {
        eprintln!("NOTE: neither tcpdump nor tshark installed; pcap checked with pcap-file only");
    }
}
