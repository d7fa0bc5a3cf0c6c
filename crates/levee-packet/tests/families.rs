//! Every family, on synthetic traffic built with etherparse: the verdict, a
//! usable confidence, and a fingerprint covering >= 95% of the attack.

mod support;

use levee_packet::classify::{Family, PortMatch, Variant};
use levee_packet::{IpProtocol, TcpFlags};
use support::frames::*;

const N: usize = 3000;

fn assert_attack(c: &levee_packet::Classification, family: Family) {
    assert_eq!(c.family, family, "{c:#?}");
    assert!(
        c.confidence >= 60,
        "confidence {} for {family}: {c:#?}",
        c.confidence
    );
    let fp = c.fingerprint.as_ref().expect("attacks have a fingerprint");
    assert!(fp.coverage >= 0.95, "coverage {}", fp.coverage);
}

#[test]
fn syn_flood_spoofed() {
    let mut r = Lcg(1);
    let c = classify_frames(
        (0..N).map(|_| tcp(r.ip(), r.port(), 80, "S", 0, 240 + (r.next() % 3) as u8)),
    );
    assert_attack(&c, Family::SynFlood);
    let fp = c.fingerprint.as_ref().unwrap();
    assert_eq!(fp.tcp_flags, Some(vec![TcpFlags(TcpFlags::SYN)]));
    assert_eq!(fp.dst_ports, Some(vec![PortMatch::Port(80)]));
    assert!(
        c.spoofing.likely && c.spoofing.score >= 90,
        "{:?}",
        c.spoofing
    );
}

#[test]
fn syn_flood_from_one_host_is_still_syn_flood() {
    // hping3 -S --flood without --rand-source: one address, port-hopping.
    let c = classify_frames((0..N).map(|i| tcp([192, 0, 2, 9], 1024 + i as u16, 80, "S", 0, 64)));
    assert_attack(&c, Family::SynFlood);
    assert!(!c.spoofing.likely);
}

#[test]
fn ack_flood() {
    let mut r = Lcg(2);
    let c = classify_frames((0..N).map(|_| tcp(r.ip(), r.port(), 443, "A", 0, 50)));
    assert_attack(&c, Family::AckFlood);
}

#[test]
fn ack_flood_from_one_port_hopping_host() {
    let c = classify_frames((0..N).map(|i| tcp([192, 0, 2, 9], 2000 + i as u16, 80, "A", 0, 64)));
    assert_attack(&c, Family::AckFlood);
}

#[test]
fn rst_flood() {
    let mut r = Lcg(3);
    let c = classify_frames((0..N).map(|_| tcp(r.ip(), r.port(), 22, "R", 0, 60)));
    assert_attack(&c, Family::RstFlood);
}

#[test]
fn xmas_and_null_are_flag_abuse() {
    let mut r = Lcg(4);
    let c = classify_frames((0..N).map(|i| {
        tcp(
            r.ip(),
            r.port(),
            80,
            if i % 2 == 0 { "FPU" } else { "" },
            0,
            60,
        )
    }));
    assert_attack(&c, Family::TcpFlagAbuse);
    assert_eq!(c.variant, None);
    let flags = c.fingerprint.unwrap().tcp_flags.unwrap();
    assert_eq!(flags, vec![TcpFlags(0), TcpFlags(0x29)]);
}

#[test]
fn syn_ack_reflection_is_flag_abuse_variant() {
    let mut r = Lcg(5);
    let c = classify_frames((0..N).map(|i| {
        tcp(
            r.ip(),
            if i % 5 == 0 { 443 } else { 80 },
            r.port(),
            "SA",
            0,
            50,
        )
    }));
    assert_attack(&c, Family::TcpFlagAbuse);
    assert_eq!(c.variant, Some(Variant::SynAckReflection));
    assert!(!c.spoofing.likely, "reflectors are real hosts");
    let fp = c.fingerprint.unwrap();
    assert_eq!(
        fp.src_ports,
        Some(vec![PortMatch::Port(80), PortMatch::Port(443)])
    );
}

#[test]
fn udp_flood() {
    let mut r = Lcg(6);
    let payload = vec![0u8; 512];
    let c = classify_frames((0..N).map(|_| {
        let dport = r.port();
        udp(r.ip(), r.port(), dport, &payload, 55)
    }));
    assert_attack(&c, Family::UdpFlood);
    assert_eq!(c.fingerprint.unwrap().protocol, Some(IpProtocol(17)));
}

