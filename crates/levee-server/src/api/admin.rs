//! People and credentials: login, the caller, tenants, users, API tokens,
//! enrollment tokens, and the tenant policy.

use super::error::{ApiError, ApiResult};
use super::extract::{Body, ClientIp, UserAuth, Validate};
use crate::auth::{
    hash_password, hash_secret, new_secret, verify_password, API_TOKEN_PREFIX, ENROLL_TOKEN_PREFIX,
};
use crate::model::{
    ApiToken, EnrollmentToken, NewApiToken, NewEnrollmentToken, Role, Tenant, User,
};
use crate::store::auth::SYSTEM_TENANT;
use crate::store::now_ms;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use levee_proto::error::Problems;
use levee_proto::{ApiErrorBody, FieldError, Policy};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// Tokens made by logging in expire after this.
const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

fn parse_ttl(p: &mut Problems, field: &str, raw: Option<&str>, max: Duration) -> Option<Duration> {
    let raw = raw?;
    match humantime::parse_duration(raw) {
        Ok(d) if d >= Duration::from_secs(60) && d <= max => Some(d),
        Ok(_) => {
            p.check(
                false,
                field,
                format!("must be 1m to {}", humantime::format_duration(max)),
            );
            None
        }
        Err(e) => {
            p.check(
                false,
                field,
                format!("`{raw}` is not a duration ({e}); e.g. \"24h\""),
            );
            None
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub tenant: String,
    pub user: String,
    pub password: String,
}

impl Validate for LoginRequest {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.name(&self.tenant, "tenant");
        p.name(&self.user, "user");
        p.check(
            !self.password.is_empty() && self.password.len() <= 1024,
            "password",
            "must be 1 to 1024 bytes",
        );
        p.into_result()
    }
}

/// Log in with a password; answers a 12-hour API token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 201, body = NewApiToken),
        (status = 400, body = ApiErrorBody),
        (status = 401, description = "Unknown tenant or user, or wrong password", body = ApiErrorBody),
        (status = 429, description = "Too many login attempts from this address", body = ApiErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Body(req): Body<LoginRequest>,
) -> ApiResult<(StatusCode, Json<NewApiToken>)> {
    if let Err(retry_after) = state.limiter.login(ip) {
        state.metrics.rate_limited.inc();
        return Err(ApiError::TooMany { retry_after });
    }
    let found = state.store.login_lookup(&req.tenant, &req.user).await?;
    let (tenant_id, user_id, phc) = match found {
        Some((t, u, Some(phc))) => (t, u, phc),
        _ => {
            state.metrics.auth_failures.inc();
            return Err(ApiError::Unauthorized);
        }
    };
    let password = req.password.clone();
    // argon2 takes tens of milliseconds of CPU: keep it off the I/O threads.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    if !ok {
        state.metrics.auth_failures.inc();
        return Err(ApiError::Unauthorized);
    }
    let token = new_secret(API_TOKEN_PREFIX);
    let expires = now_ms() + LOGIN_TOKEN_TTL.as_millis() as i64;
    let info = state
        .store
        .create_api_token(
            tenant_id,
            user_id,
            "login",
            &hash_secret(&token),
            Some(expires),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(NewApiToken { token, info })))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub tenant_id: i64,
    pub tenant: String,
    pub user_id: i64,
    pub user: String,
    pub role: Role,
    pub token_id: i64,
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("api_token" = [])),
    responses((status = 200, body = Me), (status = 401, body = ApiErrorBody)))]
pub async fn me(State(state): State<AppState>, auth: UserAuth) -> ApiResult<Json<Me>> {
    let tenant = state
        .store
        .tenant(auth.tenant())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let user = state
        .store
        .user(auth.tenant(), auth.0.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(Me {
        tenant_id: tenant.id,
        tenant: tenant.name,
        user_id: user.id,
        user: user.name,
        role: auth.0.role,
        token_id: auth.0.token_id,
    }))
}

fn is_system_admin(auth: &UserAuth) -> bool {
    auth.tenant() == SYSTEM_TENANT && auth.0.role == Role::Admin
}

