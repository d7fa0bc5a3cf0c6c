//! Fingerprint -> XDP rule conversion against levee-packet's own match
//! semantics, on generated frames decoded by levee-packet (no root needed):
//! the covering rule matches at least what the fingerprint matches, and the
//! exact rule set matches exactly that.

mod common;

use levee_packet::decode::decode_ethernet;
use levee_packet::features::{Class, Sample};
use levee_packet::meta::ip_key;
use levee_xdp::{exact_matches, FingerprintMatch};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn covering_and_exact_rules_agree_with_the_fingerprint(
        fp in common::fingerprint(),
        frames in proptest::collection::vec(common::mutated_frame(), 1..16),
    ) {
        let covering = FingerprintMatch::from(&fp);
        let exact = exact_matches(&fp);
        for frame in &frames {
            let Ok(meta) = decode_ethernet(frame) else { continue };
            let sample = Sample::new(&meta, Class::OtherProto, ip_key(meta.src));
            let want = fp.matches(&sample);
            if want {
                prop_assert!(covering.matches(&meta), "covering {covering} misses {meta:?}");
            }
            let got = exact.iter().any(|m| m.matches(&meta));
            prop_assert_eq!(got, want, "exact rules {:?} on {:?}", exact, meta);
        }
    }
}

#[test]
fn syn_flood_fingerprint_becomes_one_narrow_rule() {
    let fp: levee_packet::Fingerprint = serde_json::from_str(
        r#"{"ip_version":4,"protocol":"tcp","src_ports":null,"dst_ports":[80],
            "tcp_flags":["S"],"icmp_types":null,"length":[40,48],"ttl":[240,243],
            "fragment":false,"non_first_fragments":false,"src_prefixes":[],
            "coverage":1.0,"baseline_match":null,"sample_packets":1000}"#,
    )
    .unwrap();
    let m = FingerprintMatch::from(&fp);
    assert_eq!(
        m.to_string(),
        "ipv4 proto 6 dport 80 tcp-flags 0x02/0xff length 40-48 ttl 240-243 unfragmented"
    );
    assert_eq!(exact_matches(&fp), vec![m]);
}

#[test]
fn lists_widen_in_the_covering_rule_and_multiply_in_the_exact_set() {
    let fp: levee_packet::Fingerprint = serde_json::from_str(
        r#"{"ip_version":null,"protocol":"udp","src_ports":[53,123],"dst_ports":[[1024,2048]],
            "tcp_flags":null,"icmp_types":null,"length":null,"ttl":null,
            "fragment":null,"non_first_fragments":true,"src_prefixes":["192.0.2.0/24"],
            "coverage":1.0,"baseline_match":null,"sample_packets":10}"#,
    )
    .unwrap();
    let m = FingerprintMatch::from(&fp);
    assert_eq!(
        m.to_string(),
        "proto 17 sport 53-123 dport 1024-2048 later-fragments"
    );
    let exact: Vec<String> = exact_matches(&fp).iter().map(|m| m.to_string()).collect();
    assert_eq!(
        exact,
        [
            "proto 17 sport 53 dport 1024-2048 later-fragments",
            "proto 17 sport 123 dport 1024-2048 later-fragments"
        ]
    );
    let flags: levee_packet::Fingerprint = serde_json::from_str(
        r#"{"ip_version":4,"protocol":"tcp","src_ports":null,"dst_ports":null,
            "tcp_flags":["S","SA"],"icmp_types":null,"length":null,"ttl":null,
            "fragment":null,"non_first_fragments":false,"src_prefixes":[],
            "coverage":1.0,"baseline_match":null,"sample_packets":10}"#,
    )
    .unwrap();
    // S = 0x02, SA = 0x12: they agree on every bit but ACK.
    assert_eq!(
        FingerprintMatch::from(&flags).to_string(),
        "ipv4 proto 6 tcp-flags 0x02/0xef"
    );
}
