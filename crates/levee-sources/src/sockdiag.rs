//! [`SockDiagConnCounter`]: TCP connection counts by state from a
//! NETLINK_SOCK_DIAG `inet_diag` dump (IPv4 and IPv6, all states).
//!
//! It runs every tick (100 ms) on hosts that may hold tens of thousands of
//! sockets, so it keeps one netlink socket and one receive buffer for its whole
//! life, serialises its two requests once, and reads each socket's state byte
//! straight out of the receive buffer instead of decoding messages into owned
//! structures (which would allocate per socket).

use crate::conns::ConnCounter;
use crate::error::SourceError;
use levee_model::ConnCounts;
use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
    NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{
        AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, TCP_ESTABLISHED, TCP_SYN_RECV,
        TCP_TIME_WAIT,
    },
    inet::{ExtensionFlags, InetRequest, InetResponseBuffer, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// User-space buffer for one datagram. The kernel sizes dump datagrams from the
/// reader's buffer but caps them at 32 KiB, so 64 KiB never truncates.
const RECV_BUF_LEN: usize = 64 * 1024;
/// Socket receive buffer (SO_RCVBUF, capped by net.core.rmem_max): room for the
/// kernel to queue the next datagram while we count the current one.
const SOCKET_RCVBUF: usize = 1024 * 1024;
/// A dump normally completes in milliseconds; the timeout only stops a wedged
/// kernel reply from hanging the agent's sampling loop forever.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts TCP sockets (ESTABLISHED, SYN_RECV, TIME_WAIT and total) via sock_diag.
///
/// inet_diag dumps normally work unprivileged; if the kernel (or an LSM or
/// seccomp policy) refuses, [`SourceError::PermissionDenied`] is returned.
pub struct SockDiagConnCounter {
    /// `None` after a failed dump: a half-read dump leaves the kernel's dump
    /// state busy (new requests get EBUSY), so the next count opens a new socket.
    socket: Option<Socket>,
    buf: Vec<u8>,
    /// Serialised dump requests for AF_INET and AF_INET6; only the sequence
    /// number is patched per call.
    requests: [Vec<u8>; 2],
    seq: u32,
}

impl SockDiagConnCounter {
    /// Opens the netlink socket now, so a missing privilege is reported at
    /// startup rather than on the first tick.
    pub fn new() -> Result<Self, SourceError> {
        Ok(SockDiagConnCounter {
            socket: Some(open_socket()?),
            buf: vec![0; RECV_BUF_LEN],
            requests: [
                dump_request(AF_INET, ExtensionFlags::empty(), StateFlags::all()),
                dump_request(AF_INET6, ExtensionFlags::empty(), StateFlags::all()),
            ],
            seq: 0,
        })
    }

    fn count_all(&mut self, socket: &Socket) -> Result<ConnCounts, SourceError> {
        let mut counts = ConnCounts::default();
        for (i, family) in [AF_INET, AF_INET6].into_iter().enumerate() {
            self.seq = self.seq.wrapping_add(1);
            let result = dump(
                socket,
                &mut self.requests[i],
                &mut self.buf,
                self.seq,
                &mut |r| tally(r, &mut counts),
            );
            match result {
                Ok(()) => {}
                // A kernel without IPv6 has no IPv6 sockets to count.
                Err(SourceError::Netlink { ref error, .. })
                    if family == AF_INET6
                        && matches!(
                            error.raw_os_error(),
                            Some(libc::ENOENT) | Some(libc::EAFNOSUPPORT)
                        ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(counts)
    }
}

impl ConnCounter for SockDiagConnCounter {
    fn count(&mut self) -> Result<ConnCounts, SourceError> {
        let socket = match self.socket.take() {
            Some(s) => s,
            None => open_socket()?,
        };
        let result = self.count_all(&socket);
        if result.is_ok() {
            self.socket = Some(socket);
        }
        result
    }
}

/// A connected NETLINK_SOCK_DIAG socket with a receive timeout (also used
/// by other crates' sock_diag dumps, e.g. the mitigation guard's meter).
pub fn open_socket() -> Result<Socket, SourceError> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)
        .map_err(|e| SourceError::netlink("opening a NETLINK_SOCK_DIAG socket", e))?;
    socket
        .bind_auto()
        .map_err(|e| SourceError::netlink("binding the netlink socket", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| SourceError::netlink("connecting the netlink socket", e))?;
    // Best effort: a smaller buffer (rmem_max) only means more, shorter reads.
    let _ = socket.set_rx_buf_sz(SOCKET_RCVBUF);
    set_recv_timeout(&socket, RECV_TIMEOUT)
        .map_err(|e| SourceError::netlink("setting SO_RCVTIMEO", e))?;
    Ok(socket)
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: `tv` is a valid timeval that outlives the call, its size is passed
    // as the option length, and the fd is owned by `socket`, which is alive.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An inet_diag dump request for the TCP sockets of `family` in `states`,
/// with `extensions` (the counter asks for none: it only needs the state,
/// and attributes would multiply the bytes the kernel copies per socket).
pub fn dump_request(family: u8, extensions: ExtensionFlags, states: StateFlags) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut msg = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions,
            states,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Sends one dump request (made by [`dump_request`]) and hands every
/// socket's `inet_diag_msg` (with its attributes) to `on_socket` until
/// NLMSG_DONE.
pub fn dump(
    socket: &Socket,
    request: &mut [u8],
    buf: &mut [u8],
    seq: u32,
    on_socket: &mut dyn FnMut(InetResponseBuffer<&[u8]>),
) -> Result<(), SourceError> {
    NetlinkBuffer::new(&mut *request).set_sequence_number(seq);
    socket
        .send(request, 0)
        .map_err(|e| SourceError::netlink("sending the dump request", e))?;
    loop {
        let mut dst: &mut [u8] = &mut *buf;
        // MSG_TRUNC makes recv return the datagram's real length, so a datagram
        // larger than our buffer is detected instead of silently cut.
        let n = match socket.recv(&mut dst, libc::MSG_TRUNC) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(SourceError::Netlink {
                    op: "waiting for the dump reply (timed out)",
                    error: e,
                })
            }
            Err(e) => return Err(SourceError::netlink("receiving the dump reply", e)),
        };
        if n > buf.len() {
            return Err(SourceError::Protocol(format!(
                "datagram of {n} bytes exceeds the {} byte buffer",
                buf.len()
            )));
        }
        if walk_datagram(&buf[..n], seq, on_socket)? == Progress::Done {
            return Ok(());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    More,
    Done,
}

/// Counts one socket by state.
fn tally(r: InetResponseBuffer<&[u8]>, counts: &mut ConnCounts) {
    counts.total += 1;
    match r.state() {
        TCP_ESTABLISHED => counts.established += 1,
        TCP_SYN_RECV => counts.syn_recv += 1,
        TCP_TIME_WAIT => counts.time_wait += 1,
        _ => {}
    }
}

/// Counts the sockets in one datagram of a dump reply.
#[cfg(test)]
pub(crate) fn tally_datagram(
    datagram: &[u8],
    seq: u32,
    counts: &mut ConnCounts,
) -> Result<Progress, SourceError> {
    walk_datagram(datagram, seq, &mut |r| tally(r, counts))
}

/// Hands every socket in one datagram of a dump reply to `on_socket`. Pure,
/// so the decoding is tested without a kernel. Messages with another
/// sequence number are leftovers of an earlier request and are skipped.
pub(crate) fn walk_datagram(
    datagram: &[u8],
    seq: u32,
    on_socket: &mut dyn FnMut(InetResponseBuffer<&[u8]>),
) -> Result<Progress, SourceError> {
    let mut offset = 0;
    while offset < datagram.len() {
        let msg = NetlinkBuffer::new_checked(&datagram[offset..]).map_err(|e| {
            SourceError::Protocol(format!("netlink message at offset {offset}: {e}"))
        })?;
        // new_checked guarantees 16 <= length <= remaining bytes.
        let len = msg.length() as usize;
        if msg.sequence_number() == seq {
            match msg.message_type() {
                SOCK_DIAG_BY_FAMILY => {
                    let r = InetResponseBuffer::new_checked(msg.payload()).map_err(|e| {
                        SourceError::Protocol(format!("inet_diag_msg at offset {offset}: {e}"))
                    })?;
                    on_socket(r);
                }
                NLMSG_DONE => {
                    // A dump that failed midway ends with DONE carrying -errno.
                    if let Some(code) = leading_i32(msg.payload()).filter(|c| *c < 0) {
                        return Err(SourceError::netlink(
                            "dumping TCP sockets",
                            io::Error::from_raw_os_error(-code),
                        ));
                    }
                    return Ok(Progress::Done);
                }
                NLMSG_ERROR => {
                    let err = ErrorBuffer::new_checked(msg.payload()).map_err(|e| {
                        SourceError::Protocol(format!("NLMSG_ERROR at offset {offset}: {e}"))
                    })?;
                    if let Some(code) = err.code() {
                        return Err(SourceError::netlink(
                            "dump request",
                            io::Error::from_raw_os_error(code.get().saturating_abs()),
                        ));
                    }
                    // Code 0 is an ACK; a dump does not ask for one, so ignore it.
                }
                NLMSG_NOOP => {}
                NLMSG_OVERRUN => {
                    return Err(SourceError::Protocol("NLMSG_OVERRUN: data lost".into()))
                }
                other => {
                    return Err(SourceError::Protocol(format!(
                        "unexpected netlink message type {other}"
                    )))
                }
            }
        }
        // Messages start on 4-byte boundaries (NLMSG_ALIGN).
        offset += (len + 3) & !3;
    }
    Ok(Progress::More)
}

fn leading_i32(bytes: &[u8]) -> Option<i32> {
    let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(i32::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = 16 + payload.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn socket(state: u8) -> Vec<u8> {
        let mut p = vec![0u8; 72];
        p[0] = AF_INET;
        p[1] = state;
        message(SOCK_DIAG_BY_FAMILY, 7, &p)
    }

    #[test]
    fn counts_states_and_stops_at_done() {
        let mut d = Vec::new();
        for s in [
            TCP_ESTABLISHED,
            TCP_ESTABLISHED,
            TCP_SYN_RECV,
            TCP_TIME_WAIT,
            10,
        ] {
            d.extend(socket(s));
        }
        let mut c = ConnCounts::default();
        assert_eq!(tally_datagram(&d, 7, &mut c).unwrap(), Progress::More);
        assert_eq!(
            c,
            ConnCounts {
                established: 2,
                syn_recv: 1,
                time_wait: 1,
                total: 5
            }
        );
        let done = message(NLMSG_DONE, 7, &0i32.to_ne_bytes());
        assert_eq!(tally_datagram(&done, 7, &mut c).unwrap(), Progress::Done);
    }

    #[test]
    fn skips_leftovers_of_other_requests() {
        let mut d = message(NLMSG_DONE, 6, &0i32.to_ne_bytes());
        d.extend(socket(TCP_ESTABLISHED));
        let mut c = ConnCounts::default();
        assert_eq!(tally_datagram(&d, 7, &mut c).unwrap(), Progress::More);
        assert_eq!(c.total, 1);
    }

    #[test]
    fn eperm_reply_is_permission_denied() {
        let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]); // the echoed request header
        let d = message(NLMSG_ERROR, 7, &payload);
        let e = tally_datagram(&d, 7, &mut ConnCounts::default()).unwrap_err();
        assert!(e.is_permission_denied(), "{e}");
        assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
    }

    #[test]
    fn done_with_errno_is_an_error() {
        let d = message(NLMSG_DONE, 7, &(-libc::EINVAL).to_ne_bytes());
        let e = tally_datagram(&d, 7, &mut ConnCounts::default()).unwrap_err();
        assert!(matches!(e, SourceError::Netlink { .. }), "{e}");
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let d = socket(TCP_ESTABLISHED);
        for cut in 1..d.len() {
            let _ = tally_datagram(&d[..cut], 7, &mut ConnCounts::default());
        }
        // A header claiming a 72-byte inet_diag_msg but carrying 10 bytes.
        let short = message(SOCK_DIAG_BY_FAMILY, 7, &[0; 10]);
        assert!(matches!(
            tally_datagram(&short, 7, &mut ConnCounts::default()),
            Err(SourceError::Protocol(_))
        ));
    }

    #[test]
    fn requests_are_well_formed() {
        for family in [AF_INET, AF_INET6] {
            let r = dump_request(family, ExtensionFlags::empty(), StateFlags::all());
            let b = NetlinkBuffer::new_checked(&r[..]).unwrap();
            assert_eq!(b.length() as usize, r.len());
            assert_eq!(b.message_type(), SOCK_DIAG_BY_FAMILY);
            assert_eq!(b.flags(), NLM_F_REQUEST | NLM_F_DUMP);
            assert_eq!(b.payload()[0], family);
            assert_eq!(b.payload()[1], IPPROTO_TCP);
        }
    }
}
