//! Levee's flow export decoders: sFlow v5, NetFlow v5, NetFlow v9 and IPFIX
//! datagrams -> one [`FlowRecord`] type.
//!
//! Pure and synchronous: no sockets, no clock, no threads. The listeners
//! (`levee-flowd`), `levee flow decode` and the agent's flow mode feed it
//! datagrams with their source address and the time; what persists between
//! datagrams (templates, sampler rates, sequence numbers) lives in
//! [`FlowDecoder`] and can be saved ([`CacheSnapshot`]).
//!
//! Modules, one per concern:
//! - [`decoder`]: format detection by content, [`FlowDecoder`], limits;
//! - [`netflow5`], [`netflow9`], [`ipfix`], [`sflow`]: the wire formats;
//! - [`template`]: templates, their compiled form and the bounded cache;
//! - [`datarec`](crate::datarec) (private): template-driven records, shared
//!   by v9 and IPFIX;
//! - [`ie`]: which information elements fill which record field;
//! - [`sampling`]: sampling rates from packets, options data or config;
//! - [`sequence`]: sequence gaps per exporter and domain;
//! - [`record`]: the unified output;
//! - [`capture`]: UDP datagrams out of a pcap;
//! - [`build`]: encoders of every format, for tests, fuzz seeds and benchmarks.
//!
//! # Hardening
//!
//! Every read is bounds-checked ([`reader`]); nothing is allocated from a
//! count in the packet before the bytes behind it are known to exist; and
//! everything a datagram can make the decoder keep or produce is capped by
//! [`Limits`]: templates per domain and in total, fields per template,
//! records per datagram, sampler entries, sequence streams, sFlow samples
//! per datagram and records per sample. Property tests (`tests/props.rs`)
//! run in CI; cargo-fuzz targets live in `fuzz/` (see its README).

pub mod build;
pub mod capture;
mod datarec;
pub mod decoder;
pub mod error;
pub mod ie;
pub mod ipfix;
pub mod netflow5;
pub mod netflow9;
pub mod reader;
pub mod record;
pub mod sampling;
pub mod sequence;
pub mod sflow;
pub mod template;

pub use decoder::{detect, DecoderConfig, FlowDecoder, Limits, Outcome, RestoreReport};
pub use error::{CaptureError, DecodeError, SnapshotError};
pub use record::{CounterRecord, FlowRecord, Output, SamplingSource, Version};
pub use sampling::ExporterSampling;
pub use sequence::{SeqCheck, StreamStats};
pub use template::CacheSnapshot;
