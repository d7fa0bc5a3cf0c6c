//! Lab tests of the AF_PACKET sampler: a real TPACKET_V3 socket inside the
//! lab's victim namespace, fed by a bounded hping3 flood from the attacker
//! namespace. Need root, `ip` and `hping3` (skip loudly off CI, fail on CI).

use levee_capture::{
    AfPacketConfig, AfPacketSource, ControllerConfig, PacketSource, SamplingController,
};
use levee_lab::{require_lab, FloodKind, Lab};
use levee_packet::TcpFlags;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Opens the source in network namespace `ns` from a dedicated thread:
/// setns only changes the calling thread, and the socket keeps the
/// namespace it was created in after the thread ends.
fn open_in_netns(ns: &str, cfg: AfPacketConfig) -> AfPacketSource {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid netns fd, affecting only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        AfPacketSource::open(cfg).unwrap_or_else(|e| panic!("{e}"))
    })
    .join()
    .expect("capture thread")
}

#[test]
fn sampled_syn_flood_is_bounded_and_scales_back() {
    if require_lab().is_some() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let mut src = open_in_netns(lab.victim_ns(), AfPacketConfig::new(lab.victim_if()));
    let budget = 5_000.0;
    let mut ctl = SamplingController::new(ControllerConfig {
        budget_pps: budget,
        ..ControllerConfig::default()
    });
    let victim = IpAddr::V4(lab.victim_ip());
    let mut flood = lab
        .flood(FloodKind::Syn, Duration::from_secs(7))
        .expect("flood");

    // Warm-up: let the controller find N (reports every 250 ms).
    let (mut syn_to_victim, mut decoded) = (0u64, 0u64);
    let mut run = |src: &mut AfPacketSource, ctl: &mut SamplingController, secs: f64| {
        let (mut sampled, mut scaled) = (0u64, 0u64);
        let start = Instant::now();
        let mut window = (Instant::now(), 0u64);
        while start.elapsed().as_secs_f64() < secs {
            let b = src
                .next_batch(&mut |f| {
                    if let Ok(m) = f.decode() {
                        decoded += 1;
                        if m.dst == victim && m.tcp_flags() == Some(TcpFlags(TcpFlags::SYN)) {
                            syn_to_victim += 1;
                        }
                    }
                })
                .expect("batch");
            sampled += b.frames;
            scaled += b.scaled_packets();
            window.1 += b.frames;
            let el = window.0.elapsed().as_secs_f64();
            if el >= 0.25 {
                let n = ctl.observe(window.1 as f64 / el);
                src.set_sampling_rate(n).expect("set rate");
                window = (Instant::now(), 0);
            }
        }
        (sampled, scaled)
    };
    run(&mut src, &mut ctl, 2.0);
    flood.check().expect("hping3 runs");
    let before = lab.victim_counters().expect("counters");
    let (sampled, scaled) = run(&mut src, &mut ctl, 2.0);
    let after = lab.victim_counters().expect("counters");
    flood.stop();
    let rx = after.rx_packets - before.rx_packets;
    let k = src.kernel_stats();
    eprintln!(
        "rx {rx} pkts in 2 s; sampled {sampled}; scaled {scaled}; N {}; kernel {k:?}; \
         decoded {decoded}, SYNs to victim {syn_to_victim}",
        src.sampling_rate()
    );
    assert!(rx > 20_000, "flood too weak to test sampling: {rx} packets");
    assert!(sampled > 0, "no packets sampled");
    assert!(
        (sampled as f64) < 3.0 * budget * 2.0,
        "sampled {sampled} over 2 s with a budget of {budget}/s"
    );
    let err = (scaled as f64 - rx as f64).abs() / rx as f64;
    assert!(err < 0.3, "scaled estimate {scaled} vs rx {rx}: {err:.2}");
    assert!(
        syn_to_victim as f64 > 0.9 * decoded as f64,
        "{syn_to_victim} SYNs of {decoded} decoded"
    );
}

/// An Ethernet frame with one 802.1Q tag (VLAN `vid`) carrying an IPv4 or
/// IPv6 TCP SYN from `src` to `dst` port 80. Checksums are left at zero: the
/// frames are only captured, never delivered to a socket.
fn tagged_syn(vid: u16, src: IpAddr, dst: IpAddr, sport: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6]; // broadcast: every capture on the link sees it
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&vid.to_be_bytes());
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&80u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed address families"),
    }
    f.extend_from_slice(&tcp);
    f
}

/// Sends `frames` out of `iface` in namespace `ns` through an AF_PACKET raw
/// socket (from a thread that entered the namespace).
fn inject(ns: &str, iface: &str, frames: Vec<Vec<u8>>) {
    let path = format!("/var/run/netns/{ns}");
    let iface = iface.to_string();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a valid netns fd, affecting only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        let name = std::ffi::CString::new(iface.clone()).expect("name");
        // SAFETY: plain libc calls with valid arguments; the fd is closed below.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert!(ifindex > 0, "no interface {iface}");
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            for frame in &frames {
                let n = libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(
                    n,
                    frame.len() as isize,
                    "sendto: {}",
                    std::io::Error::last_os_error()
                );
            }
            libc::close(fd);
        }
    })
    .join()
    .expect("inject thread");
}

/// 802.1Q-tagged frames (IPv4 and IPv6) injected on the attacker's veth are
/// captured on the victim's with their VLAN id: the kernel strips the tag
/// into packet metadata on receive, the sampler reinserts it, the decoder
/// reads it. Raw injection needs no 8021q kernel module.
#[test]
fn vlan_tags_reach_the_decoder() {
    if require_lab().is_some() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let mut src = open_in_netns(lab.victim_ns(), AfPacketConfig::new(lab.victim_if()));
    let (s4, d4): (IpAddr, IpAddr) = (
        "192.0.2.7".parse().unwrap(),
        "198.51.100.9".parse().unwrap(),
    );
    let (s6, d6): (IpAddr, IpAddr) = (
        "2001:db8::7".parse().unwrap(),
        "2001:db8:1::9".parse().unwrap(),
    );
    let mut frames = Vec::new();
    for i in 0..100u16 {
        frames.push(tagged_syn(42, s4, d4, 10_000 + i));
        frames.push(tagged_syn(43, s6, d6, 20_000 + i));
    }
    inject(lab.attacker_ns(), lab.attacker_if(), frames);
    let (mut v4, mut v6, mut untagged) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && v4 + v6 < 200 {
        src.next_batch(&mut |f| {
            if let Ok(m) = f.decode() {
                let syn = matches!(m.transport, levee_packet::Transport::Tcp { flags, .. } if flags == TcpFlags(0x02));
                match (m.dst, m.vlan) {
                    (d, Some(42)) if d == d4 && syn => v4 += 1,
                    (d, Some(43)) if d == d6 && syn => v6 += 1,
                    (d, _) if d == d4 || d == d6 => untagged += 1,
                    _ => {}
                }
            }
        })
        .expect("batch");
    }
    eprintln!("captured: {v4} IPv4 SYNs on VLAN 42, {v6} IPv6 SYNs on VLAN 43, {untagged} without their tag");
    assert_eq!((v4, v6, untagged), (100, 100, 0));
}
