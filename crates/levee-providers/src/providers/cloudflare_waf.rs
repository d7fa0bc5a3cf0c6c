//! Cloudflare WAF IP Access rules: block attack sources at Cloudflare's
//! edge for a zone (or every zone of an account).
//!
//! Contract (Create an IP Access rule,
//! <https://developers.cloudflare.com/api/go/resources/firewall/subresources/access_rules/methods/create>;
//! the official TypeScript client `cloudflare/resources/firewall/access-rules.ts`):
//! - `POST /zones/{zone_id}/firewall/access_rules/rules` (or
//!   `/accounts/{account_id}/...`) with
//!   `{"mode":"block","configuration":{"target":T,"value":V},"notes":N}`,
//!   answering the rule with its `id`;
//! - `DELETE .../firewall/access_rules/rules/{rule_id}`;
//! - targets: `ip` (one IPv4 address), `ip6` (one IPv6 address),
//!   `ip_range` (IPv4 /16 or /24, IPv6 /32, /48 or /64 only).
//!
//! A source prefix of another length is split into the allowed sizes
//! (never widened: a rule must not block more than the attack). Access
//! rules act on the zone's proxied HTTP(S) traffic, whatever the port, so
//! the action's destination, protocol and ports cannot narrow them further;
//! they are recorded in the rule's notes. A rule Cloudflare reports as a
//! duplicate already exists (someone else's): it is neither created nor
//! removed by us. A failure part-way removes the rules already created.

use super::cloudflare::{cf_error, is_duplicate, Client, DEFAULT_BASE};
use crate::action::{Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{gone_is_done, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

pub const KIND: &str = "cloudflare_waf";

/// Most rules one action may create (after splitting prefixes).
const MAX_RULES: usize = 64;

/// `kind = "cloudflare_waf"`: exactly one of `zone_id` or `account_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub zone_id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    /// An API token with "Account Firewall Access Rules Write" or zone "Firewall Services Write".
    pub api_token: SecretRef,
}

/// Where the rules live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Zone(String),
    Account(String),
}

#[derive(Debug, Deserialize)]
struct Rule {
    id: String,
}

pub struct CloudflareWaf {
    name: String,
    scope: Scope,
    cf: Client,
}

impl CloudflareWaf {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        scope: Scope,
        token: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        let id = match &scope {
            Scope::Zone(z) | Scope::Account(z) => z,
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ProviderError::invalid(
                name,
                "zone_id / account_id must be a Cloudflare identifier",
            ));
        }
        let http = Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, cf_error)?;
        Ok(CloudflareWaf {
            name: name.to_string(),
            scope,
            cf: Client::new(http, token),
        })
    }

    fn rules_path(&self) -> String {
        match &self.scope {
            Scope::Zone(z) => format!("/zones/{z}/firewall/access_rules/rules"),
            Scope::Account(a) => format!("/accounts/{a}/firewall/access_rules/rules"),
        }
    }

    fn delete(&self, id: &str) -> Result<(), ProviderError> {
        let call = Call::new(Method::DELETE, format!("{}/{id}", self.rules_path()));
        gone_is_done(self.cf.call::<serde_json::Value>(&call))
    }
}

/// Access-rule targets covering `net` exactly.
pub fn targets(net: IpNet) -> Vec<(&'static str, String)> {
    let net = net.trunc();
    match net {
        IpNet::V4(n) => {
            let (target, len) = match n.prefix_len() {
                32 => return vec![("ip", n.addr().to_string())],
                0..=16 => ("ip_range", 16),
                17..=24 => ("ip_range", 24),
                _ => ("ip", 32),
            };
            split(net, len)
                .into_iter()
                .map(|s| {
                    let v = if target == "ip" {
                        s.addr().to_string()
                    } else {
                        s.to_string()
                    };
                    (target, v)
                })
                .collect()
        }
        IpNet::V6(n) => {
            let (target, len) = match n.prefix_len() {
                128 => return vec![("ip6", n.addr().to_string())],
                0..=32 => ("ip_range", 32),
                33..=48 => ("ip_range", 48),
                49..=64 => ("ip_range", 64),
                _ => ("ip6", 128),
            };
            split(net, len)
                .into_iter()
                .map(|s| {
                    let v = if target == "ip6" {
                        s.addr().to_string()
                    } else {
                        s.to_string()
                    };
                    (target, v)
                })
                .collect()
        }
    }
}

/// `net` as prefixes of length `len` (itself when already that long),
/// stopping past [`MAX_RULES`] + 1 so a huge split is cheap to refuse.
fn split(net: IpNet, len: u8) -> Vec<IpNet> {
    if net.prefix_len() >= len {
        return vec![net];
    }
    match net.subnets(len) {
        Ok(it) => it.take(MAX_RULES + 1).collect(),
        Err(_) => vec![net],
    }
}

impl Provider for CloudflareWaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block { sources, .. } = block_of(&self.name, KIND, action)?;
        let wanted: Vec<(&str, String)> = sources.iter().flat_map(|s| targets(*s)).collect();
        if wanted.len() > MAX_RULES {
            return Err(ProviderError::invalid(
                &self.name,
                format!("{} sources need more than {MAX_RULES} access rules; block fewer or wider-aligned prefixes", sources.len()),
            ));
        }
        let notes = format!("levee: {action}");
        let mut created: Vec<String> = Vec::new();
        for (target, value) in wanted {
            let call = Call::new(Method::POST, self.rules_path()).json(&json!({
                "mode": "block",
                "configuration": {"target": target, "value": value},
                "notes": notes,
            }));
            match self.cf.call::<Rule>(&call) {
                Ok(r) => created.push(r.id),
                Err(e) if is_duplicate(&e) => {
                    tracing::info!(provider = %self.name, %value, "access rule exists already; left to its owner");
                }
                Err(e) => {
                    for id in &created {
                        if let Err(u) = self.delete(id) {
                            tracing::warn!(provider = %self.name, rule = %id, "cannot undo after a failed apply: {u}");
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(Receipt::new(&self.name, action, created))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let mut first_err = None;
        for id in &receipt.ids {
            if let Err(e) = self.delete(id) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_allowed_targets_without_widening() {
        let t = |s: &str| targets(s.parse().unwrap());
        assert_eq!(
            t("198.51.100.7/32"),
            vec![("ip", "198.51.100.7".to_string())]
        );
        assert_eq!(
            t("198.51.100.0/24"),
            vec![("ip_range", "198.51.100.0/24".to_string())]
        );
        assert_eq!(t("10.0.0.0/23").len(), 2);
        assert_eq!(t("10.0.0.0/15")[1], ("ip_range", "10.1.0.0/16".to_string()));
        assert_eq!(
            t("192.0.2.0/30"),
            (0..4)
                .map(|i| ("ip", format!("192.0.2.{i}")))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            t("2001:db8::1/128"),
            vec![("ip6", "2001:db8::1".to_string())]
        );
        assert_eq!(
            t("2001:db8::/48"),
            vec![("ip_range", "2001:db8::/48".to_string())]
        );
        assert_eq!(t("2001:db8::/63").len(), 2);
        assert_eq!(t("2001:db8::/63")[0].1, "2001:db8::/64");
    }
}
