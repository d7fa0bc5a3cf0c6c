//! Telemetry (every second) and heartbeats (every few seconds).

use crate::error::{FieldError, Problems};
use levee_model::TickObservation;
use serde::{Deserialize, Serialize};

/// One learnt baseline of the agent's detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineEntry {
    /// Interface name or `host`.
    pub target: String,
    /// Metric name, e.g. `rx_pps`.
    pub metric: String,
    /// p99 of the window.
    pub baseline: f64,
    /// The alert threshold: max(multiplier x baseline, floor).
    pub threshold: f64,
}

/// `POST /api/v1/agent/telemetry`: per-second samples not yet delivered
/// (normally one; up to a minute after a short outage) and the current baselines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetryBatch {
    /// Per-second observations (ticks folded to one second each), oldest first:
    /// per-interface rates, protocol breakdown and connection counts.
    pub samples: Vec<TickObservation>,
    /// The detector's baselines; empty while learning or when unchanged.
    #[serde(default)]
    pub baselines: Vec<BaselineEntry>,
    /// The policy version the agent runs; the answer carries a newer one if any.
    #[serde(default)]
    pub policy_version: u64,
}

impl TelemetryBatch {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(
            self.samples.len() <= crate::limits::MAX_SAMPLES_PER_BATCH,
            "samples",
            format!("at most {}", crate::limits::MAX_SAMPLES_PER_BATCH),
        );
        for (i, s) in self.samples.iter().enumerate() {
            let f = |name: &str| format!("samples[{i}].{name}");
            p.check(
                s.unix_ms > 0,
                f("unix_ms"),
                "must be > 0 (ms since the epoch)",
            );
            p.check(
                s.dt.is_finite() && s.dt > 0.0 && s.dt <= 60.0,
                f("dt"),
                "must be in (0, 60] seconds",
            );
            p.finite(s.tcp_pps, f("tcp_pps"));
            p.finite(s.udp_pps, f("udp_pps"));
            p.finite(s.icmp_pps, f("icmp_pps"));
            p.check(s.interfaces.len() <= 256, f("interfaces"), "at most 256");
            for (j, r) in s.interfaces.iter().enumerate() {
                let g = |name: &str| format!("samples[{i}].interfaces[{j}].{name}");
                p.name(&r.name, g("name"));
                p.finite(r.rx_pps, g("rx_pps"));
                p.finite(r.rx_bps, g("rx_bps"));
                p.finite(r.tx_pps, g("tx_pps"));
                p.finite(r.tx_bps, g("tx_bps"));
            }
        }
        p.check(self.baselines.len() <= 4096, "baselines", "at most 4096");
        for (i, b) in self.baselines.iter().enumerate() {
            p.name(&b.target, format!("baselines[{i}].target"));
            p.name(&b.metric, format!("baselines[{i}].metric"));
            p.finite(b.baseline, format!("baselines[{i}].baseline"));
            p.finite(b.threshold, format!("baselines[{i}].threshold"));
        }
        p.into_result()
    }
}

/// `POST /api/v1/agent/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// The agent's version.
    pub version: String,
    /// Seconds since the agent started.
    #[serde(default)]
    pub uptime_s: u64,
    /// Events waiting in the agent's offline queue.
    #[serde(default)]
    pub queued_events: u64,
    /// The policy version the agent runs.
    #[serde(default)]
    pub policy_version: u64,
    /// Commands the agent has handled since its last heartbeat (done or
    /// failed; either way not to be sent again).
    #[serde(default)]
    pub acked_commands: Vec<i64>,
    /// What became of those commands (agents older than this field send
    /// only `acked_commands`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_results: Vec<crate::CommandResult>,
    /// Interfaces the agent watches now.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

impl Heartbeat {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(self.version.len() <= 64, "version", "at most 64 bytes");
        p.check(
            self.acked_commands.len() <= 1000,
            "acked_commands",
            "at most 1000",
        );
        p.check(
            self.command_results.len() <= 1000,
            "command_results",
            "at most 1000",
        );
        p.check(self.interfaces.len() <= 256, "interfaces", "at most 256");
        for (i, name) in self.interfaces.iter().enumerate() {
            p.name(name, format!("interfaces[{i}]"));
        }
        p.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::InterfaceRates;
    use proptest::prelude::*;

    fn sample() -> TickObservation {
        TickObservation {
            unix_ms: 1_795_225_450_000,
            dt: 1.0,
            interfaces: vec![InterfaceRates {
                name: "eth0".into(),
                rx_pps: 10.0,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn telemetry_validation_names_fields() {
        let mut bad = sample();
        bad.dt = 0.0;
        bad.interfaces[0].rx_pps = f64::NAN;
        let t = TelemetryBatch {
            samples: vec![sample(), bad],
            ..Default::default()
        };
        let fields: Vec<String> = t
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["samples[1].dt", "samples[1].interfaces[0].rx_pps"]);
        let good = TelemetryBatch {
            samples: vec![sample()],
            ..Default::default()
        };
        assert!(good.validate().is_ok());
    }

    #[test]
    fn too_many_samples_is_a_named_error() {
        let t = TelemetryBatch {
            samples: vec![sample(); crate::limits::MAX_SAMPLES_PER_BATCH + 1],
            ..Default::default()
        };
        assert_eq!(t.validate().unwrap_err()[0].field, "samples");
    }

    proptest! {
        /// Bodies come from the network: any bytes parse to a value or an error.
        #[test]
        fn decoding_arbitrary_bodies_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<TelemetryBatch>(&bytes);
            let _ = serde_json::from_slice::<crate::EventBatch>(&bytes);
            let _ = serde_json::from_slice::<Heartbeat>(&bytes);
            let _ = serde_json::from_slice::<crate::EnrollRequest>(&bytes);
        }

        #[test]
        fn decoded_batches_validate_without_panicking(s in "\\{\"samples\":\\[\\{\"unix_ms\":[0-9]{1,14},\"dt\":[0-9.e-]{1,6},\"interfaces\":\\[\\]\\}\\]\\}") {
            if let Ok(t) = serde_json::from_str::<TelemetryBatch>(&s) {
                let _ = t.validate();
            }
        }
    }
}
