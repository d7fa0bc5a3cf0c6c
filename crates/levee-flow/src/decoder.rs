//! [`FlowDecoder`]: the stateful front of the crate. One datagram in (with
//! the exporter's address and the time), records out, plus an [`Outcome`]
//! saying what the datagram held and what went wrong.
//!
//! The format is detected from the content ([`detect`]), never from the UDP
//! port: NetFlow v5/v9 and IPFIX start with a 16-bit version (5, 9, 10),
//! sFlow with a 32-bit one (5), so the first two bytes are `00 00` for sFlow
//! and the version for the others.
//!
//! The decoder owns the state that outlives a datagram: templates, sampler
//! rates learnt from options data, and sequence numbers. Templates and rates
//! expire ([`DecoderConfig::template_timeout_ms`]) and can be saved and
//! restored ([`FlowDecoder::snapshot`], [`FlowDecoder::restore`]).

use crate::error::DecodeError;
use crate::record::{Output, Version};
use crate::sampling::{ExporterSampling, SamplerTable};
use crate::sequence::{SeqCheck, SequenceTracker};
use crate::template::{
    CacheSnapshot, DomainKey, Template, TemplateCache, TemplateKey, SNAPSHOT_VERSION,
};
use std::net::IpAddr;

/// Bounds on everything a datagram can make the decoder keep or produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Templates in the whole cache.
    pub max_templates: usize,
    /// Templates per (exporter, version, observation domain).
    pub max_templates_per_domain: usize,
    /// Fields in one template.
    pub max_fields: usize,
    /// Flow and options records one datagram may produce.
    pub max_records_per_datagram: usize,
    /// Sampler rates learnt from options data.
    pub max_samplers: usize,
    /// (exporter, version, domain) sequence streams tracked.
    pub max_sequence_streams: usize,
    /// Samples in one sFlow datagram.
    pub max_sflow_samples: usize,
    /// Records in one sFlow sample.
    pub max_sflow_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_templates: 8_192,
            max_templates_per_domain: 512,
            max_fields: 256,
            max_records_per_datagram: 16_384,
            max_samplers: 4_096,
            max_sequence_streams: 4_096,
            max_sflow_samples: 1_024,
            max_sflow_records: 64,
        }
    }
}

/// The decoder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    pub limits: Limits,
    /// A template or sampler rate not resent for this long is dropped.
    pub template_timeout_ms: u64,
    /// Sampling rates configured per exporter.
    pub exporters: Vec<ExporterSampling>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            limits: Limits::default(),
            template_timeout_ms: 30 * 60 * 1000,
            exporters: Vec::new(),
        }
    }
}

/// What one datagram held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `None` when the format was not recognised.
    pub version: Option<Version>,
    /// Observation domain / source id / sub-agent of the datagram.
    pub domain: u32,
    /// The sFlow agent address (the exporter for sFlow records).
    pub agent: Option<IpAddr>,
    /// Flow records (or sFlow flow samples) added to the output.
    pub flows: u32,
    /// sFlow counter records added.
    pub counters: u32,
    /// Options data records (sampler tables) read.
    pub options: u32,
    /// Template records received (new, replaced or refreshed).
    pub templates: u32,
    /// Templates withdrawn (IPFIX).
    pub withdrawn: u32,
    /// Data sets skipped because their template is unknown.
    pub unknown_templates: u32,
    pub sequence: Option<SeqCheck>,
    /// Everything that could not be decoded; the rest of the datagram was.
    pub errors: Vec<DecodeError>,
}

/// What [`FlowDecoder::restore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub templates: usize,
    pub samplers: usize,
    /// Entries left out: expired, invalid, or beyond the limits.
    pub dropped: usize,
}

/// How often (by the callers' clock) expired templates are swept.
const SWEEP_EVERY_MS: i64 = 10_000;

/// The flow export decoder with its state. Pure: the caller passes the
/// datagram, its source and the time.
#[derive(Debug, Clone)]
pub struct FlowDecoder {
    pub(crate) cfg: DecoderConfig,
    pub(crate) templates: TemplateCache,
    pub(crate) samplers: SamplerTable,
    pub(crate) sequences: SequenceTracker,
    last_sweep_ms: i64,
}

/// The format of a datagram, from its first bytes.
pub fn detect(data: &[u8]) -> Option<Version> {
    let v16 = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
    match v16 {
        5 => Some(Version::Netflow5),
        9 => Some(Version::Netflow9),
        10 => Some(Version::Ipfix),
        0 if data.get(2..4)? == [0, 5] => Some(Version::Sflow5),
        _ => None,
    }
}

