//! Ingest: turning agent requests into stored rows. [`effects`] decides what
//! an event changes; [`writer`] batches every node's telemetry into group
//! commits so thousands of agents a second cost a few transactions.

pub mod effects;
pub mod writer;
