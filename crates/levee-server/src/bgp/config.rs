//! `[bgp]` of the server config: the BGP escalation engines the operator
//! runs for tenants. Everything that touches the host or the routing
//! table (speaker binaries and namespaces, the tenant's prefixes and
//! origin AS, ROA source, scrubbing providers) is here, in the operator's
//! file, never behind a tenant's API call. Each `[[bgp.tenant]]` names a
//! tenant and carries a whole `levee_bgp::config::BgpConfig`, in the same
//! syntax as the agent's `[bgp]`.

use levee_bgp::config::BgpConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[bgp]`: the engines and how often they read new incident events.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerBgp {
    /// How often the leader reads new incident events (default 100ms).
    pub poll_interval: Duration,
    pub tenants: Vec<TenantBgp>,
}

impl Default for ServerBgp {
    fn default() -> Self {
        ServerBgp {
            poll_interval: Duration::from_millis(100),
            tenants: Vec::new(),
        }
    }
}

/// One `[[bgp.tenant]]`: the tenant (by name) and its BGP settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantBgp {
    pub tenant: String,
    pub bgp: BgpConfig,
}

impl TenantBgp {
    /// The key prefix problems of this entry are named by.
    pub fn key(&self) -> String {
        format!("bgp.tenant[{}]", self.tenant)
    }

    /// The engine's state directory (its audit log by default):
    /// `<data_dir>/bgp/<tenant>`.
    pub fn state_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("bgp").join(&self.tenant)
    }
}

/// The file's `[bgp]` table as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileBgp {
    poll_interval: Option<String>,
    #[serde(default)]
    tenant: Vec<toml::Table>,
}

/// Tenant names become directory names: keep them to a safe alphabet.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ServerBgp {
    /// Reads `[bgp]` onto `self`, pushing every problem (named by key and
    /// tenant) onto `problems`.
    pub(crate) fn apply(&mut self, f: FileBgp, problems: &mut Vec<String>) {
        if let Some(raw) = f.poll_interval {
            match humantime::parse_duration(&raw) {
                Ok(d) => self.poll_interval = d,
                Err(e) => problems.push(format!(
                    "`bgp.poll_interval`: `{raw}` is not a duration ({e}); write e.g. \"100ms\""
                )),
            }
        }
        for (n, mut table) in f.tenant.into_iter().enumerate() {
            let tenant = match table.remove("tenant") {
                Some(toml::Value::String(s)) => s,
                _ => {
                    problems.push(format!(
                        "`bgp.tenant[{n}].tenant`: name the tenant these BGP settings are for, e.g. tenant = \"acme\""
                    ));
                    continue;
                }
            };
            // A `[[bgp.tenant]]` entry is meant to run; `enabled = false` parks it.
            table.entry("enabled").or_insert(toml::Value::Boolean(true));
            match toml::Value::Table(table).try_into::<BgpConfig>() {
                Ok(bgp) => self.tenants.push(TenantBgp { tenant, bgp }),
                Err(e) => {
                    problems.push(format!("`bgp.tenant[{tenant}]`: {}", e.to_string().trim()))
                }
            }
        }
    }

    /// Every out-of-range value, named by key (`bgp.tenant[acme].prefixes`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.poll_interval < Duration::from_millis(10)
            || self.poll_interval > Duration::from_secs(10)
        {
            p.push("`bgp.poll_interval` must be 10ms to 10s".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.tenants {
            if !safe_name(&t.tenant) {
                p.push(format!(
                    "`bgp.tenant[{}].tenant`: a tenant name of letters, digits, '-', '_' or '.' (it names the engine's state directory)",
                    t.tenant
                ));
            }
            if !seen.insert(t.tenant.as_str()) {
                p.push(format!(
                    "`bgp.tenant[{}]`: the tenant has two [[bgp.tenant]] entries; keep one",
                    t.tenant
                ));
            }
            p.extend(t.bgp.validate(&t.key()));
        }
        p
    }

    /// The entry of a tenant, if the operator configured one (enabled).
    pub fn for_tenant(&self, name: &str) -> Option<&TenantBgp> {
        self.tenants
            .iter()
            .find(|t| t.tenant == name && t.bgp.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ServerBgp, Vec<String>) {
        #[derive(serde::Deserialize)]
        struct W {
            bgp: FileBgp,
        }
        let w: W = toml::from_str(text).unwrap();
        let mut b = ServerBgp::default();
        let mut p = Vec::new();
        b.apply(w.bgp, &mut p);
        p.extend(b.problems());
        (b, p)
    }

    const GOOD: &str = r#"
[bgp]
poll_interval = "50ms"
[[bgp.tenant]]
tenant = "acme"
origin_as = 64500
prefixes = ["203.0.113.0/24"]
[bgp.tenant.rpki]
roa_file = "/etc/levee/roas.json"
[bgp.tenant.speaker]
kind = "gobgp"
gobgp_api = "127.0.0.1:50051"
netns = "edge"
[bgp.tenant.thresholds]
discard = "300Mbps"
"#;

    #[test]
    fn a_tenant_entry_is_a_whole_bgp_table_enabled_by_being_there() {
        let (b, p) = parse(GOOD);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(b.poll_interval, Duration::from_millis(50));
        let t = b.for_tenant("acme").unwrap();
        assert!(t.bgp.enabled);
        assert_eq!(t.bgp.origin_as, 64500);
        assert_eq!(t.bgp.speaker.netns.as_deref(), Some("edge"));
        assert_eq!(t.bgp.thresholds.discard.0, 300_000_000);
        assert_eq!(
            t.state_dir(Path::new("/var/lib/levee-server")),
            Path::new("/var/lib/levee-server/bgp/acme")
        );
        assert!(b.for_tenant("other").is_none());
    }

    #[test]
    fn problems_name_the_tenant_and_the_key() {
        let (_, p) = parse(
            "[bgp]\npoll_interval = \"soon\"\n[[bgp.tenant]]\ntenant = \"acme\"\norigin_as = 64500\n\
             [[bgp.tenant]]\ntenant = \"beta\"\nprefixes = [\"198.51.100.0/24\"]\nspeeker = 1\n\
             [[bgp.tenant]]\norigin_as = 1\n[[bgp.tenant]]\ntenant = \"../x\"\norigin_as = 1\nprefixes = [\"10.0.0.0/8\"]\n[bgp.tenant.rpki]\nroa_file = \"r\"\n",
        );
        let all = p.join("\n");
        for needle in [
            "bgp.poll_interval",
            "bgp.tenant[acme].prefixes",
            "bgp.tenant[acme].rpki",
            "bgp.tenant[beta]",
            "speeker",
            "bgp.tenant[2].tenant",
            "bgp.tenant[../x].tenant",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
    }

    #[test]
    fn a_tenant_configured_twice_is_refused() {
        let twice = format!("{GOOD}[[bgp.tenant]]\ntenant = \"acme\"\norigin_as = 64500\nprefixes = [\"203.0.113.0/24\"]\n[bgp.tenant.rpki]\nroa_file = \"r\"\n");
        let (_, p) = parse(&twice);
        assert!(p.iter().any(|m| m.contains("two [[bgp.tenant]]")), "{p:?}");
    }
}