impl FlowDecoder {
    pub fn new(cfg: DecoderConfig) -> Self {
        let l = &cfg.limits;
        FlowDecoder {
            templates: TemplateCache::new(l.max_templates, l.max_templates_per_domain),
            samplers: SamplerTable::new(l.max_samplers, &cfg.exporters),
            sequences: SequenceTracker::new(l.max_sequence_streams),
            last_sweep_ms: i64::MIN,
            cfg,
        }
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub fn templates(&self) -> &TemplateCache {
        &self.templates
    }

    pub fn sequences(&self) -> &SequenceTracker {
        &self.sequences
    }

    /// Decodes one datagram from `exporter` received at `now_ms`, appending
    /// records to `out`. Never panics; problems are in [`Outcome::errors`].
    pub fn decode(
        &mut self,
        exporter: IpAddr,
        now_ms: i64,
        data: &[u8],
        out: &mut Output,
    ) -> Outcome {
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            self.expire(now_ms);
        }
        let mut o = Outcome::default();
        match detect(data) {
            Some(Version::Netflow5) => crate::netflow5::decode(self, exporter, data, out, &mut o),
            Some(Version::Netflow9) => {
                crate::netflow9::decode(self, exporter, now_ms, data, out, &mut o)
            }
            Some(Version::Ipfix) => crate::ipfix::decode(self, exporter, now_ms, data, out, &mut o),
            Some(Version::Sflow5) => crate::sflow::decode(self, data, out, &mut o),
            None => {
                let mut head = [0u8; 4];
                let n = data.len().min(4);
                head[..n].copy_from_slice(&data[..n]);
                o.errors.push(DecodeError::UnknownFormat(head));
            }
        }
        o
    }

    /// Drops templates and sampler rates older than the timeout.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        self.last_sweep_ms = now_ms;
        let t = self.cfg.template_timeout_ms;
        self.templates.expire(now_ms, t) + self.samplers.expire(now_ms, t)
    }

    /// Learns one template record (shared by v9 and IPFIX).
    pub(crate) fn learn_template(
        &mut self,
        domain: DomainKey,
        t: Result<Template, DecodeError>,
        o: &mut Outcome,
    ) {
        match t.and_then(|t| self.templates.insert(TemplateKey { domain, id: t.id }, t)) {
            Ok(_) => o.templates += 1,
            Err(e) => o.errors.push(e),
        }
    }

    /// The template cache and sampler rates, for saving.
    pub fn snapshot(&self, now_ms: i64) -> CacheSnapshot {
        CacheSnapshot {
            version: SNAPSHOT_VERSION,
            saved_ms: now_ms,
            templates: self.templates.saved(),
            samplers: self.samplers.saved(),
        }
    }

    /// Loads saved templates and rates (after a restart). Entries are
    /// re-validated as if just received (a tampered file cannot bypass the
    /// limits) and keep their original receive time, so they still expire.
    pub fn restore(&mut self, snap: &CacheSnapshot, now_ms: i64) -> RestoreReport {
        let mut rep = RestoreReport::default();
        let timeout = i64::try_from(self.cfg.template_timeout_ms).unwrap_or(i64::MAX);
        for s in &snap.templates {
            let fresh = now_ms.saturating_sub(s.received_ms) <= timeout;
            let ok = fresh
                && s.fields.len() <= self.cfg.limits.max_fields
                && Template::compile(
                    s.domain.version,
                    s.id,
                    s.kind,
                    s.fields.clone(),
                    s.received_ms,
                )
                .and_then(|t| {
                    self.templates.insert(
                        TemplateKey {
                            domain: s.domain,
                            id: s.id,
                        },
                        t,
                    )
                })
                .is_ok();
            if ok {
                rep.templates += 1;
            } else {
                rep.dropped += 1;
            }
        }
        for s in &snap.samplers {
            let fresh = now_ms.saturating_sub(s.received_ms) <= timeout;
            if fresh
                && s.rate > 0
                && self
                    .samplers
                    .learn(s.domain, s.sampler, s.rate, s.received_ms)
            {
                rep.samplers += 1;
            } else {
                rep.dropped += 1;
            }
        }
        rep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        assert_eq!(detect(&[0, 5, 0, 1]), Some(Version::Netflow5));
        assert_eq!(detect(&[0, 9]), Some(Version::Netflow9));
        assert_eq!(detect(&[0, 10, 0, 16]), Some(Version::Ipfix));
        assert_eq!(detect(&[0, 0, 0, 5, 0, 0, 0, 1]), Some(Version::Sflow5));
        assert_eq!(detect(&[0, 0, 0, 4]), None, "sFlow v4 is not read");
        assert_eq!(detect(&[0]), None);
        assert_eq!(detect(&[]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        let mut out = Output::default();
        let o = d.decode("192.0.2.1".parse().unwrap(), 0, &[0x45, 0, 0], &mut out);
        assert_eq!(o.errors, vec![DecodeError::UnknownFormat([0x45, 0, 0, 0])]);
        assert!(o.version.is_none());
    }
}
