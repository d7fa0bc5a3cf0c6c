//! The TPACKET_V3 receive ring: `block_count` blocks of `block_size` bytes
//! shared with the kernel through mmap.
//!
//! Ownership of a block is handed back and forth with its `block_status`
//! word: the kernel fills a block while the status is TP_STATUS_KERNEL and
//! sets TP_STATUS_USER when it retires it (full, or timed out); user space
//! reads the frames and writes TP_STATUS_KERNEL back. Blocks are used in
//! order, so user space only ever looks at `current`.
//!
//! Every offset read from the shared memory is bounds-checked against the
//! block before use: a corrupt header skips the rest of the block instead
//! of reading outside the mapping.

use super::sys;
use super::vlan;
use super::AfPacketConfig;
use crate::error::CaptureError;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

/// The kernel's PACKET_OUTGOING packet type (linux/if_packet.h).
const PACKET_OUTGOING: u8 = 4;

#[derive(Debug)]
pub struct MmapRing {
    base: *mut u8,
    len: usize,
    block_size: usize,
    block_count: usize,
    current: usize,
}

// SAFETY: the mapping is owned by this value alone (no aliases are handed
// out beyond a `drain_block` call), so moving it to another thread is fine.
unsafe impl Send for MmapRing {}

impl MmapRing {
    /// Requests the ring (PACKET_RX_RING) and maps it.
    pub fn new(fd: &OwnedFd, cfg: &AfPacketConfig) -> Result<Self, CaptureError> {
        let iface = cfg.interface.as_str();
        // frame_size only matters to the kernel's sanity checks in V3
        // (frames are variable-length within a block).
        let frame_size: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: (cfg.block_size / frame_size) * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::setsockopt(
            fd,
            iface,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
        )?;
        let len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket;
        // the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(CaptureError::syscall(iface, "mmap(PACKET_RX_RING)"));
        }
        Ok(MmapRing {
            base: base.cast(),
            len,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            current: 0,
        })
    }

    pub fn block_count(&self) -> usize {
        self.block_count
    }

    fn block(&self) -> *mut libc::tpacket_block_desc {
        // SAFETY: current < block_count, so the offset is inside the mapping.
        unsafe { self.base.add(self.current * self.block_size) }.cast()
    }

    fn status_ptr(&self) -> *mut u32 {
        // SAFETY: field projection inside the mapped block descriptor.
        unsafe { std::ptr::addr_of_mut!((*self.block()).hdr.bh1.block_status) }
    }

    /// Whether the kernel has handed the current block to user space.
    pub fn block_ready(&self) -> bool {
        // SAFETY: aligned u32 inside the mapping; volatile because the
        // kernel writes it concurrently.
        let status = unsafe { std::ptr::read_volatile(self.status_ptr()) };
        // Acquire: the frame data written before the status is visible.
        fence(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    /// Passes every frame of the current (ready) block to `f` as
    /// (timestamp ns, wire length, bytes), then returns the block to the
    /// kernel and moves on.
    pub fn drain_block(&mut self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(u64, u32, &[u8])) {
        let block = self.block();
        let bs = self.block_size;
        // SAFETY: the block is owned by user space (TP_STATUS_USER was seen)
        // until the status is written back below; reads are bounds-checked.
        unsafe {
            let bh = std::ptr::addr_of!((*block).hdr.bh1).read_volatile();
            let mut off = bh.offset_to_first_pkt as usize;
            for _ in 0..bh.num_pkts {
                let hsz = std::mem::size_of::<libc::tpacket3_hdr>();
                if off < std::mem::size_of::<libc::tpacket_block_desc>() || off + hsz > bs {
                    break;
                }
                let base = block.cast::<u8>().add(off);
                let h = base.cast::<libc::tpacket3_hdr>().read_unaligned();
                let mac = usize::from(h.tp_mac);
                let cap = h.tp_snaplen as usize;
                if off + mac + cap > bs {
                    break;
                }
                // sockaddr_ll follows the header, aligned to 16 bytes.
                let sll_off = (hsz + 15) & !15;
                let outgoing = off + sll_off + std::mem::size_of::<libc::sockaddr_ll>() <= bs
                    && base
                        .add(sll_off)
                        .cast::<libc::sockaddr_ll>()
                        .read_unaligned()
                        .sll_pkttype
                        == PACKET_OUTGOING;
                if !outgoing {
                    let data = std::slice::from_raw_parts(base.add(mac), cap);
                    let ts = u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec);
                    if h.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            h.hv1.tp_vlan_tpid
                        } else {
                            vlan::ETH_P_8021Q
                        };
                        vlan::reinsert(data, tpid, h.hv1.tp_vlan_tci as u16, scratch);
                        f(ts, h.tp_len.saturating_add(4), scratch);
                    } else {
                        f(ts, h.tp_len, data);
                    }
                }
                if h.tp_next_offset == 0 {
                    break;
                }
                off += h.tp_next_offset as usize;
            }
            // Release: our reads are done before the kernel may reuse it.
            fence(Ordering::Release);
            std::ptr::write_volatile(self.status_ptr(), libc::TP_STATUS_KERNEL);
        }
        self.current = (self.current + 1) % self.block_count;
    }
}

impl Drop for MmapRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slices of it
        // outlive a `drain_block` call.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}
