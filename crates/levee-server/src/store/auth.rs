//! Tenants, users, API tokens and enrollment tokens. Secrets are never stored:
//! callers pass SHA-256 hashes (see `crate::auth::secret`).

use super::{now_ms, on, Ctx, Store, StoreError};
use crate::model::{ts_opt, ApiToken, EnrollmentToken, Role, Tenant, User};
use levee_model::timefmt::rfc3339_millis;

/// Who an API token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub tenant_id: i64,
    pub user_id: i64,
    pub token_id: i64,
    pub role: Role,
}

/// Which node an agent key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub tenant_id: i64,
    pub node_id: i64,
    pub node: String,
}

/// The tenant made at first start; its admins administer every tenant.
pub const SYSTEM_TENANT: i64 = 1;

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: i64,
    name: String,
    created_ms: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: r.id,
            name: r.name,
            created_at: rfc3339_millis(r.created_ms),
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    role: String,
    password_hash: Option<String>,
    created_ms: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: self.id,
            role: Role::from_name(&self.role).ok_or_else(|| {
                StoreError::Corrupt(format!("user {} has unknown role `{}`", self.id, self.role))
            })?,
            name: self.name,
            has_password: self.password_hash.is_some(),
            created_at: rfc3339_millis(self.created_ms),
        })
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    name: String,
    created_ms: i64,
    expires_ms: Option<i64>,
    revoked_ms: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            created_at: rfc3339_millis(r.created_ms),
            expires_at: ts_opt(r.expires_ms),
            revoked_at: ts_opt(r.revoked_ms),
        }
    }
}

#[derive(sqlx::FromRow)]
struct EnrollRow {
    id: i64,
    created_ms: i64,
    expires_ms: i64,
    used_ms: Option<i64>,
    node_id: Option<i64>,
}

impl From<EnrollRow> for EnrollmentToken {
    fn from(r: EnrollRow) -> Self {
        EnrollmentToken {
            id: r.id,
            created_at: rfc3339_millis(r.created_ms),
            expires_at: rfc3339_millis(r.expires_ms),
            used_at: ts_opt(r.used_ms),
            node_id: r.node_id,
        }
    }
}

/// What an enrollment produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub node_id: i64,
    pub tenant: String,
}

/// Why an enrollment token was refused (all look the same to the caller: 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    Unknown,
    Used,
    Expired,
}

const TOKEN_COLS: &str = "id, user_id, name, created_ms, expires_ms, revoked_ms";

