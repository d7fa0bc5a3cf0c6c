//! Putting the 802.1Q tag back into a frame.
//!
//! The kernel strips VLAN tags on receive (hardware offload or
//! `skb_vlan_untag`) and reports them beside the frame (`tp_vlan_tci`,
//! `tp_vlan_tpid`). levee-packet decodes tags from the bytes, so the tag is
//! reinserted after the two MAC addresses, where it was on the wire.

/// The 802.1Q TPID, used when the kernel does not report one.
pub const ETH_P_8021Q: u16 = 0x8100;

/// Writes `frame` with a `tpid`/`tci` tag inserted after the MAC addresses
/// into `out` (cleared first). Frames too short to hold two MAC addresses
/// are copied unchanged: they decode as errors either way.
pub fn reinsert(frame: &[u8], tpid: u16, tci: u16, out: &mut Vec<u8>) {
    out.clear();
    if frame.len() < 12 {
        out.extend_from_slice(frame);
        return;
    }
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&frame[12..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::syn_frame;

    #[test]
    fn reinserted_tag_decodes_like_the_tagged_frame() {
        let mut out = Vec::with_capacity(64);
        reinsert(&syn_frame(9, None), ETH_P_8021Q, 42, &mut out);
        assert_eq!(out, syn_frame(9, Some(42)));
        let m = levee_packet::decode(levee_packet::LinkType::Ethernet, &out).unwrap();
        assert_eq!(m.vlan, Some(42));
    }

    #[test]
    fn short_frames_are_copied() {
        let mut out = Vec::new();
        reinsert(&[1, 2, 3], ETH_P_8021Q, 1, &mut out);
        assert_eq!(out, [1, 2, 3]);
    }
}
