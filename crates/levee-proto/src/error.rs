//! The error body every non-2xx API answer carries.

use serde::{Deserialize, Serialize};

/// `{"error": "...", "field": "..."}`: what went wrong and, for bad input, the
/// JSON path of the offending field (e.g. `samples[3].dt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// One invalid field, found by a `validate` method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// JSON path, e.g. `allowlist[2]`.
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Collects field problems; `check` records one when `ok` is false.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn check(&mut self, ok: bool, field: impl Into<String>, problem: impl Into<String>) {
        if !ok {
            self.0.push(FieldError::new(field, problem));
        }
    }

    /// A non-empty name of at most [`crate::limits::MAX_NAME_LEN`] bytes without
    /// control characters.
    pub fn name(&mut self, value: &str, field: impl Into<String>) {
        let field = field.into();
        self.check(!value.is_empty(), field.clone(), "must not be empty");
        self.check(
            value.len() <= crate::limits::MAX_NAME_LEN,
            field.clone(),
            format!("at most {} bytes", crate::limits::MAX_NAME_LEN),
        );
        self.check(
            !value.chars().any(char::is_control),
            field,
            "must not contain control characters",
        );
    }

    pub fn finite(&mut self, value: f64, field: impl Into<String>) {
        self.check(
            value.is_finite() && value >= 0.0,
            field,
            "must be a finite number >= 0",
        );
    }

    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
