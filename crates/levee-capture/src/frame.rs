//! The [`PacketSource`] seam and what flows through it.
//!
//! Frames are lent to a callback rather than returned, so a source can hand
//! out slices of its mmap'd ring (or of an in-memory file) without copying
//! and without per-packet allocation.

use crate::error::CaptureError;
use levee_packet::{DecodeError, LinkType, PacketMeta};

/// pcap LINKTYPE_ETHERNET: what AF_PACKET SOCK_RAW delivers on Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// One sampled frame, borrowed from the source for the duration of the
/// callback.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// pcap LINKTYPE of `data` (1 = Ethernet).
    pub linktype: u32,
    /// Length of the packet on the wire (before snaplen truncation).
    pub wire_len: u32,
    /// Captured bytes, at most the snap length (plus 4 when a VLAN tag was
    /// reinserted).
    pub data: &'a [u8],
    /// Interface index the frame was received on (0 when unknown, e.g. pcap).
    pub ifindex: u32,
}

impl Frame<'_> {
    /// Decodes the frame with levee-packet (never panics).
    pub fn decode(&self) -> Result<PacketMeta, DecodeError> {
        levee_packet::decode(LinkType::from_linktype(self.linktype)?, self.data)
    }
}

/// Kernel-side counters of an AF_PACKET socket (PACKET_STATISTICS),
/// accumulated since the socket was opened (the kernel resets them on every
/// read, the source adds them up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelStats {
    /// Packets that passed the sampling filter (`tp_packets`).
    pub packets: u64,
    /// Sampled packets dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring queue was frozen because user space lagged
    /// (`tp_freeze_q_cnt`).
    pub freeze_q_cnt: u64,
}

/// What one call to [`PacketSource::next_batch`] delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchStats {
    /// Frames passed to the callback.
    pub frames: u64,
    /// Sampling rate N in force: each frame stands for N packets on the wire.
    pub sampling_rate: u32,
    /// Kernel counters, cumulative (AF_PACKET only; zero for replays).
    pub kernel: KernelStats,
    /// The source is exhausted (end of a replayed file); live sources never
    /// set it.
    pub end_of_stream: bool,
}

impl BatchStats {
    /// Estimated packets on the wire that this batch represents.
    pub fn scaled_packets(&self) -> u64 {
        self.frames
            .saturating_mul(u64::from(self.sampling_rate.max(1)))
    }
}

/// A source of sampled frames: a live interface or a replayed capture.
pub trait PacketSource {
    /// Waits (a bounded time, about the block timeout for live sources) for
    /// the next batch and passes each frame to `out`. An empty batch is
    /// normal when the link is quiet.
    fn next_batch(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<BatchStats, CaptureError>;

    /// The sampling rate N currently in force (1 = every packet).
    fn sampling_rate(&self) -> u32;

    /// Changes the sampling rate (0 is treated as 1).
    fn set_sampling_rate(&mut self, n: u32) -> Result<(), CaptureError>;
}
