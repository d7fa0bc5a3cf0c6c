//! Configuration of flow and mirror modes: `agent.mode` (flag `--mode`), and
//! the `[networks]`, `[flow]` and `[mirror]` sections. Read by
//! [`crate::config`], documented in `examples/agent.toml`.

use crate::tomlread::TableReader;
use ipnet::IpNet;
use levee_flow::ExporterSampling;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What the agent watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// This host's own kernel counters (and packet sampler).
    #[default]
    Host,
    /// sFlow / NetFlow / IPFIX from routers, per IP of `monitored_networks`.
    Flow,
    /// A switch SPAN (mirror) port, per IP of `monitored_networks`.
    Mirror,
}

impl Mode {
    pub fn from_name(s: &str) -> Option<Mode> {
        match s {
            "host" => Some(Mode::Host),
            "flow" => Some(Mode::Flow),
            "mirror" => Some(Mode::Mirror),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Host => "host",
            Mode::Flow => "flow",
            Mode::Mirror => "mirror",
        }
    }
}

/// `[networks]`: the per-IP engine of flow and mirror modes.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworksConfig {
    /// Destinations watched, each IP with its own baseline.
    pub monitored_networks: Vec<IpNet>,
    /// Prefix length of the IPv4 aggregates (carpet bombing).
    pub prefix_length_v4: u8,
    pub prefix_length_v6: u8,
    /// IPs with their own counters and baselines; beyond it, an IP counts
    /// only in its prefix.
    pub max_ips: usize,
    /// Rates are averaged over this sliding window (exporters send in
    /// bursts; the window turns bursts into rates).
    pub rate_window: Duration,
    /// A prefix incident needs at least this many IPs of the prefix hit...
    pub carpet_min_ips: usize,
    /// ...and no single IP carrying more than this share of its packets.
    pub carpet_max_top_share: f64,
}

impl Default for NetworksConfig {
    fn default() -> Self {
        NetworksConfig {
            monitored_networks: Vec::new(),
            prefix_length_v4: 24,
            prefix_length_v6: 64,
            max_ips: 65_536,
            rate_window: Duration::from_secs(1),
            carpet_min_ips: 16,
            carpet_max_top_share: 0.5,
        }
    }
}

/// `[flow]`: the listeners and the decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    pub listen: Vec<SocketAddr>,
    pub sockets_per_listener: usize,
    pub recv_buffer: usize,
    pub template_timeout: Duration,
    pub max_exporters: usize,
    /// `[[flow.exporters]]`: sampling rates per exporter.
    pub exporters: Vec<ExporterSampling>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        let l = levee_flowd::ListenConfig::default();
        FlowConfig {
            listen: l.listen,
            sockets_per_listener: 1,
            recv_buffer: l.recv_buffer,
            template_timeout: Duration::from_secs(1800),
            max_exporters: l.max_exporters,
            exporters: Vec::new(),
        }
    }
}

/// `[mirror]`: the SPAN port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The interface the switch mirrors traffic to.
    pub interface: Option<String>,
    pub promiscuous: bool,
    /// Sampled packets per second (kernel-side 1-in-N sampling, adapted).
    pub budget_pps: u32,
    pub snaplen: u32,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            interface: None,
            promiscuous: true,
            budget_pps: 50_000,
            snaplen: 128,
        }
    }
}

/// Everything flow and mirror modes read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetModeConfig {
    pub mode: Mode,
    pub networks: NetworksConfig,
    pub flow: FlowConfig,
    pub mirror: MirrorConfig,
}