/// Tenants the caller can see: all for the system tenant's admins, else its own.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "auth", security(("api_token" = [])),
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = ApiErrorBody)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<Json<Vec<Tenant>>> {
    let all = state.store.tenants().await?;
    Ok(Json(if is_system_admin(&auth) {
        all
    } else {
        all.into_iter().filter(|t| t.id == auth.tenant()).collect()
    }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "auth", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Tenant), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Tenant>> {
    if id != auth.tenant() && !is_system_admin(&auth) {
        return Err(ApiError::NotFound("tenant"));
    }
    Ok(Json(
        state
            .store
            .tenant(id)
            .await?
            .ok_or(ApiError::NotFound("tenant"))?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Name of the tenant's first admin user.
    #[serde(default = "default_admin")]
    pub admin: String,
}

fn default_admin() -> String {
    "admin".into()
}

impl Validate for CreateTenant {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.name(&self.name, "name");
        p.name(&self.admin, "admin");
        p.into_result()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: Tenant,
    /// The new tenant's admin token, shown once.
    pub admin_token: NewApiToken,
}

/// A new tenant with an admin user and token (system tenant admins only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "auth", security(("api_token" = [])),
    request_body = CreateTenant,
    responses((status = 201, body = TenantCreated), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(req): Body<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    if !is_system_admin(&auth) {
        return Err(ApiError::Forbidden(
            "only admins of the system tenant create tenants".into(),
        ));
    }
    let (tenant, user_id) = state
        .store
        .create_tenant(&req.name, &req.admin)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("tenant `{}` exists", req.name)))?;
    let token = new_secret(API_TOKEN_PREFIX);
    let info = state
        .store
        .create_api_token(
            tenant.id,
            user_id,
            "initial admin token",
            &hash_secret(&token),
            None,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            tenant,
            admin_token: NewApiToken { token, info },
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "auth", security(("api_token" = [])),
    responses((status = 200, body = Vec<User>), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<Json<Vec<User>>> {
    auth.require(Role::Admin)?;
    Ok(Json(state.store.users(auth.tenant()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub role: Role,
    /// Optional: lets the user log in with POST /api/v1/auth/login.
    #[serde(default)]
    pub password: Option<String>,
}

impl Validate for CreateUser {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.name(&self.name, "name");
        if let Some(pw) = &self.password {
            p.check(
                (12..=1024).contains(&pw.len()),
                "password",
                "must be 12 to 1024 bytes",
            );
        }
        p.into_result()
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "auth", security(("api_token" = [])), request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(req): Body<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    auth.require(Role::Admin)?;
    let hash = match req.password {
        Some(pw) => Some(
            tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(ApiError::Internal)?,
        ),
        None => None,
    };
    let user = state
        .store
        .create_user(auth.tenant(), &req.name, req.role, hash.as_deref())
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("user `{}` exists", req.name)))?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "auth", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<Json<User>> {
    let user = state
        .store
        .user(auth.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if id != auth.0.user_id {
        auth.require(Role::Admin)?;
    }
    Ok(Json(user))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "auth", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state
        .store
        .user(auth.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    auth.require(Role::Admin)?;
    if id == auth.0.user_id {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    for t in state.store.api_tokens(auth.tenant(), Some(id)).await? {
        if let Some(hash) = state.store.revoke_api_token(auth.tenant(), t.id).await? {
            state.cache.evict(&hash);
        }
    }
    state.store.delete_user(auth.tenant(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's tokens (an admin sees every token of the tenant).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth", security(("api_token" = [])),
    responses((status = 200, body = Vec<ApiToken>), (status = 401, body = ApiErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let user = (auth.0.role != Role::Admin).then_some(auth.0.user_id);
    Ok(Json(state.store.api_tokens(auth.tenant(), user).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// For another user of the tenant (admins only). Default: the caller.
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Lifetime, e.g. "30d" (1m to 3650d). Default: no expiry.
    #[serde(default)]
    pub expires_in: Option<String>,
}

impl Validate for CreateToken {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.name(&self.name, "name");
        parse_ttl(
            &mut p,
            "expires_in",
            self.expires_in.as_deref(),
            Duration::from_secs(3650 * 86400),
        );
        p.into_result()
    }
}

/// A new API token; the secret is in the answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", security(("api_token" = [])), request_body = CreateToken,
    responses((status = 201, body = NewApiToken), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(req): Body<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewApiToken>)> {
    let user_id = req.user_id.unwrap_or(auth.0.user_id);
    if user_id != auth.0.user_id {
        state
            .store
            .user(auth.tenant(), user_id)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
        auth.require(Role::Admin)?;
    }
    let ttl = req
        .expires_in
        .as_deref()
        .and_then(|s| humantime::parse_duration(s).ok());
    let token = new_secret(API_TOKEN_PREFIX);
    let info = state
        .store
        .create_api_token(
            auth.tenant(),
            user_id,
            &req.name,
            &hash_secret(&token),
            ttl.map(|d| now_ms() + d.as_millis() as i64),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(NewApiToken { token, info })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth", security(("api_token" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let tok = state
        .store
        .api_token(auth.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound("token"))?;
    if tok.user_id != auth.0.user_id {
        auth.require(Role::Admin)?;
    }
    if let Some(hash) = state.store.revoke_api_token(auth.tenant(), id).await? {
        state.cache.evict(&hash);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/enrollment-tokens", tag = "nodes", security(("api_token" = [])),
    responses((status = 200, body = Vec<EnrollmentToken>), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
pub async fn list_enrollment_tokens(
    State(state): State<AppState>,
    auth: UserAuth,
) -> ApiResult<Json<Vec<EnrollmentToken>>> {
    auth.require(Role::Operator)?;
    Ok(Json(state.store.enrollment_tokens(auth.tenant()).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// How long the token may be used, e.g. "1h" (1m to 30d). Default: `server.enrollment_token_ttl`.
    #[serde(default)]
    pub expires_in: Option<String>,
}

impl Validate for CreateEnrollmentToken {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        parse_ttl(
            &mut p,
            "expires_in",
            self.expires_in.as_deref(),
            Duration::from_secs(30 * 86400),
        );
        p.into_result()
    }
}

/// A one-time enrollment token for a new node, with the command to run there.
#[utoipa::path(post, path = "/api/v1/enrollment-tokens", tag = "nodes", security(("api_token" = [])),
    request_body = CreateEnrollmentToken,
    responses((status = 201, body = NewEnrollmentToken), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
pub async fn create_enrollment_token(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(req): Body<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, Json<NewEnrollmentToken>)> {
    auth.require(Role::Operator)?;
    let ttl = req
        .expires_in
        .as_deref()
        .and_then(|s| humantime::parse_duration(s).ok())
        .unwrap_or(state.cfg.enrollment_token_ttl);
    let token = new_secret(ENROLL_TOKEN_PREFIX);
    let info = state
        .store
        .create_enrollment_token(
            auth.tenant(),
            &hash_secret(&token),
            now_ms() + ttl.as_millis() as i64,
            auth.0.user_id,
        )
        .await?;
    let fingerprint = state.fingerprint.map(|f| f.to_string()).unwrap_or_default();
    let url = state
        .cfg
        .public_url
        .clone()
        .unwrap_or_else(|| crate::default_public_url(state.cfg.listen));
    let command =
        format!("levee agent --server {url} --enroll {token} --server-fingerprint {fingerprint}");
    Ok((
        StatusCode::CREATED,
        Json(NewEnrollmentToken {
            token,
            server_fingerprint: fingerprint,
            command,
            info,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/enrollment-tokens/{id}", tag = "nodes", security(("api_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn delete_enrollment_token(
    State(state): State<AppState>,
    auth: UserAuth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let exists = state
        .store
        .enrollment_tokens(auth.tenant())
        .await?
        .iter()
        .any(|t| t.id == id);
    if !exists {
        return Err(ApiError::NotFound("enrollment token"));
    }
    auth.require(Role::Operator)?;
    state
        .store
        .delete_enrollment_token(auth.tenant(), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's policy (version 0 when never set).
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy", security(("api_token" = [])),
    responses((status = 200, body = Policy), (status = 401, body = ApiErrorBody)))]
pub async fn get_policy(State(state): State<AppState>, auth: UserAuth) -> ApiResult<Json<Policy>> {
    Ok(Json(state.store.policy(auth.tenant()).await?))
}

/// Replaces the tenant's policy; agents receive it with their next answer.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy", security(("api_token" = [])), request_body = Policy,
    responses((status = 200, body = Policy), (status = 400, body = ApiErrorBody), (status = 401, body = ApiErrorBody),
        (status = 403, body = ApiErrorBody)))]
pub async fn put_policy(
    State(state): State<AppState>,
    auth: UserAuth,
    Body(policy): Body<Policy>,
) -> ApiResult<Json<Policy>> {
    auth.require(Role::Operator)?;
    let stored = state.store.set_policy(auth.tenant(), &policy).await?;
    state
        .policy_versions
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(auth.tenant(), stored.version);
    Ok(Json(stored))
}
