//! Template-driven data records, shared by NetFlow v9 and IPFIX: one data
//! set's bytes + its compiled [`Template`] -> [`FlowRecord`]s, or, for an
//! options template, sampler rates into the [`SamplerTable`].
//!
//! Values use the element's reduced-size encoding where the RFC allows it
//! (RFC 7011 section 6.2: unsigned integers of 1 to 8 bytes); addresses must
//! have their full length or are ignored. Variable-length fields (RFC 7011
//! section 7) take a one-byte length, or 255 and a two-byte length.
//!
//! An element repeated in a template (tunnel flows carry outer and inner
//! headers) is read from its first occurrence (RFC 7011 section 8).
//!
//! When a record has both IPv4 and IPv6 address fields (Cisco v9 templates
//! often do, leaving the unused family zero), the address family is chosen
//! by ipVersion (60) when present, else the family whose address is not
//! all-zero, else IPv4.

use crate::error::DecodeError;
use crate::ie::Act;
use crate::reader::{be_uint, Reader};
use crate::record::{FlowRecord, Output};
use crate::sampling::{SamplerTable, SamplingFields};
use crate::template::{DomainKey, Template, VARLEN};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a data set is decoded against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetContext {
    pub domain: DomainKey,
    /// Unix ms at system uptime 0 (NetFlow v9), for flowStart/EndSysUpTime.
    pub boot_ms: Option<i64>,
    pub now_ms: i64,
    /// The datagram's record limit, for the error message.
    pub max_records: usize,
}

/// Fields of one record before the address family is chosen.
#[derive(Debug, Default)]
struct Acc {
    src4: Option<Ipv4Addr>,
    dst4: Option<Ipv4Addr>,
    src6: Option<Ipv6Addr>,
    dst6: Option<Ipv6Addr>,
    ip_version: Option<u8>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    protocol: Option<u8>,
    tcp_flags: Option<u8>,
    tos: Option<u8>,
    bytes: Option<u64>,
    packets: Option<u64>,
    bytes_total: Option<u64>,
    packets_total: Option<u64>,
    input_if: Option<u32>,
    output_if: Option<u32>,
    start_uptime: Option<u64>,
    end_uptime: Option<u64>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    sampling: SamplingFields,
}

/// Sets an unset field: with an element repeated in a template, the first
/// occurrence wins (RFC 7011 section 8: repeats follow the Metering
/// Process's order, so the first is the outer header of a tunnel).
macro_rules! first {
    ($f:expr, $v:expr) => {
        if $f.is_none() {
            $f = $v;
        }
    };
}

/// As [`first!`] for sampling values, where 0 means unset.
macro_rules! first_nz {
    ($f:expr, $v:expr) => {
        if $f == 0 {
            $f = $v;
        }
    };
}

impl Acc {
    #[inline]
    fn apply(&mut self, act: Act, v: &[u8]) {
        match act {
            Act::Skip => {}
            Act::SrcV4 => first!(self.src4, v4(v)),
            Act::DstV4 => first!(self.dst4, v4(v)),
            Act::SrcV6 => first!(self.src6, v6(v)),
            Act::DstV6 => first!(self.dst6, v6(v)),
            Act::SrcPort => first!(self.src_port, Some(be_uint(v) as u16)),
            Act::DstPort => first!(self.dst_port, Some(be_uint(v) as u16)),
            Act::Protocol => first!(self.protocol, Some(be_uint(v) as u8)),
            Act::TcpFlags => first!(self.tcp_flags, Some(be_uint(v) as u8)),
            Act::Tos => first!(self.tos, Some(be_uint(v) as u8)),
            Act::Bytes => first!(self.bytes, Some(be_uint(v))),
            Act::Packets => first!(self.packets, Some(be_uint(v))),
            Act::BytesTotal => first!(self.bytes_total, Some(be_uint(v))),
            Act::PacketsTotal => first!(self.packets_total, Some(be_uint(v))),
            Act::InIf => first!(self.input_if, Some(be_uint(v) as u32)),
            Act::OutIf => first!(self.output_if, Some(be_uint(v) as u32)),
            Act::IpVersion => first!(self.ip_version, Some(be_uint(v) as u8)),
            Act::StartUptime => first!(self.start_uptime, Some(be_uint(v))),
            Act::EndUptime => first!(self.end_uptime, Some(be_uint(v))),
            Act::StartSeconds => first!(self.start_ms, secs_to_ms(be_uint(v))),
            Act::EndSeconds => first!(self.end_ms, secs_to_ms(be_uint(v))),
            Act::StartMillis => first!(self.start_ms, i64::try_from(be_uint(v)).ok()),
            Act::EndMillis => first!(self.end_ms, i64::try_from(be_uint(v)).ok()),
            Act::SamplingInterval => first_nz!(self.sampling.interval, be_uint(v)),
            Act::SamplerRandomInterval => first_nz!(self.sampling.random_interval, be_uint(v)),
            Act::SamplerId | Act::SelectorId => first!(self.sampling.sampler_id, Some(be_uint(v))),
            Act::PacketInterval => first_nz!(self.sampling.packet_interval, be_uint(v)),
            Act::PacketSpace => first_nz!(self.sampling.packet_space, be_uint(v)),
            Act::SamplingSize => first_nz!(self.sampling.size, be_uint(v)),
            Act::SamplingPopulation => first_nz!(self.sampling.population, be_uint(v)),
        }
    }

