//! `levee server` configuration: defaults < TOML file < command-line flags.
//!
//! The file is `deny_unknown_fields` TOML (every key is documented in
//! `examples/server.toml`, which a test loads); after parsing, [`ServerConfig::validate`]
//! reports every out-of-range value at once, each named by its dotted key.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read server config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("server config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("server config{}: {}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default(), .problems.join("; "))]
    Invalid {
        path: Option<PathBuf>,
        problems: Vec<String>,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on (HTTPS).
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the generated certificate and keys.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; `None` uses SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Serve this certificate chain and key (PEM) instead of a generated one.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names / IP addresses for the generated certificate.
    pub tls_names: Vec<String>,
    /// The URL agents use to reach this server (printed in enrollment hints).
    pub public_url: Option<String>,
    /// Largest JSON request body.
    pub body_limit_bytes: usize,
    /// Largest PCAP upload.
    pub pcap_max_bytes: usize,
    /// Heartbeat interval asked of agents.
    pub heartbeat_interval: Duration,
    /// A node with no telemetry or heartbeat for this long is offline.
    pub heartbeat_timeout: Duration,
    /// How long an enrollment token stays valid.
    pub enrollment_token_ttl: Duration,
    /// Failed authentications (bad token or key) per client address per minute.
    pub auth_failures_per_minute: u32,
    /// Login attempts per client address per minute.
    pub logins_per_minute: u32,
    /// Database connections (PostgreSQL; SQLite uses one writer and this many readers).
    pub db_connections: u32,
    pub retention: Retention,
    pub correlation: Correlation,
    /// Period of the singleton jobs (liveness, correlation).
    pub jobs_interval: Duration,
    /// BGP escalation engines per tenant (`[bgp]`, `[[bgp.tenant]]`).
    pub bgp: crate::bgp::config::ServerBgp,
}

/// How long each kind of data is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// 1-second metric rows.
    pub raw: Duration,
    /// 1-minute rows.
    pub minute: Duration,
    /// Events.
    pub events: Duration,
    /// Period of the downsampling and retention job.
    pub interval: Duration,
}

/// Cross-node correlation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Incidents starting within this window of each other may be one attack.
    pub window: Duration,
    /// Target addresses in the same prefix of this length form one attack.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:8443".parse().expect("literal address"),
            data_dir: default_data_dir(),
            database_url: None,
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            public_url: None,
            body_limit_bytes: 1 << 20,
            pcap_max_bytes: 32 << 20,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            enrollment_token_ttl: Duration::from_secs(24 * 3600),
            auth_failures_per_minute: 30,
            logins_per_minute: 10,
            db_connections: 8,
            retention: Retention {
                raw: Duration::from_secs(24 * 3600),
                minute: Duration::from_secs(30 * 24 * 3600),
                events: Duration::from_secs(90 * 24 * 3600),
                interval: Duration::from_secs(60),
            },
            correlation: Correlation {
                window: Duration::from_secs(300),
                ipv4_prefix: 24,
                ipv6_prefix: 64,
            },
            jobs_interval: Duration::from_secs(1),
            bgp: Default::default(),
        }
    }
}

/// `/var/lib/levee-server` as root, else `$XDG_STATE_HOME/levee-server`
/// (`~/.local/state/levee-server`).
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/levee-server");
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("levee-server");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/state/levee-server"))
        .unwrap_or_else(|| PathBuf::from("levee-server-data"))
}

/// The file's shape. Every field optional: absent keys keep the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    retention: FileRetention,
    #[serde(default)]
    correlation: FileCorrelation,
    #[serde(default)]
    bgp: crate::bgp::config::FileBgp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_names: Option<Vec<String>>,
    public_url: Option<String>,
    body_limit_bytes: Option<usize>,
    pcap_max_bytes: Option<usize>,
    heartbeat_interval: Option<String>,
    heartbeat_timeout: Option<String>,
    enrollment_token_ttl: Option<String>,
    auth_failures_per_minute: Option<u32>,
    logins_per_minute: Option<u32>,
    db_connections: Option<u32>,
    jobs_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRetention {
    raw: Option<String>,
    minute: Option<String>,
    events: Option<String>,
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCorrelation {
    window: Option<String>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
}

/// Command-line values; `Some` overrides the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub public_url: Option<String>,
}

