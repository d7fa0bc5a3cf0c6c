//! The agent's events: one JSON object per line on stdout and in the event log.
//!
//! This is Levee's external interface (BRIEF, "External interface"): every event
//! has `ts` (RFC 3339 UTC with milliseconds), `event` and `node`. Fields are only
//! ever added, never renamed or removed, because users' scripts parse them.
//!
//! Every event made by [`Event::new`] carries a unique `event_id` (UUIDv7, so
//! ids sort by creation time): the server deduplicates by it when an agent
//! replays its offline queue. Events read back from logs written before the
//! field existed have none.

use crate::timefmt::rfc3339_millis;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    pub node: String,
    /// Unique id of this event (UUIDv7); `None` only for events from old logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// A new event with a fresh UUIDv7 `event_id`.
    pub fn new(unix_ms: i64, node: impl Into<String>, body: EventBody) -> Self {
        Event {
            ts: rfc3339_millis(unix_ms),
            node: node.into(),
            event_id: Some(Uuid::now_v7()),
            body,
        }
    }

    /// The event's id, minting one if it has none (events from old logs), so
    /// every event that leaves the node can be deduplicated.
    pub fn ensure_id(&mut self) -> Uuid {
        *self.event_id.get_or_insert_with(Uuid::now_v7)
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
    /// A mitigation was rendered: `rule` is exactly what will be applied
    /// (or, in dry-run mode, what would be).
    MitigationPreviewed(MitigationInfo),
    /// The tool accepted the rule.
    MitigationApplied {
        #[serde(flatten)]
        info: MitigationInfo,
        /// Time the tool took to put the rule in place, in milliseconds.
        apply_ms: f64,
    },
    /// The rule was removed: the incident ended, its TTL passed
    /// (`expired: true`), the collateral-damage guard tripped, or the agent
    /// stopped; `reason` says which.
    MitigationRolledBack {
        #[serde(flatten)]
        info: MitigationInfo,
        reason: String,
        #[serde(default)]
        expired: bool,
        /// Packets the rules acted on over their life, when the tool
        /// counts (nftables, iptables, XDP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        packets: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
    },
    /// Refused, or the tool failed to apply, verify or remove it.
    MitigationFailed {
        #[serde(flatten)]
        info: MitigationInfo,
        error: String,
    },
    /// Objects of Levee's found in the kernel without a live mitigation
    /// behind them (left by a crash) were removed.
    MitigationReconciled {
        executor: String,
        removed: Vec<String>,
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
            EventBody::MitigationPreviewed(_) => "mitigation_previewed",
            EventBody::MitigationApplied { .. } => "mitigation_applied",
            EventBody::MitigationRolledBack { .. } => "mitigation_rolled_back",
            EventBody::MitigationFailed { .. } => "mitigation_failed",
            EventBody::MitigationReconciled { .. } => "mitigation_reconciled",
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
}

/// The fields every mitigation event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MitigationInfo {
    pub mitigation_id: String,
    pub incident_id: String,
    /// `nftables`, `iptables`, `ipset`, `tc`, `route`, `sysctl`, `ufw`,
    /// `firewalld`, `csf`, `xdp`.
    pub executor: String,
    /// The exact text applied: commands, one per line, with standard input
    /// (an nft ruleset batch) as a here-document.
    pub rule: String,
    /// What the rule does, e.g. `rate_limit(2000 pps, burst 500)`.
    pub action: String,
    /// The incident's target (interface, `host` or address).
    pub target: String,
    /// Lifetime of the rule in seconds (kernel-enforced where the tool can).
    pub ttl_s: u64,
    /// True when nothing is applied (dry-run mode).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
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
        let id = v["event_id"].as_str().expect("event_id is a string");
        assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 7);
        assert!(
            v.get("family").is_none(),
            "absent classification is omitted"
        );
    }

    #[test]
    fn mitigation_events_carry_the_external_fields() {
        let info = MitigationInfo {
            mitigation_id: "m1".into(),
            incident_id: "i1".into(),
            executor: "nftables".into(),
            rule: "nft -f - <<'EOF'\nadd table inet levee\nEOF".into(),
            action: "drop".into(),
            target: "eth0".into(),
            ttl_s: 600,
            dry_run: false,
        };
        let bodies = [
            EventBody::MitigationPreviewed(info.clone()),
            EventBody::MitigationApplied {
                info: info.clone(),
                apply_ms: 4.2,
            },
            EventBody::MitigationRolledBack {
                info: info.clone(),
                reason: "incident resolved".into(),
                expired: false,
                packets: Some(1200),
                bytes: None,
            },
            EventBody::MitigationFailed {
                info,
                error: "nft: syntax error".into(),
            },
        ];
        for b in bodies {
            let e = Event::new(0, "n", b);
            let line = e.to_json_line();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["event"], e.kind());
            for k in ["mitigation_id", "incident_id", "executor", "rule"] {
                assert!(v.get(k).is_some(), "{k} missing in {line}");
            }
            assert!(v.get("dry_run").is_none(), "false dry_run is omitted");
            let back: Event = serde_json::from_str(&line).unwrap();
            assert_eq!(back, e);
        }
        let r = Event::new(
            0,
            "n",
            EventBody::MitigationReconciled {
                executor: "nftables".into(),
                removed: vec!["nft table inet levee".into()],
            },
        );
        assert_eq!(r.kind(), "mitigation_reconciled");
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

    #[test]
    fn event_ids_are_unique_and_old_lines_still_parse() {
        let a = Event::new(0, "n", EventBody::BaselineReady { series: 1 });
        let b = Event::new(0, "n", EventBody::BaselineReady { series: 1 });
        assert_ne!(a.event_id, b.event_id);
        let old =
            r#"{"ts":"1970-01-01T00:00:00.000Z","node":"n","event":"baseline_ready","series":1}"#;
        let mut e: Event = serde_json::from_str(old).unwrap();
        assert_eq!(e.event_id, None);
        assert!(
            !e.to_json_line().contains("event_id"),
            "no id is invented on output"
        );
        let id = e.ensure_id();
        assert_eq!(e.ensure_id(), id, "ensure_id is stable");
    }
}
