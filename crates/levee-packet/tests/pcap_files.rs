//! Reading captures: pcap and pcapng, link types, timestamp resolutions,
//! truncated and foreign files.

mod support;

use levee_packet::pcap::{read_frames, read_frames_from_bytes, CaptureFormat};
use levee_packet::{analyze_bytes, AnalyzeConfig, Family, PcapError, Transport};
use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgWriter};
use pcap_file::{DataLink, TsResolution};
use std::borrow::Cow;
use std::time::Duration;
use support::frames::*;

fn syn_frames(n: usize) -> Vec<Vec<u8>> {
    let mut r = Lcg(42);
    (0..n)
        .map(|_| tcp(r.ip(), r.port(), 443, "S", 0, 250))
        .collect()
}

fn pcap_file(link: DataLink, res: TsResolution, frames: &[Vec<u8>], snaplen: u32) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        ts_resolution: res,
        snaplen,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let frac = match res {
            TsResolution::MicroSecond => 500_000,
            TsResolution::NanoSecond => 500_000_000,
        };
        let keep = f.len().min(snaplen as usize);
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: 1_700_000_000 + i as u32,
            ts_frac: frac,
            incl_len: keep as u32,
            orig_len: f.len() as u32,
            data: Cow::Borrowed(&f[..keep]),
        })
        .unwrap();
    }
    w.into_writer()
}

fn pcapng_file(tsresol: Option<u8>, frames: &[Vec<u8>], raw_ts: impl Fn(usize) -> u64) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0xffff);
    if let Some(r) = tsresol {
        idb.options.push(InterfaceDescriptionOption::IfTsResol(r));
    }
    w.write_block(&Block::InterfaceDescription(idb)).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            // pcap-file writes this value's nanoseconds as the raw 64-bit
            // timestamp, in the interface's units.
            timestamp: Duration::from_nanos(raw_ts(i)),
            original_len: f.len() as u32,
            data: Cow::Borrowed(f),
            options: vec![],
        };
        w.write_block(&Block::EnhancedPacket(epb)).unwrap();
    }
    w.into_inner()
}

#[test]
fn pcap_micro_and_nano_timestamps() {
    let frames = syn_frames(3);
    for res in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
        let file = pcap_file(DataLink::ETHERNET, res, &frames, 65_535);
        let mut ts = Vec::new();
        let sum = read_frames_from_bytes(&file, |f| ts.push(f.ts_ns)).unwrap();
        assert_eq!(sum.frames, 3);
        assert_eq!(sum.format, CaptureFormat::Pcap);
        assert_eq!(ts[0], 1_700_000_000_500_000_000);
        assert_eq!(ts[2] - ts[0], 2_000_000_000);
    }
}

#[test]
fn pcapng_timestamps_follow_if_tsresol() {
    let frames = syn_frames(2);
    // Default resolution: microseconds.
    let us = pcapng_file(None, &frames, |i| 1_700_000_000_000_000 + i as u64 * 1_000);
    // if_tsresol 9: nanoseconds.
    let ns = pcapng_file(Some(9), &frames, |i| {
        1_700_000_000_000_000_000 + i as u64 * 1_000_000
    });
    // if_tsresol 0x8a: 2^-10 s units.
    let bin = pcapng_file(Some(0x8a), &frames, |i| {
        (1_700_000_000u64 << 10) + i as u64 * 1024
    });
    for file in [us, ns, bin] {
        let mut ts = Vec::new();
        let sum = read_frames_from_bytes(&file, |f| {
            assert!(f.decode().is_ok());
            ts.push(f.ts_ns)
        })
        .unwrap();
        assert_eq!(sum.format, CaptureFormat::Pcapng);
        assert_eq!(ts[0] / 1_000_000_000, 1_700_000_000, "{ts:?}");
        assert!(ts[1] > ts[0]);
        // Streaming gives the same frames.
        let mut ts2 = Vec::new();
        read_frames(std::io::Cursor::new(&file), |f| ts2.push(f.ts_ns)).unwrap();
        assert_eq!(ts, ts2);
    }
}

#[test]
fn pcapng_is_analyzed_like_pcap() {
    let frames = syn_frames(400);
    let ng = pcapng_file(Some(9), &frames, |i| i as u64 * 1_000);
    let classic = pcap_file(
        DataLink::ETHERNET,
        TsResolution::NanoSecond,
        &frames,
        65_535,
    );
    let cfg = AnalyzeConfig::default();
    let a = analyze_bytes(&ng, &cfg).unwrap();
    let b = analyze_bytes(&classic, &cfg).unwrap();
    assert_eq!(a.family, Some(Family::SynFlood));
    assert_eq!(a.family, b.family);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.packets, 400);
}

