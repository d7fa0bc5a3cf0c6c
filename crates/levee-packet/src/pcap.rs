//! Reading pcap and pcapng captures (via the `pcap-file` crate) into frames
//! with nanosecond timestamps and their link type.
//!
//! The format is detected from the magic number. Frames are handed to a
//! callback rather than returned by an iterator because they borrow the
//! reader's buffer: no copy, no allocation per frame. Two details are handled
//! here rather than by `pcap-file`: classic pcap records are taken raw, so a
//! record longer than the file's snap length (written by some tools) is still
//! read; and pcapng timestamps are scaled by the interface's `if_tsresol`
//! (microseconds by default), which `pcap-file` leaves to the caller. A file
//! cut off mid-record (a capture killed while writing) yields every complete
//! record and sets [`ReadSummary::truncated`].

use crate::decode::{decode, LinkType};
use crate::error::{DecodeError, PcapError};
use crate::meta::PacketMeta;
use pcap_file::pcap::{PcapParser, PcapReader, RawPcapPacket};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgReader};
use pcap_file::TsResolution;
use std::io::{Cursor, Read};

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The pcap LINKTYPE of the frame's interface.
    pub linktype: u32,
    /// Captured bytes (may be shorter than `orig_len`).
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

impl Frame<'_> {
    /// Decodes the frame into a [`PacketMeta`].
    pub fn decode(&self) -> Result<PacketMeta, DecodeError> {
        decode(LinkType::from_linktype(self.linktype)?, self.data)
    }
}

/// What a read saw besides the frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub frames: u64,
    /// The file ended in the middle of a record.
    pub truncated: bool,
    pub format: CaptureFormat,
}

/// Which container the capture used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    #[default]
    Pcap,
    Pcapng,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn format_of(magic: [u8; 4]) -> Result<CaptureFormat, PcapError> {
    match u32::from_be_bytes(magic) {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Ok(CaptureFormat::Pcap),
        _ if magic == PCAPNG_MAGIC => Ok(CaptureFormat::Pcapng),
        _ => Err(PcapError::UnknownFormat(magic)),
    }
}

fn corrupt(frames: u64, e: impl std::fmt::Display) -> PcapError {
    PcapError::Corrupt {
        packets: frames,
        detail: e.to_string(),
    }
}

/// A record cut short at the end of the input: stop quietly, say so.
fn is_truncation(e: &pcap_file::PcapError) -> bool {
    match e {
        pcap_file::PcapError::IncompleteBuffer => true,
        pcap_file::PcapError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// Reads every frame of a pcap or pcapng stream.
pub fn read_frames<R: Read>(
    mut reader: R,
    mut f: impl FnMut(Frame<'_>),
) -> Result<ReadSummary, PcapError> {
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => PcapError::UnknownFormat(magic),
        _ => PcapError::Io(e),
    })?;
    let format = format_of(magic)?;
    let stream = Cursor::new(magic).chain(reader);
    let mut sum = ReadSummary {
        format,
        ..ReadSummary::default()
    };
    match format {
        CaptureFormat::Pcap => {
            let mut r = PcapReader::new(stream).map_err(|e| corrupt(0, e))?;
            let header = r.header();
            let link = u32::from(header.datalink);
            while let Some(rec) = r.next_raw_packet() {
                match rec {
                    Ok(raw) => {
                        f(pcap_frame(&raw, link, header.ts_resolution));
                        sum.frames += 1;
                    }
                    Err(e) if is_truncation(&e) => {
                        sum.truncated = true;
                        break;
                    }
                    Err(e) => return Err(corrupt(sum.frames, e)),
                }
            }
        }
        CaptureFormat::Pcapng => {
            let mut r = PcapNgReader::new(stream).map_err(|e| corrupt(0, e))?;
            let mut ifaces = Interfaces::default();
            while let Some(block) = r.next_block() {
                match block {
                    Ok(b) => ifaces.handle(b, &mut sum, &mut f),
                    Err(e) if is_truncation(&e) => {
                        sum.truncated = true;
                        break;
                    }
                    Err(e) => return Err(corrupt(sum.frames, e)),
                }
            }
        }
    }
    Ok(sum)
}

/// Reads every frame of an in-memory pcap or pcapng capture, without copying.
pub fn read_frames_from_bytes(
    bytes: &[u8],
    mut f: impl FnMut(Frame<'_>),
) -> Result<ReadSummary, PcapError> {
    let mut magic = [0u8; 4];
    match bytes.get(..4) {
        Some(m) => magic.copy_from_slice(m),
        None => return Err(PcapError::UnknownFormat(magic)),
    }
    let format = format_of(magic)?;
    let mut sum = ReadSummary {
        format,
        ..ReadSummary::default()
    };
    match format {
        CaptureFormat::Pcap => {
            let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| corrupt(0, e))?;
            let header = parser.header();
            let link = u32::from(header.datalink);
            while !rest.is_empty() {
                match parser.next_raw_packet(rest) {
                    Ok((r, raw)) => {
                        f(pcap_frame(&raw, link, header.ts_resolution));
                        sum.frames += 1;
                        rest = r;
                    }
                    Err(e) if is_truncation(&e) => {
                        sum.truncated = true;
                        break;
                    }
                    Err(e) => return Err(corrupt(sum.frames, e)),
                }
            }
        }
        CaptureFormat::Pcapng => {
            let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| corrupt(0, e))?;
            let mut ifaces = Interfaces::default();
            while !rest.is_empty() {
                match parser.next_block(rest) {
                    Ok((r, b)) => {
                        ifaces.handle(b, &mut sum, &mut f);
                        rest = r;
                    }
                    Err(e) if is_truncation(&e) => {
                        sum.truncated = true;
                        break;
                    }
                    Err(e) => return Err(corrupt(sum.frames, e)),
                }
            }
        }
    }
    Ok(sum)
}

