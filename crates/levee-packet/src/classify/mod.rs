//! Attack classification: a target's [`Features`] over the attack window (and
//! optionally over a pre-attack baseline window) -> [`Classification`]:
//! family, confidence, fingerprint, spoofing estimate.
//!
//! Rules (see also [`vectors`] for how packets become vectors):
//! 1. Size every vector by packets and by bytes. With a baseline, each vector
//!    counts only its excess over the baseline rate (baseline packets scaled
//!    by the ratio of the window lengths), so steady background traffic
//!    doesn't compete with the attack.
//! 2. A vector's weight is the larger of its packet share and byte share:
//!    SYN floods are many small packets, amplification few large ones, and
//!    either is an attack.
//! 3. Attack vectors are those (other than established-flow TCP) weighing at
//!    least [`ClassifyConfig::vector_share`] (20%). One -> its family; two or
//!    more -> `multi_vector`, with a fingerprint per vector (`any_of`).
//! 4. None -> `traffic_spike` (benign, no fingerprint) when established-flow
//!    TCP weighs at least as much as the largest other vector; else the
//!    largest vector's family, with low confidence.
//!
//! Confidence (0-99): 50 + 50 x weight of the chosen vector, minus 30 x the
//! next vector's weight relative to it; amplification minus 25 x the share of
//! its packets whose payload is *not* a response of that service; minus 20
//! for rule 4's fallback to a vector under 20%; scaled down below 50 packets; minus 15 when the fingerprint matches 5% or more of the
//! baseline. `multi_vector`: 50 + 25 x (sum of the two largest weights).
//! `traffic_spike`: 40 + 55 x established weight - 50 x largest attack weight.

pub mod family;
pub mod fingerprint;
pub mod spoofing;
pub mod vectors;

pub use family::{Family, Variant};
pub use fingerprint::{Fingerprint, IpPrefix, PortMatch};
pub use spoofing::SpoofingEstimate;
pub use vectors::{Plan, VectorKind, VectorStat};

use crate::features::{Features, Sample};
use levee_model::IncidentInfo;
use serde::{Deserialize, Serialize};
use spoofing::round3;

/// Thresholds of the rules above.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyConfig {
    /// Weight a vector needs to count as an attack vector (and, for two of
    /// them, to make a `multi_vector`).
    pub vector_share: f64,
    /// Established-flow traffic has at most this many distinct (source,
    /// source port) pairs per ACK / FIN-ACK packet over the window.
    pub established_max_flow_ratio: f64,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        ClassifyConfig {
            vector_share: 0.2,
            established_max_flow_ratio: 0.5,
        }
    }
}

/// One vector of the traffic and its share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorShare {
    /// `traffic_spike` for the benign established-flow share.
    pub family: Family,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    /// Packets of the vector in the window (before baseline subtraction).
    pub packets: u64,
    pub packet_share: f64,
    pub byte_share: f64,
}

/// The verdict on one target's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub family: Family,
    /// A finer name when the family is broad (e.g. `syn_ack_reflection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    /// 0-100.
    pub confidence: u8,
    /// `None` for `traffic_spike`: benign traffic gets no rule.
    pub fingerprint: Option<Fingerprint>,
    pub spoofing: SpoofingEstimate,
    /// Every vector with at least 1% weight, heaviest first.
    pub vectors: Vec<VectorShare>,
    /// Why, in words.
    pub reasons: Vec<String>,
}

impl Classification {
    /// Fills the classification fields of an incident event.
    pub fn apply_to(&self, info: &mut IncidentInfo) {
        info.family = Some(self.family.as_str().to_string());
        info.confidence = Some(self.confidence);
        info.fingerprint = self
            .fingerprint
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok());
        let d = &mut info.details;
        d.variant = self.variant.map(|v| v.as_str().to_string());
        d.spoofing = serde_json::to_value(&self.spoofing).ok();
        d.vectors = serde_json::to_value(&self.vectors).ok();
    }
}

struct Weighted {
    stat: VectorStat,
    weight: f64,
    packet_share: f64,
    byte_share: f64,
}

