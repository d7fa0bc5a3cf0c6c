//! The `[[providers]]` TOML: common keys (`name`, `kind`, `base_url`,
//! `timeout`, `retries`, `max_retry_wait`) plus each kind's own keys,
//! checked with unknown keys refused. Credentials are references
//! (`{ env = "VAR" }` or `{ file = "/path" }`), never inline values, and
//! are read only when the providers are built. Every problem in a file is
//! reported at once, each naming its entry and key.
//!
//! Every key is documented in `examples/providers.toml`, which a test loads.

use crate::http::HttpConfig;
use crate::providers;
use crate::secret::SecretRef;
use crate::Provider;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bad providers file: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", path.display(), problems.join("; "))]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

/// A parsed providers file.
#[derive(Debug, Clone)]
pub struct ProvidersFile {
    pub path: PathBuf,
    pub providers: Vec<ProviderConfig>,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub base_url: Option<String>,
    pub http: HttpConfig,
    pub kind: KindConfig,
}

/// The kind-specific part of an entry.
#[derive(Debug, Clone)]
pub enum KindConfig {
    Webhook(providers::webhook::Config),
    CloudflareMagicTransit(providers::cloudflare_mt::Config),
    CloudflareWaf(providers::cloudflare_waf::Config),
    OvhVac(providers::ovh::Config),
    HetznerRobot(providers::hetzner::Config),
    DigitalOcean(providers::digitalocean::Config),
    Vultr(providers::vultr::Config),
    Linode(providers::linode::Config),
    AwsShield(providers::aws_shield::Config),
    F5BigIp(providers::f5::Config),
    DefensePro(providers::radware::Config),
}

impl KindConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            KindConfig::Webhook(_) => providers::webhook::KIND,
            KindConfig::CloudflareMagicTransit(_) => providers::cloudflare_mt::KIND,
            KindConfig::CloudflareWaf(_) => providers::cloudflare_waf::KIND,
            KindConfig::OvhVac(_) => providers::ovh::KIND,
            KindConfig::HetznerRobot(_) => providers::hetzner::KIND,
            KindConfig::DigitalOcean(_) => providers::digitalocean::KIND,
            KindConfig::Vultr(_) => providers::vultr::KIND,
            KindConfig::Linode(_) => providers::linode::KIND,
            KindConfig::AwsShield(_) => providers::aws_shield::KIND,
            KindConfig::F5BigIp(_) => providers::f5::KIND,
            KindConfig::DefensePro(_) => providers::radware::KIND,
        }
    }
}

/// Every kind this build knows.
pub const KINDS: &[&str] = &[
    providers::webhook::KIND,
    providers::cloudflare_mt::KIND,
    providers::cloudflare_waf::KIND,
    providers::ovh::KIND,
    providers::hetzner::KIND,
    providers::digitalocean::KIND,
    providers::vultr::KIND,
    providers::linode::KIND,
    providers::aws_shield::KIND,
    providers::f5::KIND,
    providers::radware::KIND,
];

const COMMON: &[&str] = &[
    "name",
    "kind",
    "base_url",
    "timeout",
    "retries",
    "max_retry_wait",
];

/// Reads and checks a providers file (credentials are not read yet).
pub fn load_config(path: &Path) -> Result<ProvidersFile, ConfigError> {
    let fail = |p: Vec<String>| ConfigError {
        path: path.to_path_buf(),
        problems: p,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(vec![format!("cannot read: {e}")]))?;
    parse_config(&text, path)
}

/// Parses providers TOML; `path` only names the file in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<ProvidersFile, ConfigError> {
    let fail = |p: Vec<String>| ConfigError {
        path: path.to_path_buf(),
        problems: p,
    };
    let mut root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(vec![e.to_string()]))?;
    let mut problems = Vec::new();
    let entries = match root.remove("providers") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(fail(vec![
                "`providers` must be an array of tables: [[providers]]".into(),
            ]))
        }
    };
    for k in root.keys() {
        problems.push(format!(
            "unknown top-level key `{k}` (only [[providers]] entries belong here)"
        ));
    }
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let toml::Value::Table(t) = entry else {
            problems.push(format!("providers[{i}]: must be a table"));
            continue;
        };
        if let Some(n) = t.get("name").and_then(|n| n.as_str()) {
            if !names.insert(n.to_string()) {
                problems.push(format!(
                    "providers[{i}] ({n}): name used twice; names must be unique"
                ));
            }
        }
        match parse_entry(t) {
            Ok(p) => out.push(p),
            Err(mut e) => {
                for p in &mut e {
                    *p = format!("providers[{i}]{p}");
                }
                problems.extend(e);
            }
        }
    }
    if problems.is_empty() {
        Ok(ProvidersFile {
            path: path.to_path_buf(),
            providers: out,
        })
    } else {
        Err(fail(problems))
    }
}

