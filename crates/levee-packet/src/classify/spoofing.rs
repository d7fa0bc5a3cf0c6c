//! Spoofing estimate ([`SpoofingEstimate`]): how likely the attack's source
//! addresses are forged, which decides whether blocking by source can work.
//!
//! Rule (score 0-100, "likely" at 60 or more), on the attack vector's packets:
//! 1. Start from distinct sources / packets over the window, x 100 (from the
//!    per-class HyperLogLog sketches, not the sample, so a large botnet whose
//!    bots each send many packets is not mistaken for random spoofing): random
//!    spoofing gives each packet a new address, real senders repeat theirs.
//! 2. With 16 or more distinct sources, a narrow TTL set in the sample (4
//!    values or fewer) adds 15: thousands of "different" hosts at the same hop
//!    distance are one host forging addresses. A wide spread (12 or more
//!    values) removes 20: real hosts sit at many distances.
//! 3. Fewer than 20 packets scale the score down proportionally: too little
//!    evidence.
//! 4. Reflection vectors (amplification, other UDP reflection, SYN-ACK
//!    reflection) are capped at 15: their sources are real servers answering
//!    requests forged with the *victim's* address, so they can be blocked.

use crate::features::{Features, Sample};
use serde::{Deserialize, Serialize};

/// How likely the sources are forged, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoofingEstimate {
    /// 0 (real senders) to 100 (certainly forged).
    pub score: u8,
    pub likely: bool,
    /// Distinct sources of the target's traffic (HyperLogLog estimate).
    pub distinct_sources: u64,
    /// Source address entropy of the target's traffic, bits.
    pub source_entropy_bits: f64,
    /// Entropy / log2(distinct sources), 0-1.
    pub source_entropy_normalized: f64,
    /// Packets of the attack vector in the window.
    pub vector_packets: u64,
    /// Distinct sources of the attack vector (sketch estimate).
    pub vector_sources: u64,
    /// `vector_sources / vector_packets`.
    pub distinct_ratio: f64,
    /// Distinct TTL values in the vector's sampled packets.
    pub ttl_values: u32,
    pub reason: String,
}

/// Estimates spoofing for a vector: its sampled packets (for TTLs), its
/// distinct sources and packets over the window, and the target's features.
/// `reflection` says the vector is a reflection.
pub fn estimate(
    sample: &[Sample],
    vector_sources: u64,
    vector_packets: u64,
    f: &Features,
    reflection: bool,
) -> SpoofingEstimate {
    let mut ttls = [false; 256];
    for s in sample {
        ttls[usize::from(s.ttl)] = true;
    }
    let ttl_values = ttls.iter().filter(|&&b| b).count() as u32;
    let ratio = if vector_packets == 0 {
        0.0
    } else {
        (vector_sources as f64 / vector_packets as f64).min(1.0)
    };

    let mut score = 100.0 * ratio;
    let mut why = vec![format!(
        "{vector_sources} distinct sources for {vector_packets} packets"
    )];
    if vector_sources >= 16 {
        if ttl_values <= 4 {
            score += 15.0;
            why.push(format!(
                "only {ttl_values} TTL values: one origin behind many addresses"
            ));
        } else if ttl_values >= 12 {
            score -= 20.0;
            why.push(format!(
                "{ttl_values} TTL values: senders at many distances"
            ));
        }
    }
    if vector_packets < 20 {
        score *= vector_packets as f64 / 20.0;
        why.push("few packets".into());
    }
    if reflection {
        score = score.min(15.0);
        why.push("reflection: sources are real servers answering requests forged with the victim's address".into());
    }
    let score = score.clamp(0.0, 100.0).round() as u8;
    SpoofingEstimate {
        score,
        likely: score >= 60,
        distinct_sources: f.distinct_sources(),
        source_entropy_bits: round3(f.source_entropy_bits()),
        source_entropy_normalized: round3(f.source_entropy_normalized()),
        vector_packets,
        vector_sources,
        distinct_ratio: round3(ratio),
        ttl_values,
        reason: why.join("; "),
    }
}

/// Three decimals: enough for humans, and stable JSON for golden tests.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
