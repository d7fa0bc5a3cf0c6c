//! One announcement Levee makes: a FlowSpec rule with its actions, a
//! remotely triggered black hole route (RFC 7999), or a diversion of a
//! prefix to a scrubbing provider.

use crate::action::Action;
use crate::flowspec::FlowSpec;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A standard community `ASN:VALUE` (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u16, pub u16);

/// RFC 7999's well-known BLACKHOLE community.
pub const BLACKHOLE: Community = Community(65535, 666);

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl FromStr for Community {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("community `{s}`: expected ASN:VALUE with both parts 0..65535, e.g. 65535:666")
        };
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        Ok(Community(
            a.parse().map_err(|_| bad())?,
            b.parse().map_err(|_| bad())?,
        ))
    }
}

impl Serialize for Community {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A FlowSpec rule: what to match and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowRule {
    pub spec: FlowSpec,
    pub actions: Vec<Action>,
}

/// A black hole route: `prefix` with the BLACKHOLE community (and the
/// operator's own), usually towards a discard next hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rtbh {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
    pub communities: Vec<Community>,
}

/// Traffic for `prefix` sent through a scrubbing provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diversion {
    pub prefix: IpNet,
}

// Rules are few (at most a tenant's cap) and built once per escalation:
// boxing the FlowSpec variant would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Rule {
    Flow(FlowRule),
    Rtbh(Rtbh),
    Divert(Diversion),
}

/// See [`Rule::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKey<'a> {
    Flow(&'a FlowSpec),
    Rtbh(IpNet),
    Divert(IpNet),
}

impl Rule {
    /// The destination the rule acts on (what the safety checks judge);
    /// `None` for a FlowSpec rule without a destination component.
    pub fn destination(&self) -> Option<IpNet> {
        match self {
            Rule::Flow(f) => f.spec.dst.map(|p| p.net),
            Rule::Rtbh(r) => Some(r.prefix),
            Rule::Divert(d) => Some(d.prefix),
        }
    }

    /// What identifies the route on the wire (the NLRI): two rules with the
    /// same key are one route, the later announcement replacing the
    /// earlier's attributes (a rate-limit becoming a discard).
    pub fn key(&self) -> RuleKey<'_> {
        match self {
            Rule::Flow(f) => RuleKey::Flow(&f.spec),
            Rule::Rtbh(r) => RuleKey::Rtbh(r.prefix),
            Rule::Divert(d) => RuleKey::Divert(d.prefix),
        }
    }

    /// `flowspec`, `rtbh` or `diversion`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::Flow(_) => "flowspec",
            Rule::Rtbh(_) => "rtbh",
            Rule::Divert(_) => "diversion",
        }
    }

    /// Short words for events: `flowspec discard`, `rtbh`, ...
    pub fn describe(&self) -> String {
        match self {
            Rule::Flow(f) => {
                let a: Vec<String> = f.actions.iter().map(Action::describe).collect();
                format!("flowspec {}", a.join(", "))
            }
            Rule::Rtbh(r) => format!("rtbh {} next-hop {}", r.prefix, r.next_hop),
            Rule::Divert(d) => format!("diversion {}", d.prefix),
        }
    }
}
