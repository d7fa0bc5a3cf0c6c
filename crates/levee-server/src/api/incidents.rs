//! Incidents, correlated incidents, events, mitigations and PCAP downloads.

use super::error::{ApiError, ApiResult};
use super::extract::{UserAuth, Q};
use super::limit;
use crate::model::{Correlation, Incident, Mitigation, StoredEvent};
use crate::store::events::EventFilter;
use crate::store::incidents::IncidentFilter;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use levee_model::timefmt::parse_rfc3339;
use levee_proto::ApiErrorBody;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// `open` or `resolved`.
    pub state: Option<String>,
    pub node_id: Option<i64>,
    /// Only incidents with a smaller id (next page).
    pub before_id: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", security(("api_token" = [])), params(IncidentQuery),
    responses((status = 200, body = Vec<Incident>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn list_incidents(
    State(state): State<AppState>,
    auth: UserAuth,
    Q(q): Q<IncidentQuery>,
) -> ApiResult<Json<Vec<Incident>>> {
    if let Some(s) = &q.state {
        if s != "open" && s != "resolved" {
            return Err(ApiError::field("state", "must be `open` or `resolved`"));
        }
    }
    let f = IncidentFilter {
        state: q.state,
        node_id: q.node_id,
        before_id: q.before_id,
        limit: limit(q.limit)?,
    };
    Ok(Json(state.store.incidents(auth.tenant(), &f).await?))
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Incident), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_incident(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Incident>> {
    Ok(Json(
        state
            .store
            .incident(auth.tenant(), id)
            .await?
            .ok_or(ApiError::NotFound("incident"))?,
    ))
}

/// The incident's capture as uploaded by the agent.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/pcap", tag = "incidents", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The capture", content_type = "application/vnd.tcpdump.pcap", body = Vec<u8>),
        (status = 401, body = ApiErrorBody),
        (status = 404, description = "No such incident, or no capture for it", body = ApiErrorBody)))]
pub async fn download_pcap(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let (data, sha) = state
        .store
        .pcap(auth.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("pcap"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcap".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"levee-incident-{id}.pcap\""),
            ),
            (header::ETAG, format!("\"{sha}\"")),
        ],
        data,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// Correlated incidents (several incidents that are one attack), newest first.
#[utoipa::path(get, path = "/api/v1/correlations", tag = "incidents", security(("api_token" = [])), params(LimitQuery),
    responses((status = 200, body = Vec<Correlation>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn list_correlations(
    State(state): State<AppState>,
    auth: UserAuth,
    Q(q): Q<LimitQuery>,
) -> ApiResult<Json<Vec<Correlation>>> {
    Ok(Json(
        state
            .store
            .correlations(auth.tenant(), limit(q.limit)?)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/correlations/{id}", tag = "incidents", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Correlation), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_correlation(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Correlation>> {
    Ok(Json(
        state
            .store
            .correlation(auth.tenant(), id)
            .await?
            .ok_or(ApiError::NotFound("correlation"))?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub node_id: Option<i64>,
    /// Event kind, e.g. `incident_started`, `node_offline`.
    pub kind: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only events with a smaller id (next page).
    pub before_id: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// Events (agents' and the server's own), newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "incidents", security(("api_token" = [])), params(EventQuery),
    responses((status = 200, body = Vec<StoredEvent>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    auth: UserAuth,
    Q(q): Q<EventQuery>,
) -> ApiResult<Json<Vec<StoredEvent>>> {
    let since_ms =
        match &q.since {
            None => None,
            Some(s) => Some(parse_rfc3339(s).ok_or_else(|| {
                ApiError::field("since", format!("`{s}` is not an RFC 3339 time"))
            })?),
        };
    let f = EventFilter {
        node_id: q.node_id,
        kind: q.kind,
        since_ms,
        before_id: q.before_id,
        limit: limit(q.limit)?,
    };
    Ok(Json(state.store.events(auth.tenant(), &f).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MitigationQuery {
    pub node_id: Option<i64>,
    /// e.g. `applied`, `rolled_back`.
    pub state: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// Mitigations reported by agents, most recently changed first.
#[utoipa::path(get, path = "/api/v1/mitigations", tag = "incidents", security(("api_token" = [])), params(MitigationQuery),
    responses((status = 200, body = Vec<Mitigation>), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody)))]
pub async fn list_mitigations(
    State(state): State<AppState>,
    auth: UserAuth,
    Q(q): Q<MitigationQuery>,
) -> ApiResult<Json<Vec<Mitigation>>> {
    Ok(Json(
        state
            .store
            .mitigations(
                auth.tenant(),
                q.node_id,
                q.state.as_deref(),
                limit(q.limit)?,
            )
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/mitigations/{id}", tag = "incidents", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Mitigation), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_mitigation(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Mitigation>> {
    Ok(Json(
        state
            .store
            .mitigation(auth.tenant(), id)
            .await?
            .ok_or(ApiError::NotFound("mitigation"))?,
    ))
}
