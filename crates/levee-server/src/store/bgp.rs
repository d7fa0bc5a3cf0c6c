//! Per-tenant BGP rows (`bgp_tenants`): the admin's tuning (versioned),
//! withdraw requests and their acknowledgement, the leader's status
//! snapshot; and what the leader's engines read: a tenant's incident
//! events after a cursor and its open incidents.

use super::{now_ms, on, Ctx, Store, StoreError};

/// The incident events the escalation engines consume.
pub const ENGINE_KINDS: [&str; 3] = ["incident_started", "incident_updated", "incident_resolved"];

/// One `bgp_tenants` row (defaults when the tenant has none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpRow {
    pub tuning: String,
    pub tuning_version: i64,
    pub withdraw_requested: i64,
    pub withdraw_done: i64,
    pub status: Option<String>,
    pub status_ms: Option<i64>,
}

type RowTuple = (String, i64, i64, i64, Option<String>, Option<i64>);

impl Store {
    pub async fn bgp_row(&self, tenant_id: i64) -> Result<BgpRow, StoreError> {
        let row: Option<RowTuple> = on!(&self.read, p => sqlx::query_as(
            "SELECT tuning, tuning_version, withdraw_requested, withdraw_done, status, status_ms \
             FROM bgp_tenants WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(p)
        .await)
        .ctx("reading a tenant's BGP row")?;
        Ok(row
            .map(|(tuning, tv, wr, wd, status, sm)| BgpRow {
                tuning,
                tuning_version: tv,
                withdraw_requested: wr,
                withdraw_done: wd,
                status,
                status_ms: sm,
            })
            .unwrap_or_else(|| BgpRow {
                tuning: "{}".into(),
                ..BgpRow::default()
            }))
    }

    /// Replaces the tenant's tuning (JSON); returns its new version.
    pub async fn set_bgp_tuning(&self, tenant_id: i64, tuning: &str) -> Result<i64, StoreError> {
        on!(&self.write, p => sqlx::query_scalar(
            "INSERT INTO bgp_tenants (tenant_id, tuning, tuning_version, tuning_updated_ms) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET tuning = excluded.tuning, \
             tuning_version = bgp_tenants.tuning_version + 1, tuning_updated_ms = excluded.tuning_updated_ms \
             RETURNING tuning_version",
        )
        .bind(tenant_id)
        .bind(tuning)
        .bind(now_ms())
        .fetch_one(p)
        .await)
        .ctx("storing a tenant's BGP tuning")
    }

    /// Asks the leader to withdraw everything of the tenant; returns the
    /// request's number (done once `withdraw_done` reaches it).
    pub async fn request_bgp_withdraw(&self, tenant_id: i64) -> Result<i64, StoreError> {
        on!(&self.write, p => sqlx::query_scalar(
            "INSERT INTO bgp_tenants (tenant_id, withdraw_requested) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET withdraw_requested = bgp_tenants.withdraw_requested + 1 \
             RETURNING withdraw_requested",
        )
        .bind(tenant_id)
        .fetch_one(p)
        .await)
        .ctx("requesting a BGP withdraw")
    }

    /// The leader's status snapshot, and withdraw requests done up to `done`.
    pub async fn set_bgp_status(
        &self,
        tenant_id: i64,
        status: &str,
        withdraw_done: i64,
    ) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query(
            "INSERT INTO bgp_tenants (tenant_id, status, status_ms, withdraw_done) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET status = excluded.status, status_ms = excluded.status_ms, \
             withdraw_done = excluded.withdraw_done",
        )
        .bind(tenant_id)
        .bind(status)
        .bind(now_ms())
        .bind(withdraw_done)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .ctx("storing the BGP status")?;
        Ok(())
    }

    /// The tenant's newest event row id (0 without events).
    pub async fn last_event_id(&self, tenant_id: i64) -> Result<i64, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(id) FROM events WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_one(p)
        .await)
        .map(|v| v.unwrap_or(0))
        .ctx("reading the last event id")
    }

    /// (row id, JSON body) of the tenant's incident events with id above
    /// `after`, oldest first, at most `limit`.
    pub async fn incident_events_after(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        on!(&self.read, p => sqlx::query_as(
            "SELECT id, body FROM events WHERE tenant_id = $1 AND id > $2 \
             AND kind IN ($3, $4, $5) ORDER BY id LIMIT $6",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(ENGINE_KINDS[0])
        .bind(ENGINE_KINDS[1])
        .bind(ENGINE_KINDS[2])
        .bind(limit)
        .fetch_all(p)
        .await)
        .ctx("reading incident events")
    }

    /// The last event (JSON) of each of the tenant's open incidents
    /// updated at or after `since_ms`, oldest first.
    pub async fn open_incident_events(
        &self,
        tenant_id: i64,
        since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        on!(&self.read, p => sqlx::query_scalar(
            "SELECT last_event FROM incidents WHERE tenant_id = $1 AND state = 'open' \
             AND updated_ms >= $2 ORDER BY updated_ms",
        )
        .bind(tenant_id)
        .bind(since_ms)
        .fetch_all(p)
        .await)
        .ctx("reading open incidents")
    }
}
