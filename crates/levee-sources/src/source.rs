//! [`CounterSource`]: anything that produces [`RawSample`]s, live or replayed.

use crate::error::SourceError;
use levee_model::RawSample;

/// Produces one cumulative-counter sample per call.
pub trait CounterSource {
    fn sample(&mut self) -> Result<RawSample, SourceError>;
}
