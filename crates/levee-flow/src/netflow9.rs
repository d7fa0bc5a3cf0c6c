//! NetFlow v9 (RFC 3954): a 20-byte header, then FlowSets: templates (id 0),
//! options templates (id 1), data (id >= 256).
//!
//! ```text
//! header:           version(2) count(2) sys_uptime(4) unix_secs(4)
//!                   sequence(4) source_id(4)
//! flowset:          id(2) length(2) body, padded to 4 bytes
//! template:         template_id(2) field_count(2) {type(2) length(2)}*
//! options template: template_id(2) scope_length(2) option_length(2)
//!                   {scope type(2) length(2)}* {type(2) length(2)}*
//! ```
//! Lengths of the options template are in bytes (4 per field). A template
//! id below 256 inside a template FlowSet can only be padding, so parsing of
//! that FlowSet stops there. FlowSet ids 2-255 are reserved and reported.
//! The source id is the observation domain; `sequence` counts export
//! datagrams (next = this + 1).

use crate::datarec::{decode_set, SetContext, SetResult};
use crate::decoder::{FlowDecoder, Outcome};
use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::{Output, Version};
use crate::template::{DomainKey, FieldSpec, Template, TemplateKey, TemplateKind};
use std::net::IpAddr;

pub const HEADER_LEN: usize = 20;

pub(crate) fn decode(
    d: &mut FlowDecoder,
    exporter: IpAddr,
    now_ms: i64,
    data: &[u8],
    out: &mut Output,
    o: &mut Outcome,
) {
    o.version = Some(Version::Netflow9);
    let mut r = Reader::new(data, "NetFlow v9 header");
    let header = (|| {
        r.skip(4)?;
        let uptime = r.u32()?;
        let secs = r.u32()?;
        let seq = r.u32()?;
        let source_id = r.u32()?;
        Ok::<_, DecodeError>((uptime, secs, seq, source_id))
    })();
    let (uptime, secs, seq, source_id) = match header {
        Ok(h) => h,
        Err(e) => return o.errors.push(e),
    };
    o.domain = source_id;
    let domain = DomainKey {
        exporter,
        version: Version::Netflow9,
        domain: source_id,
    };
    o.sequence = d.sequences.check(domain, seq, Some(1));
    let ctx = SetContext {
        domain,
        boot_ms: Some(i64::from(secs) * 1000 - i64::from(uptime)),
        now_ms,
        max_records: d.cfg.limits.max_records_per_datagram,
    };
    let mut budget = ctx.max_records;
    let mut sets = Reader::new(r.rest(), "NetFlow v9 FlowSet");
    while sets.remaining() >= 4 {
        let (id, body) = match next_set(&mut sets, "NetFlow v9 FlowSet") {
            Ok(s) => s,
            Err(e) => return o.errors.push(e),
        };
        match id {
            0 => templates(d, domain, now_ms, body, o),
            1 => options_templates(d, domain, now_ms, body, o),
            2..=255 => o.errors.push(DecodeError::malformed(
                "NetFlow v9 FlowSet",
                format!("reserved FlowSet id {id} skipped"),
            )),
            _ => {
                data_set(d, &ctx, id, body, out, &mut budget, o);
            }
        }
    }
}

/// Reads one set header and body (v9 FlowSet or IPFIX Set: same layout).
pub(crate) fn next_set<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<(u16, &'a [u8]), DecodeError> {
    let id = r.u16()?;
    let len = usize::from(r.u16()?);
    if len < 4 {
        return Err(DecodeError::malformed(
            what,
            format!("set {id} has length {len} (at least 4); rest of the datagram skipped"),
        ));
    }
    let body = r.bytes(len - 4)?;
    Ok((id, body))
}

