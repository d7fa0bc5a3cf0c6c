//! What `GET /api/v1/bgp` shows of a running engine: its live rules and
//! each incident's escalation state, as the leader snapshots them into
//! the database (so any replica can answer).

use levee_bgp::engine::BgpEngine;
use levee_bgp::escalate::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One announced rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LiveRuleView {
    /// The mitigation id of its `mitigation_*` events.
    pub id: String,
    /// 1 rate-limit, 2 discard, 3 RTBH, 4 diversion.
    pub level: u8,
    /// E.g. "level 2 (discard)".
    pub level_name: String,
    pub incident_id: String,
    /// The exact text run to announce it (the speaker's syntax).
    pub rule: String,
    /// The speaker (`gobgp`, `exabgp`, `bird`, `frr`) or scrubbing provider.
    pub executor: String,
    /// The scrubbing provider's receipt (diversions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// An incident's escalation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentEscalation {
    pub incident_id: String,
    /// `watching` (below level 1 or lapsed), `active`, `done`.
    pub state: String,
    /// The level reached (while active).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// When the rules lapse unless the attack goes on (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The leader's snapshot of a tenant's engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EngineStatus {
    /// Whether an engine runs for the tenant (on the jobs leader).
    pub running: bool,
    pub live: Vec<LiveRuleView>,
    pub incidents: Vec<IncidentEscalation>,
    /// The last refusal or failure (a refused announcement says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The engine's live rules and incidents now.
pub fn snapshot(e: &BgpEngine) -> (Vec<LiveRuleView>, Vec<IncidentEscalation>) {
    let mut live = Vec::new();
    let mut incidents = Vec::new();
    for (id, state, rules) in e.incidents() {
        for r in rules {
            live.push(LiveRuleView {
                id: r.id.clone(),
                level: r.level.number(),
                level_name: r.level.to_string(),
                incident_id: id.to_string(),
                rule: r.text.clone(),
                executor: r.executor.clone(),
                receipt: r.receipt.clone(),
            });
        }
        let (name, level, expires) = match state {
            State::Watching => ("watching", None, None),
            State::Active { level, expires_ms } => (
                "active",
                Some(level.number()),
                Some(levee_model::timefmt::rfc3339_millis(expires_ms)),
            ),
            State::Done => ("done", None, None),
        };
        incidents.push(IncidentEscalation {
            incident_id: id.to_string(),
            state: name.into(),
            level,
            expires,
        });
    }
    (live, incidents)
}
