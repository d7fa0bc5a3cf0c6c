//! Templates (NetFlow v9, IPFIX) and the [`TemplateCache`] that keeps them.
//!
//! Key: exporter address, protocol version, observation domain (v9 source
//! id) and template id ([`TemplateKey`]). Data and options templates share
//! the id space of a domain (RFC 7011 section 3.4.1; RFC 3954 section 5.2): a
//! template received with an id in use replaces the old one whatever its
//! kind. Templates expire `template_timeout` after they were last received
//! (RFC 7011 section 8.4: over UDP the collector relies on the exporter's
//! periodic resends). IPFIX template withdrawals (field count 0) remove one
//! template, or all templates of a kind when the id is the set id.
//!
//! Caps: the number of templates per domain and in total, and the fields per
//! template, are bounded by [`crate::Limits`], so a hostile exporter cannot
//! grow the cache without bound. A template is compiled once, on receipt,
//! into [`Op`]s: decoding a record then walks a short array with no lookups.
//!
//! The cache (with the sampler table) is saved and restored as a
//! [`CacheSnapshot`], so a restarted collector decodes data at once instead
//! of dropping it until every exporter has resent its templates.

use crate::error::DecodeError;
use crate::ie::{act_of, Act};
use crate::record::Version;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// The field length that marks an IPFIX variable-length field.
pub const VARLEN: u16 = 65535;

/// One template field: element id, length, enterprise number (0 = IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The element id without the enterprise bit.
    pub id: u16,
    pub length: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub enterprise: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Data template or options template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TemplateKind {
    Data,
    /// The first `scope_fields` fields are scope fields.
    Options {
        scope_fields: u16,
    },
}

/// One compiled step of record decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub act: Act,
    /// Field length, or [`VARLEN`].
    pub len: u16,
}

/// A template as received, with its compiled form.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: u16,
    pub kind: TemplateKind,
    pub fields: Vec<FieldSpec>,
    /// Adjacent skipped fixed-length fields merged into one op.
    pub ops: Vec<Op>,
    /// Smallest record length (a variable-length field takes at least its
    /// one length byte). Always > 0.
    pub min_len: usize,
    /// When the exporter last sent it (ms since the Unix epoch).
    pub received_ms: i64,
}

impl Template {
    /// Validates and compiles a template of `version`. NetFlow v9 options
    /// scope fields use their own type numbers (RFC 3954 section 6.1: 1
    /// system, 2 interface, ...), which collide with element ids, so they
    /// are skipped by length.
    pub fn compile(
        version: Version,
        id: u16,
        kind: TemplateKind,
        fields: Vec<FieldSpec>,
        received_ms: i64,
    ) -> Result<Template, DecodeError> {
        let bad = |reason: String| DecodeError::BadTemplate {
            template_id: id,
            reason,
        };
        if id < 256 {
            return Err(bad(format!(
                "id {id} is reserved (data template ids start at 256)"
            )));
        }
        if fields.is_empty() {
            return Err(bad("no fields".into()));
        }
        let scope = match kind {
            TemplateKind::Data => 0,
            TemplateKind::Options { scope_fields } => usize::from(scope_fields),
        };
        if scope > fields.len() {
            return Err(bad(format!(
                "scope field count {scope} exceeds field count {}",
                fields.len()
            )));
        }
        let mut ops: Vec<Op> = Vec::with_capacity(fields.len());
        let mut min_len = 0usize;
        for (i, f) in fields.iter().enumerate() {
            let varlen = version == Version::Ipfix && f.length == VARLEN;
            min_len += if varlen { 1 } else { usize::from(f.length) };
            let v9_scope = version == Version::Netflow9 && i < scope;
            let act = if f.enterprise != 0 || v9_scope {
                Act::Skip
            } else {
                act_of(f.id)
            };
            let len = if varlen { VARLEN } else { f.length };
            match ops.last_mut() {
                // Merging is safe while the sum stays a fixed length below
                // VARLEN; a record can't be longer than a datagram anyway.
                Some(last)
                    if act == Act::Skip
                        && last.act == Act::Skip
                        && len != VARLEN
                        && last.len != VARLEN
                        && u32::from(last.len) + u32::from(len) < u32::from(VARLEN) =>
                {
                    last.len += len
                }
                _ => ops.push(Op { act, len }),
            }
        }
        if min_len == 0 {
            return Err(bad(
                "every field has length 0: records would take no bytes".into()
            ));
        }
        Ok(Template {
            id,
            kind,
            fields,
            ops,
            min_len,
            received_ms,
        })
    }

    pub fn is_options(&self) -> bool {
        matches!(self.kind, TemplateKind::Options { .. })
    }
}

/// Which transport session and domain a template belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DomainKey {
    pub exporter: IpAddr,
    pub version: Version,
    pub domain: u32,
}

