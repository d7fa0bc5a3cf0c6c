//! OVHcloud VAC (anti-DDoS): force permanent mitigation on the attacked
//! addresses, so their traffic is always scrubbed, and lift it afterwards.
//!
//! Contract (OVHcloud API v1, console <https://api.ovh.com/console/#/ip/{ip}/mitigation/{ipOnMitigation}#GET>,
//! resource docs <https://www.pulumi.com/registry/packages/ovh/api-docs/ip/mitigation>):
//! - authentication (<https://docs.ovh.com/gb/en/customer/first-steps-with-ovh-api/>):
//!   headers `X-Ovh-Application` (AK), `X-Ovh-Consumer` (CK),
//!   `X-Ovh-Timestamp` (server time) and `X-Ovh-Signature`
//!   `"$1$" + SHA1_HEX(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TSTAMP)`;
//!   the server's time comes from unauthenticated `GET /auth/time`, and
//!   the offset to the local clock is kept (the API refuses skewed times);
//! - `GET /ip`: the account's IP blocks;
//! - `GET /ip/{ip}/mitigation/{ipOnMitigation}`: an address's mitigation
//!   (404 when none);
//! - `POST /ip/{ip}/mitigation` `{"ipOnMitigation": ADDRESS}`: permanent
//!   (forced) mitigation; `DELETE /ip/{ip}/mitigation/{ipOnMitigation}`
//!   lifts it (`{ip}` is the block, `/` encoded as `%2F`);
//! - errors: `{"errorCode"?, "httpCode"?, "message"}` or `{"class","message"}`.
//!
//! Mitigation is per address: a diverted prefix becomes one call per
//! address, up to `max_addresses`. Addresses already under permanent
//! mitigation are left as they are, on apply and on withdrawal.

