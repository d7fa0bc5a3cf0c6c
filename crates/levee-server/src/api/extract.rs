//! Request extractors: authenticated callers ([`UserAuth`], [`AgentAuth`]),
//! JSON bodies that are validated ([`Body`]) and query strings ([`Q`]), each
//! failing with an [`ApiError`] that names the field.

use super::error::ApiError;
use crate::auth::{hash_secret, Identity};
use crate::model::Role;
use crate::store::auth::{AgentIdentity, UserIdentity};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use levee_proto::FieldError;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Something that can check itself, naming every bad field.
pub trait Validate {
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}

impl Validate for levee_proto::TelemetryBatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::TelemetryBatch::validate(self)
    }
}
impl Validate for levee_proto::EventBatch {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::EventBatch::validate(self)
    }
}
impl Validate for levee_proto::Heartbeat {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::Heartbeat::validate(self)
    }
}
impl Validate for levee_proto::EnrollRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::EnrollRequest::validate(self)
    }
}
impl Validate for levee_proto::Policy {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::Policy::validate(self)
    }
}

/// The client's address (from the connection; `0.0.0.0` in in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the bearer credential of a request (cache, then database).
/// Every failure spends from the client address's budget.
async fn identify(parts: &Parts, state: &AppState) -> Result<Identity, ApiError> {
    let ClientIp(ip) = ClientIp::from_request_parts(&mut parts.clone(), state)
        .await
        .unwrap_or(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    let fail = || {
        state.metrics.auth_failures.inc();
        match state.limiter.failure(ip) {
            Ok(()) => ApiError::Unauthorized,
            Err(retry_after) => {
                state.metrics.rate_limited.inc();
                ApiError::TooMany { retry_after }
            }
        }
    };
    let Some(token) = bearer(parts).filter(|t| !t.is_empty() && t.len() <= 256) else {
        return Err(fail());
    };
    let hash = hash_secret(token);
    if let Some(id) = state.cache.get(&hash) {
        return Ok(id);
    }
    let id = if token.starts_with(crate::auth::AGENT_KEY_PREFIX) {
        state
            .store
            .agent_by_key_hash(&hash)
            .await?
            .map(Identity::Agent)
    } else {
        state
            .store
            .user_by_token_hash(&hash)
            .await?
            .map(Identity::User)
    };
    match id {
        Some(id) => {
            state.cache.put(hash, id.clone());
            Ok(id)
        }
        None => Err(fail()),
    }
}

/// A user's API token. Agent keys are refused here (401).
#[derive(Debug, Clone)]
pub struct UserAuth(pub UserIdentity);

impl UserAuth {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; the token's user is {}",
                role.name(),
                self.0.role.name()
            )))
        }
    }

    pub fn tenant(&self) -> i64 {
        self.0.tenant_id
    }
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match identify(parts, state).await? {
            Identity::User(u) => Ok(UserAuth(u)),
            Identity::Agent(_) => Err(ApiError::Unauthorized),
        }
    }
}

/// An agent's key. User tokens are refused here (401).
#[derive(Debug, Clone)]
pub struct AgentAuth(pub AgentIdentity);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match identify(parts, state).await? {
            Identity::Agent(a) => Ok(AgentAuth(a)),
            Identity::User(_) => Err(ApiError::Unauthorized),
        }
    }
}

/// Maps a body read failure: over the limit is 413, anything else 400.
pub fn body_error(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge { limit }
    } else {
        ApiError::field("body", e.body_text())
    }
}

/// Parses JSON naming the path of a bad field (`samples[2].dt`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let at = if path.is_empty() || path == "." {
            None
        } else {
            Some(path)
        };
        match (missing_field(&inner), at) {
            (Some(f), Some(p)) => ApiError::field(format!("{p}.{f}"), "missing"),
            (Some(f), None) => ApiError::field(f, "missing"),
            (None, Some(p)) => ApiError::field(p, inner),
            (None, None) => ApiError::field("body", format!("invalid JSON: {inner}")),
        }
    })
}

/// The field a serde "missing field `x`" error is about (serde reports the
/// enclosing path, not the field itself).
fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// A JSON body, parsed and validated.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Validate> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, state.cfg.body_limit_bytes))?;
        // An empty body means "all defaults" (e.g. POST /enrollment-tokens).
        let value: T = parse_json(if bytes.is_empty() { b"{}" } else { &bytes })?;
        value.validate().map_err(ApiError::invalid)?;
        Ok(Body(value))
    }
}

/// A query string, parsed with the bad parameter named.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Q).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ApiError::field("query", inner.to_string())
            } else {
                ApiError::field(path, inner.to_string())
            }
        })
    }
}
