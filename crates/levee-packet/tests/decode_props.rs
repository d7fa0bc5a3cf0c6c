//! Property tests of the decoder: it never panics, whatever the bytes, and it
//! agrees with etherparse (an independent, well-tested parser) on every field
//! both extract from generated frames.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId, VlanSlice};
use levee_packet::features::Class;
use levee_packet::{decode, LinkType, Transport};
use proptest::prelude::*;
use std::net::IpAddr;

const LINKS: [LinkType; 7] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Loopback,
];

#[derive(Debug, Clone)]
struct Spec {
    v6: bool,
    vlans: u8,
    proto: u8, // 0 tcp, 1 udp, 2 icmp
    sport: u16,
    dport: u16,
    flags: u8,
    ttl: u8,
    payload: Vec<u8>,
    vlan_id: u16,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        0u8..=2,
        0u8..3,
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..80),
        0u16..4095,
    )
        .prop_map(
            |(v6, vlans, proto, sport, dport, flags, ttl, payload, vlan_id)| Spec {
                v6,
                vlans,
                proto,
                sport,
                dport,
                flags,
                ttl,
                payload,
                vlan_id,
            },
        )
}

/// Builds the frame a spec describes with etherparse's builder.
fn build(s: &Spec) -> Vec<u8> {
    let vid = VlanId::try_new(s.vlan_id).expect("vlan id");
    let eth = PacketBuilder::ethernet2([1; 6], [2; 6]);
    macro_rules! finish {
        ($ip:expr) => {{
            let ip = $ip;
            let mut out = Vec::new();
            match s.proto {
                0 => {
                    let mut t = ip.tcp(s.sport, s.dport, 7, 1000);
                    let f = s.flags;
                    if f & 0x01 != 0 {
                        t = t.fin();
                    }
                    if f & 0x02 != 0 {
                        t = t.syn();
                    }
                    if f & 0x04 != 0 {
                        t = t.rst();
                    }
                    if f & 0x08 != 0 {
                        t = t.psh();
                    }
                    if f & 0x10 != 0 {
                        t = t.ack(1);
                    }
                    if f & 0x20 != 0 {
                        t = t.urg(1);
                    }
                    if f & 0x40 != 0 {
                        t = t.ece();
                    }
                    if f & 0x80 != 0 {
                        t = t.cwr();
                    }
                    t.write(&mut out, &s.payload).expect("builds");
                }
                1 => ip
                    .udp(s.sport, s.dport)
                    .write(&mut out, &s.payload)
                    .expect("builds"),
                _ => {
                    if s.v6 {
                        ip.icmpv6_echo_request(1, 2)
                            .write(&mut out, &s.payload)
                            .expect("builds")
                    } else {
                        ip.icmpv4_echo_request(1, 2)
                            .write(&mut out, &s.payload)
                            .expect("builds")
                    }
                }
            }
            out
        }};
    }
    let src4 = [198, 51, 100, s.ttl];
    let dst4 = [203, 0, 113, 7];
    let mut src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    src6[15] = s.ttl;
    let dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    match (s.vlans, s.v6) {
        (0, false) => finish!(eth.ipv4(src4, dst4, s.ttl)),
        (0, true) => finish!(eth.ipv6(src6, dst6, s.ttl)),
        (1, false) => finish!(eth.single_vlan(vid).ipv4(src4, dst4, s.ttl)),
        (1, true) => finish!(eth.single_vlan(vid).ipv6(src6, dst6, s.ttl)),
        (_, false) => finish!(eth
            .double_vlan(vid, VlanId::try_new(5).unwrap())
            .ipv4(src4, dst4, s.ttl)),
        (_, true) => finish!(eth
            .double_vlan(vid, VlanId::try_new(5).unwrap())
            .ipv6(src6, dst6, s.ttl)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), link in 0usize..LINKS.len()) {
        let _ = decode(LINKS[link], &bytes);
    }

    /// Random bytes rarely get past the first header; corrupting valid frames
    /// reaches the IP, extension and transport code with hostile values.
    #[test]
    fn corrupted_frames_never_panic(s in spec(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut f = build(&s);
        for (at, v) in edits {
            let i = at % f.len();
            f[i] = v;
        }
        let cut = cut % (f.len() + 1);
        if let Ok(m) = decode(LinkType::Ethernet, &f[..cut]) {
            let _ = Class::of(&m);
        }
        let _ = decode(LinkType::RawIp, &f[14..]);
    }

    #[test]
    fn agrees_with_etherparse(s in spec()) {
        let frame = build(&s);
        let ours = decode(LinkType::Ethernet, &frame).expect("valid frame decodes");
        let theirs = SlicedPacket::from_ethernet(&frame).expect("etherparse parses its own frame");

        let outer_vlan = match theirs.vlan() {
            Some(VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
            Some(VlanSlice::DoubleVlan(v)) => Some(v.outer.vlan_identifier().value()),
            None => None,
        };
        prop_assert_eq!(ours.vlan, outer_vlan);
        match theirs.net.as_ref().expect("ip") {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                prop_assert_eq!(ours.src, IpAddr::V4(h.source_addr()));
                prop_assert_eq!(ours.dst, IpAddr::V4(h.destination_addr()));
                prop_assert_eq!(ours.ttl, h.ttl());
                prop_assert_eq!(ours.ip_len, h.total_len());
            }
            NetSlice::Ipv6(ip) => {
                let h = ip.header();
                prop_assert_eq!(ours.src, IpAddr::V6(h.source_addr()));
                prop_assert_eq!(ours.dst, IpAddr::V6(h.destination_addr()));
                prop_assert_eq!(ours.ttl, h.hop_limit());
                prop_assert_eq!(ours.ip_len, 40 + h.payload_length());
            }
            NetSlice::Arp(_) => prop_assert!(false, "not ARP"),
        }
        prop_assert_eq!(ours.fragment, None);
        let head = |p: &[u8]| p[..p.len().min(16)].to_vec();
        match theirs.transport.as_ref().expect("transport") {
            TransportSlice::Tcp(t) => {
                let Transport::Tcp { src_port, dst_port, flags } = ours.transport else {
                    return Err(TestCaseError::fail(format!("{:?}", ours.transport)));
                };
                prop_assert_eq!(src_port, t.source_port());
                prop_assert_eq!(dst_port, t.destination_port());
                let bits = [t.fin(), t.syn(), t.rst(), t.psh(), t.ack(), t.urg(), t.ece(), t.cwr()];
                let theirs_flags = bits.iter().enumerate().fold(0u8, |a, (i, &b)| a | (u8::from(b) << i));
                prop_assert_eq!(flags.0, theirs_flags);
                prop_assert_eq!(usize::from(ours.payload_len), t.payload().len());
                prop_assert_eq!(ours.payload_head.as_slice().to_vec(), head(t.payload()));
            }
            TransportSlice::Udp(u) => {
                prop_assert_eq!(ours.src_port(), Some(u.source_port()));
                prop_assert_eq!(ours.dst_port(), Some(u.destination_port()));
                prop_assert_eq!(usize::from(ours.payload_len), u.payload().len());
                prop_assert_eq!(ours.payload_head.as_slice().to_vec(), head(u.payload()));
            }
            TransportSlice::Icmpv4(i) => {
                prop_assert_eq!(ours.transport, Transport::Icmp { kind: i.type_u8(), code: i.code_u8() });
                prop_assert_eq!(usize::from(ours.payload_len), i.payload().len());
            }
            TransportSlice::Icmpv6(i) => {
                prop_assert_eq!(ours.transport, Transport::Icmp { kind: i.type_u8(), code: i.code_u8() });
                prop_assert_eq!(usize::from(ours.payload_len), i.payload().len());
            }
            other => prop_assert!(false, "not generated: {:?}", other),
        }
    }
}
