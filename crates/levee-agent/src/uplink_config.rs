//! The `[uplink]` section: reporting to a Levee server. Read by
//! [`crate::config`], documented in `examples/agent.toml`. The uplink itself
//! (crate `levee-uplink`) is started by the binary and fed through
//! [`crate::runtime::Observer`].

use crate::tomlread::TableReader;
use levee_proto::Fingerprint;

/// How the agent reports to a server.
#[derive(Debug, Clone, PartialEq)]
pub struct UplinkSettings {
    /// Report when this node is enrolled (`<state_dir>/uplink.json` exists).
    pub enabled: bool,
    /// The server to enroll with (`--server`); after enrollment the URL saved
    /// with the credentials is used.
    pub server: Option<String>,
    /// The server certificate's fingerprint to pin at enrollment
    /// (`--server-fingerprint`); without it the one seen is pinned.
    pub server_fingerprint: Option<Fingerprint>,
    /// Events the offline queue keeps while the server is away.
    pub queue_events: usize,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        UplinkSettings {
            enabled: true,
            server: None,
            server_fingerprint: None,
            queue_events: 2_000,
        }
    }
}

/// Checks a server URL, naming what is wrong.
pub fn check_server_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        Ok(())
    } else {
        Err(format!(
            "\"{url}\" is not an https:// URL, e.g. \"https://levee.example.com:8443\""
        ))
    }
}

impl UplinkSettings {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        if let Some(v) = t.boolean("enabled") {
            self.enabled = v;
        }
        if let Some(v) = t.string("server") {
            match check_server_url(&v) {
                Ok(()) => self.server = Some(v),
                Err(e) => t.problem("server", e),
            }
        }
        if let Some(v) = t.string("server_fingerprint") {
            match v.parse::<Fingerprint>() {
                Ok(f) => self.server_fingerprint = Some(f),
                Err(e) => t.problem("server_fingerprint", e.to_string()),
            }
        }
        if let Some(v) = t.integer("queue_events", 10, 1_000_000) {
            self.queue_events = v as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AgentConfig, ConfigError, Overrides};

    #[test]
    fn bad_uplink_keys_are_named_together() {
        let text = "[uplink]\nserver = \"http://plain\"\nserver_fingerprint = \"nope\"\nqueue_events = 1\nextra = 1\n";
        let err = AgentConfig::from_parts(Some(text), Some("t.toml".into()), &Overrides::default())
            .unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "uplink.server",
            "uplink.server_fingerprint",
            "uplink.queue_events",
            "uplink.extra",
        ] {
            assert!(keys.contains(&k), "{k} not reported: {keys:?}");
        }
    }

    #[test]
    fn flags_override_and_disable() {
        let o = Overrides {
            server: Some("https://s:8443".into()),
            no_uplink: true,
            ..Default::default()
        };
        let c = AgentConfig::from_parts(None, None, &o).unwrap();
        assert_eq!(c.uplink.server.as_deref(), Some("https://s:8443"));
        assert!(!c.uplink.enabled);
        let bad = Overrides {
            server: Some("s:8443".into()),
            ..Default::default()
        };
        let e = AgentConfig::from_parts(None, None, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--server"), "{e}");
    }
}
