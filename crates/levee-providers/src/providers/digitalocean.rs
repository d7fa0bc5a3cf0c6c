//! DigitalOcean Cloud Firewall: deny the attack's sources on the droplets
//! a firewall protects.
//!
//! Contract (API v2, <https://docs.digitalocean.com/reference/dots/reference/firewalls/firewalls-add-rules/>,
//! <https://docs.digitalocean.com/reference/pydo/reference/firewalls/delete_rules/>):
//! - `Authorization: Bearer <personal access token>`;
//! - `GET /v2/firewalls/{firewall_id}`: `{"firewall":{..,"inbound_rules":[..]}}`;
//! - `POST /v2/firewalls/{firewall_id}/rules` and `DELETE` on the same path
//!   with `{"inbound_rules":[{"protocol","ports","sources":{"addresses":[..]},"action"}]}`
//!   add and remove rules, answering 204
//!   (<https://docs.digitalocean.com/reference/dots/reference/firewalls/firewalls-add-rules/>);
//!   `protocol` is `tcp`, `udp` or `icmp`; `ports` a port, a range
//!   `"8000-9000"` or `"0"` for all; `action` `allow` or `deny` (optional,
//!   `allow` when absent); `sources` is one object, not a list;
//! - errors: `{"id":"unauthorized","message":..}`, `not_found`,
//!   `unprocessable_entity`, `too_many_requests`.
//!
//! Rules are identified by their content, so the receipt keeps the exact
//! rules added; a rule identical to one already present is not added (it is
//! someone else's, and removing ours must not remove theirs). The
//! destination cannot be narrowed: a firewall applies to its droplets.

use crate::action::{Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, gone_is_done, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const KIND: &str = "digitalocean";
pub const DEFAULT_BASE: &str = "https://api.digitalocean.com";

/// `kind = "digitalocean"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub firewall_id: String,
    pub api_token: SecretRef,
}

/// One inbound rule as the API reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRule {
    pub protocol: String,
    #[serde(default)]
    pub ports: String,
    pub sources: Sources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Sources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplet_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Deserialize)]
struct FirewallWrap {
    firewall: Firewall,
}

#[derive(Deserialize)]
struct Firewall {
    #[serde(default)]
    inbound_rules: Vec<InboundRule>,
}

pub struct DigitalOcean {
    name: String,
    http: Http,
    firewall: String,
    token: Secret,
}

impl DigitalOcean {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        firewall_id: &str,
        token: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        if firewall_id.is_empty()
            || !firewall_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return Err(ProviderError::invalid(
                name,
                "firewall_id must be the firewall's UUID",
            ));
        }
        Ok(DigitalOcean {
            name: name.to_string(),
            http: Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, generic_error)?,
            firewall: firewall_id.to_string(),
            token,
        })
    }

    fn send(&self, call: &Call) -> Result<crate::http::Answer, ProviderError> {
        self.http.send_with(
            call,
            "Authorization",
            &format!("Bearer {}", self.token.expose()),
        )
    }

    fn rules(&self, method: Method, rules: &[InboundRule]) -> Result<(), ProviderError> {
        // Adding a rule that is there, or removing one that is not, leaves
        // the same firewall: safe to repeat.
        let call = Call::new(method, format!("/v2/firewalls/{}/rules", self.firewall))
            .json(&json!({"inbound_rules": rules}))
            .idempotent();
        self.send(&call).map(|_| ())
    }
}

/// The deny rules for a block: one per protocol (all three when none is
/// given) and destination port.
pub fn deny_rules(
    sources: &[String],
    protocol: Option<u8>,
    dst_ports: &[u16],
) -> Result<Vec<InboundRule>, String> {
    let protos: Vec<&str> = match protocol {
        None => vec!["tcp", "udp", "icmp"],
        Some(6) => vec!["tcp"],
        Some(17) => vec!["udp"],
        Some(1) => vec!["icmp"],
        Some(p) => {
            return Err(format!(
                "cloud firewalls match tcp, udp or icmp, not IP protocol {p}"
            ))
        }
    };
    let mut out = Vec::new();
    for proto in protos {
        let ports: Vec<String> = if proto == "icmp" || dst_ports.is_empty() {
            vec!["0".to_string()]
        } else {
            dst_ports.iter().map(u16::to_string).collect()
        };
        for ports in ports {
            out.push(InboundRule {
                protocol: proto.to_string(),
                ports,
                sources: Sources {
                    addresses: sources.to_vec(),
                    ..Default::default()
                },
                action: Some("deny".to_string()),
            });
        }
    }
    Ok(out)
}

impl Provider for DigitalOcean {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block {
            sources,
            protocol,
            dst_ports,
            ..
        } = block_of(&self.name, KIND, action)?;
        let addresses: Vec<String> = sources.iter().map(|s| s.trunc().to_string()).collect();
        let wanted = deny_rules(&addresses, protocol, dst_ports).map_err(|why| {
            ProviderError::Unsupported {
                provider: self.name.clone(),
                kind: KIND,
                what: action.to_string(),
                why,
            }
        })?;
        let path = format!("/v2/firewalls/{}", self.firewall);
        let fw: FirewallWrap = self
            .send(&Call::get(&path))?
            .json(&self.name, &self.http.url(&path))?;
        let new: Vec<InboundRule> = wanted
            .into_iter()
            .filter(|r| !fw.firewall.inbound_rules.contains(r))
            .collect();
        if !new.is_empty() {
            self.rules(Method::POST, &new)?;
        }
        Ok(
            Receipt::new(&self.name, action, vec![self.firewall.clone()])
                .with_detail(json!({"inbound_rules": new})),
        )
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let rules: Vec<InboundRule> =
            serde_json::from_value(receipt.detail["inbound_rules"].clone()).map_err(|e| {
                ProviderError::invalid(
                    &self.name,
                    format!("receipt's inbound_rules unreadable: {e}"),
                )
            })?;
        if rules.is_empty() {
            return Ok(());
        }
        gone_is_done(self.rules(Method::DELETE, &rules))
    }
}
