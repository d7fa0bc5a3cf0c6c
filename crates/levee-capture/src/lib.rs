//! Levee's packet sampler: where sampled packets come from, and where the
//! last ones are kept for incident captures.
//!
//! - [`PacketSource`] is the seam: the agent pulls batches of [`Frame`]s
//!   from it without copying. [`AfPacketSource`] reads a live interface
//!   through an AF_PACKET socket with a TPACKET_V3 mmap'd ring;
//!   [`PcapSource`] replays a pcap/pcapng file the same way, for tests.
//! - Sampling happens in the kernel ([`bpf`]): a classic BPF filter keeps
//!   one packet in N at random, so the agent inspects a bounded number of
//!   packets whatever the line rate. [`SamplingController`] picks N to stay
//!   near a budget of sampled packets per second. Every batch reports the N
//!   in force so counts can be scaled back.
//! - [`PcapRing`] keeps the last sampled frames in preallocated memory and
//!   writes those of an incident as a classic pcap (`write_pcap`).
//!
//! Only [`afpacket`] touches the kernel; everything else is pure and
//! unit-tested without root.

pub mod afpacket;
pub mod bpf;
pub mod controller;
pub mod error;
pub mod frame;
pub mod pcap_source;
pub mod ring;
#[cfg(test)]
mod testutil;

pub use afpacket::{AfPacketConfig, AfPacketSource};
pub use controller::{ControllerConfig, SamplingController};
pub use error::CaptureError;
pub use frame::{BatchStats, Frame, KernelStats, PacketSource};
pub use pcap_source::PcapSource;
pub use ring::{PcapRing, RingConfig, WriteSummary};
