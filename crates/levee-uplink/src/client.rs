//! The agent endpoints of the server API over pinned TLS.

use crate::pin::{client_config, PinVerifier, Trust};
use levee_proto::{
    paths, AgentAnswer, ApiErrorBody, EnrollRequest, EnrollResponse, EventBatch, EventsAccepted,
    Fingerprint, Heartbeat, TelemetryBatch,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server URL `{0}` must start with https:// (the uplink speaks TLS only)")]
    BadUrl(String),
    #[error("cannot reach {url}: {detail}")]
    Transport { url: String, detail: String },
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        field: Option<String>,
    },
    #[error("{url} sent an answer this agent cannot read: {detail}")]
    Decode { url: String, detail: String },
}

impl ClientError {
    /// Worth retrying later: the network, the server being busy or down.
    /// Other answers (400, 401, 404...) will not change by retrying.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            ClientError::BadUrl(_) | ClientError::Decode { .. } => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The full chain of an error (reqwest hides the cause, e.g. the pin mismatch).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    verifier: Arc<PinVerifier>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    /// A client of `base` (`https://host:port`) trusting per `trust`, with the
    /// agent key when enrolled.
    pub fn new(
        base: &str,
        trust: Trust,
        key: Option<String>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("https://") {
            return Err(ClientError::BadUrl(base));
        }
        let verifier = Arc::new(PinVerifier::new(trust));
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(client_config(verifier.clone()))
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("levee-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.clone(),
                detail: chain(&e),
            })?;
        Ok(Client {
            http,
            base,
            key,
            verifier,
        })
    }

    /// A client pinned to `fingerprint` with `key`.
    pub fn pinned(
        base: &str,
        fingerprint: Fingerprint,
        key: &str,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Client::new(
            base,
            Trust::Pinned(fingerprint),
            Some(key.to_string()),
            timeout,
        )
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The server certificate's fingerprint as seen (first use) or pinned.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.verifier.seen()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let req = match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let resp = req.send().await.map_err(|e| ClientError::Transport {
            url: url.to_string(),
            detail: chain(&e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let parsed: Option<ApiErrorBody> = serde_json::from_slice(&body).ok();
        Err(ClientError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            message: parsed
                .as_ref()
                .map(|b| b.error.clone())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect()),
            field: parsed.and_then(|b| b.field),
        })
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let url = self.url(path);
        let resp = self.send(self.http.post(&url).json(body), &url).await?;
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            detail: chain(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            detail: e.to_string(),
        })
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        let url = self.url("/healthz");
        self.send(self.http.get(&url), &url).await.map(|_| ())
    }

    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        self.post(paths::ENROLL, req).await
    }

    pub async fn telemetry(&self, batch: &TelemetryBatch) -> Result<AgentAnswer, ClientError> {
        self.post(paths::TELEMETRY, batch).await
    }

    pub async fn events(&self, batch: &EventBatch) -> Result<EventsAccepted, ClientError> {
        self.post(paths::EVENTS, batch).await
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<AgentAnswer, ClientError> {
        self.post(paths::HEARTBEAT, hb).await
    }

    pub async fn upload_pcap(&self, incident_id: &str, data: Vec<u8>) -> Result<(), ClientError> {
        let url = self.url(&paths::pcap(incident_id));
        let req = self
            .http
            .post(&url)
            .header("content-type", "application/vnd.tcpdump.pcap")
            .body(data);
        self.send(req, &url).await.map(|_| ())
    }
}