fn parse_entry(mut t: toml::Table) -> Result<ProviderConfig, Vec<String>> {
    let mut problems = Vec::new();
    let name = match t.get("name").and_then(|v| v.as_str()) {
        Some(n)
            if !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            n.to_string()
        }
        Some(n) => {
            problems.push(format!(
                ".name: {n:?} must be non-empty letters, digits, `-`, `_` or `.`"
            ));
            n.to_string()
        }
        None => {
            problems.push(".name: missing (a unique name such as \"cf-mt\")".into());
            String::new()
        }
    };
    let label = if name.is_empty() {
        String::new()
    } else {
        format!(" ({name})")
    };
    let kind = t.get("kind").and_then(|v| v.as_str()).map(str::to_string);
    let base_url = t
        .get("base_url")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if t.get("base_url").is_some() && base_url.is_none() {
        problems.push(format!("{label}.base_url: must be a string URL"));
    }
    let mut http = HttpConfig::default();
    if let Some(v) = t.get("timeout") {
        match duration(v) {
            Ok(d) => http.timeout = d,
            Err(e) => problems.push(format!("{label}.timeout: {e}")),
        }
    }
    if let Some(v) = t.get("max_retry_wait") {
        match duration(v) {
            Ok(d) => http.max_retry_wait = d,
            Err(e) => problems.push(format!("{label}.max_retry_wait: {e}")),
        }
    }
    if let Some(v) = t.get("retries") {
        match v.as_integer().filter(|n| (0..=10).contains(n)) {
            Some(n) => http.max_retries = n as u32,
            None => problems.push(format!("{label}.retries: must be an integer from 0 to 10")),
        }
    }
    for k in COMMON {
        t.remove(*k);
    }
    let kind = match kind.as_deref() {
        Some(providers::webhook::KIND) => specific(t, &label).map(KindConfig::Webhook),
        Some(providers::cloudflare_mt::KIND) => {
            specific(t, &label).map(KindConfig::CloudflareMagicTransit)
        }
        Some(providers::cloudflare_waf::KIND) => specific(t, &label).map(KindConfig::CloudflareWaf),
        Some(providers::ovh::KIND) => specific(t, &label).map(KindConfig::OvhVac),
        Some(providers::hetzner::KIND) => specific(t, &label).map(KindConfig::HetznerRobot),
        Some(providers::digitalocean::KIND) => specific(t, &label).map(KindConfig::DigitalOcean),
        Some(providers::vultr::KIND) => specific(t, &label).map(KindConfig::Vultr),
        Some(providers::linode::KIND) => specific(t, &label).map(KindConfig::Linode),
        Some(providers::aws_shield::KIND) => specific(t, &label).map(KindConfig::AwsShield),
        Some(providers::f5::KIND) => specific(t, &label).map(KindConfig::F5BigIp),
        Some(providers::radware::KIND) => specific(t, &label).map(KindConfig::DefensePro),
        Some(other) => Err(vec![format!(
            "{label}.kind: unknown kind {other:?}; known: {}",
            KINDS.join(", ")
        )]),
        None => Err(vec![format!(
            "{label}.kind: missing; one of {}",
            KINDS.join(", ")
        )]),
    };
    match kind {
        Ok(kind) if problems.is_empty() => Ok(ProviderConfig {
            name,
            base_url,
            http,
            kind,
        }),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.extend(e);
            Err(problems)
        }
    }
}

fn specific<T: DeserializeOwned>(t: toml::Table, label: &str) -> Result<T, Vec<String>> {
    for (k, v) in &t {
        if let toml::Value::String(_) = v {
            if is_secret_key(k) {
                return Err(vec![format!(
                    "{label}.{k}: inline secrets are refused; write {k} = {{ env = \"VAR\" }} or {k} = {{ file = \"/path\" }}"
                )]);
            }
        }
    }
    T::deserialize(toml::Value::Table(t))
        .map_err(|e| vec![format!("{label}: {}", e.message().trim())])
}

/// Keys that hold credentials: refused as inline strings.
const SECRET_KEYS: &[&str] = &[
    "secret",
    "token",
    "api_token",
    "api_key",
    "password",
    "application_secret",
    "consumer_key",
    "secret_access_key",
    "session_token",
];

