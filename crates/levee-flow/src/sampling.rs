//! Sampling rates: how many packets on the wire one exported packet stands
//! for, and where that number comes from.
//!
//! Order of precedence for one record (first that applies):
//! 1. the collector's per-exporter configuration when it is marked `force`
//!    (for exporters known to report a wrong rate);
//! 2. the datagram itself: the NetFlow v5 header's sampling interval, the
//!    sFlow sample's rate, or sampling fields inside the flow record;
//! 3. options data the exporter sent (RFC 3954 section 6.1 / RFC 7011
//!    section 3.4.2.2 with RFC 5477 elements): the rate of the record's
//!    sampler / selector id, else the rate the domain announced without one;
//! 4. the per-exporter configuration as a fallback;
//! 5. 1 (unsampled).
//!
//! Rates from fields ([`SamplingFields::rate`]): random n-out-of-N
//! (samplingPopulation / samplingSize), systematic count-based
//! ((samplingPacketInterval + samplingPacketSpace) / samplingPacketInterval),
//! samplingInterval, samplerRandomInterval; rounded to the nearest integer.

use crate::record::SamplingSource;
use crate::template::{DomainKey, SavedSampler};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// Sampling-related values found in one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplingFields {
    pub interval: u64,
    pub random_interval: u64,
    pub sampler_id: Option<u64>,
    pub packet_interval: u64,
    pub packet_space: u64,
    pub size: u64,
    pub population: u64,
}

impl SamplingFields {
    /// The rate these fields state, if any.
    pub fn rate(&self) -> Option<u32> {
        let r = if self.size > 0 && self.population > 0 {
            self.population as f64 / self.size as f64
        } else if self.packet_interval > 0 {
            (self.packet_interval as f64 + self.packet_space as f64) / self.packet_interval as f64
        } else if self.interval > 0 {
            self.interval as f64
        } else if self.random_interval > 0 {
            self.random_interval as f64
        } else {
            return None;
        };
        Some(r.round().clamp(1.0, f64::from(u32::MAX)) as u32)
    }
}

/// A configured rate for one exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterSampling {
    pub exporter: IpAddr,
    pub rate: u32,
    /// Use this rate even when the export states another.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SamplerKey {
    domain: DomainKey,
    sampler: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    rate: u32,
    received_ms: i64,
}

/// Sampler rates learnt from options data, plus the configured ones.
#[derive(Debug, Clone, Default)]
pub struct SamplerTable {
    learnt: HashMap<SamplerKey, Entry>,
    configured: HashMap<IpAddr, ExporterSampling>,
    max_entries: usize,
}

impl SamplerTable {
    pub fn new(max_entries: usize, configured: &[ExporterSampling]) -> Self {
        SamplerTable {
            learnt: HashMap::new(),
            configured: configured.iter().map(|c| (c.exporter, *c)).collect(),
            max_entries,
        }
    }

    pub fn len(&self) -> usize {
        self.learnt.len()
    }

    pub fn is_empty(&self) -> bool {
        self.learnt.is_empty()
    }

    /// Records a rate announced in options data. Returns false when the
    /// table is full (the rate is then not kept).
    pub fn learn(
        &mut self,
        domain: DomainKey,
        sampler: Option<u64>,
        rate: u32,
        now_ms: i64,
    ) -> bool {
        let key = SamplerKey { domain, sampler };
        if !self.learnt.contains_key(&key) && self.learnt.len() >= self.max_entries {
            return false;
        }
        self.learnt.insert(
            key,
            Entry {
                rate,
                received_ms: now_ms,
            },
        );
        true
    }

