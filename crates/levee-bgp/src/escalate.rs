//! The per-incident escalation state machine. Levels, by the incident's
//! observed rate: 1 FlowSpec rate-limit, 2 FlowSpec discard, 3 RTBH,
//! 4 scrubbing diversion. The level only rises while the incident lasts
//! (a dip does not pull filters that are working); a rate at or above
//! level 1's threshold refreshes the TTL; when the TTL lapses, or the
//! incident resolves, everything is withdrawn.
//!
//! One pure [`transition`] function: `now` comes with each event.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    RateLimit = 1,
    Discard = 2,
    Rtbh = 3,
    Divert = 4,
}

impl Level {
    pub fn number(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            Level::RateLimit => "rate-limit",
            Level::Discard => "discard",
            Level::Rtbh => "rtbh",
            Level::Divert => "divert",
        };
        write!(f, "level {} ({n})", self.number())
    }
}

/// Thresholds in bits per second, in level order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub levels: [(Level, u64); 4],
}

impl Thresholds {
    /// The highest level whose threshold `bps` exceeds.
    pub fn level_for(&self, bps: f64) -> Option<Level> {
        self.levels
            .iter()
            .rev()
            .find(|(_, t)| bps > *t as f64)
            .map(|(l, _)| *l)
    }

    /// Whether `bps` still counts as the attack continuing (above level 1).
    pub fn continuing(&self, bps: f64) -> bool {
        bps > self.levels[0].1 as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    /// The incident is open below level 1 (or its rules' TTL lapsed).
    Watching,
    /// Rules of `level` are announced until `expires_ms` unless refreshed.
    Active { level: Level, expires_ms: i64 },
    /// The incident resolved; nothing is announced.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// The incident's current rate.
    Rate {
        bps: f64,
        now: i64,
    },
    Tick {
        now: i64,
    },
    Resolved,
}

/// Why everything was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Resolved,
    Expired,
}

/// What the engine must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Announce the rules of `to` (and withdraw those of `from` that `to`
    /// replaces).
    Escalate {
        from: Option<Level>,
        to: Level,
    },
    /// The TTL moved on; nothing to announce.
    Refresh,
    WithdrawAll(Reason),
}

/// The one transition function.
pub fn transition(s: State, e: Event, th: &Thresholds, ttl_ms: i64) -> (State, Option<Step>) {
    match (s, e) {
        (State::Done, _) => (State::Done, None),
        (State::Active { .. }, Event::Resolved) => {
            (State::Done, Some(Step::WithdrawAll(Reason::Resolved)))
        }
        (State::Watching, Event::Resolved) => (State::Done, None),
        (State::Watching, Event::Rate { bps, now }) => match th.level_for(bps) {
            Some(to) => (
                State::Active {
                    level: to,
                    expires_ms: now + ttl_ms,
                },
                Some(Step::Escalate { from: None, to }),
            ),
            None => (State::Watching, None),
        },
        (State::Active { level, expires_ms }, Event::Rate { bps, now }) => {
            match th.level_for(bps) {
                Some(to) if to > level => (
                    State::Active {
                        level: to,
                        expires_ms: now + ttl_ms,
                    },
                    Some(Step::Escalate {
                        from: Some(level),
                        to,
                    }),
                ),
                _ if th.continuing(bps) => (
                    State::Active {
                        level,
                        expires_ms: now + ttl_ms,
                    },
                    Some(Step::Refresh),
                ),
                _ => (State::Active { level, expires_ms }, None),
            }
        }
        (State::Active { expires_ms, .. }, Event::Tick { now }) if now >= expires_ms => {
            (State::Watching, Some(Step::WithdrawAll(Reason::Expired)))
        }
        (s, Event::Tick { .. }) => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_000_000;

    fn th() -> Thresholds {
        Thresholds {
            levels: [
                (Level::RateLimit, 100 * M),
                (Level::Discard, 500 * M),
                (Level::Rtbh, 2000 * M),
                (Level::Divert, 5000 * M),
            ],
        }
    }

    fn rate(mbps: u64, now: i64) -> Event {
        Event::Rate {
            bps: (mbps * M) as f64,
            now,
        }
    }

    #[test]
    fn escalates_while_growing_never_down() {
        let t = th();
        let (s, st) = transition(State::Watching, rate(50, 0), &t, 300_000);
        assert_eq!((s, st), (State::Watching, None));
        let (s, st) = transition(s, rate(150, 1000), &t, 300_000);
        assert_eq!(
            st,
            Some(Step::Escalate {
                from: None,
                to: Level::RateLimit
            })
        );
        let (s, st) = transition(s, rate(600, 2000), &t, 300_000);
        assert_eq!(
            st,
            Some(Step::Escalate {
                from: Some(Level::RateLimit),
                to: Level::Discard
            })
        );
        // A dip keeps the level and, still above level 1, refreshes.
        let (s, st) = transition(s, rate(200, 3000), &t, 300_000);
        assert_eq!(st, Some(Step::Refresh));
        assert_eq!(
            s,
            State::Active {
                level: Level::Discard,
                expires_ms: 303_000
            }
        );
        // Jumping straight to the top.
        let (s2, st) = transition(State::Watching, rate(6000, 0), &t, 1);
        assert_eq!(
            st,
            Some(Step::Escalate {
                from: None,
                to: Level::Divert
            })
        );
        assert!(matches!(
            s2,
            State::Active {
                level: Level::Divert,
                ..
            }
        ));
        let (s, st) = transition(s, Event::Resolved, &t, 300_000);
        assert_eq!(
            (s, st),
            (State::Done, Some(Step::WithdrawAll(Reason::Resolved)))
        );
        assert_eq!(transition(s, rate(9000, 9), &t, 1), (State::Done, None));
    }

    #[test]
    fn ttl_lapses_without_refresh() {
        let t = th();
        let (s, _) = transition(State::Watching, rate(150, 0), &t, 5000);
        // Below level 1: no refresh.
        let (s, st) = transition(s, rate(20, 4000), &t, 5000);
        assert_eq!(st, None);
        assert_eq!(
            transition(s, Event::Tick { now: 4999 }, &t, 5000),
            (s, None)
        );
        let (s, st) = transition(s, Event::Tick { now: 5000 }, &t, 5000);
        assert_eq!(
            (s, st),
            (State::Watching, Some(Step::WithdrawAll(Reason::Expired)))
        );
        // The attack comes back: escalation starts again.
        let (_, st) = transition(s, rate(700, 6000), &t, 5000);
        assert_eq!(
            st,
            Some(Step::Escalate {
                from: None,
                to: Level::Discard
            })
        );
        assert_eq!(
            transition(State::Watching, Event::Resolved, &t, 1),
            (State::Done, None)
        );
    }
}
