//! Traffic features over a window: per destination IP (the possible victim)
//! and for the whole interface.
//!
//! [`Extractor`] takes decoded packets ([`PacketMeta`]) and keeps one
//! [`Features`] for the interface plus one per tracked destination. Every
//! structure is bounded whatever the input: counters are fixed arrays, top
//! talkers/ports use Space-Saving ([`topk`]), distinct sources a HyperLogLog
//! ([`hll`]), and the packet sample a reservoir ([`sample`]). The number of
//! tracked destinations is capped ([`FeatureConfig::max_targets`]); a
//! destination is admitted once it has received
//! [`FeatureConfig::admit_after`] packets, so a flood aimed at random
//! destinations cannot fill the table with one-packet targets.
//!
//! Memory: about 22 KiB + 2^p (HLL) + 32 x `sample_size` bytes per
//! [`Features`] (58 KiB with the defaults), times `max_targets + 1`: under
//! 4 MiB with the defaults.

pub mod bloom;
pub mod class;
pub mod hll;
pub mod sample;
pub mod topk;

pub use bloom::Bloom;
pub use class::{AmpService, Class};
pub use hll::HyperLogLog;
pub use sample::{FragKind, Reservoir, Sample};
pub use topk::{Counter, TopK};

use crate::decode::{decode, LinkType};
use crate::error::DecodeError;
use crate::meta::{ip_key, key_ip, proto, PacketMeta};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// Sizes of the bounded structures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureConfig {
    /// Counters per top-k list (sources, source ports, destination ports).
    pub top_k: usize,
    /// HyperLogLog precision p (2^p registers).
    pub hll_precision: u8,
    /// Packets kept in each reservoir sample.
    pub sample_size: usize,
    /// Destination IPs tracked with full features.
    pub max_targets: usize,
    /// Packets a destination must receive before it is tracked.
    pub admit_after: u64,
    /// Seed of the reservoir samplers (fixed: replays give the same sample).
    pub seed: u64,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            top_k: 16,
            hll_precision: 12,
            sample_size: 1024,
            max_targets: 64,
            admit_after: 4,
            seed: 0x1e7e_e5a3_9c0f_f1ce,
        }
    }
}

/// Precision of the per-class source sketches (256 registers).
const CLASS_HLL_P: u8 = 8;
/// Precision of the ACK flow sketch (1024 registers).
const FLOW_HLL_P: u8 = 10;

/// Upper bounds (inclusive) of the packet-length histogram buckets, in bytes
/// of IP total length; the last bucket takes everything above 1500.
pub const LENGTH_BUCKETS: [u16; 6] = [64, 128, 256, 512, 1024, 1500];

/// Histogram of IP total lengths, with min and max.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthHistogram {
    pub buckets: [u64; LENGTH_BUCKETS.len() + 1],
    pub min: u16,
    pub max: u16,
}

impl Default for LengthHistogram {
    fn default() -> Self {
        LengthHistogram {
            buckets: [0; LENGTH_BUCKETS.len() + 1],
            min: u16::MAX,
            max: 0,
        }
    }
}

impl LengthHistogram {
    #[inline]
    pub fn add(&mut self, len: u16) {
        self.add_weighted(len, 1);
    }

    /// Counts `weight` packets of length `len`.
    #[inline]
    pub fn add_weighted(&mut self, len: u16, weight: u64) {
        let i = LENGTH_BUCKETS
            .iter()
            .position(|&b| len <= b)
            .unwrap_or(LENGTH_BUCKETS.len());
        self.buckets[i] += weight;
        self.min = self.min.min(len);
        self.max = self.max.max(len);
    }

    /// `[low, high]` of bucket `i` (high = 65535 for the last).
    pub fn bucket_range(i: usize) -> [u16; 2] {
        let low = if i == 0 {
            0
        } else {
            LENGTH_BUCKETS.get(i - 1).map_or(u16::MAX, |b| b + 1)
        };
        let high = LENGTH_BUCKETS.get(i).copied().unwrap_or(u16::MAX);
        [low, high]
    }
}

/// A (protocol, port) key for the port top-k lists.
pub fn port_key(protocol: u8, port: u16) -> u32 {
    (u32::from(protocol) << 16) | u32::from(port)
}

/// Splits a [`port_key`].
pub fn port_key_parts(key: u32) -> (u8, u16) {
    ((key >> 16) as u8, key as u16)
}

