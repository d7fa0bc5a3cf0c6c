//! Where samples get their timestamps: [`Clock`], with [`SystemClock`] for real
//! use and [`ManualClock`] so tests (and replays) are deterministic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The two times a [`levee_model::RawSample`] carries.
pub trait Clock: Send {
    /// Monotonic milliseconds since a fixed origin; rates are computed from
    /// differences of this, so it must never go backwards.
    fn mono_ms(&self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch (may jump; only labels).
    fn unix_ms(&self) -> i64;
}

/// `Instant` relative to the clock's creation, and `SystemTime`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn mono_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn unix_ms(&self) -> i64 {
        // A wall clock set before 1970 is broken but must not stop sampling.
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test
/// keeps one handle while a [`crate::KernelSource`] owns another.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    mono_ms: Arc<AtomicU64>,
    unix_ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(mono_ms: u64, unix_ms: i64) -> Self {
        ManualClock {
            mono_ms: Arc::new(AtomicU64::new(mono_ms)),
            unix_ms: Arc::new(AtomicI64::new(unix_ms)),
        }
    }

    /// Moves both times forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.mono_ms.fetch_add(ms, Ordering::SeqCst);
        self.unix_ms
            .fetch_add(i64::try_from(ms).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    pub fn set(&self, mono_ms: u64, unix_ms: i64) {
        self.mono_ms.store(mono_ms, Ordering::SeqCst);
        self.unix_ms.store(unix_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn mono_ms(&self) -> u64 {
        self.mono_ms.load(Ordering::SeqCst)
    }

    fn unix_ms(&self) -> i64 {
        self.unix_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000, 1_700_000_000_000);
        let handle = c.clone();
        handle.advance(100);
        assert_eq!((c.mono_ms(), c.unix_ms()), (1_100, 1_700_000_000_100));
    }

    #[test]
    fn system_clock_is_monotonic_and_near_now() {
        let c = SystemClock::new();
        let a = c.mono_ms();
        let b = c.mono_ms();
        assert!(b >= a);
        assert!(c.unix_ms() > 1_600_000_000_000);
    }
}
