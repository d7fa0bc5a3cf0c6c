//! [`AfPacketSource`]: sampled frames of one live interface, from an
//! AF_PACKET socket with a TPACKET_V3 memory-mapped receive ring.
//!
//! How it works, and why:
//! - TPACKET_V3 hands user space whole *blocks* of frames; a block is
//!   retired to user space when full or after `block_timeout_ms` (default
//!   50 ms), so a quiet link still yields a batch every ~50 ms and a busy
//!   link costs one wakeup per block instead of per packet.
//! - A classic BPF filter ([`crate::bpf`]) keeps 1 packet in N at random
//!   and truncates it to `snaplen` *in the kernel*, before anything is
//!   copied into the ring; [`AfPacketSource::set_sampling_rate`] replaces
//!   the filter atomically. Frames already in the ring were sampled at the
//!   previous rate; a batch reports the rate in force when it was read, so
//!   right after a change the scaling is off for at most one batch.
//! - VLAN tags stripped by the kernel are reinserted ([`vlan`]).
//! - The host's own transmitted packets are ignored (PACKET_IGNORE_OUTGOING):
//!   the detector looks at what arrives.
//!
//! The socket stays in the network namespace it was created in, so a
//! caller can create it in a thread that entered another namespace.

mod ring;
pub mod sys;
pub mod vlan;

use crate::error::CaptureError;
use crate::frame::{BatchStats, Frame, KernelStats, PacketSource, LINKTYPE_ETHERNET};
use ring::MmapRing;
use std::os::fd::OwnedFd;

/// AF_PACKET source parameters; `AfPacketConfig::new(iface)` gives the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    pub interface: String,
    /// Put the interface in promiscuous mode while the socket is open
    /// (mirror/SPAN ports). Default false.
    pub promiscuous: bool,
    /// Bytes captured per packet (default 256: headers are enough).
    pub snaplen: u32,
    /// Ring block size in bytes: a multiple of the page size, power of two
    /// (default 1 MiB).
    pub block_size: u32,
    /// Ring blocks (default 8).
    pub block_count: u32,
    /// A block is handed over at the latest this many ms after its first
    /// packet (default 50).
    pub block_timeout_ms: u32,
    /// Initial sampling rate N (default 1: every packet).
    pub sampling_rate: u32,
    /// How long `next_batch` waits for a block when none is ready (default
    /// 100 ms).
    pub poll_timeout_ms: u32,
}

impl AfPacketConfig {
    pub fn new(interface: impl Into<String>) -> Self {
        AfPacketConfig {
            interface: interface.into(),
            promiscuous: false,
            snaplen: 256,
            block_size: 1 << 20,
            block_count: 8,
            block_timeout_ms: 50,
            sampling_rate: 1,
            poll_timeout_ms: 100,
        }
    }

