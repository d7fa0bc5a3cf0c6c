//! Thin wrappers over the socket syscalls the AF_PACKET source needs. Each
//! turns a failure into a [`CaptureError`] naming the interface and the
//! call.

use crate::bpf;
use crate::error::CaptureError;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `PACKET_IGNORE_OUTGOING` (linux/if_packet.h, Linux 4.20): do not deliver
/// the host's own transmitted packets to this socket.
pub const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `TPACKET_V3` (enum tpacket_versions).
pub const TPACKET_V3: libc::c_int = 2;

/// `socket(AF_PACKET, SOCK_RAW, 0)`: protocol 0 so nothing is queued
/// before the ring and filter are in place; `bind` later picks ETH_P_ALL.
pub fn packet_socket(iface: &str) -> Result<OwnedFd, CaptureError> {
    // SAFETY: plain syscall; the returned fd is owned by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(CaptureError::syscall(iface, "socket(AF_PACKET, SOCK_RAW)"));
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(fd, level, name, &value)`.
pub fn setsockopt<T>(
    fd: &OwnedFd,
    iface: &str,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    what: &'static str,
) -> Result<(), CaptureError> {
    // SAFETY: `value` points to a live T of the size passed; the kernel
    // copies it before returning.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(CaptureError::syscall(iface, what));
    }
    Ok(())
}

/// Attaches (or atomically replaces) the 1-in-`n` sampling filter.
pub fn attach_sampling_filter(
    fd: &OwnedFd,
    iface: &str,
    n: u32,
    snaplen: u32,
) -> Result<(), CaptureError> {
    let mut filters = bpf::to_sock_filters(&bpf::sampling_program(n, snaplen));
    let prog = libc::sock_fprog {
        len: filters.len() as libc::c_ushort,
        filter: filters.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `filters` outlives it.
    setsockopt(
        fd,
        iface,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &prog,
        "setsockopt(SO_ATTACH_FILTER)",
    )
}

/// Reads and resets the kernel's PACKET_STATISTICS counters.
pub fn packet_stats(fd: &OwnedFd, iface: &str) -> Result<libc::tpacket_stats_v3, CaptureError> {
    let mut st = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: st and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(CaptureError::syscall(
            iface,
            "getsockopt(PACKET_STATISTICS)",
        ));
    }
    Ok(st)
}

/// Binds the socket to `ifindex` for all protocols (ETH_P_ALL: IPv4, IPv6,
/// ARP, VLAN...).
pub fn bind_all(fd: &OwnedFd, iface: &str, ifindex: u32) -> Result<(), CaptureError> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: sll is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(CaptureError::syscall(iface, "bind(AF_PACKET)"));
    }
    Ok(())
}

/// Waits up to `timeout_ms` for the socket to become readable (a block was
/// retired). EINTR counts as a timeout.
pub fn poll_readable(fd: &OwnedFd, iface: &str, timeout_ms: i32) -> Result<(), CaptureError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(CaptureError::syscall_with(iface, "poll", e));
        }
    }
    Ok(())
}

/// The index of `iface` in the calling thread's network namespace.
pub fn ifindex(iface: &str) -> Result<u32, CaptureError> {
    let name = std::ffi::CString::new(iface).map_err(|_| CaptureError::Config {
        interface: iface.to_string(),
        detail: "interface name contains a NUL byte".into(),
    })?;
    // SAFETY: name is a valid C string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        return Err(CaptureError::NoSuchInterface {
            interface: iface.to_string(),
        });
    }
    Ok(idx)
}
