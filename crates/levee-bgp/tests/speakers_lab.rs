//! ExaBGP, BIRD 2 and FRR as Levee's speaker, each in the lab's victim
//! namespace peering with an edge gobgpd in the attacker namespace: the
//! engine's FlowSpec (IPv4 and IPv6) and RTBH announcements reach the edge
//! RIB through the real daemon and are withdrawn on resolve. FRR, which
//! cannot originate FlowSpec, carries the RTBH route and refuses the
//! FlowSpec rule with an event saying why.

use ipnet::IpNet;
use levee_bgp::config::BgpConfig;
use levee_bgp::engine::BgpEngine;
use levee_bgp::rpki::{Roa, RoaSet};
use levee_bgp::speaker::{bird, exabgp, frr, Speaker};
use levee_bgp::testing::{incident, resolved};
use levee_lab::bgp::{
    Bird, ExaBgpd, Frr, GoBgpd, BGP_TOOLS, BIRD_TOOLS, EDGE_AS, EXABGP_TOOLS, FRR_TOOLS, LEVEE_AS,
};
use levee_lab::{require_lab_with, Lab};
use levee_mitigate::runner::SystemRunner;
use levee_model::EventBody;
use std::net::IpAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn engine(lab: &Lab, speaker: Box<dyn Speaker>) -> BgpEngine {
    let vic = IpAddr::V4(lab.victim_ip());
    let cfg = BgpConfig {
        enabled: true,
        origin_as: 64500,
        prefixes: vec![
            IpNet::new(vic, 24).unwrap().trunc(),
            "fd00::/16".parse().unwrap(),
        ],
        ..BgpConfig::default()
    };
    let roas = RoaSet::new(vec![
        Roa {
            prefix: "10.213.0.0/16".parse().unwrap(),
            max_len: 24,
            asn: 64500,
        },
        Roa {
            prefix: "fd00::/8".parse().unwrap(),
            max_len: 64,
            asn: 64500,
        },
    ]);
    BgpEngine::new(cfg, speaker).with_roas(roas)
}

fn ok(evs: &[EventBody]) {
    for e in evs {
        if let EventBody::MitigationFailed { error, .. } = e {
            panic!("mitigation failed: {error}");
        }
    }
}

/// Level 3 for an IPv4 victim (FlowSpec discard + RTBH), level 2 for an
/// IPv6 one; then both resolve.
fn exercise(lab: &Lab, edge: &mut GoBgpd, engine: &mut BgpEngine, rtbh: bool) {
    let vic = IpAddr::V4(lab.victim_ip());
    let host = format!("[destination: {vic}/32]");
    ok(&engine.on_event(
        &EventBody::IncidentStarted(incident("v4", vic, 700e6, "dns_amplification")),
        1_000,
    ));
    let rib = edge
        .wait_rib("ipv4-flowspec", T, |r| r.contains(&host))
        .unwrap();
    assert!(
        rib.contains("discard")
            && rib.contains("[protocol: ==udp]")
            && rib.contains("[source-port: ==53]"),
        "{rib}"
    );
    if rtbh {
        ok(&engine.on_event(
            &EventBody::IncidentUpdated(incident("v4", vic, 3e9, "dns_amplification")),
            2_000,
        ));
        let rib = edge
            .wait_rib("ipv4", T, |r| r.contains(&format!("{vic}/32")))
            .unwrap();
        assert!(rib.contains("blackhole"), "{rib}");
    }
    if let Some(v6) = lab.victim_ip6().map(IpAddr::V6) {
        ok(&engine.on_event(
            &EventBody::IncidentStarted(incident("v6", v6, 700e6, "dns_amplification")),
            2_500,
        ));
        let rib = edge
            .wait_rib("ipv6-flowspec", T, |r| r.contains(&format!("{v6}/128")))
            .unwrap();
        assert!(rib.contains("discard"), "{rib}");
        ok(&engine.on_event(&resolved("v6", v6, "dns_amplification"), 2_600));
        edge.wait_rib("ipv6-flowspec", T, |r| !r.contains(&format!("{v6}/128")))
            .unwrap();
    }
    ok(&engine.on_event(&resolved("v4", vic, "dns_amplification"), 3_000));
    edge.wait_rib("ipv4-flowspec", T, |r| !r.contains(&host))
        .unwrap();
    edge.wait_rib("ipv4", T, |r| !r.contains(&format!("{vic}/32")))
        .unwrap();
}

#[test]
fn exabgp_speaker_to_edge_router() {
    let mut need = BGP_TOOLS.to_vec();
    need.extend_from_slice(EXABGP_TOOLS);
    if require_lab_with(&need).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (vic, att) = (IpAddr::V4(lab.victim_ip()), IpAddr::V4(lab.attacker_ip()));
    let mut edge = GoBgpd::edge(&lab, dir.path(), 50081).unwrap();
    let pipe = dir.path().join("exabgp.cmd");
    let acks = dir.path().join("exabgp.acks");
    exabgp::make_pipe(&pipe).unwrap();
    let mut d = ExaBgpd::start(
        lab.victim_ns(),
        dir.path(),
        (vic, 64500),
        (att, 65000),
        &exabgp::process_script(&pipe, &acks),
    )
    .unwrap();
    if let Err(e) = edge.wait_established(vic, T) {
        panic!("{e}\nexabgp: {}", d.stderr());
    }
    let speaker = exabgp::ExaBgp::open(&pipe, Some(&acks), Duration::from_secs(10)).unwrap();
    let mut engine = engine(&lab, Box::new(speaker));
    exercise(&lab, &mut edge, &mut engine, true);
    d.check().unwrap();
}

