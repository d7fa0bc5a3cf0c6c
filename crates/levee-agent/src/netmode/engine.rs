//! [`Engine`]: the per-IP view of flow and mirror modes. Flow records (or
//! sampled packets) in, per-tick rates of every IP and prefix of the
//! monitored networks out ([`levee_model::TargetRates`]), plus the traffic
//! features incidents are classified with ([`super::features`]).
//!
//! Pure: the caller passes the time; no socket, no clock, no thread.
//!
//! - Only traffic *to* a monitored network counts (what is attacked is the
//!   destination). Everything else is counted as `outside` and ignored.
//! - Counts are scaled by the sampling rate: a record of `p` packets sampled
//!   1 in `n` stands for `p x n` packets (and bytes likewise).
//! - Flows: one per flow record (NetFlow, IPFIX); for packet samples (sFlow,
//!   mirror), each distinct 5-tuple among a tick's samples counts once.
//! - Rates are sums over the last [`NetworksConfig::rate_window`] divided by
//!   its length: exporters send in bursts (every export interval), the
//!   window turns the bursts into steady rates.
//! - Prefixes: each IP also counts in its prefix (/24 and /64 by default,
//!   never wider than the monitored network it is in). A prefix is
//!   *alertable* (carpet bombing) when at least `carpet_min_ips` of its IPs
//!   received traffic in the window and none of them more than
//!   `carpet_max_top_share` of the prefix's packets; otherwise a rise of
//!   the prefix is one IP's incident, reported on that IP.
//! - At most `max_ips` IPs are tracked; traffic to others still counts in
//!   their prefix.

use super::config::NetworksConfig;
use super::features::FeatureStore;
use ipnet::IpNet;
use levee_flow::{FlowRecord, Version};
use levee_model::{Target, TargetRates};
use levee_packet::meta::proto;
use levee_packet::{Fragment, PacketMeta, TcpFlags, Transport};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Hash maps on the per-record path: foldhash (seeded per process, so keys
/// an attacker picks cannot be aimed at collisions) instead of SipHash,
/// which costs more than the rest of a record's accounting.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Distinct 5-tuples remembered per tick (beyond, every sample is a flow).
const MAX_FLOW_KEYS: usize = 1 << 20;

/// An aggregation: one IP or one prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Ip(IpAddr),
    Prefix(IpNet),
}

impl Key {
    pub fn target(&self) -> Target {
        match self {
            Key::Ip(ip) => Target::Ip(*ip),
            Key::Prefix(p) => Target::Prefix(p.to_string()),
        }
    }

    /// The key an incident target names (`203.0.113.7`, `203.0.113.0/24`).
    pub fn parse(target: &str) -> Option<Key> {
        if let Ok(ip) = target.parse::<IpAddr>() {
            return Some(Key::Ip(ip));
        }
        target.parse::<IpNet>().ok().map(Key::Prefix)
    }
}

/// Traffic of one key over some time. `f32`: a /16 has three tables of
/// these, and seven significant digits are plenty for rates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub packets: f32,
    pub bytes: f32,
    pub flows: f32,
    pub tcp: f32,
    pub udp: f32,
    pub icmp: f32,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.flows += o.flows;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
    }

    fn sub(&mut self, o: &Counts) {
        // Clamped: float sums minus the same parts can go a hair negative.
        let f = |a: f32, b: f32| (a - b).max(0.0);
        self.packets = f(self.packets, o.packets);
        self.bytes = f(self.bytes, o.bytes);
        self.flows = f(self.flows, o.flows);
        self.tcp = f(self.tcp, o.tcp);
        self.udp = f(self.udp, o.udp);
        self.icmp = f(self.icmp, o.icmp);
    }
}

/// A key's traffic over the window, and how many slots of the window hold
/// some of it (the key is forgotten exactly when that reaches 0).
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    counts: Counts,
    slots: u32,
}

#[derive(Debug, Default)]
struct Slot {
    end_ms: i64,
    counts: FastMap<Key, Counts>,
}

/// What the engine has seen, for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Records (or samples) counted.
    pub records: u64,
    /// Records whose destination is outside the monitored networks.
    pub outside: u64,
    /// Records to an IP beyond `max_ips` (counted in the prefix only).
    pub untracked: u64,
    /// IPs with traffic in the current window.
    pub active_ips: u64,
}

