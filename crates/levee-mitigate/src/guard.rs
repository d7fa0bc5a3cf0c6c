//! The collateral-damage guard: after a rule is applied, legitimate traffic
//! to the attacked address (segments received on established TCP
//! connections, which no attack packet is) is compared with its level
//! before the attack; when it has fallen by more than `max_drop` (90%), the
//! rule is cutting real users off and is rolled back.
//!
//! Pure logic here ([`LegitHistory`], [`judge`]); the measurement comes
//! through the [`LegitMeter`] seam (production: [`crate::meter`], reading
//! per-connection counters over NETLINK_SOCK_DIAG).

use crate::config::GuardConfig;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Cumulative legitimate packets received by each local address.
pub trait LegitMeter: Send {
    fn sample(&mut self) -> Result<BTreeMap<IpAddr, u64>, String>;
}

/// How long samples are kept.
const KEEP_MS: i64 = 10 * 60 * 1000;
/// The pre-attack window ends this long before the incident started (the
/// attack ramps up before it is detected) ...
const PRE_GAP_MS: i64 = 2_000;
/// ... and spans this long.
const PRE_SPAN_MS: i64 = 30_000;
/// The post-apply rate is measured over this window.
const POST_SPAN_MS: i64 = 3_000;
/// A rate needs samples at least this far apart.
const MIN_SPAN_MS: i64 = 1_500;

/// One address's cumulative counter over time.
#[derive(Debug, Clone, Default)]
pub struct LegitHistory {
    samples: VecDeque<(i64, u64)>,
}

impl LegitHistory {
    pub fn push(&mut self, unix_ms: i64, packets: u64) {
        if self.samples.back().is_some_and(|(t, _)| *t >= unix_ms) {
            return;
        }
        self.samples.push_back((unix_ms, packets));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| *t < unix_ms - KEEP_MS)
        {
            self.samples.pop_front();
        }
    }

    /// Packets per second between the first sample at or after `from` and
    /// the last at or before `to`; `None` when they are too close.
    pub fn rate(&self, from: i64, to: i64) -> Option<f64> {
        let a = self.samples.iter().find(|(t, _)| *t >= from)?;
        let b = self.samples.iter().rev().find(|(t, _)| *t <= to)?;
        if b.0 - a.0 < MIN_SPAN_MS {
            return None;
        }
        // A counter that went down (connections closed) counts as nothing.
        Some(b.1.saturating_sub(a.1) as f64 * 1000.0 / (b.0 - a.0) as f64)
    }

    /// The rate before an incident that started at `started_ms`.
    pub fn pre_attack(&self, started_ms: i64) -> Option<f64> {
        let end = started_ms - PRE_GAP_MS;
        self.rate(end - PRE_SPAN_MS, end)
    }

    /// The rate over the last few seconds up to `now`.
    pub fn recent(&self, now_ms: i64) -> Option<f64> {
        self.rate(now_ms - POST_SPAN_MS, now_ms)
    }
}

/// The guard's judgement of one rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Too early, or not enough samples yet.
    Wait,
    /// Too little legitimate traffic before the attack to judge by.
    Unjudgeable,
    Fine {
        before: f64,
        after: f64,
    },
    RollBack {
        before: f64,
        after: f64,
    },
}

impl Verdict {
    /// The reason given in `mitigation_rolled_back`.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::RollBack { before, after } => Some(format!(
                "collateral damage: legitimate traffic (established TCP) fell from {before:.1} to {after:.1} packets/s ({:.0}% drop) after the rule was applied",
                (1.0 - after / before) * 100.0
            )),
            _ => None,
        }
    }
}

/// Judges a rule applied `since_apply` ago, given the legitimate rate
/// before the attack and now.
pub fn judge(
    cfg: &GuardConfig,
    before: Option<f64>,
    after: Option<f64>,
    since_apply: Duration,
) -> Verdict {
    if !cfg.enabled || since_apply < cfg.grace {
        return Verdict::Wait;
    }
    let (Some(before), Some(after)) = (before, after) else {
        return Verdict::Wait;
    };
    if before < cfg.min_pps || before <= 0.0 {
        return Verdict::Unjudgeable;
    }
    if 1.0 - after / before > cfg.max_drop {
        Verdict::RollBack { before, after }
    } else {
        Verdict::Fine { before, after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GuardConfig {
        GuardConfig::default()
    }

    #[test]
    fn verdicts() {
        let g = cfg();
        let s = Duration::from_secs(10);
        assert_eq!(
            judge(&g, Some(100.0), Some(5.0), Duration::from_secs(1)),
            Verdict::Wait
        );
        assert_eq!(judge(&g, None, Some(5.0), s), Verdict::Wait);
        assert_eq!(judge(&g, Some(2.0), Some(0.0), s), Verdict::Unjudgeable);
        assert_eq!(
            judge(&g, Some(100.0), Some(20.0), s),
            Verdict::Fine {
                before: 100.0,
                after: 20.0
            }
        );
        let v = judge(&g, Some(100.0), Some(5.0), s);
        assert_eq!(
            v,
            Verdict::RollBack {
                before: 100.0,
                after: 5.0
            }
        );
        assert!(v.reason().unwrap().contains("95% drop"), "{:?}", v.reason());
        let off = GuardConfig {
            enabled: false,
            ..cfg()
        };
        assert_eq!(judge(&off, Some(100.0), Some(0.0), s), Verdict::Wait);
    }

    #[test]
    fn history_rates() {
        let mut h = LegitHistory::default();
        // 100 packets/s for 40 s, then nothing.
        for i in 0..=40 {
            h.push(i * 1000, (i * 100) as u64);
        }
        for i in 41..=50 {
            h.push(i * 1000, 4000);
        }
        let started = 42_000;
        assert_eq!(h.pre_attack(started), Some(100.0));
        assert_eq!(h.recent(50_000), Some(0.0));
        assert_eq!(h.rate(49_500, 50_000), None, "too short a span");
        // Counters that go down (sockets closed) never make negative rates.
        h.push(51_000, 10);
        assert_eq!(h.rate(50_000, 51_000), None);
        assert_eq!(h.rate(49_000, 51_000), Some(0.0));
        // Old samples are dropped, duplicates ignored.
        h.push(51_000, 99);
        h.push(1_000_000, 0);
        assert_eq!(h.samples.len(), 1);
    }
}
