//! sFlow version 5 (sflow.org, "sFlow Version 5", 2004): datagrams of flow
//! samples (packet samples) and counter samples, XDR-encoded (big-endian,
//! 4-byte aligned).
//!
//! ```text
//! datagram:  version(4)=5 agent_address_type(4) agent_address(4|16)
//!            sub_agent_id(4) sequence(4) uptime(4) num_samples(4) samples
//! sample:    data_format(4)=enterprise<<12|format length(4) body
//! flow sample (1):          seq source_id rate pool drops input output
//!                           num_records records
//! expanded flow sample (3): seq source_id_type source_id_index rate pool
//!                           drops input_format input output_format output
//!                           num_records records
//! counter sample (2) / expanded (4): seq source_id[_type, _index]
//!                           num_records records
//! flow record:    data_format(4) length(4) body
//!   raw packet header (1): protocol frame_length stripped header_length
//!                          header (padded to 4)
//!   sampled IPv4 (3):      length protocol src dst src_port dst_port
//!                          tcp_flags tos
//!   sampled IPv6 (4):      length protocol src(16) dst(16) src_port
//!                          dst_port tcp_flags priority
//! counter record: generic interface counters (1), 88 bytes
//! ```
//! One [`FlowRecord`] per flow sample: from its raw packet header, decoded
//! by `levee_packet::decode` into the same [`levee_packet::PacketMeta`] the
//! packet sampler produces (kept in [`FlowRecord::packet`]), else from its
//! sampled IPv4/IPv6 record. `packets` is 1, `bytes` the sampled frame's
//! `frame_length` (the packet's length on the wire) or the sampled IP
//! record's `length`. The exporter is the agent address; the domain the
//! sub-agent id. Samples of other enterprises, and flow or counter records
//! of other formats, are skipped by length.

use crate::decoder::{FlowDecoder, Outcome};
use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::{CounterRecord, FlowRecord, Output, Version};
use crate::template::DomainKey;
use levee_packet::{decode as decode_frame, LinkType, PacketMeta, Transport};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Header protocols of raw packet header records (sFlow v5 `header_protocol`).
const HEADER_ETHERNET: u32 = 1;
const HEADER_IPV4: u32 = 11;
const HEADER_IPV6: u32 = 12;

pub(crate) fn decode(d: &mut FlowDecoder, data: &[u8], out: &mut Output, o: &mut Outcome) {
    o.version = Some(Version::Sflow5);
    if let Err(e) = decode_inner(d, data, out, o) {
        o.errors.push(e);
    }
}

fn address(r: &mut Reader<'_>) -> Result<IpAddr, DecodeError> {
    match r.u32()? {
        1 => Ok(IpAddr::V4(Ipv4Addr::from(r.array4()?))),
        2 => Ok(IpAddr::V6(Ipv6Addr::from(r.array16()?))),
        t => Err(DecodeError::malformed(
            "sFlow datagram",
            format!("agent address type {t} (1 = IPv4, 2 = IPv6)"),
        )),
    }
}

fn decode_inner(
    d: &mut FlowDecoder,
    data: &[u8],
    out: &mut Output,
    o: &mut Outcome,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(data, "sFlow datagram header");
    r.skip(4)?;
    let agent = address(&mut r)?;
    let sub_agent = r.u32()?;
    let seq = r.u32()?;
    let _uptime = r.u32()?;
    let n = r.u32()? as usize;
    o.agent = Some(agent);
    o.domain = sub_agent;
    let domain = DomainKey {
        exporter: agent,
        version: Version::Sflow5,
        domain: sub_agent,
    };
    o.sequence = d.sequences.check(domain, seq, Some(1));
    let limits = &d.cfg.limits;
    let mut budget = limits.max_records_per_datagram;
    let mut r = Reader::new(r.rest(), "sFlow sample");
    for i in 0..n {
        if i >= limits.max_sflow_samples {
            return Err(DecodeError::Limit {
                what: "samples per sFlow datagram",
                limit: limits.max_sflow_samples,
            });
        }
        let format = r.u32()?;
        let len = r.u32()? as usize;
        let body = r.bytes(len)?;
        if format >> 12 != 0 {
            continue; // another enterprise's sample
        }
        let res = match format & 0xfff {
            1 | 3 => {
                if budget == 0 {
                    return Err(DecodeError::Limit {
                        what: "records per datagram",
                        limit: limits.max_records_per_datagram,
                    });
                }
                budget -= 1;
                flow_sample(d, &domain, body, format & 0xfff == 3, out, o)
            }
            2 | 4 => counter_sample(
                agent,
                sub_agent,
                body,
                format & 0xfff == 4,
                limits.max_sflow_records,
                out,
                o,
            ),
            _ => Ok(()),
        };
        if let Err(e) = res {
            o.errors.push(e);
        }
    }
    if !r.is_empty() {
        return Err(DecodeError::malformed(
            "sFlow datagram",
            format!("{} bytes after the {n} samples announced", r.remaining()),
        ));
    }
    Ok(())
}