/// The cache key of one template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey {
    pub domain: DomainKey,
    pub id: u16,
}

/// What [`TemplateCache::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The id was in use and the template differed (kind or fields).
    Replaced,
    /// The same template again (the periodic resend).
    Refreshed,
}

/// Templates by key, bounded.
#[derive(Debug, Clone, Default)]
pub struct TemplateCache {
    map: HashMap<TemplateKey, Template>,
    per_domain: HashMap<DomainKey, usize>,
    max_total: usize,
    max_per_domain: usize,
}

impl TemplateCache {
    pub fn new(max_total: usize, max_per_domain: usize) -> Self {
        TemplateCache {
            map: HashMap::new(),
            per_domain: HashMap::new(),
            max_total,
            max_per_domain,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[inline]
    pub fn get(&self, key: &TemplateKey) -> Option<&Template> {
        self.map.get(key)
    }

    /// Adds or replaces a template; a new one beyond the caps is refused.
    pub fn insert(&mut self, key: TemplateKey, t: Template) -> Result<Inserted, DecodeError> {
        if let Some(old) = self.map.get_mut(&key) {
            let same = old.kind == t.kind && old.fields == t.fields;
            *old = t;
            return Ok(if same {
                Inserted::Refreshed
            } else {
                Inserted::Replaced
            });
        }
        let n = self.per_domain.get(&key.domain).copied().unwrap_or(0);
        if n >= self.max_per_domain {
            return Err(DecodeError::Limit {
                what: "templates per exporter and observation domain",
                limit: self.max_per_domain,
            });
        }
        if self.map.len() >= self.max_total {
            return Err(DecodeError::Limit {
                what: "templates in the cache",
                limit: self.max_total,
            });
        }
        self.map.insert(key, t);
        *self.per_domain.entry(key.domain).or_insert(0) += 1;
        Ok(Inserted::New)
    }

    fn forget(&mut self, key: &TemplateKey) -> bool {
        if self.map.remove(key).is_none() {
            return false;
        }
        if let Some(n) = self.per_domain.get_mut(&key.domain) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_domain.remove(&key.domain);
            }
        }
        true
    }

    /// Removes one template (IPFIX withdrawal); true when it existed.
    pub fn withdraw(&mut self, key: &TemplateKey) -> bool {
        self.forget(key)
    }

    /// Removes every template of the domain whose kind is options (or data):
    /// the IPFIX "withdraw all" (template id = set id, RFC 7011 section 8.1).
    pub fn withdraw_all(&mut self, domain: &DomainKey, options: bool) -> usize {
        let keys: Vec<TemplateKey> = self
            .map
            .iter()
            .filter(|(k, t)| k.domain == *domain && t.is_options() == options)
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter(|k| self.forget(k)).count()
    }

    /// Drops templates not received for `timeout_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64, timeout_ms: u64) -> usize {
        let limit = i64::try_from(timeout_ms).unwrap_or(i64::MAX);
        let old: Vec<TemplateKey> = self
            .map
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(t.received_ms) > limit)
            .map(|(k, _)| *k)
            .collect();
        old.iter().filter(|k| self.forget(k)).count()
    }

    /// Every template, for saving (sorted, so snapshots are stable).
    pub fn saved(&self) -> Vec<SavedTemplate> {
        let mut v: Vec<SavedTemplate> = self
            .map
            .iter()
            .map(|(k, t)| SavedTemplate {
                domain: k.domain,
                id: k.id,
                kind: t.kind,
                fields: t.fields.clone(),
                received_ms: t.received_ms,
            })
            .collect();
        v.sort_by_key(|s| (s.domain, s.id));
        v
    }
}

/// One template in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTemplate {
    pub domain: DomainKey,
    pub id: u16,
    #[serde(flatten)]
    pub kind: TemplateKind,
    pub fields: Vec<FieldSpec>,
    pub received_ms: i64,
}

/// One sampler table entry in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSampler {
    pub domain: DomainKey,
    /// Sampler / selector id; `None` for the domain-wide rate.
    pub sampler: Option<u64>,
    pub rate: u32,
    pub received_ms: i64,
}

pub const SNAPSHOT_VERSION: u32 = 1;

/// The persisted template cache and sampler table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSnapshot {
    pub version: u32,
    pub saved_ms: i64,
    pub templates: Vec<SavedTemplate>,
    pub samplers: Vec<SavedSampler>,
}

