//! Node inventory, metric ranges and commands.

use super::error::{ApiError, ApiResult};
use super::extract::{Body, UserAuth, Validate, Q};
use crate::model::{Command, MetricRange, Node, Resolution, Role};
use crate::store::now_ms;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use levee_model::timefmt::{parse_rfc3339, rfc3339_millis};
use levee_proto::{ApiErrorBody, FieldError};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", security(("api_token" = [])),
    responses((status = 200, body = Vec<Node>), (status = 401, body = ApiErrorBody)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<Json<Vec<Node>>> {
    Ok(Json(state.store.nodes(auth.tenant()).await?))
}

async fn node_of(state: &AppState, auth: &UserAuth, id: i64) -> ApiResult<Node> {
    state
        .store
        .node(auth.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("node"))
}

#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "nodes", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Node), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_node(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Node>> {
    Ok(Json(node_of(&state, &auth, id).await?))
}

/// Revokes the node's key (admins); the node must enroll again.
#[utoipa::path(delete, path = "/api/v1/nodes/{id}", tag = "nodes", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn delete_node(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    node_of(&state, &auth, id).await?;
    auth.require(Role::Admin)?;
    if let Some(hash) = state.store.revoke_node(auth.tenant(), id).await? {
        state.cache.evict(&hash);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricQuery {
    /// Start (RFC 3339). Default: one hour before `to`.
    pub from: Option<String>,
    /// End, exclusive (RFC 3339). Default: now.
    pub to: Option<String>,
    /// An interface name or `host`. Default: all.
    pub target: Option<String>,
    /// `1s` or `1m`. Default: `1s` when the range is within raw retention and at most 6 h, else `1m`.
    pub resolution: Option<Resolution>,
}

/// Most points one request returns.
const MAX_POINTS: i64 = 200_000;

/// A node's metrics over a time range.
#[utoipa::path(get, path = "/api/v1/nodes/{id}/metrics", tag = "nodes", security(("api_token" = [])),
    params(("id" = i64, Path), MetricQuery),
    responses((status = 200, body = MetricRange), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn node_metrics(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
    Q(q): Q<MetricQuery>,
) -> ApiResult<Json<MetricRange>> {
    node_of(&state, &auth, id).await?;
    let parse = |field: &str, raw: &Option<String>, default: i64| -> ApiResult<i64> {
        match raw {
            None => Ok(default),
            Some(s) => parse_rfc3339(s).ok_or_else(|| {
                ApiError::field(
                    field,
                    format!("`{s}` is not an RFC 3339 time, e.g. 2026-11-21T01:44:10Z"),
                )
            }),
        }
    };
    let now = now_ms();
    let to = parse("to", &q.to, now)?;
    let from = parse("from", &q.from, to - 3_600_000)?;
    if from >= to {
        return Err(ApiError::field("from", "must be before `to`"));
    }
    let raw_since = now - state.cfg.retention.raw.as_millis() as i64;
    let resolution = q
        .resolution
        .unwrap_or(if from >= raw_since && to - from <= 6 * 3_600_000 {
            Resolution::Second
        } else {
            Resolution::Minute
        });
    // A row covers its second (or minute): include every row overlapping [from, to).
    let step = match resolution {
        Resolution::Second => 1,
        Resolution::Minute => 60,
    };
    let from_s = from.div_euclid(1000).div_euclid(step) * step;
    let to_s = (to + 999).div_euclid(1000);
    let points = state
        .store
        .metric_points(
            id,
            resolution,
            from_s,
            to_s,
            q.target.as_deref(),
            MAX_POINTS,
        )
        .await?;
    Ok(Json(MetricRange {
        node_id: id,
        resolution,
        from: rfc3339_millis(from),
        to: rfc3339_millis(to),
        points,
    }))
}

#[utoipa::path(get, path = "/api/v1/nodes/{id}/commands", tag = "nodes", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Command>), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn list_commands(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<Command>>> {
    node_of(&state, &auth, id).await?;
    Ok(Json(
        state
            .store
            .commands(auth.tenant(), id, super::MAX_LIMIT)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommand {
    /// One of `rollback_mitigation` (`args.mitigation_id`), `rollback_all`,
    /// `capture_pcap` (optional `args.incident_id`), `reload_iocs`, `save_baseline`.
    pub kind: String,
    /// The kind's arguments (a JSON object; omit for none).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
}

impl Validate for CreateCommand {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        levee_proto::Command::parse(&self.kind, &self.args).map(|_| ())
    }
}

/// Queues a command; the node receives it with its next answer.
#[utoipa::path(post, path = "/api/v1/nodes/{id}/commands", tag = "nodes", security(("api_token" = [])),
    params(("id" = i64, Path)), request_body = CreateCommand,
    responses((status = 201, body = Command), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn create_command(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
    Body(req): Body<CreateCommand>,
) -> ApiResult<(StatusCode, Json<Command>)> {
    node_of(&state, &auth, id).await?;
    auth.require(Role::Operator)?;
    let args = if req.args.is_null() {
        serde_json::json!({})
    } else {
        req.args
    };
    let cmd = state
        .store
        .create_command(auth.tenant(), id, &req.kind, &args, auth.0.user_id)
        .await?;
    state
        .pending_commands
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id);
    Ok((StatusCode::CREATED, Json(cmd)))
}