fn dur(problems: &mut Vec<String>, key: &str, raw: Option<String>, slot: &mut Duration) {
    if let Some(raw) = raw {
        match humantime::parse_duration(&raw) {
            Ok(d) => *slot = d,
            Err(e) => problems.push(format!(
                "`{key}`: `{raw}` is not a duration ({e}); write e.g. \"30s\", \"24h\", \"30d\""
            )),
        }
    }
}

impl ServerConfig {
    /// Defaults, then the file at `path` (if given), then `o`; validated.
    pub fn load(path: Option<&Path>, o: &Overrides) -> Result<Self, ConfigError> {
        let mut cfg = ServerConfig::default();
        let mut problems = Vec::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            cfg.apply_text(&text, &mut problems)
                .map_err(|message| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message,
                })?;
        }
        cfg.apply_overrides(o);
        problems.extend(cfg.problems());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: path.map(Path::to_path_buf),
                problems,
            })
        }
    }

    /// Parses TOML text onto `self`; syntax and unknown keys are an `Err`,
    /// bad values are pushed onto `problems`.
    fn apply_text(&mut self, text: &str, problems: &mut Vec<String>) -> Result<(), String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let s = f.server;
        if let Some(l) = s.listen {
            match l.parse() {
                Ok(a) => self.listen = a,
                Err(_) => problems.push(format!(
                    "`server.listen`: `{l}` is not an address:port, e.g. \"0.0.0.0:8443\""
                )),
            }
        }
        macro_rules! set {
            ($($field:ident),*) => {$( if let Some(v) = s.$field { self.$field = v; } )*};
        }
        macro_rules! set_opt {
            ($($field:ident),*) => {$( if let Some(v) = s.$field { self.$field = Some(v); } )*};
        }
        set!(
            data_dir,
            tls_names,
            body_limit_bytes,
            pcap_max_bytes,
            auth_failures_per_minute,
            logins_per_minute,
            db_connections
        );
        set_opt!(tls_cert, tls_key, public_url);
        if let Some(url) = s.database_url.filter(|u| !u.is_empty()) {
            self.database_url = Some(url);
        }
        dur(
            problems,
            "server.heartbeat_interval",
            s.heartbeat_interval,
            &mut self.heartbeat_interval,
        );
        dur(
            problems,
            "server.heartbeat_timeout",
            s.heartbeat_timeout,
            &mut self.heartbeat_timeout,
        );
        dur(
            problems,
            "server.enrollment_token_ttl",
            s.enrollment_token_ttl,
            &mut self.enrollment_token_ttl,
        );
        dur(
            problems,
            "server.jobs_interval",
            s.jobs_interval,
            &mut self.jobs_interval,
        );
        let r = f.retention;
        dur(problems, "retention.raw", r.raw, &mut self.retention.raw);
        dur(
            problems,
            "retention.minute",
            r.minute,
            &mut self.retention.minute,
        );
        dur(
            problems,
            "retention.events",
            r.events,
            &mut self.retention.events,
        );
        dur(
            problems,
            "retention.interval",
            r.interval,
            &mut self.retention.interval,
        );
        self.bgp.apply(f.bgp, problems);
        let c = f.correlation;
        dur(
            problems,
            "correlation.window",
            c.window,
            &mut self.correlation.window,
        );
        if let Some(p) = c.ipv4_prefix {
            self.correlation.ipv4_prefix = p;
        }
        if let Some(p) = c.ipv6_prefix {
            self.correlation.ipv6_prefix = p;
        }
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = o.database_url.as_ref().filter(|u| !u.is_empty()) {
            self.database_url = Some(v.clone());
        }
        if let Some(v) = &o.tls_cert {
            self.tls_cert = Some(v.clone());
        }
        if let Some(v) = &o.tls_key {
            self.tls_key = Some(v.clone());
        }
        if let Some(v) = &o.public_url {
            self.public_url = Some(v.clone());
        }
    }

    /// Every out-of-range value, named by its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                p.push(msg.to_string());
            }
        };
        check(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "`server.tls_cert` and `server.tls_key` go together: give both or neither (--tls-cert/--tls-key)",
        );
        if let Some(url) = &self.database_url {
            check(
                url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"),
                "`server.database_url` must start with postgres:// (or sqlite: for an explicit SQLite file)",
            );
        }
        check(
            (1024..=(64 << 20)).contains(&self.body_limit_bytes),
            "`server.body_limit_bytes` must be 1024 to 67108864",
        );
        check(
            (1024..=(1 << 30)).contains(&self.pcap_max_bytes),
            "`server.pcap_max_bytes` must be 1024 to 1073741824",
        );
        check(
            self.heartbeat_interval >= Duration::from_secs(1),
            "`server.heartbeat_interval` must be at least 1s",
        );
        check(
            self.heartbeat_timeout >= self.heartbeat_interval * 2,
            "`server.heartbeat_timeout` must be at least twice `server.heartbeat_interval`",
        );
        check(
            self.enrollment_token_ttl >= Duration::from_secs(60),
            "`server.enrollment_token_ttl` must be at least 1m",
        );
        check(
            self.auth_failures_per_minute >= 1,
            "`server.auth_failures_per_minute` must be at least 1",
        );
        check(
            self.logins_per_minute >= 1,
            "`server.logins_per_minute` must be at least 1",
        );
        check(
            (1..=256).contains(&self.db_connections),
            "`server.db_connections` must be 1 to 256",
        );
        check(
            self.jobs_interval >= Duration::from_millis(100)
                && self.jobs_interval <= Duration::from_secs(60),
            "`server.jobs_interval` must be 100ms to 1m",
        );
        check(
            self.retention.raw >= Duration::from_secs(300),
            "`retention.raw` must be at least 5m",
        );
        check(
            self.retention.minute >= self.retention.raw,
            "`retention.minute` must be at least `retention.raw`",
        );
        check(
            self.retention.events >= Duration::from_secs(3600),
            "`retention.events` must be at least 1h",
        );
        check(
            self.retention.interval >= Duration::from_secs(1)
                && self.retention.interval <= Duration::from_secs(3600),
            "`retention.interval` must be 1s to 1h",
        );
        check(
            (8..=32).contains(&self.correlation.ipv4_prefix),
            "`correlation.ipv4_prefix` must be 8 to 32",
        );
        check(
            (16..=128).contains(&self.correlation.ipv6_prefix),
            "`correlation.ipv6_prefix` must be 16 to 128",
        );
        p.extend(self.bgp.problems());
        p
    }

    /// The SQLite database file when no URL is given.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("levee.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_loads_and_sets_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/server.toml");
        let cfg = ServerConfig::load(Some(&path), &Overrides::default()).unwrap();
        // The example documents the defaults except where it says otherwise.
        assert_eq!(cfg.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(cfg.retention.raw, Duration::from_secs(24 * 3600));
        assert_eq!(cfg.retention.minute, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(cfg.tls_names, ["levee.example.com"]);
        // Every key of the file is known to the parser (deny_unknown_fields) and
        // every key the parser knows appears in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        for key in [
            "listen",
            "data_dir",
            "database_url",
            "tls_cert",
            "tls_key",
            "tls_names",
            "public_url",
            "body_limit_bytes",
            "pcap_max_bytes",
            "heartbeat_interval",
            "heartbeat_timeout",
            "enrollment_token_ttl",
            "auth_failures_per_minute",
            "logins_per_minute",
            "db_connections",
            "jobs_interval",
            "raw",
            "minute",
            "events",
            "interval",
            "window",
            "ipv4_prefix",
            "ipv6_prefix",
            "poll_interval",
            "tenant",
        ] {
            assert!(
                text.lines().any(|l| l
                    .trim_start()
                    .trim_start_matches("# ")
                    .starts_with(&format!("{key} ="))),
                "examples/server.toml does not document `{key}`"
            );
        }
    }

    #[test]
    fn all_problems_at_once_named_by_key() {
        let mut cfg = ServerConfig::default();
        let mut problems = Vec::new();
        cfg.apply_text(
            "[server]\nlisten = \"nowhere\"\nheartbeat_interval = \"soon\"\n[correlation]\nipv4_prefix = 40\n",
            &mut problems,
        )
        .unwrap();
        problems.extend(cfg.problems());
        let all = problems.join("\n");
        for key in [
            "server.listen",
            "server.heartbeat_interval",
            "correlation.ipv4_prefix",
        ] {
            assert!(all.contains(key), "{key} missing in {all}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let mut cfg = ServerConfig::default();
        let err = cfg
            .apply_text("[server]\nlisten_addr = \"x\"\n", &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("listen_addr"), "{err}");
    }

    #[test]
    fn flags_override_the_file_and_tls_needs_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        let o = Overrides {
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            ServerConfig::load(Some(&path), &o).unwrap().listen.port(),
            2
        );
        let o = Overrides {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let e = ServerConfig::load(None, &o).unwrap_err().to_string();
        assert!(e.contains("tls_key"), "{e}");
    }
}
