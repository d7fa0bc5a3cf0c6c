//! The real attack captures of the shared corpus (BRIEF "Test data") are
//! classified correctly, through the same path as `levee pcap analyze`.
//!
//! Read in place from `shared/corpus/attacks` (never copied into the repo);
//! see `support/corpus.rs` for how the directory is found, and what happens
//! when it is missing (failure under CI, loud skip elsewhere).

mod support;

use levee_packet::classify::{Family, PortMatch, Variant};
use levee_packet::{analyze_path, Analysis, AnalyzeConfig, IpProtocol, TcpFlags};
use support::corpus;

fn analyze(name: &str) -> Option<Analysis> {
    let path = corpus::attack(name)?;
    Some(
        analyze_path(&path, &AnalyzeConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

fn coverage(a: &Analysis) -> f64 {
    a.fingerprint.as_ref().map_or(0.0, |f| f.coverage)
}

#[test]
fn spoofed_syn_flood() {
    let Some(a) = analyze("stopddos-pkt.TCP.synflood.spoofed.pcap") else {
        return;
    };
    assert_eq!(a.packets, 37_841);
    assert_eq!(a.victim, Some("10.10.10.10".parse().unwrap()));
    assert_eq!(a.family, Some(Family::SynFlood), "{:#?}", a.reasons);
    assert!(a.confidence >= 90, "{}", a.confidence);
    assert!(coverage(&a) >= 0.95);
    let fp = a.fingerprint.as_ref().unwrap();
    assert_eq!(fp.protocol, Some(IpProtocol(6)));
    assert_eq!(fp.tcp_flags, Some(vec![TcpFlags(TcpFlags::SYN)]));
    assert_eq!(fp.dst_ports, Some(vec![PortMatch::Port(25565)]));
    assert_eq!(fp.length, Some([40, 40]));
    assert_eq!(fp.ttl, Some([242, 244]));
    // ~37.6k sources for 37.8k packets, two TTL values: forged.
    let s = a.spoofing.as_ref().unwrap();
    assert!(s.likely && s.score >= 90, "{s:?}");
    assert!(s.distinct_sources > 35_000, "{s:?}");
}

#[test]
fn dns_amplification_with_fragments() {
    let Some(a) = analyze("stopddos-amp.dns.RRSIG.fragmented.pcap") else {
        return;
    };
    assert_eq!(a.packets, 4_412);
    // The victim also has steady TCP traffic (~70% of packets, 14% of bytes):
    // established flows, which must not hide the attack.
    assert_eq!(a.family, Some(Family::DnsAmplification), "{:#?}", a.reasons);
    assert!(a.confidence >= 80, "{}", a.confidence);
    assert!(coverage(&a) >= 0.95);
    let fp = a.fingerprint.as_ref().unwrap();
    assert_eq!(fp.protocol, Some(IpProtocol(17)));
    assert_eq!(fp.src_ports, Some(vec![PortMatch::Port(53)]));
    assert!(
        fp.non_first_fragments,
        "the RRSIG answers arrive fragmented"
    );
    assert!(
        !a.spoofing.as_ref().unwrap().likely,
        "reflectors are real servers"
    );
}

#[test]
fn syn_ack_reflection() {
    let Some(a) = analyze("stopddos-amp.TCP.reflection.SYNACK.pcap") else {
        return;
    };
    assert_eq!(a.packets, 8_000);
    // Mapped to tcp_flag_abuse (see the crate docs for why not syn_flood).
    assert_eq!(a.family, Some(Family::TcpFlagAbuse), "{:#?}", a.reasons);
    assert_eq!(a.variant, Some(Variant::SynAckReflection));
    assert!(a.confidence >= 80, "{}", a.confidence);
    assert!(coverage(&a) >= 0.95);
    let fp = a.fingerprint.as_ref().unwrap();
    assert_eq!(
        fp.tcp_flags,
        Some(vec![TcpFlags(TcpFlags::SYN | TcpFlags::ACK)])
    );
    assert_eq!(
        fp.src_ports,
        Some(vec![PortMatch::Port(80), PortMatch::Port(443)])
    );
    assert!(!a.spoofing.as_ref().unwrap().likely);
}

/// SOURCES.md lists this capture as "memcached UDP traffic (port 11211)", but
/// it holds one TCP session on 127.0.0.1: handshake, the 7-byte `stats`
/// command, a 1,028-byte `STAT ...` answer from port 11211, FIN exchange (10
/// packets; check with `tshark -r ndpi-memcached.pcap`). That is the request
/// memcached amplification abuses, but over TCP, from a host that completed a
/// handshake: nothing was reflected and nothing is forged, so classifying it
/// as `memcached_amplification` would flag every memcached client. It is
/// benign traffic (`traffic_spike`, no fingerprint), and the analysis says
/// where its bytes come from.
#[test]
fn memcached_tcp_session_is_not_amplification() {
    let Some(a) = analyze("ndpi-memcached.pcap") else {
        return;
    };
    assert_eq!(a.packets, 10);
    assert_eq!(a.protocols.get("tcp"), Some(&10));
    assert_eq!(a.family, Some(Family::TrafficSpike), "{:#?}", a.reasons);
    assert!(a.fingerprint.is_none());
    assert!(a.top_source_ports.iter().any(|p| p.port == 11211));
    assert!(
        a.reasons
            .iter()
            .any(|r| r.contains("tcp/11211") && r.contains("memcached")),
        "{:#?}",
        a.reasons
    );
}

#[test]
fn analysis_json_has_the_cli_fields() {
    let Some(a) = analyze("stopddos-amp.dns.RRSIG.fragmented.pcap") else {
        return;
    };
    let v = serde_json::to_value(&a).unwrap();
    for key in [
        "packets",
        "family",
        "confidence",
        "fingerprint",
        "top_sources",
        "protocols",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["family"], "dns_amplification");
    assert_eq!(v["fingerprint"]["protocol"], "udp");
    assert!(v["protocols"]["udp"].as_u64().unwrap() > 1_000);
    assert!(v["top_sources"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn in_memory_and_streamed_reads_agree() {
    let Some(path) = corpus::attack("stopddos-amp.TCP.reflection.SYNACK.pcap") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let cfg = AnalyzeConfig::default();
    let a = levee_packet::analyze_bytes(&bytes, &cfg).unwrap();
    let b = levee_packet::analyze(std::io::Cursor::new(&bytes), &cfg).unwrap();
    assert_eq!(a, b);
}
