//! What the Cloudflare API v4 providers share: bearer-token authentication
//! with an API token (`Authorization: Bearer`, the scheme Cloudflare
//! prefers over the global key; see the security section of e.g.
//! <https://developers.cloudflare.com/api/go/resources/firewall/subresources/access_rules/methods/create>),
//! the response envelope `{"success","errors":[{"code","message"}],
//! "messages","result"}` and its error text (same page, "Returns").

use crate::error::ProviderError;
use crate::http::{generic_error, Auth, Call, Http};
use crate::secret::Secret;
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub const DEFAULT_BASE: &str = "https://api.cloudflare.com/client/v4";

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<CfError>,
    result: Option<T>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CfError {
    #[serde(default)]
    pub code: serde_json::Value,
    #[serde(default)]
    pub message: String,
}

/// A Cloudflare API client: an [`Http`] plus the token.
pub struct Client {
    pub http: Http,
    token: Secret,
}

impl Client {
    pub fn new(http: Http, token: Secret) -> Self {
        Client { http, token }
    }

    fn auth(&self) -> impl Fn(&Call, &str) -> Result<Vec<(String, String)>, ProviderError> + '_ {
        move |_: &Call, _: &str| {
            Ok(vec![(
                "Authorization".to_string(),
                format!("Bearer {}", self.token.expose()),
            )])
        }
    }

    /// Sends `call` and unwraps `result`.
    pub fn call<T: DeserializeOwned>(&self, call: &Call) -> Result<T, ProviderError> {
        let auth = self.auth();
        let auth: Auth<'_> = &auth;
        let env: Envelope<T> = self.http.send_json(call, auth)?;
        let url = self.http.url(&call.path);
        if !env.success {
            let (code, message) = join(&env.errors);
            return Err(ProviderError::Http {
                provider: self.http.provider().to_string(),
                method: call.method.to_string(),
                url,
                status: 200,
                code,
                message,
            });
        }
        env.result.ok_or_else(|| {
            ProviderError::protocol(self.http.provider(), &url, "success without a result")
        })
    }
}

fn join(errors: &[CfError]) -> (Option<String>, String) {
    let code = errors.first().map(|e| match &e.code {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let msg: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    (code, msg.join("; "))
}

/// Error text of a Cloudflare error body.
pub fn cf_error(body: &[u8]) -> (Option<String>, String) {
    generic_error(body)
}

/// Whether an error is Cloudflare saying the object already exists.
pub fn is_duplicate(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Http { status: 400 | 409, message, .. } if message.contains("duplicate"))
}
