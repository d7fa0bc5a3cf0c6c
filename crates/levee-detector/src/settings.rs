//! The detector's tunables, their defaults, and their validation.
//!
//! The defaults are the product's promise of "no threshold tuning": a 300-sample
//! window of per-second values, alert at 3 x p99, confirmation over about a third
//! of a second, and per-metric absolute floors that keep a near-idle host quiet.

use levee_model::Metric;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSettings {
    /// Alert when a value exceeds `multiplier` x p99 of its window (and the floor).
    pub multiplier: f64,
    /// Per-second samples in the sliding window.
    pub window: usize,
    /// The p99 is recomputed after this many new samples (not every second: a
    /// sort of 300 values per series per second is wasted work on a busy collector).
    pub recompute_every: usize,
    /// Per-second samples a series needs before it may alert (the learning phase).
    pub warmup_samples: u64,
    /// The tick length the caller uses, in milliseconds; confirmation is sized by it.
    pub tick_ms: u64,
    /// Consecutive ticks above threshold before an incident starts (sub-second
    /// ticks only; see [`DetectorSettings::confirm_ticks_effective`]).
    pub confirm_ticks: u32,
    /// Time below threshold after which an incident resolves.
    pub quiet_period_ms: u64,
    /// Interval between `incident_updated` outputs.
    pub update_interval_ms: u64,
    /// Absolute floor per metric: a value below its floor never alerts.
    pub floors: BTreeMap<Metric, f64>,
    /// Per-IP and per-prefix targets kept (flow and mirror modes).
    pub max_targets: usize,
}

/// Default absolute floors. Chosen so that an idle or lightly used host (a few
/// hundred pps, a handful of connections) cannot alert however flat its baseline,
/// while every flood the lab produces (>= 50 kpps) is far above.
pub fn default_floor(metric: Metric) -> f64 {
    match metric {
        Metric::RxPps => 2_000.0,
        Metric::RxBps => 20_000_000.0,
        Metric::TcpPps => 2_000.0,
        Metric::UdpPps => 2_000.0,
        Metric::IcmpPps => 500.0,
        Metric::SynRecv => 100.0,
        Metric::Connections => 1_000.0,
        Metric::Flows => 1_000.0,
    }
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            multiplier: 3.0,
            window: 300,
            recompute_every: 10,
            warmup_samples: 300,
            tick_ms: 1_000,
            confirm_ticks: 3,
            quiet_period_ms: 10_000,
            update_interval_ms: 1_000,
            floors: Metric::ALL
                .into_iter()
                .map(|m| (m, default_floor(m)))
                .collect(),
            max_targets: 100_000,
        }
    }
}

/// A setting out of range, named by its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("detector setting `{field}`: {problem}")]
pub struct SettingsError {
    pub field: String,
    pub problem: String,
}

impl DetectorSettings {
    pub fn floor(&self, metric: Metric) -> f64 {
        self.floors
            .get(&metric)
            .copied()
            .unwrap_or_else(|| default_floor(metric))
    }

    /// Confirmation never waits longer than about one second: with 100 ms ticks it
    /// is `confirm_ticks` (3 -> 300 ms), with 1 s ticks a single tick, which already
    /// averages a full second and so cannot be a microburst.
    pub fn confirm_ticks_effective(&self) -> u32 {
        let per_second = 1_000u64.div_ceil(self.tick_ms.max(1)).max(1);
        (self.confirm_ticks as u64).clamp(1, per_second) as u32
    }

    /// Every problem at once, so a config file is fixed in one pass.
    pub fn validate(&self) -> Vec<SettingsError> {
        let mut errs = Vec::new();
        let mut bad = |field: &str, problem: String| {
            errs.push(SettingsError {
                field: field.to_string(),
                problem,
            })
        };
        if !(self.multiplier.is_finite() && self.multiplier > 1.0) {
            bad(
                "multiplier",
                format!("must be a number above 1.0 (got {})", self.multiplier),
            );
        }
        if !(10..=86_400).contains(&self.window) {
            bad(
                "window",
                format!("must be 10..=86400 samples (got {})", self.window),
            );
        }
        if self.recompute_every == 0 || self.recompute_every > self.window.max(1) {
            bad(
                "recompute_every",
                format!("must be 1..=window (got {})", self.recompute_every),
            );
        }
        if !(100..=60_000).contains(&self.tick_ms) {
            bad(
                "tick",
                format!("must be between 100ms and 60s (got {}ms)", self.tick_ms),
            );
        }
        if self.confirm_ticks == 0 || self.confirm_ticks > 100 {
            bad(
                "confirm_ticks",
                format!("must be 1..=100 (got {})", self.confirm_ticks),
            );
        }
        if self.max_targets == 0 || self.max_targets > 10_000_000 {
            bad(
                "max_targets",
                format!("must be 1..=10000000 (got {})", self.max_targets),
            );
        }
        if self.update_interval_ms == 0 {
            bad("update_interval", "must be above zero".to_string());
        }
        for (m, f) in &self.floors {
            if !(f.is_finite() && *f >= 0.0) {
                bad(
                    &format!("floors.{m}"),
                    format!("must be a non-negative number (got {f})"),
                );
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(DetectorSettings::default().validate().is_empty());
    }

    #[test]
    fn confirmation_is_capped_at_one_second() {
        let mut s = DetectorSettings {
            tick_ms: 100,
            ..Default::default()
        };
        assert_eq!(s.confirm_ticks_effective(), 3);
        s.tick_ms = 1_000;
        assert_eq!(s.confirm_ticks_effective(), 1);
        s.tick_ms = 500;
        assert_eq!(s.confirm_ticks_effective(), 2);
        s.tick_ms = 250;
        s.confirm_ticks = 10;
        assert_eq!(s.confirm_ticks_effective(), 4);
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut s = DetectorSettings {
            multiplier: 0.5,
            tick_ms: 5,
            confirm_ticks: 0,
            ..Default::default()
        };
        s.floors.insert(Metric::RxPps, -1.0);
        let fields: Vec<_> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["multiplier", "tick", "confirm_ticks", "floors.rx_pps"]
        );
    }
}
