//! Events on the wire: the agent's JSON events, each with its unique id.

use crate::error::{FieldError, Problems};
use levee_model::timefmt::parse_rfc3339;
use levee_model::Event;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One event as the agent printed it (`ts`, `node`, `event` and the kind's
/// own fields), with a mandatory `event_id`. The body is an open object so a
/// server accepts event kinds added after it was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventEnvelope {
    /// Unique id (UUIDv7); the server ignores an id it has already stored for the node.
    pub event_id: Uuid,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The node name the agent printed (the server files the event under the
    /// node whose key sent it).
    pub node: String,
    /// The kind, e.g. `incident_started`.
    pub event: String,
    /// The kind's own fields (`incident_id`, `target`, `metric`, ...).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: Map<String, Value>,
}

impl EventEnvelope {
    /// The wire form of an agent event; mints an id if the event has none.
    pub fn from_event(mut event: Event) -> Self {
        let event_id = event.ensure_id();
        let mut map = match serde_json::to_value(&event) {
            Ok(Value::Object(m)) => m,
            // An Event is a struct with a flattened tagged enum: always an object.
            _ => Map::new(),
        };
        let mut take = |k: &str| match map.remove(k) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let ts = take("ts");
        let node = take("node");
        let kind = take("event");
        map.remove("event_id");
        EventEnvelope {
            event_id,
            ts,
            node,
            event: kind,
            fields: map,
        }
    }

    /// Back to the typed event, when the kind is one this build knows.
    pub fn to_event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(self)?)
    }

    /// `ts` in ms since the epoch (valid after [`EventBatch::validate`]).
    pub fn ts_ms(&self) -> Option<i64> {
        parse_rfc3339(&self.ts)
    }

    /// A string field of the body, e.g. `incident_id`.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key)?.as_str()
    }

    /// A number field of the body.
    pub fn f64_field(&self, key: &str) -> Option<f64> {
        self.fields.get(key)?.as_f64()
    }
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `POST /api/v1/agent/events`: events oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventBatch {
    pub events: Vec<EventEnvelope>,
    /// Events the agent's offline queue dropped (oldest first, when full) and
    /// has not reported yet. The server records them as an `events_dropped` event.
    #[serde(default)]
    pub dropped: u64,
}

impl EventBatch {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(
            self.events.len() <= crate::limits::MAX_EVENTS_PER_BATCH,
            "events",
            format!("at most {}", crate::limits::MAX_EVENTS_PER_BATCH),
        );
        for (i, e) in self.events.iter().enumerate() {
            p.check(
                e.ts_ms().is_some(),
                format!("events[{i}].ts"),
                "must be an RFC 3339 timestamp, e.g. 2026-11-21T01:44:10.123Z",
            );
            p.check(
                is_snake_case(&e.event),
                format!("events[{i}].event"),
                "must be a snake_case event kind of at most 64 bytes",
            );
            p.check(
                e.node.len() <= crate::limits::MAX_NAME_LEN,
                format!("events[{i}].node"),
                "at most 128 bytes",
            );
            if let Some(v) = e.fields.get("incident_id") {
                p.check(
                    v.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 64),
                    format!("events[{i}].incident_id"),
                    "must be a string of 1 to 64 bytes",
                );
            }
        }
        p.into_result()
    }
}

/// The answer to an [`EventBatch`]: every event is stored (or was already).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventsAccepted {
    /// Events stored now.
    pub accepted: u32,
    /// Events the server had already (a replay after a lost answer).
    pub duplicates: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::{EventBody, IncidentInfo};

    fn incident() -> Event {
        Event::new(
            1_795_225_450_123,
            "web1",
            EventBody::IncidentStarted(IncidentInfo {
                incident_id: "0192f0c4-0000-7000-8000-000000000000".into(),
                target: "eth0".into(),
                metric: "rx_pps".into(),
                value: 1.0,
                baseline: 1.0,
                ratio: 1.0,
                threshold: 1.0,
                metrics: vec![],
                started_at: "2026-11-21T01:44:10.123Z".into(),
                family: Some("syn_flood".into()),
                confidence: Some(90),
                fingerprint: None,
                details: Default::default(),
            }),
        )
    }

    #[test]
    fn envelope_round_trips_to_the_typed_event() {
        let e = incident();
        let env = EventEnvelope::from_event(e.clone());
        assert_eq!(Some(env.event_id), e.event_id);
        assert_eq!(env.event, "incident_started");
        assert_eq!(env.node, "web1");
        assert_eq!(env.str_field("family"), Some("syn_flood"));
        assert!(!env.fields.contains_key("event_id"));
        assert_eq!(env.to_event().unwrap(), e);
        // The JSON is the agent's event line plus nothing else.
        let wire: Value = serde_json::to_value(&env).unwrap();
        let line: Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(wire, line);
    }

    #[test]
    fn envelope_mints_an_id_for_old_events() {
        let mut e = incident();
        e.event_id = None;
        let env = EventEnvelope::from_event(e);
        assert_eq!(env.event_id.get_version_num(), 7);
    }

    #[test]
    fn unknown_kinds_are_accepted_on_the_wire() {
        let j = r#"{"event_id":"0192f0c4-0000-7000-8000-000000000001","ts":"2026-11-21T01:44:10.123Z",
                    "node":"n","event":"mitigation_applied","mitigation_id":"m1","rule":"x"}"#;
        let env: EventEnvelope = serde_json::from_str(j).unwrap();
        assert_eq!(env.event, "mitigation_applied");
        assert_eq!(env.str_field("rule"), Some("x"));
        let batch = EventBatch {
            events: vec![env],
            dropped: 0,
        };
        assert!(batch.validate().is_ok());
    }

    #[test]
    fn validation_names_the_field() {
        let mut env = EventEnvelope::from_event(incident());
        env.ts = "yesterday".into();
        env.event = "Bad Kind".into();
        let errs = EventBatch {
            events: vec![EventEnvelope::from_event(incident()), env],
            dropped: 0,
        }
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["events[1].ts", "events[1].event"]);
    }
}