/// The per-IP engine.
#[derive(Debug)]
pub struct Engine {
    cfg: NetworksConfig,
    current: Slot,
    slots: VecDeque<Slot>,
    sums: FastMap<Key, Sum>,
    flow_keys: FastSet<u64>,
    tracked_ips: usize,
    stats: EngineStats,
    features: FeatureStore,
    /// Per prefix, as of the last tick: IPs with traffic in the window and
    /// the packets of the busiest one (the carpet-bombing rule's inputs).
    spread: FastMap<IpNet, (usize, f64)>,
}

/// A packet summary for the classifier, from a flow record's fields (its
/// average packet length; no TTL, fragment or payload information).
pub fn meta_of_record(r: &FlowRecord, src: IpAddr, dst: IpAddr) -> PacketMeta {
    let protocol = r.protocol.unwrap_or(0);
    let ip_len = r
        .bytes
        .checked_div(r.packets)
        .unwrap_or(0)
        .clamp(20, u64::from(u16::MAX)) as u16;
    let (sp, dp) = (r.src_port.unwrap_or(0), r.dst_port.unwrap_or(0));
    let (transport, header) = match protocol {
        proto::TCP => (
            Transport::Tcp {
                src_port: sp,
                dst_port: dp,
                flags: TcpFlags(r.tcp_flags.unwrap_or(0)),
            },
            40,
        ),
        proto::UDP => (
            Transport::Udp {
                src_port: sp,
                dst_port: dp,
            },
            28,
        ),
        // NetFlow puts ICMP type and code in the destination port.
        proto::ICMP | proto::ICMPV6 => (
            Transport::Icmp {
                kind: (dp >> 8) as u8,
                code: dp as u8,
            },
            28,
        ),
        _ => (Transport::None, 20),
    };
    PacketMeta {
        src,
        dst,
        protocol,
        transport,
        ip_len,
        ttl: 0,
        fragment: None::<Fragment>,
        payload_len: ip_len.saturating_sub(header),
        payload_head: Default::default(),
        vlan: None,
    }
}

