//! Sequence numbers per exporter and domain: lost export datagrams (or
//! records) show up as gaps.
//!
//! What a sequence number counts differs by protocol, and so does what the
//! next one should be:
//! - NetFlow v5: flows before this datagram -> next = seq + record count;
//! - NetFlow v9: export datagrams of the source id -> next = seq + 1
//!   (RFC 3954 section 5.1);
//! - IPFIX: data records of the domain before this message -> next = seq +
//!   data records in it (RFC 7011 section 3.1), unknown when a data set could
//!   not be decoded (its record count is then unknown);
//! - sFlow: datagrams of the agent and sub-agent -> next = seq + 1.
//!
//! A number ahead of the expected one is a gap of the difference; one behind
//! (by up to half the number space) is a reordered or duplicated datagram, or
//! an exporter restart. Either way tracking resynchronises on it.

use crate::template::DomainKey;
use serde::Serialize;
use std::collections::HashMap;

/// What one datagram's sequence number said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SeqCheck {
    /// The first datagram of this stream (or the first after one whose
    /// successor could not be predicted).
    First,
    InOrder,
    /// `lost` units (datagrams or records, see the module docs) missing.
    Gap {
        expected: u32,
        received: u32,
        lost: u32,
    },
    /// Behind the expected number: reordering, duplication or a restart.
    Behind {
        expected: u32,
        received: u32,
    },
}

/// Per-stream totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    pub gaps: u64,
    pub lost: u64,
    pub behind: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    next: Option<u32>,
    stats: StreamStats,
}

/// Sequence state of every (exporter, version, domain) stream, bounded.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    streams: HashMap<DomainKey, Stream>,
    max_streams: usize,
}

impl SequenceTracker {
    pub fn new(max_streams: usize) -> Self {
        SequenceTracker {
            streams: HashMap::new(),
            max_streams,
        }
    }

    /// Checks `seq` against the stream's expectation and sets the next one:
    /// `seq + advance`, or unknown when `advance` is `None`. Streams beyond
    /// the cap are not tracked (`None`).
    pub fn check(&mut self, key: DomainKey, seq: u32, advance: Option<u32>) -> Option<SeqCheck> {
        if !self.streams.contains_key(&key) && self.streams.len() >= self.max_streams {
            return None;
        }
        let s = self.streams.entry(key).or_default();
        let check = match s.next {
            None => SeqCheck::First,
            Some(expected) if expected == seq => SeqCheck::InOrder,
            Some(expected) => {
                let ahead = seq.wrapping_sub(expected);
                if ahead < 1 << 31 {
                    s.stats.gaps += 1;
                    s.stats.lost += u64::from(ahead);
                    SeqCheck::Gap {
                        expected,
                        received: seq,
                        lost: ahead,
                    }
                } else {
                    s.stats.behind += 1;
                    SeqCheck::Behind {
                        expected,
                        received: seq,
                    }
                }
            }
        };
        s.next = advance.map(|a| seq.wrapping_add(a));
        Some(check)
    }

    pub fn stats(&self, key: &DomainKey) -> Option<StreamStats> {
        self.streams.get(key).map(|s| s.stats)
    }

    /// Every stream's totals.
    pub fn all(&self) -> impl Iterator<Item = (&DomainKey, StreamStats)> {
        self.streams.iter().map(|(k, s)| (k, s.stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Version;
    use std::net::{IpAddr, Ipv4Addr};

    fn key() -> DomainKey {
        DomainKey {
            exporter: IpAddr::V4(Ipv4Addr::LOCALHOST),
            version: Version::Ipfix,
            domain: 1,
        }
    }

    #[test]
    fn gaps_reorders_and_wraps() {
        let mut t = SequenceTracker::new(4);
        assert_eq!(t.check(key(), 100, Some(5)), Some(SeqCheck::First));
        assert_eq!(t.check(key(), 105, Some(5)), Some(SeqCheck::InOrder));
        assert_eq!(
            t.check(key(), 120, Some(1)),
            Some(SeqCheck::Gap {
                expected: 110,
                received: 120,
                lost: 10
            })
        );
        assert_eq!(
            t.check(key(), 50, Some(1)),
            Some(SeqCheck::Behind {
                expected: 121,
                received: 50
            })
        );
        assert_eq!(
            t.check(key(), u32::MAX, Some(2)),
            Some(SeqCheck::Behind {
                expected: 51,
                received: u32::MAX
            }),
            "more than half the number space ahead is behind"
        );
        assert_eq!(t.check(key(), 1, None), Some(SeqCheck::InOrder), "wraps");
        assert_eq!(
            t.check(key(), 77, Some(1)),
            Some(SeqCheck::First),
            "unknown advance resyncs"
        );
        let s = t.stats(&key()).unwrap();
        assert_eq!((s.gaps, s.lost, s.behind), (1, 10, 2));
    }

    #[test]
    fn bounded() {
        let mut t = SequenceTracker::new(1);
        assert!(t.check(key(), 1, Some(1)).is_some());
        let mut other = key();
        other.domain = 2;
        assert_eq!(t.check(other, 1, Some(1)), None);
    }
}
