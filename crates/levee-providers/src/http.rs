//! The HTTP edge shared by every provider: one blocking client with
//! timeouts and the Mozilla root store, retries only where repeating a call
//! cannot do something twice (idempotent methods, or a connection that was
//! never made), `Retry-After` honoured up to a bound, and failures turned
//! into [`ProviderError`]s carrying the provider's own error text.
//!
//! Authentication is a per-attempt callback because two schemes sign the
//! time (OVH, AWS SigV4): a retried request gets a fresh signature. Logs
//! name the method, path and status, never a header or a body.

use crate::error::ProviderError;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Timeouts and retries of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Whole-request timeout (connect + send + answer).
    pub timeout: Duration,
    /// Extra attempts for calls that are safe to repeat.
    pub max_retries: u32,
    /// Longest wait before a retry; a `Retry-After` beyond it is returned
    /// to the caller as [`ProviderError::RateLimited`] instead.
    pub max_retry_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(15),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(10),
        }
    }
}

/// One request, before authentication.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// Path and query after the base URL, already percent-encoded.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Content type and bytes.
    pub body: Option<(&'static str, Vec<u8>)>,
    /// Safe to send twice even though the method is not idempotent (e.g.
    /// a PATCH that sets a flag to a value).
    pub idempotent: bool,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            idempotent: false,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Call::new(Method::GET, path)
    }

    pub fn json(mut self, v: &impl serde::Serialize) -> Self {
        let bytes = serde_json::to_vec(v).expect("provider request bodies serialise");
        self.body = Some(("application/json", bytes));
        self
    }

    pub fn form(mut self, body: String) -> Self {
        self.body = Some(("application/x-www-form-urlencoded", body.into_bytes()));
        self
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_ref().map(|b| b.1.as_slice()).unwrap_or(&[])
    }

    fn repeatable(&self) -> bool {
        self.idempotent
            || matches!(
                self.method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            )
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self, provider: &str, url: &str) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::protocol(
                provider,
                url,
                format!(
                    "body is not the documented JSON ({e}): {}",
                    snippet(&self.body)
                ),
            )
        })
    }
}

/// Extracts (code, message) from a provider's error body.
pub type ErrorParser = fn(&[u8]) -> (Option<String>, String);

/// Adds authentication headers to one attempt: gets the call and the full
/// URL, returns headers.
pub type Auth<'a> = &'a dyn Fn(&Call, &str) -> Result<Vec<(String, String)>, ProviderError>;

/// No authentication.
pub fn no_auth(_: &Call, _: &str) -> Result<Vec<(String, String)>, ProviderError> {
    Ok(Vec::new())
}

