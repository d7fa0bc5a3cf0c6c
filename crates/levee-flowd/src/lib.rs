//! Levee's flow listeners: the UDP edge in front of `levee-flow`'s pure
//! decoders.
//!
//! - [`listener`]: sockets (several per address with SO_REUSEPORT), one
//!   thread each, records to a [`RecordSink`];
//! - [`ingest`]: the shared decoder and counters ([`Ingest`]), usable
//!   without sockets;
//! - [`stats`]: per-exporter counters (datagrams, records, decode errors,
//!   unknown templates, sequence gaps).

pub mod ingest;
pub mod listener;
pub mod stats;

pub use ingest::Ingest;
pub use listener::{ListenConfig, ListenError, Listeners, RecordSink};
pub use stats::{ExporterRow, ExporterStats, ExporterTable};
