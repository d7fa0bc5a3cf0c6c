//! Cloudflare Magic Transit on-demand: divert a prefix by having Cloudflare
//! advertise it (dynamic advertisement), withdraw by stopping that.
//!
//! Contract (Cloudflare API v4, BYOIP / Magic Transit):
//! - on-demand and dynamic advertisement:
//!   <https://developers.cloudflare.com/magic-transit/on-demand/>,
//!   <https://developers.cloudflare.com/byoip/concepts/dynamic-advertisement/>;
//! - `GET /accounts/{account_id}/addressing/prefixes` lists the IP prefixes
//!   (`id`, `cidr`, ...);
//! - `GET /accounts/{account_id}/addressing/prefixes/{prefix_id}/bgp/prefixes`
//!   lists the BGP prefixes of one (`id`, `cidr`, `on_demand{advertised,
//!   on_demand_enabled, on_demand_locked}`);
//! - `PATCH .../bgp/prefixes/{bgp_prefix_id}` with `{"on_demand":{"advertised":true|false}}`
//!   (<https://developers.cloudflare.com/api/resources/addressing/subresources/prefixes/subresources/bgp_prefixes/methods/edit/>),
//!   the endpoint Cloudflare prefers over the deprecated `.../bgp/status`
//!   because it can advertise a subnet of an onboarded prefix.
//!
//! The BGP prefix chosen is the one whose CIDR equals the diverted prefix,
//! else the most specific one covering it (never a narrower one: that
//! would leave part of the victim undiverted). A prefix that was already
//! advertised (always-on, or diverted by hand) is recorded as such and
//! left advertised on withdrawal.

use super::cloudflare::{cf_error, Client, DEFAULT_BASE};
use crate::action::{ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{check_receipt, divert_of, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

pub const KIND: &str = "cloudflare_magic_transit";

/// `kind = "cloudflare_magic_transit"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub account_id: String,
    /// An API token with "Magic Transit Write" or "IP Prefixes: BGP On Demand Write".
    pub api_token: SecretRef,
}

#[derive(Debug, Deserialize)]
struct IpPrefix {
    id: String,
    cidr: String,
}

#[derive(Debug, Deserialize)]
struct BgpPrefix {
    id: String,
    cidr: String,
    #[serde(default)]
    on_demand: Option<OnDemand>,
}

#[derive(Debug, Deserialize)]
struct OnDemand {
    #[serde(default)]
    advertised: bool,
}

pub struct MagicTransit {
    name: String,
    account: String,
    cf: Client,
}

impl MagicTransit {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        account_id: &str,
        token: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        if account_id.is_empty() || !account_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ProviderError::invalid(
                name,
                "account_id must be the 32-character account identifier",
            ));
        }
        let http = Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, cf_error)?;
        Ok(MagicTransit {
            name: name.to_string(),
            account: account_id.to_string(),
            cf: Client::new(http, token),
        })
    }

    fn prefixes_path(&self) -> String {
        format!("/accounts/{}/addressing/prefixes", self.account)
    }

    /// (IP prefix id, BGP prefix id, advertised now) for `target`.
    fn find(&self, target: IpNet) -> Result<(String, String, bool), ProviderError> {
        let prefixes: Vec<IpPrefix> = self.cf.call(&Call::get(self.prefixes_path()))?;
        let mut best: Option<(u8, String, String, bool)> = None;
        for p in prefixes.iter().filter(|p| covers(&p.cidr, target)) {
            let bgp: Vec<BgpPrefix> = self.cf.call(&Call::get(format!(
                "{}/{}/bgp/prefixes",
                self.prefixes_path(),
                p.id
            )))?;
            for b in bgp {
                let Ok(net) = b.cidr.parse::<IpNet>() else {
                    continue;
                };
                if net.contains(&target) && best.as_ref().is_none_or(|x| net.prefix_len() > x.0) {
                    let adv = b.on_demand.as_ref().is_some_and(|o| o.advertised);
                    best = Some((net.prefix_len(), p.id.clone(), b.id, adv));
                }
            }
        }
        best.map(|(_, p, b, adv)| (p, b, adv)).ok_or_else(|| {
            ProviderError::invalid(
                &self.name,
                format!(
                    "no onboarded prefix covers {target} in account {}; onboard it for Magic Transit on-demand first",
                    self.account
                ),
            )
        })
    }

    fn set(&self, prefix_id: &str, bgp_id: &str, advertised: bool) -> Result<(), ProviderError> {
        let call = Call::new(
            Method::PATCH,
            format!("{}/{prefix_id}/bgp/prefixes/{bgp_id}", self.prefixes_path()),
        )
        .json(&json!({"on_demand": {"advertised": advertised}}))
        // Setting a flag to a value twice is the same as once.
        .idempotent();
        let b: BgpPrefix = self.cf.call(&call)?;
        let now = b.on_demand.is_some_and(|o| o.advertised);
        if now != advertised {
            return Err(ProviderError::protocol(
                &self.name,
                &self.cf.http.url(&call.path),
                format!("asked advertised={advertised}, answer says advertised={now}"),
            ));
        }
        Ok(())
    }
}

fn covers(cidr: &str, target: IpNet) -> bool {
    cidr.parse::<IpNet>().is_ok_and(|n| n.contains(&target))
}

impl Provider for MagicTransit {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let prefix = divert_of(&self.name, KIND, action)?;
        let (pid, bid, was) = self.find(prefix)?;
        if !was {
            self.set(&pid, &bid, true)?;
        }
        Ok(Receipt::new(&self.name, action, vec![pid, bid])
            .with_detail(json!({"was_advertised": was})))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let [pid, bid] = receipt.ids.as_slice() else {
            return Err(ProviderError::invalid(
                &self.name,
                "receipt lacks the prefix and BGP prefix ids",
            ));
        };
        if receipt.detail["was_advertised"].as_bool() == Some(true) {
            return Ok(());
        }
        self.set(pid, bid, false)
    }
}