/// The HTTP client of one provider.
#[derive(Clone)]
pub struct Http {
    client: Client,
    provider: String,
    base: String,
    cfg: HttpConfig,
    parse_error: ErrorParser,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("provider", &self.provider)
            .field("base", &self.base)
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl Http {
    pub fn new(
        provider: &str,
        base_url: &str,
        cfg: HttpConfig,
        parse_error: ErrorParser,
    ) -> Result<Self, ProviderError> {
        let url = reqwest::Url::parse(base_url).map_err(|e| {
            ProviderError::invalid(provider, format!("base_url {base_url:?} is not a URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProviderError::invalid(
                provider,
                format!("base_url {base_url:?} must be http:// or https://"),
            ));
        }
        let client = client_builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("levee/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Transport {
                provider: provider.to_string(),
                url: base_url.to_string(),
                detail: chain(&e),
            })?;
        Ok(Http {
            client,
            provider: provider.to_string(),
            base: base_url.trim_end_matches('/').to_string(),
            cfg,
            parse_error,
        })
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The base URL's path (`/1.0` of `https://eu.api.ovh.com/1.0`).
    pub fn base_path(&self) -> String {
        reqwest::Url::parse(&self.base)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// Sends `call`, retrying where safe; a non-2xx answer is an error.
    pub fn send(&self, call: &Call, auth: Auth<'_>) -> Result<Answer, ProviderError> {
        let url = self.url(&call.path);
        let shown = strip_query(&url);
        let mut attempt = 0u32;
        loop {
            let outcome = self.attempt(call, &url, auth);
            let retry_in = match &outcome {
                Ok(_) | Err(Failure::Auth(_)) => None,
                Err(Failure::Transport { connect, .. }) => {
                    (call.repeatable() || *connect).then(|| backoff(attempt))
                }
                Err(Failure::Status {
                    status, headers, ..
                }) => {
                    let wait = retry_after(headers).unwrap_or_else(|| backoff(attempt));
                    let transient = *status == 429 || matches!(status, 502..=504);
                    (transient && call.repeatable() && wait <= self.cfg.max_retry_wait)
                        .then_some(wait)
                }
            };
            match (outcome, retry_in) {
                (Ok(a), _) => {
                    tracing::debug!(provider = %self.provider, method = %call.method, url = %shown, status = a.status, "provider call");
                    return Ok(a);
                }
                (Err(f), Some(wait)) if attempt < self.cfg.max_retries => {
                    tracing::info!(provider = %self.provider, method = %call.method, url = %shown, attempt, wait_ms = wait.as_millis() as u64, "retrying provider call: {}", f.short());
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                (Err(f), _) => return Err(self.error(call, &shown, f)),
            }
        }
    }

    /// Sends with one fixed header (a bearer token, basic credentials, a
    /// session cookie).
    pub fn send_with(
        &self,
        call: &Call,
        header: &str,
        value: &str,
    ) -> Result<Answer, ProviderError> {
        let (h, v) = (header.to_string(), value.to_string());
        self.send(call, &move |_: &Call, _: &str| {
            Ok(vec![(h.clone(), v.clone())])
        })
    }

    /// Sends `call` and decodes the JSON answer.
    pub fn send_json<T: DeserializeOwned>(
        &self,
        call: &Call,
        auth: Auth<'_>,
    ) -> Result<T, ProviderError> {
        let a = self.send(call, auth)?;
        a.json(&self.provider, &strip_query(&self.url(&call.path)))
    }

    fn attempt(&self, call: &Call, url: &str, auth: Auth<'_>) -> Result<Answer, Failure> {
        let extra = auth(call, url).map_err(|e| Failure::Auth(Box::new(e)))?;
        let mut rb = self.client.request(call.method.clone(), url);
        for (k, v) in call.headers.iter().chain(extra.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb = rb.header("Accept", "application/json");
        if let Some((ct, bytes)) = &call.body {
            rb = rb.header("Content-Type", *ct).body(bytes.clone());
        }
        let resp = rb.send().map_err(|e| Failure::Transport {
            connect: e.is_connect(),
            detail: chain(&e),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .map_err(|e| Failure::Transport {
                connect: false,
                detail: chain(&e),
            })?
            .to_vec();
        if (200..300).contains(&status) {
            Ok(Answer {
                status,
                headers,
                body,
            })
        } else {
            Err(Failure::Status {
                status,
                headers,
                body,
            })
        }
    }

    fn error(&self, call: &Call, url: &str, f: Failure) -> ProviderError {
        match f {
            Failure::Auth(e) => *e,
            Failure::Transport { detail, .. } => ProviderError::Transport {
                provider: self.provider.clone(),
                url: url.to_string(),
                detail,
            },
            Failure::Status {
                status,
                headers,
                body,
            } => {
                let (code, message) = (self.parse_error)(&body);
                let message = if message.is_empty() {
                    snippet(&body)
                } else {
                    message
                };
                if status == 429 {
                    ProviderError::RateLimited {
                        provider: self.provider.clone(),
                        method: call.method.to_string(),
                        url: url.to_string(),
                        retry_after: retry_after(&headers),
                        message,
                    }
                } else {
                    ProviderError::Http {
                        provider: self.provider.clone(),
                        method: call.method.to_string(),
                        url: url.to_string(),
                        status,
                        code,
                        message,
                    }
                }
            }
        }
    }
}

/// A 404 counts as done: withdrawing what is already gone converges.
pub fn gone_is_done<T>(r: Result<T, ProviderError>) -> Result<(), ProviderError> {
    match r {
        Ok(_) | Err(ProviderError::Http { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

enum Failure {
    Auth(Box<ProviderError>),
    Transport {
        connect: bool,
        detail: String,
    },
    Status {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
}

impl Failure {
    fn short(&self) -> String {
        match self {
            Failure::Auth(e) => e.to_string(),
            Failure::Transport { detail, .. } => detail.clone(),
            Failure::Status { status, .. } => format!("HTTP {status}"),
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)))
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 section 10.2.3).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// The start of a body, for messages.
pub fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return "(empty body)".to_string();
    }
    let mut out: String = s.chars().take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A bare client with the same TLS setup (for tools and tests that talk
/// to provider-like endpoints directly).
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    Client::builder().use_preconfigured_tls(tls_config())
}

/// TLS with the Mozilla roots (webpki-roots): providers are public
/// services with publicly trusted certificates, and a built-in store works
/// the same in a minimal container as on a full host.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg
}

/// Error text from the common JSON shapes: `{"message"}`, `{"error":
/// {"message","code"}}`, `{"errors":[{"message","code"}]}`, `{"error":"..."}`.
pub fn generic_error(body: &[u8]) -> (Option<String>, String) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, snippet(body));
    };
    let code_of = |o: &serde_json::Value| -> Option<String> {
        o.get("code").map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
        if let Some(first) = errs.first() {
            let msg: Vec<String> = errs
                .iter()
                .filter_map(|e| {
                    e.get("message")
                        .or_else(|| e.get("reason"))
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .collect();
            return (code_of(first), msg.join("; "));
        }
    }
    if let Some(e) = v.get("error") {
        if let Some(s) = e.as_str() {
            return (None, s.to_string());
        }
        if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
            return (code_of(e), m.to_string());
        }
    }
    if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
        let code = code_of(&v).or_else(|| {
            ["errorCode", "class", "__type", "id"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|c| c.as_str()).map(str::to_string))
        });
        return (code, m.to_string());
    }
    (None, snippet(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_shapes_give_code_and_message() {
        let cf = br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#;
        assert_eq!(
            generic_error(cf),
            (Some("10000".into()), "Authentication error".into())
        );
        let hz =
            br#"{"error":{"status":404,"code":"SERVER_NOT_FOUND","message":"Server not found"}}"#;
        assert_eq!(
            generic_error(hz),
            (Some("SERVER_NOT_FOUND".into()), "Server not found".into())
        );
        assert_eq!(generic_error(b"oops"), (None, "oops".into()));
    }
}
