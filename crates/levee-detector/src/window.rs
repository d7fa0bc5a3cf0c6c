//! The sliding window of per-second values behind one baseline, and its p99.

use std::collections::VecDeque;

/// A bounded window whose p99 is recomputed every `recompute_every` pushes.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineWindow {
    values: VecDeque<f64>,
    capacity: usize,
    recompute_every: usize,
    pushes_since_recompute: usize,
    p99: Option<f64>,
    /// Every sample ever accepted (restored ones included): the warm-up counter.
    total: u64,
}

impl BaselineWindow {
    pub fn new(capacity: usize, recompute_every: usize) -> Self {
        BaselineWindow {
            values: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
            recompute_every: recompute_every.max(1),
            pushes_since_recompute: 0,
            p99: None,
            total: 0,
        }
    }

    /// Rebuilds a window from saved values (oldest first), keeping the newest
    /// `capacity` of them, with the p99 computed at once.
    pub fn restore(capacity: usize, recompute_every: usize, values: &[f64], total: u64) -> Self {
        let mut w = BaselineWindow::new(capacity, recompute_every);
        let skip = values.len().saturating_sub(w.capacity);
        w.values.extend(
            values
                .iter()
                .skip(skip)
                .copied()
                .filter(|v| v.is_finite() && *v >= 0.0),
        );
        w.total = total.max(w.values.len() as u64);
        w.recompute();
        w
    }

    pub fn push(&mut self, value: f64) {
        // A non-finite or negative rate is a source bug; keeping it out of the
        // window protects every later threshold.
        if !(value.is_finite() && value >= 0.0) {
            return;
        }
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
        self.total += 1;
        self.pushes_since_recompute += 1;
        if self.p99.is_none() || self.pushes_since_recompute >= self.recompute_every {
            self.recompute();
        }
    }

    fn recompute(&mut self) {
        self.pushes_since_recompute = 0;
        self.p99 = percentile(self.values.iter().copied(), 0.99);
    }

    /// The cached p99, `None` while empty.
    pub fn p99(&self) -> Option<f64> {
        self.p99
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied()
    }
}

/// Nearest-rank percentile (`q` in 0..=1) of finite values; `None` when empty.
pub fn percentile(values: impl Iterator<Item = f64>, q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    let (_, nth, _) = v.select_nth_unstable_by(rank - 1, |a, b| a.total_cmp(b));
    Some(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_p99() {
        assert_eq!(percentile((1..=100).map(f64::from), 0.99), Some(99.0));
        assert_eq!(percentile((1..=300).map(f64::from), 0.99), Some(297.0));
        assert_eq!(percentile([5.0].into_iter(), 0.99), Some(5.0));
        assert_eq!(percentile(std::iter::empty(), 0.99), None);
    }

    #[test]
    fn p99_is_recomputed_every_n_samples() {
        let mut w = BaselineWindow::new(300, 10);
        w.push(1.0);
        assert_eq!(w.p99(), Some(1.0), "first sample computes at once");
        for _ in 0..8 {
            w.push(1000.0);
        }
        assert_eq!(
            w.p99(),
            Some(1.0),
            "cached until 10 pushes since last recompute"
        );
        w.push(1000.0);
        w.push(1000.0);
        assert_eq!(w.p99(), Some(1000.0));
    }

    #[test]
    fn window_slides_and_counts_total() {
        let mut w = BaselineWindow::new(10, 1);
        for i in 0..25 {
            w.push(i as f64);
        }
        assert_eq!(w.len(), 10);
        assert_eq!(w.total(), 25);
        assert_eq!(w.values().next(), Some(15.0));
        w.push(f64::NAN);
        w.push(-1.0);
        assert_eq!(w.total(), 25, "invalid values are ignored");
    }

    #[test]
    fn restore_keeps_newest() {
        let vals: Vec<f64> = (0..20).map(f64::from).collect();
        let w = BaselineWindow::restore(10, 10, &vals, 500);
        assert_eq!(w.len(), 10);
        assert_eq!(w.values().next(), Some(10.0));
        assert_eq!(w.total(), 500);
        assert_eq!(w.p99(), Some(19.0));
    }
}
