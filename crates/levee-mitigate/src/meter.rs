//! [`SockDiagLegitMeter`]: the collateral guard's measure of legitimate
//! traffic — TCP segments received on ESTABLISHED connections, per local
//! address — from the kernel's per-connection `tcp_info.tcpi_segs_in`,
//! dumped over NETLINK_SOCK_DIAG (the same plumbing as the agent's
//! connection counter, in `levee_sources::sockdiag`).
//!
//! Flood packets never belong to an established connection (spoofed SYNs
//! never complete a handshake, stray ACKs and RSTs match no socket), so
//! this counts only real users' traffic, and a rule that cuts them off
//! makes it fall.

use crate::guard::LegitMeter;
use levee_sources::sockdiag::{dump, dump_request, open_socket};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, INET_DIAG_INFO};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetResponseBuffer, StateFlags};
use netlink_sys::Socket;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Offset of `tcpi_segs_in` in `struct tcp_info` (Linux 4.2+).
const SEGS_IN_OFFSET: usize = 140;

/// One established connection: local address, kernel cookie, segments in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSegs {
    pub local: IpAddr,
    pub cookie: u64,
    pub segs_in: u32,
}

/// Reads one `inet_diag_msg` with its attributes; `None` without a
/// `tcp_info` long enough to hold `tcpi_segs_in`.
pub fn parse_response(r: &InetResponseBuffer<&[u8]>) -> Option<ConnSegs> {
    let id = r.socket_id();
    let local = match r.family() {
        AF_INET => IpAddr::V4(Ipv4Addr::new(id[4], id[5], id[6], id[7])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&id[4..20]).ok()?)),
        _ => return None,
    };
    let cookie = u64::from_ne_bytes(id[40..48].try_into().ok()?);
    // Attributes: (u16 len, u16 type, value), each padded to 4 bytes.
    let mut attrs = r.payload();
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == INET_DIAG_INFO {
            let info = &attrs[4..len];
            let b = info.get(SEGS_IN_OFFSET..SEGS_IN_OFFSET + 4)?;
            let segs_in = u32::from_ne_bytes(b.try_into().ok()?);
            return Some(ConnSegs {
                local,
                cookie,
                segs_in,
            });
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    None
}

/// Sums per-connection counters into per-address totals that only grow:
/// each connection contributes what it received since the last sample
/// (everything, when it is new).
#[derive(Debug, Default)]
pub struct SegsAccumulator {
    last: HashMap<u64, u32>,
    totals: BTreeMap<IpAddr, u64>,
}

impl SegsAccumulator {
    pub fn add_sample(&mut self, conns: &[ConnSegs]) -> &BTreeMap<IpAddr, u64> {
        let mut seen = HashMap::with_capacity(conns.len());
        for c in conns {
            let delta = match self.last.get(&c.cookie) {
                Some(prev) => c.segs_in.wrapping_sub(*prev),
                None => c.segs_in,
            };
            *self.totals.entry(c.local).or_default() += u64::from(delta);
            seen.insert(c.cookie, c.segs_in);
        }
        self.last = seen;
        &self.totals
    }
}

/// The production [`LegitMeter`].
pub struct SockDiagLegitMeter {
    socket: Option<Socket>,
    buf: Vec<u8>,
    seq: u32,
    acc: SegsAccumulator,
}

impl SockDiagLegitMeter {
    pub fn new() -> Result<Self, String> {
        Ok(SockDiagLegitMeter {
            socket: Some(open_socket().map_err(|e| e.to_string())?),
            buf: vec![0; 64 * 1024],
            seq: 0,
            acc: SegsAccumulator::default(),
        })
    }

    fn conns(&mut self, socket: &Socket) -> Result<Vec<ConnSegs>, String> {
        let mut out = Vec::new();
        let states = StateFlags::ESTABLISHED;
        for family in [AF_INET, AF_INET6] {
            let mut req = dump_request(family, ExtensionFlags::INFO, states);
            self.seq = self.seq.wrapping_add(1);
            let r = dump(socket, &mut req, &mut self.buf, self.seq, &mut |r| {
                if let Some(c) = parse_response(&r) {
                    out.push(c);
                }
            });
            match r {
                Ok(()) => {}
                // No IPv6 in this kernel: nothing to count there.
                Err(_) if family == AF_INET6 => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }
}

impl LegitMeter for SockDiagLegitMeter {
    fn sample(&mut self) -> Result<BTreeMap<IpAddr, u64>, String> {
        let socket = match self.socket.take() {
            Some(s) => s,
            None => open_socket().map_err(|e| e.to_string())?,
        };
        let conns = self.conns(&socket)?;
        // A failed dump drops the socket (its dump state may be busy).
        self.socket = Some(socket);
        Ok(self.acc.add_sample(&conns).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn response(family: u8, local: &[u8], cookie: u64, segs_in: u32) -> Vec<u8> {
        let mut b = vec![0u8; 72];
        b[0] = family;
        b[1] = 1; // ESTABLISHED
        b[8..8 + local.len()].copy_from_slice(local);
        b[44..52].copy_from_slice(&cookie.to_ne_bytes());
        let mut info = vec![0u8; 232];
        info[SEGS_IN_OFFSET..SEGS_IN_OFFSET + 4].copy_from_slice(&segs_in.to_ne_bytes());
        // An unrelated attribute first, then INET_DIAG_INFO.
        b.extend_from_slice(&8u16.to_ne_bytes());
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(&((info.len() + 4) as u16).to_ne_bytes());
        b.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        b.extend_from_slice(&info);
        b
    }

    #[test]
    fn parses_and_accumulates() {
        let a = response(AF_INET, &[10, 0, 0, 2], 7, 100);
        let c = parse_response(&InetResponseBuffer::new_checked(&a[..]).unwrap()).unwrap();
        assert_eq!(
            c,
            ConnSegs {
                local: "10.0.0.2".parse().unwrap(),
                cookie: 7,
                segs_in: 100
            }
        );
        let six = response(
            AF_INET6,
            &"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets(),
            8,
            5,
        );
        let c6 = parse_response(&InetResponseBuffer::new_checked(&six[..]).unwrap()).unwrap();
        assert_eq!(c6.local, "2001:db8::2".parse::<IpAddr>().unwrap());
        let mut no_info = a.clone();
        no_info.truncate(80);
        assert_eq!(
            parse_response(&InetResponseBuffer::new_checked(&no_info[..]).unwrap()),
            None
        );

        let mut acc = SegsAccumulator::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(acc.add_sample(&[c])[&ip], 100);
        let later = ConnSegs { segs_in: 150, ..c };
        let other = ConnSegs {
            cookie: 9,
            segs_in: 10,
            ..c
        };
        assert_eq!(acc.add_sample(&[later, other])[&ip], 160);
        // The first connection closed: the total never goes down.
        assert_eq!(
            acc.add_sample(&[ConnSegs {
                segs_in: 12,
                ..other
            }])[&ip],
            162
        );
    }

    /// Reads the real kernel: a loopback connection (nothing is changed).
    #[test]
    fn counts_a_real_established_connection() {
        let mut m = match SockDiagLegitMeter::new() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("SKIPPING: sock_diag unavailable here: {e}");
                return;
            }
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let before = m.sample().unwrap().get(&lo).copied().unwrap_or(0);
        for _ in 0..50 {
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(b"y").unwrap();
            c.read_exact(&mut b).unwrap();
        }
        let after = m.sample().unwrap()[&lo];
        assert!(after >= before + 100, "{before} -> {after}");
    }
}
