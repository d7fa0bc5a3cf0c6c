//! Offline analysis of a capture file (`levee pcap analyze`): read every
//! frame, extract features, pick the victim (the destination receiving the
//! most packets), classify its traffic, and summarise it as an [`Analysis`],
//! whose JSON form is the command's `--json` output.

use crate::classify::spoofing::round3;
use crate::classify::{
    classify, Classification, ClassifyConfig, Family, Fingerprint, SpoofingEstimate, Variant,
    VectorShare,
};
use crate::error::PcapError;
use crate::features::{
    port_key_parts, Counter, DecodeErrors, Extractor, FeatureConfig, Features, LengthHistogram,
    TopK,
};
use crate::meta::{key_ip, protocol_name, IpProtocol, TcpFlags};
use crate::pcap::{read_frames, read_frames_from_bytes, CaptureFormat, ReadSummary};
use crate::LinkType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

/// Settings of an analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeConfig {
    pub features: FeatureConfig,
    pub classify: ClassifyConfig,
    /// Entries in each top list.
    pub top: usize,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        AnalyzeConfig {
            // Offline there is time and memory for a larger sample and more
            // destinations than the agent's per-tick defaults.
            features: FeatureConfig {
                sample_size: 4096,
                max_targets: 256,
                admit_after: 1,
                ..FeatureConfig::default()
            },
            classify: ClassifyConfig::default(),
            top: 10,
        }
    }
}

/// A source or destination address and its packets.
///
/// Top lists are counted in bounded memory (Space-Saving): `packets` is a
/// guaranteed lower bound and `packets_max` an upper bound; they are equal
/// when the count is exact. Entries are ordered by `packets`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Talker {
    pub address: IpAddr,
    pub packets: u64,
    pub packets_max: u64,
    /// `packets` as a share of the victim's packets (of all packets, for
    /// destinations).
    pub share: f64,
}

/// A transport port and its packets (bounds as for [`Talker`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortCount {
    pub protocol: IpProtocol,
    pub port: u16,
    pub packets: u64,
    pub packets_max: u64,
}

/// Counters by guaranteed count, largest first, without the ones that only
/// inherited another key's count.
fn ranked<K: Copy + Eq>(t: &TopK<K>, n: usize) -> Vec<Counter<K>> {
    let mut v: Vec<Counter<K>> = t.top().into_iter().filter(|c| c.guaranteed() > 0).collect();
    v.sort_by(|a, b| {
        b.guaranteed()
            .cmp(&a.guaranteed())
            .then(b.count.cmp(&a.count))
    });
    v.truncate(n);
    v
}

/// The `n` heaviest sources of `f`, with their share of its packets.
pub fn top_sources(f: &Features, n: usize) -> Vec<Talker> {
    ranked(&f.top_sources, n)
        .into_iter()
        .map(|c| Talker {
            address: key_ip(c.key),
            packets: c.guaranteed(),
            packets_max: c.count,
            share: if f.packets == 0 {
                0.0
            } else {
                round3(c.guaranteed() as f64 / f.packets as f64)
            },
        })
        .collect()
}

/// One bucket of the packet size histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeBucket {
    /// Inclusive IP total length range.
    pub range: [u16; 2],
    pub packets: u64,
}

/// IP total length statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeStats {
    pub min: u16,
    pub max: u16,
    pub mean: f64,
    pub histogram: Vec<SizeBucket>,
}

/// TTL / hop limit statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TtlStats {
    pub min: u8,
    pub max: u8,
    /// Most frequent values, largest first.
    pub top: Vec<TtlCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TtlCount {
    pub ttl: u8,
    pub packets: u64,
}

/// Decode failures, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Undecodable {
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub unsupported_link: u64,
}

/// What `levee pcap analyze --json` prints. The classification and every
/// statistic describe the victim's traffic; `packets` counts the whole file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Frames in the capture.
    pub packets: u64,
    /// Frames that decoded as IP.
    pub ip_packets: u64,
    pub undecodable: Undecodable,
    pub format: CaptureFormat,
    /// The file ended mid-record (everything before was read).
    pub truncated: bool,
    pub duration_s: f64,
    /// The destination with the most packets.
    pub victim: Option<IpAddr>,
    pub victim_packets: u64,
    pub victim_bytes: u64,
    /// `null` when the capture holds no IP packet.
    pub family: Option<Family>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    pub confidence: u8,
    pub fingerprint: Option<Fingerprint>,
    pub spoofing: Option<SpoofingEstimate>,
    pub vectors: Vec<VectorShare>,
    pub reasons: Vec<String>,
    pub top_sources: Vec<Talker>,
    pub top_destinations: Vec<Talker>,
    pub top_source_ports: Vec<PortCount>,
    pub top_destination_ports: Vec<PortCount>,
    /// Packets per IP protocol (name, or number when unnamed).
    pub protocols: BTreeMap<String, u64>,
    /// TCP packets per exact flag combination (`S`, `SA`, `PA`...).
    pub tcp_flags: BTreeMap<String, u64>,
    pub packet_sizes: SizeStats,
    pub ttl: TtlStats,
    pub fragments: u64,
    pub fragment_share: f64,
    /// Distinct sources (HyperLogLog estimate).
    pub distinct_sources: u64,
    pub source_entropy_bits: f64,
}

/// Analyses a capture file.
pub fn analyze_path(path: impl AsRef<Path>, cfg: &AnalyzeConfig) -> Result<Analysis, PcapError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| PcapError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    analyze(file, cfg)
}

