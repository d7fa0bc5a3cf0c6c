//! Blocking in an allow-only firewall. Some cloud firewalls (Vultr) can
//! only accept: traffic no rule accepts is dropped. "Block these sources"
//! then means "accept, from each accepting rule's range, everything but
//! them": the range minus the blocked prefixes, as the fewest prefixes
//! that cover exactly what is left (pure, property-tested).

use ipnet::IpNet;

/// `allowed` minus every prefix in `blocked`, as disjoint prefixes in
/// address order.
pub fn subtract(allowed: IpNet, blocked: &[IpNet]) -> Vec<IpNet> {
    let allowed = allowed.trunc();
    let relevant: Vec<IpNet> = blocked
        .iter()
        .map(IpNet::trunc)
        .filter(|b| b.addr().is_ipv4() == allowed.addr().is_ipv4())
        .filter(|b| b.contains(&allowed) || allowed.contains(b))
        .collect();
    let mut out = Vec::new();
    walk(allowed, &relevant, &mut out);
    out
}

fn walk(net: IpNet, blocked: &[IpNet], out: &mut Vec<IpNet>) {
    if blocked.iter().any(|b| b.contains(&net)) {
        return;
    }
    let inside: Vec<IpNet> = blocked
        .iter()
        .copied()
        .filter(|b| net.contains(b))
        .collect();
    if inside.is_empty() {
        out.push(net);
        return;
    }
    // Some blocked prefix is strictly inside: split in two and recurse.
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        return;
    };
    for half in halves {
        walk(half, &inside, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn the_internet_minus_one_slash_24_is_24_prefixes() {
        let rest = subtract(n("0.0.0.0/0"), &[n("198.51.100.0/24")]);
        assert_eq!(rest.len(), 24);
        assert_eq!(rest[0], n("0.0.0.0/1"));
        assert!(!rest.iter().any(|r| r.contains(&n("198.51.100.7/32"))));
        assert!(rest.iter().any(|r| r.contains(&n("198.51.101.0/32"))));
    }

    #[test]
    fn unrelated_blocks_leave_the_range_and_covering_ones_empty_it() {
        assert_eq!(
            subtract(n("10.0.0.0/8"), &[n("192.0.2.0/24"), n("2001:db8::/32")]),
            vec![n("10.0.0.0/8")]
        );
        assert!(subtract(n("10.1.0.0/16"), &[n("10.0.0.0/8")]).is_empty());
    }

    proptest! {
        #[test]
        fn membership_is_exactly_allowed_and_not_blocked(
            a in any::<u32>(), alen in 0u8..=32,
            blocks in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..5),
            probes in proptest::collection::vec(any::<u32>(), 64),
        ) {
            let allowed = IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), alen).unwrap().trunc();
            // Half the blocked prefixes drawn inside `allowed`, so overlaps happen.
            let blocked: Vec<IpNet> = blocks.iter().enumerate().map(|(i, (b, l))| {
                let start = match allowed.addr() { IpAddr::V4(v) => u32::from(v), IpAddr::V6(_) => 0 };
                let base = if i % 2 == 0 { start | (b >> alen.min(31)) } else { *b };
                IpNet::new(IpAddr::V4(Ipv4Addr::from(base)), *l).unwrap().trunc()
            }).collect();
            let rest = subtract(allowed, &blocked);
            for w in rest.windows(2) {
                prop_assert!(!w[0].contains(&w[1]) && !w[1].contains(&w[0]));
            }
            for p in probes.iter().chain(blocks.iter().map(|(b, _)| b)) {
                let ip = IpNet::from(IpAddr::V4(Ipv4Addr::from(*p)));
                let want = allowed.contains(&ip) && !blocked.iter().any(|b| b.contains(&ip));
                let got = rest.iter().any(|r| r.contains(&ip));
                prop_assert_eq!(got, want, "{} allowed {} blocked {:?} rest {:?}", ip, allowed, blocked, rest);
            }
        }
    }
}