/// Classifies a target's attack-window features, optionally against its
/// baseline-window features. `None` when the window holds no packets.
pub fn classify(
    attack: &Features,
    baseline: Option<&Features>,
    cfg: &ClassifyConfig,
) -> Option<Classification> {
    if attack.packets == 0 {
        return None;
    }
    let plan = Plan::new(attack, cfg);
    let stats = vectors::vector_stats(attack, &plan);
    let mut reasons = Vec::new();

    // Rule 1: excess over the baseline, when there is one and it leaves
    // anything; otherwise the raw window.
    let mut sized: Vec<VectorStat> = stats.clone();
    if let Some(base) = baseline.filter(|b| b.packets > 0) {
        let scale = attack.duration_s() / base.duration_s();
        let base_stats = vectors::vector_stats(base, &plan);
        let excess: Vec<VectorStat> = stats
            .iter()
            .map(|s| {
                let b = base_stats.iter().find(|b| b.kind == s.kind);
                let (bp, bb) = b.map_or((0.0, 0.0), |b| (b.packets * scale, b.bytes * scale));
                VectorStat {
                    kind: s.kind,
                    packets: (s.packets - bp).max(0.0),
                    bytes: (s.bytes - bb).max(0.0),
                }
            })
            .collect();
        if excess.iter().any(|s| s.packets > 0.0) {
            sized = excess;
            reasons.push("vectors sized by their excess over the baseline rate".into());
        } else {
            reasons.push("no vector above its baseline rate: shares of the whole window".into());
        }
    }

    // Rule 2: weights.
    let total_p: f64 = sized.iter().map(|s| s.packets).sum();
    let total_b: f64 = sized.iter().map(|s| s.bytes).sum();
    let mut weighted: Vec<Weighted> = sized
        .iter()
        .map(|s| {
            let packet_share = if total_p > 0.0 {
                s.packets / total_p
            } else {
                0.0
            };
            let byte_share = if total_b > 0.0 {
                s.bytes / total_b
            } else {
                0.0
            };
            Weighted {
                stat: *s,
                weight: packet_share.max(byte_share),
                packet_share,
                byte_share,
            }
        })
        .collect();
    weighted.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(a.stat.kind.cmp(&b.stat.kind))
    });

    let attacks: Vec<&Weighted> = weighted
        .iter()
        .filter(|w| w.stat.kind != VectorKind::Established && w.weight > 0.0)
        .collect();
    let established_w = weighted
        .iter()
        .find(|w| w.stat.kind == VectorKind::Established)
        .map_or(0.0, |w| w.weight);
    let strong: Vec<&Weighted> = attacks
        .iter()
        .copied()
        .filter(|w| w.weight >= cfg.vector_share)
        .collect();

    let sample = attack.sample.items();
    let base_sample = baseline.map(|b| b.sample.items());
    let members = |kind: VectorKind| -> Vec<Sample> {
        sample
            .iter()
            .filter(|s| plan.member(kind, s))
            .copied()
            .collect()
    };
    let describe = |w: &Weighted| {
        let variant = w
            .stat
            .kind
            .variant()
            .map_or(String::new(), |v| format!(" ({})", v.as_str()));
        format!(
            "{}{variant}: {:.0}% of packets, {:.0}% of bytes",
            w.stat.kind.family(),
            100.0 * w.packet_share,
            100.0 * w.byte_share
        )
    };

    let (family, variant, mut confidence, fingerprint, primary) = if strong.len() >= 2 {
        // Rule 3, several vectors.
        let parts: Vec<Fingerprint> = strong
            .iter()
            .filter_map(|w| fingerprint::fit(&members(w.stat.kind), base_sample))
            .collect();
        let union: Vec<Sample> = sample
            .iter()
            .filter(|s| strong.iter().any(|w| plan.member(w.stat.kind, s)))
            .copied()
            .collect();
        let fp = Fingerprint::any_of(parts, &union, base_sample);
        for w in &strong {
            reasons.push(describe(w));
        }
        reasons.push(format!(
            "multi_vector: {} vectors of at least {:.0}% each",
            strong.len(),
            100.0 * cfg.vector_share
        ));
        let c = 50.0 + 25.0 * (strong[0].weight + strong[1].weight);
        (Family::MultiVector, None, c, Some(fp), Some(strong[0]))
    } else if let Some(top) = strong.first().copied().or_else(|| {
        attacks
            .first()
            .copied()
            .filter(|w| w.weight > established_w)
    }) {
        // Rule 3 (one vector), or rule 4's fallback to the largest vector.
        let kind = top.stat.kind;
        let vector = members(kind);
        let fp = fingerprint::fit(&vector, base_sample);
        reasons.push(describe(top));
        let next = attacks
            .iter()
            .find(|w| w.stat.kind != kind)
            .map_or(0.0, |w| w.weight);
        let mut c = 50.0 + 50.0 * top.weight - 30.0 * (next / top.weight);
        if top.weight < cfg.vector_share {
            reasons.push(format!(
                "no vector reaches {:.0}%: reporting the largest",
                100.0 * cfg.vector_share
            ));
            c -= 20.0;
        }
        if let VectorKind::Amplification(svc) = kind {
            let class = crate::features::Class::from_amp(svc);
            let l4 = attack.class_packets(class);
            let sig = if l4 == 0 {
                0.0
            } else {
                attack.amp_signature[svc.index()] as f64 / l4 as f64
            };
            reasons.push(format!(
                "{:.0}% of packets from UDP port {} carry a {} response",
                100.0 * sig,
                svc.port(),
                svc.name()
            ));
            c -= 25.0 * (1.0 - sig);
        }
        if kind == VectorKind::SynAckReflection {
            reasons.push(
                "SYN-ACKs without matching SYNs: reflection of SYNs forged with the victim's address (family tcp_flag_abuse)"
                    .into(),
            );
        }
        (kind.family(), kind.variant(), c, fp, Some(top))
    } else {
        // Rule 4: benign.
        let top_attack = attacks.first().map_or(0.0, |w| w.weight);
        reasons.push(format!(
            "established-flow TCP dominates ({:.0}%): flows, not one-packet sources; no attack vector reaches {:.0}%",
            100.0 * established_w,
            100.0 * cfg.vector_share
        ));
        if let Some(note) = service_note(sample) {
            reasons.push(note);
        }
        let c = 40.0 + 55.0 * established_w - 50.0 * top_attack;
        (Family::TrafficSpike, None, c, None, None)
    };

    // Evidence penalties shared by every verdict.
    let primary_packets = primary.map_or(attack.packets as f64, |w| {
        stats
            .iter()
            .find(|s| s.kind == w.stat.kind)
            .map_or(0.0, |s| s.packets)
    });
    if primary_packets < 50.0 {
        confidence *= 0.5 + 0.5 * primary_packets / 50.0;
        reasons.push(format!("only {primary_packets:.0} packets: low evidence"));
    }
    if let Some(b) = fingerprint.as_ref().and_then(|f| f.baseline_match) {
        if b >= 0.05 {
            confidence -= 15.0;
            reasons.push(format!(
                "fingerprint also matches {:.0}% of the baseline traffic",
                100.0 * b
            ));
        }
    }

    let spoofing = match primary {
        Some(w) => {
            let kind = w.stat.kind;
            let packets = stats
                .iter()
                .find(|s| s.kind == kind)
                .map_or(0.0, |s| s.packets);
            spoofing::estimate(
                &members(kind),
                attack.distinct_sources_of(&plan.classes_of(kind)),
                packets as u64,
                attack,
                kind.is_reflection(),
            )
        }
        None => spoofing::estimate(
            sample,
            attack.distinct_sources(),
            attack.packets,
            attack,
            false,
        ),
    };

    let vectors = weighted
        .iter()
        .filter(|w| w.weight >= 0.01)
        .map(|w| VectorShare {
            family: w.stat.kind.family(),
            variant: w.stat.kind.variant(),
            packets: stats
                .iter()
                .find(|s| s.kind == w.stat.kind)
                .map_or(0, |s| s.packets as u64),
            packet_share: round3(w.packet_share),
            byte_share: round3(w.byte_share),
        })
        .collect();

    Some(Classification {
        family,
        variant,
        confidence: confidence.clamp(0.0, 99.0).round() as u8,
        fingerprint: fingerprint.map(round_fingerprint),
        spoofing,
        vectors,
        reasons,
    })
}

