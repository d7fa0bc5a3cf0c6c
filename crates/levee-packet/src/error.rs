//! The crate's typed errors: [`DecodeError`] for one frame that cannot be
//! summarised, [`PcapError`] for a capture file that cannot be read.
//!
//! Decode errors are expected on real links (ARP, LLDP, truncated frames), so
//! they are small `Copy` values that cost nothing to create and count.

use std::path::PathBuf;
use thiserror::Error;

/// Why a frame could not be turned into a [`crate::PacketMeta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The frame ends before a header it announces.
    #[error("frame truncated in the {layer} header: {needed} bytes needed, {available} captured")]
    Truncated {
        layer: &'static str,
        needed: usize,
        available: usize,
    },
    /// Not an IP packet (ARP, LLDP, ...): nothing to classify.
    #[error("not an IP packet (EtherType {0:#06x})")]
    NotIp(u16),
    /// The IP version nibble is neither 4 nor 6.
    #[error("IP version {0} is neither 4 nor 6")]
    BadIpVersion(u8),
    /// A header field is inconsistent (e.g. IPv4 header length < 20).
    #[error("malformed {layer} header: {reason}")]
    Malformed {
        layer: &'static str,
        reason: &'static str,
    },
    /// The capture's link type is not one this decoder reads.
    #[error("unsupported link type {0} (supported: Ethernet 1, raw IP 101/228/229, Linux cooked 113/276, loopback 0/108)")]
    UnsupportedLinkType(u32),
}

impl DecodeError {
    /// A short stable name for counting errors by kind, e.g. `not_ip`.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::NotIp(_) => "not_ip",
            DecodeError::BadIpVersion(_) => "bad_ip_version",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::UnsupportedLinkType(_) => "unsupported_link_type",
        }
    }
}

/// Why a capture file could not be read.
#[derive(Debug, Error)]
pub enum PcapError {
    #[error("cannot open capture {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read capture: {0}")]
    Io(#[from] std::io::Error),
    /// The first four bytes are no pcap or pcapng magic number.
    #[error("not a pcap or pcapng file (magic {0:02x?}); convert it with `editcap -F pcap`")]
    UnknownFormat([u8; 4]),
    /// The file is a capture but a record in it is corrupt or cut short.
    #[error("corrupt capture after {packets} packets: {detail}")]
    Corrupt { packets: u64, detail: String },
}
