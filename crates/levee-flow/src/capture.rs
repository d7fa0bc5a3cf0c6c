//! Flow export datagrams out of a packet capture: every UDP datagram of a
//! pcap/pcapng file (any port), with its source address and capture time,
//! for `levee flow decode`, the differential tests and the benchmarks.
//!
//! Frames are read by `levee_packet::pcap` and sliced down to the UDP
//! payload by `etherparse` (Ethernet with VLAN tags, Linux cooked, raw IP).
//! Frames that are not UDP over IP (or are IP fragments, whose payload is
//! not a whole datagram) are counted, not returned.

use crate::error::CaptureError;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use levee_packet::pcap::read_frames;
use std::io::Read;
use std::net::IpAddr;

/// One UDP datagram of the capture.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Frame number in the capture, from 1 (as Wireshark counts).
    pub frame: u64,
    pub ts_ns: u64,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// What the read saw besides datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    pub frames: u64,
    pub datagrams: u64,
    /// Frames that are not (whole) UDP datagrams.
    pub skipped: u64,
    /// The file ended in the middle of a frame.
    pub truncated: bool,
}

/// The UDP datagram in one frame of `linktype`, if it holds one.
pub fn udp_datagram(linktype: u32, data: &[u8]) -> Option<(IpAddr, u16, u16, &[u8])> {
    let sliced = match linktype {
        1 => SlicedPacket::from_ethernet(data),
        113 => SlicedPacket::from_linux_sll(data),
        101 | 12 | 14 | 228 | 229 => SlicedPacket::from_ip(data),
        0 | 108 => SlicedPacket::from_ip(data.get(4..)?),
        _ => return None,
    }
    .ok()?;
    let src = match sliced.net.as_ref()? {
        NetSlice::Ipv4(v4) => {
            if v4.header().is_fragmenting_payload() {
                return None;
            }
            IpAddr::V4(v4.header().source_addr())
        }
        NetSlice::Ipv6(v6) => {
            if v6.is_payload_fragmented() {
                return None;
            }
            IpAddr::V6(v6.header().source_addr())
        }
        NetSlice::Arp(_) => return None,
    };
    match sliced.transport? {
        TransportSlice::Udp(u) => Some((src, u.source_port(), u.destination_port(), u.payload())),
        _ => None,
    }
}

/// Calls `f` with every UDP datagram of a pcap or pcapng stream.
pub fn read_datagrams<R: Read>(
    reader: R,
    mut f: impl FnMut(Datagram<'_>),
) -> Result<CaptureSummary, CaptureError> {
    let mut s = CaptureSummary::default();
    let sum = read_frames(reader, |frame| {
        s.frames += 1;
        match udp_datagram(frame.linktype, frame.data) {
            Some((src, src_port, dst_port, payload)) => {
                s.datagrams += 1;
                f(Datagram {
                    frame: s.frames,
                    ts_ns: frame.ts_ns,
                    src,
                    src_port,
                    dst_port,
                    payload,
                })
            }
            None => s.skipped += 1,
        }
    })?;
    s.truncated = sum.truncated;
    Ok(s)
}