impl Store {
    pub async fn tenant_count(&self) -> Result<i64, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tenants").fetch_one(p).await)
            .ctx("counting tenants")
    }

    /// A tenant with one admin user; returns (tenant, user id).
    pub async fn create_tenant(
        &self,
        name: &str,
        admin: &str,
    ) -> Result<Option<(Tenant, i64)>, StoreError> {
        let now = now_ms();
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            let row: Option<TenantRow> = sqlx::query_as(
                "INSERT INTO tenants (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING \
                 RETURNING id, name, created_ms",
            )
            .bind(name)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .ctx("creating a tenant")?;
            let Some(row) = row else { return Ok(None) };
            let user_id: i64 = sqlx::query_scalar(
                "INSERT INTO users (tenant_id, name, role, created_ms) VALUES ($1, $2, 'admin', $3) RETURNING id",
            )
            .bind(row.id)
            .bind(admin)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .ctx("creating the tenant's admin")?;
            tx.commit().await.ctx("committing a tenant")?;
            Ok(Some((Tenant::from(row), user_id)))
        })
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows: Vec<TenantRow> = on!(&self.read, p =>
            sqlx::query_as("SELECT id, name, created_ms FROM tenants ORDER BY id").fetch_all(p).await)
        .ctx("listing tenants")?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    pub async fn tenant(&self, id: i64) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = on!(&self.read, p =>
            sqlx::query_as("SELECT id, name, created_ms FROM tenants WHERE id = $1").bind(id).fetch_optional(p).await)
        .ctx("reading a tenant")?;
        Ok(row.map(Tenant::from))
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = on!(&self.read, p =>
            sqlx::query_as("SELECT id, name, created_ms FROM tenants WHERE name = $1").bind(name).fetch_optional(p).await)
        .ctx("reading a tenant")?;
        Ok(row.map(Tenant::from))
    }

    /// `None` when the name is taken in the tenant.
    pub async fn create_user(
        &self,
        tenant_id: i64,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on!(&self.write, p => sqlx::query_as(
            "INSERT INTO users (tenant_id, name, role, password_hash, created_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id, name, role, password_hash, created_ms",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(role.name())
        .bind(password_hash)
        .bind(now_ms())
        .fetch_optional(p)
        .await)
        .ctx("creating a user")?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn users(&self, tenant_id: i64) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, name, role, password_hash, created_ms FROM users WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(tenant_id)
        .fetch_all(p)
        .await)
        .ctx("listing users")?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    pub async fn user(&self, tenant_id: i64, id: i64) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, name, role, password_hash, created_ms FROM users WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("reading a user")?;
        row.map(UserRow::into_user).transpose()
    }

    /// Deletes a user and revokes their tokens; false if no such user.
    pub async fn delete_user(&self, tenant_id: i64, id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_ms IS NULL")
                .bind(now).bind(tenant_id).bind(id).execute(&mut *tx).await.ctx("revoking a user's tokens")?;
            sqlx::query("DELETE FROM api_tokens WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id).bind(id).execute(&mut *tx).await.ctx("deleting a user's tokens")?;
            let n = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id).bind(id).execute(&mut *tx).await.ctx("deleting a user")?.rows_affected();
            tx.commit().await.ctx("committing a user deletion")?;
            Ok(n == 1)
        })
    }

    /// (tenant id, user id, role, password hash) of a user, for login.
    pub async fn login_lookup(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<Option<(i64, i64, Option<String>)>, StoreError> {
        on!(&self.read, p => sqlx::query_as::<_, (i64, i64, Option<String>)>(
            "SELECT u.tenant_id, u.id, u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE t.name = $1 AND u.name = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(p)
        .await)
        .ctx("looking up a login")
    }

    pub async fn create_api_token(
        &self,
        tenant_id: i64,
        user_id: i64,
        name: &str,
        hash: &[u8],
        expires_ms: Option<i64>,
    ) -> Result<ApiToken, StoreError> {
        let row: TokenRow = on!(&self.write, p => sqlx::query_as(&format!(
            "INSERT INTO api_tokens (tenant_id, user_id, name, token_hash, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLS}"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .bind(name)
        .bind(hash)
        .bind(now_ms())
        .bind(expires_ms)
        .fetch_one(p)
        .await)
        .ctx("creating an API token")?;
        Ok(row.into())
    }

    /// Tokens of one user, or of the whole tenant when `user_id` is `None`.
    pub async fn api_tokens(
        &self,
        tenant_id: i64,
        user_id: Option<i64>,
    ) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = on!(&self.read, p => sqlx::query_as(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND ($2 IS NULL OR user_id = $2) ORDER BY id"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(p)
        .await)
        .ctx("listing API tokens")?;
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    pub async fn api_token(&self, tenant_id: i64, id: i64) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = on!(&self.read, p => sqlx::query_as(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("reading an API token")?;
        Ok(row.map(ApiToken::from))
    }

    /// Revokes a token; returns its hash (to evict it from caches) if it existed.
    pub async fn revoke_api_token(
        &self,
        tenant_id: i64,
        id: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on!(&self.write, p => sqlx::query_scalar::<_, Vec<u8>>(
            "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, $1) WHERE tenant_id = $2 AND id = $3 RETURNING token_hash",
        )
        .bind(now_ms())
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("revoking an API token")
    }

    pub async fn user_by_token_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<UserIdentity>, StoreError> {
        let row: Option<(i64, i64, i64, String)> = on!(&self.read, p => sqlx::query_as(
            "SELECT t.tenant_id, t.user_id, t.id, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_ms IS NULL AND (t.expires_ms IS NULL OR t.expires_ms > $2)",
        )
        .bind(hash)
        .bind(now_ms())
        .fetch_optional(p)
        .await)
        .ctx("checking an API token")?;
        row.map(|(tenant_id, user_id, token_id, role)| {
            Ok(UserIdentity {
                tenant_id,
                user_id,
                token_id,
                role: Role::from_name(&role).ok_or_else(|| {
                    StoreError::Corrupt(format!("user {user_id} has unknown role `{role}`"))
                })?,
            })
        })
        .transpose()
    }

    pub async fn agent_by_key_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<AgentIdentity>, StoreError> {
        let row: Option<(i64, i64, String)> = on!(&self.read, p => sqlx::query_as(
            "SELECT tenant_id, id, name FROM nodes WHERE agent_key_hash = $1 AND revoked_ms IS NULL",
        )
        .bind(hash)
        .fetch_optional(p)
        .await)
        .ctx("checking an agent key")?;
        Ok(row.map(|(tenant_id, node_id, node)| AgentIdentity {
            tenant_id,
            node_id,
            node,
        }))
    }

    pub async fn create_enrollment_token(
        &self,
        tenant_id: i64,
        hash: &[u8],
        expires_ms: i64,
        created_by: i64,
    ) -> Result<EnrollmentToken, StoreError> {
        let row: EnrollRow = on!(&self.write, p => sqlx::query_as(
            "INSERT INTO enrollment_tokens (tenant_id, token_hash, created_ms, expires_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, created_ms, expires_ms, used_ms, node_id",
        )
        .bind(tenant_id)
        .bind(hash)
        .bind(now_ms())
        .bind(expires_ms)
        .bind(created_by)
        .fetch_one(p)
        .await)
        .ctx("creating an enrollment token")?;
        Ok(row.into())
    }

    pub async fn enrollment_tokens(
        &self,
        tenant_id: i64,
    ) -> Result<Vec<EnrollmentToken>, StoreError> {
        let rows: Vec<EnrollRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, created_ms, expires_ms, used_ms, node_id FROM enrollment_tokens WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(tenant_id)
        .fetch_all(p)
        .await)
        .ctx("listing enrollment tokens")?;
        Ok(rows.into_iter().map(EnrollmentToken::from).collect())
    }

    /// Deletes an unused or used enrollment token; false if none.
    pub async fn delete_enrollment_token(
        &self,
        tenant_id: i64,
        id: i64,
    ) -> Result<bool, StoreError> {
        let n = on!(&self.write, p => sqlx::query("DELETE FROM enrollment_tokens WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(p)
            .await.map(|r| r.rows_affected()))
        .ctx("deleting an enrollment token")?;
        Ok(n == 1)
    }

    /// Uses an enrollment token once: creates the node (or gives an existing
    /// node of that name a new key, for a reinstalled host) in one transaction.
    pub async fn enroll(
        &self,
        token_hash: &[u8],
        node: &str,
        version: &str,
        interfaces: &[String],
        key_hash: &[u8],
    ) -> Result<Result<Enrolled, EnrollRefusal>, StoreError> {
        let now = now_ms();
        let ifaces = serde_json::to_string(interfaces).unwrap_or_else(|_| "[]".into());
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            let tok: Option<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
                "SELECT id, tenant_id, expires_ms, used_ms FROM enrollment_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .ctx("checking an enrollment token")?;
            let Some((tok_id, tenant_id, expires_ms, used_ms)) = tok else {
                return Ok(Err(EnrollRefusal::Unknown));
            };
            if used_ms.is_some() {
                return Ok(Err(EnrollRefusal::Used));
            }
            if expires_ms <= now {
                return Ok(Err(EnrollRefusal::Expired));
            }
            let node_id: i64 = sqlx::query_scalar(
                "INSERT INTO nodes (tenant_id, name, agent_key_hash, version, interfaces, enrolled_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET agent_key_hash = excluded.agent_key_hash, \
                 version = excluded.version, interfaces = excluded.interfaces, enrolled_ms = excluded.enrolled_ms, \
                 revoked_ms = NULL RETURNING id",
            )
            .bind(tenant_id)
            .bind(node)
            .bind(key_hash)
            .bind(version)
            .bind(&ifaces)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .ctx("creating a node")?;
            // Guarded by used_ms IS NULL: two racing enrollments cannot both use it.
            let used = sqlx::query("UPDATE enrollment_tokens SET used_ms = $1, node_id = $2 WHERE id = $3 AND used_ms IS NULL")
                .bind(now)
                .bind(node_id)
                .bind(tok_id)
                .execute(&mut *tx)
                .await
                .ctx("using an enrollment token")?
                .rows_affected();
            if used != 1 {
                return Ok(Err(EnrollRefusal::Used));
            }
            let tenant: String = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(&mut *tx)
                .await
                .ctx("reading a tenant")?;
            tx.commit().await.ctx("committing an enrollment")?;
            Ok(Ok(Enrolled { node_id, tenant }))
        })
    }
}