/// Analyses a capture from a reader (pcap or pcapng).
pub fn analyze<R: Read>(reader: R, cfg: &AnalyzeConfig) -> Result<Analysis, PcapError> {
    let mut x = Extractor::new(cfg.features.clone());
    let sum = read_frames(reader, |fr| observe(&mut x, fr.ts_ns, fr.linktype, fr.data))?;
    Ok(summarise(&x, sum, cfg))
}

/// Analyses an in-memory capture.
pub fn analyze_bytes(bytes: &[u8], cfg: &AnalyzeConfig) -> Result<Analysis, PcapError> {
    let mut x = Extractor::new(cfg.features.clone());
    let sum = read_frames_from_bytes(bytes, |fr| observe(&mut x, fr.ts_ns, fr.linktype, fr.data))?;
    Ok(summarise(&x, sum, cfg))
}

#[inline]
fn observe(x: &mut Extractor, ts_ns: u64, linktype: u32, data: &[u8]) {
    // A frame that doesn't decode is counted by the extractor; an analysis
    // reports those counts rather than stopping.
    match LinkType::from_linktype(linktype) {
        Ok(link) => {
            let _ = x.observe_frame(ts_ns, link, data);
        }
        Err(e) => x.count_error(&e),
    }
}

/// Builds the [`Analysis`] of a finished extraction.
pub fn summarise(x: &Extractor, sum: ReadSummary, cfg: &AnalyzeConfig) -> Analysis {
    let iface = x.interface();
    let victim = x.top_target();
    let f: &Features = victim.map_or(iface, |(_, f)| f);
    let classification: Option<Classification> = classify(f, None, &cfg.classify);
    let errs: &DecodeErrors = x.decode_errors();
    let share = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            round3(n as f64 / of as f64)
        }
    };

    let top_sources = top_sources(f, cfg.top);
    let top_destinations = x
        .top_destinations(cfg.top)
        .into_iter()
        .map(|(address, packets)| Talker {
            address,
            packets,
            packets_max: packets,
            share: share(packets, iface.packets),
        })
        .collect();
    let ports = |t: &TopK<u32>| -> Vec<PortCount> {
        ranked(t, cfg.top)
            .into_iter()
            .map(|c| {
                let (p, port) = port_key_parts(c.key);
                PortCount {
                    protocol: IpProtocol(p),
                    port,
                    packets: c.guaranteed(),
                    packets_max: c.count,
                }
            })
            .collect()
    };
    let protocols = (0..=255u8)
        .filter(|&p| f.protocols[usize::from(p)] > 0)
        .map(|p| {
            let name = protocol_name(p).map_or_else(|| p.to_string(), String::from);
            (name, f.protocols[usize::from(p)])
        })
        .collect();
    let tcp_flags = (0..=255u8)
        .filter(|&v| f.tcp_flags[usize::from(v)] > 0)
        .map(|v| (TcpFlags(v).to_string(), f.tcp_flags[usize::from(v)]))
        .collect();
    let packet_sizes = SizeStats {
        min: if f.packets == 0 { 0 } else { f.lengths.min },
        max: f.lengths.max,
        mean: if f.packets == 0 {
            0.0
        } else {
            round3(f.bytes as f64 / f.packets as f64)
        },
        histogram: f
            .lengths
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &packets)| SizeBucket {
                range: LengthHistogram::bucket_range(i),
                packets,
            })
            .collect(),
    };
    let mut ttl_top: Vec<TtlCount> = (0..=255u8)
        .filter(|&t| f.ttl[usize::from(t)] > 0)
        .map(|t| TtlCount {
            ttl: t,
            packets: f.ttl[usize::from(t)],
        })
        .collect();
    let ttl_min = ttl_top.first().map_or(0, |t| t.ttl);
    let ttl_max = ttl_top.last().map_or(0, |t| t.ttl);
    ttl_top.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.ttl.cmp(&b.ttl)));
    ttl_top.truncate(cfg.top);

    let (family, variant, confidence, fingerprint, spoofing, vectors, reasons) =
        match classification {
            Some(c) => (
                Some(c.family),
                c.variant,
                c.confidence,
                c.fingerprint,
                Some(c.spoofing),
                c.vectors,
                c.reasons,
            ),
            None => (
                None,
                None,
                0,
                None,
                None,
                Vec::new(),
                vec!["no IP packets".to_string()],
            ),
        };

    Analysis {
        packets: sum.frames,
        ip_packets: iface.packets,
        undecodable: Undecodable {
            not_ip: errs.not_ip,
            truncated: errs.truncated,
            malformed: errs.malformed,
            unsupported_link: errs.unsupported_link,
        },
        format: sum.format,
        truncated: sum.truncated,
        duration_s: if iface.packets == 0 {
            0.0
        } else {
            round3(iface.last_ns.saturating_sub(iface.first_ns) as f64 / 1e9)
        },
        victim: victim.map(|(ip, _)| ip),
        victim_packets: f.packets,
        victim_bytes: f.bytes,
        family,
        variant,
        confidence,
        fingerprint,
        spoofing,
        vectors,
        reasons,
        top_sources,
        top_destinations,
        top_source_ports: ports(&f.top_src_ports),
        top_destination_ports: ports(&f.top_dst_ports),
        protocols,
        tcp_flags,
        packet_sizes,
        ttl: TtlStats {
            min: ttl_min,
            max: ttl_max,
            top: ttl_top,
        },
        fragments: f.fragments,
        fragment_share: round3(f.fragment_share()),
        distinct_sources: f.distinct_sources(),
        source_entropy_bits: round3(f.source_entropy_bits()),
    }
}
