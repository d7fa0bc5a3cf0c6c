//! The unified output of every decoder: [`FlowRecord`] (one flow of NetFlow /
//! IPFIX, or one packet sample of sFlow) and [`CounterRecord`] (one sFlow
//! interface counter sample), plus [`Version`] and [`Output`].
//!
//! A record says what the exporter said, scaled by nothing: `packets` and
//! `bytes` are as exported, `sampling_rate` says how many packets on the wire
//! each exported packet stands for. Consumers multiply.

use levee_packet::PacketMeta;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The export protocol (and version) a record came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    Netflow5,
    Netflow9,
    /// IPFIX (RFC 7011; "NetFlow v10").
    Ipfix,
    Sflow5,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Netflow5 => "netflow5",
            Version::Netflow9 => "netflow9",
            Version::Ipfix => "ipfix",
            Version::Sflow5 => "sflow5",
        }
    }

    /// The version number in the header (5, 9, 10; 5 for sFlow).
    pub fn number(self) -> u16 {
        match self {
            Version::Netflow5 | Version::Sflow5 => 5,
            Version::Netflow9 => 9,
            Version::Ipfix => 10,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a record's sampling rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingSource {
    /// Nothing said the traffic was sampled: rate 1.
    #[default]
    None,
    /// The datagram itself: NetFlow v5 header, sFlow sample, or a sampling
    /// field in the flow record.
    Packet,
    /// Options data the exporter sent earlier (sampler / selector tables).
    Options,
    /// The collector's per-exporter configuration.
    Config,
}

/// One flow (NetFlow, IPFIX) or one sampled packet (sFlow).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRecord {
    /// The exporting device: the datagram's source address (NetFlow, IPFIX)
    /// or the sFlow agent address.
    pub exporter: IpAddr,
    pub version: Version,
    /// NetFlow v9 source id, IPFIX observation domain, sFlow sub-agent id,
    /// NetFlow v5 `engine_type << 8 | engine_id`.
    pub domain: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_addr: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_addr: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// The TCP flags byte (OR of the flow's packets' flags for NetFlow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u8>,
    /// Packets as exported (1 for an sFlow sample).
    pub packets: u64,
    /// Bytes as exported (sFlow: the sampled frame's length on the wire).
    pub bytes: u64,
    /// Each exported packet stands for this many on the wire (1 = unsampled).
    pub sampling_rate: u32,
    pub sampling_source: SamplingSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_if: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_if: Option<u32>,
    /// Flow start and end, ms since the Unix epoch, when the exporter said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
    /// The sampled packet's headers decoded (sFlow raw packet header records).
    #[serde(skip)]
    pub packet: Option<PacketMeta>,
}

impl FlowRecord {
    /// An empty record of `version` from `exporter` (rate 1, no fields).
    pub fn new(exporter: IpAddr, version: Version, domain: u32) -> Self {
        FlowRecord {
            exporter,
            version,
            domain,
            src_addr: None,
            dst_addr: None,
            src_port: None,
            dst_port: None,
            protocol: None,
            tcp_flags: None,
            packets: 0,
            bytes: 0,
            sampling_rate: 1,
            sampling_source: SamplingSource::None,
            tos: None,
            input_if: None,
            output_if: None,
            start_ms: None,
            end_ms: None,
            packet: None,
        }
    }

    /// Packets on the wire this record stands for.
    pub fn scaled_packets(&self) -> u64 {
        self.packets
            .saturating_mul(u64::from(self.sampling_rate.max(1)))
    }

    /// Bytes on the wire this record stands for.
    pub fn scaled_bytes(&self) -> u64 {
        self.bytes
            .saturating_mul(u64::from(self.sampling_rate.max(1)))
    }
}

/// One sFlow generic interface counter record (RFC 3176 / sFlow v5
/// `if_counters`), with where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CounterRecord {
    pub exporter: Option<IpAddr>,
    pub domain: u32,
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    pub in_octets: u64,
    pub in_ucast_packets: u32,
    pub in_multicast_packets: u32,
    pub in_broadcast_packets: u32,
    pub in_discards: u32,
    pub in_errors: u32,
    pub out_octets: u64,
    pub out_ucast_packets: u32,
    pub out_multicast_packets: u32,
    pub out_broadcast_packets: u32,
    pub out_discards: u32,
    pub out_errors: u32,
}

/// Where decoders put what they find. Reused across datagrams: the caller
/// drains or clears it.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub flows: Vec<FlowRecord>,
    pub counters: Vec<CounterRecord>,
}

impl Output {
    pub fn clear(&mut self) {
        self.flows.clear();
        self.counters.clear();
    }
}
