//! What a router does with traffic matching a FlowSpec rule (RFC 8955 §7):
//! traffic-rate (0 = discard), redirect to a VRF by route target, DSCP
//! marking; each is an 8-byte extended community on the announcement.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A route target naming the VRF a redirect sends traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// `ASN:N` with a 2-byte AS (type 0x8008).
    As2 { asn: u16, value: u32 },
    /// `A.B.C.D:N` (type 0x8108).
    Ip { addr: Ipv4Addr, value: u16 },
    /// `ASN:N` with a 4-byte AS (type 0x8208).
    As4 { asn: u32, value: u16 },
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::As2 { asn, value } => write!(f, "{asn}:{value}"),
            RouteTarget::Ip { addr, value } => write!(f, "{addr}:{value}"),
            RouteTarget::As4 { asn, value } => write!(f, "{asn}:{value}"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("route target `{s}`: expected ASN:N (e.g. 65000:100) or IPv4:N (e.g. 192.0.2.1:100)")
        };
        let (a, v) = s.rsplit_once(':').ok_or_else(bad)?;
        if let Ok(addr) = a.parse::<Ipv4Addr>() {
            return Ok(RouteTarget::Ip {
                addr,
                value: v.parse().map_err(|_| bad())?,
            });
        }
        let asn: u32 = a.parse().map_err(|_| bad())?;
        match u16::try_from(asn) {
            Ok(asn) => Ok(RouteTarget::As2 {
                asn,
                value: v.parse().map_err(|_| bad())?,
            }),
            Err(_) => Ok(RouteTarget::As4 {
                asn,
                value: v.parse().map_err(|_| bad())?,
            }),
        }
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A FlowSpec traffic action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Action {
    /// traffic-rate 0.
    Discard,
    /// traffic-rate-bytes: at most this many bytes per second.
    RateLimit(u64),
    /// redirect to the VRF with this route target.
    Redirect(RouteTarget),
    /// traffic-marking: rewrite DSCP to this value (0..=63).
    Mark(u8),
}

impl Action {
    /// The extended community (RFC 8955 §7, RFC 7674 for the IPv4/4-byte AS
    /// redirect forms). The rate is an IEEE 754 single, as the RFC says.
    pub fn ext_community(&self) -> [u8; 8] {
        let mut c = [0u8; 8];
        match *self {
            Action::Discard | Action::RateLimit(_) => {
                c[0] = 0x80;
                c[1] = 0x06;
                let rate = match *self {
                    Action::RateLimit(r) => r as f32,
                    _ => 0.0,
                };
                c[4..].copy_from_slice(&rate.to_be_bytes());
            }
            Action::Redirect(rt) => match rt {
                RouteTarget::As2 { asn, value } => {
                    c[..2].copy_from_slice(&[0x80, 0x08]);
                    c[2..4].copy_from_slice(&asn.to_be_bytes());
                    c[4..].copy_from_slice(&value.to_be_bytes());
                }
                RouteTarget::Ip { addr, value } => {
                    c[..2].copy_from_slice(&[0x81, 0x08]);
                    c[2..6].copy_from_slice(&addr.octets());
                    c[6..].copy_from_slice(&value.to_be_bytes());
                }
                RouteTarget::As4 { asn, value } => {
                    c[..2].copy_from_slice(&[0x82, 0x08]);
                    c[2..6].copy_from_slice(&asn.to_be_bytes());
                    c[6..].copy_from_slice(&value.to_be_bytes());
                }
            },
            Action::Mark(d) => {
                c[0] = 0x80;
                c[1] = 0x09;
                c[7] = d & 0x3f;
            }
        }
        c
    }

    /// Short words for events: `discard`, `rate-limit 12500000`, ...
    pub fn describe(&self) -> String {
        match self {
            Action::Discard => "discard".into(),
            Action::RateLimit(r) => format!("rate-limit {r} bytes/s"),
            Action::Redirect(rt) => format!("redirect {rt}"),
            Action::Mark(d) => format!("mark dscp {d}"),
        }
    }
}

impl FromStr for Action {
    type Err = String;
    /// `discard`, `rate-limit=BYTES_PER_S`, `redirect=RT`, `mark=DSCP`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s.split_once('=').unwrap_or((s, ""));
        let need = |what: &str| format!("action `{s}`: {what}");
        match k {
            "discard" | "drop" if v.is_empty() => Ok(Action::Discard),
            "rate-limit" => v
                .parse()
                .map(Action::RateLimit)
                .map_err(|_| need("expected rate-limit=BYTES_PER_S, e.g. rate-limit=1250000")),
            "redirect" => v.parse().map(Action::Redirect),
            "mark" => match v.parse::<u8>() {
                Ok(d) if d < 64 => Ok(Action::Mark(d)),
                _ => Err(need("expected mark=DSCP with DSCP 0..63")),
            },
            _ => Err(need(
                "expected discard, rate-limit=BYTES_PER_S, redirect=ASN:N or mark=DSCP",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities() {
        assert_eq!(Action::Discard.ext_community(), [0x80, 6, 0, 0, 0, 0, 0, 0]);
        // 12,500,000 bytes/s (100 Mbit/s) as an IEEE single: 0x4B3EBC20.
        assert_eq!(
            Action::RateLimit(12_500_000).ext_community(),
            [0x80, 6, 0, 0, 0x4b, 0x3e, 0xbc, 0x20]
        );
        assert_eq!(
            Action::Redirect("65000:100".parse().unwrap()).ext_community(),
            [0x80, 8, 0xfd, 0xe8, 0, 0, 0, 100]
        );
        assert_eq!(
            Action::Redirect("192.0.2.1:7".parse().unwrap()).ext_community(),
            [0x81, 8, 192, 0, 2, 1, 0, 7]
        );
        assert_eq!(
            Action::Redirect("4200000000:7".parse().unwrap()).ext_community(),
            [0x82, 8, 0xfa, 0x56, 0xea, 0, 0, 7]
        );
        assert_eq!(
            Action::Mark(46).ext_community(),
            [0x80, 9, 0, 0, 0, 0, 0, 46]
        );
    }

    #[test]
    fn parse_actions() {
        assert_eq!("discard".parse::<Action>(), Ok(Action::Discard));
        assert_eq!(
            "rate-limit=1000".parse::<Action>(),
            Ok(Action::RateLimit(1000))
        );
        assert_eq!("mark=10".parse::<Action>(), Ok(Action::Mark(10)));
        assert!("mark=64".parse::<Action>().unwrap_err().contains("0..63"));
        assert!("redirect=x"
            .parse::<Action>()
            .unwrap_err()
            .contains("ASN:N"));
        assert!("explode".parse::<Action>().is_err());
    }
}