/// Features of one aggregation (an interface, or one destination) over a
/// window. Built by [`Extractor`]; read by [`crate::classify()`].
#[derive(Debug, Clone)]
pub struct Features {
    pub packets: u64,
    /// Sum of IP total lengths.
    pub bytes: u64,
    /// Timestamps of the earliest and latest packet (ns; 0 when empty).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Packets and bytes per [`Class`] (indexed by [`Class::index`]).
    pub class_packets: [u64; Class::COUNT],
    pub class_bytes: [u64; Class::COUNT],
    /// First fragments per class (they are counted in their class too).
    pub class_first_fragments: [u64; Class::COUNT],
    pub class_first_fragment_bytes: [u64; Class::COUNT],
    /// Non-first fragments of UDP datagrams.
    pub tail_fragments_udp: u64,
    /// Packets from an amplification port whose payload looks like that
    /// service's response (indexed by [`AmpService::index`]).
    pub amp_signature: [u64; AmpService::ALL.len()],
    /// Packets per IP protocol number.
    pub protocols: [u64; 256],
    /// TCP packets per exact flag byte.
    pub tcp_flags: [u64; 256],
    /// Packets per TTL / hop limit.
    pub ttl: [u64; 256],
    pub lengths: LengthHistogram,
    /// Fragments of any kind (first and later).
    pub fragments: u64,
    pub sources: HyperLogLog,
    /// Distinct sources per class (small sketches, ~6% error): how many
    /// senders each vector has, for the spoofing estimate.
    pub class_sources: Vec<HyperLogLog>,
    /// Distinct (source, source port) pairs among ACK / FIN-ACK packets:
    /// established traffic comes in flows, floods don't.
    pub ack_flows: HyperLogLog,
    /// Sources that sent ACK / FIN-ACK packets: SYNs from them belong to
    /// handshakes that complete.
    pub established_sources: Bloom,
    pub top_sources: TopK<u128>,
    pub top_src_ports: TopK<u32>,
    pub top_dst_ports: TopK<u32>,
    pub sample: Reservoir<Sample>,
}

impl Features {
    pub fn new(cfg: &FeatureConfig, seed: u64) -> Self {
        Features {
            packets: 0,
            bytes: 0,
            first_ns: 0,
            last_ns: 0,
            class_packets: [0; Class::COUNT],
            class_bytes: [0; Class::COUNT],
            class_first_fragments: [0; Class::COUNT],
            class_first_fragment_bytes: [0; Class::COUNT],
            tail_fragments_udp: 0,
            amp_signature: [0; AmpService::ALL.len()],
            protocols: [0; 256],
            tcp_flags: [0; 256],
            ttl: [0; 256],
            lengths: LengthHistogram::default(),
            fragments: 0,
            sources: HyperLogLog::new(cfg.hll_precision),
            class_sources: vec![HyperLogLog::new(CLASS_HLL_P); Class::COUNT],
            ack_flows: HyperLogLog::new(FLOW_HLL_P),
            established_sources: Bloom::default(),
            top_sources: TopK::new(cfg.top_k),
            top_src_ports: TopK::new(cfg.top_k),
            top_dst_ports: TopK::new(cfg.top_k),
            sample: Reservoir::new(cfg.sample_size, seed),
        }
    }

    /// Empties every counter, keeping the allocations.
    pub fn clear(&mut self) {
        self.packets = 0;
        self.bytes = 0;
        self.first_ns = 0;
        self.last_ns = 0;
        self.class_packets = [0; Class::COUNT];
        self.class_bytes = [0; Class::COUNT];
        self.class_first_fragments = [0; Class::COUNT];
        self.class_first_fragment_bytes = [0; Class::COUNT];
        self.tail_fragments_udp = 0;
        self.amp_signature = [0; AmpService::ALL.len()];
        self.protocols = [0; 256];
        self.tcp_flags = [0; 256];
        self.ttl = [0; 256];
        self.lengths = LengthHistogram::default();
        self.fragments = 0;
        self.sources.clear();
        for h in &mut self.class_sources {
            h.clear();
        }
        self.ack_flows.clear();
        self.established_sources.clear();
        self.top_sources.clear();
        self.top_src_ports.clear();
        self.top_dst_ports.clear();
        self.sample.clear();
    }

