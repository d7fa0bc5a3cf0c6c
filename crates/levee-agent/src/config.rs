//! The agent's configuration: defaults, the TOML file (`/etc/levee/agent.toml`),
//! and command-line overrides, merged in that order and validated as a whole.
//!
//! Every key is documented in `examples/agent.toml`, which a test loads.

use crate::capture_config::{CaptureConfig, IocConfig};
use crate::netmode::config::{Mode, NetModeConfig};
use crate::tomlread::{parse_duration_in, ConfigProblem, TableReader};
use crate::uplink_config::{check_server_url, UplinkSettings};
use levee_detector::DetectorSettings;
use levee_model::Metric;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/levee/agent.toml";
pub const MIN_TICK: Duration = Duration::from_millis(100);
pub const MAX_TICK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Name of this node in events (default: the host name).
    pub node: String,
    /// Interfaces to watch; empty means every interface except loopback.
    pub interfaces: Vec<String>,
    pub tick: Duration,
    pub baseline_warmup: Duration,
    /// Where the baseline snapshot (and, by default, the event log) live.
    pub state_dir: PathBuf,
    pub events_file: PathBuf,
    pub snapshot_interval: Duration,
    /// How often TCP sockets are counted over sock_diag. Counting costs the kernel
    /// about 1 ms per 10k established sockets, too much for every 100 ms tick on a
    /// busy server; between counts the last one is repeated.
    pub conn_interval: Duration,
    /// A snapshot older than this is ignored at start (the traffic it learnt is stale).
    pub snapshot_max_age: Duration,
    pub detector: DetectorSettings,
    /// The packet sampler and incident pcaps (`[capture]`).
    pub capture: CaptureConfig,
    /// On-node mitigation (`[mitigation]`, off unless enabled).
    pub mitigation: levee_mitigate::MitigationConfig,
    /// Network mitigation (`[bgp]`, off unless enabled).
    pub bgp: levee_bgp::config::BgpConfig,
    /// Indicator lists matched against incident sources (`[[ioc.lists]]`).
    pub ioc: IocConfig,
    /// Flow and mirror modes (`agent.mode`, `[networks]`, `[flow]`, `[mirror]`).
    pub netmode: NetModeConfig,
    /// Reporting to a Levee server (`[uplink]`).
    pub uplink: UplinkSettings,
    /// The file the settings came from, if any.
    pub source: Option<PathBuf>,
}

/// Command-line flags that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub node: Option<String>,
    pub interfaces: Vec<String>,
    pub tick: Option<Duration>,
    pub baseline_warmup: Option<Duration>,
    pub quiet_period: Option<Duration>,
    pub events_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// `--no-capture`: counters only, no packet sampler.
    pub no_capture: bool,
    /// `--mode host|flow|mirror`.
    pub mode: Option<Mode>,
    /// `--server URL`: the Levee server to enroll with.
    pub server: Option<String>,
    /// `--server-fingerprint`: the certificate to pin at enrollment.
    pub server_fingerprint: Option<levee_proto::Fingerprint>,
    /// `--no-uplink`: do not report to the server even when enrolled.
    pub no_uplink: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source} (pass --config PATH, or run without one to use the defaults)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{} problem(s) in {}:\n{}", .problems.len(), .origin, list(.problems))]
    Invalid {
        origin: String,
        problems: Vec<ConfigProblem>,
    },
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The state directory when none is configured: the system location for root,
/// the XDG state directory for anyone else, so `levee agent` runs unprivileged too.
pub fn default_state_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/levee");
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("levee");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/levee");
    }
    PathBuf::from("levee-state")
}

