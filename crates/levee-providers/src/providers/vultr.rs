//! Vultr firewall groups: stop accepting the attack's sources.
//!
//! Contract (API v2, as its official Terraform provider and CLI document
//! it: <https://docs.vultr.com/reference/terraform/resources/firewall_rule>,
//! <https://docs.vultr.com/reference/vultr-cli/firewall/rule/create>):
//! - `Authorization: Bearer <API key>`, base `https://api.vultr.com`;
//! - `GET /v2/firewalls/{firewall-group-id}/rules?per_page=500`:
//!   `{"firewall_rules":[{"id","ip_type","action","protocol","port",
//!   "subnet","subnet_size","source","notes"}],"meta":{..}}`;
//! - `POST /v2/firewalls/{firewall-group-id}/rules` with `{"ip_type":"v4"|"v6",
//!   "protocol":"icmp"|"tcp"|"udp"|"gre"|"esp"|"ah","subnet","subnet_size",
//!   "port"?,"source"?,"notes"?}` answers 201 `{"firewall_rule":{..}}`;
//! - `DELETE /v2/firewalls/{firewall-group-id}/rules/{firewall-rule-id}`, 204;
//! - errors `{"error": "...", "status": N}`.
//!
//! Vultr rules only accept; what no rule accepts is dropped. Blocking
//! sources therefore rewrites each accepting rule whose range holds them
//! (same protocol, or any when the block names none) into rules for its
//! range minus the sources ([`crate::allowlist::subtract`]), created before
//! the original is deleted so legitimate traffic never sees a gap. The
//! receipt keeps the rules created and the originals, which withdrawal
//! recreates before deleting the replacements. A rule's port range stays
//! as it was: the sources lose that rule's ports, which may be more ports
//! than the attack used. Rules with a `source` (e.g. `cloudflare`) are
//! left alone.

use crate::action::{protocol_name, Block, ProviderAction, Receipt};
use crate::allowlist::subtract;
use crate::error::ProviderError;
use crate::http::{generic_error, gone_is_done, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

pub const KIND: &str = "vultr";
pub const DEFAULT_BASE: &str = "https://api.vultr.com";
/// Most rules one block may create.
const MAX_NEW_RULES: usize = 50;

/// `kind = "vultr"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub firewall_group_id: String,
    pub api_key: SecretRef,
}

/// A rule as Vultr reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VultrRule {
    #[serde(default, skip_serializing)]
    pub id: Option<u64>,
    pub ip_type: String,
    pub protocol: String,
    pub subnet: String,
    pub subnet_size: u8,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub notes: String,
}

impl VultrRule {
    fn net(&self) -> Option<IpNet> {
        let ip: IpAddr = self.subnet.parse().ok()?;
        IpNet::new(ip, self.subnet_size).ok().map(|n| n.trunc())
    }
}

#[derive(Deserialize)]
struct List {
    firewall_rules: Vec<VultrRule>,
}

#[derive(Deserialize)]
struct Created {
    firewall_rule: VultrRule,
}

pub struct Vultr {
    name: String,
    http: Http,
    group: String,
    key: Secret,
}

impl Vultr {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        group: &str,
        key: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        if group.is_empty() || !group.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(ProviderError::invalid(
                name,
                "firewall_group_id must be the group's UUID",
            ));
        }
        Ok(Vultr {
            name: name.to_string(),
            http: Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, generic_error)?,
            group: group.to_string(),
            key,
        })
    }

    fn send(&self, call: &Call) -> Result<crate::http::Answer, ProviderError> {
        self.http.send_with(
            call,
            "Authorization",
            &format!("Bearer {}", self.key.expose()),
        )
    }

    fn rules_path(&self) -> String {
        format!("/v2/firewalls/{}/rules", self.group)
    }

    fn list(&self) -> Result<Vec<VultrRule>, ProviderError> {
        let path = format!("{}?per_page=500", self.rules_path());
        let l: List = self
            .send(&Call::get(&path))?
            .json(&self.name, &self.http.url(&self.rules_path()))?;
        Ok(l.firewall_rules)
    }

    fn create(&self, r: &VultrRule) -> Result<u64, ProviderError> {
        let call = Call::new(Method::POST, self.rules_path()).json(r);
        let c: Created = self
            .send(&call)?
            .json(&self.name, &self.http.url(&self.rules_path()))?;
        c.firewall_rule.id.ok_or_else(|| {
            ProviderError::protocol(
                &self.name,
                &self.http.url(&self.rules_path()),
                "created rule has no id",
            )
        })
    }

    fn delete(&self, id: u64) -> Result<(), ProviderError> {
        let call = Call::new(Method::DELETE, format!("{}/{id}", self.rules_path()));
        gone_is_done(self.send(&call))
    }

    fn undo(&self, created: &[u64]) {
        for id in created {
            if let Err(e) = self.delete(*id) {
                tracing::warn!(provider = %self.name, rule = id, "cannot undo after a failed apply: {e}");
            }
        }
    }
}