/// Decodes a data set against its template; shared with IPFIX.
pub(crate) fn data_set(
    d: &mut FlowDecoder,
    ctx: &SetContext,
    id: u16,
    body: &[u8],
    out: &mut Output,
    budget: &mut usize,
    o: &mut Outcome,
) -> Option<SetResult> {
    let key = TemplateKey {
        domain: ctx.domain,
        id,
    };
    let Some(tpl) = d.templates.get(&key) else {
        o.unknown_templates += 1;
        o.errors.push(DecodeError::UnknownTemplate {
            exporter: ctx.domain.exporter,
            domain: ctx.domain.domain,
            template_id: id,
            bytes: body.len(),
        });
        return None;
    };
    let mut done = SetResult::default();
    let res = decode_set(tpl, body, ctx, &mut d.samplers, out, budget, &mut done);
    o.flows += done.flows;
    o.options += done.options;
    if let Err(e) = res {
        o.errors.push(e);
    }
    Some(done)
}

/// Checks a template's field count before anything is allocated for it:
/// within the limit, and no more fields than the set has bytes for (at
/// least 4 each). Shared with IPFIX.
pub(crate) fn check_field_count(
    r: &Reader<'_>,
    n: usize,
    max: usize,
    what: &'static str,
) -> Result<(), DecodeError> {
    if n > max {
        return Err(DecodeError::Limit {
            what: "fields per template",
            limit: max,
        });
    }
    if r.remaining() < n * 4 {
        return Err(DecodeError::Truncated {
            what,
            needed: n * 4,
            available: r.remaining(),
        });
    }
    Ok(())
}

fn field_list(r: &mut Reader<'_>, n: usize, max: usize) -> Result<Vec<FieldSpec>, DecodeError> {
    check_field_count(r, n, max, "NetFlow v9 template")?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(FieldSpec {
            id: r.u16()?,
            length: r.u16()?,
            enterprise: 0,
        });
    }
    Ok(v)
}

fn templates(d: &mut FlowDecoder, domain: DomainKey, now_ms: i64, body: &[u8], o: &mut Outcome) {
    let mut r = Reader::new(body, "NetFlow v9 template");
    while r.remaining() >= 4 {
        let parsed = (|| {
            let id = r.u16()?;
            let n = usize::from(r.u16()?);
            if id < 256 {
                return Ok(None); // padding
            }
            let fields = field_list(&mut r, n, d.cfg.limits.max_fields)?;
            Ok(Some(Template::compile(
                Version::Netflow9,
                id,
                TemplateKind::Data,
                fields,
                now_ms,
            )))
        })();
        match parsed {
            Ok(None) => break,
            Ok(Some(t)) => d.learn_template(domain, t, o),
            Err(e) => return o.errors.push(e),
        }
    }
}

fn options_templates(
    d: &mut FlowDecoder,
    domain: DomainKey,
    now_ms: i64,
    body: &[u8],
    o: &mut Outcome,
) {
    let mut r = Reader::new(body, "NetFlow v9 options template");
    while r.remaining() >= 6 {
        let parsed = (|| {
            let id = r.u16()?;
            let scope_len = usize::from(r.u16()?);
            let opt_len = usize::from(r.u16()?);
            if id < 256 {
                return Ok(None); // padding
            }
            if scope_len % 4 != 0 || opt_len % 4 != 0 {
                return Err(DecodeError::BadTemplate {
                    template_id: id,
                    reason: format!(
                        "scope length {scope_len} / option length {opt_len} not multiples of 4"
                    ),
                });
            }
            let n_scope = scope_len / 4;
            let fields = field_list(&mut r, n_scope + opt_len / 4, d.cfg.limits.max_fields)?;
            let kind = TemplateKind::Options {
                scope_fields: n_scope as u16,
            };
            Ok(Some(Template::compile(
                Version::Netflow9,
                id,
                kind,
                fields,
                now_ms,
            )))
        })();
        match parsed {
            Ok(None) => break,
            Ok(Some(t)) => d.learn_template(domain, t, o),
            Err(e) => return o.errors.push(e),
        }
    }
}
