//! AWS Shield Advanced: put the attacked resources (Elastic IPs, load
//! balancers, CloudFront distributions, ...) under Shield Advanced
//! protection for the attack, and remove the protections Levee created.
//!
//! Contract (AWS Shield API reference, <https://docs.aws.amazon.com/waf/latest/DDOSAPIReference/>):
//! - endpoint `https://shield.us-east-1.amazonaws.com` (Shield's API lives
//!   in us-east-1), `POST /` with the AWS JSON 1.1 protocol:
//!   `Content-Type: application/x-amz-json-1.1`,
//!   `X-Amz-Target: AWSShield_20160616.<Operation>`;
//! - Signature Version 4, service `shield`
//!   (<https://docs.aws.amazon.com/general/latest/gr/sigv4-signed-request-examples.html>),
//!   `X-Amz-Security-Token` for temporary credentials;
//! - `DescribeProtection {"ResourceArn"}` -> `{"Protection":{"Id",..}}` or
//!   `ResourceNotFoundException`
//!   (<https://docs.aws.amazon.com/waf/latest/DDOSAPIReference/API_DescribeProtection.html>);
//! - `CreateProtection {"Name","ResourceArn"}` -> `{"ProtectionId"}`
//!   (<https://docs.aws.amazon.com/waf/latest/DDOSAPIReference/API_CreateProtection.html>);
//! - `DeleteProtection {"ProtectionId"}` -> `{}`
//!   (<https://docs.aws.amazon.com/waf/latest/DDOSAPIReference/API_DeleteProtection.html>);
//! - errors: HTTP 4xx/5xx with `{"__type": "<Exception>", "message"|"Message"}`.
//!
//! Shield protects resources, not prefixes: the configuration maps each
//! protected address (or prefix) to its resource ARN, and a diversion
//! protects every mapped resource inside the diverted prefix (or the one
//! whose prefix holds it). A resource already protected is left protected
//! on withdrawal.

use crate::action::{ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{snippet, Call, Http, HttpConfig};
use crate::secret::SecretRef;
use crate::sign::{amz_date, sigv4_authorization, unix_now, AwsCredentials, SigV4Request};
use crate::{check_receipt, divert_of, Provider};
use ipnet::IpNet;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const KIND: &str = "aws_shield";
pub const DEFAULT_BASE: &str = "https://shield.us-east-1.amazonaws.com";
const REGION: &str = "us-east-1";
const SERVICE: &str = "shield";
const TARGET_PREFIX: &str = "AWSShield_20160616";

/// `kind = "aws_shield"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub access_key_id: String,
    pub secret_access_key: SecretRef,
    #[serde(default)]
    pub session_token: Option<SecretRef>,
    /// Address or prefix -> the ARN of the resource holding it.
    pub resources: BTreeMap<String, String>,
}

pub struct AwsShield {
    name: String,
    http: Http,
    creds: AwsCredentials,
    host: String,
    resources: Vec<(IpNet, String)>,
}

/// AWS JSON 1.1 error text: (`__type` without its namespace, message).
pub fn aws_error(body: &[u8]) -> (Option<String>, String) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, snippet(body));
    };
    let kind = v["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
    let msg = v["message"]
        .as_str()
        .or(v["Message"].as_str())
        .unwrap_or_default()
        .to_string();
    (kind, msg)
}

