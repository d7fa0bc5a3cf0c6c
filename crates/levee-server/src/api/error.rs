//! API errors and how they look on the wire: a status and an
//! [`ApiErrorBody`] naming what went wrong (and the field, for bad input).

use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use levee_proto::{ApiErrorBody, FieldError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing, unknown, expired or revoked credential")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("too many attempts; retry in {}s", .retry_after.as_secs().max(1))]
    TooMany { retry_after: Duration },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::BadRequest {
            message: format!("{field}: {}", message.into()),
            field: Some(field),
        }
    }

    /// All problems of a validation, the first one's field named.
    pub fn invalid(problems: Vec<FieldError>) -> Self {
        ApiError::BadRequest {
            field: problems.first().map(|p| p.field.clone()),
            message: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            // The detail is for the operator's log, not for the client.
            tracing::error!("{detail}");
        }
        let body = ApiErrorBody {
            error: self.to_string(),
            field: match &self {
                ApiError::BadRequest { field, .. } => field.clone(),
                _ => None,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        match &self {
            ApiError::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooMany { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