#[test]
fn raw_ip_and_cooked_link_types() {
    let frames = syn_frames(5);
    let raw: Vec<Vec<u8>> = frames.iter().map(|f| f[14..].to_vec()).collect();
    let file = pcap_file(DataLink::RAW, TsResolution::MicroSecond, &raw, 65_535);
    let mut n = 0;
    read_frames_from_bytes(&file, |f| {
        let m = f.decode().unwrap();
        assert!(matches!(m.transport, Transport::Tcp { dst_port: 443, .. }));
        n += 1;
    })
    .unwrap();
    assert_eq!(n, 5);

    // Linux cooked (SLL): 16-byte header, protocol at offset 14.
    let sll: Vec<Vec<u8>> = raw
        .iter()
        .map(|ip| {
            let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
            f.extend_from_slice(ip);
            f
        })
        .collect();
    let file = pcap_file(DataLink::LINUX_SLL, TsResolution::MicroSecond, &sll, 65_535);
    let mut ok = 0;
    read_frames_from_bytes(&file, |f| ok += usize::from(f.decode().is_ok())).unwrap();
    assert_eq!(ok, 5);
}

#[test]
fn snaplen_truncated_records_still_decode() {
    // tcpdump -s 64: records shorter than the packets, orig_len > snaplen.
    let payload = dns_response(1000);
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| udp([192, 0, 2, i], 53, 4444, &payload, 50))
        .collect();
    let file = pcap_file(DataLink::ETHERNET, TsResolution::MicroSecond, &frames, 64);
    let mut metas = Vec::new();
    read_frames_from_bytes(&file, |f| {
        assert_eq!(f.data.len(), 64);
        assert!(f.orig_len > 1000);
        metas.push(f.decode().unwrap());
    })
    .unwrap();
    assert_eq!(metas.len(), 3);
    assert_eq!(
        metas[0].ip_len,
        20 + 8 + 1000,
        "length from the header, not the capture"
    );
    assert_eq!(metas[0].payload_len, 1000);
}

#[test]
fn cut_off_file_reads_complete_records() {
    let frames = syn_frames(10);
    let file = pcap_file(
        DataLink::ETHERNET,
        TsResolution::MicroSecond,
        &frames,
        65_535,
    );
    let cut = &file[..file.len() - 20];
    let sum = read_frames_from_bytes(cut, |_| {}).unwrap();
    assert_eq!(sum.frames, 9);
    assert!(sum.truncated);
    let sum = read_frames(std::io::Cursor::new(cut), |_| {}).unwrap();
    assert_eq!(sum.frames, 9);
    assert!(sum.truncated);
}

#[test]
fn foreign_files_are_typed_errors() {
    let err = read_frames_from_bytes(b"GIF89a....", |_| {}).unwrap_err();
    assert!(matches!(err, PcapError::UnknownFormat(_)), "{err}");
    assert!(err.to_string().contains("not a pcap"));
    let err = read_frames(std::io::Cursor::new(b"ab"), |_| {}).unwrap_err();
    assert!(matches!(err, PcapError::UnknownFormat(_)));
    let err =
        levee_packet::analyze_path("/nonexistent/x.pcap", &AnalyzeConfig::default()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.pcap"), "{err}");
}

#[test]
fn non_ip_frames_are_counted_not_fatal() {
    let mut frames = syn_frames(20);
    let mut arp = vec![0xffu8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    frames.push(arp);
    let file = pcap_file(
        DataLink::ETHERNET,
        TsResolution::MicroSecond,
        &frames,
        65_535,
    );
    let a = analyze_bytes(&file, &AnalyzeConfig::default()).unwrap();
    assert_eq!(a.packets, 21);
    assert_eq!(a.ip_packets, 20);
    assert_eq!(a.undecodable.not_ip, 1);
}

#[test]
fn empty_capture_has_no_family() {
    let file = pcap_file(DataLink::ETHERNET, TsResolution::MicroSecond, &[], 65_535);
    let a = analyze_bytes(&file, &AnalyzeConfig::default()).unwrap();
    assert_eq!(a.packets, 0);
    assert_eq!(a.family, None);
    assert!(a.fingerprint.is_none());
}
