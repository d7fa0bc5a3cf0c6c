//! The one error type every provider returns. Each variant names the
//! provider (the configured `name`), and HTTP failures carry the status and
//! the provider's own error text, so an operator reading the message knows
//! whom to ask and what they said. No variant ever holds a secret: URLs are
//! recorded without query strings and bodies are the provider's answers.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("provider {provider}: {method} {url} answered HTTP {status}{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Http {
        provider: String,
        method: String,
        url: String,
        status: u16,
        /// The provider's own error code when it gives one (`10000`,
        /// `SERVER_NOT_FOUND`, `AccessDeniedException`, ...).
        code: Option<String>,
        /// The provider's own error message.
        message: String,
    },
    /// HTTP 429: the provider asks us to slow down.
    #[error("provider {provider}: {method} {url} was rate limited (HTTP 429){}: {message}", retry_after.map(|d| format!(", retry after {}", humantime::format_duration(d))).unwrap_or_default())]
    RateLimited {
        provider: String,
        method: String,
        url: String,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No answer: connection refused, TLS failure, timeout.
    #[error(
        "provider {provider}: cannot reach {url}: {detail} (check base_url and the network path)"
    )]
    Transport {
        provider: String,
        url: String,
        detail: String,
    },
    /// An answer we cannot use: not the documented shape.
    #[error("provider {provider}: unexpected answer from {url}: {detail}")]
    Protocol {
        provider: String,
        url: String,
        detail: String,
    },
    /// The provider's API cannot express this action.
    #[error("provider {provider} ({kind}) cannot {what}: {why}")]
    Unsupported {
        provider: String,
        kind: &'static str,
        what: String,
        why: String,
    },
    /// The action or receipt does not fit this provider's configuration.
    #[error("provider {provider}: {detail}")]
    Invalid { provider: String, detail: String },
}

impl ProviderError {
    /// The HTTP status, when the provider answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Http { status, .. } => Some(*status),
            ProviderError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether trying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Http { status, .. } => *status >= 500,
            ProviderError::RateLimited { .. } | ProviderError::Transport { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn invalid(provider: &str, detail: impl Into<String>) -> Self {
        ProviderError::Invalid {
            provider: provider.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn protocol(provider: &str, url: &str, detail: impl Into<String>) -> Self {
        ProviderError::Protocol {
            provider: provider.to_string(),
            url: url.to_string(),
            detail: detail.into(),
        }
    }
}
