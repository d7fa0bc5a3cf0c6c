//! Which XDP programs an interface carries, and removing one, over
//! NETLINK_ROUTE (`RTM_GETLINK` / `RTM_SETLINK` with `IFLA_XDP`), as
//! `ip link` does. This is how a program left behind by a killed process is
//! found and removed: aya attaches through a bpf_link, which the kernel
//! removes with the process, but a program attached through netlink (by an
//! older kernel, another tool or `ip link set ... xdp obj`) stays until
//! someone detaches it.

use crate::error::XdpError;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::time::Duration;

/// How an XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttachedMode {
    /// In the driver (`xdpdrv`, native).
    Native,
    /// In the generic, skb-based hook (`xdpgeneric`).
    Generic,
    /// Offloaded to the NIC (`xdpoffload`).
    Offload,
}

impl AttachedMode {
    /// The `XDP_FLAGS_*_MODE` bit of this mode (linux/if_link.h).
    pub fn flag(self) -> u32 {
        match self {
            AttachedMode::Generic => 1 << 1,
            AttachedMode::Native => 1 << 2,
            AttachedMode::Offload => 1 << 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
            AttachedMode::Offload => "offload",
        }
    }
}

/// One XDP program on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attached {
    pub mode: AttachedMode,
    pub prog_id: u32,
}

/// The programs the `IFLA_XDP` attributes of an RTM_NEWLINK report.
pub fn parse_xdp(attrs: &[LinkXdp]) -> Vec<Attached> {
    let mut mode = None;
    let mut prog = None;
    let mut per_mode = Vec::new();
    for a in attrs {
        match a {
            LinkXdp::Attached(XdpAttached::Driver) => mode = Some(AttachedMode::Native),
            LinkXdp::Attached(XdpAttached::SocketBuffer) => mode = Some(AttachedMode::Generic),
            LinkXdp::Attached(XdpAttached::Hardware) => mode = Some(AttachedMode::Offload),
            LinkXdp::ProgId(id) => prog = Some(*id),
            LinkXdp::DrvProgId(id) => per_mode.push(Attached {
                mode: AttachedMode::Native,
                prog_id: *id,
            }),
            LinkXdp::SkbProgId(id) => per_mode.push(Attached {
                mode: AttachedMode::Generic,
                prog_id: *id,
            }),
            LinkXdp::HwProgId(id) => per_mode.push(Attached {
                mode: AttachedMode::Offload,
                prog_id: *id,
            }),
            _ => {}
        }
    }
    match (mode, prog) {
        // One mode: the kernel sends ATTACHED + PROG_ID (and the per-mode id).
        (Some(mode), Some(prog_id)) => vec![Attached { mode, prog_id }],
        // XDP_ATTACHED_MULTI: only the per-mode ids say what is where.
        _ => {
            per_mode.retain(|a| a.prog_id != 0);
            per_mode
        }
    }
}

/// The index of interface `ifname`.
pub fn ifindex(ifname: &str) -> Result<u32, XdpError> {
    let unknown = || XdpError::UnknownInterface {
        ifname: ifname.to_string(),
    };
    let c = std::ffi::CString::new(ifname).map_err(|_| unknown())?;
    // SAFETY: `c` is a valid NUL-terminated string alive for the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(unknown())
    } else {
        Ok(idx)
    }
}

/// The XDP programs on interface `ifindex`.
pub fn attached(ifindex: u32) -> io::Result<Vec<Attached>> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let reply = request(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST)?;
    for m in reply {
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = m.payload {
            for attr in &link.attributes {
                if let LinkAttribute::Xdp(xdp) = attr {
                    return Ok(parse_xdp(xdp));
                }
            }
            return Ok(Vec::new());
        }
    }
    Err(io::Error::other("no RTM_NEWLINK in the reply"))
}

/// Removes the program attached in `mode` (`IFLA_XDP_FD = -1`). Fails with
/// EBUSY when a bpf_link holds it: its owner, a live process, removes it.
pub fn detach(ifindex: u32, mode: AttachedMode) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(vec![
        LinkXdp::Fd(-1),
        LinkXdp::Flags(mode.flag()),
    ]));
    request(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK).map(|_| ())
}

/// Sends one request and collects the reply up to its ack, error or first
/// answer.
fn request(
    payload: RouteNetlinkMessage,
    flags: u16,
) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    set_recv_timeout(&socket, Duration::from_secs(2))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    let mut rx = vec![0u8; 64 * 1024];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut at = 0;
        while at < n {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[at..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = m.header.length as usize;
            match &m.payload {
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        None => Ok(out),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::InnerMessage(_) if flags & NLM_F_ACK == 0 => {
                    out.push(m);
                    return Ok(out);
                }
                _ => out.push(m),
            }
            if len == 0 {
                break;
            }
            at += len;
        }
    }
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros() as i32),
    };
    // SAFETY: `tv` is a valid timeval alive for the call, its size is passed,
    // and the fd belongs to `socket`, which is alive.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mode_and_multi_mode_replies() {
        let one = [
            LinkXdp::Attached(XdpAttached::SocketBuffer),
            LinkXdp::SkbProgId(42),
            LinkXdp::ProgId(42),
        ];
        assert_eq!(
            parse_xdp(&one),
            vec![Attached {
                mode: AttachedMode::Generic,
                prog_id: 42
            }]
        );
        let multi = [
            LinkXdp::Attached(XdpAttached::Multiple),
            LinkXdp::DrvProgId(7),
            LinkXdp::SkbProgId(8),
        ];
        assert_eq!(parse_xdp(&multi).len(), 2);
        assert!(parse_xdp(&[LinkXdp::Attached(XdpAttached::None)]).is_empty());
    }

    #[test]
    fn unknown_interface_is_named() {
        let e = ifindex("levee-no-such0").unwrap_err().to_string();
        assert!(e.contains("levee-no-such0") && e.contains("ip link"), "{e}");
    }
}
