//! Agent-facing routes: enrollment, telemetry, events, heartbeats, PCAP upload.

use super::error::{ApiError, ApiResult};
use super::extract::{body_error, AgentAuth, Body, ClientIp};
use crate::auth::{hash_secret, new_secret, AGENT_KEY_PREFIX};
use crate::metrics::ResultLabels;
use crate::store::auth::AgentIdentity;
use crate::store::metrics::{rows_of, TelemetryWrite};
use crate::store::nodes::HeartbeatWrite;
use crate::store::now_ms;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use levee_proto::{
    AgentAnswer, ApiErrorBody, EnrollRequest, EnrollResponse, EventBatch, EventsAccepted,
    Heartbeat, TelemetryBatch,
};
use sha2::{Digest, Sha256};

/// The commands and (if newer than the agent's) policy for an agent.
async fn answer(
    state: &AppState,
    agent: &AgentIdentity,
    agent_policy: u64,
    always_commands: bool,
) -> ApiResult<AgentAnswer> {
    let pending = always_commands
        || state
            .pending_commands
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&agent.node_id);
    let commands = if pending {
        state.store.pending_commands(agent.node_id).await?
    } else {
        Vec::new()
    };
    let current = state
        .policy_versions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&agent.tenant_id)
        .copied()
        .unwrap_or(0);
    let policy = if current > agent_policy {
        Some(state.store.policy(agent.tenant_id).await?)
    } else {
        None
    };
    Ok(AgentAnswer { commands, policy })
}

/// Exchange a one-time enrollment token for this node's agent key.
#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agent", request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled; `agent_key` is shown only here", body = EnrollResponse),
        (status = 400, description = "Invalid request, the field is named", body = ApiErrorBody),
        (status = 401, description = "Unknown, used or expired enrollment token", body = ApiErrorBody),
        (status = 429, description = "Too many failed attempts from this address", body = ApiErrorBody),
    ))]
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let key = new_secret(AGENT_KEY_PREFIX);
    let outcome = state
        .store
        .enroll(
            &hash_secret(&req.token),
            &req.node,
            &req.version,
            &req.interfaces,
            &hash_secret(&key),
        )
        .await?;
    match outcome {
        Ok(done) => {
            tracing::info!(node = %req.node, tenant = %done.tenant, node_id = done.node_id, "node enrolled");
            Ok((
                StatusCode::CREATED,
                Json(EnrollResponse {
                    node_id: done.node_id,
                    node: req.node,
                    tenant: done.tenant,
                    agent_key: key,
                    heartbeat_interval_s: state.cfg.heartbeat_interval.as_secs(),
                }),
            ))
        }
        Err(why) => {
            tracing::warn!(%ip, ?why, "enrollment refused");
            state.metrics.auth_failures.inc();
            match state.limiter.failure(ip) {
                Ok(()) => Err(ApiError::Unauthorized),
                Err(retry_after) => {
                    state.metrics.rate_limited.inc();
                    Err(ApiError::TooMany { retry_after })
                }
            }
        }
    }
}

/// Per-second telemetry; answered with pending commands and a newer policy.
#[utoipa::path(post, path = "/api/v1/agent/telemetry", tag = "agent", request_body = TelemetryBatch,
    security(("agent_key" = [])),
    responses(
        (status = 200, body = AgentAnswer),
        (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 413, body = ApiErrorBody),
    ))]