fn pcap_frame<'a>(raw: &'a RawPcapPacket<'_>, linktype: u32, res: TsResolution) -> Frame<'a> {
    let frac = u64::from(raw.ts_frac);
    let frac_ns = match res {
        TsResolution::MicroSecond => frac * 1_000,
        TsResolution::NanoSecond => frac,
    };
    Frame {
        ts_ns: u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns,
        linktype,
        data: &raw.data,
        orig_len: raw.orig_len,
    }
}

/// Link type and timestamp scale of each pcapng interface of the current
/// section, tracked here so frames can be handed out while the reader still
/// borrows its buffer.
#[derive(Default)]
struct Interfaces {
    list: Vec<Iface>,
}

#[derive(Clone, Copy)]
struct Iface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_s: u128,
    offset_s: u64,
}

impl Iface {
    fn new(idb: &InterfaceDescriptionBlock<'_>) -> Iface {
        let mut units_per_s = 1_000_000u128; // pcapng default: microseconds
        let mut offset_s = 0;
        for opt in &idb.options {
            match opt {
                InterfaceDescriptionOption::IfTsResol(r) => {
                    let exp = u32::from(r & 0x7f).min(63);
                    units_per_s = if r & 0x80 == 0 {
                        10u128.checked_pow(exp).unwrap_or(u128::MAX)
                    } else {
                        1u128 << exp
                    };
                }
                InterfaceDescriptionOption::IfTsOffset(o) => offset_s = *o,
                _ => {}
            }
        }
        Iface {
            linktype: u32::from(idb.linktype),
            units_per_s: units_per_s.max(1),
            offset_s,
        }
    }

    fn ts_ns(&self, raw: u64) -> u64 {
        let ns = u128::from(raw) * 1_000_000_000 / self.units_per_s;
        u64::try_from(ns)
            .unwrap_or(u64::MAX)
            .saturating_add(self.offset_s.saturating_mul(1_000_000_000))
    }
}

impl Interfaces {
    fn handle(&mut self, block: Block<'_>, sum: &mut ReadSummary, f: &mut impl FnMut(Frame<'_>)) {
        // Frames of an interface never described get link type u32::MAX,
        // which decodes to an "unsupported link type" error per frame.
        const UNKNOWN: Iface = Iface {
            linktype: u32::MAX,
            units_per_s: 1_000_000,
            offset_s: 0,
        };
        match block {
            Block::SectionHeader(_) => self.list.clear(),
            Block::InterfaceDescription(idb) => self.list.push(Iface::new(&idb)),
            Block::EnhancedPacket(epb) => {
                let iface = self
                    .list
                    .get(epb.interface_id as usize)
                    .copied()
                    .unwrap_or(UNKNOWN);
                // pcap-file stores the raw 64-bit timestamp as nanoseconds
                // without scaling; recover the raw units.
                let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                f(Frame {
                    ts_ns: iface.ts_ns(raw),
                    linktype: iface.linktype,
                    data: &epb.data,
                    orig_len: epb.original_len,
                });
                sum.frames += 1;
            }
            Block::SimplePacket(spb) => {
                let iface = self.list.first().copied().unwrap_or(UNKNOWN);
                f(Frame {
                    ts_ns: 0,
                    linktype: iface.linktype,
                    data: &spb.data,
                    orig_len: spb.original_len,
                });
                sum.frames += 1;
            }
            Block::Packet(pb) => {
                let iface = self
                    .list
                    .get(usize::from(pb.interface_id))
                    .copied()
                    .unwrap_or(UNKNOWN);
                f(Frame {
                    ts_ns: iface.ts_ns(pb.timestamp),
                    linktype: iface.linktype,
                    data: &pb.data,
                    orig_len: pb.original_len,
                });
                sum.frames += 1;
            }
            _ => {}
        }
    }
}

/// Decodes every frame of a capture into [`PacketMeta`] with its timestamp;
/// frames that don't decode are passed as errors.
pub fn read_packets<R: Read>(
    reader: R,
    mut f: impl FnMut(u64, Result<PacketMeta, DecodeError>),
) -> Result<ReadSummary, PcapError> {
    read_frames(reader, |fr| f(fr.ts_ns, fr.decode()))
}
