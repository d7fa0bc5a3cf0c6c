//! One baseline series (a metric on a target): folds tick values into
//! per-second samples, and answers "is this value above the threshold?".

use crate::settings::DetectorSettings;
use crate::window::BaselineWindow;
use levee_model::Metric;

/// A series' view of its own threshold at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// p99 of the window.
    pub baseline: f64,
    /// max(multiplier x baseline, floor).
    pub threshold: f64,
}

#[derive(Debug, Clone)]
pub struct Series {
    metric: Metric,
    window: BaselineWindow,
    /// Time-weighted sum (value x ms) of the ticks in the current second.
    bucket_sum: f64,
    bucket_ms: u64,
    /// Set when any tick of the current second fell inside an incident: the whole
    /// second is then kept out of the baseline, so an attack never becomes normal.
    bucket_tainted: bool,
    pub last_value: f64,
    pub last_seen_ms: i64,
}

impl Series {
    pub fn new(metric: Metric, settings: &DetectorSettings) -> Self {
        Series::with_window(
            metric,
            BaselineWindow::new(settings.window, settings.recompute_every),
        )
    }

    pub fn with_window(metric: Metric, window: BaselineWindow) -> Self {
        Series {
            metric,
            window,
            bucket_sum: 0.0,
            bucket_ms: 0,
            bucket_tainted: false,
            last_value: 0.0,
            last_seen_ms: 0,
        }
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn window(&self) -> &BaselineWindow {
        &self.window
    }

    pub fn is_warm(&self, settings: &DetectorSettings) -> bool {
        self.window.total() >= settings.warmup_samples && self.window.p99().is_some()
    }

    /// The threshold in force, or `None` during the learning phase.
    pub fn threshold(&self, settings: &DetectorSettings) -> Option<Threshold> {
        if !self.is_warm(settings) {
            return None;
        }
        let baseline = self.window.p99()?;
        let threshold = (baseline * settings.multiplier).max(settings.floor(self.metric));
        Some(Threshold {
            baseline,
            threshold,
        })
    }

    /// Records one tick's value; returns true when a per-second sample was
    /// completed and taken into the window.
    pub fn record_tick(&mut self, now_ms: i64, value: f64, dt_ms: u64, in_incident: bool) -> bool {
        let value = if value.is_finite() && value >= 0.0 {
            value
        } else {
            0.0
        };
        self.last_value = value;
        self.last_seen_ms = now_ms;
        self.bucket_sum += value * dt_ms as f64;
        self.bucket_ms += dt_ms;
        self.bucket_tainted |= in_incident;
        // A second is complete once the ticks in it span 1000 ms; with 1 s ticks
        // every tick completes one, with 100 ms ticks every tenth.
        if self.bucket_ms < 1_000 {
            return false;
        }
        let per_second = self.bucket_sum / self.bucket_ms as f64;
        let accepted = !self.bucket_tainted;
        if accepted {
            self.window.push(per_second);
        }
        self.bucket_sum = 0.0;
        self.bucket_ms = 0;
        self.bucket_tainted = false;
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DetectorSettings {
        DetectorSettings {
            warmup_samples: 3,
            tick_ms: 100,
            ..Default::default()
        }
    }

    #[test]
    fn ten_ticks_of_100ms_make_one_second() {
        let s = settings();
        let mut series = Series::new(Metric::RxPps, &s);
        for i in 0..9 {
            assert!(!series.record_tick(i * 100, 10.0 * i as f64, 100, false));
        }
        assert!(series.record_tick(900, 90.0, 100, false));
        assert_eq!(series.window().len(), 1);
        assert_eq!(
            series.window().p99(),
            Some(45.0),
            "time-weighted mean of 0..=90"
        );
    }

    #[test]
    fn tainted_seconds_are_excluded() {
        let s = settings();
        let mut series = Series::new(Metric::RxPps, &s);
        for i in 0..10 {
            series.record_tick(i * 100, 5.0, 100, i == 4);
        }
        assert!(series.window().is_empty());
        for i in 10..20 {
            series.record_tick(i * 100, 5.0, 100, false);
        }
        assert_eq!(series.window().len(), 1);
    }

    #[test]
    fn threshold_needs_warmup_and_respects_floor() {
        let s = settings();
        let mut series = Series::new(Metric::RxPps, &s);
        for i in 0..2 {
            series.record_tick(i * 1000, 100.0, 1000, false);
        }
        assert_eq!(series.threshold(&s), None);
        series.record_tick(2000, 100.0, 1000, false);
        let t = series.threshold(&s).unwrap();
        assert_eq!(t.baseline, 100.0);
        assert_eq!(t.threshold, 2_000.0, "floor wins over 3 x 100");
        for i in 3..20 {
            series.record_tick(i * 1000, 10_000.0, 1000, false);
        }
        assert_eq!(series.threshold(&s).unwrap().threshold, 30_000.0);
    }
}