    /// The rate of a record: its own fields (`in_packet`), its sampler's
    /// options data, or configuration. See the module docs for the order.
    #[inline]
    pub fn resolve(
        &self,
        domain: &DomainKey,
        in_packet: Option<u32>,
        sampler: Option<u64>,
    ) -> (u32, SamplingSource) {
        let cfg = self.configured.get(&domain.exporter);
        if let Some(c) = cfg.filter(|c| c.force) {
            return (c.rate.max(1), SamplingSource::Config);
        }
        if let Some(r) = in_packet {
            return (r.max(1), SamplingSource::Packet);
        }
        if !self.learnt.is_empty() {
            let by_id = sampler.and_then(|s| {
                self.learnt.get(&SamplerKey {
                    domain: *domain,
                    sampler: Some(s),
                })
            });
            let any = || {
                self.learnt.get(&SamplerKey {
                    domain: *domain,
                    sampler: None,
                })
            };
            if let Some(e) = by_id.or_else(any) {
                return (e.rate.max(1), SamplingSource::Options);
            }
        }
        match cfg {
            Some(c) => (c.rate.max(1), SamplingSource::Config),
            None => (1, SamplingSource::None),
        }
    }

    /// Drops rates not re-announced for `timeout_ms`.
    pub fn expire(&mut self, now_ms: i64, timeout_ms: u64) -> usize {
        let limit = i64::try_from(timeout_ms).unwrap_or(i64::MAX);
        let before = self.learnt.len();
        self.learnt
            .retain(|_, e| now_ms.saturating_sub(e.received_ms) <= limit);
        before - self.learnt.len()
    }

    pub fn saved(&self) -> Vec<SavedSampler> {
        let mut v: Vec<SavedSampler> = self
            .learnt
            .iter()
            .map(|(k, e)| SavedSampler {
                domain: k.domain,
                sampler: k.sampler,
                rate: e.rate,
                received_ms: e.received_ms,
            })
            .collect();
        v.sort_by_key(|s| (s.domain, s.sampler));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Version;
    use std::net::Ipv4Addr;

    fn dk(last: u8) -> DomainKey {
        DomainKey {
            exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)),
            version: Version::Netflow9,
            domain: 0,
        }
    }

    #[test]
    fn rates_from_fields() {
        let f = |g: fn(&mut SamplingFields)| {
            let mut s = SamplingFields::default();
            g(&mut s);
            s.rate()
        };
        assert_eq!(f(|_| {}), None);
        assert_eq!(f(|s| s.interval = 1000), Some(1000));
        assert_eq!(
            f(|s| {
                s.size = 1;
                s.population = 256;
                s.packet_interval = 1;
            }),
            Some(256),
            "random n-out-of-N wins over a packet interval"
        );
        assert_eq!(
            f(|s| {
                s.packet_interval = 1;
                s.packet_space = 99;
            }),
            Some(100)
        );
        assert_eq!(f(|s| s.random_interval = 64), Some(64));
    }

    #[test]
    fn precedence() {
        let cfg = [
            ExporterSampling {
                exporter: dk(1).exporter,
                rate: 512,
                force: false,
            },
            ExporterSampling {
                exporter: dk(2).exporter,
                rate: 4096,
                force: true,
            },
        ];
        let mut t = SamplerTable::new(10, &cfg);
        assert_eq!(t.resolve(&dk(3), None, None), (1, SamplingSource::None));
        assert_eq!(
            t.resolve(&dk(1), None, Some(1)),
            (512, SamplingSource::Config)
        );
        assert!(t.learn(dk(1), Some(1), 100, 0));
        assert!(t.learn(dk(1), None, 10, 0));
        assert_eq!(
            t.resolve(&dk(1), None, Some(1)),
            (100, SamplingSource::Options)
        );
        assert_eq!(
            t.resolve(&dk(1), None, Some(7)),
            (10, SamplingSource::Options)
        );
        assert_eq!(
            t.resolve(&dk(1), Some(2000), Some(1)),
            (2000, SamplingSource::Packet)
        );
        assert_eq!(
            t.resolve(&dk(2), Some(2000), None),
            (4096, SamplingSource::Config)
        );
    }

    #[test]
    fn table_is_bounded_and_expires() {
        let mut t = SamplerTable::new(2, &[]);
        assert!(t.learn(dk(1), Some(1), 10, 0));
        assert!(t.learn(dk(1), Some(2), 10, 100));
        assert!(!t.learn(dk(1), Some(3), 10, 0));
        assert!(
            t.learn(dk(1), Some(1), 20, 0),
            "updating an entry is allowed"
        );
        assert_eq!(t.expire(200, 150), 1);
        assert_eq!(t.saved().len(), 1);
    }
}
