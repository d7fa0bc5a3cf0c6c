//! Radware DefensePro through APSolute Vision (or CyberController) REST:
//! a block-list rule for the attack's sources on a DefensePro.
//!
//! Contract. Radware's Vision REST reference ships with the product and is
//! not public; this follows the calls as Radware's users document and use
//! them: "Configuration of DefensePro devices with Vision API calls"
//! (<https://github.com/ilieneagu/Radware---DP-config>, `dp_cfg.py`: login,
//! lock, `rsBWMNetworkTable`, `rsNewBlockListTable`, `updatepolicies`) and
//! the DefensePro CLI it mirrors (`classes modify network add`,
//! `dp block-allow-lists blocklist table create NAME -sn CLASS -dn any -a drop`):
//! - `POST /mgmt/system/user/login` `{"username","password"}` answers
//!   `{"status":"ok","jsessionid":..}`; the session travels as the
//!   `JSESSIONID` cookie;
//! - `POST /mgmt/system/config/tree/device/byip/{dp}/lock` before changing a
//!   device's configuration, `.../unlock` after;
//! - network class rows: `POST /mgmt/device/byip/{dp}/config/rsBWMNetworkTable/{class}/{index}`
//!   `{"rsBWMNetworkAddress","rsBWMNetworkMask"}`, removed with `DELETE` on
//!   the same path;
//! - block-list rules: `POST /mgmt/device/byip/{dp}/config/rsNewBlockListTable/{name}`
//!   `{"rsNewBlockListSrcNetwork": CLASS,"rsNewBlockListDstNetwork": CLASS|"any"}`,
//!   removed with `DELETE`;
//! - `POST /mgmt/device/byip/{dp}/config/updatepolicies` makes the change
//!   active;
//! - errors: `{"status":"error","message":"M_nnnnn: ..."}` (sometimes with
//!   HTTP 200, so the body's status is checked too).
//!
//! A block creates a source network class `levee_<tag>` (one row per
//! source prefix), a destination class `levee_<tag>_d` when the action
//! names a destination, and one block-list rule `levee_<tag>`. Protocol
//! and ports are not narrowed: the block list is keyed by networks here.
//! The device is always unlocked again, also after a failure, and a
//! failure part-way removes what was created.

use crate::action::{Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, gone_is_done, Answer, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

pub const KIND: &str = "radware_defensepro";

/// `kind = "radware_defensepro"`; `base_url` is the Vision / CyberController
/// address, required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The DefensePro's management address as Vision knows it.
    pub device_ip: String,
    pub user: String,
    pub password: SecretRef,
}

pub struct DefensePro {
    name: String,
    http: Http,
    device: String,
    user: String,
    password: Secret,
    session: Option<Secret>,
}

