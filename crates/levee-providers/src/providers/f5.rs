//! F5 BIG-IP AFM (Advanced Firewall Manager) over iControl REST: a drop
//! rule for the attack's sources at the top of an AFM firewall policy.
//!
//! Contract (iControl REST, <https://clouddocs.f5.com/api/icontrol-rest/>):
//! - token authentication (BIG-IP 12.0+, local and remote users;
//!   <https://community.f5.com/t5/technical-articles/icontrol-rest-authentication-token-management/ta-p/287462>,
//!   <https://community.f5.com/discussions/technicalforum/icontrol-rest-remote-authentication-big-ip-v12/66506>):
//!   `POST /mgmt/shared/authn/login` `{"username","password","loginProviderName":"tmos"}`
//!   answers `{"token":{"token":..,"timeout":1200}}`, sent as
//!   `X-F5-Auth-Token`; tokens expire (20 min by default), so a 401 later
//!   fetches a new one once;
//! - AFM policy rules, as F5's own Ansible module `bigip_firewall_rule`
//!   writes them (<https://docs.ansible.com/ansible/latest/modules/bigip_firewall_rule_module.html>,
//!   source F5Networks/f5-ansible `plugins/modules/bigip_firewall_rule.py`):
//!   `POST /mgmt/tm/security/firewall/policy/~Partition~Name/rules` with
//!   `{"name","action":"drop","ipProtocol","source":{"addresses":[{"name"}]},
//!   "destination":{"addresses":[{"name"}],"ports":[{"name"}]},"description"}`
//!   plus the placement (`placeAfter: "last"` in the module, tmsh's
//!   `place-after` / `place-before`; Levee uses `placeBefore: "first"`);
//!   `DELETE .../rules/{name}`;
//! - errors: `{"code","message","errorStack","apiError"}`.
//!
//! The policy must exist and be enforced (on a virtual server, route
//! domain or the global context); Levee only adds and removes its own
//! `levee_<tag>` rules in it.

use crate::action::{protocol_name, Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, gone_is_done, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

pub const KIND: &str = "f5_bigip";

/// `kind = "f5_bigip"`; `base_url` is the management address
/// (`https://bigip.example.net`), required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The AFM policy, `/Partition/Name`.
    pub policy: String,
    pub user: String,
    pub password: SecretRef,
    /// The login provider (`tmos` for local users; a remote provider name).
    #[serde(default = "tmos")]
    pub login_provider: String,
}

fn tmos() -> String {
    "tmos".to_string()
}

pub struct F5BigIp {
    name: String,
    http: Http,
    policy_path: String,
    user: String,
    password: Secret,
    login_provider: String,
    token: Option<Secret>,
}

impl F5BigIp {
    pub fn new(
        name: &str,
        base_url: &str,
        policy: &str,
        user: &str,
        password: Secret,
        login_provider: &str,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        let parts: Vec<&str> = policy.trim_start_matches('/').split('/').collect();
        let [partition, pname] = parts.as_slice() else {
            return Err(ProviderError::invalid(
                name,
                format!("policy {policy:?} must be /Partition/Name, e.g. /Common/levee"),
            ));
        };
        Ok(F5BigIp {
            name: name.to_string(),
            http: Http::new(name, base_url, cfg, generic_error)?,
            policy_path: format!("/mgmt/tm/security/firewall/policy/~{partition}~{pname}/rules"),
            user: user.to_string(),
            password,
            login_provider: login_provider.to_string(),
            token: None,
        })
    }

    fn login(&mut self) -> Result<Secret, ProviderError> {
        let call = Call::new(Method::POST, "/mgmt/shared/authn/login").json(&json!({
            "username": self.user,
            "password": self.password.expose(),
            "loginProviderName": self.login_provider,
        }));
        let v: serde_json::Value = self.http.send_json(&call, &crate::http::no_auth)?;
        let t = v["token"]["token"].as_str().ok_or_else(|| {
            ProviderError::protocol(
                &self.name,
                &self.http.url(&call.path),
                "login answered no token.token",
            )
        })?;
        let t = Secret::new(t);
        self.token = Some(t.clone());
        Ok(t)
    }

    /// Sends with the token, logging in first or again after a 401.
    fn send(&mut self, call: &Call) -> Result<crate::http::Answer, ProviderError> {
        let fresh = self.token.is_none();
        let token = match self.token.clone() {
            Some(t) => t,
            None => self.login()?,
        };
        match self.attempt(call, &token) {
            Err(ProviderError::Http { status: 401, .. }) if !fresh => {
                let t = self.login()?;
                self.attempt(call, &t)
            }
            other => other,
        }
    }
}

impl F5BigIp {
    fn attempt(&self, call: &Call, token: &Secret) -> Result<crate::http::Answer, ProviderError> {
        self.http.send_with(call, "X-F5-Auth-Token", token.expose())
    }
}

impl Provider for F5BigIp {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block {
            sources,
            dst,
            protocol,
            dst_ports,
        } = block_of(&self.name, KIND, action)?;
        let proto = match protocol {
            None => "any".to_string(),
            Some(p) => protocol_name(p)
                .map(str::to_string)
                .unwrap_or_else(|| p.to_string()),
        };
        let rule = format!("levee_{}", hex::encode(rand::random::<[u8; 4]>()));
        let mut destination = serde_json::Map::new();
        if let Some(d) = dst {
            destination.insert("addresses".into(), json!([{"name": d.trunc().to_string()}]));
        }
        if matches!(proto.as_str(), "tcp" | "udp") && !dst_ports.is_empty() {
            let ports: Vec<_> = dst_ports
                .iter()
                .map(|p| json!({"name": p.to_string()}))
                .collect();
            destination.insert("ports".into(), json!(ports));
        }
        let addresses: Vec<_> = sources
            .iter()
            .map(|s| json!({"name": s.trunc().to_string()}))
            .collect();
        let body = json!({
            "name": rule,
            "action": "drop",
            "ipProtocol": proto,
            "placeBefore": "first",
            "source": {"addresses": addresses},
            "destination": destination,
            "description": format!("levee: {action}"),
        });
        let path = self.policy_path.clone();
        self.send(&Call::new(Method::POST, path).json(&body))?;
        Ok(Receipt::new(&self.name, action, vec![rule]))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        for rule in &receipt.ids {
            let path = format!("{}/{rule}", self.policy_path);
            gone_is_done(self.send(&Call::new(Method::DELETE, path)))?;
        }
        Ok(())
    }
}