fn default_node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl AgentConfig {
    pub fn defaults() -> Self {
        let state_dir = default_state_dir();
        AgentConfig {
            node: default_node(),
            interfaces: Vec::new(),
            tick: Duration::from_secs(1),
            baseline_warmup: Duration::from_secs(300),
            events_file: state_dir.join("events.jsonl"),
            state_dir,
            snapshot_interval: Duration::from_secs(10),
            conn_interval: Duration::from_secs(1),
            snapshot_max_age: Duration::from_secs(7 * 86_400),
            detector: DetectorSettings::default(),
            capture: CaptureConfig::default(),
            mitigation: levee_mitigate::MitigationConfig::default(),
            bgp: levee_bgp::config::BgpConfig::default(),
            ioc: IocConfig::default(),
            netmode: NetModeConfig::default(),
            uplink: UplinkSettings::default(),
            source: None,
        }
    }

    /// Loads `path` if given (it must exist), else `/etc/levee/agent.toml` if it
    /// exists, else the defaults; then applies `overrides` and validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(p) => {
                let t = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.into(),
                    source: e,
                })?;
                (Some(t), Some(p.to_path_buf()))
            }
            None => match std::fs::read_to_string(DEFAULT_CONFIG_PATH) {
                Ok(t) => (Some(t), Some(PathBuf::from(DEFAULT_CONFIG_PATH))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
                Err(e) => {
                    return Err(ConfigError::Read {
                        path: DEFAULT_CONFIG_PATH.into(),
                        source: e,
                    })
                }
            },
        };
        Self::from_parts(text.as_deref(), origin, overrides)
    }

    /// Parses config text (None = no file) and applies overrides.
    pub fn from_parts(
        text: Option<&str>,
        origin: Option<PathBuf>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut cfg = AgentConfig::defaults();
        let mut problems = Vec::new();
        let mut events_file_set = false;
        let origin_name = origin
            .as_ref()
            .map_or("command-line flags".to_string(), |p| {
                p.display().to_string()
            });
        if let Some(text) = text {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: origin.clone().unwrap_or_default(),
                        message: e.to_string(),
                    })?;
            events_file_set = cfg.read_file(table, &mut problems);
        }
        cfg.source = origin;
        cfg.apply(overrides, &mut problems, events_file_set);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                origin: origin_name,
                problems,
            })
        }
    }

    /// Returns whether `events_file` was set explicitly.
    fn read_file(&mut self, table: toml::Table, problems: &mut Vec<ConfigProblem>) -> bool {
        let mut events_file_set = false;
        let mut root = TableReader::new("", table, problems);
        if let Some(mut a) = root.sub("agent") {
            if let Some(v) = a.string("node") {
                if v.trim().is_empty() {
                    a.problem("node", "expected a non-empty name");
                } else {
                    self.node = v;
                }
            }
            if let Some(v) = a.string_list("interfaces") {
                self.interfaces = v;
            }
            if let Some(v) = a.duration("tick", MIN_TICK, MAX_TICK) {
                self.tick = v;
            }
            if let Some(v) = a.string("state_dir") {
                self.state_dir = PathBuf::from(v);
            }
            if let Some(v) = a.string("events_file") {
                self.events_file = PathBuf::from(v);
                events_file_set = true;
            }
            if let Some(v) = a.duration(
                "snapshot_interval",
                Duration::from_secs(1),
                Duration::from_secs(3600),
            ) {
                self.snapshot_interval = v;
            }
            if let Some(v) = a.duration("conn_interval", Duration::ZERO, Duration::from_secs(60)) {
                self.conn_interval = v;
            }
            if let Some(v) = a.duration(
                "snapshot_max_age",
                Duration::from_secs(60),
                Duration::from_secs(365 * 86_400),
            ) {
                self.snapshot_max_age = v;
            }
            if let Some(v) = a.string("mode") {
                match Mode::from_name(&v) {
                    Some(m) => self.netmode.mode = m,
                    None => a.problem(
                        "mode",
                        format!("unknown mode \"{v}\"; expected host, flow or mirror"),
                    ),
                }
            }
            a.finish();
        }
        if let Some(mut d) = root.sub("detector") {
            let s = &mut self.detector;
            if let Some(v) = d.number("multiplier", 1.01, 1_000.0) {
                s.multiplier = v;
            }
            if let Some(v) = d.integer("window", 10, 86_400) {
                s.window = v as usize;
            }
            if let Some(v) = d.integer("recompute_every", 1, 86_400) {
                s.recompute_every = v as usize;
            }
            if let Some(v) = d.duration(
                "baseline_warmup",
                Duration::from_secs(1),
                Duration::from_secs(30 * 86_400),
            ) {
                self.baseline_warmup = v;
            }
            if let Some(v) = d.integer("confirm_ticks", 1, 100) {
                s.confirm_ticks = v as u32;
            }
            if let Some(v) = d.duration("quiet_period", Duration::ZERO, Duration::from_secs(86_400))
            {
                s.quiet_period_ms = v.as_millis() as u64;
            }
            if let Some(mut f) = d.sub("floors") {
                for m in Metric::ALL {
                    if let Some(v) = f.number(m.name(), 0.0, 1e15) {
                        s.floors.insert(m, v);
                    }
                }
                f.finish();
            }
            d.finish();
        }
        if let Some(mut c) = root.sub("capture") {
            self.capture.read(&mut c);
            c.finish();
        }
        if let Some(mut i) = root.sub("ioc") {
            self.ioc.read(&mut i);
            i.finish();
        }
        if let Some(mut n) = root.sub("networks") {
            self.netmode.networks.read(&mut n);
            n.finish();
        }
        if let Some(mut f) = root.sub("flow") {
            self.netmode.flow.read(&mut f);
            f.finish();
        }
        if let Some(mut m) = root.sub("mirror") {
            self.netmode.mirror.read(&mut m);
            m.finish();
        }
        let mitigation = root.table("mitigation");
        let bgp = root.table("bgp");
        if let Some(mut u) = root.sub("uplink") {
            self.uplink.read(&mut u);
            u.finish();
        }
        root.finish();
        if let Some(t) = mitigation {
            read_section(
                "mitigation",
                &mut self.mitigation,
                t,
                |m, k| m.validate(k),
                problems,
            );
        }
        if let Some(t) = bgp {
            read_section("bgp", &mut self.bgp, t, |b, k| b.validate(k), problems);
        }
        events_file_set
    }
}

