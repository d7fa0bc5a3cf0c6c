//! [`PcapRing`]: the last N sampled frames, kept for incident captures.
//!
//! Memory is allocated once, up front: `capacity x slot` bytes of frame
//! data (slot = snaplen + 4, room for a reinserted VLAN tag) plus a small
//! fixed record per slot. Pushing copies the frame into the oldest slot;
//! nothing is allocated per packet, so a flood cannot grow the agent.
//!
//! [`PcapRing::write_pcap`] writes the frames from a given time on as a
//! classic pcap (LINKTYPE_ETHERNET, nanosecond timestamps, readable by
//! tcpdump and tshark), atomically: a temporary file in the same directory,
//! fsync, mode 0640, then rename, so a reader never sees half a file.

use crate::error::CaptureError;
use crate::frame::{Frame, LINKTYPE_ETHERNET};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// Bytes a reinserted 802.1Q tag adds to a frame.
pub const VLAN_HLEN: usize = 4;

/// Ring parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Frames kept (default 10,000).
    pub capacity: usize,
    /// Bytes kept per frame, before a VLAN tag (default 256).
    pub snaplen: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            capacity: 10_000,
            snaplen: 256,
        }
    }
}

/// Per-slot record (the bytes live in the shared buffer).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ts_ns: u64,
    wire_len: u32,
    cap_len: u16,
    sampling_rate: u32,
}

/// What [`PcapRing::write_pcap`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriteSummary {
    /// Frames written.
    pub frames: usize,
    /// Timestamp of the first and last frame written (ns since the epoch).
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    /// Largest sampling rate among the frames written (each stands for that
    /// many packets on the wire).
    pub max_sampling_rate: u32,
}

/// A fixed-size ring of recent Ethernet frames.
#[derive(Debug)]
pub struct PcapRing {
    slot_size: usize,
    data: Box<[u8]>,
    slots: Box<[Slot]>,
    /// Index of the next slot to overwrite.
    head: usize,
    len: usize,
    rejected: u64,
}

impl PcapRing {
    /// Allocates the whole ring now (a capacity of 0 becomes 1).
    pub fn new(cfg: RingConfig) -> Self {
        let capacity = cfg.capacity.max(1);
        // cap_len is u16; 65531 + 4 still fits.
        let slot_size = cfg.snaplen.clamp(1, usize::from(u16::MAX) - VLAN_HLEN) + VLAN_HLEN;
        PcapRing {
            slot_size,
            data: vec![0u8; capacity * slot_size].into_boxed_slice(),
            slots: vec![Slot::default(); capacity].into_boxed_slice(),
            head: 0,
            len: 0,
            rejected: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Frames currently held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of frame data preallocated (the bound on the ring's memory,
    /// besides a 24-byte record per slot).
    pub fn data_bytes(&self) -> usize {
        self.data.len()
    }

    /// Frames refused because they were not Ethernet.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Copies `frame` over the oldest slot (truncated to the slot size).
    /// Returns false, and keeps nothing, when the frame is not Ethernet
    /// (the output is a LINKTYPE_ETHERNET pcap).
    pub fn push(&mut self, frame: &Frame<'_>, sampling_rate: u32) -> bool {
        if frame.linktype != LINKTYPE_ETHERNET {
            self.rejected += 1;
            return false;
        }
        let cap = frame.data.len().min(self.slot_size);
        let at = self.head * self.slot_size;
        self.data[at..at + cap].copy_from_slice(&frame.data[..cap]);
        self.slots[self.head] = Slot {
            ts_ns: frame.ts_ns,
            // A frame is never shorter on the wire than captured.
            wire_len: frame.wire_len.max(cap as u32),
            cap_len: cap as u16,
            sampling_rate: sampling_rate.max(1),
        };
        self.head = (self.head + 1) % self.slots.len();
        self.len = (self.len + 1).min(self.slots.len());
        true
    }

    /// Held frames, oldest first: (timestamp, wire length, bytes, rate).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32, &[u8], u32)> + '_ {
        let cap = self.slots.len();
        let oldest = (self.head + cap - self.len) % cap;
        (0..self.len).map(move |i| {
            let idx = (oldest + i) % cap;
            let s = self.slots[idx];
            let at = idx * self.slot_size;
            (
                s.ts_ns,
                s.wire_len,
                &self.data[at..at + usize::from(s.cap_len)],
                s.sampling_rate,
            )
        })
    }

    /// Writes the frames with a timestamp at or after `from_ts_ns`, oldest
    /// first, at most `limit` of them (the earliest ones: the start of an
    /// attack says the most about it), to `path` atomically with mode 0640.
    /// Callers pass a `from_ts_ns` somewhat before the incident's start to
    /// include the lead-up.
    pub fn write_pcap(
        &self,
        path: &Path,
        from_ts_ns: u64,
        limit: usize,
    ) -> Result<WriteSummary, CaptureError> {
        let err = |step: &'static str| {
            move |source: std::io::Error| CaptureError::WritePcap {
                path: path.to_path_buf(),
                step,
                source,
            }
        };
        let pcap_err = |step: &'static str| {
            move |e: pcap_file::PcapError| CaptureError::WritePcap {
                path: path.to_path_buf(),
                step,
                source: std::io::Error::other(e.to_string()),
            }
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".levee-pcap-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(err("create temporary file"))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o640))
            .map_err(err("chmod 0640"))?;
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: self.slot_size as u32,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
        };
        let out = std::io::BufWriter::new(tmp.as_file());
        let mut w = PcapWriter::with_header(out, header).map_err(pcap_err("write header"))?;
        let mut sum = WriteSummary {
            frames: 0,
            first_ts_ns: None,
            last_ts_ns: None,
            max_sampling_rate: 0,
        };
        for (ts, wire_len, data, rate) in
            self.iter().filter(|(ts, ..)| *ts >= from_ts_ns).take(limit)
        {
            w.write_packet(&PcapPacket::new(Duration::from_nanos(ts), wire_len, data))
                .map_err(pcap_err("write packet"))?;
            sum.frames += 1;
            sum.first_ts_ns.get_or_insert(ts);
            sum.last_ts_ns = Some(ts);
            sum.max_sampling_rate = sum.max_sampling_rate.max(rate);
        }
        let mut out = w.into_writer();
        out.flush().map_err(err("write"))?;
        drop(out);
        tmp.as_file().sync_all().map_err(err("fsync"))?;
        tmp.persist(path)
            .map_err(|e| err("rename into place")(e.error))?;
        Ok(sum)
    }
}

#[cfg(test)]
mod tests;