    /// Adds one packet. `class`, `src_key` and `src_hash` are computed once
    /// per packet by the caller and shared by every aggregation it updates.
    #[inline]
    pub fn observe(
        &mut self,
        ts_ns: u64,
        m: &PacketMeta,
        class: Class,
        src_key: u128,
        src_hash: u64,
    ) {
        self.observe_weighted(ts_ns, m, class, src_key, src_hash, 1);
    }

    /// Adds `weight` packets alike (a flow record or a sampled packet
    /// standing for many): every counter and top-k list counts `weight`;
    /// the distinct-source sketches and the packet sample see it once.
    #[inline]
    pub fn observe_weighted(
        &mut self,
        ts_ns: u64,
        m: &PacketMeta,
        class: Class,
        src_key: u128,
        src_hash: u64,
        weight: u64,
    ) {
        let w = weight.max(1);
        if self.packets == 0 {
            self.first_ns = ts_ns;
            self.last_ns = ts_ns;
        } else {
            // Captures are nearly but not always in time order.
            self.first_ns = self.first_ns.min(ts_ns);
            self.last_ns = self.last_ns.max(ts_ns);
        }
        self.packets += w;
        let len = u64::from(m.ip_len) * w;
        self.bytes += len;
        let ci = class.index();
        self.class_packets[ci] += w;
        self.class_bytes[ci] += len;
        if let Some(f) = m.fragment {
            self.fragments += w;
            if f.offset == 0 {
                self.class_first_fragments[ci] += w;
                self.class_first_fragment_bytes[ci] += len;
            } else if m.protocol == proto::UDP {
                self.tail_fragments_udp += w;
            }
        }
        if let Some(svc) = class.amp_service() {
            if svc.payload_matches(m.payload_head.as_slice()) {
                self.amp_signature[svc.index()] += w;
            }
        }
        self.protocols[usize::from(m.protocol)] += w;
        if let Some(flags) = m.tcp_flags() {
            self.tcp_flags[usize::from(flags.0)] += w;
        }
        self.ttl[usize::from(m.ttl)] += w;
        self.lengths.add_weighted(m.ip_len, w);
        self.sources.insert_hash(src_hash);
        if let Some(h) = self.class_sources.get_mut(ci) {
            h.insert_hash(src_hash);
        }
        if matches!(class, Class::TcpAck | Class::TcpFin) {
            let port = u128::from(m.src_port().unwrap_or(0));
            self.ack_flows.insert(src_key.rotate_left(16) ^ port);
            self.established_sources.insert_hash(src_hash);
        }
        self.top_sources.insert_weighted(src_key, w);
        if let Some(p) = m.src_port() {
            self.top_src_ports
                .insert_weighted(port_key(m.protocol, p), w);
        }
        if let Some(p) = m.dst_port() {
            self.top_dst_ports
                .insert_weighted(port_key(m.protocol, p), w);
        }
        self.sample.offer(|| Sample::new(m, class, src_key));
    }

    /// Window length in seconds from the first to the last packet (at least
    /// 1 ms, so rates stay finite for a single packet).
    pub fn duration_s(&self) -> f64 {
        ((self.last_ns.saturating_sub(self.first_ns)) as f64 / 1e9).max(1e-3)
    }

    pub fn class_packets(&self, c: Class) -> u64 {
        self.class_packets[c.index()]
    }

    pub fn class_bytes(&self, c: Class) -> u64 {
        self.class_bytes[c.index()]
    }

    /// Estimated number of distinct source addresses.
    pub fn distinct_sources(&self) -> u64 {
        let est = self.sources.estimate().round() as u64;
        // The sketch can overshoot on tiny windows; there can't be more
        // sources than packets.
        est.min(self.packets)
    }

    /// Estimated distinct sources of the packets of these classes.
    pub fn distinct_sources_of(&self, classes: &[Class]) -> u64 {
        let mut h = HyperLogLog::new(CLASS_HLL_P);
        let mut packets = 0;
        for c in classes {
            if let Some(ch) = self.class_sources.get(c.index()) {
                h.merge(ch);
            }
            packets += self.class_packets(*c);
        }
        (h.estimate().round() as u64).min(packets)
    }

    /// Does `src_key` look like a source of established-flow traffic?
    pub fn is_established_source(&self, src_key: u128) -> bool {
        self.established_sources
            .contains_hash(hll::hash_key(src_key))
    }

