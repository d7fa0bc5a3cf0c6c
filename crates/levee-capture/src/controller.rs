//! The adaptive sampling controller: picks N so that about `budget` sampled
//! packets per second reach user space, whatever the line rate.
//!
//! Pure: the caller reports the sampled rate it observed at the current N
//! (e.g. once a second) and applies the N it gets back. The line rate is
//! estimated as `observed x N`; the ideal N is `ceil(line / budget)`.
//!
//! Why the bounds:
//! - N never goes below 1 (a `mod #0` filter is rejected by the kernel) nor
//!   above `max_rate`;
//! - one step multiplies N by at most `max_up` (a flood can start at line
//!   rate, so going up must be fast) and divides it by at most `max_down`
//!   (when a flood stops, dropping N slowly avoids a burst of sampled
//!   packets if it resumes);
//! - hysteresis: while the sampled rate is within `[budget / 2, budget]`
//!   N is kept, so a steady flood does not make the filter flap.

/// Controller parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerConfig {
    /// Target sampled packets per second.
    pub budget_pps: f64,
    /// Largest N ever chosen.
    pub max_rate: u32,
    /// Largest factor N may grow by in one step.
    pub max_up: u32,
    /// Largest factor N may shrink by in one step.
    pub max_down: u32,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            budget_pps: 20_000.0,
            max_rate: 1 << 20,
            max_up: 16,
            max_down: 4,
        }
    }
}

/// The controller's state: the N in force.
#[derive(Debug, Clone)]
pub struct SamplingController {
    cfg: ControllerConfig,
    rate: u32,
}

impl SamplingController {
    /// Starts at N = 1. Nonsensical parameters are repaired (budget at least
    /// 1 pps, factors at least 2, `max_rate` at least 1), never rejected.
    pub fn new(cfg: ControllerConfig) -> Self {
        let cfg = ControllerConfig {
            budget_pps: if cfg.budget_pps.is_finite() {
                cfg.budget_pps.max(1.0)
            } else {
                20_000.0
            },
            max_rate: cfg.max_rate.max(1),
            max_up: cfg.max_up.max(2),
            max_down: cfg.max_down.max(2),
        };
        SamplingController { cfg, rate: 1 }
    }

    /// The N in force.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.cfg
    }

    /// Reports the sampled packets per second observed while the current N
    /// was in force; returns the N to use from now on (possibly unchanged).
    /// Negative or non-finite observations count as 0.
    pub fn observe(&mut self, sampled_pps: f64) -> u32 {
        let observed = if sampled_pps.is_finite() {
            sampled_pps.max(0.0)
        } else {
            0.0
        };
        let budget = self.cfg.budget_pps;
        // Within [budget/2, budget]: good enough, keep (hysteresis).
        if observed <= budget && (observed >= budget / 2.0 || self.rate == 1) {
            return self.rate;
        }
        let line = observed * f64::from(self.rate);
        let ideal = (line / budget).ceil();
        // Rounded up: N / max_down floored would let N shrink by more than
        // max_down (11 / 4 = 2, a factor 5.5).
        let lo = self.rate.div_ceil(self.cfg.max_down).max(1);
        let hi = self
            .rate
            .saturating_mul(self.cfg.max_up)
            .min(self.cfg.max_rate);
        // f64 -> u32 `as` saturates; the clamp bounds the jump.
        let ideal = (ideal.max(1.0) as u32).clamp(lo, hi.max(lo));
        self.rate = ideal.clamp(1, self.cfg.max_rate);
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctl(budget: f64) -> SamplingController {
        SamplingController::new(ControllerConfig {
            budget_pps: budget,
            ..ControllerConfig::default()
        })
    }

    #[test]
    fn quiet_link_stays_at_one() {
        let mut c = ctl(20_000.0);
        assert_eq!(c.observe(10.0), 1);
        assert_eq!(c.observe(0.0), 1);
        assert_eq!(c.observe(f64::NAN), 1);
        assert_eq!(c.observe(-5.0), 1);
    }

    #[test]
    fn flood_raises_n_quickly_then_holds() {
        let mut c = ctl(20_000.0);
        let line = 2_000_000.0;
        let mut steps = 0;
        while c.observe(line / f64::from(c.rate())) != 100 {
            steps += 1;
            assert!(steps < 5, "rate {}", c.rate());
        }
        // Steady: unchanged.
        assert_eq!(c.observe(line / 100.0), 100);
    }

    /// Regression (proptest found it: [210169.8, NaN]): from N = 11 a
    /// silent interval may shrink N by at most max_down (4), to 3, not 2.
    #[test]
    fn shrinking_rounds_up() {
        let mut c = ctl(20_000.0);
        assert_eq!(c.observe(210_169.8), 11);
        assert_eq!(c.observe(f64::NAN), 3);
    }

    #[test]
    fn repairs_bad_config() {
        let c = SamplingController::new(ControllerConfig {
            budget_pps: f64::INFINITY,
            max_rate: 0,
            max_up: 0,
            max_down: 1,
        });
        assert_eq!(c.config().max_rate, 1);
        assert_eq!(c.config().budget_pps, 20_000.0);
    }

    proptest! {
        /// With a constant line rate the controller converges within a few
        /// steps to an N that keeps the sampled rate at most the budget (and
        /// at least half of it unless N = 1 or N hit max_rate).
        #[test]
        fn converges_to_budget(line in 0.0f64..5e8, budget in 100.0f64..1e6) {
            let mut c = ctl(budget);
            for _ in 0..12 {
                c.observe(line / f64::from(c.rate()));
            }
            let n = c.rate();
            let sampled = line / f64::from(n);
            prop_assert!(n >= 1);
            prop_assert!(n == c.config().max_rate || sampled <= budget * 1.000_001,
                "n {n} sampled {sampled}");
            prop_assert!(n == 1 || n == c.config().max_rate || sampled >= budget / 2.0 * 0.999_999,
                "n {n} sampled {sampled}");
            // Stable once converged.
            prop_assert_eq!(c.observe(sampled), n);
        }

        /// Whatever is observed, N stays in [1, max_rate] and each step
        /// moves it by a bounded factor.
        #[test]
        fn bounded_jumps(obs in proptest::collection::vec(prop_oneof![
            0.0f64..1e9, Just(f64::NAN), Just(f64::INFINITY), Just(-1.0)], 1..40)) {
            let mut c = ctl(20_000.0);
            let cfg = *c.config();
            for o in obs {
                let before = c.rate();
                let after = c.observe(o);
                prop_assert!(after >= 1 && after <= cfg.max_rate);
                prop_assert!(u64::from(after) <= u64::from(before) * u64::from(cfg.max_up));
                prop_assert!(u64::from(after) * u64::from(cfg.max_down) >= u64::from(before));
            }
        }
    }
}