#[test]
fn icmp_flood() {
    let mut r = Lcg(7);
    let c = classify_frames((0..N).map(|_| icmp_echo(r.ip(), 56, 64)));
    assert_attack(&c, Family::IcmpFlood);
    assert_eq!(c.fingerprint.unwrap().icmp_types, Some(vec![8]));
}

/// Regression (lab, 2026-11-21): hping3 `--udp -f` hops source ports, so a
/// few first fragments come from port 1900 or 53; the later fragments were
/// attributed to that "amplification" and the flood called ssdp_amplification.
#[test]
fn fragment_flood_passing_through_a_service_port_is_not_amplification() {
    let mut r = Lcg(81);
    let payload = vec![0u8; 1400];
    let mut i = 0u32;
    let c = classify_frames((0..N / 3).flat_map(|_| {
        i += 1;
        let src = r.ip();
        let sport = if i % 40 == 0 { 1900 } else { r.port() };
        vec![
            udp_first_fragment(src, sport, 9999, &payload, 64),
            raw_ip(src, 17, 1480, 64, Some((185, true))),
            raw_ip(src, 17, 600, 64, Some((370, false))),
        ]
    }));
    assert_attack(&c, Family::IpFragmentFlood);
}

#[test]
fn ip_fragment_flood() {
    // UDP datagrams from random ports, each split into a first and two later
    // fragments (hping3 --udp -f style).
    let mut r = Lcg(8);
    let payload = vec![0u8; 1400];
    let c = classify_frames((0..N / 3).flat_map(|_| {
        let src = r.ip();
        let sport = r.port();
        vec![
            udp_first_fragment(src, sport, 80, &payload, 64),
            raw_ip(src, 17, 1480, 64, Some((185, true))),
            raw_ip(src, 17, 600, 64, Some((370, false))),
        ]
    }));
    assert_attack(&c, Family::IpFragmentFlood);
    let fp = c.fingerprint.unwrap();
    assert_eq!(fp.fragment, Some(true));
    assert!(fp.non_first_fragments);
}

/// Reflectors: `n` fixed addresses.
fn reflectors(n: usize) -> Vec<[u8; 4]> {
    let mut r = Lcg(99);
    (0..n).map(|_| r.ip()).collect()
}

fn amplification(port: u16, payload: &[u8], family: Family) {
    let refl = reflectors(200);
    let mut r = Lcg(u64::from(port));
    let c = classify_frames((0..N).map(|i| {
        udp(
            refl[i % refl.len()],
            port,
            r.port(),
            payload,
            40 + (i % 30) as u8,
        )
    }));
    assert_attack(&c, family);
    assert!(c.confidence >= 80, "{c:#?}");
    let fp = c.fingerprint.unwrap();
    assert_eq!(fp.src_ports, Some(vec![PortMatch::Port(port)]));
    assert!(c.spoofing.score <= 15);
}

#[test]
fn dns_amplification() {
    amplification(53, &dns_response(1200), Family::DnsAmplification);
}

#[test]
fn ntp_amplification() {
    let mut p = vec![0u8; 440];
    p[0] = 0xd7; // response, version 2, mode 7 (monlist)
    amplification(123, &p, Family::NtpAmplification);
}

#[test]
fn memcached_amplification() {
    let mut p = b"\0\x01\0\0\0\x01\0\0VALUE a 0 1024\r\n".to_vec();
    p.resize(1400, b'x');
    amplification(11211, &p, Family::MemcachedAmplification);
}

#[test]
fn ssdp_amplification() {
    let mut p = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n".to_vec();
    p.resize(300, b' ');
    amplification(1900, &p, Family::SsdpAmplification);
}

#[test]
fn cldap_amplification() {
    let mut p = vec![0x30, 0x84, 0, 0, 0x0b, 0xb4];
    p.resize(1400, 0);
    amplification(389, &p, Family::CldapAmplification);
}

#[test]
fn snmp_amplification() {
    let mut p = vec![0x30, 0x82, 0x05, 0xdc];
    p.resize(1400, 0);
    amplification(161, &p, Family::SnmpAmplification);
}

#[test]
fn chargen_amplification() {
    let p: Vec<u8> = (0..1000).map(|i| b'!' + (i % 94) as u8).collect();
    amplification(19, &p, Family::ChargenAmplification);
}

