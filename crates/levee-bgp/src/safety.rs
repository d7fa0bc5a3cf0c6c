//! The checks before every announcement: the rule's destination lies
//! inside one of the tenant's own prefixes, and that covering prefix is
//! RPKI-valid (RFC 6811) for the tenant's origin AS. Anything else is a
//! [`Refusal`] that says exactly which check failed and with what data.

use crate::rpki::{Roa, RoaSet, Validity};
use crate::rule::Rule;
use ipnet::IpNet;

/// What the tenant owns and originates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub prefixes: Vec<IpNet>,
    pub origin_as: u32,
}

/// Why an announcement was approved: the tenant prefix covering it and
/// the ROA that makes that prefix valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub covering: IpNet,
    pub roa: Roa,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the rule has no destination prefix; every announcement must name one inside the tenant's prefixes")]
    NoDestination,
    #[error("destination {dst} is not inside the tenant's prefixes ({owned})")]
    Foreign { dst: IpNet, owned: String },
    #[error(
        "no ROAs are loaded (configure [bgp.rpki] roa_file or rtr); refusing to announce {dst}"
    )]
    NoRoas { dst: IpNet },
    #[error("covering prefix {covering} is RPKI-invalid for origin AS{origin}: the ROAs covering it are {roas}")]
    Invalid {
        covering: IpNet,
        origin: u32,
        roas: String,
    },
    #[error("covering prefix {covering} is RPKI-not-found: no ROA covers it (origin AS{origin})")]
    NotFound { covering: IpNet, origin: u32 },
}

/// Judges `rule` against what the tenant owns and the ROAs.
pub fn check(rule: &Rule, own: &Ownership, roas: Option<&RoaSet>) -> Result<Approval, Refusal> {
    let dst = rule.destination().ok_or(Refusal::NoDestination)?;
    let covering = own
        .prefixes
        .iter()
        .filter(|p| p.addr().is_ipv4() == dst.addr().is_ipv4() && p.contains(&dst))
        .max_by_key(|p| p.prefix_len())
        .copied()
        .ok_or_else(|| Refusal::Foreign {
            dst,
            owned: if own.prefixes.is_empty() {
                "none configured".into()
            } else {
                own.prefixes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })?;
    let roas = roas
        .filter(|r| !r.is_empty())
        .ok_or(Refusal::NoRoas { dst })?;
    match roas.validate(&covering, own.origin_as) {
        Validity::Valid(roa) => Ok(Approval { covering, roa }),
        Validity::Invalid(list) => Err(Refusal::Invalid {
            covering,
            origin: own.origin_as,
            roas: list
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Validity::NotFound => Err(Refusal::NotFound {
            covering,
            origin: own.origin_as,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Rtbh, BLACKHOLE};

    fn rtbh(p: &str) -> Rule {
        Rule::Rtbh(Rtbh {
            prefix: p.parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![BLACKHOLE],
        })
    }

    fn own() -> Ownership {
        Ownership {
            prefixes: vec![
                "203.0.113.0/24".parse().unwrap(),
                "198.51.100.0/24".parse().unwrap(),
            ],
            origin_as: 64500,
        }
    }

    fn roas() -> RoaSet {
        RoaSet::new(vec![
            Roa {
                prefix: "203.0.113.0/24".parse().unwrap(),
                max_len: 24,
                asn: 64500,
            },
            Roa {
                prefix: "198.51.100.0/24".parse().unwrap(),
                max_len: 24,
                asn: 64999,
            },
        ])
    }

    #[test]
    fn valid_covering_prefix_is_approved() {
        let a = check(&rtbh("203.0.113.7/32"), &own(), Some(&roas())).unwrap();
        assert_eq!(a.covering.to_string(), "203.0.113.0/24");
        assert_eq!(a.roa.asn, 64500);
    }

    #[test]
    fn refusals_say_why() {
        let e = check(&rtbh("192.0.2.7/32"), &own(), Some(&roas())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "destination 192.0.2.7/32 is not inside the tenant's prefixes (203.0.113.0/24, 198.51.100.0/24)"
        );
        let e = check(&rtbh("198.51.100.7/32"), &own(), Some(&roas())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "covering prefix 198.51.100.0/24 is RPKI-invalid for origin AS64500: the ROAs covering it are 198.51.100.0/24-24 AS64999"
        );
        let mut o = own();
        o.prefixes.push("192.0.2.0/24".parse().unwrap());
        let e = check(&rtbh("192.0.2.7/32"), &o, Some(&roas())).unwrap_err();
        assert!(matches!(e, Refusal::NotFound { .. }), "{e}");
        let e = check(&rtbh("203.0.113.7/32"), &own(), None).unwrap_err();
        assert!(e.to_string().contains("no ROAs are loaded"));
    }
}
