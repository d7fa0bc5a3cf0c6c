//! What Levee asks of a provider ([`ProviderAction`]) and what it keeps to
//! undo it ([`Receipt`]). Two kinds of action cover every provider:
//! diverting a prefix to a scrubbing network (Magic Transit on-demand
//! advertisement, OVH forced mitigation, AWS Shield protection) and
//! blocking attack sources (cloud firewalls, WAF IP rules, appliances).
//! Both are plain data, serialisable, so receipts survive a restart and the
//! withdrawal can happen in another process.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One request to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProviderAction {
    /// Send the prefix's traffic through the provider's scrubbing network.
    Divert { prefix: IpNet },
    /// Drop traffic from `sources` (to `dst`, with `protocol` and one of
    /// `dst_ports` when given; `None` / empty means any).
    BlockSources {
        sources: Vec<IpNet>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dst: Option<IpNet>,
        /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u8>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dst_ports: Vec<u16>,
    },
}

/// A borrowed view of a [`ProviderAction::BlockSources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    pub sources: &'a [IpNet],
    pub dst: Option<IpNet>,
    pub protocol: Option<u8>,
    pub dst_ports: &'a [u16],
}

impl ProviderAction {
    /// The block, when this is one.
    pub fn as_block(&self) -> Option<Block<'_>> {
        match self {
            ProviderAction::BlockSources {
                sources,
                dst,
                protocol,
                dst_ports,
            } => Some(Block {
                sources,
                dst: *dst,
                protocol: *protocol,
                dst_ports,
            }),
            ProviderAction::Divert { .. } => None,
        }
    }

    /// The diverted prefix, when this is a diversion.
    pub fn as_divert(&self) -> Option<IpNet> {
        match self {
            ProviderAction::Divert { prefix } => Some(*prefix),
            ProviderAction::BlockSources { .. } => None,
        }
    }

    /// `divert` or `block_sources`, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            ProviderAction::Divert { .. } => "divert",
            ProviderAction::BlockSources { .. } => "block_sources",
        }
    }
}

impl fmt::Display for ProviderAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderAction::Divert { prefix } => write!(f, "divert {prefix}"),
            ProviderAction::BlockSources {
                sources,
                dst,
                protocol,
                dst_ports,
            } => {
                write!(f, "block {} source(s)", sources.len())?;
                if let Some(d) = dst {
                    write!(f, " to {d}")?;
                }
                if let Some(p) = protocol {
                    write!(f, " proto {}", protocol_name(*p).unwrap_or("other"))?;
                    write!(f, "({p})")?;
                }
                if !dst_ports.is_empty() {
                    let ports: Vec<String> = dst_ports.iter().map(u16::to_string).collect();
                    write!(f, " port {}", ports.join(","))?;
                }
                Ok(())
            }
        }
    }
}

/// What was done at a provider, with the provider's own object ids: exactly
/// what `withdraw` needs, nothing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The configured provider name.
    pub provider: String,
    /// The action applied.
    pub action: ProviderAction,
    /// The provider's ids of what was created or changed (rule ids, prefix
    /// ids, protection ids, rule names).
    pub ids: Vec<String>,
    /// Anything else the undo needs (e.g. "this protection existed before
    /// us, leave it"); `null` when nothing.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Receipt {
    pub fn new(provider: &str, action: &ProviderAction, ids: Vec<String>) -> Self {
        Receipt {
            provider: provider.to_string(),
            action: action.clone(),
            ids,
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// The lowercase names the provider APIs use for the common protocols.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    match p {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        47 => Some("gre"),
        50 => Some("esp"),
        51 => Some("ah"),
        58 => Some("icmpv6"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_json() {
        let a = ProviderAction::BlockSources {
            sources: vec!["198.51.100.0/24".parse().unwrap()],
            dst: Some("203.0.113.10/32".parse().unwrap()),
            protocol: Some(17),
            dst_ports: vec![53],
        };
        let r = Receipt::new("fw", &a, vec!["42".into()]);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""action":"block_sources""#), "{text}");
        let back: Receipt = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            a.to_string(),
            "block 1 source(s) to 203.0.113.10/32 proto udp(17) port 53"
        );
    }
}
