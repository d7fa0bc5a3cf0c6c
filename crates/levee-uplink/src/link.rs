//! The link's state machine: up, or down with a time before which no new
//! attempt is made. Each failure doubles the wait (from `initial` up to
//! `max`); the wait is drawn in [half, full] ("equal jitter") so thousands of
//! agents that lost the same server do not come back in lockstep.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Down { failures: u32, retry_at: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    Success,
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures, before jitter.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << exp).min(self.max)
    }
}

/// The one transition function. `jitter` in [0, 1] picks the wait within
/// [ceiling / 2, ceiling].
pub fn step(
    state: LinkState,
    event: LinkEvent,
    now: Instant,
    backoff: &Backoff,
    jitter: f64,
) -> LinkState {
    match event {
        LinkEvent::Success => LinkState::Up,
        LinkEvent::Failure => {
            let failures = match state {
                LinkState::Up => 1,
                LinkState::Down { failures, .. } => failures.saturating_add(1),
            };
            let ceiling = backoff.ceiling(failures);
            let wait = ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
            LinkState::Down {
                failures,
                retry_at: now + wait,
            }
        }
    }
}

/// Whether an attempt may be made now.
pub fn may_try(state: LinkState, now: Instant) -> bool {
    match state {
        LinkState::Up => true,
        LinkState::Down { retry_at, .. } => now >= retry_at,
    }
}

/// A link with its own jitter source.
#[derive(Debug)]
pub struct Link {
    pub state: LinkState,
    pub backoff: Backoff,
}

impl Link {
    pub fn new(backoff: Backoff) -> Self {
        Link {
            state: LinkState::Up,
            backoff,
        }
    }

    pub fn on(&mut self, event: LinkEvent) {
        let before = self.state;
        self.state = step(
            self.state,
            event,
            Instant::now(),
            &self.backoff,
            rand::random::<f64>(),
        );
        match (before, self.state) {
            (LinkState::Up, LinkState::Down { .. }) => {
                tracing::warn!("server unreachable; retrying with backoff")
            }
            (LinkState::Down { failures, .. }, LinkState::Up) => {
                tracing::info!("server reachable again after {failures} failed attempts")
            }
            _ => {}
        }
    }

    pub fn may_try(&self) -> bool {
        may_try(self.state, Instant::now())
    }

    pub fn is_up(&self) -> bool {
        self.state == LinkState::Up
    }

    /// Time until the next attempt is allowed (zero when up).
    pub fn wait(&self) -> Duration {
        match self.state {
            LinkState::Up => Duration::ZERO,
            LinkState::Down { retry_at, .. } => retry_at.saturating_duration_since(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
    };

    #[test]
    fn failures_double_the_wait_up_to_the_cap_and_success_resets() {
        let t0 = Instant::now();
        let mut s = LinkState::Up;
        let mut waits = Vec::new();
        for _ in 0..9 {
            s = step(s, LinkEvent::Failure, t0, &B, 1.0);
            let LinkState::Down { retry_at, .. } = s else {
                panic!()
            };
            waits.push((retry_at - t0).as_millis());
        }
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert!(!may_try(s, t0));
        assert!(may_try(s, t0 + Duration::from_secs(30)));
        s = step(s, LinkEvent::Success, t0, &B, 0.0);
        assert_eq!(s, LinkState::Up);
        assert!(may_try(s, t0));
    }

    #[test]
    fn jitter_spreads_within_half_to_full() {
        let t0 = Instant::now();
        let lo = step(LinkState::Up, LinkEvent::Failure, t0, &B, 0.0);
        let hi = step(LinkState::Up, LinkEvent::Failure, t0, &B, 1.0);
        assert_eq!(
            lo,
            LinkState::Down {
                failures: 1,
                retry_at: t0 + Duration::from_millis(250)
            }
        );
        assert_eq!(
            hi,
            LinkState::Down {
                failures: 1,
                retry_at: t0 + Duration::from_millis(500)
            }
        );
    }

    proptest! {
        #[test]
        fn wait_is_always_within_bounds(fails in 1u32..10_000, jitter in 0.0f64..=1.0) {
            let t0 = Instant::now();
            let mut s = LinkState::Down { failures: fails - 1, retry_at: t0 };
            if fails == 1 { s = LinkState::Up; }
            let LinkState::Down { failures, retry_at } = step(s, LinkEvent::Failure, t0, &B, jitter) else { unreachable!() };
            prop_assert_eq!(failures, fails);
            let w = retry_at - t0;
            prop_assert!(w >= Duration::from_millis(250) && w <= B.max);
        }
    }
}