impl AwsShield {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        creds: AwsCredentials,
        resources: &BTreeMap<String, String>,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        let base = base_url.unwrap_or(DEFAULT_BASE);
        let url = reqwest::Url::parse(base)
            .map_err(|e| ProviderError::invalid(name, format!("base_url {base:?}: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => {
                return Err(ProviderError::invalid(
                    name,
                    format!("base_url {base:?} has no host"),
                ))
            }
        };
        let mut parsed = Vec::new();
        for (k, arn) in resources {
            let net: IpNet = k
                .parse::<IpNet>()
                .or_else(|_| k.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ProviderError::invalid(
                        name,
                        format!("resources key {k:?} is not an address or prefix"),
                    )
                })?;
            if !arn.starts_with("arn:") {
                return Err(ProviderError::invalid(
                    name,
                    format!("resources.{k:?} = {arn:?} is not an ARN"),
                ));
            }
            parsed.push((net.trunc(), arn.clone()));
        }
        Ok(AwsShield {
            name: name.to_string(),
            http: Http::new(name, base, cfg, aws_error)?,
            creds,
            host,
            resources: parsed,
        })
    }

    fn call(&self, op: &str, body: &Value, idempotent: bool) -> Result<Value, ProviderError> {
        let mut call =
            Call::new(Method::POST, "/").header("X-Amz-Target", format!("{TARGET_PREFIX}.{op}"));
        call.body = Some((
            "application/x-amz-json-1.1",
            serde_json::to_vec(body).expect("JSON"),
        ));
        if idempotent {
            call = call.idempotent();
        }
        let creds = self.creds.clone();
        let host = self.host.clone();
        let sign = move |c: &Call, _: &str| {
            let date = amz_date(unix_now());
            let mut headers = vec![
                (
                    "content-type".to_string(),
                    "application/x-amz-json-1.1".to_string(),
                ),
                ("host".to_string(), host.clone()),
                ("x-amz-date".to_string(), date.clone()),
                ("x-amz-target".to_string(), format!("{TARGET_PREFIX}.{op}")),
            ];
            if let Some(t) = &creds.session_token {
                headers.push(("x-amz-security-token".to_string(), t.expose().to_string()));
            }
            let req = SigV4Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload: c.body_bytes(),
            };
            let auth = sigv4_authorization(&creds, REGION, SERVICE, &date, &req);
            let mut out = vec![
                ("X-Amz-Date".to_string(), date),
                ("Authorization".to_string(), auth),
            ];
            if let Some(t) = &creds.session_token {
                out.push(("X-Amz-Security-Token".to_string(), t.expose().to_string()));
            }
            Ok(out)
        };
        self.http.send_json(&call, &sign)
    }

    /// The resources a diversion of `prefix` protects.
    fn targets(&self, prefix: IpNet) -> Vec<(IpNet, String)> {
        self.resources
            .iter()
            .filter(|(net, _)| prefix.contains(net) || net.contains(&prefix))
            .cloned()
            .collect()
    }
}

fn is(e: &ProviderError, code: &str) -> bool {
    matches!(e, ProviderError::Http { code: Some(c), .. } if c == code)
}

impl Provider for AwsShield {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let prefix = divert_of(&self.name, KIND, action)?;
        let targets = self.targets(prefix);
        if targets.is_empty() {
            return Err(ProviderError::invalid(
                &self.name,
                format!("no resource in `resources` lies in {prefix}; map the attacked addresses to their ARNs"),
            ));
        }
        let mut created: Vec<String> = Vec::new();
        for (net, arn) in targets {
            match self.call("DescribeProtection", &json!({"ResourceArn": arn}), true) {
                Ok(_) => continue,
                Err(e) if is(&e, "ResourceNotFoundException") => {}
                Err(e) => return Err(self.undo_after(e, &created)),
            }
            let name = format!("levee-{}", net.to_string().replace(['/', ':'], "-"));
            match self.call(
                "CreateProtection",
                &json!({"Name": name, "ResourceArn": arn}),
                false,
            ) {
                Ok(v) => match v["ProtectionId"].as_str() {
                    Some(id) => created.push(id.to_string()),
                    None => {
                        let e = ProviderError::protocol(
                            &self.name,
                            &self.http.url("/"),
                            "CreateProtection answered no ProtectionId",
                        );
                        return Err(self.undo_after(e, &created));
                    }
                },
                // Protected meanwhile by someone else: theirs to keep.
                Err(e) if is(&e, "ResourceAlreadyExistsException") => {}
                Err(e) => return Err(self.undo_after(e, &created)),
            }
        }
        Ok(Receipt::new(&self.name, action, created))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        for id in &receipt.ids {
            match self.call("DeleteProtection", &json!({"ProtectionId": id}), true) {
                Ok(_) => {}
                Err(e) if is(&e, "ResourceNotFoundException") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl AwsShield {
    fn undo_after(&self, e: ProviderError, created: &[String]) -> ProviderError {
        for id in created {
            if let Err(u) = self.call("DeleteProtection", &json!({"ProtectionId": id}), true) {
                tracing::warn!(provider = %self.name, protection = %id, "cannot undo after a failed apply: {u}");
            }
        }
        e
    }
}