impl Provider for Vultr {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block {
            sources, protocol, ..
        } = block_of(&self.name, KIND, action)?;
        let proto = protocol.map(|p| protocol_name(p).unwrap_or("other"));
        let rules = self.list()?;
        // (original, replacements)
        let mut plan: Vec<(VultrRule, Vec<VultrRule>)> = Vec::new();
        for r in rules.iter().filter(|r| r.source.is_empty()) {
            if proto.is_some_and(|p| p != r.protocol) {
                continue;
            }
            let Some(net) = r.net() else { continue };
            if !sources.iter().any(|s| s.contains(&net) || net.contains(s)) {
                continue;
            }
            let pieces = subtract(net, sources)
                .into_iter()
                .map(|p| VultrRule {
                    id: None,
                    ip_type: r.ip_type.clone(),
                    protocol: r.protocol.clone(),
                    subnet: p.addr().to_string(),
                    subnet_size: p.prefix_len(),
                    port: r.port.clone(),
                    source: String::new(),
                    notes: format!("levee: {} minus blocked sources", net),
                })
                .collect();
            plan.push((r.clone(), pieces));
        }
        let count: usize = plan.iter().map(|(_, p)| p.len()).sum();
        if count > MAX_NEW_RULES {
            return Err(ProviderError::invalid(
                &self.name,
                format!("blocking these sources needs {count} accept rules (more than {MAX_NEW_RULES}); block fewer or wider-aligned prefixes"),
            ));
        }
        let mut created = Vec::new();
        let mut removed = Vec::new();
        for (orig, pieces) in &plan {
            for piece in pieces {
                match self.create(piece) {
                    Ok(id) => created.push(id),
                    Err(e) => {
                        self.rollback(&created, &removed);
                        return Err(e);
                    }
                }
            }
            if let Err(e) = self.delete(orig.id.unwrap_or_default()) {
                self.rollback(&created, &removed);
                return Err(e);
            }
            removed.push(orig.clone());
        }
        let ids = created.iter().map(u64::to_string).collect();
        Ok(Receipt::new(&self.name, action, ids).with_detail(json!({"removed": removed})))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let removed: Vec<VultrRule> = serde_json::from_value(receipt.detail["removed"].clone())
            .map_err(|e| {
                ProviderError::invalid(
                    &self.name,
                    format!("receipt's removed rules unreadable: {e}"),
                )
            })?;
        let present = self.list()?;
        // Restore the originals first: accepting a source twice for a
        // moment is harmless, dropping legitimate traffic is not.
        for r in &removed {
            let same =
                |p: &VultrRule| p.net() == r.net() && p.protocol == r.protocol && p.port == r.port;
            if !present.iter().any(same) {
                self.create(r)?;
            }
        }
        for id in &receipt.ids {
            let id: u64 = id.parse().map_err(|_| {
                ProviderError::invalid(
                    &self.name,
                    format!("receipt rule id {id:?} is not a number"),
                )
            })?;
            self.delete(id)?;
        }
        Ok(())
    }
}

impl Vultr {
    fn rollback(&self, created: &[u64], removed: &[VultrRule]) {
        for r in removed {
            if let Err(e) = self.create(r) {
                tracing::warn!(provider = %self.name, subnet = %r.subnet, "cannot restore a rule after a failed apply: {e}");
            }
        }
        self.undo(created);
    }
}