pub async fn telemetry(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Body(batch): Body<TelemetryBatch>,
) -> ApiResult<Json<AgentAnswer>> {
    let rows = batch
        .samples
        .iter()
        .flat_map(|s| rows_of(agent.node_id, s))
        .collect();
    let baselines = (!batch.baselines.is_empty())
        .then(|| serde_json::to_string(&batch.baselines).unwrap_or_default());
    state
        .writer
        .write(TelemetryWrite {
            node_id: agent.node_id,
            rows,
            seen_ms: now_ms(),
            baselines,
            heartbeat: None,
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(
        answer(&state, &agent, batch.policy_version, false).await?,
    ))
}

/// Events, oldest first; each stored once (by `event_id`).
#[utoipa::path(post, path = "/api/v1/agent/events", tag = "agent", request_body = EventBatch,
    security(("agent_key" = [])),
    responses(
        (status = 200, body = EventsAccepted),
        (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 413, body = ApiErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Body(batch): Body<EventBatch>,
) -> ApiResult<Json<EventsAccepted>> {
    let got = state
        .store
        .ingest_events(agent.tenant_id, agent.node_id, &agent.node, &batch.events)
        .await?;
    let m = &state.metrics;
    m.events
        .get_or_create(&ResultLabels {
            result: "accepted".into(),
        })
        .inc_by(got.accepted as u64);
    m.events
        .get_or_create(&ResultLabels {
            result: "duplicate".into(),
        })
        .inc_by(got.duplicates as u64);
    if batch.dropped > 0 {
        state
            .store
            .add_dropped_events(agent.node_id, batch.dropped)
            .await?;
        let mut fields = serde_json::Map::new();
        fields.insert("count".into(), batch.dropped.into());
        state
            .store
            .server_event(
                agent.tenant_id,
                Some(agent.node_id),
                &agent.node,
                "events_dropped",
                now_ms(),
                fields,
            )
            .await?;
    }
    Ok(Json(EventsAccepted {
        accepted: got.accepted,
        duplicates: got.duplicates,
    }))
}

/// Liveness, version and command acknowledgements; answered like telemetry.
#[utoipa::path(post, path = "/api/v1/agent/heartbeat", tag = "agent", request_body = Heartbeat,
    security(("agent_key" = [])),
    responses(
        (status = 200, body = AgentAnswer),
        (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
    ))]
pub async fn heartbeat(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Body(hb): Body<Heartbeat>,
) -> ApiResult<Json<AgentAnswer>> {
    let policy_version = hb.policy_version;
    state
        .writer
        .write(TelemetryWrite {
            node_id: agent.node_id,
            seen_ms: now_ms(),
            heartbeat: Some(HeartbeatWrite {
                node_id: agent.node_id,
                version: hb.version,
                interfaces: hb.interfaces,
                queued_events: hb.queued_events,
                policy_version: hb.policy_version,
                acked_commands: hb.acked_commands,
                command_results: hb.command_results,
            }),
            ..Default::default()
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(answer(&state, &agent, policy_version, true).await?))
}

/// Whether `data` starts like a pcap (either byte order, µs or ns) or pcapng file.
pub fn is_capture(data: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    data.len() >= 24 && MAGICS.iter().any(|m| data[..4] == m[..])
}

/// The capture of one of this node's incidents (by the agent's incident id).
#[utoipa::path(post, path = "/api/v1/agent/incidents/{incident_id}/pcap", tag = "agent",
    params(("incident_id" = String, Path, description = "The agent's incident id")),
    request_body(content = Vec<u8>, content_type = "application/vnd.tcpdump.pcap"),
    security(("agent_key" = [])),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody),
        (status = 404, description = "No such incident of this node", body = ApiErrorBody),
        (status = 413, body = ApiErrorBody),
    ))]
pub async fn upload_pcap(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path(incident_id): Path<String>,
    req: Request,
) -> ApiResult<StatusCode> {
    let data = Bytes::from_request(req, &state)
        .await
        .map_err(|e| body_error(e, state.cfg.pcap_max_bytes))?;
    let id = state
        .store
        .incident_of_agent(agent.node_id, &incident_id)
        .await?
        .ok_or(ApiError::NotFound("incident"))?;
    if !is_capture(&data) {
        return Err(ApiError::field(
            "body",
            "not a pcap or pcapng file (bad magic number)",
        ));
    }
    let digest = hex::encode(Sha256::digest(&data));
    state
        .store
        .put_pcap(agent.tenant_id, id, &data, &digest)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn capture_magic() {
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1];
        pcap.resize(24, 0);
        assert!(super::is_capture(&pcap));
        assert!(!super::is_capture(b"GIF89a.................."));
        assert!(!super::is_capture(&pcap[..10]));
    }
}
