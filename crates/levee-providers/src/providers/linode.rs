//! Linode / Akamai Cloud Firewalls: drop the attack's sources before they
//! reach the Linodes a firewall protects.
//!
//! Contract (Linode API v4, Update firewall rules,
//! <https://techdocs.akamai.com/linode-api/reference/put-firewall-rules-3>,
//! and the rule fields of <https://techdocs.akamai.com/linode-api/changelog/api-v41611>):
//! - `Authorization: Bearer <personal access token>`, base
//!   `https://api.linode.com/v4`;
//! - `GET /networking/firewalls/{firewallId}/rules`: `{"inbound":[..],
//!   "inbound_policy","outbound":[..],"outbound_policy",..}`;
//! - `PUT` on the same path replaces all rules and policies;
//! - a rule: `{"action":"ACCEPT"|"DROP","protocol":"TCP"|"UDP"|"ICMP"|"IPENCAP",
//!   "ports":"22, 80, 1000-2000" (TCP/UDP only; all ports when absent),
//!   "addresses":{"ipv4":[..],"ipv6":[..]},"label","description"}`, label
//!   3-32 characters; at most 25 rules in all;
//! - errors: `{"errors":[{"reason","field"?}]}`.
//!
//! Levee's DROP rules go first (rules are evaluated in order) with labels
//! `levee-<tag>-<n>`; withdrawal removes exactly those labels and puts the
//! rest back unchanged. The destination cannot be narrowed (a firewall
//! applies to its devices).

use crate::action::{Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

pub const KIND: &str = "linode";
pub const DEFAULT_BASE: &str = "https://api.linode.com/v4";
/// Linode's limit on rules per firewall (inbound and outbound together).
pub const MAX_RULES: usize = 25;

/// `kind = "linode"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub firewall_id: u64,
    pub api_token: SecretRef,
}

pub struct Linode {
    name: String,
    http: Http,
    firewall: u64,
    token: Secret,
}

impl Linode {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        firewall_id: u64,
        token: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        Ok(Linode {
            name: name.to_string(),
            http: Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, generic_error)?,
            firewall: firewall_id,
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

    fn path(&self) -> String {
        format!("/networking/firewalls/{}/rules", self.firewall)
    }

    fn get(&self) -> Result<Value, ProviderError> {
        let v: Value = self
            .send(&Call::get(self.path()))?
            .json(&self.name, &self.http.url(&self.path()))?;
        if !v["inbound"].is_array() {
            return Err(ProviderError::protocol(
                &self.name,
                &self.http.url(&self.path()),
                "no inbound rule list",
            ));
        }
        Ok(v)
    }

    fn put(&self, current: &Value, inbound: Vec<Value>) -> Result<(), ProviderError> {
        let body = json!({
            "inbound": inbound,
            "inbound_policy": current["inbound_policy"],
            "outbound": current["outbound"],
            "outbound_policy": current["outbound_policy"],
        });
        self.send(&Call::new(Method::PUT, self.path()).json(&body))
            .map(|_| ())
    }
}

fn label_of(r: &Value) -> Option<&str> {
    r["label"].as_str()
}

impl Provider for Linode {
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
        let protos: Vec<&str> = match protocol {
            None => vec!["TCP", "UDP", "ICMP"],
            Some(6) => vec!["TCP"],
            Some(17) => vec!["UDP"],
            Some(1) => vec!["ICMP"],
            Some(4) => vec!["IPENCAP"],
            Some(p) => {
                return Err(ProviderError::Unsupported {
                    provider: self.name.clone(),
                    kind: KIND,
                    what: format!("match IP protocol {p}"),
                    why: "Cloud Firewall rules match TCP, UDP, ICMP or IPENCAP".into(),
                })
            }
        };
        let v4: Vec<String> = sources
            .iter()
            .filter(|s| s.addr().is_ipv4())
            .map(|s| s.trunc().to_string())
            .collect();
        let v6: Vec<String> = sources
            .iter()
            .filter(|s| s.addr().is_ipv6())
            .map(|s| s.trunc().to_string())
            .collect();
        let ports: Vec<String> = dst_ports.iter().map(u16::to_string).collect();
        let tag = hex::encode(rand::random::<[u8; 3]>());
        let ours: Vec<Value> = protos
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut r = json!({
                    "action": "DROP",
                    "protocol": p,
                    "addresses": {"ipv4": v4, "ipv6": v6},
                    "label": format!("levee-{tag}-{i}"),
                    "description": format!("levee: {action}"),
                });
                if matches!(*p, "TCP" | "UDP") && !ports.is_empty() {
                    r["ports"] = json!(ports.join(", "));
                }
                r
            })
            .collect();
        let current = self.get()?;
        let inbound = current["inbound"].as_array().cloned().unwrap_or_default();
        let outbound = current["outbound"].as_array().map_or(0, Vec::len);
        if inbound.len() + outbound + ours.len() > MAX_RULES {
            return Err(ProviderError::invalid(
                &self.name,
                format!(
                    "the firewall has {} rules; adding {} would pass Linode's limit of {MAX_RULES}",
                    inbound.len() + outbound,
                    ours.len()
                ),
            ));
        }
        let labels: Vec<String> = ours
            .iter()
            .filter_map(|r| label_of(r).map(str::to_string))
            .collect();
        let mut all = ours;
        all.extend(inbound);
        self.put(&current, all)?;
        Ok(Receipt::new(&self.name, action, labels))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let current = self.get()?;
        let inbound = current["inbound"].as_array().cloned().unwrap_or_default();
        let mine = |r: &Value| label_of(r).is_some_and(|l| receipt.ids.iter().any(|id| id == l));
        if !inbound.iter().any(mine) {
            return Ok(());
        }
        let rest: Vec<Value> = inbound.into_iter().filter(|r| !mine(r)).collect();
        self.put(&current, rest)
    }
}
