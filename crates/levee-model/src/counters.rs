//! Counter data as the kernel reports it (cumulative [`RawSample`]) and as the
//! detector consumes it (per-second rates in a [`TickObservation`]).

use serde::{Deserialize, Serialize};

/// Cumulative counters of one network interface, as read from `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index, when known; lets a rename keep its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_drops: u64,
    pub rx_errors: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_drops: u64,
    pub tx_errors: u64,
}

/// Cumulative protocol counters from `/proc/net/snmp` and `/proc/net/snmp6`,
/// IPv4 and IPv6 summed (Linux keeps one TCP MIB for both families).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtoCounters {
    pub tcp_in_segs: u64,
    pub tcp_passive_opens: u64,
    pub tcp_attempt_fails: u64,
    pub tcp_estab_resets: u64,
    pub udp_in_datagrams: u64,
    pub udp_no_ports: u64,
    pub udp_in_errors: u64,
    pub udp_rcvbuf_errors: u64,
    pub icmp_in_msgs: u64,
}

/// TCP connection counts by state (a gauge, not a counter), from NETLINK_SOCK_DIAG.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnCounts {
    pub established: u64,
    pub syn_recv: u64,
    pub time_wait: u64,
    /// Every TCP socket of the namespace, listening ones included.
    pub total: u64,
}

/// One read of every counter source at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawSample {
    /// Monotonic time of the read in milliseconds (any fixed origin); rates use
    /// the difference between two samples, never the wall clock.
    pub mono_ms: u64,
    /// Wall-clock time of the read, milliseconds since the Unix epoch.
    pub unix_ms: i64,
    pub interfaces: Vec<InterfaceCounters>,
    pub proto: ProtoCounters,
    /// `None` when the connection counter is unavailable (e.g. no privilege).
    pub conns: Option<ConnCounts>,
}

/// Per-second rates of one interface over one tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InterfaceRates {
    pub name: String,
    pub rx_pps: f64,
    /// Bits per second.
    pub rx_bps: f64,
    pub tx_pps: f64,
    pub tx_bps: f64,
    pub rx_drops_ps: f64,
    pub rx_errors_ps: f64,
}

/// Per-second rates of one IP or prefix of the monitored networks (flow and
/// mirror modes), scaled by the sampling rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetRates {
    /// [`crate::Target::Ip`] or [`crate::Target::Prefix`]:
    /// `{"kind": "ip", "name": "203.0.113.7"}` or
    /// `{"kind": "prefix", "name": "203.0.113.0/24"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub target: crate::Target,
    pub pps: f64,
    /// Bits per second.
    pub bps: f64,
    /// Flows per second.
    pub flows: f64,
    pub tcp_pps: f64,
    pub udp_pps: f64,
    pub icmp_pps: f64,
    /// Whether the target may start (or keep) an incident this tick. A
    /// prefix whose traffic is one IP's attack is not alertable: that IP has
    /// its own incident. Its values are learnt either way.
    #[serde(default = "alertable")]
    pub alertable: bool,
}

fn alertable() -> bool {
    true
}

/// What the detector sees each tick: rates over the tick that ended at `unix_ms`.
/// Recorded streams of these replay deterministically through the detector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TickObservation {
    /// End of the tick, milliseconds since the Unix epoch.
    pub unix_ms: i64,
    /// Length of the tick in seconds (> 0).
    pub dt: f64,
    pub interfaces: Vec<InterfaceRates>,
    /// Host-wide TCP segments in per second.
    pub tcp_pps: f64,
    /// Host-wide UDP datagrams received per second: delivered, to closed ports
    /// and dropped (a flood at a closed port is still a flood).
    pub udp_pps: f64,
    pub icmp_pps: f64,
    /// TCP passive opens (accepted handshakes) per second.
    pub tcp_opens_ps: f64,
    pub udp_no_ports_ps: f64,
    pub udp_errors_ps: f64,
    pub conns: Option<ConnCounts>,
    /// Per-IP and per-prefix rates (flow and mirror modes); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetRates>,
}
