//! The seam in front of connection counting: [`ConnCounter`]. The real one is
//! [`crate::SockDiagConnCounter`]; any closure returning counts is a fake.

use crate::error::SourceError;
use levee_model::ConnCounts;

/// Counts the host's TCP sockets by state, once per call.
pub trait ConnCounter: Send {
    fn count(&mut self) -> Result<ConnCounts, SourceError>;
}

/// Lets tests pass `Box::new(|| Ok(ConnCounts { .. }))` as a counter.
impl<F> ConnCounter for F
where
    F: FnMut() -> Result<ConnCounts, SourceError> + Send,
{
    fn count(&mut self) -> Result<ConnCounts, SourceError> {
        self()
    }
}
