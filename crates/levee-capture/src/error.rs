//! Typed errors. Each names the interface or file involved, the syscall or
//! step that failed, and what the operator can do about it.

use std::io;
use std::path::PathBuf;

/// Why capturing or writing a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A syscall on the AF_PACKET socket of `interface` failed.
    #[error("capture on interface {interface}: {syscall} failed: {source}{hint}")]
    Syscall {
        interface: String,
        syscall: &'static str,
        #[source]
        source: io::Error,
        /// What to do, derived from the errno (may be empty).
        hint: &'static str,
    },
    /// The interface does not exist (in this network namespace).
    #[error("capture on interface {interface}: no such interface in this network namespace (check `ip link`)")]
    NoSuchInterface { interface: String },
    /// A configuration value cannot work.
    #[error("capture on interface {interface}: invalid configuration: {detail}")]
    Config { interface: String, detail: String },
    /// Reading a replayed capture file failed.
    #[error("reading capture {}: {detail}", path.display())]
    ReadPcap { path: PathBuf, detail: String },
    /// Writing an incident pcap failed.
    #[error("writing pcap {}: {step} failed: {source} (check that the directory exists and is writable)", path.display())]
    WritePcap {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// The error of the syscall that just failed (reads errno).
    pub(crate) fn syscall(interface: &str, syscall: &'static str) -> Self {
        Self::syscall_with(interface, syscall, io::Error::last_os_error())
    }

    pub(crate) fn syscall_with(interface: &str, syscall: &'static str, source: io::Error) -> Self {
        let hint = hint(source.raw_os_error());
        CaptureError::Syscall {
            interface: interface.to_string(),
            syscall,
            source,
            hint,
        }
    }
}

/// What to do about common errnos.
fn hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (AF_PACKET needs CAP_NET_RAW: run as root or grant the capability)"
        }
        Some(libc::ENOMEM) => {
            " (the kernel could not allocate the ring: lower the block count or size)"
        }
        Some(libc::ENETDOWN) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
            " (is the interface up and present?)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_says_cap_net_raw() {
        let e = CaptureError::syscall_with(
            "eth0",
            "socket(AF_PACKET)",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        let s = e.to_string();
        assert!(s.contains("eth0") && s.contains("socket(AF_PACKET)"), "{s}");
        assert!(s.contains("CAP_NET_RAW"), "{s}");
    }
}
