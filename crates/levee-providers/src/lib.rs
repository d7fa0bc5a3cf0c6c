//! Levee's scrubbing providers and appliances over HTTP.
//!
//! Network escalation's last steps leave the operator's own routers: divert
//! a prefix to a scrubbing network, or have a cloud firewall, WAF or
//! appliance drop the attack's sources. Every provider implements
//! [`Provider`]: `apply` an [`ProviderAction`] and get a [`Receipt`] naming
//! the provider's objects; `withdraw` the receipt to undo exactly that.
//!
//! - [`action`]: the model; [`incident`]: actions from an incident (pure);
//! - [`providers`]: one module per provider, each following its vendor's
//!   documented API (cited in the module);
//! - [`allowlist`]: blocking in allow-only firewalls (pure);
//! - [`http`]: the shared client (timeouts, safe retries, error text);
//! - [`sign`]: request signatures (AWS SigV4, OVH, webhook HMAC);
//! - [`config`]: the `[[providers]]` TOML and credential loading;
//! - [`secret`]: credentials that never print.

pub mod action;
pub mod allowlist;
pub mod config;
pub mod error;
pub mod http;
pub mod incident;
pub mod providers;
pub mod secret;
pub mod sign;

pub use action::{Block, ProviderAction, Receipt};
pub use config::{build_providers, load_config, ProviderConfig, ProvidersFile};
pub use error::ProviderError;
pub use http::HttpConfig;
pub use incident::{actions_for_incident, ActionPolicy, IncidentActions};

/// A scrubbing provider, cloud firewall, WAF or appliance.
pub trait Provider: Send {
    /// The configured name (used in receipts and errors).
    fn name(&self) -> &str;
    /// Does `action` at the provider; the receipt is what undoes it.
    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError>;
    /// Undoes what `receipt` records. Undoing something already gone at
    /// the provider succeeds: withdrawal must always converge.
    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError>;
}

/// Refuses a receipt written by another provider.
pub(crate) fn check_receipt(name: &str, receipt: &Receipt) -> Result<(), ProviderError> {
    if receipt.provider != name {
        return Err(ProviderError::invalid(
            name,
            format!(
                "receipt belongs to provider {:?}; withdraw it there",
                receipt.provider
            ),
        ));
    }
    Ok(())
}

/// The block `action` is, or the error saying this provider only diverts.
pub(crate) fn block_of<'a>(
    provider: &str,
    kind: &'static str,
    action: &'a ProviderAction,
) -> Result<Block<'a>, ProviderError> {
    action.as_block().ok_or_else(|| ProviderError::Unsupported {
        provider: provider.to_string(),
        kind,
        what: action.to_string(),
        why: "this provider filters traffic and cannot divert a prefix; use a scrubbing provider (Magic Transit, OVH VAC, AWS Shield)".into(),
    })
}

/// The prefix `action` diverts, or the error saying this provider only blocks.
pub(crate) fn divert_of(
    provider: &str,
    kind: &'static str,
    action: &ProviderAction,
) -> Result<ipnet::IpNet, ProviderError> {
    action.as_divert().ok_or_else(|| ProviderError::Unsupported {
        provider: provider.to_string(),
        kind,
        what: action.to_string(),
        why: "this provider diverts or protects prefixes and cannot block sources; use a firewall, WAF or appliance provider".into(),
    })
}