impl NetworksConfig {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        if let Some(list) = t.string_list("monitored_networks") {
            let mut nets = Vec::new();
            for s in list {
                match parse_network(&s) {
                    Ok(n) => nets.push(n),
                    Err(e) => t.problem("monitored_networks", e),
                }
            }
            self.monitored_networks = nets;
        }
        if let Some(v) = t.integer("prefix_length_v4", 8, 32) {
            self.prefix_length_v4 = v as u8;
        }
        if let Some(v) = t.integer("prefix_length_v6", 16, 128) {
            self.prefix_length_v6 = v as u8;
        }
        if let Some(v) = t.integer("max_ips", 1, 10_000_000) {
            self.max_ips = v as usize;
        }
        if let Some(v) = t.duration(
            "rate_window",
            Duration::from_millis(100),
            Duration::from_secs(60),
        ) {
            self.rate_window = v;
        }
        if let Some(v) = t.integer("carpet_min_ips", 2, 1_000_000) {
            self.carpet_min_ips = v as usize;
        }
        if let Some(v) = t.number("carpet_max_top_share", 0.01, 1.0) {
            self.carpet_max_top_share = v;
        }
    }
}

/// A network in CIDR notation (a bare address is a /32 or /128); host bits
/// must be zero, so a typo does not silently watch another network.
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let net: IpNet = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(format!(
                    "\"{s}\" is not a network: expected CIDR like 203.0.113.0/24 or 2001:db8::/48"
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "\"{s}\" has host bits set: did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

impl FlowConfig {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        if let Some(list) = t.string_list("listen") {
            let mut addrs = Vec::new();
            for s in list {
                match s.parse::<SocketAddr>() {
                    Ok(a) => addrs.push(a),
                    Err(_) => t.problem(
                        "listen",
                        format!("\"{s}\" is not an address:port (e.g. \"0.0.0.0:2055\" or \"[::]:6343\")"),
                    ),
                }
            }
            if addrs.is_empty() {
                t.problem("listen", "expected at least one address:port");
            }
            self.listen = addrs;
        }
        if let Some(v) = t.integer("sockets_per_listener", 1, 64) {
            self.sockets_per_listener = v as usize;
        }
        if let Some(v) = t.integer("recv_buffer", 65_536, 1 << 30) {
            self.recv_buffer = v as usize;
        }
        if let Some(v) = t.duration(
            "template_timeout",
            Duration::from_secs(10),
            Duration::from_secs(7 * 86_400),
        ) {
            self.template_timeout = v;
        }
        if let Some(v) = t.integer("max_exporters", 1, 1_000_000) {
            self.max_exporters = v as usize;
        }
        if let Some(list) = t.table_list("exporters") {
            for (prefix, table) in list {
                let mut r = t.reader(prefix, table);
                let addr = r.string("address");
                let rate = r.integer("sampling_rate", 1, i64::from(u32::MAX));
                let force = r.boolean("force").unwrap_or(false);
                match addr.as_deref().map(str::parse::<IpAddr>) {
                    None => r.problem("address", "missing: the exporter's address"),
                    Some(Err(_)) => r.problem("address", "expected an IP address"),
                    Some(Ok(exporter)) => match rate {
                        Some(rate) => self.exporters.push(ExporterSampling {
                            exporter,
                            rate: rate as u32,
                            force,
                        }),
                        None => r.problem(
                            "sampling_rate",
                            "missing: packets per sampled packet (1 = unsampled)",
                        ),
                    },
                }
                r.finish();
            }
        }
    }
}

impl MirrorConfig {
    pub(crate) fn read(&mut self, t: &mut TableReader<'_>) {
        if let Some(v) = t.string("interface") {
            if v.is_empty() || v.len() > 15 || v.contains('/') {
                t.problem(
                    "interface",
                    format!("\"{v}\" is not a valid interface name"),
                );
            } else {
                self.interface = Some(v);
            }
        }
        if let Some(v) = t.boolean("promiscuous") {
            self.promiscuous = v;
        }
        if let Some(v) = t.integer("budget_pps", 100, 10_000_000) {
            self.budget_pps = v as u32;
        }
        if let Some(v) = t.integer("snaplen", 64, 9_216) {
            self.snaplen = v as u32;
        }
    }
}

impl NetModeConfig {
    /// Problems that only show once file and flags are merged: (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.mode != Mode::Host && self.networks.monitored_networks.is_empty() {
            p.push((
                "networks.monitored_networks".to_string(),
                format!(
                    "mode {} needs the networks to watch, e.g. monitored_networks = [\"203.0.113.0/24\"]",
                    self.mode.name()
                ),
            ));
        }
        if self.mode == Mode::Mirror && self.mirror.interface.is_none() {
            p.push((
                "mirror.interface".to_string(),
                "mode mirror needs the SPAN interface, e.g. interface = \"eth1\"".to_string(),
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_must_be_cidr_without_host_bits() {
        assert_eq!(
            parse_network("203.0.113.0/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            parse_network("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert!(parse_network("2001:db8::/48").is_ok());
        let e = parse_network("203.0.113.5/24").unwrap_err();
        assert!(e.contains("did you mean 203.0.113.0/24"), "{e}");
        assert!(parse_network("nope").unwrap_err().contains("CIDR"));
    }

    #[test]
    fn modes_by_name() {
        for m in [Mode::Host, Mode::Flow, Mode::Mirror] {
            assert_eq!(Mode::from_name(m.name()), Some(m));
        }
        assert_eq!(Mode::from_name("span"), None);
        let c = NetModeConfig {
            mode: Mode::Mirror,
            ..Default::default()
        };
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["networks.monitored_networks", "mirror.interface"]);
    }
}

#[cfg(test)]
mod example_tests {
    use crate::config::{AgentConfig, ConfigError, Overrides};
    use std::path::Path;

    /// Every key of agent.mode, [networks], [flow] and [mirror] appears in
    /// examples/agent.toml, uncommented, and the values shown are read.
    #[test]
    fn example_documents_every_netmode_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = AgentConfig::from_parts(Some(&text), Some(path), &Overrides::default()).unwrap();
        for key in [
            "mode",
            "monitored_networks",
            "prefix_length_v4",
            "prefix_length_v6",
            "max_ips",
            "rate_window",
            "carpet_min_ips",
            "carpet_max_top_share",
            "listen",
            "sockets_per_listener",
            "recv_buffer",
            "template_timeout",
            "max_exporters",
            "address",
            "sampling_rate",
            "force",
            "interface",
            "promiscuous",
            "budget_pps",
            "snaplen",
            "flows",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} ="))),
                "example lacks {key}"
            );
        }
        let n = &c.netmode;
        assert_eq!(n.networks.monitored_networks.len(), 2);
        assert_eq!(n.flow.listen.len(), 3);
        assert_eq!(n.flow.exporters[0].rate, 1000);
        assert_eq!(n.mirror.interface.as_deref(), Some("eth1"));
        assert_eq!(c.detector.max_targets, 65_536 + 16_384);
    }

    #[test]
    fn netmode_problems_are_named() {
        let err = AgentConfig::from_parts(
            Some(
                r#"
                [agent]
                mode = "span"
                [networks]
                monitored_networks = ["10.0.0.1/8", "x"]
                carpet_max_top_share = 2
                [flow]
                listen = ["0.0.0.0"]
                [[flow.exporters]]
                address = "nope"
                [mirror]
                colour = 1
                "#,
            ),
            Some("t.toml".into()),
            &Overrides::default(),
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "agent.mode",
            "networks.monitored_networks",
            "networks.carpet_max_top_share",
            "flow.listen",
            "flow.exporters[0].address",
            "mirror.colour",
        ] {
            assert!(keys.contains(&k), "no problem for {k} in {keys:?}");
        }
        let o = Overrides {
            mode: Some(super::Mode::Flow),
            ..Default::default()
        };
        let err = AgentConfig::from_parts(None, None, &o)
            .unwrap_err()
            .to_string();
        assert!(err.contains("networks.monitored_networks"), "{err}");
    }
}
