//! [`IncidentEnricher`]: the hook through which a mode other than the
//! packet sampler's fills an incident's classification (flow and mirror
//! modes: [`crate::netmode::classify::NetEnricher`]). The run loop calls it
//! after [`crate::visibility::Visibility`] for every incident event.

use levee_model::{EventBody, IncidentInfo};

pub trait IncidentEnricher {
    /// Fills `incident_started`.
    fn started(&mut self, info: &mut IncidentInfo, now_ms: i64);
    /// Fills `incident_updated`; returns an event to emit after it (a
    /// confirmed change of vector).
    fn updated(&mut self, info: &mut IncidentInfo) -> Option<EventBody>;
    /// Fills `incident_resolved` and forgets the incident.
    fn resolved(&mut self, info: &mut IncidentInfo);
}