/// What the flow records of one sample said.
#[derive(Default)]
struct SampleParts {
    meta: Option<PacketMeta>,
    frame_length: Option<u32>,
    ip: Option<SampledIp>,
    header_seen: bool,
}

struct SampledIp {
    length: u32,
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    tos: u8,
}

fn flow_sample(
    d: &FlowDecoder,
    domain: &DomainKey,
    body: &[u8],
    expanded: bool,
    out: &mut Output,
    o: &mut Outcome,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(body, "sFlow flow sample");
    let _seq = r.u32()?;
    if expanded {
        r.skip(8)?;
    } else {
        r.skip(4)?;
    }
    let rate = r.u32()?;
    let _pool = r.u32()?;
    let _drops = r.u32()?;
    let (input, output) = if expanded {
        let _in_format = r.u32()?;
        let input = r.u32()?;
        let _out_format = r.u32()?;
        (input, r.u32()?)
    } else {
        // Compact form: the top 2 bits are the format (0 = ifIndex).
        (r.u32()? & 0x3fff_ffff, r.u32()? & 0x3fff_ffff)
    };
    let n = r.u32()? as usize;
    let max = d.cfg.limits.max_sflow_records;
    let mut parts = SampleParts::default();
    for i in 0..n {
        if i >= max {
            return Err(DecodeError::Limit {
                what: "records per sFlow sample",
                limit: max,
            });
        }
        let format = r.u32()?;
        let len = r.u32()? as usize;
        let rec = r.bytes(len)?;
        if format >> 12 != 0 {
            continue;
        }
        match format & 0xfff {
            1 => raw_header(rec, &mut parts)?,
            3 => parts.ip = Some(sampled_ip(rec, false)?),
            4 => parts.ip = Some(sampled_ip(rec, true)?),
            _ => {}
        }
    }
    if !parts.header_seen && parts.ip.is_none() {
        return Ok(()); // nothing about the packet itself
    }
    let in_packet = (rate > 0).then_some(rate);
    let (sampling_rate, sampling_source) = d.samplers.resolve(domain, in_packet, None);
    let mut rec = FlowRecord::new(domain.exporter, Version::Sflow5, domain.domain);
    rec.packets = 1;
    rec.sampling_rate = sampling_rate;
    rec.sampling_source = sampling_source;
    rec.input_if = Some(input);
    rec.output_if = Some(output);
    if let Some(ip) = &parts.ip {
        rec.src_addr = Some(ip.src);
        rec.dst_addr = Some(ip.dst);
        rec.protocol = Some(ip.protocol);
        rec.bytes = u64::from(ip.length);
        rec.tos = Some(ip.tos);
        if matches!(ip.protocol, 6 | 17 | 132) {
            rec.src_port = Some(ip.src_port);
            rec.dst_port = Some(ip.dst_port);
        }
        if ip.protocol == 6 {
            rec.tcp_flags = Some(ip.tcp_flags);
        }
    }
    if let Some(m) = parts.meta {
        rec.src_addr = Some(m.src);
        rec.dst_addr = Some(m.dst);
        rec.protocol = Some(m.protocol);
        rec.src_port = m.src_port();
        rec.dst_port = m.dst_port();
        rec.tcp_flags = m.tcp_flags().map(|f| f.0);
        if let Transport::Icmp { .. } = m.transport {
            rec.src_port = None;
            rec.dst_port = None;
        }
        rec.packet = Some(m);
    }
    if let Some(fl) = parts.frame_length {
        rec.bytes = u64::from(fl);
    }
    out.flows.push(rec);
    o.flows += 1;
    Ok(())
}

