//! IPFIX (RFC 7011): a 16-byte message header, then Sets: templates (id 2),
//! options templates (id 3), data (id >= 256).
//!
//! ```text
//! header:           version(2)=10 length(2) export_time(4) sequence(4)
//!                   observation_domain(4)
//! set:              id(2) length(2) records, padding
//! field specifier:  E|element_id(2) length(2) [enterprise_number(4) if E]
//! template record:  template_id(2) field_count(2) fields
//! options template: template_id(2) field_count(2) scope_field_count(2) fields
//! withdrawal:       template_id(2) 0(2)
//! ```
//! - A field length of 65535 marks a variable-length field (section 7).
//! - Enterprise-specific elements (E bit set) carry a Private Enterprise
//!   Number; they are kept in the template (its layout needs them) and
//!   skipped in records.
//! - Withdrawal (section 8.1): field count 0 removes template `template_id`;
//!   a template id equal to the set id (2 or 3) removes every data (or
//!   options) template of the domain. Over UDP RFC 7011 section 8.4 says
//!   exporters should not send withdrawals; they are honoured anyway, since
//!   the decoder does not know the transport (and SCTP/TCP captures exist).
//! - The scope field count of an options template must not be 0 (section
//!   3.4.2.2).
//! - `length` is the whole message; bytes after it are ignored, a datagram
//!   shorter than it is truncated.
//! - `sequence` counts data records (options data included) before this
//!   message; the next expected is this one plus the records decoded, unknown
//!   when a data set could not be decoded.

use crate::datarec::SetContext;
use crate::decoder::{FlowDecoder, Outcome};
use crate::error::DecodeError;
use crate::netflow9::{check_field_count, data_set, next_set};
use crate::reader::Reader;
use crate::record::{Output, Version};
use crate::template::{DomainKey, FieldSpec, Template, TemplateKey, TemplateKind};
use std::net::IpAddr;

pub const HEADER_LEN: usize = 16;
const SET_TEMPLATE: u16 = 2;
const SET_OPTIONS: u16 = 3;

pub(crate) fn decode(
    d: &mut FlowDecoder,
    exporter: IpAddr,
    now_ms: i64,
    data: &[u8],
    out: &mut Output,
    o: &mut Outcome,
) {
    o.version = Some(Version::Ipfix);
    let mut r = Reader::new(data, "IPFIX message header");
    let header = (|| {
        r.skip(2)?;
        let length = usize::from(r.u16()?);
        let _export_time = r.u32()?;
        let seq = r.u32()?;
        let domain = r.u32()?;
        Ok::<_, DecodeError>((length, seq, domain))
    })();
    let (length, seq, obs_domain) = match header {
        Ok(h) => h,
        Err(e) => return o.errors.push(e),
    };
    o.domain = obs_domain;
    if length < HEADER_LEN {
        return o.errors.push(DecodeError::malformed(
            "IPFIX message header",
            format!("message length {length} is shorter than the header"),
        ));
    }
    if length > data.len() {
        return o.errors.push(DecodeError::Truncated {
            what: "IPFIX message",
            needed: length,
            available: data.len(),
        });
    }
    let domain = DomainKey {
        exporter,
        version: Version::Ipfix,
        domain: obs_domain,
    };
    let ctx = SetContext {
        domain,
        boot_ms: None,
        now_ms,
        max_records: d.cfg.limits.max_records_per_datagram,
    };
    let mut budget = ctx.max_records;
    let mut data_records = 0u32;
    let mut count_known = true;
    let mut sets = Reader::new(&data[HEADER_LEN..length], "IPFIX set");
    while sets.remaining() >= 4 {
        let (id, body) = match next_set(&mut sets, "IPFIX set") {
            Ok(s) => s,
            Err(e) => {
                count_known = false;
                o.errors.push(e);
                break;
            }
        };
        match id {
            SET_TEMPLATE | SET_OPTIONS => templates(d, domain, id, now_ms, body, o),
            0 | 1 | 4..=255 => o.errors.push(DecodeError::malformed(
                "IPFIX set",
                format!("reserved set id {id} skipped"),
            )),
            _ => match data_set(d, &ctx, id, body, out, &mut budget, o) {
                Some(done) => data_records = data_records.wrapping_add(done.records()),
                None => count_known = false,
            },
        }
    }
    if sets.remaining() > 0 {
        o.errors.push(DecodeError::malformed(
            "IPFIX message",
            format!("{} bytes after the last set", sets.remaining()),
        ));
    }
    o.sequence = d
        .sequences
        .check(domain, seq, count_known.then_some(data_records));
}

fn field_specs(r: &mut Reader<'_>, n: usize, max: usize) -> Result<Vec<FieldSpec>, DecodeError> {
    check_field_count(r, n, max, "IPFIX template record")?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let raw = r.u16()?;
        let length = r.u16()?;
        let enterprise = if raw & 0x8000 != 0 { r.u32()? } else { 0 };
        v.push(FieldSpec {
            id: raw & 0x7fff,
            length,
            enterprise,
        });
    }
    Ok(v)
}

/// A template or options template set (`set_id` 2 or 3).
fn templates(
    d: &mut FlowDecoder,
    domain: DomainKey,
    set_id: u16,
    now_ms: i64,
    body: &[u8],
    o: &mut Outcome,
) {
    let options = set_id == SET_OPTIONS;
    let mut r = Reader::new(
        body,
        if options {
            "IPFIX options template record"
        } else {
            "IPFIX template record"
        },
    );
    while r.remaining() >= 4 {
        let parsed = (|| {
            let id = r.u16()?;
            let n = usize::from(r.u16()?);
            if n == 0 {
                return Ok(Parsed::Withdraw(id));
            }
            let kind = if options {
                let scope = r.u16()?;
                if scope == 0 {
                    return Err(DecodeError::BadTemplate {
                        template_id: id,
                        reason: "options template with scope field count 0".into(),
                    });
                }
                TemplateKind::Options {
                    scope_fields: scope,
                }
            } else {
                TemplateKind::Data
            };
            let fields = field_specs(&mut r, n, d.cfg.limits.max_fields)?;
            Ok(Parsed::Template(Template::compile(
                Version::Ipfix,
                id,
                kind,
                fields,
                now_ms,
            )))
        })();
        match parsed {
            Ok(Parsed::Withdraw(0)) => break, // padding
            Ok(Parsed::Withdraw(id)) if id == set_id => {
                o.withdrawn += d.templates.withdraw_all(&domain, options) as u32;
            }
            Ok(Parsed::Withdraw(id)) if id >= 256 => {
                if d.templates.withdraw(&TemplateKey { domain, id }) {
                    o.withdrawn += 1;
                }
            }
            Ok(Parsed::Withdraw(id)) => {
                return o.errors.push(DecodeError::malformed(
                    "IPFIX template withdrawal",
                    format!("template id {id} in set {set_id}"),
                ))
            }
            Ok(Parsed::Template(t)) => d.learn_template(domain, t, o),
            Err(e) => return o.errors.push(e),
        }
    }
}

enum Parsed {
    Withdraw(u16),
    Template(Result<Template, DecodeError>),
}
