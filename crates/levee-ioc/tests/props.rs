//! Property tests: lookup agrees with a linear scan; parsers never panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use levee_ioc::{parse_str, Format, Indicator, IocSet, Prefix};
use proptest::prelude::*;

/// Prefixes clustered in a small address space so random probes actually hit them.
fn v4_prefix() -> impl Strategy<Value = Prefix> {
    (0u32..=0xff, 0u8..=32).prop_map(|(hi, len)| {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (hi << 16) | (hi * 7)));
        Prefix::new(addr, len).expect("len <= 32")
    })
}

fn v6_prefix() -> impl Strategy<Value = Prefix> {
    (0u128..=0xff, 0u8..=128).prop_map(|(hi, len)| {
        let addr = IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (hi << 80) | hi));
        Prefix::new(addr, len).expect("len <= 128")
    })
}

fn probe() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..=0xffff)
            .prop_map(|x| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (x << 8) | (x & 0xff)))),
        (0u128..=0xffff)
            .prop_map(|x| IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (x << 72) | x))),
        any::<u32>().prop_map(|x| IpAddr::V4(Ipv4Addr::from(x))),
    ]
}

proptest! {
    #[test]
    fn lookup_matches_linear_scan(
        lists in prop::collection::vec(
            prop::collection::vec(prop_oneof![v4_prefix(), v6_prefix()], 0..40), 1..4),
        probes in prop::collection::vec(probe(), 1..30),
    ) {
        let mut b = IocSet::builder();
        for (i, list) in lists.iter().enumerate() {
            let id = b.add_list(&format!("l{i}")).expect("unique");
            for p in list {
                b.insert(id, Indicator { prefix: *p, note: None });
            }
        }
        let set = b.build();
        for ip in probes {
            let mut got: Vec<(String, Prefix)> =
                set.lookup(ip).map(|m| (m.list.to_owned(), m.prefix)).collect();
            // Longest first.
            prop_assert!(got.windows(2).all(|w| w[0].1.len() >= w[1].1.len()));
            got.sort();
            let mut want: Vec<(String, Prefix)> = lists
                .iter()
                .enumerate()
                .flat_map(|(i, l)| l.iter().filter(|p| p.contains(ip)).map(move |p| (format!("l{i}"), *p)))
                .collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn parsers_never_panic(text in "\\PC*", format in prop_oneof![
        Just(Format::Auto), Just(Format::Plain), Just(Format::SpamhausDrop), Just(Format::FireholNetset)
    ]) {
        let (items, report) = parse_str(&text, "fuzz", format);
        prop_assert_eq!(items.len(), report.indicators);
    }

    #[test]
    fn parsers_never_panic_on_listish_bytes(
        lines in prop::collection::vec("[0-9a-f:./; #SBL\\t]{0,40}", 0..30),
        raw in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let text = lines.join("\n");
        let (items, report) = parse_str(&text, "fuzz", Format::Auto);
        prop_assert_eq!(items.len(), report.indicators);
        prop_assert!(report.indicators + report.bad_lines <= report.lines);
        let mut n = 0;
        let r = levee_ioc::parse_reader(&raw[..], "raw", Format::Auto, |_| n += 1).expect("in-memory");
        prop_assert_eq!(n, r.indicators);
    }
}
