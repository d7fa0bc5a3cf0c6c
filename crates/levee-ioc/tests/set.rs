//! IocSet: longest-prefix-first, multi-list and IPv6 matches.

use std::net::IpAddr;

use levee_ioc::{parse_str, Format, IocSet, Match};

fn set_of(lists: &[(&str, &str)]) -> IocSet {
    let mut b = IocSet::builder();
    for (name, text) in lists {
        let id = b.add_list(name).expect("unique names");
        let report = b
            .add_reader(id, text.as_bytes(), name, Format::Auto)
            .expect("in-memory read");
        assert_eq!(report.bad_lines, 0, "{report:?}");
    }
    b.build()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn summary(ms: Vec<Match<'_>>) -> Vec<String> {
    ms.iter()
        .map(|m| match m.note {
            Some(n) => format!("{} {} {n}", m.list, m.prefix),
            None => format!("{} {}", m.list, m.prefix),
        })
        .collect()
}

#[test]
fn every_list_and_nested_prefix_longest_first() {
    let set = set_of(&[
        ("drop", "1.10.16.0/20 ; SBL256894\n"),
        ("firehol", "# FireHOL\n1.0.0.0/8\n1.10.16.0/20\n"),
        ("own", "1.10.16.7\n9.9.9.9\n"),
    ]);
    assert_eq!(
        summary(set.lookup(ip("1.10.16.7")).collect()),
        [
            "own 1.10.16.7/32",
            "drop 1.10.16.0/20 SBL256894",
            "firehol 1.10.16.0/20",
            "firehol 1.0.0.0/8",
        ]
    );
    assert_eq!(
        summary(set.lookup(ip("1.200.0.1")).collect()),
        ["firehol 1.0.0.0/8"]
    );
    assert_eq!(set.lookup(ip("8.8.8.8")).count(), 0);
    assert_eq!(set.list_len("firehol"), Some(2));
    assert_eq!(set.list_len("nope"), None);
    assert_eq!(set.len(), 5);
}

#[test]
fn ipv6_and_families_do_not_mix() {
    let set = set_of(&[
        ("dropv6", "2001:678:738::/48 ; SBL591107\n"),
        ("v4", "0.0.0.0/0\n"),
        ("v6all", "::/0\n"),
    ]);
    assert_eq!(
        summary(set.lookup(ip("2001:678:738:1::5")).collect()),
        ["dropv6 2001:678:738::/48 SBL591107", "v6all ::/0"]
    );
    assert_eq!(
        summary(set.lookup(ip("2001:678:739::1")).collect()),
        ["v6all ::/0"]
    );
    assert_eq!(
        summary(set.lookup(ip("192.0.2.1")).collect()),
        ["v4 0.0.0.0/0"]
    );
}

#[test]
fn duplicates_in_one_list_count_once() {
    let set = set_of(&[("a", "10.0.0.0/8\n10.1.2.3/8\n10.0.0.0/8\n")]);
    assert_eq!(set.len(), 1);
    assert_eq!(set.lookup(ip("10.9.9.9")).count(), 1);
}

#[test]
fn match_sources_reports_only_listed_sources_in_order() {
    let set = set_of(&[
        ("drop", "1.10.16.0/20 ; SBL256894\n"),
        ("own", "2001:db8::/32\n"),
    ]);
    let sources = [ip("8.8.8.8"), ip("2001:db8::1"), ip("1.10.20.1")];
    let got = set.match_sources(&sources);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, ip("2001:db8::1"));
    assert_eq!(got[0].1[0].list, "own");
    assert_eq!(got[1].0, ip("1.10.20.1"));
    assert_eq!(got[1].1[0].note, Some("SBL256894"));
}

#[test]
fn duplicate_list_names_are_refused() {
    let mut b = IocSet::builder();
    b.add_list("x").expect("first");
    assert!(b.add_list("x").is_err());
}

#[test]
fn empty_set_matches_nothing() {
    let set = IocSet::builder().build();
    assert!(set.is_empty());
    assert_eq!(set.lookup(ip("::1")).count(), 0);
    let (items, _) = parse_str("", "empty", Format::Auto);
    assert!(items.is_empty());
}
