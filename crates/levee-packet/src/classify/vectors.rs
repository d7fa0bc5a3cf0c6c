//! Splitting a target's traffic into vectors ([`VectorKind`]) and sizing them.
//!
//! Each packet [`Class`] maps to one vector, after a few decisions taken once
//! per window ([`Plan`]):
//! - ACK / PSH-ACK / FIN-ACK traffic is *established-flow* traffic (benign)
//!   when it comes in flows: at most half as many distinct (source, source
//!   port) pairs as packets over the window. Otherwise it is an ACK (or
//!   FIN-ACK) flood: spoofed or port-hopping floods send one packet per
//!   "flow".
//! - A SYN (or SYN-ACK) from a source that also sends established-flow traffic
//!   belongs to a handshake that completes, so to the benign share; spoofed
//!   SYNs come from sources that never do. Counts are split by the share of
//!   sampled SYNs whose source is known.
//! - Later fragments (no ports) join the amplification vector whose first
//!   fragments they follow, when most of them are UDP and that service sends
//!   most of the UDP first fragments. Otherwise every
//!   fragment (first and later) forms the `ip_fragment_flood` vector.
//! - UDP from one service port below 1024 (>= 80% of sampled UDP, from 8 or
//!   more sources) not in the amplification table is `udp_reflection_other`.

use super::family::{Family, Variant};
use super::ClassifyConfig;
use crate::features::{AmpService, Class, Features, FragKind, Sample};
use std::collections::HashMap;

/// One attack vector (or the benign established traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VectorKind {
    SynFlood,
    SynAckReflection,
    AckFlood,
    FinFlood,
    /// Established-flow TCP: the benign share.
    Established,
    RstFlood,
    FlagAbuse,
    UdpFlood,
    UdpReflection,
    Amplification(AmpService),
    IcmpFlood,
    FragmentFlood,
    ProtocolFlood,
}

impl VectorKind {
    pub fn family(self) -> Family {
        match self {
            VectorKind::SynFlood => Family::SynFlood,
            VectorKind::SynAckReflection | VectorKind::FinFlood | VectorKind::FlagAbuse => {
                Family::TcpFlagAbuse
            }
            VectorKind::AckFlood => Family::AckFlood,
            VectorKind::Established => Family::TrafficSpike,
            VectorKind::RstFlood => Family::RstFlood,
            VectorKind::UdpFlood => Family::UdpFlood,
            VectorKind::UdpReflection => Family::UdpReflectionOther,
            VectorKind::Amplification(s) => match s {
                AmpService::Dns => Family::DnsAmplification,
                AmpService::Ntp => Family::NtpAmplification,
                AmpService::Memcached => Family::MemcachedAmplification,
                AmpService::Ssdp => Family::SsdpAmplification,
                AmpService::Cldap => Family::CldapAmplification,
                AmpService::Snmp => Family::SnmpAmplification,
                AmpService::Chargen => Family::ChargenAmplification,
            },
            VectorKind::IcmpFlood => Family::IcmpFlood,
            VectorKind::FragmentFlood => Family::IpFragmentFlood,
            VectorKind::ProtocolFlood => Family::IpProtocolFlood,
        }
    }

    pub fn variant(self) -> Option<Variant> {
        match self {
            VectorKind::SynAckReflection => Some(Variant::SynAckReflection),
            VectorKind::FinFlood => Some(Variant::FinFlood),
            _ => None,
        }
    }

    /// Are the sources real hosts answering forged requests?
    pub fn is_reflection(self) -> bool {
        self == VectorKind::SynAckReflection || self.family().is_reflection()
    }
}

/// The per-window decisions that map classes to vectors.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    features: &'a Features,
    pub established_benign: bool,
    /// Share of SYN packets from sources with established flows.
    pub syn_benign_share: f64,
    /// Same for SYN-ACK.
    pub synack_benign_share: f64,
    /// Later fragments belong to this amplification vector.
    pub tails_to: Option<AmpService>,
    /// Fragments form their own vector (later fragments not attributed).
    pub fragments_separate: bool,
    /// Non-table UDP is reflection from this port.
    pub udp_reflection_port: Option<u16>,
}