fn is_secret_key(k: &str) -> bool {
    SECRET_KEYS.contains(&k)
}

fn duration(v: &toml::Value) -> Result<Duration, String> {
    let s = v
        .as_str()
        .ok_or("must be a duration string such as \"10s\"")?;
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (write e.g. \"10s\")"))?;
    if d.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(d)
}

/// Loads credentials and builds every provider; all problems at once.
pub fn build_providers(file: &ProvidersFile) -> Result<Vec<Box<dyn Provider>>, ConfigError> {
    let mut out: Vec<Box<dyn Provider>> = Vec::new();
    let mut problems = Vec::new();
    for p in &file.providers {
        match build_one(p) {
            Ok(b) => out.push(b),
            Err(e) => problems.push(format!("provider {}: {e}", p.name)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ConfigError {
            path: file.path.clone(),
            problems,
        })
    }
}

/// Builds one provider.
pub fn build_one(p: &ProviderConfig) -> Result<Box<dyn Provider>, String> {
    let err = |e: crate::ProviderError| e.to_string();
    let base = p.base_url.as_deref();
    Ok(match &p.kind {
        KindConfig::Webhook(c) => {
            let url = p
                .base_url
                .clone()
                .ok_or("base_url (the receiver's URL) is required for a webhook")?;
            Box::new(
                providers::webhook::Webhook::new(
                    &p.name,
                    &url,
                    load(&c.secret, "secret")?,
                    p.http.clone(),
                )
                .map_err(err)?,
            )
        }
        KindConfig::CloudflareMagicTransit(c) => Box::new(
            providers::cloudflare_mt::MagicTransit::new(
                &p.name,
                base,
                &c.account_id,
                load(&c.api_token, "api_token")?,
                p.http.clone(),
            )
            .map_err(err)?,
        ),
        KindConfig::CloudflareWaf(c) => {
            use providers::cloudflare_waf::Scope;
            let scope = match (&c.zone_id, &c.account_id) {
                (Some(z), None) => Scope::Zone(z.clone()),
                (None, Some(a)) => Scope::Account(a.clone()),
                _ => return Err("give exactly one of zone_id or account_id".into()),
            };
            Box::new(
                providers::cloudflare_waf::CloudflareWaf::new(
                    &p.name,
                    base,
                    scope,
                    load(&c.api_token, "api_token")?,
                    p.http.clone(),
                )
                .map_err(err)?,
            )
        }
        KindConfig::OvhVac(c) => {
            let keys = providers::ovh::OvhKeys {
                application_key: c.application_key.clone(),
                application_secret: load(&c.application_secret, "application_secret")?,
                consumer_key: load(&c.consumer_key, "consumer_key")?,
            };
            Box::new(
                providers::ovh::OvhVac::new(&p.name, base, keys, c.max_addresses, p.http.clone())
                    .map_err(err)?,
            )
        }
        KindConfig::HetznerRobot(c) => Box::new(
            providers::hetzner::HetznerRobot::new(
                &p.name,
                base,
                c.server_number,
                &c.user,
                &load(&c.password, "password")?,
                p.http.clone(),
            )
            .map_err(err)?,
        ),
        KindConfig::DigitalOcean(c) => Box::new(
            providers::digitalocean::DigitalOcean::new(
                &p.name,
                base,
                &c.firewall_id,
                load(&c.api_token, "api_token")?,
                p.http.clone(),
            )
            .map_err(err)?,
        ),
        KindConfig::Vultr(c) => Box::new(
            providers::vultr::Vultr::new(
                &p.name,
                base,
                &c.firewall_group_id,
                load(&c.api_key, "api_key")?,
                p.http.clone(),
            )
            .map_err(err)?,
        ),
        KindConfig::Linode(c) => Box::new(
            providers::linode::Linode::new(
                &p.name,
                base,
                c.firewall_id,
                load(&c.api_token, "api_token")?,
                p.http.clone(),
            )
            .map_err(err)?,
        ),
        KindConfig::AwsShield(c) => {
            let creds = crate::sign::AwsCredentials {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: load(&c.secret_access_key, "secret_access_key")?,
                session_token: c
                    .session_token
                    .as_ref()
                    .map(|t| load(t, "session_token"))
                    .transpose()?,
            };
            Box::new(
                providers::aws_shield::AwsShield::new(
                    &p.name,
                    base,
                    creds,
                    &c.resources,
                    p.http.clone(),
                )
                .map_err(err)?,
            )
        }
        KindConfig::F5BigIp(c) => {
            let url = p
                .base_url
                .clone()
                .ok_or("base_url (the BIG-IP management URL) is required")?;
            Box::new(
                providers::f5::F5BigIp::new(
                    &p.name,
                    &url,
                    &c.policy,
                    &c.user,
                    load(&c.password, "password")?,
                    &c.login_provider,
                    p.http.clone(),
                )
                .map_err(err)?,
            )
        }
        KindConfig::DefensePro(c) => {
            let url = p
                .base_url
                .clone()
                .ok_or("base_url (the APSolute Vision / CyberController URL) is required")?;
            Box::new(
                providers::radware::DefensePro::new(
                    &p.name,
                    &url,
                    &c.device_ip,
                    &c.user,
                    load(&c.password, "password")?,
                    p.http.clone(),
                )
                .map_err(err)?,
            )
        }
    })
}

pub(crate) fn load(r: &SecretRef, key: &str) -> Result<crate::secret::Secret, String> {
    r.load().map_err(|e| format!("{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/providers.toml");

    #[test]
    fn the_example_file_loads_and_shows_every_kind() {
        let f = parse_config(EXAMPLE, Path::new("examples/providers.toml")).unwrap();
        let shown: BTreeSet<&str> = f.providers.iter().map(|p| p.kind.kind()).collect();
        for k in KINDS {
            assert!(shown.contains(k), "examples/providers.toml lacks kind {k}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            unknown = 1
            [[providers]]
            name = "a"
            kind = "cloudflare_waf"
            zone_id = "abc"
            api_token = "inline-secret"
            [[providers]]
            name = "b"
            kind = "nope"
            [[providers]]
            name = "c"
            kind = "webhook"
            secret = { env = "X" }
            timeout = "soon"
            colour = "blue"
            [[providers]]
            name = "c"
            kind = "webhook"
            secret = { env = "X" }
        "#;
        let e = parse_config(text, Path::new("p.toml")).unwrap_err();
        let all = e.to_string();
        assert_eq!(e.problems.len(), 6, "{all}");
        assert!(
            all.contains("providers[2] (c): unknown field `colour`"),
            "{all}"
        );
        assert!(all.contains("unknown top-level key `unknown`"), "{all}");
        assert!(
            all.contains("providers[0] (a).api_token: inline secrets are refused"),
            "{all}"
        );
        assert!(!all.contains("inline-secret"), "{all}");
        assert!(
            all.contains("providers[1] (b).kind: unknown kind \"nope\""),
            "{all}"
        );
        assert!(all.contains("providers[2] (c).timeout"), "{all}");
        assert!(all.contains("providers[3] (c): name used twice"), "{all}");
    }

    #[test]
    fn unknown_keys_are_refused_and_missing_credentials_named_at_build() {
        let e = parse_config(
            "[[providers]]\nname = \"w\"\nkind = \"webhook\"\nsecret = { env = \"X\" }\ncolour = 1\n",
            Path::new("p.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let f = parse_config(
            "[[providers]]\nname = \"w\"\nkind = \"webhook\"\nbase_url = \"http://127.0.0.1:9/h\"\nsecret = { env = \"LEVEE_SURELY_UNSET_SECRET\" }\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let e = build_providers(&f).err().unwrap();
        assert!(
            e.to_string().contains(
                "provider w: secret: environment variable LEVEE_SURELY_UNSET_SECRET is not set"
            ),
            "{e}"
        );
    }

    #[test]
    fn every_kind_builds_from_the_example_with_credentials_present() {
        // Point every credential of the example at one variable so the
        // constructors run for real (file secrets become env secrets).
        let var = "LEVEE_PROVIDERS_TEST_SECRET";
        std::env::set_var(var, "s3cret");
        let text = EXAMPLE
            .lines()
            .map(|l| match l.split_once(" = { ") {
                Some((k, _)) if SECRET_KEYS.contains(&k.trim()) => {
                    format!("{k} = {{ env = \"{var}\" }}")
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let f = parse_config(&text, Path::new("examples/providers.toml")).unwrap();
        let built = build_providers(&f).unwrap();
        let names: Vec<&str> = built.iter().map(|p| p.name()).collect();
        let want: Vec<&str> = f.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, want);
    }

    proptest::proptest! {
        #[test]
        fn error_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = crate::http::generic_error(&body);
            let _ = crate::providers::aws_shield::aws_error(&body);
        }
    }
}