#[test]
fn other_reflection_ports() {
    let p = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope>".repeat(10);
    amplification(3702, &p, Family::UdpReflectionOther);
}

#[test]
fn amplification_port_without_the_protocol_loses_confidence() {
    // Random bytes from port 53: DNS by port only.
    let refl = reflectors(200);
    let mut r = Lcg(12);
    let junk = vec![0u8; 800];
    let c = classify_frames((0..N).map(|i| udp(refl[i % refl.len()], 53, r.port(), &junk, 50)));
    assert_eq!(c.family, Family::DnsAmplification);
    assert!(c.confidence < 80, "{}", c.confidence);
}

#[test]
fn dns_amplification_with_fragments() {
    // Large answers split in two: first fragments carry port 53, the later
    // fragments have no ports but belong to the same attack.
    let refl = reflectors(100);
    let mut r = Lcg(13);
    let answer = dns_response(1472);
    let c = classify_frames((0..N / 2).flat_map(|i| {
        let src = refl[i % refl.len()];
        vec![
            udp_first_fragment(src, 53, r.port(), &answer, 50),
            raw_ip(src, 17, 1200, 50, Some((185, false))),
        ]
    }));
    assert_attack(&c, Family::DnsAmplification);
    let fp = c.fingerprint.unwrap();
    assert!(fp.non_first_fragments);
    assert_eq!(fp.src_ports, Some(vec![PortMatch::Port(53)]));
}

#[test]
fn gre_is_ip_protocol_flood() {
    let mut r = Lcg(14);
    let c = classify_frames((0..N).map(|_| raw_ip(r.ip(), 47, 500, 64, None)));
    assert_attack(&c, Family::IpProtocolFlood);
    assert_eq!(c.fingerprint.unwrap().protocol, Some(IpProtocol(47)));
}

#[test]
fn two_vectors_are_multi_vector() {
    let refl = reflectors(100);
    let mut r = Lcg(15);
    let answer = dns_response(1200);
    let c = classify_frames((0..N).map(|i| {
        if i % 2 == 0 {
            tcp(r.ip(), r.port(), 80, "S", 0, 240)
        } else {
            udp(refl[i % refl.len()], 53, r.port(), &answer, 50)
        }
    }));
    assert_eq!(c.family, Family::MultiVector, "{c:#?}");
    let fp = c.fingerprint.unwrap();
    assert_eq!(fp.any_of.len(), 2);
    assert!(fp.coverage >= 0.95);
    assert!(fp.any_of.iter().all(|f| f.coverage >= 0.95));
    let json = serde_json::to_value(&fp).unwrap();
    assert!(json["any_of"].is_array());
}

#[test]
fn minor_second_vector_stays_single_family() {
    // 90% SYN, 10% ICMP: below the 20% multi-vector threshold.
    let mut r = Lcg(16);
    let c = classify_frames((0..N).map(|i| {
        if i % 10 == 0 {
            icmp_echo(r.ip(), 56, 64)
        } else {
            tcp(r.ip(), r.port(), 80, "S", 0, 64)
        }
    }));
    assert_eq!(c.family, Family::SynFlood);
}

/// iperf3-like bulk transfer: a handful of connections, full handshakes,
/// then data segments.
fn bulk_transfer(client: [u8; 4], conns: u16, per_conn: usize) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for c in 0..conns {
        let sport = 40_000 + c;
        v.push(tcp(client, sport, 5201, "S", 0, 64));
        v.push(tcp(client, sport, 5201, "A", 0, 64));
        for i in 0..per_conn {
            v.push(tcp(
                client,
                sport,
                5201,
                if i % 8 == 0 { "PA" } else { "A" },
                1448,
                64,
            ));
        }
        v.push(tcp(client, sport, 5201, "FA", 0, 64));
    }
    v
}

/// wrk-like HTTP load: keep-alive connections from a few clients, requests
/// with payload and ACKs.
fn http_load(clients: &[[u8; 4]], conns: u16, requests: usize) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (k, &client) in clients.iter().enumerate() {
        for c in 0..conns {
            let sport = 30_000 + c + 1000 * k as u16;
            v.push(tcp(client, sport, 80, "S", 0, 64));
            v.push(tcp(client, sport, 80, "A", 0, 64));
            for _ in 0..requests {
                v.push(tcp(client, sport, 80, "PA", 120, 64));
                v.push(tcp(client, sport, 80, "A", 0, 64));
            }
        }
    }
    v
}

