//! The crate's typed errors: [`DecodeError`] for a flow export datagram (or a
//! part of one) that cannot be decoded, [`SnapshotError`] for a saved template
//! cache that cannot be restored, [`CaptureError`] for a pcap of export
//! datagrams that cannot be read.
//!
//! Decode errors are expected on real networks (exporters restart, templates
//! arrive after data, vendors bend the RFCs), so they are small values that
//! name what was wrong and where, and they never stop the rest of a datagram
//! from being decoded when the damage is confined to one set or sample.

use std::net::IpAddr;
use thiserror::Error;

/// Why a datagram, or one set/sample of it, could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The content is none of the formats this crate reads.
    #[error("not a flow export datagram: first bytes {0:02x?} are no NetFlow v5/v9, IPFIX or sFlow v5 header")]
    UnknownFormat([u8; 4]),
    /// A structure ends before the bytes it announces.
    #[error("{what} truncated: {needed} bytes needed, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A length or count field contradicts the datagram.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A data set refers to a template this collector has not received (yet).
    /// The exporter resends templates periodically; data before that is lost.
    #[error("no template {template_id} from exporter {exporter} (observation domain {domain}): data set of {bytes} bytes skipped until the exporter sends it")]
    UnknownTemplate {
        exporter: IpAddr,
        domain: u32,
        template_id: u16,
        bytes: usize,
    },
    /// A template record that cannot be used (and is therefore ignored).
    #[error("template {template_id} rejected: {reason}")]
    BadTemplate { template_id: u16, reason: String },
    /// A limit on what one packet may make the decoder keep was reached.
    #[error("limit reached: {what} (limit {limit}); the rest is ignored")]
    Limit { what: &'static str, limit: usize },
}

impl DecodeError {
    /// A short stable name for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnknownFormat(_) => "unknown_format",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::UnknownTemplate { .. } => "unknown_template",
            DecodeError::BadTemplate { .. } => "bad_template",
            DecodeError::Limit { .. } => "limit",
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Malformed {
            what,
            reason: reason.into(),
        }
    }
}

/// Why a saved template cache could not be restored.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("template cache snapshot has format version {found}, this collector reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("template cache snapshot is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why a capture of export datagrams could not be read.
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error(transparent)]
    Pcap(#[from] levee_packet::PcapError),
}