use crate::action::{ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, gone_is_done, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::sign::{ovh_signature, unix_now};
use crate::{check_receipt, divert_of, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

pub const KIND: &str = "ovh_vac";
pub const DEFAULT_BASE: &str = "https://eu.api.ovh.com/1.0";

/// `kind = "ovh_vac"`; `base_url` picks the region (default EU).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub application_key: String,
    pub application_secret: SecretRef,
    pub consumer_key: SecretRef,
    /// Largest number of addresses one diversion may put on mitigation.
    #[serde(default = "default_max")]
    pub max_addresses: usize,
}

fn default_max() -> usize {
    16
}

/// The three OVH keys.
#[derive(Clone)]
pub struct OvhKeys {
    pub application_key: String,
    pub application_secret: Secret,
    pub consumer_key: Secret,
}

pub struct OvhVac {
    name: String,
    http: Http,
    keys: OvhKeys,
    max_addresses: usize,
    /// Server time minus local time, once known.
    offset: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mitigation {
    #[serde(default)]
    permanent: bool,
}

impl OvhVac {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        keys: OvhKeys,
        max_addresses: usize,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        Ok(OvhVac {
            name: name.to_string(),
            http: Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, generic_error)?,
            keys,
            max_addresses,
            offset: None,
        })
    }

    fn offset(&mut self) -> Result<i64, ProviderError> {
        if let Some(o) = self.offset {
            return Ok(o);
        }
        let server: i64 = self
            .http
            .send_json(&Call::get("/auth/time"), &crate::http::no_auth)?;
        let o = server - unix_now();
        self.offset = Some(o);
        Ok(o)
    }

    fn signed(&mut self, call: &Call) -> Result<crate::http::Answer, ProviderError> {
        let offset = self.offset()?;
        let keys = self.keys.clone();
        let sign = move |c: &Call, url: &str| {
            let ts = unix_now() + offset;
            let sig = ovh_signature(
                keys.application_secret.expose(),
                keys.consumer_key.expose(),
                c.method.as_str(),
                url,
                c.body_bytes(),
                ts,
            );
            Ok(vec![
                (
                    "X-Ovh-Application".to_string(),
                    keys.application_key.clone(),
                ),
                (
                    "X-Ovh-Consumer".to_string(),
                    keys.consumer_key.expose().to_string(),
                ),
                ("X-Ovh-Timestamp".to_string(), ts.to_string()),
                ("X-Ovh-Signature".to_string(), sig),
            ])
        };
        self.http.send(call, &sign)
    }

    fn block_of(&mut self, prefix: IpNet) -> Result<IpNet, ProviderError> {
        let a = self.signed(&Call::get("/ip"))?;
        let blocks: Vec<String> = a.json(&self.name, &self.http.url("/ip"))?;
        blocks
            .iter()
            .filter_map(|b| b.parse::<IpNet>().ok())
            .filter(|b| b.contains(&prefix))
            .max_by_key(|b| b.prefix_len())
            .ok_or_else(|| {
                ProviderError::invalid(
                    &self.name,
                    format!("no IP block of this OVHcloud account holds {prefix}"),
                )
            })
    }

    fn mitigated(&mut self, block: &str, ip: &str) -> Result<bool, ProviderError> {
        match self.signed(&Call::get(format!("/ip/{block}/mitigation/{ip}"))) {
            Ok(a) => {
                let m: Mitigation = a.json(&self.name, &self.http.url("/ip/{ip}/mitigation"))?;
                Ok(m.permanent)
            }
            Err(ProviderError::Http { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn lift(&mut self, block: &str, ip: &str) -> Result<(), ProviderError> {
        let call = Call::new(Method::DELETE, format!("/ip/{block}/mitigation/{ip}"));
        gone_is_done(self.signed(&call))
    }
}

/// `203.0.113.0/24` as OVH wants it in a path.
fn enc(block: &IpNet) -> String {
    block.to_string().replace('/', "%2F")
}

impl Provider for OvhVac {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let prefix = divert_of(&self.name, KIND, action)?;
        if !prefix.addr().is_ipv4() {
            return Err(ProviderError::Unsupported {
                provider: self.name.clone(),
                kind: KIND,
                what: format!("divert {prefix}"),
                why: "forced mitigation takes IPv4 addresses".into(),
            });
        }
        let count = 1u64 << (32 - prefix.prefix_len());
        if count > self.max_addresses as u64 {
            return Err(ProviderError::invalid(
                &self.name,
                format!(
                    "{prefix} holds {count} addresses, above max_addresses = {}; divert a longer prefix (e.g. the victim /32) or raise max_addresses",
                    self.max_addresses
                ),
            ));
        }
        let block = self.block_of(prefix)?;
        let b = enc(&block);
        let mut ids = vec![block.to_string()];
        // Every address, network and broadcast ones included: inside a
        // larger block they are ordinary hosts.
        let addrs: Vec<IpAddr> = prefix
            .trunc()
            .subnets(32)
            .map(|it| it.map(|n| n.addr()).collect())
            .unwrap_or_default();
        for ip in addrs {
            let ip = ip.to_string();
            let result = match self.mitigated(&b, &ip) {
                Ok(true) => continue,
                Ok(false) => self
                    .signed(
                        &Call::new(Method::POST, format!("/ip/{b}/mitigation"))
                            .json(&json!({"ipOnMitigation": ip})),
                    )
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => ids.push(ip),
                Err(e) => {
                    for done in ids.iter().skip(1).cloned().collect::<Vec<_>>() {
                        if let Err(u) = self.lift(&b, &done) {
                            tracing::warn!(provider = %self.name, ip = %done, "cannot undo after a failed apply: {u}");
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(Receipt::new(&self.name, action, ids))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let Some(block) = receipt.ids.first().and_then(|b| b.parse::<IpNet>().ok()) else {
            return Err(ProviderError::invalid(
                &self.name,
                "receipt lacks the IP block",
            ));
        };
        let b = enc(&block);
        let mut first_err = None;
        for ip in &receipt.ids[1..] {
            if let Err(e) = self.lift(&b, ip) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
