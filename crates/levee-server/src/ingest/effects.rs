//! What a stored event changes besides the event log: incident and
//! mitigation rows. Pure: an event in, an [`Effect`] out.

use levee_model::timefmt::parse_rfc3339;
use levee_proto::EventEnvelope;

/// The incident row an incident event implies.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentUpsert {
    pub agent_incident_id: String,
    pub target: String,
    pub metric: String,
    pub family: Option<String>,
    pub confidence: Option<i64>,
    pub resolved: bool,
    pub started_ms: i64,
    pub updated_ms: i64,
    pub value: f64,
    pub baseline: f64,
    pub peak: f64,
    pub total_packets: Option<i64>,
    pub total_bytes: Option<i64>,
}

/// The mitigation row a mitigation event implies.
#[derive(Debug, Clone, PartialEq)]
pub struct MitigationUpsert {
    pub mitigation_id: String,
    pub incident_id: Option<String>,
    pub executor: Option<String>,
    pub rule: Option<String>,
    /// The kind without `mitigation_`: `previewed`, `applied`, `rolled_back`, `failed`, ...
    pub state: String,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Incident(IncidentUpsert),
    Mitigation(MitigationUpsert),
}

/// The effect of one (validated) event, if any. Incident events lacking
/// their mandatory fields have none: they are still logged as events.
pub fn effect_of(e: &EventEnvelope) -> Option<Effect> {
    let ts_ms = e.ts_ms()?;
    let s = |k: &str| e.str_field(k).map(str::to_string);
    match e.event.as_str() {
        "incident_started" | "incident_updated" | "incident_resolved" => {
            let value = e.f64_field("value").filter(|v| v.is_finite())?;
            let resolved = e.event == "incident_resolved";
            let peak = if resolved {
                e.f64_field("peak")
                    .filter(|v| v.is_finite())
                    .unwrap_or(value)
            } else {
                value
            };
            Some(Effect::Incident(IncidentUpsert {
                agent_incident_id: s("incident_id")?,
                target: s("target")?,
                metric: s("metric")?,
                family: s("family"),
                confidence: e.fields.get("confidence").and_then(|v| v.as_i64()),
                resolved,
                started_ms: e
                    .str_field("started_at")
                    .and_then(parse_rfc3339)
                    .unwrap_or(ts_ms),
                updated_ms: ts_ms,
                value,
                baseline: e
                    .f64_field("baseline")
                    .filter(|v| v.is_finite())
                    .unwrap_or(0.0),
                peak,
                total_packets: e.fields.get("total_packets").and_then(|v| v.as_i64()),
                total_bytes: e.fields.get("total_bytes").and_then(|v| v.as_i64()),
            }))
        }
        kind => {
            let state = kind.strip_prefix("mitigation_")?;
            Some(Effect::Mitigation(MitigationUpsert {
                mitigation_id: s("mitigation_id")?,
                incident_id: s("incident_id"),
                executor: s("executor"),
                rule: s("rule"),
                state: state.to_string(),
                ts_ms,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(v: serde_json::Value) -> EventEnvelope {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn incident_started_becomes_an_open_incident() {
        let e = env(
            json!({"event_id":"0192f0c4-0000-7000-8000-000000000001","ts":"2026-11-21T01:44:11.000Z",
            "node":"n","event":"incident_started","incident_id":"i1","target":"eth0","metric":"rx_pps",
            "value":150000.0,"baseline":1000.0,"ratio":150.0,"threshold":3000.0,"metrics":[],
            "started_at":"2026-11-21T01:44:10.000Z","family":"syn_flood","confidence":90}),
        );
        let Some(Effect::Incident(i)) = effect_of(&e) else {
            panic!()
        };
        assert_eq!(i.agent_incident_id, "i1");
        assert!(!i.resolved);
        assert_eq!(i.started_ms + 1000, i.updated_ms);
        assert_eq!(i.family.as_deref(), Some("syn_flood"));
        assert_eq!(i.confidence, Some(90));
        assert_eq!(i.peak, 150000.0);
    }

    #[test]
    fn resolved_carries_peak_and_totals() {
        let e = env(
            json!({"event_id":"0192f0c4-0000-7000-8000-000000000002","ts":"2026-11-21T01:45:00.000Z",
            "node":"n","event":"incident_resolved","incident_id":"i1","target":"eth0","metric":"rx_pps",
            "value":10.0,"baseline":1000.0,"peak":200000.0,"total_packets":5,"total_bytes":300,
            "started_at":"2026-11-21T01:44:10.000Z"}),
        );
        let Some(Effect::Incident(i)) = effect_of(&e) else {
            panic!()
        };
        assert!(i.resolved);
        assert_eq!(i.peak, 200000.0);
        assert_eq!(i.total_packets, Some(5));
    }

    #[test]
    fn mitigation_events_become_mitigations_and_others_nothing() {
        let e = env(
            json!({"event_id":"0192f0c4-0000-7000-8000-000000000003","ts":"2026-11-21T01:45:00.000Z",
            "node":"n","event":"mitigation_applied","mitigation_id":"m1","incident_id":"i1",
            "executor":"nftables","rule":"add rule inet levee drop"}),
        );
        let Some(Effect::Mitigation(m)) = effect_of(&e) else {
            panic!()
        };
        assert_eq!(m.state, "applied");
        assert_eq!(m.rule.as_deref(), Some("add rule inet levee drop"));
        let other = env(
            json!({"event_id":"0192f0c4-0000-7000-8000-000000000004","ts":"2026-11-21T01:45:00.000Z",
            "node":"n","event":"baseline_ready","series":3}),
        );
        assert_eq!(effect_of(&other), None);
        let broken = env(
            json!({"event_id":"0192f0c4-0000-7000-8000-000000000005","ts":"2026-11-21T01:45:00.000Z",
            "node":"n","event":"incident_started","incident_id":"i9"}),
        );
        assert_eq!(
            effect_of(&broken),
            None,
            "an incident event without target/metric/value changes nothing"
        );
    }
}
