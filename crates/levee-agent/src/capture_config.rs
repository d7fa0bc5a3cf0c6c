//! The `[capture]` and `[ioc]` sections: the packet sampler, incident pcaps and
//! the indicator lists incidents are matched against. Read by
//! [`crate::config`], documented in `examples/agent.toml`.

use crate::tomlread::TableReader;
use levee_ioc::{Format, ListSource};
use std::path::PathBuf;
use std::time::Duration;

/// The packet sampler and incident captures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Sample packets at all (needs CAP_NET_RAW). Without the sampler incidents
    /// carry no family, fingerprint or pcap.
    pub enabled: bool,
    /// Interfaces to sample; empty means the agent's interfaces (or, when those
    /// are unset too, every interface except loopback present at start).
    pub interfaces: Vec<String>,
    /// Sampled packets per second the agent aims for, over all interfaces.
    pub budget_pps: u32,
    /// Bytes kept per sampled packet.
    pub snaplen: u32,
    /// Length of a feature window (classification looks at one window).
    pub window: Duration,
    /// Sampled packets kept in memory per interface for incident pcaps
    /// (0: no pcaps).
    pub ring_packets: usize,
    /// Largest number of packets in one incident pcap.
    pub pcap_packets: usize,
    /// How far before the incident's start the pcap reaches.
    pub pcap_before: Duration,
    /// Where incident pcaps go; `None`: `<state_dir>/pcap`.
    pub pcap_dir: Option<PathBuf>,
    /// Incident pcaps kept; the oldest are deleted beyond this.
    pub pcap_keep: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: true,
            interfaces: Vec::new(),
            budget_pps: 20_000,
            snaplen: 256,
            window: Duration::from_secs(1),
            ring_packets: 10_000,
            pcap_packets: 10_000,
            pcap_before: Duration::from_secs(5),
            pcap_dir: None,
            pcap_keep: 100,
        }
    }
}

impl CaptureConfig {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        if let Some(v) = t.boolean("enabled") {
            self.enabled = v;
        }
        if let Some(v) = t.string_list("interfaces") {
            self.interfaces = v;
        }
        if let Some(v) = t.integer("budget_pps", 100, 1_000_000) {
            self.budget_pps = v as u32;
        }
        if let Some(v) = t.integer("snaplen", 64, 9_216) {
            self.snaplen = v as u32;
        }
        if let Some(v) = t.duration(
            "window",
            Duration::from_millis(200),
            Duration::from_secs(10),
        ) {
            self.window = v;
        }
        if let Some(v) = t.integer("ring_packets", 0, 1_000_000) {
            self.ring_packets = v as usize;
        }
        if let Some(v) = t.integer("pcap_packets", 1, 1_000_000) {
            self.pcap_packets = v as usize;
        }
        if let Some(v) = t.duration("pcap_before", Duration::ZERO, Duration::from_secs(600)) {
            self.pcap_before = v;
        }
        if let Some(v) = t.string("pcap_dir") {
            if v.trim().is_empty() {
                t.problem("pcap_dir", "expected a directory path");
            } else {
                self.pcap_dir = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = t.integer("pcap_keep", 1, 1_000_000) {
            self.pcap_keep = v as usize;
        }
    }
}

/// Indicator lists (`[[ioc.lists]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IocConfig {
    pub lists: Vec<ListSource>,
}

impl IocConfig {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        let Some(lists) = t.table_list("lists") else {
            return;
        };
        // Names seen, valid list or not, so a duplicate is reported even
        // when its first holder had another problem.
        let mut seen: Vec<String> = Vec::new();
        for (prefix, table) in lists {
            let mut r = t.reader(prefix, table);
            let name = r.string("name");
            let path = r.string("path");
            let format = match r.string("format") {
                None => Some(Format::Auto),
                Some(f) => match Format::from_name(&f) {
                    Some(f) => Some(f),
                    None => {
                        r.problem(
                            "format",
                            format!(
                                "unknown format \"{f}\"; expected auto, plain, spamhaus_drop or firehol_netset"
                            ),
                        );
                        None
                    }
                },
            };
            match &name {
                None => r.problem("name", "missing: every list needs a name for reports"),
                Some(n) if n.trim().is_empty() => r.problem("name", "expected a non-empty name"),
                Some(n) if seen.contains(n) => r.problem(
                    "name",
                    format!("\"{n}\" names two lists; names must differ"),
                ),
                Some(n) => seen.push(n.clone()),
            }
            if path.is_none() {
                r.problem("path", "missing: the file to read");
            }
            r.finish();
            if let (Some(name), Some(path), Some(format)) = (name, path, format) {
                if !name.trim().is_empty() && !self.lists.iter().any(|l| l.name == name) {
                    self.lists.push(ListSource {
                        name,
                        path: PathBuf::from(path),
                        format,
                    });
                }
            }
        }
    }
}