    fn validate(&self) -> Result<(), CaptureError> {
        let bad = |detail: String| {
            Err(CaptureError::Config {
                interface: self.interface.clone(),
                detail,
            })
        };
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        if !self.block_size.is_power_of_two() || self.block_size < page {
            return bad(format!(
                "block_size {} must be a power of two of at least the page size {page}",
                self.block_size
            ));
        }
        if self.block_count == 0 || self.block_count > 4096 {
            return bad(format!("block_count {} must be 1..=4096", self.block_count));
        }
        if self.snaplen < 64 || self.snaplen > 65_535 {
            return bad(format!("snaplen {} must be 64..=65535", self.snaplen));
        }
        if self.block_timeout_ms == 0 {
            return bad("block_timeout_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// A live sampled capture on one interface.
#[derive(Debug)]
pub struct AfPacketSource {
    cfg: AfPacketConfig,
    ifindex: u32,
    rate: u32,
    kernel: KernelStats,
    ring: MmapRing,
    /// Reused buffer for frames that get a VLAN tag reinserted.
    scratch: Vec<u8>,
    // Declared last: the ring is unmapped before the socket is closed.
    fd: OwnedFd,
}

impl AfPacketSource {
    /// Opens the socket, sets up the ring and the sampling filter, and binds
    /// to the interface (looked up in the calling thread's namespace).
    pub fn open(cfg: AfPacketConfig) -> Result<Self, CaptureError> {
        cfg.validate()?;
        let iface = cfg.interface.as_str();
        let ifindex = sys::ifindex(iface)?;
        let fd = sys::packet_socket(iface)?;
        sys::setsockopt(
            &fd,
            iface,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &sys::TPACKET_V3,
            "setsockopt(PACKET_VERSION, TPACKET_V3)",
        )?;
        let rate = cfg.sampling_rate.max(1);
        sys::attach_sampling_filter(&fd, iface, rate, cfg.snaplen)?;
        let one: libc::c_int = 1;
        if let Err(e) = sys::setsockopt(
            &fd,
            iface,
            libc::SOL_PACKET,
            sys::PACKET_IGNORE_OUTGOING,
            &one,
            "setsockopt(PACKET_IGNORE_OUTGOING)",
        ) {
            // Kernels before 4.20: outgoing packets are dropped in
            // user space instead (see MmapRing::for_each_frame).
            tracing::debug!("{e}; filtering outgoing packets in user space");
        }
        let ring = MmapRing::new(&fd, &cfg)?;
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as libc::c_int,
                mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            sys::setsockopt(
                &fd,
                iface,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq,
                "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)",
            )?;
        }
        sys::bind_all(&fd, iface, ifindex)?;
        let scratch = Vec::with_capacity(cfg.snaplen as usize + crate::ring::VLAN_HLEN);
        Ok(AfPacketSource {
            ifindex,
            rate,
            kernel: KernelStats::default(),
            ring,
            scratch,
            fd,
            cfg,
        })
    }

    pub fn interface(&self) -> &str {
        &self.cfg.interface
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Kernel counters accumulated so far (updated by each batch).
    pub fn kernel_stats(&self) -> KernelStats {
        self.kernel
    }

    fn refresh_stats(&mut self) -> Result<(), CaptureError> {
        let st = sys::packet_stats(&self.fd, &self.cfg.interface)?;
        self.kernel.packets += u64::from(st.tp_packets);
        self.kernel.drops += u64::from(st.tp_drops);
        self.kernel.freeze_q_cnt += u64::from(st.tp_freeze_q_cnt);
        Ok(())
    }
}

impl PacketSource for AfPacketSource {
    fn next_batch(&mut self, out: &mut dyn FnMut(Frame<'_>)) -> Result<BatchStats, CaptureError> {
        if !self.ring.block_ready() {
            sys::poll_readable(
                &self.fd,
                &self.cfg.interface,
                self.cfg.poll_timeout_ms.min(i32::MAX as u32) as i32,
            )?;
        }
        let ifindex = self.ifindex;
        let mut frames = 0u64;
        // At most one pass over the ring per call so callers get control
        // back regularly even under a flood.
        for _ in 0..self.ring.block_count() {
            if !self.ring.block_ready() {
                break;
            }
            self.ring
                .drain_block(&mut self.scratch, &mut |ts_ns, wire_len, data| {
                    frames += 1;
                    out(Frame {
                        ts_ns,
                        linktype: LINKTYPE_ETHERNET,
                        wire_len,
                        data,
                        ifindex,
                    });
                });
        }
        self.refresh_stats()?;
        Ok(BatchStats {
            frames,
            sampling_rate: self.rate,
            kernel: self.kernel,
            end_of_stream: false,
        })
    }

    fn sampling_rate(&self) -> u32 {
        self.rate
    }

    fn set_sampling_rate(&mut self, n: u32) -> Result<(), CaptureError> {
        let n = n.max(1);
        if n != self.rate {
            sys::attach_sampling_filter(&self.fd, &self.cfg.interface, n, self.cfg.snaplen)?;
            self.rate = n;
        }
        Ok(())
    }
}