impl Engine {
    pub fn new(cfg: NetworksConfig, now_ms: i64) -> Self {
        Engine {
            features: FeatureStore::new(now_ms),
            current: Slot::default(),
            slots: VecDeque::new(),
            sums: FastMap::default(),
            flow_keys: FastSet::default(),
            tracked_ips: 0,
            stats: EngineStats::default(),
            spread: FastMap::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &NetworksConfig {
        &self.cfg
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn features(&self) -> &FeatureStore {
        &self.features
    }

    pub fn features_mut(&mut self) -> &mut FeatureStore {
        &mut self.features
    }

    /// IPs of `prefix` with traffic in the window, as of the last tick.
    pub fn members(&self, prefix: &IpNet) -> Option<usize> {
        self.spread.get(prefix).map(|(n, _)| *n)
    }

    /// The monitored network holding `ip`, and the prefix `ip` counts in.
    pub fn prefix_of(&self, ip: IpAddr) -> Option<IpNet> {
        let net = self
            .cfg
            .monitored_networks
            .iter()
            .find(|n| n.contains(&ip))?;
        let len = match ip {
            IpAddr::V4(_) => self.cfg.prefix_length_v4,
            IpAddr::V6(_) => self.cfg.prefix_length_v6,
        }
        .max(net.prefix_len());
        IpNet::new(ip, len).ok().map(|p| p.trunc())
    }

    /// Counts traffic `c` to `dst` in its IP and prefix; returns the
    /// prefix and the packets of the IP and of the prefix in this tick so
    /// far (0 when not counted).
    fn count(&mut self, dst: IpAddr, c: &Counts) -> Option<(IpNet, f32, f32)> {
        let Some(prefix) = self.prefix_of(dst) else {
            self.stats.outside += 1;
            return None;
        };
        self.stats.records += 1;
        let ip = Key::Ip(dst);
        let ip_now = if let Some(e) = self.current.counts.get_mut(&ip) {
            e.add(c);
            e.packets
        } else if self.tracked_ips < self.cfg.max_ips || self.sums.contains_key(&ip) {
            if let std::collections::hash_map::Entry::Vacant(v) = self.sums.entry(ip) {
                // Reserved now; released when its window empties.
                v.insert(Sum::default());
                self.tracked_ips += 1;
            }
            self.current.counts.insert(ip, *c);
            c.packets
        } else {
            self.stats.untracked += 1;
            0.0
        };
        // A prefix as long as an address is the address itself.
        let prefix_now = if prefix.prefix_len() < prefix.max_prefix_len() {
            let e = self.current.counts.entry(Key::Prefix(prefix)).or_default();
            e.add(c);
            e.packets
        } else {
            0.0
        };
        Some((prefix, ip_now, prefix_now))
    }

    /// Adds one flow record received at `now_ms`.
    pub fn observe_record(&mut self, now_ms: i64, r: &FlowRecord) {
        let (Some(src), Some(dst)) = (r.src_addr, r.dst_addr) else {
            return;
        };
        let rate = f64::from(r.sampling_rate.max(1));
        let packets = r.packets as f64 * rate;
        let flows = if r.version == Version::Sflow5 {
            self.new_flow(
                src,
                dst,
                r.src_port.unwrap_or(0),
                r.dst_port.unwrap_or(0),
                r.protocol.unwrap_or(0),
            )
        } else {
            1.0
        };
        let c = counts(
            r.protocol.unwrap_or(0),
            packets,
            r.bytes as f64 * rate,
            flows,
        );
        let Some(counted) = self.count(dst, &c) else {
            return;
        };
        let weight = r.scaled_packets().max(1);
        let keys = [Key::Ip(dst), Key::Prefix(counted.0)];
        if self.watch(now_ms, keys, counted) {
            let meta = r.packet.unwrap_or_else(|| meta_of_record(r, src, dst));
            self.features
                .observe(now_ms, keys, &meta, weight, r.sampling_rate);
        }
    }

    /// Lets a key that has become hot into the feature store (its rate over
    /// the window: the window's sum plus this tick's count). A key neither
    /// watched nor hot costs one lookup. Returns whether any of `keys` is
    /// watched.
    fn watch(
        &mut self,
        now_ms: i64,
        keys: [Key; 2],
        (_, ip_now, prefix_now): (IpNet, f32, f32),
    ) -> bool {
        let secs = self.cfg.rate_window.as_secs_f64().max(0.001);
        let mut any = false;
        for (k, now) in keys.into_iter().zip([ip_now, prefix_now]) {
            if self.features.is_watched(&k) {
                any = true;
            } else if now > 0.0 {
                let sum = self.sums.get(&k).map_or(0.0, |s| s.counts.packets);
                let pps = f64::from(sum + now) / secs;
                if pps >= self.features.admit_pps() {
                    any |= self.features.consider(k, pps, now_ms);
                }
            }
        }
        any
    }

    /// Adds one sampled packet (mirror mode) taken 1 in `rate`.
    pub fn observe_packet(&mut self, now_ms: i64, m: &PacketMeta, rate: u32) {
        let r = f64::from(rate.max(1));
        let flows = self.new_flow(
            m.src,
            m.dst,
            m.src_port().unwrap_or(0),
            m.dst_port().unwrap_or(0),
            m.protocol,
        );
        let c = counts(m.protocol, r, f64::from(m.ip_len) * r, flows);
        let Some(counted) = self.count(m.dst, &c) else {
            return;
        };
        let keys = [Key::Ip(m.dst), Key::Prefix(counted.0)];
        if self.watch(now_ms, keys, counted) {
            self.features
                .observe(now_ms, keys, m, u64::from(rate.max(1)), rate);
        }
    }

    fn new_flow(&mut self, src: IpAddr, dst: IpAddr, sp: u16, dp: u16, protocol: u8) -> f64 {
        if self.flow_keys.len() >= MAX_FLOW_KEYS {
            return 1.0;
        }
        let h = self
            .flow_keys
            .hasher()
            .hash_one((src, dst, sp, dp, protocol));
        if self.flow_keys.insert(h) {
            1.0
        } else {
            0.0
        }
    }

    /// Ends the tick at `now_ms`: the rates of every IP and prefix with
    /// traffic in the window.
    pub fn tick(&mut self, now_ms: i64) -> Vec<TargetRates> {
        let mut slot = std::mem::take(&mut self.current);
        slot.end_ms = now_ms;
        for (k, c) in &slot.counts {
            let s = self.sums.entry(*k).or_default();
            s.counts.add(c);
            s.slots += 1;
        }
        self.slots.push_back(slot);
        self.flow_keys.clear();
        let window_ms = self.cfg.rate_window.as_millis().max(1) as i64;
        while self
            .slots
            .front()
            .is_some_and(|s| s.end_ms <= now_ms - window_ms)
        {
            let old = self.slots.pop_front().unwrap_or_default();
            for (k, c) in &old.counts {
                if let Some(s) = self.sums.get_mut(k) {
                    s.counts.sub(c);
                    s.slots = s.slots.saturating_sub(1);
                }
            }
        }
        let before = self.sums.len();
        // Keys whose window emptied are forgotten (an IP's tracking slot
        // is released with it).
        self.sums.retain(|_, s| s.slots > 0);
        if self.sums.len() != before {
            self.tracked_ips = self.sums.keys().filter(|k| matches!(k, Key::Ip(_))).count();
        }
        let secs = window_ms as f64 / 1000.0;
        // Carpet bombing: how many IPs each prefix has, and its largest.
        let mut spread = std::mem::take(&mut self.spread);
        spread.clear();
        let mut active_ips = 0u64;
        for (k, s) in &self.sums {
            if let Key::Ip(ip) = k {
                active_ips += 1;
                if let Some(p) = self.prefix_of(*ip) {
                    let e = spread.entry(p).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 = e.1.max(f64::from(s.counts.packets));
                }
            }
        }
        self.stats.active_ips = active_ips;
        let hot: Vec<(Key, f64)> = self
            .sums
            .iter()
            .map(|(k, s)| (*k, f64::from(s.counts.packets) / secs))
            .collect();
        self.features.tick(now_ms, &hot);
        let out = self
            .sums
            .iter()
            .map(|(k, s)| {
                let c = &s.counts;
                let rate = |v: f32| f64::from(v) / secs;
                let alertable = match k {
                    Key::Ip(_) => true,
                    Key::Prefix(p) => spread.get(p).is_some_and(|(n, top)| {
                        *n >= self.cfg.carpet_min_ips
                            && *top <= self.cfg.carpet_max_top_share * f64::from(c.packets)
                    }),
                };
                TargetRates {
                    target: k.target(),
                    pps: rate(c.packets),
                    bps: rate(c.bytes) * 8.0,
                    flows: rate(c.flows),
                    tcp_pps: rate(c.tcp),
                    udp_pps: rate(c.udp),
                    icmp_pps: rate(c.icmp),
                    alertable,
                }
            })
            .collect();
        self.spread = spread;
        out
    }
}

fn counts(protocol: u8, packets: f64, bytes: f64, flows: f64) -> Counts {
    let packets = packets as f32;
    let mut c = Counts {
        packets,
        bytes: bytes as f32,
        flows: flows as f32,
        ..Counts::default()
    };
    match protocol {
        proto::TCP => c.tcp = packets,
        proto::UDP => c.udp = packets,
        proto::ICMP | proto::ICMPV6 => c.icmp = packets,
        _ => {}
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_flow::FlowRecord;
    use std::time::Duration;

    const T0: i64 = 1_795_225_450_000;

    fn cfg() -> NetworksConfig {
        NetworksConfig {
            monitored_networks: vec![
                "203.0.113.0/24".parse().unwrap(),
                "198.51.100.128/25".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            carpet_min_ips: 4,
            ..NetworksConfig::default()
        }
    }

    fn rec(dst: &str, packets: u64, rate: u32, protocol: u8) -> FlowRecord {
        let mut r = FlowRecord::new("192.0.2.1".parse().unwrap(), Version::Netflow9, 0);
        r.src_addr = Some("192.0.2.77".parse().unwrap());
        r.dst_addr = Some(dst.parse().unwrap());
        r.src_port = Some(1234);
        r.dst_port = Some(80);
        r.protocol = Some(protocol);
        r.tcp_flags = Some(2);
        r.packets = packets;
        r.bytes = packets * 60;
        r.sampling_rate = rate;
        r
    }

    fn find<'a>(v: &'a [TargetRates], t: &str) -> Option<&'a TargetRates> {
        v.iter().find(|r| r.target.to_string() == t)
    }

    #[test]
    fn rates_are_scaled_windowed_and_per_protocol() {
        let mut e = Engine::new(cfg(), T0);
        e.observe_record(T0 + 50, &rec("203.0.113.7", 10, 100, 6));
        e.observe_record(T0 + 60, &rec("203.0.113.7", 5, 1, 17));
        e.observe_record(T0 + 70, &rec("10.0.0.1", 5, 1, 17));
        let r = e.tick(T0 + 100);
        let ip = find(&r, "203.0.113.7").unwrap();
        assert_eq!((ip.pps, ip.tcp_pps, ip.udp_pps), (1005.0, 1000.0, 5.0));
        assert_eq!(ip.bps, 1005.0 * 60.0 * 8.0);
        assert_eq!(ip.flows, 2.0, "one per record");
        assert!(ip.alertable);
        let p = find(&r, "203.0.113.0/24").unwrap();
        assert_eq!(p.pps, 1005.0);
        assert!(!p.alertable, "one IP: not carpet bombing");
        assert_eq!(e.stats().outside, 1);
        // Still in the 1 s window at +900 ms, gone at +1100 ms.
        assert_eq!(find(&e.tick(T0 + 900), "203.0.113.7").unwrap().pps, 1005.0);
        assert!(find(&e.tick(T0 + 1100), "203.0.113.7").is_none());
    }

    #[test]
    fn prefixes_never_wider_than_the_network_and_carpet_rule() {
        let mut e = Engine::new(cfg(), T0);
        assert_eq!(
            e.prefix_of("198.51.100.200".parse().unwrap())
                .unwrap()
                .to_string(),
            "198.51.100.128/25"
        );
        assert_eq!(
            e.prefix_of("2001:db8:1:2::5".parse().unwrap())
                .unwrap()
                .to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(e.prefix_of("198.51.100.1".parse().unwrap()), None);
        // Spread evenly over 8 IPs: alertable.
        for i in 0..8 {
            e.observe_record(T0, &rec(&format!("203.0.113.{i}"), 100, 1, 6));
        }
        let r = e.tick(T0 + 100);
        assert!(find(&r, "203.0.113.0/24").unwrap().alertable);
        let net = "203.0.113.0/24".parse().unwrap();
        assert_eq!(e.members(&net), Some(8));
        // One IP dominating: not alertable.
        e.observe_record(T0 + 150, &rec("203.0.113.200", 100_000, 1, 6));
        let r = e.tick(T0 + 200);
        assert!(!find(&r, "203.0.113.0/24").unwrap().alertable);
    }

    #[test]
    fn sampled_packets_count_distinct_flows_and_ips_are_capped() {
        let mut c = cfg();
        c.max_ips = 2;
        c.rate_window = Duration::from_millis(500);
        let mut e = Engine::new(c, T0);
        let mut r = rec("203.0.113.1", 1, 64, 6);
        r.version = Version::Sflow5;
        e.observe_record(T0, &r);
        e.observe_record(T0, &r);
        r.src_port = Some(999);
        e.observe_record(T0, &r);
        for d in ["203.0.113.2", "203.0.113.3"] {
            e.observe_record(T0, &rec(d, 1, 1, 6));
        }
        let out = e.tick(T0 + 100);
        let ip = find(&out, "203.0.113.1").unwrap();
        assert_eq!(ip.pps, 3.0 * 64.0 / 0.5);
        assert_eq!(ip.flows, 2.0 / 0.5, "two distinct 5-tuples");
        assert!(find(&out, "203.0.113.3").is_none(), "beyond max_ips");
        assert_eq!(e.stats().untracked, 1);
        assert_eq!(
            find(&out, "203.0.113.0/24").unwrap().pps,
            (192.0 + 2.0) / 0.5,
            "the prefix still counts it"
        );
    }

    #[test]
    fn hot_ips_get_features_from_the_record_that_makes_them_hot() {
        let mut e = Engine::new(cfg(), T0);
        for i in 0..600u16 {
            let mut r = rec("203.0.113.9", 1, 1, 6);
            r.src_port = Some(1000 + i);
            e.observe_record(T0, &r);
        }
        let k = Key::Ip("203.0.113.9".parse().unwrap());
        assert!(e.features().is_watched(&k));
        let v = e.features().view(&k).unwrap();
        assert_eq!(v.records, 101, "watched from the 500th packet on");
        assert_eq!(v.features.tcp_flags[2], 101);
        assert!(e
            .features()
            .is_watched(&Key::Prefix("203.0.113.0/24".parse().unwrap())));
        let m = meta_of_record(
            &rec("203.0.113.9", 10, 1, 1),
            "1.1.1.1".parse().unwrap(),
            "2.2.2.2".parse().unwrap(),
        );
        assert_eq!(m.ip_len, 60);
        assert!(matches!(m.transport, Transport::Icmp { kind: 0, code: 80 }));
    }
}
