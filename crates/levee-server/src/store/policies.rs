//! Tenant policies (allowlists, attack profiles, detector settings), versioned.

use super::{now_ms, on, Ctx, Store, StoreError};
use levee_proto::Policy;

impl Store {
    /// The tenant's policy; version 0 and empty when never set.
    pub async fn policy(&self, tenant_id: i64) -> Result<Policy, StoreError> {
        let row: Option<(i64, String)> = on!(&self.read, p => sqlx::query_as(
            "SELECT version, body FROM policies WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(p)
        .await)
        .ctx("reading a policy")?;
        match row {
            None => Ok(Policy::default()),
            Some((version, body)) => {
                let mut pol: Policy = serde_json::from_str(&body).map_err(|e| {
                    StoreError::Corrupt(format!("policy of tenant {tenant_id}: {e}"))
                })?;
                pol.version = version.max(0) as u64;
                Ok(pol)
            }
        }
    }

    /// Replaces the tenant's policy; returns it with its new version.
    pub async fn set_policy(&self, tenant_id: i64, policy: &Policy) -> Result<Policy, StoreError> {
        let mut pol = policy.clone();
        pol.version = 0;
        let body = serde_json::to_string(&pol).unwrap_or_default();
        let version: i64 = on!(&self.write, p => sqlx::query_scalar(
            "INSERT INTO policies (tenant_id, version, body, updated_ms) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET version = policies.version + 1, body = excluded.body, \
             updated_ms = excluded.updated_ms RETURNING version",
        )
        .bind(tenant_id)
        .bind(&body)
        .bind(now_ms())
        .fetch_one(p)
        .await)
        .ctx("storing a policy")?;
        pol.version = version.max(0) as u64;
        Ok(pol)
    }

    /// (tenant, version) of every stored policy, for the per-replica cache.
    pub async fn policy_versions(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        on!(&self.read, p => sqlx::query_as::<_, (i64, i64)>("SELECT tenant_id, version FROM policies")
            .fetch_all(p)
            .await)
        .ctx("reading policy versions")
    }
}