#[test]
fn bird_speaker_to_edge_router() {
    let mut need = BGP_TOOLS.to_vec();
    need.extend_from_slice(BIRD_TOOLS);
    if require_lab_with(&need).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (vic, att) = (IpAddr::V4(lab.victim_ip()), IpAddr::V4(lab.attacker_ip()));
    let mut edge = GoBgpd::edge(&lab, dir.path(), 50091).unwrap();
    let inc = dir.path().join("levee");
    let socket = dir.path().join("bird.ctl");
    // The adapter writes its (empty) include files before BIRD starts.
    let speaker = bird::Bird::new(
        Box::new(SystemRunner::in_netns(lab.victim_ns())),
        "birdc",
        Some(&socket),
        &inc,
    )
    .unwrap();
    let conf = format!(
        "router id {vic};\nprotocol device {{ }}\n{}\
         protocol bgp edge {{\n  local {vic} as 64500;\n  neighbor {att} as 65000;\n  connect retry time 1;\n\
           ipv4 {{ import none; export where proto = \"levee_bh4\"; next hop keep; }};\n\
           flow4 {{ table levee_flow4; import none; export all; }};\n\
           flow6 {{ table levee_flow6; import none; export all; }};\n}}\n",
        bird::config_snippet(&inc)
    );
    let mut d = Bird::start(lab.victim_ns(), dir.path(), &conf).unwrap();
    assert_eq!(d.socket, socket);
    edge.wait_established(vic, T).unwrap();
    let mut engine = engine(&lab, Box::new(speaker));
    exercise(&lab, &mut edge, &mut engine, true);
    d.check().unwrap();
}

#[test]
fn frr_speaker_rtbh_to_edge_router() {
    let mut need = BGP_TOOLS.to_vec();
    need.extend_from_slice(FRR_TOOLS);
    if require_lab_with(&need).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (vic, att) = (IpAddr::V4(lab.victim_ip()), IpAddr::V4(lab.attacker_ip()));
    let mut edge = GoBgpd::edge(&lab, dir.path(), 50095).unwrap();
    let mut d = Frr::start(lab.victim_ns(), (vic, LEVEE_AS), (att, EDGE_AS)).unwrap();
    if let Err(e) = edge.wait_established(vic, T) {
        panic!("{e}\nfrr: {:?}", d.check());
    }
    let speaker = frr::Frr::new(
        Box::new(SystemRunner::new()),
        "vtysh",
        Some(d.vty_dir()),
        LEVEE_AS,
    );
    let mut engine = engine(&lab, Box::new(speaker));
    // 3 Gb/s: level 3, FlowSpec discard plus RTBH.
    let evs = engine.on_event(
        &EventBody::IncidentStarted(incident("v4", vic, 3e9, "dns_amplification")),
        1_000,
    );
    let refused: Vec<&String> = evs
        .iter()
        .filter_map(|e| match e {
            EventBody::MitigationFailed { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert!(
        !refused.is_empty()
            && refused
                .iter()
                .all(|e| e.contains("FRR cannot originate BGP FlowSpec")),
        "the FlowSpec rules are refused, the RTBH route is not: {evs:?}"
    );
    let route = format!("{vic}/32");
    let rib = edge.wait_rib("ipv4", T, |r| r.contains(&route)).unwrap();
    let line = rib.lines().find(|l| l.contains(&route)).unwrap();
    assert!(
        // gobgp names 65535:666 (RFC 7999 BLACKHOLE) `blackhole`.
        line.contains("{Communities: blackhole"),
        "the RTBH route carries the BLACKHOLE community: {line}"
    );
    assert!(
        d.show(&format!("show bgp ipv4 unicast {route}"))
            .unwrap()
            .contains("tag 666"),
        "FRR originated it from the tagged static route"
    );
    if let Some(v6) = lab.victim_ip6().map(IpAddr::V6) {
        engine.on_event(
            &EventBody::IncidentStarted(incident("v6", v6, 3e9, "dns_amplification")),
            2_000,
        );
        let r6 = format!("{v6}/128");
        let rib = edge.wait_rib("ipv6", T, |r| r.contains(&r6)).unwrap();
        assert!(rib.contains("{Communities: blackhole"), "{rib}");
        ok(&engine.on_event(&resolved("v6", v6, "dns_amplification"), 2_500));
        edge.wait_rib("ipv6", T, |r| !r.contains(&r6)).unwrap();
    }
    ok(&engine.on_event(&resolved("v4", vic, "dns_amplification"), 3_000));
    edge.wait_rib("ipv4", T, |r| !r.contains(&route)).unwrap();
    assert!(!d.show("show running-config").unwrap().contains(&route));
    d.check().unwrap();
}
