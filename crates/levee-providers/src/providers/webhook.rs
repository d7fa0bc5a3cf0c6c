//! The generic signed webhook: Levee POSTs each apply and withdrawal as
//! JSON to an operator's endpoint, signed so the receiver can trust it and
//! refuse replays. The contract is Levee's own, documented in
//! `docs/providers.md#generic-webhook`, in the style of Stripe's and
//! Slack's signed requests
//! (<https://docs.stripe.com/webhooks#verify-manually>,
//! <https://api.slack.com/authentication/verifying-requests-from-slack>):
//!
//! - `POST <url>`, `Content-Type: application/json`, body
//!   `{"event":"apply"|"withdraw","id":DELIVERY,"provider":NAME,"action":{..},"receipt":{..}?}`;
//! - `X-Levee-Timestamp`: Unix seconds; `X-Levee-Signature`:
//!   `v1=` + hex HMAC-SHA256(secret, timestamp + "." + body);
//!   `X-Levee-Event`: the event; `X-Levee-Delivery`: the id;
//! - the receiver refuses timestamps more than 5 minutes off and signatures
//!   it has seen; it deduplicates on `id`, so a retried delivery (same id,
//!   fresh signature) is safe;
//! - a 2xx answer may carry `{"id": "..."}`, the receiver's own reference,
//!   kept in the receipt.

use crate::action::{ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, Call, Http, HttpConfig};
use crate::secret::Secret;
use crate::sign::{unix_now, webhook_signature};
use crate::{check_receipt, Provider};
use reqwest::Method;
use serde_json::json;

pub const KIND: &str = "webhook";

/// `kind = "webhook"`: `base_url` is the receiver's URL.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The shared HMAC key.
    pub secret: crate::secret::SecretRef,
}

pub struct Webhook {
    name: String,
    http: Http,
    secret: Secret,
}

impl Webhook {
    /// `url` is the receiver's full URL.
    pub fn new(
        name: &str,
        url: &str,
        secret: Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        Ok(Webhook {
            name: name.to_string(),
            http: Http::new(name, url, cfg, generic_error)?,
            secret,
        })
    }

    fn deliver(
        &self,
        event: &str,
        body: serde_json::Value,
    ) -> Result<Option<String>, ProviderError> {
        let delivery = body["id"].as_str().unwrap_or_default().to_string();
        // Retrying is safe: receivers deduplicate on the delivery id.
        let call = Call::new(Method::POST, "")
            .json(&body)
            .header("X-Levee-Event", event)
            .header("X-Levee-Delivery", delivery)
            .idempotent();
        let secret = self.secret.clone();
        let sign = move |c: &Call, _: &str| {
            let ts = unix_now();
            Ok(vec![
                ("X-Levee-Timestamp".to_string(), ts.to_string()),
                (
                    "X-Levee-Signature".to_string(),
                    webhook_signature(secret.expose().as_bytes(), ts, c.body_bytes()),
                ),
            ])
        };
        let answer = self.http.send(&call, &sign)?;
        let id = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string));
        Ok(id)
    }
}

fn delivery_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Provider for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let id = delivery_id();
        let body = json!({"event": "apply", "id": id, "provider": self.name, "action": action});
        let theirs = self.deliver("apply", body)?;
        let mut ids = vec![id];
        ids.extend(theirs);
        Ok(Receipt::new(&self.name, action, ids))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let body = json!({"event": "withdraw", "id": delivery_id(), "provider": self.name,
                          "action": receipt.action, "receipt": receipt});
        self.deliver("withdraw", body).map(|_| ())
    }
}