/// A serde-typed section (`[mitigation]`, `[bgp]`): unknown keys are
/// errors, then the section's own validation reports every remaining
/// problem, each under its key.
fn read_section<T: serde::de::DeserializeOwned>(
    section: &str,
    cfg: &mut T,
    table: toml::Table,
    validate: impl Fn(&T, &str) -> Vec<String>,
    problems: &mut Vec<ConfigProblem>,
) {
    match toml::Value::Table(table).try_into::<T>() {
        Ok(v) => {
            for p in validate(&v, section) {
                let (key, message) = p.split_once(": ").unwrap_or((section, &p));
                problems.push(ConfigProblem {
                    key: key.into(),
                    message: message.into(),
                });
            }
            *cfg = v;
        }
        Err(e) => problems.push(ConfigProblem {
            key: section.into(),
            message: e.message().to_string(),
        }),
    }
}

impl AgentConfig {
    fn apply(&mut self, o: &Overrides, problems: &mut Vec<ConfigProblem>, events_file_set: bool) {
        if let Some(n) = &o.node {
            self.node = n.clone();
        }
        if !o.interfaces.is_empty() {
            self.interfaces = o.interfaces.clone();
        }
        if let Some(t) = o.tick {
            self.tick = t;
        }
        if let Some(w) = o.baseline_warmup {
            self.baseline_warmup = w;
        }
        if let Some(q) = o.quiet_period {
            self.detector.quiet_period_ms = q.as_millis() as u64;
        }
        if o.no_capture {
            self.capture.enabled = false;
        }
        if let Some(m) = o.mode {
            self.netmode.mode = m;
        }
        if let Some(url) = &o.server {
            match check_server_url(url) {
                Ok(()) => self.uplink.server = Some(url.clone()),
                Err(message) => problems.push(ConfigProblem {
                    key: "uplink.server (--server)".into(),
                    message,
                }),
            }
        }
        if let Some(f) = o.server_fingerprint {
            self.uplink.server_fingerprint = Some(f);
        }
        if o.no_uplink {
            self.uplink.enabled = false;
        }
        if let Some(d) = &o.state_dir {
            self.state_dir = d.clone();
        }
        match &o.events_file {
            Some(f) => self.events_file = f.clone(),
            // The event log follows the state directory unless placed explicitly.
            None if !events_file_set => self.events_file = self.state_dir.join("events.jsonl"),
            None => {}
        }
        if self.tick < MIN_TICK || self.tick > MAX_TICK {
            problems.push(ConfigProblem {
                key: "agent.tick (--tick)".into(),
                message: format!(
                    "expected a duration from 100ms to 1m, found {}",
                    humantime::format_duration(self.tick)
                ),
            });
        }
        if self.baseline_warmup < Duration::from_secs(1) {
            problems.push(ConfigProblem {
                key: "detector.baseline_warmup (--baseline-warmup)".into(),
                message: "expected at least 1s".into(),
            });
        }
        for i in &self.interfaces {
            if i.is_empty() || i.len() > 15 || i.contains('/') || i.chars().any(char::is_whitespace)
            {
                problems.push(ConfigProblem {
                    key: "agent.interfaces (--interface)".into(),
                    message: format!(
                        "\"{i}\" is not a valid interface name (1-15 characters, no '/' or spaces)"
                    ),
                });
            }
        }
        for (key, message) in self.netmode.validate() {
            problems.push(ConfigProblem { key, message });
        }
        // The per-IP bank holds every tracked IP plus their prefixes.
        let ips = self.netmode.networks.max_ips;
        self.detector.max_targets = ips.saturating_add(ips / 4).max(1_024);
        self.detector.tick_ms = self.tick.as_millis() as u64;
        self.detector.warmup_samples = self.baseline_warmup.as_secs_f64().ceil() as u64;
        for e in self.detector.validate() {
            // Range errors the file reader already named are not repeated.
            let key = format!("detector.{}", e.field);
            if !problems.iter().any(|p| p.key == key) {
                problems.push(ConfigProblem {
                    key,
                    message: e.problem,
                });
            }
        }
    }
}

