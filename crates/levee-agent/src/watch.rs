//! `levee watch`: the free per-second monitor. Turns one observation into one
//! line per interface, as JSON (`--json`) or as a live table for a terminal.

use levee_model::timefmt::rfc3339_millis;
use levee_model::TickObservation;
use serde::Serialize;

/// One interface in one second. The first ten fields are the documented
/// interface (BRIEF: `levee watch --json`); later fields are additions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchLine {
    pub ts: String,
    pub interface: String,
    pub rx_pps: u64,
    pub rx_bps: u64,
    pub tx_pps: u64,
    pub tx_bps: u64,
    /// Host-wide (the kernel counts protocols per namespace, not per interface).
    pub tcp_pps: u64,
    pub udp_pps: u64,
    pub icmp_pps: u64,
    /// Established TCP connections; null when the count is unavailable.
    pub connections: Option<u64>,
    pub syn_recv: Option<u64>,
    pub time_wait: Option<u64>,
    pub rx_drops_ps: u64,
}

fn r(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    }
}

pub fn lines(obs: &TickObservation) -> Vec<WatchLine> {
    obs.interfaces
        .iter()
        .map(|i| WatchLine {
            ts: rfc3339_millis(obs.unix_ms),
            interface: i.name.clone(),
            rx_pps: r(i.rx_pps),
            rx_bps: r(i.rx_bps),
            tx_pps: r(i.tx_pps),
            tx_bps: r(i.tx_bps),
            tcp_pps: r(obs.tcp_pps),
            udp_pps: r(obs.udp_pps),
            icmp_pps: r(obs.icmp_pps),
            connections: obs.conns.map(|c| c.established),
            syn_recv: obs.conns.map(|c| c.syn_recv),
            time_wait: obs.conns.map(|c| c.time_wait),
            rx_drops_ps: r(i.rx_drops_ps),
        })
        .collect()
}

/// 1234567 -> "1.23M", with a unit suffix.
pub fn human(x: u64, unit: &str) -> String {
    let (v, p) = match x {
        0..=9_999 => return format!("{x}{unit}"),
        10_000..=9_999_999 => (x as f64 / 1e3, "k"),
        10_000_000..=9_999_999_999 => (x as f64 / 1e6, "M"),
        _ => (x as f64 / 1e9, "G"),
    };
    format!("{v:.1}{p}{unit}")
}

/// The whole screen for one second: a header and a row per interface.
pub fn table(lines: &[WatchLine], conn_note: Option<&str>) -> String {
    let mut s = String::new();
    let ts = lines.first().map_or("", |l| l.ts.as_str());
    s.push_str(&format!("levee watch  {ts}  (Ctrl-C to quit)\n\n"));
    s.push_str(&format!(
        "{:<16} {:>10} {:>12} {:>10} {:>12}\n",
        "interface", "rx pps", "rx bit/s", "tx pps", "tx bit/s"
    ));
    for l in lines {
        s.push_str(&format!(
            "{:<16} {:>10} {:>12} {:>10} {:>12}\n",
            l.interface,
            human(l.rx_pps, ""),
            human(l.rx_bps, ""),
            human(l.tx_pps, ""),
            human(l.tx_bps, "")
        ));
    }
    if let Some(l) = lines.first() {
        s.push_str(&format!(
            "\nhost: tcp {} pps   udp {} pps   icmp {} pps\n",
            human(l.tcp_pps, ""),
            human(l.udp_pps, ""),
            human(l.icmp_pps, "")
        ));
        match (l.connections, l.syn_recv, l.time_wait) {
            (Some(e), Some(sr), Some(tw)) => s.push_str(&format!(
                "tcp connections: established {e}   syn_recv {sr}   time_wait {tw}\n"
            )),
            _ => s.push_str(&format!(
                "tcp connections: unavailable{}\n",
                conn_note.map(|n| format!(" ({n})")).unwrap_or_default()
            )),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::{ConnCounts, InterfaceRates};

    fn obs() -> TickObservation {
        TickObservation {
            unix_ms: 1_795_225_450_000,
            dt: 1.0,
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_pps: 1234.4,
                rx_bps: 9_876_543.0,
                ..Default::default()
            }],
            tcp_pps: 1000.0,
            udp_pps: 200.0,
            icmp_pps: 3.0,
            conns: Some(ConnCounts {
                established: 12,
                syn_recv: 1,
                time_wait: 4,
                total: 20,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn json_line_has_documented_fields() {
        let l = &lines(&obs())[0];
        let v = serde_json::to_value(l).unwrap();
        for k in [
            "ts",
            "interface",
            "rx_pps",
            "rx_bps",
            "tx_pps",
            "tx_bps",
            "tcp_pps",
            "udp_pps",
            "icmp_pps",
            "connections",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["ts"], "2026-11-21T01:44:10.000Z");
        assert_eq!(v["rx_pps"], 1234);
        assert_eq!(v["connections"], 12);
    }

    #[test]
    fn missing_conn_counts_are_null_and_explained() {
        let o = TickObservation {
            conns: None,
            ..obs()
        };
        let ls = lines(&o);
        assert_eq!(
            serde_json::to_value(&ls[0]).unwrap()["connections"],
            serde_json::Value::Null
        );
        let t = table(&ls, Some("needs CAP_NET_ADMIN"));
        assert!(t.contains("unavailable (needs CAP_NET_ADMIN)"), "{t}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(999, ""), "999");
        assert_eq!(human(12_345, ""), "12.3k");
        assert_eq!(human(150_000_000, ""), "150.0M");
        assert_eq!(human(2_500_000_000_000, ""), "2500.0G");
    }
}
