//! Levee's shared vocabulary: raw counter samples, per-tick observations, metrics,
//! targets and the JSON events that form the agent's external interface.
//!
//! This crate owns no behaviour beyond (de)serialisation and small pure helpers, so
//! every other crate (sources, detector, agent, server) can depend on it without
//! pulling in I/O.

pub mod counters;
pub mod event;
pub mod metric;
pub mod timefmt;

pub use counters::{
    ConnCounts, InterfaceCounters, InterfaceRates, ProtoCounters, RawSample, TargetRates,
    TickObservation,
};
pub use event::{
    Event, EventBody, IncidentDetails, IncidentInfo, IncidentMetric, IncidentResolvedSummary,
    MitigationInfo,
};
pub use metric::{Metric, SeriesKey, Target};
