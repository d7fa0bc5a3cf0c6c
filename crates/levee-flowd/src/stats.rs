//! Counters per exporter: datagrams, bytes, records, decode errors, data
//! sets with unknown templates, sequence gaps. Keyed by the datagram's
//! source address; bounded (beyond [`ExporterTable::new`]'s cap, new
//! exporters are summed under one overflow row) so spoofed datagrams cannot
//! grow the table.

use levee_flow::{Outcome, SeqCheck, Version};
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;

/// One exporter's totals since the collector started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExporterStats {
    pub datagrams: u64,
    pub bytes: u64,
    /// Flow records (or sFlow flow samples) decoded.
    pub records: u64,
    /// sFlow counter records decoded.
    pub counter_records: u64,
    /// Problems reported (a datagram can have several).
    pub decode_errors: u64,
    /// Data sets skipped because their template was unknown.
    pub unknown_templates: u64,
    /// Template records received.
    pub templates: u64,
    /// Sequence gaps, and the datagrams or records they say were lost.
    pub sequence_gaps: u64,
    pub sequence_lost: u64,
    /// The last format seen.
    pub version: Option<Version>,
    /// When the last datagram came, ms since the Unix epoch.
    pub last_seen_ms: i64,
}

impl ExporterStats {
    fn add(&mut self, now_ms: i64, len: usize, o: &Outcome) {
        self.datagrams += 1;
        self.bytes += len as u64;
        self.records += u64::from(o.flows);
        self.counter_records += u64::from(o.counters);
        self.decode_errors += o.errors.len() as u64;
        self.unknown_templates += u64::from(o.unknown_templates);
        self.templates += u64::from(o.templates);
        if let Some(SeqCheck::Gap { lost, .. }) = o.sequence {
            self.sequence_gaps += 1;
            self.sequence_lost += u64::from(lost);
        }
        if o.version.is_some() {
            self.version = o.version;
        }
        self.last_seen_ms = now_ms;
    }
}

/// One row of [`ExporterTable::rows`]: `exporter` is `None` for the
/// overflow row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterRow {
    pub exporter: Option<IpAddr>,
    #[serde(flatten)]
    pub stats: ExporterStats,
}

/// Every exporter's counters, bounded.
#[derive(Debug, Clone, Default)]
pub struct ExporterTable {
    by_exporter: HashMap<IpAddr, ExporterStats>,
    overflow: ExporterStats,
    max: usize,
}

impl ExporterTable {
    pub fn new(max: usize) -> Self {
        ExporterTable {
            by_exporter: HashMap::new(),
            overflow: ExporterStats::default(),
            max,
        }
    }

    /// Counts one datagram of `len` bytes from `src` and what it held.
    pub fn add(&mut self, src: IpAddr, now_ms: i64, len: usize, o: &Outcome) {
        if let Some(s) = self.by_exporter.get_mut(&src) {
            return s.add(now_ms, len, o);
        }
        if self.by_exporter.len() < self.max {
            self.by_exporter.entry(src).or_default().add(now_ms, len, o);
        } else {
            self.overflow.add(now_ms, len, o);
        }
    }

    pub fn get(&self, src: &IpAddr) -> Option<&ExporterStats> {
        self.by_exporter.get(src)
    }

    /// Every exporter by address, then the overflow row if used.
    pub fn rows(&self) -> Vec<ExporterRow> {
        let mut v: Vec<ExporterRow> = self
            .by_exporter
            .iter()
            .map(|(ip, s)| ExporterRow {
                exporter: Some(*ip),
                stats: s.clone(),
            })
            .collect();
        v.sort_by_key(|r| r.exporter);
        if self.overflow.datagrams > 0 {
            v.push(ExporterRow {
                exporter: None,
                stats: self.overflow.clone(),
            });
        }
        v
    }

    /// Sums over every exporter.
    pub fn totals(&self) -> ExporterStats {
        let mut t = self.overflow.clone();
        for s in self.by_exporter.values() {
            t.datagrams += s.datagrams;
            t.bytes += s.bytes;
            t.records += s.records;
            t.counter_records += s.counter_records;
            t.decode_errors += s.decode_errors;
            t.unknown_templates += s.unknown_templates;
            t.templates += s.templates;
            t.sequence_gaps += s.sequence_gaps;
            t.sequence_lost += s.sequence_lost;
            t.last_seen_ms = t.last_seen_ms.max(s.last_seen_ms);
        }
        t.version = None;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_flow::DecodeError;

    #[test]
    fn counts_and_bounds() {
        let mut t = ExporterTable::new(1);
        let o = Outcome {
            version: Some(Version::Ipfix),
            flows: 3,
            unknown_templates: 1,
            sequence: Some(SeqCheck::Gap {
                expected: 1,
                received: 5,
                lost: 4,
            }),
            errors: vec![DecodeError::Limit {
                what: "x",
                limit: 1,
            }],
            ..Outcome::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        t.add(a, 10, 100, &o);
        t.add(a, 20, 50, &Outcome::default());
        t.add(b, 30, 10, &o);
        let s = t.get(&a).unwrap();
        assert_eq!(
            (
                s.datagrams,
                s.bytes,
                s.records,
                s.decode_errors,
                s.unknown_templates
            ),
            (2, 150, 3, 1, 1)
        );
        assert_eq!(
            (s.sequence_gaps, s.sequence_lost, s.last_seen_ms),
            (1, 4, 20)
        );
        assert_eq!(
            s.version,
            Some(Version::Ipfix),
            "kept across a datagram of no format"
        );
        let rows = t.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].exporter, None, "b went to the overflow row");
        assert_eq!(t.totals().records, 6);
    }
}
