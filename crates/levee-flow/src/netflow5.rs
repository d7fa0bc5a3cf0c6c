//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records (Cisco,
//! "NetFlow Export Datagram Format", version 5).
//!
//! ```text
//! header: version(2) count(2) sys_uptime(4) unix_secs(4) unix_nsecs(4)
//!         flow_sequence(4) engine_type(1) engine_id(1) sampling_interval(2)
//! record: srcaddr(4) dstaddr(4) nexthop(4) input(2) output(2) dPkts(4)
//!         dOctets(4) first(4) last(4) srcport(2) dstport(2) pad1(1)
//!         tcp_flags(1) prot(1) tos(1) src_as(2) dst_as(2) src_mask(1)
//!         dst_mask(1) pad2(2)
//! ```
//! The sampling interval's top two bits are the mode, the other 14 the
//! interval (0 = unsampled). `flow_sequence` counts flows, so the next
//! datagram's is this one's plus `count`. The domain is
//! `engine_type << 8 | engine_id`.

use crate::decoder::{FlowDecoder, Outcome};
use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::{FlowRecord, Output, Version};
use crate::template::DomainKey;
use std::net::{IpAddr, Ipv4Addr};

pub const HEADER_LEN: usize = 24;
pub const RECORD_LEN: usize = 48;
/// The format's own maximum records per datagram.
pub const MAX_COUNT: usize = 30;

pub(crate) fn decode(
    d: &mut FlowDecoder,
    exporter: IpAddr,
    data: &[u8],
    out: &mut Output,
    o: &mut Outcome,
) {
    o.version = Some(Version::Netflow5);
    if let Err(e) = decode_inner(d, exporter, data, out, o) {
        o.errors.push(e);
    }
}

fn decode_inner(
    d: &mut FlowDecoder,
    exporter: IpAddr,
    data: &[u8],
    out: &mut Output,
    o: &mut Outcome,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(data, "NetFlow v5 header");
    r.skip(2)?;
    let count = usize::from(r.u16()?);
    let uptime = r.u32()?;
    let secs = r.u32()?;
    let nsecs = r.u32()?;
    let seq = r.u32()?;
    let engine_type = r.u8()?;
    let engine_id = r.u8()?;
    let sampling = r.u16()?;
    let domain = (u32::from(engine_type) << 8) | u32::from(engine_id);
    o.domain = domain;
    if count == 0 || count > MAX_COUNT {
        return Err(DecodeError::malformed(
            "NetFlow v5 header",
            format!("record count {count} (1 to {MAX_COUNT} allowed)"),
        ));
    }
    let key = DomainKey {
        exporter,
        version: Version::Netflow5,
        domain,
    };
    o.sequence = d.sequences.check(key, seq, Some(count as u32));
    let interval = sampling & 0x3fff;
    let in_packet = (interval > 0).then_some(u32::from(interval));
    let (rate, source) = d.samplers.resolve(&key, in_packet, None);
    let boot_ms = i64::from(secs) * 1000 + i64::from(nsecs / 1_000_000) - i64::from(uptime);
    let mut r = Reader::new(r.rest(), "NetFlow v5 record");
    for _ in 0..count {
        let b = r.bytes(RECORD_LEN)?;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let mut rec = FlowRecord::new(exporter, Version::Netflow5, domain);
        rec.src_addr = Some(IpAddr::V4(Ipv4Addr::from(u32_at(0))));
        rec.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(u32_at(4))));
        rec.input_if = Some(u32::from(u16_at(12)));
        rec.output_if = Some(u32::from(u16_at(14)));
        rec.packets = u64::from(u32_at(16));
        rec.bytes = u64::from(u32_at(20));
        rec.start_ms = Some(boot_ms + i64::from(u32_at(24)));
        rec.end_ms = Some(boot_ms + i64::from(u32_at(28)));
        rec.src_port = Some(u16_at(32));
        rec.dst_port = Some(u16_at(34));
        rec.tcp_flags = Some(b[37]);
        rec.protocol = Some(b[38]);
        rec.tos = Some(b[39]);
        rec.sampling_rate = rate;
        rec.sampling_source = source;
        out.flows.push(rec);
        o.flows += 1;
    }
    if !r.is_empty() {
        return Err(DecodeError::malformed(
            "NetFlow v5 datagram",
            format!(
                "{} bytes after the {count} records announced",
                r.remaining()
            ),
        ));
    }
    Ok(())
}
