//! Folds the agent's ticks (100 ms to 1 min) into per-second samples for the
//! server: rates are averaged weighted by tick length, gauges (connections)
//! take the last value, per interface by name.

use levee_model::{InterfaceRates, TickObservation};

/// One sample covering `ticks` (oldest first); `None` for no ticks.
pub fn fold(ticks: &[TickObservation]) -> Option<TickObservation> {
    let last = ticks.last()?;
    let total: f64 = ticks
        .iter()
        .map(|t| t.dt)
        .filter(|d| d.is_finite() && *d > 0.0)
        .sum();
    if total <= 0.0 {
        return None;
    }
    let w = |t: &TickObservation| {
        if t.dt.is_finite() && t.dt > 0.0 {
            t.dt / total
        } else {
            0.0
        }
    };
    let avg = |f: fn(&TickObservation) -> f64| ticks.iter().map(|t| f(t) * w(t)).sum::<f64>();
    let mut interfaces: Vec<InterfaceRates> = Vec::new();
    for t in ticks {
        for i in &t.interfaces {
            let slot = match interfaces.iter_mut().find(|x| x.name == i.name) {
                Some(s) => s,
                None => {
                    interfaces.push(InterfaceRates {
                        name: i.name.clone(),
                        ..Default::default()
                    });
                    interfaces.last_mut().expect("just pushed")
                }
            };
            let k = w(t);
            slot.rx_pps += i.rx_pps * k;
            slot.rx_bps += i.rx_bps * k;
            slot.tx_pps += i.tx_pps * k;
            slot.tx_bps += i.tx_bps * k;
            slot.rx_drops_ps += i.rx_drops_ps * k;
            slot.rx_errors_ps += i.rx_errors_ps * k;
        }
    }
    Some(TickObservation {
        unix_ms: last.unix_ms,
        dt: total,
        interfaces,
        tcp_pps: avg(|t| t.tcp_pps),
        udp_pps: avg(|t| t.udp_pps),
        icmp_pps: avg(|t| t.icmp_pps),
        tcp_opens_ps: avg(|t| t.tcp_opens_ps),
        udp_no_ports_ps: avg(|t| t.udp_no_ports_ps),
        udp_errors_ps: avg(|t| t.udp_errors_ps),
        conns: ticks.iter().rev().find_map(|t| t.conns),
        // Per-IP rates (flow and mirror modes) stay on the agent: a /16 is
        // 65,536 of them a second. Their incidents reach the server as
        // events, naming the IP or prefix.
        targets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::ConnCounts;

    fn tick(ms: i64, dt: f64, rx: f64, tcp: f64) -> TickObservation {
        TickObservation {
            unix_ms: ms,
            dt,
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_pps: rx,
                ..Default::default()
            }],
            tcp_pps: tcp,
            conns: Some(ConnCounts {
                established: ms as u64,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ten_100ms_ticks_make_one_second() {
        let ticks: Vec<_> = (1..=10)
            .map(|i| tick(i * 100, 0.1, i as f64 * 10.0, 5.0))
            .collect();
        let s = fold(&ticks).unwrap();
        assert!((s.dt - 1.0).abs() < 1e-9);
        assert_eq!(s.unix_ms, 1000);
        assert!(
            (s.interfaces[0].rx_pps - 55.0).abs() < 1e-9,
            "mean of 10..100"
        );
        assert!((s.tcp_pps - 5.0).abs() < 1e-9);
        assert_eq!(
            s.conns.unwrap().established,
            1000,
            "gauges take the last value"
        );
    }

    #[test]
    fn weights_follow_tick_length_and_new_interfaces_join() {
        let mut a = tick(100, 0.25, 100.0, 0.0);
        let b = tick(1000, 0.75, 0.0, 0.0);
        a.interfaces.push(InterfaceRates {
            name: "eth1".into(),
            rx_pps: 40.0,
            ..Default::default()
        });
        let s = fold(&[a, b]).unwrap();
        assert!((s.interfaces[0].rx_pps - 25.0).abs() < 1e-9);
        assert_eq!(s.interfaces[1].name, "eth1");
        assert!((s.interfaces[1].rx_pps - 10.0).abs() < 1e-9);
        assert_eq!(fold(&[]), None);
    }
}