#[test]
fn bulk_transfer_is_traffic_spike() {
    let c = classify_frames(bulk_transfer([10, 0, 0, 2], 4, 800));
    assert_eq!(c.family, Family::TrafficSpike, "{c:#?}");
    assert!(c.fingerprint.is_none(), "benign traffic gets no rule");
    assert!(c.confidence >= 80);
}

#[test]
fn http_load_is_traffic_spike() {
    let c = classify_frames(http_load(&[[10, 0, 0, 2], [10, 0, 0, 3]], 50, 15));
    assert_eq!(c.family, Family::TrafficSpike, "{c:#?}");
    assert!(c.fingerprint.is_none());
}

#[test]
fn short_http_connections_are_traffic_spike() {
    // No keep-alive: one request per connection, so SYNs are ~20% of the
    // packets; the handshakes complete, so they are not a SYN flood.
    let c = classify_frames(http_load(&[[10, 0, 0, 2]], 600, 1));
    assert_eq!(c.family, Family::TrafficSpike, "{c:#?}");
}

#[test]
fn baseline_separates_attack_from_background() {
    // Background: established HTTP traffic, the same in both windows. The
    // attack adds SYNs worth 15% of the packets: too little to stand out
    // without a baseline, clear with one.
    let background = http_load(&[[10, 0, 0, 2], [10, 0, 0, 3]], 40, 40);
    let mut r = Lcg(17);
    let syns: Vec<Vec<u8>> = (0..background.len() * 15 / 85)
        .map(|_| tcp(r.ip(), r.port(), 80, "S", 0, 244))
        .collect();
    let mut attack = background.clone();
    // Interleave so both windows span the same time.
    let step = attack.len() / syns.len();
    for (i, s) in syns.into_iter().enumerate() {
        attack.insert(i * (step + 1), s);
    }
    let without = classify_frames(attack.clone());
    assert_eq!(without.family, Family::TrafficSpike, "{without:#?}");
    // Same duration: the attack window has more packets at the same spacing,
    // so scale the baseline window to the same length by repeating it.
    let mut base = background.clone();
    base.extend(
        background
            .iter()
            .take(attack.len() - background.len())
            .cloned(),
    );
    let with = classify_with_baseline(attack, Some(base));
    assert_attack(&with, Family::SynFlood);
    let fp = with.fingerprint.unwrap();
    assert_eq!(
        fp.baseline_match,
        Some(0.0),
        "the background has no bare SYN at TTL 244"
    );
}

#[test]
fn ipv6_over_qinq() {
    let mut r = Lcg(18);
    let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let c = classify_frames((0..N).map(|_| {
        let mut src = [0u8; 16];
        src[..8].copy_from_slice(&r.next().to_be_bytes());
        src[8..].copy_from_slice(&r.next().to_be_bytes());
        src[0] = 0x24;
        tcp6_qinq(src, dst, r.port(), 443, true, 60)
    }));
    assert_attack(&c, Family::SynFlood);
    assert_eq!(c.fingerprint.unwrap().ip_version, Some(6));
}

#[test]
fn classification_fills_incident_fields() {
    let mut r = Lcg(19);
    let c = classify_frames((0..500).map(|_| tcp(r.ip(), r.port(), 80, "S", 0, 64)));
    let mut info = levee_model::IncidentInfo {
        incident_id: "x".into(),
        target: "10.0.0.1".into(),
        metric: "rx_pps".into(),
        value: 1.0,
        baseline: 1.0,
        ratio: 1.0,
        threshold: 1.0,
        metrics: vec![],
        started_at: "2026-01-01T00:00:00.000Z".into(),
        family: None,
        confidence: None,
        fingerprint: None,
        details: Default::default(),
    };
    c.apply_to(&mut info);
    assert_eq!(info.family.as_deref(), Some("syn_flood"));
    assert_eq!(info.confidence, Some(c.confidence));
    let fp = info.fingerprint.unwrap();
    assert_eq!(fp["protocol"], "tcp");
    assert_eq!(fp["tcp_flags"], serde_json::json!(["S"]));
    assert!(fp["coverage"].as_f64().unwrap() >= 0.95);
}