impl DefensePro {
    pub fn new(
        name: &str,
        base_url: &str,
        device_ip: &str,
        user: &str,
        password: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        if device_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ProviderError::invalid(
                name,
                format!("device_ip {device_ip:?} must be the DefensePro's management IP"),
            ));
        }
        Ok(DefensePro {
            name: name.to_string(),
            http: Http::new(name, base_url, cfg, generic_error)?,
            device: device_ip.to_string(),
            user: user.to_string(),
            password,
            session: None,
        })
    }

    fn login(&mut self) -> Result<Secret, ProviderError> {
        let call = Call::new(Method::POST, "/mgmt/system/user/login")
            .json(&json!({"username": self.user, "password": self.password.expose()}));
        let v: Value = self.http.send_json(&call, &crate::http::no_auth)?;
        let url = self.http.url(&call.path);
        if v["status"] != json!("ok") {
            return Err(self.body_error(&call, &url, &v));
        }
        let s = v["jsessionid"].as_str().ok_or_else(|| {
            ProviderError::protocol(&self.name, &url, "login answered no jsessionid")
        })?;
        let s = Secret::new(s);
        self.session = Some(s.clone());
        Ok(s)
    }

    fn body_error(&self, call: &Call, url: &str, v: &Value) -> ProviderError {
        let (code, message) = generic_error(v.to_string().as_bytes());
        ProviderError::Http {
            provider: self.name.clone(),
            method: call.method.to_string(),
            url: url.to_string(),
            status: 200,
            code,
            message,
        }
    }

    /// Sends with the session (logging in first); a body saying
    /// `"status":"error"` is an error whatever the HTTP status.
    fn send(&mut self, call: &Call) -> Result<Answer, ProviderError> {
        let session = match self.session.clone() {
            Some(s) => s,
            None => self.login()?,
        };
        let cookie = format!("JSESSIONID={}", session.expose());
        let a = self.http.send_with(call, "Cookie", &cookie)?;
        if let Ok(v) = serde_json::from_slice::<Value>(&a.body) {
            if v["status"] == json!("error") {
                return Err(self.body_error(call, &self.http.url(&call.path), &v));
            }
        }
        Ok(a)
    }

    fn lock(&mut self, verb: &str) -> Result<(), ProviderError> {
        let path = format!(
            "/mgmt/system/config/tree/device/byip/{}/{verb}",
            self.device
        );
        self.send(&Call::new(Method::POST, path)).map(|_| ())
    }

    fn config_path(&self, rest: &str) -> String {
        format!("/mgmt/device/byip/{}/config/{rest}", self.device)
    }

    fn delete(&mut self, rest: &str) -> Result<(), ProviderError> {
        let path = self.config_path(rest);
        gone_is_done(self.send(&Call::new(Method::DELETE, path)))
    }

    /// Runs `f` with the device locked; unlocks whatever happens.
    fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        self.lock("lock")?;
        let out = f(self);
        let unlocked = self.lock("unlock");
        match (out, unlocked) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e),
            (Err(e), Err(u)) => {
                tracing::warn!(provider = %self.name, "cannot unlock the device after a failure: {u}");
                Err(e)
            }
            (Err(e), Ok(())) => Err(e),
        }
    }

    /// Creates the rows of a network class; returns their paths.
    fn add_class(
        &mut self,
        class: &str,
        nets: &[IpNet],
        made: &mut Vec<String>,
    ) -> Result<(), ProviderError> {
        for (i, n) in nets.iter().enumerate() {
            let rest = format!("rsBWMNetworkTable/{class}/{}", i + 1);
            let body = json!({"rsBWMNetworkAddress": n.trunc().addr().to_string(),
                              "rsBWMNetworkMask": n.prefix_len().to_string()});
            let path = self.config_path(&rest);
            self.send(&Call::new(Method::POST, path).json(&body))?;
            made.push(rest);
        }
        Ok(())
    }

    fn update_policies(&mut self) -> Result<(), ProviderError> {
        let path = self.config_path("updatepolicies");
        self.send(&Call::new(Method::POST, path)).map(|_| ())
    }
}

impl Provider for DefensePro {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block { sources, dst, .. } = block_of(&self.name, KIND, action)?;
        if sources.is_empty() {
            return Err(ProviderError::invalid(
                &self.name,
                "a block needs at least one source",
            ));
        }
        let tag = format!("levee_{}", hex::encode(rand::random::<[u8; 3]>()));
        // Rows are removed in reverse: the rule first, then its classes.
        let mut made: Vec<String> = Vec::new();
        let result = self.locked(|me| {
            me.add_class(&tag, sources, &mut made)?;
            let dst_class = match dst {
                Some(d) => {
                    let c = format!("{tag}_d");
                    me.add_class(&c, &[d], &mut made)?;
                    c
                }
                None => "any".to_string(),
            };
            let rest = format!("rsNewBlockListTable/{tag}");
            let body = json!({"rsNewBlockListSrcNetwork": tag, "rsNewBlockListDstNetwork": dst_class,
                              "rsNewBlockListDescription": format!("levee: {action}")});
            let path = me.config_path(&rest);
            me.send(&Call::new(Method::POST, path).json(&body))?;
            made.push(rest);
            me.update_policies()
        });
        match result {
            Ok(()) => {
                made.reverse();
                Ok(Receipt::new(&self.name, action, made))
            }
            Err(e) => {
                let undo: Vec<String> = made.into_iter().rev().collect();
                let cleanup = self.locked(|me| {
                    for rest in &undo {
                        me.delete(rest)?;
                    }
                    me.update_policies()
                });
                if let Err(u) = cleanup {
                    tracing::warn!(provider = %self.name, "cannot undo after a failed apply: {u}");
                }
                Err(e)
            }
        }
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let rows = receipt.ids.clone();
        if rows.iter().any(|r| {
            !(r.starts_with("rsNewBlockListTable/") || r.starts_with("rsBWMNetworkTable/"))
        }) {
            return Err(ProviderError::invalid(
                &self.name,
                "receipt holds rows that are not Levee's block-list rows",
            ));
        }
        self.locked(|me| {
            for rest in &rows {
                me.delete(rest)?;
            }
            me.update_policies()
        })
    }
}
