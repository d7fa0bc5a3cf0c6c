use super::*;
use crate::action::Action;
use crate::build;
use crate::rule::{Community, FlowRule, Rtbh, BLACKHOLE};
use levee_packet::Family;

pub(crate) fn syn_rule() -> Rule {
    let m = &levee_mitigate::matcher::from_family(Family::SynFlood, "203.0.113.7".parse().unwrap())
        .unwrap()[0];
    let mut spec = build::from_match(m).remove(0);
    spec.dst_port = crate::flowspec::ranges(&[(80, 80), (443, 443)]);
    spec.length = crate::flowspec::ranges(&[(40, 60)]);
    Rule::Flow(FlowRule {
        spec,
        actions: vec![Action::RateLimit(12_500_000)],
    })
}

pub(crate) fn dns_tail_rule() -> Rule {
    let ms = levee_mitigate::matcher::from_family(
        Family::DnsAmplification,
        "2001:db8::7".parse().unwrap(),
    )
    .unwrap();
    Rule::Flow(FlowRule {
        spec: build::from_match(&ms[0]).remove(0),
        actions: vec![Action::Discard],
    })
}

pub(crate) fn rtbh() -> Rule {
    Rule::Rtbh(Rtbh {
        prefix: "203.0.113.7/32".parse().unwrap(),
        next_hop: "192.0.2.1".parse().unwrap(),
        communities: vec![BLACKHOLE, Community(65000, 666)],
    })
}

#[test]
fn gobgp_golden() {
    assert_eq!(
        render(&syn_rule(), Format::Gobgp, Op::Announce, "x").unwrap(),
        "gobgp global rib -a ipv4-flowspec add match destination 203.0.113.7/32 protocol ==tcp \
         destination-port '==80 ==443' tcp-flags '=S &!FRPAUEC' packet-length '>=40 &<=60' \
         fragment '!is-fragment' then rate-limit 12500000"
    );
    assert_eq!(
        render(&syn_rule(), Format::Gobgp, Op::Withdraw, "x").unwrap(),
        "gobgp global rib -a ipv4-flowspec del match destination 203.0.113.7/32 protocol ==tcp \
         destination-port '==80 ==443' tcp-flags '=S &!FRPAUEC' packet-length '>=40 &<=60' \
         fragment '!is-fragment'"
    );
    assert_eq!(
        render(&dns_tail_rule(), Format::Gobgp, Op::Announce, "x").unwrap(),
        "gobgp global rib -a ipv6-flowspec add match destination 2001:db8::7/128 protocol ==udp \
         source-port ==53 then discard"
    );
    assert_eq!(
        render(&rtbh(), Format::Gobgp, Op::Announce, "x").unwrap(),
        "gobgp global rib -a ipv4 add 203.0.113.7/32 nexthop 192.0.2.1 community 65535:666,65000:666"
    );
}

#[test]
fn exabgp_golden() {
    assert_eq!(
        render(&syn_rule(), Format::Exabgp, Op::Announce, "x").unwrap(),
        "announce flow route { match { destination 203.0.113.7/32; protocol [ =tcp ]; \
         destination-port [ =80 =443 ]; tcp-flags [ =syn&!fin+rst+push+ack+urg+ece+cwr ]; \
         packet-length [ >=40&<=60 ]; fragment [ !is-fragment ]; } then { rate-limit 12500000; } }"
    );
    assert_eq!(
        render(&dns_tail_rule(), Format::Exabgp, Op::Withdraw, "x").unwrap(),
        "withdraw flow route { match { destination 2001:db8::7/128/0; next-header [ =udp ]; \
         source-port [ =53 ]; } }"
    );
    assert_eq!(
        render(&rtbh(), Format::Exabgp, Op::Announce, "x").unwrap(),
        "announce route 203.0.113.7/32 next-hop 192.0.2.1 community [ 65535:666 65000:666 ]"
    );
}

#[test]
fn bird_golden() {
    assert_eq!(
        render(&syn_rule(), Format::Bird, Op::Announce, "x").unwrap(),
        "route flow4 { dst 203.0.113.7/32; proto = 6; dport = 80 || = 443; length >= 40 && <= 60; \
         tcp flags 0x02/0x02 && 0x00/0xfd; fragment !is_fragment; } \
         { bgp_ext_community.add((generic, 0x80060000, 0x4b3ebc20)); };"
    );
    assert_eq!(
        render(&rtbh(), Format::Bird, Op::Announce, "x").unwrap(),
        "route 203.0.113.7/32 blackhole { bgp_community.add((65535,666)); \
         bgp_community.add((65000,666)); bgp_next_hop = 192.0.2.1; };"
    );
}

#[test]
fn junos_golden() {
    assert_eq!(
        render(&syn_rule(), Format::Junos, Op::Announce, "levee-1").unwrap(),
        "set routing-options flow route levee-1 match destination 203.0.113.7/32\n\
         set routing-options flow route levee-1 match protocol 6\n\
         set routing-options flow route levee-1 match destination-port [ 80 443 ]\n\
         set routing-options flow route levee-1 match packet-length 40-60\n\
         set routing-options flow route levee-1 match tcp-flags \"(syn & !fin & !rst & !push & !ack & !urg & !ece & !cwr)\"\n\
         set routing-options flow route levee-1 match fragment not-a-fragment\n\
         set routing-options flow route levee-1 then rate-limit 100000000"
    );
    assert_eq!(
        render(&dns_tail_rule(), Format::Junos, Op::Withdraw, "levee-2").unwrap(),
        "delete routing-options rib inet6.0 flow route levee-2"
    );
}

#[test]
fn cisco_golden() {
    let c = render(&syn_rule(), Format::Cisco, Op::Announce, "levee-1").unwrap();
    assert!(
        c.starts_with(
            "class-map type traffic match-all levee-1\n \
         match destination-address ipv4 203.0.113.7 255.255.255.255\n \
         match protocol 6\n \
         match destination-port 80 443\n \
         match tcp-flag 0x02 bit-mask 0xff\n \
         match packet length 40-60\n"
        ),
        "{c}"
    );
    assert!(c.contains("  police rate 100000000 bps\n"), "{c}");
    assert!(
        c.ends_with("flowspec\n address-family ipv4\n  service-policy type pbr levee-1"),
        "{c}"
    );
}

#[test]
fn diversions_are_not_speaker_rules() {
    let d = Rule::Divert(crate::rule::Diversion {
        prefix: "203.0.113.0/24".parse().unwrap(),
    });
    for f in Format::ALL {
        let e = render(&d, f, Op::Announce, "x").unwrap_err();
        assert!(e.to_string().contains("scrubbing"), "{e}");
    }
}

#[test]
fn formats_parse() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>(), Ok(f));
    }
    assert!("vyos".parse::<Format>().unwrap_err().contains("exabgp"));
}