    /// Estimated Shannon entropy of the source addresses, in bits.
    ///
    /// Exact entropy needs every source's count, which is unbounded memory.
    /// Estimate: the top-k sources contribute their guaranteed counts exactly;
    /// the remaining packets are assumed spread evenly over the remaining
    /// distinct sources (HyperLogLog estimate). Exact when there are at most
    /// `top_k` sources; close to log2(distinct) for spoofed floods.
    pub fn source_entropy_bits(&self) -> f64 {
        if self.packets == 0 {
            return 0.0;
        }
        let n = self.packets as f64;
        let top = self.top_sources.top();
        let mut h = 0.0;
        let mut covered = 0u64;
        let mut counted = 0u64;
        for c in &top {
            let g = c.guaranteed();
            if g == 0 {
                continue;
            }
            let p = g as f64 / n;
            h -= p * p.log2();
            covered += g;
            counted += 1;
        }
        let rest = self.packets.saturating_sub(covered);
        if rest > 0 {
            let others = self.distinct_sources().saturating_sub(counted).max(1) as f64;
            let r = rest as f64 / n;
            // `others` sources sharing mass r evenly: r * log2(others / r).
            h += r * (others / r).log2();
        }
        h.max(0.0)
    }

    /// Entropy divided by its maximum, log2(distinct sources): near 1 when
    /// every source sends about the same amount (random spoofing), near 0
    /// when a few sources dominate.
    pub fn source_entropy_normalized(&self) -> f64 {
        let d = self.distinct_sources();
        if d <= 1 {
            return 0.0;
        }
        (self.source_entropy_bits() / (d as f64).log2()).clamp(0.0, 1.0)
    }

    /// Share of packets that are fragments.
    pub fn fragment_share(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.fragments as f64 / self.packets as f64
        }
    }
}

/// A hasher for `u128` address keys: one multiply-xorshift instead of SipHash,
/// because the table is looked up once per packet. Keys are not attacker-chosen
/// in a way that matters: the table is capped at `max_targets` entries.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, k: u128) {
        self.0 = hll::hash_key(k);
    }
}

type KeyMap = HashMap<u128, usize, BuildHasherDefault<KeyHasher>>;

/// Decode failures by kind, for the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeErrors {
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub unsupported_link: u64,
}

impl DecodeErrors {
    pub fn total(&self) -> u64 {
        self.not_ip + self.truncated + self.malformed + self.unsupported_link
    }

    pub fn count(&mut self, e: &DecodeError) {
        match e {
            DecodeError::NotIp(_) => self.not_ip += 1,
            DecodeError::Truncated { .. } => self.truncated += 1,
            DecodeError::UnsupportedLinkType(_) => self.unsupported_link += 1,
            DecodeError::BadIpVersion(_) | DecodeError::Malformed { .. } => self.malformed += 1,
        }
    }
}

/// Aggregates packets of one window into interface and per-target features.
#[derive(Debug)]
pub struct Extractor {
    cfg: FeatureConfig,
    interface: Features,
    keys: Vec<u128>,
    targets: Vec<Features>,
    index: KeyMap,
    /// The last destination looked up and its slot: floods hit one victim, so
    /// this skips the hash lookup for almost every packet.
    last: Option<(u128, usize)>,
    /// Destinations not (yet) tracked, counted for admission and reporting.
    candidates: TopK<u128>,
    untracked_packets: u64,
    errors: DecodeErrors,
    /// Cleared per-target features kept for reuse in the next window.
    spare: Vec<Features>,
}

