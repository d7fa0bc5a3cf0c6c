//! What the detector measures ([`Metric`]), on what ([`Target`]), and how the
//! two combine into one baseline series ([`SeriesKey`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A measured quantity. Rates are per second; `SynRecv` and `Connections` are gauges.
/// `Flows` (flow records, or distinct flows among sampled packets, per
/// second) exists for per-IP targets of flow and mirror modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RxPps,
    RxBps,
    TcpPps,
    UdpPps,
    IcmpPps,
    SynRecv,
    Connections,
    Flows,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::RxPps,
        Metric::RxBps,
        Metric::TcpPps,
        Metric::UdpPps,
        Metric::IcmpPps,
        Metric::SynRecv,
        Metric::Connections,
        Metric::Flows,
    ];

    /// The snake_case name used in events and config keys.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RxPps => "rx_pps",
            Metric::RxBps => "rx_bps",
            Metric::TcpPps => "tcp_pps",
            Metric::UdpPps => "udp_pps",
            Metric::IcmpPps => "icmp_pps",
            Metric::SynRecv => "syn_recv",
            Metric::Connections => "connections",
            Metric::Flows => "flows",
        }
    }

    pub fn from_name(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Gauges are sampled, not integrated: a per-second value is their mean, and
    /// they contribute no packet/byte totals.
    pub fn is_gauge(self) -> bool {
        matches!(self, Metric::SynRecv | Metric::Connections)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a series is measured on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Target {
    /// One network interface (per-interface counters).
    Interface(String),
    /// The whole host (protocol and connection counters, which the kernel keeps
    /// per network namespace, not per interface).
    Host,
    /// One IP address of the monitored networks (flow and mirror modes).
    Ip(IpAddr),
    /// One prefix of the monitored networks, in CIDR notation
    /// (`203.0.113.0/24`): the aggregate that catches carpet bombing.
    Prefix(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Interface(n) => f.write_str(n),
            Target::Host => f.write_str("host"),
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Prefix(p) => f.write_str(p),
        }
    }
}

/// One baseline series: a metric on a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub target: Target,
    pub metric: Metric,
}

impl SeriesKey {
    pub fn new(target: Target, metric: Metric) -> Self {
        SeriesKey { target, metric }
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.target, self.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
        }
        assert_eq!(Metric::from_name("nope"), None);
    }

    #[test]
    fn per_ip_targets_display_and_serialise() {
        let ip = Target::Ip("203.0.113.7".parse().unwrap());
        assert_eq!(ip.to_string(), "203.0.113.7");
        assert_eq!(
            serde_json::to_value(&ip).unwrap(),
            serde_json::json!({"kind": "ip", "name": "203.0.113.7"})
        );
        let p = Target::Prefix("203.0.113.0/24".into());
        assert_eq!(p.to_string(), "203.0.113.0/24");
        let back: Target = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
