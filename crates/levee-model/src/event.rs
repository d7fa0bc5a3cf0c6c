//! The agent's events: one JSON object per line on stdout and in the event log.
//!
//! This is Levee's external interface (BRIEF, "External interface"): every event
//! has `ts` (RFC 3339 UTC with milliseconds), `event` and `node`. Fields are only
//! ever added, never renamed or removed, because users' scripts parse them.

use crate::timefmt::rfc3339_millis;
use serde::{Deserialize, Serialize};

/// An event with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    pub node: String,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn new(unix_ms: i64, node: impl Into<String>, body: EventBody) -> Self {
        Event {
            ts: rfc3339_millis(unix_ms),
            node: node.into(),
            body,
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).expect("event serialises")
    }

    /// The `event` field's value, e.g. `incident_started`.
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }
}

/// Every kind of event, tagged by the `event` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventBody {
    /// The agent started; says whether a saved baseline was restored.
    AgentStarted {
        version: String,
        tick_ms: u64,
        baseline_warmup_s: u64,
        /// Per-second samples restored from the snapshot (0 = learning from scratch).
        restored_samples: u64,
        interfaces: Vec<String>,
    },
    /// Every series needed for detection has finished its learning phase.
    BaselineReady {
        series: usize,
    },
    IncidentStarted(IncidentInfo),
    IncidentUpdated(IncidentInfo),
    IncidentResolved {
        #[serde(flatten)]
        info: IncidentInfo,
        #[serde(flatten)]
        summary: IncidentResolvedSummary,
    },
    /// The classification of an open incident changed (a new vector joined,
    /// or the attack switched vectors). Reported after two consecutive
    /// re-evaluations agree, so a vector hovering at a threshold is not noise.
    IncidentVectorChanged {
        incident_id: String,
        target: String,
        previous_family: String,
        family: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<serde_json::Value>,
    },
    /// A counter source failed this tick; detection continues with what remains.
    SourceError {
        source_name: String,
        error: String,
    },
    AgentStopped {
        reason: String,
    },
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::AgentStarted { .. } => "agent_started",
            EventBody::BaselineReady { .. } => "baseline_ready",
            EventBody::IncidentStarted(_) => "incident_started",
            EventBody::IncidentUpdated(_) => "incident_updated",
            EventBody::IncidentResolved { .. } => "incident_resolved",
            EventBody::IncidentVectorChanged { .. } => "incident_vector_changed",
            EventBody::SourceError { .. } => "source_error",
            EventBody::AgentStopped { .. } => "agent_stopped",
        }
    }
}

/// The fields every incident event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentInfo {
    pub incident_id: String,
    /// Interface name, `host`, or (later) an IP address.
    pub target: String,
    /// The metric furthest above its threshold (the "primary" metric).
    pub metric: String,
    /// Its current value (per second; bits per second for `rx_bps`).
    pub value: f64,
    /// Its learned baseline (p99 of the window).
    pub baseline: f64,
    /// `value / baseline`.
    pub ratio: f64,
    /// The threshold crossed: max(multiplier x baseline, floor).
    pub threshold: f64,
    /// Every metric of the incident above its threshold now (or at start).
    pub metrics: Vec<IncidentMetric>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<serde_json::Value>,
    /// What the packet sampler adds besides family, confidence and fingerprint.
    #[serde(flatten)]
    pub details: IncidentDetails,
}

/// Packet-level details of an incident, each present only when known. The
/// structured ones are JSON values because their types live in crates that
/// depend on this one (levee-packet, levee-ioc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetails {
    /// A finer name within the family (e.g. `syn_ack_reflection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The attacked address, when one destination takes most of the traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victim: Option<String>,
    /// How likely the sources are forged, with the evidence (score, entropy, TTLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoofing: Option<serde_json::Value>,
    /// Every traffic vector with its packet and byte share, heaviest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<serde_json::Value>,
    /// Heaviest sources in the classified window, counts scaled by the sampling rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_sources: Option<serde_json::Value>,
    /// Sampling rate N in force (each sampled packet stands for N on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rate: Option<u32>,
    /// Sampled packets the classification is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_packets: Option<u64>,
    /// Packets on the wire those stand for: each sampled packet counted with
    /// the sampling rate it was taken at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_packets: Option<u64>,
    /// The incident's capture file (written at incident start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap: Option<String>,
    /// Top sources found in indicator lists: `[{source, list, prefix, note}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ioc_matches: Option<serde_json::Value>,
    /// Prefix incidents (flow and mirror modes): the addresses of the prefix
    /// that received traffic in the rate window. They are folded into the
    /// prefix's incident rather than reported one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
}

/// One metric of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentMetric {
    pub target: String,
    pub metric: String,
    pub value: f64,
    pub baseline: f64,
    pub threshold: f64,
    pub ratio: f64,
    pub peak: f64,
}

/// What `incident_resolved` adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResolvedSummary {
    pub duration_s: f64,
    /// Peak of the primary metric.
    pub peak: f64,
    /// Packets received on the incident's interfaces while it was open.
    pub total_packets: u64,
    /// Bytes received on the incident's interfaces while it was open.
    pub total_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> IncidentInfo {
        IncidentInfo {
            incident_id: "0192f0c4-0000-7000-8000-000000000000".into(),
            target: "eth0".into(),
            metric: "rx_pps".into(),
            value: 150_000.0,
            baseline: 1_000.0,
            ratio: 150.0,
            threshold: 3_000.0,
            metrics: vec![],
            started_at: rfc3339_millis(0),
            family: None,
            confidence: None,
            fingerprint: None,
            details: IncidentDetails::default(),
        }
    }

    #[test]
    fn envelope_has_ts_event_node() {
        let e = Event::new(
            1_795_225_450_123,
            "web1",
            EventBody::IncidentStarted(info()),
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["ts"], "2026-11-21T01:44:10.123Z");
        assert_eq!(v["event"], "incident_started");
        assert_eq!(v["node"], "web1");
        assert_eq!(v["incident_id"], "0192f0c4-0000-7000-8000-000000000000");
        assert_eq!(v["ratio"], 150.0);
        assert!(
            v.get("family").is_none(),
            "absent classification is omitted"
        );
    }

    #[test]
    fn resolved_flattens_summary_and_round_trips() {
        let body = EventBody::IncidentResolved {
            info: info(),
            summary: IncidentResolvedSummary {
                duration_s: 12.5,
                peak: 160_000.0,
                total_packets: 9,
                total_bytes: 540,
            },
        };
        let e = Event::new(0, "n", body);
        let line = e.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "incident_resolved");
        assert_eq!(v["duration_s"], 12.5);
        assert_eq!(v["total_packets"], 9);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.kind(), "incident_resolved");
    }
}