    fn family_v6(&self) -> bool {
        match self.ip_version {
            Some(6) => true,
            Some(4) => false,
            _ => {
                let v4_set = self.src4.is_some_and(|a| !a.is_unspecified())
                    || self.dst4.is_some_and(|a| !a.is_unspecified());
                let v6_set = self.src6.is_some_and(|a| !a.is_unspecified())
                    || self.dst6.is_some_and(|a| !a.is_unspecified());
                !v4_set && (v6_set || (self.src4.is_none() && self.dst4.is_none()))
            }
        }
    }

    fn into_record(self, rec: &mut FlowRecord, boot_ms: Option<i64>) {
        if self.family_v6() {
            rec.src_addr = self.src6.map(IpAddr::V6);
            rec.dst_addr = self.dst6.map(IpAddr::V6);
        } else {
            rec.src_addr = self.src4.map(IpAddr::V4);
            rec.dst_addr = self.dst4.map(IpAddr::V4);
        }
        rec.src_port = self.src_port;
        rec.dst_port = self.dst_port;
        rec.protocol = self.protocol;
        rec.tcp_flags = self.tcp_flags;
        rec.tos = self.tos;
        rec.packets = self.packets.or(self.packets_total).unwrap_or(0);
        rec.bytes = self.bytes.or(self.bytes_total).unwrap_or(0);
        rec.input_if = self.input_if;
        rec.output_if = self.output_if;
        let since_boot = |up: Option<u64>| {
            boot_ms
                .zip(up.and_then(|u| i64::try_from(u).ok()))
                .map(|(b, u)| b.saturating_add(u))
        };
        rec.start_ms = self.start_ms.or_else(|| since_boot(self.start_uptime));
        rec.end_ms = self.end_ms.or_else(|| since_boot(self.end_uptime));
    }
}

#[inline]
fn v4(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

#[inline]
fn v6(v: &[u8]) -> Option<Ipv6Addr> {
    <[u8; 16]>::try_from(v).ok().map(Ipv6Addr::from)
}

fn secs_to_ms(s: u64) -> Option<i64> {
    i64::try_from(s).ok()?.checked_mul(1000)
}

/// The length of a variable-length field (RFC 7011 section 7).
#[inline]
fn varlen(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    match r.u8()? {
        255 => Ok(usize::from(r.u16()?)),
        n => Ok(usize::from(n)),
    }
}

fn decode_one(tpl: &Template, r: &mut Reader<'_>) -> Result<Acc, DecodeError> {
    let mut acc = Acc::default();
    for op in &tpl.ops {
        let len = if op.len == VARLEN {
            varlen(r)?
        } else {
            usize::from(op.len)
        };
        let v = r.bytes(len)?;
        acc.apply(op.act, v);
    }
    Ok(acc)
}

/// What one data set gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SetResult {
    pub flows: u32,
    pub options: u32,
}

impl SetResult {
    pub fn records(&self) -> u32 {
        self.flows + self.options
    }
}