/// Distinct values in a small collection (the sample is at most a few
/// thousand packets, so sorting is cheap and allocation is per window).
fn distinct<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

impl<'a> Plan<'a> {
    pub fn new(f: &'a Features, cfg: &ClassifyConfig) -> Plan<'a> {
        let sample = f.sample.items();
        let ack_group = f.class_packets(Class::TcpAck) + f.class_packets(Class::TcpFin);
        let flows = (f.ack_flows.estimate().round() as u64).min(ack_group);
        let established_benign =
            ack_group > 0 && flows as f64 <= cfg.established_max_flow_ratio * ack_group as f64;
        let known_share = |class: Class| -> f64 {
            if !established_benign {
                return 0.0;
            }
            let (mut known, mut all) = (0usize, 0usize);
            for s in sample.iter().filter(|s| s.class == class) {
                all += 1;
                known += usize::from(f.is_established_source(s.src));
            }
            if all == 0 {
                0.0
            } else {
                known as f64 / all as f64
            }
        };
        let syn_benign_share = known_share(Class::TcpSyn);
        let synack_benign_share = known_share(Class::TcpSynAck);

        let tails = f.class_packets(Class::FragmentTail);
        let tails_to = if tails > 0 && f.tail_fragments_udp * 2 >= tails {
            // The service must send most of the UDP first fragments: a
            // fragmented UDP flood with hopping source ports passes through
            // port 53 or 1900 now and then, and is not amplification.
            let udp_first = f.class_first_fragments[Class::Udp.index()]
                + AmpService::ALL
                    .iter()
                    .map(|&s| f.class_first_fragments[Class::from_amp(s).index()])
                    .sum::<u64>();
            AmpService::ALL
                .iter()
                .map(|&s| (s, f.class_first_fragments[Class::from_amp(s).index()]))
                .filter(|&(_, n)| n > 0 && n * 2 >= udp_first)
                .max_by_key(|&(_, n)| n)
                .map(|(s, _)| s)
        } else {
            None
        };
        let fragments_separate = tails > 0 && tails_to.is_none();

        let udp: Vec<&Sample> = sample
            .iter()
            .filter(|s| s.class == Class::Udp && s.has_ports)
            .collect();
        let mut by_port: HashMap<u16, usize> = HashMap::new();
        for s in &udp {
            *by_port.entry(s.src_port).or_default() += 1;
        }
        let udp_reflection_port = by_port
            .into_iter()
            .max_by_key(|&(p, n)| (n, std::cmp::Reverse(p)))
            .filter(|&(p, n)| {
                let sources = distinct(
                    udp.iter()
                        .filter(|s| s.src_port == p)
                        .map(|s| s.src)
                        .collect(),
                );
                p != 0 && p < 1024 && n * 5 >= udp.len() * 4 && sources.len() >= 8
            })
            .map(|(p, _)| p);

        Plan {
            features: f,
            established_benign,
            syn_benign_share,
            synack_benign_share,
            tails_to,
            fragments_separate,
            udp_reflection_port,
        }
    }

    /// The vector of packets of class `class` and fragment state `frag`,
    /// for classes whose packets all go one way (not SYN / SYN-ACK when their
    /// handshakes are split; see [`Plan::member`]).
    pub fn vector_of(&self, class: Class, frag: FragKind) -> VectorKind {
        if frag == FragKind::Tail || class == Class::FragmentTail {
            return self
                .tails_to
                .map_or(VectorKind::FragmentFlood, VectorKind::Amplification);
        }
        if frag == FragKind::First && self.fragments_separate && class.amp_service().is_none() {
            return VectorKind::FragmentFlood;
        }
        match class {
            Class::TcpSyn => VectorKind::SynFlood,
            Class::TcpSynAck => VectorKind::SynAckReflection,
            Class::TcpAck | Class::TcpFin if self.established_benign => VectorKind::Established,
            Class::TcpAck => VectorKind::AckFlood,
            Class::TcpFin => VectorKind::FinFlood,
            Class::TcpRst => VectorKind::RstFlood,
            Class::TcpOdd => VectorKind::FlagAbuse,
            Class::Udp if self.udp_reflection_port.is_some() => VectorKind::UdpReflection,
            Class::Udp => VectorKind::UdpFlood,
            Class::UdpReflector => VectorKind::UdpReflection,
            Class::Icmp => VectorKind::IcmpFlood,
            Class::OtherProto | Class::FragmentTail => VectorKind::ProtocolFlood,
            c => c
                .amp_service()
                .map_or(VectorKind::UdpFlood, VectorKind::Amplification),
        }
    }

    /// The vector of one sampled packet.
    pub fn vector_of_sample(&self, s: &Sample) -> VectorKind {
        let v = self.vector_of(s.class, s.frag);
        let handshake = matches!(v, VectorKind::SynFlood | VectorKind::SynAckReflection)
            && self.established_benign
            && self.features.is_established_source(s.src);
        if handshake {
            VectorKind::Established
        } else {
            v
        }
    }

    /// Is this sampled packet part of vector `kind`?
    pub fn member(&self, kind: VectorKind, s: &Sample) -> bool {
        self.vector_of_sample(s) == kind
    }

    /// The classes whose packets (some or all) make up vector `kind`.
    pub fn classes_of(&self, kind: VectorKind) -> Vec<Class> {
        Class::ALL
            .into_iter()
            .filter(|&c| {
                let whole = self.vector_of(c, FragKind::Whole);
                whole == kind
                    || self.vector_of(c, FragKind::Tail) == kind && c == Class::FragmentTail
                    || self.vector_of(c, FragKind::First) == kind
                        && self.features.class_first_fragments[c.index()] > 0
                    || kind == VectorKind::Established
                        && matches!(c, Class::TcpSyn | Class::TcpSynAck)
                        && self.established_benign
            })
            .collect()
    }
}

/// Packets and bytes of one vector in a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorStat {
    pub kind: VectorKind,
    pub packets: f64,
    pub bytes: f64,
}

