//! Levee's BGP engine announcing through a real GoBGP speaker to a second
//! gobgpd acting as the edge router, in lab namespaces (Levee's side in
//! the victim namespace, the edge in the attacker's), with ROAs fetched
//! over RTR from a real stayrtr. Checks what the edge router's RIB holds:
//! FlowSpec rate-limit then discard (IPv4 and IPv6), RTBH with 65535:666,
//! everything withdrawn on resolve and on TTL lapse, foreign and
//! RPKI-invalid destinations refused.

use ipnet::IpNet;
use levee_bgp::config::BgpConfig;
use levee_bgp::engine::BgpEngine;
use levee_bgp::rpki::rtr;
use levee_bgp::speaker::gobgp::GoBgp;
use levee_bgp::testing::{incident, resolved};
use levee_lab::bgp::{GoBgpd, StayRtr, BGP_TOOLS, STAYRTR_TOOLS};
use levee_lab::{require_lab_with, Lab, Ns};
use levee_mitigate::runner::SystemRunner;
use levee_model::EventBody;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn applied(evs: &[EventBody]) -> usize {
    evs.iter()
        .filter(|e| e.kind() == "mitigation_applied")
        .count()
}

fn failed(evs: &[EventBody]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| match e {
            EventBody::MitigationFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn gobgp_speaker_to_edge_router() {
    let mut need = BGP_TOOLS.to_vec();
    need.extend_from_slice(STAYRTR_TOOLS);
    if require_lab_with(&need).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vic = IpAddr::V4(lab.victim_ip());
    let vic6 = lab.victim_ip6().map(IpAddr::V6);
    let (mut edge, _speaker) = GoBgpd::edge_and_speaker(&lab, dir.path(), 50061, 50062).unwrap();

    // ROAs over RTR: the lab's 10.213.0.0/16 and fd00::/8 are AS64500's;
    // 10.99.0.0/24 is someone else's.
    let roas = r#"{"roas":[
        {"prefix":"10.213.0.0/16","maxLength":24,"asn":"AS64500","ta":"lab"},
        {"prefix":"fd00::/8","maxLength":64,"asn":"AS64500","ta":"lab"},
        {"prefix":"10.99.0.0/24","maxLength":24,"asn":"AS64999","ta":"lab"}]}"#;
    let rtr_cache = StayRtr::start(lab.victim_ns(), dir.path(), roas, 8282).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", rtr_cache.port).parse().unwrap();
    let snap = lab
        .run_in(Ns::Victim, move || rtr::fetch(addr, Duration::from_secs(5)))
        .unwrap()
        .unwrap();
    assert_eq!(snap.roas.len(), 3, "stayrtr served every ROA");

    let mut cfg = BgpConfig {
        enabled: true,
        origin_as: 64500,
        prefixes: vec![
            IpNet::new(vic, 24).unwrap().trunc(),
            "fd00::/16".parse().unwrap(),
            "10.99.0.0/24".parse().unwrap(),
        ],
        ..BgpConfig::default()
    };
    cfg.rpki.rtr = Some(addr);
    let speaker = GoBgp::new(
        Box::new(SystemRunner::in_netns(lab.victim_ns())),
        "gobgp",
        Some("127.0.0.1:50062".parse().unwrap()),
    );
    let mut engine = BgpEngine::new(cfg.clone(), Box::new(speaker)).with_roas(snap.roas.clone());
    let host = format!("[destination: {vic}/32]");

    // Level 1: rate-limit to 12.5 MB/s.
    let evs = engine.on_event(
        &EventBody::IncidentStarted(incident("v4", vic, 150e6, "syn_flood")),
        1_000,
    );
    assert_eq!(applied(&evs), 1, "{evs:?}");
    let rib = edge
        .wait_rib("ipv4-flowspec", T, |r| r.contains(&host))
        .unwrap();
    assert!(
        rib.contains("rate: 12500000")
            && rib.contains("[protocol: ==tcp]")
            && rib.contains("tcp-flags: =S"),
        "{rib}"
    );
    // Level 2: discard replaces it.
    let evs = engine.on_event(
        &EventBody::IncidentUpdated(incident("v4", vic, 600e6, "syn_flood")),
        2_000,
    );
    assert_eq!(applied(&evs), 1, "{evs:?}");
    let rib = edge
        .wait_rib("ipv4-flowspec", T, |r| {
            r.contains("discard") && !r.contains("rate:")
        })
        .unwrap();
    assert_eq!(rib.matches(&host).count(), 1, "{rib}");
    // Level 3: RTBH with the BLACKHOLE community (GoBGP shows 65535:666 as "blackhole").
    let evs = engine.on_event(
        &EventBody::IncidentUpdated(incident("v4", vic, 3e9, "syn_flood")),
        3_000,
    );
    assert_eq!(applied(&evs), 1, "{evs:?}");
    let rib = edge
        .wait_rib("ipv4", T, |r| r.contains(&format!("{vic}/32")))
        .unwrap();
    assert!(
        rib.contains("blackhole") && rib.contains("192.0.2.1"),
        "{rib}"
    );

    // IPv6 FlowSpec.
    if let Some(v6) = vic6 {
        let evs = engine.on_event(
            &EventBody::IncidentStarted(incident("v6", v6, 700e6, "syn_flood")),
            3_500,
        );
        assert_eq!(applied(&evs), 1, "{evs:?}");
        let rib = edge
            .wait_rib("ipv6-flowspec", T, |r| r.contains(&format!("{v6}/128")))
            .unwrap();
        assert!(rib.contains("discard"), "{rib}");
        engine.on_event(&resolved("v6", v6, "syn_flood"), 3_600);
        edge.wait_rib("ipv6-flowspec", T, |r| !r.contains(&format!("{v6}/128")))
            .unwrap();
    }

    // Resolve: everything withdrawn from the edge.
    let evs = engine.on_event(&resolved("v4", vic, "syn_flood"), 4_000);
    assert_eq!(
        evs.iter()
            .filter(|e| e.kind() == "mitigation_rolled_back")
            .count(),
        2,
        "{evs:?}"
    );
    edge.wait_rib("ipv4-flowspec", T, |r| !r.contains(&host))
        .unwrap();
    edge.wait_rib("ipv4", T, |r| !r.contains(&format!("{vic}/32")))
        .unwrap();

    // TTL lapse: the attack stops being seen; the rule goes at expiry.
    let ttl = cfg.ttl.as_millis() as i64;
    engine.on_event(
        &EventBody::IncidentStarted(incident("ttl", vic, 700e6, "syn_flood")),
        10_000,
    );
    edge.wait_rib("ipv4-flowspec", T, |r| r.contains(&host))
        .unwrap();
    assert!(engine.tick(10_000 + ttl - 1).is_empty());
    let evs = engine.tick(10_000 + ttl);
    assert!(
        matches!(
            &evs[..],
            [EventBody::MitigationRolledBack { expired: true, .. }]
        ),
        "{evs:?}"
    );
    edge.wait_rib("ipv4-flowspec", T, |r| !r.contains(&host))
        .unwrap();

    // Refused: a foreign destination, and an RPKI-invalid covering prefix.
    let foreign: IpAddr = "192.0.2.9".parse().unwrap();
    let evs = engine.on_event(
        &EventBody::IncidentStarted(incident("f", foreign, 700e6, "syn_flood")),
        20_000,
    );
    let f = failed(&evs);
    assert!(
        f.len() == 1 && f[0].contains("192.0.2.9/32 is not inside the tenant's prefixes"),
        "{f:?}"
    );
    let invalid: IpAddr = "10.99.0.5".parse().unwrap();
    let evs = engine.on_event(
        &EventBody::IncidentStarted(incident("i", invalid, 700e6, "syn_flood")),
        20_000,
    );
    let f = failed(&evs);
    assert!(
        f.len() == 1
            && f[0].contains("10.99.0.0/24 is RPKI-invalid for origin AS64500")
            && f[0].contains("AS64999"),
        "{f:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let rib = edge.rib("ipv4-flowspec").unwrap();
    assert!(
        !rib.contains("192.0.2.9") && !rib.contains("10.99.0.5"),
        "{rib}"
    );
}
