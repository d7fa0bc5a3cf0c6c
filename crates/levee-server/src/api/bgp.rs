//! The tenant's BGP escalation: what the operator configured for it, the
//! thresholds in effect, live rules and escalation state (the leader's
//! snapshot), the admin's tuning, and the withdraw-everything button.
//! The speaker, prefixes, origin AS and ROA source are the operator's
//! (server config) and cannot be changed here.

use super::error::{ApiError, ApiResult};
use super::extract::{Body, UserAuth, Validate};
use crate::bgp::config::TenantBgp;
use crate::bgp::status::{EngineStatus, IncidentEscalation, LiveRuleView};
use crate::bgp::tuning::{effective, BgpTuning, RatesInEffect};
use crate::model::Role;
use crate::store::now_ms;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use levee_proto::{ApiErrorBody, FieldError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// BGP escalation of the caller's tenant.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BgpView {
    /// Whether the operator configured BGP for this tenant (`[[bgp.tenant]]`).
    pub configured: bool,
    /// `gobgp`, `exabgp`, `bird` or `frr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_as: Option<u32>,
    /// The tenant's own prefixes: nothing outside them is announced.
    pub prefixes: Vec<String>,
    /// Rule lifetime in seconds, refreshed while the attack goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// Thresholds in effect (operator's, then the tenant's tuning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<RatesInEffect>,
    /// Per attack family, in effect.
    pub profiles: BTreeMap<String, RatesInEffect>,
    /// Most rules live at once, in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rules: Option<usize>,
    /// The operator's cap on `max_rules`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_max_rules: Option<usize>,
    /// The tenant's tuning as stored.
    pub tuning: BgpTuning,
    pub tuning_version: i64,
    /// The leader's engine for this tenant runs.
    pub running: bool,
    pub live: Vec<LiveRuleView>,
    pub incidents: Vec<IncidentEscalation>,
    /// The last refusal (with its reason) or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the leader last reported the engine's state (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_updated: Option<String>,
    /// A withdraw request the leader has not served yet.
    pub withdraw_pending: bool,
}

/// The answer to a withdraw request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WithdrawAnswer {
    /// The request's number (the `request` of its `bgp_withdrawn` event).
    pub request: i64,
    /// The leader withdrew everything (else: it will within a second or
    /// two; watch `bgp_withdrawn` events).
    pub done: bool,
    /// Live rules left after it (the leader's snapshot).
    pub live: usize,
}