impl CacheSnapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("template snapshot serialises")
    }

    pub fn from_json(s: &str) -> Result<Self, crate::error::SnapshotError> {
        let snap: CacheSnapshot = serde_json::from_str(s)?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(crate::error::SnapshotError::Version {
                found: snap.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn f(id: u16, length: u16) -> FieldSpec {
        FieldSpec {
            id,
            length,
            enterprise: 0,
        }
    }

    fn dk(domain: u32) -> DomainKey {
        DomainKey {
            exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            version: Version::Ipfix,
            domain,
        }
    }

    fn t(id: u16, kind: TemplateKind, fields: Vec<FieldSpec>) -> Template {
        Template::compile(Version::Ipfix, id, kind, fields, 0).unwrap()
    }

    #[test]
    fn compile_merges_skips_and_counts_varlen() {
        let tpl = t(
            256,
            TemplateKind::Data,
            vec![f(8, 4), f(999, 2), f(998, 3), f(82, VARLEN), f(2, 8)],
        );
        assert_eq!(
            tpl.ops,
            vec![
                Op {
                    act: Act::SrcV4,
                    len: 4
                },
                Op {
                    act: Act::Skip,
                    len: 5
                },
                Op {
                    act: Act::Skip,
                    len: VARLEN
                },
                Op {
                    act: Act::Packets,
                    len: 8
                },
            ]
        );
        assert_eq!(tpl.min_len, 4 + 5 + 1 + 8);
    }

    #[test]
    fn bad_templates_are_refused() {
        let e = Template::compile(Version::Ipfix, 7, TemplateKind::Data, vec![f(8, 4)], 0);
        assert!(matches!(
            e,
            Err(DecodeError::BadTemplate { template_id: 7, .. })
        ));
        let e = Template::compile(Version::Ipfix, 300, TemplateKind::Data, vec![f(8, 0)], 0);
        assert!(e.unwrap_err().to_string().contains("length 0"));
        let e = Template::compile(
            Version::Ipfix,
            300,
            TemplateKind::Options { scope_fields: 3 },
            vec![f(8, 4)],
            0,
        );
        assert!(e.is_err());
    }

    #[test]
    fn v9_scope_fields_are_skipped() {
        let tpl = Template::compile(
            Version::Netflow9,
            256,
            TemplateKind::Options { scope_fields: 1 },
            vec![f(1, 4), f(34, 4)],
            0,
        )
        .unwrap();
        assert_eq!(
            tpl.ops[0].act,
            Act::Skip,
            "scope type 1 is 'system', not octetDeltaCount"
        );
        assert_eq!(tpl.ops[1].act, Act::SamplingInterval);
    }

    #[test]
    fn reuse_replaces_across_kinds_and_caps_hold() {
        let mut c = TemplateCache::new(3, 2);
        let k = |id| TemplateKey { domain: dk(1), id };
        assert_eq!(
            c.insert(k(256), t(256, TemplateKind::Data, vec![f(8, 4)]))
                .unwrap(),
            Inserted::New
        );
        assert_eq!(
            c.insert(k(256), t(256, TemplateKind::Data, vec![f(8, 4)]))
                .unwrap(),
            Inserted::Refreshed
        );
        let opt = t(
            256,
            TemplateKind::Options { scope_fields: 1 },
            vec![f(302, 4), f(34, 4)],
        );
        assert_eq!(c.insert(k(256), opt).unwrap(), Inserted::Replaced);
        assert!(c.get(&k(256)).unwrap().is_options());
        c.insert(k(257), t(257, TemplateKind::Data, vec![f(8, 4)]))
            .unwrap();
        let e = c.insert(k(258), t(258, TemplateKind::Data, vec![f(8, 4)]));
        assert!(
            matches!(e, Err(DecodeError::Limit { .. })),
            "per-domain cap"
        );
        let other = TemplateKey {
            domain: dk(2),
            id: 256,
        };
        c.insert(other, t(256, TemplateKind::Data, vec![f(8, 4)]))
            .unwrap();
        let k3 = TemplateKey {
            domain: dk(3),
            id: 256,
        };
        let e = c.insert(k3, t(256, TemplateKind::Data, vec![f(8, 4)]));
        assert!(matches!(e, Err(DecodeError::Limit { .. })), "total cap");
        assert_eq!(c.withdraw_all(&dk(1), true), 1);
        assert_eq!(c.len(), 2);
        assert!(c.withdraw(&k(257)));
        assert!(!c.withdraw(&k(257)));
        c.insert(k3, t(256, TemplateKind::Data, vec![f(8, 4)]))
            .unwrap();
    }

    #[test]
    fn expiry_drops_stale_templates() {
        let mut c = TemplateCache::new(10, 10);
        let mut old = t(256, TemplateKind::Data, vec![f(8, 4)]);
        old.received_ms = 1_000;
        let mut fresh = t(257, TemplateKind::Data, vec![f(8, 4)]);
        fresh.received_ms = 50_000;
        c.insert(
            TemplateKey {
                domain: dk(1),
                id: 256,
            },
            old,
        )
        .unwrap();
        c.insert(
            TemplateKey {
                domain: dk(1),
                id: 257,
            },
            fresh,
        )
        .unwrap();
        assert_eq!(c.expire(60_000, 30_000), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.saved()[0].id, 257);
    }
}
