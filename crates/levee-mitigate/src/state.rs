//! The mitigation lifecycle as one explicit state machine:
//!
//! ```text
//!             applied            verified
//! previewed ----------> applied ----------> verified
//!   |  |                  |  |  \              |  |  \
//!   |  | apply_failed     |  |   verify_failed |  |   remove_failed
//!   |  +-----> failed <---+--|---------<-------+--|-----+
//!   |                        |                    |
//!   | withdrawn              +--> rolled_back <---+  (resolved, guard, stop)
//!   +--> rolled_back         +--> expired    <----+  (TTL reached)
//! ```
//!
//! Events are facts the engine observed (the tool succeeded, the kernel
//! shows the rule, the TTL passed); [`transition`] is the only place that
//! decides what they mean. `rolled_back`, `expired` and `failed` are final.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Rendered; nothing applied yet (and, in dry-run mode, never will be).
    Previewed,
    /// The tool accepted the rule.
    Applied,
    /// Read back from the kernel: the rule is in place.
    Verified,
    /// Removed before its TTL: the incident ended, the collateral guard
    /// tripped, the agent stopped, or it was never applied (withdrawn).
    RolledBack,
    /// Its TTL passed and it was removed.
    Expired,
    /// Applying, verifying or removing failed.
    Failed,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Previewed,
        State::Applied,
        State::Verified,
        State::RolledBack,
        State::Expired,
        State::Failed,
    ];

    pub fn is_final(self) -> bool {
        matches!(self, State::RolledBack | State::Expired | State::Failed)
    }

    /// Whether something may be in the kernel for it.
    pub fn is_active(self) -> bool {
        matches!(self, State::Applied | State::Verified)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Previewed => "previewed",
            State::Applied => "applied",
            State::Verified => "verified",
            State::RolledBack => "rolled_back",
            State::Expired => "expired",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the engine observed about a mitigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The tool accepted the rule.
    Applied,
    ApplyFailed,
    /// The kernel shows the rule.
    Verified,
    /// The kernel does not show the rule after the tool accepted it.
    VerifyFailed,
    /// Removed before its TTL.
    RolledBack,
    /// Removed because its TTL passed.
    Expired,
    /// Removing it failed (reconcile will retry).
    RemoveFailed,
    /// Dropped before it was ever applied (dry run, incident over, refused).
    Withdrawn,
}

impl Event {
    pub const ALL: [Event; 8] = [
        Event::Applied,
        Event::ApplyFailed,
        Event::Verified,
        Event::VerifyFailed,
        Event::RolledBack,
        Event::Expired,
        Event::RemoveFailed,
        Event::Withdrawn,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("mitigation in state {from} cannot take event {event:?}")]
pub struct InvalidTransition {
    pub from: State,
    pub event: Event,
}

/// The lifecycle's one transition function.
pub fn transition(from: State, event: Event) -> Result<State, InvalidTransition> {
    use Event as E;
    use State as S;
    let to = match (from, event) {
        (S::Previewed, E::Applied) => S::Applied,
        (S::Previewed, E::ApplyFailed) => S::Failed,
        (S::Previewed, E::Withdrawn) => S::RolledBack,
        (S::Applied, E::Verified) => S::Verified,
        (S::Applied, E::VerifyFailed) => S::Failed,
        (S::Applied | S::Verified, E::RolledBack) => S::RolledBack,
        (S::Applied | S::Verified, E::Expired) => S::Expired,
        (S::Applied | S::Verified, E::RemoveFailed) => S::Failed,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (state, event) pair: the allowed ones land where the diagram
    /// says, all others are refused.
    #[test]
    fn every_transition() {
        use Event as E;
        use State as S;
        let allowed = [
            (S::Previewed, E::Applied, S::Applied),
            (S::Previewed, E::ApplyFailed, S::Failed),
            (S::Previewed, E::Withdrawn, S::RolledBack),
            (S::Applied, E::Verified, S::Verified),
            (S::Applied, E::VerifyFailed, S::Failed),
            (S::Applied, E::RolledBack, S::RolledBack),
            (S::Applied, E::Expired, S::Expired),
            (S::Applied, E::RemoveFailed, S::Failed),
            (S::Verified, E::RolledBack, S::RolledBack),
            (S::Verified, E::Expired, S::Expired),
            (S::Verified, E::RemoveFailed, S::Failed),
        ];
        let mut n_ok = 0;
        for from in State::ALL {
            for event in Event::ALL {
                let want = allowed
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, t)| *t);
                match (transition(from, event), want) {
                    (Ok(to), Some(w)) => {
                        assert_eq!(to, w, "{from} + {event:?}");
                        n_ok += 1;
                    }
                    (Err(e), None) => {
                        assert_eq!((e.from, e.event), (from, event));
                    }
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(n_ok, allowed.len());
    }

    #[test]
    fn final_states_take_nothing() {
        for s in State::ALL.into_iter().filter(|s| s.is_final()) {
            assert!(!s.is_active());
            for e in Event::ALL {
                assert!(transition(s, e).is_err(), "{s} + {e:?}");
            }
        }
        assert!(State::Verified.is_active() && !State::Previewed.is_active());
        assert_eq!(
            serde_json::to_string(&State::RolledBack).unwrap(),
            "\"rolled_back\""
        );
    }
}