impl Validate for BgpTuning {
    /// Checked against the operator's settings by the handler ([`effective`]).
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// The operator's entry for the caller's tenant, if any.
async fn entry(state: &AppState, auth: &UserAuth) -> ApiResult<Option<TenantBgp>> {
    let tenant = state
        .store
        .tenant(auth.tenant())
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    Ok(state.cfg.bgp.for_tenant(&tenant.name).cloned())
}

fn not_configured() -> ApiError {
    ApiError::Conflict(
        "BGP escalation is not configured for this tenant; the server operator adds a [[bgp.tenant]] entry to the server config (docs/bgp.md)".into(),
    )
}

async fn view(state: &AppState, auth: &UserAuth) -> ApiResult<BgpView> {
    let Some(t) = entry(state, auth).await? else {
        return Ok(BgpView::default());
    };
    let row = state.store.bgp_row(auth.tenant()).await?;
    let tuning: BgpTuning = serde_json::from_str(&row.tuning).unwrap_or_default();
    let (cfg, tuning_error) = match effective(&t.bgp, &tuning) {
        Ok(c) => (c, None),
        Err(p) => (
            t.bgp.clone(),
            Some(
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    };
    let status: EngineStatus = row
        .status
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Ok(BgpView {
        configured: true,
        speaker: serde_json::to_value(t.bgp.speaker.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        origin_as: Some(t.bgp.origin_as),
        prefixes: t.bgp.prefixes.iter().map(ToString::to_string).collect(),
        ttl_s: Some(t.bgp.ttl.as_secs()),
        thresholds: Some(cfg.thresholds_for(None).into()),
        profiles: cfg
            .profiles
            .keys()
            .map(|f| (f.as_str().to_string(), cfg.thresholds_for(Some(*f)).into()))
            .collect(),
        max_rules: Some(cfg.max_rules),
        operator_max_rules: Some(t.bgp.max_rules),
        tuning,
        tuning_version: row.tuning_version,
        running: status.running,
        live: status.live,
        incidents: status.incidents,
        last_error: tuning_error
            .map(|e| format!("stored tuning does not fit the operator's settings: {e}"))
            .or(status.last_error),
        status_updated: row.status_ms.map(levee_model::timefmt::rfc3339_millis),
        withdraw_pending: row.withdraw_requested > row.withdraw_done,
    })
}

/// The tenant's BGP escalation: configuration, thresholds in effect, live
/// rules, per-incident escalation state, last error.
#[utoipa::path(get, path = "/api/v1/bgp", tag = "bgp", security(("api_token" = [])),
    responses((status = 200, body = BgpView), (status = 401, body = ApiErrorBody)))]
pub async fn get_bgp(State(state): State<AppState>, auth: UserAuth) -> ApiResult<Json<BgpView>> {
    Ok(Json(view(&state, &auth).await?))
}

/// Sets the tenant's escalation thresholds (per tenant and per attack
/// family) and rule cap over the operator's; the running engine applies
/// them within a second. Admin role.
#[utoipa::path(put, path = "/api/v1/bgp/thresholds", tag = "bgp", security(("api_token" = [])),
    request_body = BgpTuning,
    responses((status = 200, body = BgpView), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn put_thresholds(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(tuning): Body<BgpTuning>,
) -> ApiResult<Json<BgpView>> {
    auth.require(Role::Admin)?;
    let t = entry(&state, &auth).await?.ok_or_else(not_configured)?;
    effective(&t.bgp, &tuning).map_err(ApiError::invalid)?;
    let json = serde_json::to_string(&tuning).unwrap_or_default();
    state.store.set_bgp_tuning(auth.tenant(), &json).await?;
    Ok(Json(view(&state, &auth).await?))
}

/// Withdraws every BGP rule of the tenant now (the operator's panic
/// button): the leader withdraws them and ignores the incidents they were
/// for from then on (new incidents escalate as usual). Audited as
/// `bgp_withdraw_requested` (who) and `bgp_withdrawn` (what) events.
/// Admin role.
#[utoipa::path(post, path = "/api/v1/bgp/withdraw", tag = "bgp", security(("api_token" = [])),
    responses((status = 200, body = WithdrawAnswer, description = "withdrawn"),
        (status = 202, body = WithdrawAnswer, description = "requested; the leader withdraws within seconds"),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn withdraw(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<(StatusCode, Json<WithdrawAnswer>)> {
    auth.require(Role::Admin)?;
    entry(&state, &auth).await?.ok_or_else(not_configured)?;
    let request = state.store.request_bgp_withdraw(auth.tenant()).await?;
    let mut fields = serde_json::Map::new();
    fields.insert("request".into(), request.into());
    fields.insert("user_id".into(), auth.0.user_id.into());
    fields.insert("token_id".into(), auth.0.token_id.into());
    state
        .store
        .server_event(
            auth.tenant(),
            None,
            "server",
            "bgp_withdraw_requested",
            now_ms(),
            fields,
        )
        .await?;
    // The leader (maybe another replica) serves it at its next tick.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row = state.store.bgp_row(auth.tenant()).await?;
        if row.withdraw_done >= request || Instant::now() >= deadline {
            let done = row.withdraw_done >= request;
            let live = row
                .status
                .as_deref()
                .and_then(|s| serde_json::from_str::<EngineStatus>(s).ok())
                .map_or(0, |s| s.live.len());
            let code = if done {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            return Ok((
                code,
                Json(WithdrawAnswer {
                    request,
                    done,
                    live,
                }),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
