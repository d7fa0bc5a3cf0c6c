//! A fixed-interval ticker that sleeps until the next deadline and wakes at
//! once when the stop flag is raised (the signal thread unparks the sleeper).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Ticker {
    interval: Duration,
    next: Instant,
}

impl Ticker {
    /// The first deadline is one interval from now.
    pub fn new(interval: Duration) -> Self {
        Ticker {
            interval,
            next: Instant::now() + interval,
        }
    }

    /// Sleeps until the next deadline; false when `stop` was raised instead.
    pub fn wait(&mut self, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now < self.next {
                std::thread::park_timeout(self.next - now);
                continue;
            }
            // A stalled process (suspended VM, SIGSTOP) skips the missed ticks
            // instead of firing them back to back.
            self.next = if now - self.next > self.interval {
                now + self.interval
            } else {
                self.next + self.interval
            };
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_at_the_interval_and_stops_on_the_flag() {
        let stop = AtomicBool::new(false);
        let mut t = Ticker::new(Duration::from_millis(20));
        let start = Instant::now();
        assert!(t.wait(&stop));
        assert!(t.wait(&stop));
        assert!(start.elapsed() >= Duration::from_millis(40));
        stop.store(true, Ordering::SeqCst);
        assert!(!t.wait(&stop));
    }

    #[test]
    fn a_stall_skips_missed_ticks() {
        let stop = AtomicBool::new(false);
        let mut t = Ticker::new(Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.wait(&stop), "the overdue tick fires");
        let before = Instant::now();
        assert!(t.wait(&stop));
        assert!(
            before.elapsed() >= Duration::from_millis(5),
            "no burst of missed ticks"
        );
    }
}