/// Decodes the records of one data set. Records before an error are kept
/// (in `out` or the sampler table) and counted in `done`; trailing bytes
/// shorter than the smallest record are padding. `budget` is the number of
/// records the datagram may still produce.
pub(crate) fn decode_set(
    tpl: &Template,
    data: &[u8],
    ctx: &SetContext,
    samplers: &mut SamplerTable,
    out: &mut Output,
    budget: &mut usize,
    done: &mut SetResult,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(data, "data record");
    let options = tpl.is_options();
    while r.remaining() >= tpl.min_len {
        if *budget == 0 {
            return Err(DecodeError::Limit {
                what: "records per datagram",
                limit: ctx.max_records,
            });
        }
        let acc = decode_one(tpl, &mut r)?;
        *budget -= 1;
        if options {
            if let Some(rate) = acc.sampling.rate() {
                if !samplers.learn(ctx.domain, acc.sampling.sampler_id, rate, ctx.now_ms) {
                    return Err(DecodeError::Limit {
                        what: "sampler table entries",
                        limit: samplers.len(),
                    });
                }
            }
            done.options += 1;
        } else {
            let (rate, source) =
                samplers.resolve(&ctx.domain, acc.sampling.rate(), acc.sampling.sampler_id);
            let mut rec =
                FlowRecord::new(ctx.domain.exporter, ctx.domain.version, ctx.domain.domain);
            acc.into_record(&mut rec, ctx.boot_ms);
            rec.sampling_rate = rate;
            rec.sampling_source = source;
            out.flows.push(rec);
            done.flows += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{SamplingSource, Version};
    use crate::template::{FieldSpec, TemplateKind};

    fn ctx() -> SetContext {
        SetContext {
            domain: DomainKey {
                exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
                version: Version::Ipfix,
                domain: 0,
            },
            boot_ms: Some(1_000_000),
            now_ms: 5,
            max_records: 10,
        }
    }

    fn f(id: u16, length: u16) -> FieldSpec {
        FieldSpec {
            id,
            length,
            enterprise: 0,
        }
    }

    /// Decodes `data` against `tpl` with a fresh sampler table.
    fn run(
        tpl: &Template,
        data: &[u8],
    ) -> (Result<(), DecodeError>, Output, SamplerTable, SetResult) {
        let mut out = Output::default();
        let mut samplers = SamplerTable::new(4, &[]);
        let mut budget = 10;
        let mut done = SetResult::default();
        let res = decode_set(
            tpl,
            data,
            &ctx(),
            &mut samplers,
            &mut out,
            &mut budget,
            &mut done,
        );
        (res, out, samplers, done)
    }

    #[test]
    fn family_choice_and_reduced_size() {
        let tpl = Template::compile(
            Version::Ipfix,
            256,
            TemplateKind::Data,
            vec![f(8, 4), f(27, 16), f(2, 2), f(1, 3), f(22, 4)],
            0,
        )
        .unwrap();
        let mut data = vec![0, 0, 0, 0];
        data.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        data.extend_from_slice(&[0, 7, 0, 1, 0, 0, 0, 0, 10]);
        data.extend_from_slice(&[0xff]); // padding
        let (res, out, _, done) = run(&tpl, &data);
        res.unwrap();
        assert_eq!(done.flows, 1);
        let r = &out.flows[0];
        assert_eq!(
            r.src_addr,
            Some("2001:db8::1".parse().unwrap()),
            "IPv4 all-zero: IPv6 chosen"
        );
        assert_eq!(r.dst_addr, None);
        assert_eq!(
            (r.packets, r.bytes),
            (7, 256),
            "3-byte reduced-size octet count"
        );
        assert_eq!(r.start_ms, Some(1_000_010));
        assert_eq!(r.sampling_source, SamplingSource::None);
    }

    #[test]
    fn varlen_fields_and_options_learn_rates() {
        let tpl = Template::compile(
            Version::Ipfix,
            300,
            TemplateKind::Options { scope_fields: 1 },
            vec![f(302, 4), f(335, VARLEN), f(309, 4), f(310, 4)],
            0,
        )
        .unwrap();
        let mut data = vec![0, 0, 0, 3, 3, b'a', b'b', b'c', 0, 0, 0, 1, 0, 0, 1, 0];
        data.extend_from_slice(&[0, 0, 0, 4, 255, 0, 2, b'x', b'y', 0, 0, 0, 2, 0, 0, 0, 20]);
        let (res, out, samplers, done) = run(&tpl, &data);
        res.unwrap();
        assert_eq!(done.options, 2);
        assert!(out.flows.is_empty());
        assert_eq!(
            samplers.resolve(&ctx().domain, None, Some(3)),
            (256, SamplingSource::Options)
        );
        assert_eq!(
            samplers.resolve(&ctx().domain, None, Some(4)),
            (10, SamplingSource::Options)
        );
    }

    #[test]
    fn truncated_record_keeps_earlier_ones() {
        let tpl = Template::compile(
            Version::Ipfix,
            256,
            TemplateKind::Data,
            vec![f(82, VARLEN), f(2, 4)],
            0,
        )
        .unwrap();
        let data = [1, b'a', 0, 0, 0, 1, 200, b'b', 0, 0, 0];
        let (e, out, _, _) = run(&tpl, &data);
        assert!(matches!(e, Err(DecodeError::Truncated { .. })));
        assert_eq!(out.flows.len(), 1);
        assert_eq!(out.flows[0].packets, 1);
    }
}
