//! [`Ingest`]: what the listener threads share. One datagram (with its
//! source and arrival time) goes through the decoder and into the exporter
//! counters; the records land in the caller's own buffer, so the lock is
//! held for decoding only, never while records are consumed.
//!
//! No sockets here: tests and the benchmark drive it directly.

use crate::stats::{ExporterRow, ExporterStats, ExporterTable};
use levee_flow::{CacheSnapshot, DecoderConfig, FlowDecoder, Outcome, Output, RestoreReport};
use std::net::IpAddr;

/// Decoder plus counters.
#[derive(Debug)]
pub struct Ingest {
    decoder: FlowDecoder,
    exporters: ExporterTable,
}

impl Ingest {
    pub fn new(cfg: DecoderConfig, max_exporters: usize) -> Self {
        Ingest {
            decoder: FlowDecoder::new(cfg),
            exporters: ExporterTable::new(max_exporters),
        }
    }

    /// Decodes one datagram into `out` (appending) and counts it.
    pub fn datagram(&mut self, src: IpAddr, now_ms: i64, data: &[u8], out: &mut Output) -> Outcome {
        let o = self.decoder.decode(src, now_ms, data, out);
        self.exporters.add(src, now_ms, data.len(), &o);
        o
    }

    pub fn exporters(&self) -> Vec<ExporterRow> {
        self.exporters.rows()
    }

    pub fn exporter(&self, src: &IpAddr) -> Option<&ExporterStats> {
        self.exporters.get(src)
    }

    pub fn totals(&self) -> ExporterStats {
        self.exporters.totals()
    }

    pub fn decoder(&self) -> &FlowDecoder {
        &self.decoder
    }

    pub fn snapshot(&self, now_ms: i64) -> CacheSnapshot {
        self.decoder.snapshot(now_ms)
    }

    pub fn restore(&mut self, snap: &CacheSnapshot, now_ms: i64) -> RestoreReport {
        self.decoder.restore(snap, now_ms)
    }
}
