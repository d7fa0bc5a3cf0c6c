//! Lab tests of the AF_PACKET sampler: a real TPACKET_V3 socket inside the
//! lab's victim namespace, fed by a bounded hping3 flood from the attacker
//! namespace. Need root, `ip` and `hping3` (skip loudly off CI, fail on CI).

use levee_capture::{
    AfPacketConfig, AfPacketSource, ControllerConfig, PacketSource, SamplingController,
};
use levee_lab::{require_lab, FloodKind, Lab, Ns};
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

#[test]
fn vlan_tags_reach_the_decoder() {
    if require_lab().is_some() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let x = lab.id().subnet_octet();
    let (att_ip, vic_ip) = (format!("10.214.{x}.1"), format!("10.214.{x}.2"));
    // VLAN 42 subinterfaces on the lab's veth, inside the lab namespaces only.
    for (ns, parent, ip) in [
        (Ns::Attacker, lab.attacker_if().to_string(), &att_ip),
        (Ns::Victim, lab.victim_if().to_string(), &vic_ip),
    ] {
        let sub = format!("{parent}.42");
        let cidr = format!("{ip}/30");
        for argv in [
            vec![
                "ip", "link", "add", "link", &parent, "name", &sub, "type", "vlan", "id", "42",
            ],
            vec!["ip", "addr", "add", &cidr, "dev", &sub],
            vec!["ip", "link", "set", &sub, "up"],
        ] {
            if let Err(e) = lab.exec_in(ns, &argv) {
                // A kernel without 802.1Q support (no 8021q module) cannot
                // run this test whatever is installed: skip loudly.
                if e.to_string().contains("Unknown device type") {
                    eprintln!(
                        "\n!!! SKIPPING VLAN CAPTURE TEST: kernel has no 802.1Q support: {e}\n"
                    );
                    return;
                }
                panic!("vlan setup: {e}");
            }
        }
    }
    // Capture on the parent: the tags are stripped by the kernel and must
    // be reinserted.
    let mut src = open_in_netns(lab.victim_ns(), AfPacketConfig::new(lab.victim_if()));
    // 200 SYNs at 1 kpps, bounded by timeout.
    lab.exec_in(
        Ns::Attacker,
        &[
            "timeout", "10", "hping3", "-S", "-p", "80", "-i", "u5000", "-c", "200", "-q", &vic_ip,
        ],
    )
    .ok();
    let (mut tagged, mut total) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        src.next_batch(&mut |f| {
            if let Ok(m) = f.decode() {
                if m.dst.to_string() == vic_ip {
                    total += 1;
                    if m.vlan == Some(42) {
                        tagged += 1;
                    }
                }
            }
        })
        .expect("batch");
    }
    eprintln!("{tagged} of {total} packets to {vic_ip} carried VLAN 42");
    assert!(total >= 100, "only {total} packets to {vic_ip} captured");
    assert_eq!(tagged, total);
}
