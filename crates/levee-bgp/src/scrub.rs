//! The seam to scrubbing providers (level 4): divert a prefix, get a
//! receipt, withdraw by receipt. [`ProviderScrubber`] implements it over
//! any `levee-providers` provider (Cloudflare Magic Transit, OVH VAC, AWS
//! Shield, ...); the receipt is the provider's JSON receipt, so a
//! withdrawal needs nothing but the string.

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

/// Level 4 through a `levee-providers` provider: `divert` applies
/// `ProviderAction::Divert`, the receipt string is the provider's receipt
/// as JSON, `withdraw` hands it back.
pub struct ProviderScrubber {
    provider: Box<dyn levee_providers::Provider>,
}

impl ProviderScrubber {
    pub fn new(provider: Box<dyn levee_providers::Provider>) -> Self {
        ProviderScrubber { provider }
    }
}

impl Scrubber for ProviderScrubber {
    fn name(&self) -> &str {
        self.provider.name()
    }

    fn divert(&mut self, prefix: IpNet) -> Result<String, ScrubError> {
        let receipt = self
            .provider
            .apply(&levee_providers::ProviderAction::Divert { prefix })
            .map_err(|e| ScrubError(e.to_string()))?;
        serde_json::to_string(&receipt).map_err(|e| ScrubError(format!("receipt: {e}")))
    }

    fn withdraw(&mut self, receipt: &str) -> Result<(), ScrubError> {
        let r: levee_providers::Receipt = serde_json::from_str(receipt).map_err(|e| {
            ScrubError(format!(
                "not a receipt of {} ({e}): withdraw the diversion at the provider by hand",
                self.provider.name()
            ))
        })?;
        self.provider
            .withdraw(&r)
            .map_err(|e| ScrubError(e.to_string()))
    }
}

#[cfg(test)]
mod provider_tests {
    use super::*;
    use levee_providers::{ProviderAction, ProviderError, Receipt};
    use std::sync::{Arc, Mutex};

    /// A provider keeping its diversions in memory.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<IpNet>>>);

    impl levee_providers::Provider for Memory {
        fn name(&self) -> &str {
            "mem"
        }
        fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
            let ProviderAction::Divert { prefix } = action else {
                panic!("a scrubber only diverts: {action:?}");
            };
            self.0.lock().unwrap().push(*prefix);
            Ok(Receipt {
                provider: "mem".into(),
                action: action.clone(),
                ids: vec![format!("div-{prefix}")],
                detail: serde_json::Value::Null,
            })
        }
        fn withdraw(&mut self, r: &Receipt) -> Result<(), ProviderError> {
            let ProviderAction::Divert { prefix } = &r.action else {
                panic!()
            };
            self.0.lock().unwrap().retain(|p| p != prefix);
            Ok(())
        }
    }

    #[test]
    fn divert_and_withdraw_through_a_provider() {
        let mem = Memory::default();
        let mut s = ProviderScrubber::new(Box::new(mem.clone()));
        assert_eq!(s.name(), "mem");
        let p: IpNet = "203.0.113.0/24".parse().unwrap();
        let receipt = s.divert(p).unwrap();
        assert!(receipt.contains("div-203.0.113.0/24"), "{receipt}");
        assert_eq!(mem.0.lock().unwrap().as_slice(), [p]);
        s.withdraw(&receipt).unwrap();
        assert!(mem.0.lock().unwrap().is_empty());
        let err = s.withdraw("not json").unwrap_err().to_string();
        assert!(err.contains("by hand"), "{err}");
    }

    #[test]
    fn the_config_names_a_provider_of_the_file() {
        use crate::config::{BgpConfig, ScrubbingConfig};
        use crate::system::scrubber;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("providers.toml");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret-for-the-test").unwrap();
        std::fs::write(
            &file,
            format!(
                "[[providers]]\nname = \"hook\"\nkind = \"webhook\"\n\
                 base_url = \"https://127.0.0.1:9/levee\"\nsecret = {{ file = {:?} }}\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let cfg = |provider: Option<&str>| BgpConfig {
            scrubbing: ScrubbingConfig {
                providers_file: Some(file.clone()),
                provider: provider.map(String::from),
            },
            ..BgpConfig::default()
        };
        assert!(scrubber(&BgpConfig::default()).unwrap().is_none());
        let err = scrubber(&cfg(None)).err().unwrap().to_string();
        assert!(err.contains("both"), "{err}");
        let err = scrubber(&cfg(Some("cf"))).err().unwrap().to_string();
        assert!(
            err.contains("`cf` is not in") && err.contains("hook"),
            "{err}"
        );
        let s = scrubber(&cfg(Some("hook"))).unwrap().unwrap();
        assert_eq!(s.name(), "hook");
    }
}