/// When benign TCP mostly comes from an amplification service's port, say
/// why that is not amplification: those services amplify over UDP, where the
/// requester's address can be forged; a TCP session needs a real handshake.
fn service_note(sample: &[Sample]) -> Option<String> {
    let mut bytes: std::collections::HashMap<(u8, u16), u64> = std::collections::HashMap::new();
    for s in sample.iter().filter(|s| s.has_ports) {
        *bytes.entry((s.protocol, s.src_port)).or_default() += u64::from(s.ip_len);
    }
    let ((protocol, port), _) = bytes
        .into_iter()
        .max_by_key(|&(k, b)| (b, std::cmp::Reverse(k)))?;
    let svc = crate::features::AmpService::from_port(port)?;
    (protocol == crate::meta::proto::TCP).then(|| {
        format!(
            "most bytes come from tcp/{port} (the {} port) inside established TCP sessions: a real session, not reflection ({} amplification uses UDP)",
            svc.name(),
            svc.name()
        )
    })
}

/// Three decimals, rounded towards the pessimistic side: coverage down,
/// baseline match up, so a reported 0.950 is never really 0.9496.
fn round_fingerprint(mut f: Fingerprint) -> Fingerprint {
    f.coverage = (f.coverage * 1000.0).floor() / 1000.0;
    f.baseline_match = f.baseline_match.map(|b| (b * 1000.0).ceil() / 1000.0);
    f.any_of = f.any_of.into_iter().map(round_fingerprint).collect();
    f
}