impl Extractor {
    pub fn new(cfg: FeatureConfig) -> Self {
        let interface = Features::new(&cfg, cfg.seed);
        let candidates = TopK::new((cfg.max_targets * 2).max(64));
        Extractor {
            interface,
            keys: Vec::with_capacity(cfg.max_targets),
            targets: Vec::with_capacity(cfg.max_targets),
            index: KeyMap::default(),
            last: None,
            candidates,
            untracked_packets: 0,
            errors: DecodeErrors::default(),
            spare: Vec::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    /// Adds one decoded packet seen at `ts_ns` (nanoseconds, any origin).
    #[inline]
    pub fn observe(&mut self, ts_ns: u64, m: &PacketMeta) {
        self.observe_weighted(ts_ns, m, 1);
    }

    /// Adds `weight` packets alike, e.g. a flow record of that many packets
    /// or a packet sampled 1 in `weight` ([`Features::observe_weighted`]).
    #[inline]
    pub fn observe_weighted(&mut self, ts_ns: u64, m: &PacketMeta, weight: u64) {
        let class = Class::of(m);
        let src_key = ip_key(m.src);
        let src_hash = hll::hash_key(src_key);
        self.interface
            .observe_weighted(ts_ns, m, class, src_key, src_hash, weight);
        let dst = ip_key(m.dst);
        if let Some(slot) = self.slot(dst, weight) {
            if let Some(t) = self.targets.get_mut(slot) {
                t.observe_weighted(ts_ns, m, class, src_key, src_hash, weight);
            }
        }
    }

    /// Decodes a frame and adds it; a frame that doesn't decode is counted in
    /// [`Extractor::decode_errors`] and its error returned.
    #[inline]
    pub fn observe_frame(
        &mut self,
        ts_ns: u64,
        link: LinkType,
        frame: &[u8],
    ) -> Result<(), DecodeError> {
        match decode(link, frame) {
            Ok(m) => {
                self.observe(ts_ns, &m);
                Ok(())
            }
            Err(e) => {
                self.errors.count(&e);
                Err(e)
            }
        }
    }

    /// The tracked slot of destination `dst`, admitting it when it has earned
    /// one.
    #[inline]
    fn slot(&mut self, dst: u128, weight: u64) -> Option<usize> {
        if let Some((k, s)) = self.last {
            if k == dst {
                return Some(s);
            }
        }
        if let Some(&s) = self.index.get(&dst) {
            self.last = Some((dst, s));
            return Some(s);
        }
        self.untracked_packets += weight.max(1);
        self.candidates.insert_weighted(dst, weight.max(1));
        if self.targets.len() >= self.cfg.max_targets {
            return None;
        }
        let seen = self.candidates.get(dst).map_or(0, |c| c.guaranteed());
        if seen < self.cfg.admit_after.max(1) {
            return None;
        }
        // Admitted: this packet is the first one its features count.
        self.untracked_packets -= weight.max(1);
        let slot = self.targets.len();
        let seed = self.cfg.seed ^ hll::hash_key(dst);
        let features = match self.spare.pop() {
            Some(mut f) => {
                f.sample.reseed(seed);
                f
            }
            None => Features::new(&self.cfg, seed),
        };
        self.targets.push(features);
        self.keys.push(dst);
        self.index.insert(dst, slot);
        self.last = Some((dst, slot));
        Some(slot)
    }

    /// Features of every packet of the window.
    pub fn interface(&self) -> &Features {
        &self.interface
    }

    /// Features of one destination, if tracked.
    pub fn target(&self, ip: IpAddr) -> Option<&Features> {
        self.index
            .get(&ip_key(ip))
            .and_then(|&s| self.targets.get(s))
    }

    /// Tracked destinations and their features, in admission order.
    pub fn targets(&self) -> impl Iterator<Item = (IpAddr, &Features)> {
        self.keys
            .iter()
            .map(|&k| key_ip(k))
            .zip(self.targets.iter())
    }

    /// The tracked destination with the most packets: the likely victim.
    pub fn top_target(&self) -> Option<(IpAddr, &Features)> {
        self.targets().max_by_key(|(_, f)| f.packets)
    }

    /// Destinations by packets received, largest first: tracked ones with
    /// exact counts plus untracked ones (whose counts are estimates).
    pub fn top_destinations(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut v: Vec<(IpAddr, u64)> = self.targets().map(|(ip, f)| (ip, f.packets)).collect();
        for c in self.candidates.top() {
            if !self.index.contains_key(&c.key) {
                v.push((key_ip(c.key), c.count));
            }
        }
        v.sort_by_key(|d| std::cmp::Reverse(d.1));
        v.truncate(n);
        v
    }

    /// Packets whose destination was not tracked (admission pending or the
    /// table full).
    pub fn untracked_packets(&self) -> u64 {
        self.untracked_packets
    }

    /// Counts a frame that could not be decoded before reaching
    /// [`Extractor::observe_frame`] (e.g. an unsupported link type).
    pub fn count_error(&mut self, e: &DecodeError) {
        self.errors.count(e);
    }

    pub fn decode_errors(&self) -> &DecodeErrors {
        &self.errors
    }

    /// Starts a new window: clears everything, keeping allocations.
    pub fn reset(&mut self) {
        self.interface.clear();
        for mut f in self.targets.drain(..) {
            f.clear();
            self.spare.push(f);
        }
        self.keys.clear();
        self.index.clear();
        self.last = None;
        self.candidates.clear();
        self.untracked_packets = 0;
        self.errors = DecodeErrors::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{PayloadHead, TcpFlags, Transport};
    use std::net::Ipv4Addr;

    fn syn(src: u32, dst: u32) -> PacketMeta {
        PacketMeta {
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            protocol: proto::TCP,
            transport: Transport::Tcp {
                src_port: (src % 60000) as u16 + 1024,
                dst_port: 80,
                flags: TcpFlags(TcpFlags::SYN),
            },
            ip_len: 40,
            ttl: 64,
            fragment: None,
            payload_len: 0,
            payload_head: PayloadHead::default(),
            vlan: None,
        }
    }

    #[test]
    fn tracks_victim_after_admission() {
        let mut x = Extractor::new(FeatureConfig::default());
        for i in 0..1000 {
            x.observe(i, &syn(i as u32 + 1, 0x0a00_0001));
        }
        let (ip, f) = x.top_target().unwrap();
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            f.packets,
            1000 - 3,
            "the first admit_after - 1 packets precede admission"
        );
        assert_eq!(x.interface().packets, 1000);
        assert_eq!(x.untracked_packets(), 3);
        assert_eq!(f.class_packets(Class::TcpSyn), f.packets);
    }

    #[test]
    fn random_destinations_stay_bounded() {
        let cfg = FeatureConfig {
            max_targets: 8,
            ..FeatureConfig::default()
        };
        let mut x = Extractor::new(cfg);
        for i in 0..100_000u32 {
            x.observe(u64::from(i), &syn(i, i.wrapping_mul(2_654_435_761)));
            x.observe(u64::from(i), &syn(i, 0x0a00_0001));
        }
        assert!(x.targets().count() <= 8);
        assert_eq!(
            x.top_destinations(1)[0].0,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(x.interface().packets, 200_000);
        assert!(x.interface().sample.items().len() <= 1024);
    }

    #[test]
    fn entropy_estimate() {
        let cfg = FeatureConfig::default();
        let mut x = Extractor::new(cfg);
        // One source only: zero entropy.
        for i in 0..100 {
            x.observe(i, &syn(7, 1));
        }
        assert_eq!(x.interface().source_entropy_bits(), 0.0);
        x.reset();
        // 4096 sources evenly: 12 bits.
        for i in 0..40_960u32 {
            x.observe(u64::from(i), &syn(i % 4096, 1));
        }
        let h = x.interface().source_entropy_bits();
        assert!((h - 12.0).abs() < 0.3, "{h}");
        assert!(x.interface().source_entropy_normalized() > 0.95);
    }

    #[test]
    fn weighted_observation_counts_weight_times() {
        let mut one = Extractor::new(FeatureConfig::default());
        let mut w = Extractor::new(FeatureConfig::default());
        for i in 0..10 {
            for _ in 0..5 {
                one.observe(i, &syn(7, 0x0a00_0001));
            }
            w.observe_weighted(i, &syn(7, 0x0a00_0001), 5);
        }
        let (a, b) = (one.interface(), w.interface());
        assert_eq!((a.packets, a.bytes), (b.packets, b.bytes));
        assert_eq!(a.class_packets, b.class_packets);
        assert_eq!(a.tcp_flags[2], b.tcp_flags[2]);
        assert_eq!(a.lengths, b.lengths);
        assert_eq!(a.top_sources.top()[0].count, b.top_sources.top()[0].count);
        assert_eq!(
            w.top_target().unwrap().1.packets,
            50,
            "admitted at once: 5 >= admit_after"
        );
        assert_eq!(
            b.sample.items().len(),
            10,
            "the sample sees each record once"
        );
    }

    #[test]
    fn length_buckets() {
        let mut h = LengthHistogram::default();
        for l in [40, 64, 65, 1500, 1501, 9000] {
            h.add(l);
        }
        assert_eq!(h.buckets, [2, 1, 0, 0, 0, 1, 2]);
        assert_eq!(LengthHistogram::bucket_range(0), [0, 64]);
        assert_eq!(LengthHistogram::bucket_range(1), [65, 128]);
        assert_eq!(LengthHistogram::bucket_range(6), [1501, 65535]);
        assert_eq!((h.min, h.max), (40, 9000));
    }
}