/// For clap: parses a CLI duration with the same rules and messages as the file.
pub fn parse_cli_duration(raw: &str) -> Result<Duration, String> {
    parse_duration_in(raw, Duration::ZERO, Duration::from_secs(365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::from_parts(Some(text), Some("test.toml".into()), &Overrides::default())
    }

    #[test]
    fn no_file_gives_working_defaults() {
        let c = AgentConfig::from_parts(None, None, &Overrides::default()).unwrap();
        assert!(c.interfaces.is_empty());
        assert_eq!(c.tick, Duration::from_secs(1));
        assert_eq!(c.detector.warmup_samples, 300);
        assert_eq!(c.events_file, c.state_dir.join("events.jsonl"));
    }

    #[test]
    fn example_file_loads_and_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = AgentConfig::from_parts(Some(&text), Some(path), &Overrides::default()).unwrap();
        assert_eq!(c.node, "web1");
        assert_eq!(c.interfaces, ["eth0"]);
        assert_eq!(c.detector.floor(Metric::IcmpPps), 500.0);
        assert!(c.capture.enabled);
        assert_eq!(c.capture.ring_packets, 10_000);
        assert_eq!(c.capture.pcap_before, Duration::from_secs(5));
        assert_eq!(c.ioc.lists.len(), 2);
        assert_eq!(c.ioc.lists[0].format, levee_ioc::Format::SpamhausDrop);
        assert_eq!(c.ioc.lists[1].format, levee_ioc::Format::Auto);
        let m = &c.mitigation;
        assert!(m.enabled && !m.dry_run);
        assert_eq!(m.ttl, Duration::from_secs(600));
        assert_eq!(m.allowlist.len(), 2);
        assert_eq!(m.guard.max_drop, 0.9);
        assert_eq!(m.profiles.get(levee_packet::Family::HttpFlood).len(), 1);
        assert_eq!(
            m.profiles.get(levee_packet::Family::DnsAmplification).len(),
            1,
            "defaults kept"
        );
        assert_eq!(
            c.uplink.server.as_deref(),
            Some("https://levee.example.com:8443")
        );
        assert_eq!(c.uplink.queue_events, 2_000);
        let b = &c.bgp;
        assert!(b.enabled && b.validate("bgp").is_empty());
        assert_eq!(b.origin_as, 64500);
        assert_eq!(b.prefixes.len(), 2);
        assert_eq!(b.ttl, Duration::from_secs(300));
        assert_eq!(b.rtbh.communities.len(), 1);
        assert_eq!(b.speaker.kind, levee_bgp::config::SpeakerKind::Gobgp);
        assert_eq!(
            b.thresholds_for(Some(levee_packet::Family::SynFlood))
                .levels[1]
                .1,
            200_000_000
        );
        assert!(c.uplink.server_fingerprint.is_some());
        // Every key the reader knows appears in the example (uncommented).
        for key in [
            "node",
            "interfaces",
            "tick",
            "state_dir",
            "events_file",
            "snapshot_interval",
            "conn_interval",
            "snapshot_max_age",
            "multiplier",
            "window",
            "recompute_every",
            "baseline_warmup",
            "confirm_ticks",
            "quiet_period",
            "enabled",
            "budget_pps",
            "snaplen",
            "ring_packets",
            "pcap_packets",
            "pcap_before",
            "pcap_dir",
            "pcap_keep",
            "name",
            "path",
            "format",
            "dry_run",
            "executor",
            "allowlist",
            "protected",
            "max_rules",
            "ttl",
            "netdev_ingress",
            "audit_file",
            "max_drop",
            "grace",
            "min_pps",
            "syn_flood",
            "server",
            "server_fingerprint",
            "queue_events",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} ="))),
                "example lacks {key}"
            );
        }
        for m in Metric::ALL {
            assert!(
                text.contains(&format!("{} =", m.name())),
                "example lacks floors.{m}"
            );
        }
    }

    #[test]
    fn all_problems_reported_at_once() {
        let err = load(
            r#"
            [agent]
            tick = "5ms"
            interfaces = "eth0"
            colour = "blue"
            [detector]
            multiplier = "three"
            quiet_period = 10
            [detector.floors]
            rx_pps = -5
            bogus_pps = 1
            [extra]
            "#,
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "agent.tick",
            "agent.interfaces",
            "agent.colour",
            "detector.multiplier",
            "detector.quiet_period",
            "detector.floors.rx_pps",
            "detector.floors.bogus_pps",
            "extra",
        ] {
            assert!(keys.contains(&k), "missing problem for {k} in {keys:?}");
        }
        let text = err.to_string();
        assert!(text.contains("8 problem(s) in test.toml"), "{text}");
        assert!(
            text.contains("expected a duration from 100ms to 1m, found \"5ms\""),
            "{text}"
        );
    }

    #[test]
    fn mitigation_problems_name_their_keys() {
        let e = load("[mitigation]\nenabeld = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mitigation") && e.contains("enabeld"), "{e}");
        let e = load("[mitigation]\nttl = \"0s\"\nmax_rules = 0\n[mitigation.profiles]\nsyn_flood = [{ action = \"rate_limit\" }]\n")
            .unwrap_err()
            .to_string();
        for key in [
            "mitigation.ttl",
            "mitigation.max_rules",
            "mitigation.profiles.syn_flood[0].pps",
        ] {
            assert!(e.contains(key), "{key} missing in {e}");
        }
        assert!(!load("").unwrap().mitigation.enabled, "off by default");
        assert!(!load("").unwrap().bgp.enabled, "off by default");
        let e = load("[bgp]\nenabled = true\n").unwrap_err().to_string();
        assert!(e.contains("bgp.origin_as") && e.contains("bgp.rpki"), "{e}");
    }

    #[test]
    fn capture_and_ioc_problems_name_their_keys() {
        let err = load(
            r#"
            [capture]
            enabled = "yes"
            budget_pps = 5
            window = "1h"
            colour = 1
            [[ioc.lists]]
            name = "a"
            path = "/x"
            format = "csv"
            [[ioc.lists]]
            name = "a"
            [[ioc.lists]]
            path = "/y"
            "#,
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "capture.enabled",
            "capture.budget_pps",
            "capture.window",
            "capture.colour",
            "ioc.lists[0].format",
            "ioc.lists[1].name",
            "ioc.lists[1].path",
            "ioc.lists[2].name",
        ] {
            assert!(keys.contains(&k), "missing problem for {k} in {keys:?}");
        }
        let o = Overrides {
            no_capture: true,
            ..Default::default()
        };
        let c = AgentConfig::from_parts(None, None, &o).unwrap();
        assert!(!c.capture.enabled, "--no-capture wins");
    }

    #[test]
    fn syntax_error_names_file() {
        let err = load("[agent\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("config file test.toml is not valid TOML"),
            "{err}"
        );
    }

    #[test]
    fn cli_overrides_file() {
        let o = Overrides {
            interfaces: vec!["veth1".into()],
            tick: Some(Duration::from_millis(100)),
            baseline_warmup: Some(Duration::from_secs(20)),
            state_dir: Some("/tmp/x".into()),
            ..Default::default()
        };
        let c = AgentConfig::from_parts(
            Some("[agent]\ninterfaces = [\"eth0\"]\ntick = \"1s\"\n"),
            Some("f.toml".into()),
            &o,
        )
        .unwrap();
        assert_eq!(c.interfaces, ["veth1"]);
        assert_eq!(c.detector.tick_ms, 100);
        assert_eq!(c.detector.warmup_samples, 20);
        assert_eq!(c.events_file, PathBuf::from("/tmp/x/events.jsonl"));
    }

    #[test]
    fn bad_cli_values_are_named() {
        let o = Overrides {
            tick: Some(Duration::from_millis(10)),
            interfaces: vec!["a b".into()],
            ..Default::default()
        };
        let err = AgentConfig::from_parts(None, None, &o)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--tick") && err.contains("--interface"),
            "{err}"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = AgentConfig::load(
            Some(Path::new("/nonexistent/levee.toml")),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/levee.toml"));
    }
}
