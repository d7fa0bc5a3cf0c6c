//! The seam to scrubbing providers (level 4): divert a prefix, get a
//! receipt, withdraw by receipt. Provider adapters (Cloudflare Magic
//! Transit, OVH VAC, ...) live elsewhere and implement this trait.

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScrubError(pub String);

pub trait Scrubber: Send {
    /// The provider, for events (`cloudflare`, `ovh`, ...).
    fn name(&self) -> &str;
    /// Starts diverting `prefix`; returns the provider's receipt (an id to
    /// withdraw with).
    fn divert(&mut self, prefix: IpNet) -> Result<String, ScrubError>;
    /// Stops the diversion `receipt` names.
    fn withdraw(&mut self, receipt: &str) -> Result<(), ScrubError>;
}

/// A scrubber that records calls (tests, dry runs).
#[derive(Debug, Default)]
pub struct RecordingScrubber {
    pub diverted: Vec<IpNet>,
    pub withdrawn: Vec<String>,
    pub fail: Option<String>,
}

impl Scrubber for RecordingScrubber {
    fn name(&self) -> &str {
        "recording"
    }
    fn divert(&mut self, prefix: IpNet) -> Result<String, ScrubError> {
        if let Some(f) = &self.fail {
            return Err(ScrubError(f.clone()));
        }
        self.diverted.push(prefix);
        Ok(format!("receipt-{}", self.diverted.len()))
    }
    fn withdraw(&mut self, receipt: &str) -> Result<(), ScrubError> {
        self.withdrawn.push(receipt.to_string());
        Ok(())
    }
}
