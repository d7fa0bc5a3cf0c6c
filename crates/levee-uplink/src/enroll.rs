//! Enrollment: trade a one-time token for the node's key and pin the
//! server's certificate.
//!
//! With `--server-fingerprint` the certificate must match it from the first
//! byte. Without, the fingerprint presented during enrollment is pinned
//! (trust on first use) and logged so the operator can compare it with the
//! one the server printed.

use crate::client::{Client, ClientError};
use crate::creds::{Credentials, CredsError};
use crate::pin::Trust;
use levee_proto::{EnrollRequest, Fingerprint};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("enrollment refused by {server}: the token is unknown, used or expired (ask for a new one: POST /api/v1/enrollment-tokens)")]
    Refused { server: String },
    #[error("enrollment failed: {0}")]
    Client(#[from] ClientError),
    #[error(transparent)]
    Creds(#[from] CredsError),
    #[error("cannot start the enrollment runtime: {0}")]
    Runtime(std::io::Error),
}

/// Enrolls this node and saves its credentials in `state_dir`.
pub async fn enroll(
    server: &str,
    token: &str,
    node: &str,
    interfaces: &[String],
    fingerprint: Option<Fingerprint>,
    state_dir: &Path,
) -> Result<Credentials, EnrollError> {
    let trust = match fingerprint {
        Some(f) => Trust::Pinned(f),
        None => Trust::FirstUse(Mutex::new(None)),
    };
    let client = Client::new(server, trust, None, Duration::from_secs(15))?;
    let req = EnrollRequest {
        token: token.to_string(),
        node: node.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        interfaces: interfaces.to_vec(),
    };
    let resp = match client.enroll(&req).await {
        Ok(r) => r,
        Err(e) if e.status() == Some(401) => {
            return Err(EnrollError::Refused {
                server: client.base().to_string(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let seen = client
        .fingerprint()
        .expect("a TLS connection was made, so a certificate was seen");
    if fingerprint.is_none() {
        tracing::warn!(
            "pinned the server certificate {seen} on first use; compare it with the fingerprint `levee server` printed"
        );
    }
    let creds = Credentials {
        server: client.base().to_string(),
        fingerprint: seen,
        node_id: resp.node_id,
        node: resp.node,
        tenant: resp.tenant,
        agent_key: resp.agent_key,
        heartbeat_interval_s: resp.heartbeat_interval_s,
    };
    let path = creds.save(state_dir)?;
    tracing::info!(
        node = %creds.node,
        tenant = %creds.tenant,
        node_id = creds.node_id,
        "enrolled with {}; credentials in {}",
        creds.server,
        path.display()
    );
    Ok(creds)
}

/// [`enroll`] for callers without a runtime (the CLI, before the agent starts).
pub fn enroll_blocking(
    server: &str,
    token: &str,
    node: &str,
    interfaces: &[String],
    fingerprint: Option<Fingerprint>,
    state_dir: &Path,
) -> Result<Credentials, EnrollError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EnrollError::Runtime)?
        .block_on(enroll(
            server,
            token,
            node,
            interfaces,
            fingerprint,
            state_dir,
        ))
}