fn raw_header(rec: &[u8], parts: &mut SampleParts) -> Result<(), DecodeError> {
    let mut r = Reader::new(rec, "sFlow raw packet header");
    let protocol = r.u32()?;
    let frame_length = r.u32()?;
    let _stripped = r.u32()?;
    let hlen = r.u32()? as usize;
    let header = r.bytes(hlen)?;
    parts.header_seen = true;
    parts.frame_length = Some(frame_length);
    let link = match protocol {
        HEADER_ETHERNET => LinkType::Ethernet,
        HEADER_IPV4 => LinkType::Ipv4,
        HEADER_IPV6 => LinkType::Ipv6,
        _ => return Ok(()), // e.g. 802.11, PPP: counted, not decoded
    };
    // A sampled frame that is not IP (ARP, LLDP) or is cut short is a
    // sample without addresses, not a broken datagram.
    parts.meta = decode_frame(link, header).ok();
    Ok(())
}

fn sampled_ip(rec: &[u8], v6: bool) -> Result<SampledIp, DecodeError> {
    let mut r = Reader::new(
        rec,
        if v6 {
            "sFlow sampled IPv6 record"
        } else {
            "sFlow sampled IPv4 record"
        },
    );
    let length = r.u32()?;
    let protocol = r.u32()? as u8;
    let (src, dst) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::from(r.array16()?)),
            IpAddr::V6(Ipv6Addr::from(r.array16()?)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(r.array4()?)),
            IpAddr::V4(Ipv4Addr::from(r.array4()?)),
        )
    };
    Ok(SampledIp {
        length,
        protocol,
        src,
        dst,
        src_port: r.u32()? as u16,
        dst_port: r.u32()? as u16,
        tcp_flags: r.u32()? as u8,
        tos: r.u32()? as u8,
    })
}

fn counter_sample(
    agent: IpAddr,
    sub_agent: u32,
    body: &[u8],
    expanded: bool,
    max_records: usize,
    out: &mut Output,
    o: &mut Outcome,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(body, "sFlow counter sample");
    let _seq = r.u32()?;
    r.skip(if expanded { 8 } else { 4 })?;
    let n = r.u32()? as usize;
    for i in 0..n {
        if i >= max_records {
            return Err(DecodeError::Limit {
                what: "records per sFlow sample",
                limit: max_records,
            });
        }
        let format = r.u32()?;
        let len = r.u32()? as usize;
        let rec = r.bytes(len)?;
        if format != 1 {
            continue; // other counter structures (ethernet, CPU, ...)
        }
        let mut c = Reader::new(rec, "sFlow generic interface counters");
        let counters = CounterRecord {
            exporter: Some(agent),
            domain: sub_agent,
            if_index: c.u32()?,
            if_type: c.u32()?,
            if_speed: c.u64()?,
            in_octets: {
                c.skip(8)?; // ifDirection, ifStatus
                c.u64()?
            },
            in_ucast_packets: c.u32()?,
            in_multicast_packets: c.u32()?,
            in_broadcast_packets: c.u32()?,
            in_discards: c.u32()?,
            in_errors: c.u32()?,
            out_octets: {
                c.skip(4)?; // ifInUnknownProtos
                c.u64()?
            },
            out_ucast_packets: c.u32()?,
            out_multicast_packets: c.u32()?,
            out_broadcast_packets: c.u32()?,
            out_discards: c.u32()?,
            out_errors: c.u32()?,
        };
        out.counters.push(counters);
        o.counters += 1;
    }
    Ok(())
}