/// Sizes every vector from the exact per-class counters, largest first.
pub fn vector_stats(f: &Features, plan: &Plan<'_>) -> Vec<VectorStat> {
    let mut acc: HashMap<VectorKind, (f64, f64)> = HashMap::new();
    for class in Class::ALL {
        let ci = class.index();
        let pk = f.class_packets[ci];
        if pk == 0 {
            continue;
        }
        let by = f.class_bytes[ci];
        let (ff, ffb) = (
            f.class_first_fragments[ci],
            f.class_first_fragment_bytes[ci],
        );
        let mut add = |kind: VectorKind, p: u64, b: u64| {
            let e = acc.entry(kind).or_default();
            e.0 += p as f64;
            e.1 += b as f64;
        };
        let benign = match class {
            Class::TcpSyn => plan.syn_benign_share,
            Class::TcpSynAck => plan.synack_benign_share,
            _ => 0.0,
        };
        if class == Class::FragmentTail {
            add(plan.vector_of(class, FragKind::Tail), pk, by);
        } else if benign > 0.0 {
            // Completed handshakes join the established traffic.
            let bp = (pk as f64 * benign).round() as u64;
            let bb = (by as f64 * benign).round() as u64;
            add(VectorKind::Established, bp, bb);
            add(plan.vector_of(class, FragKind::Whole), pk - bp, by - bb);
        } else {
            add(plan.vector_of(class, FragKind::Whole), pk - ff, by - ffb);
            if ff > 0 {
                add(plan.vector_of(class, FragKind::First), ff, ffb);
            }
        }
    }
    let mut v: Vec<VectorStat> = acc
        .into_iter()
        .filter(|(_, (p, _))| *p > 0.0)
        .map(|(kind, (packets, bytes))| VectorStat {
            kind,
            packets,
            bytes,
        })
        .collect();
    v.sort_by(|a, b| b.packets.total_cmp(&a.packets).then(a.kind.cmp(&b.kind)));
    v
}
