//! The wire between a Levee agent and the Levee server: JSON bodies over HTTPS
//! under `/api/v1/agent/...`.
//!
//! The agent pushes (it needs no inbound port): it enrolls once with a one-time
//! token ([`EnrollRequest`] -> [`EnrollResponse`]), then sends a
//! [`TelemetryBatch`] every second, an [`EventBatch`] as soon as events happen
//! (replayed in order from its offline queue after an outage) and a
//! [`Heartbeat`]. Telemetry and heartbeats are answered with an
//! [`AgentAnswer`]: commands waiting for the node and, when it changed, the
//! tenant's [`Policy`].
//!
//! Compatibility: fields are only added (with serde defaults), never renamed
//! or removed, so agents and servers of neighbouring versions understand each
//! other. Event bodies travel as open JSON objects ([`EventEnvelope`]) so that
//! a server accepts event kinds newer than itself.

pub mod answer;
pub mod command;
pub mod enroll;
pub mod error;
pub mod events;
pub mod fingerprint;
pub mod telemetry;

pub use answer::{AgentAnswer, AgentCommand, DetectorPolicy, Policy};
pub use command::{Command, CommandResult};
pub use enroll::{EnrollRequest, EnrollResponse};
pub use error::{ApiErrorBody, FieldError};
pub use events::{EventBatch, EventEnvelope, EventsAccepted};
pub use fingerprint::{Fingerprint, FingerprintError};
pub use telemetry::{BaselineEntry, Heartbeat, TelemetryBatch};

/// Every API path starts with this.
pub const API_PREFIX: &str = "/api/v1";

/// The agent-facing endpoints (relative to the server's base URL).
pub mod paths {
    pub const ENROLL: &str = "/api/v1/agent/enroll";
    pub const TELEMETRY: &str = "/api/v1/agent/telemetry";
    pub const EVENTS: &str = "/api/v1/agent/events";
    pub const HEARTBEAT: &str = "/api/v1/agent/heartbeat";
    /// `{incident_id}` is the agent's incident id (the `incident_id` of its events).
    pub const PCAP: &str = "/api/v1/agent/incidents/{incident_id}/pcap";

    /// [`PCAP`] for one incident.
    pub fn pcap(incident_id: &str) -> String {
        PCAP.replace("{incident_id}", incident_id)
    }
}

/// Upper bounds both sides agree on; the server rejects bigger batches with 400.
pub mod limits {
    /// Events per [`crate::EventBatch`].
    pub const MAX_EVENTS_PER_BATCH: usize = 500;
    /// Per-second samples per [`crate::TelemetryBatch`] (a minute of backlog).
    pub const MAX_SAMPLES_PER_BATCH: usize = 60;
    /// Names: nodes, interfaces, targets.
    pub const MAX_NAME_LEN: usize = 128;
}
