//! [`PcapSource`]: replays a pcap or pcapng file through [`PacketSource`],
//! so everything downstream of the sampler can be tested without root.
//!
//! The file is read into memory once (frames are then lent without
//! copying). Sampling is emulated deterministically (every Nth frame) so
//! tests get repeatable counts; the live source samples at random.

use crate::error::CaptureError;
use crate::frame::{BatchStats, Frame, PacketSource};
use std::path::{Path, PathBuf};

/// Frames of a capture file, replayed in batches.
#[derive(Debug)]
pub struct PcapSource {
    path: PathBuf,
    /// (ts_ns, linktype, wire_len, byte range in `bytes`).
    frames: Vec<(u64, u32, u32, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
    next: usize,
    batch: usize,
    rate: u32,
    /// Frames seen since the last one kept (for 1-in-N).
    skip: u32,
}

impl PcapSource {
    /// Reads `path` (pcap or pcapng). Batches hold up to 1024 frames.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = std::fs::read(path).map_err(|e| CaptureError::ReadPcap {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let mut frames = Vec::new();
        let mut bytes = Vec::new();
        levee_packet::pcap::read_frames_from_bytes(&file, |f| {
            let start = bytes.len();
            bytes.extend_from_slice(f.data);
            frames.push((f.ts_ns, f.linktype, f.orig_len, start..bytes.len()));
        })
        .map_err(|e| CaptureError::ReadPcap {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(PcapSource {
            path: path.to_path_buf(),
            frames,
            bytes,
            next: 0,
            batch: 1024,
            rate: 1,
            skip: 0,
        })
    }

    /// Sets the largest number of frames per batch (at least 1).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Frames in the file.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PacketSource for PcapSource {
    fn next_batch(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<BatchStats, CaptureError> {
        let mut stats = BatchStats {
            sampling_rate: self.rate,
            ..BatchStats::default()
        };
        let end = (self.next + self.batch).min(self.frames.len());
        for (ts_ns, linktype, wire_len, range) in &self.frames[self.next..end] {
            self.skip += 1;
            if self.skip < self.rate {
                continue;
            }
            self.skip = 0;
            let Some(data) = self.bytes.get(range.clone()) else {
                continue;
            };
            out(Frame {
                ts_ns: *ts_ns,
                linktype: *linktype,
                wire_len: *wire_len,
                data,
                ifindex: 0,
            });
            stats.frames += 1;
        }
        self.next = end;
        stats.end_of_stream = self.next >= self.frames.len();
        Ok(stats)
    }

    fn sampling_rate(&self) -> u32 {
        self.rate
    }

    fn set_sampling_rate(&mut self, n: u32) -> Result<(), CaptureError> {
        self.rate = n.max(1);
        self.skip = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{PcapRing, RingConfig};
    use crate::testutil::syn_frame;

    fn capture(n: u64) -> (tempfile::TempDir, PathBuf) {
        let mut r = PcapRing::new(RingConfig::default());
        for i in 0..n {
            let d = syn_frame(i as u8, None);
            r.push(
                &Frame {
                    ts_ns: 1_000 + i,
                    linktype: crate::frame::LINKTYPE_ETHERNET,
                    wire_len: d.len() as u32,
                    data: &d,
                    ifindex: 0,
                },
                1,
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        r.write_pcap(&path, 0, usize::MAX).unwrap();
        (dir, path)
    }

    #[test]
    fn replays_in_batches_with_sampling() {
        let (_dir, path) = capture(100);
        let mut src = PcapSource::open(&path).unwrap().with_batch_size(40);
        assert_eq!(src.len(), 100);
        src.set_sampling_rate(3).unwrap();
        let mut seen = Vec::new();
        let mut total = BatchStats::default();
        loop {
            let b = src
                .next_batch(&mut |f| seen.push(f.decode().unwrap().dst_port()))
                .unwrap();
            assert_eq!(b.sampling_rate, 3);
            total.frames += b.frames;
            if b.end_of_stream {
                break;
            }
        }
        assert_eq!(total.frames, 33);
        assert!(seen.iter().all(|p| *p == Some(80)));
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = PcapSource::open(Path::new("/nonexistent/x.pcap")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.pcap"));
    }
}
