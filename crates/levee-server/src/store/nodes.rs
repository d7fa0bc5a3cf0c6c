//! Nodes (enrolled agents): inventory, heartbeats, liveness.

use super::{now_ms, on, Ctx, Store, StoreError};
use crate::model::{ts_opt, Node};
use levee_model::timefmt::rfc3339_millis;

#[derive(sqlx::FromRow)]
struct NodeRow {
    id: i64,
    name: String,
    version: String,
    interfaces: String,
    enrolled_ms: i64,
    last_seen_ms: Option<i64>,
    online: i64,
    baselines: Option<String>,
    policy_version: i64,
    queued_events: i64,
    dropped_events: i64,
}

const NODE_COLS: &str =
    "id, name, version, interfaces, enrolled_ms, last_seen_ms, online, baselines, \
                         policy_version, queued_events, dropped_events";

impl From<NodeRow> for Node {
    fn from(r: NodeRow) -> Self {
        Node {
            id: r.id,
            name: r.name,
            version: r.version,
            // Written by us as JSON; a damaged value shows as empty rather than failing the listing.
            interfaces: serde_json::from_str(&r.interfaces).unwrap_or_default(),
            enrolled_at: rfc3339_millis(r.enrolled_ms),
            last_seen_at: ts_opt(r.last_seen_ms),
            online: r.online != 0,
            policy_version: r.policy_version.max(0) as u64,
            queued_events: r.queued_events.max(0) as u64,
            dropped_events: r.dropped_events.max(0) as u64,
            baselines: r
                .baselines
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default(),
        }
    }
}

/// A liveness change the jobs found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessChange {
    pub tenant_id: i64,
    pub node_id: i64,
    pub node: String,
    pub online: bool,
    pub last_seen_ms: i64,
}

/// What a heartbeat updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatWrite {
    pub node_id: i64,
    pub version: String,
    pub interfaces: Vec<String>,
    pub queued_events: u64,
    pub policy_version: u64,
    pub acked_commands: Vec<i64>,
    pub command_results: Vec<levee_proto::CommandResult>,
}

impl Store {
    pub async fn nodes(&self, tenant_id: i64) -> Result<Vec<Node>, StoreError> {
        let rows: Vec<NodeRow> = on!(&self.read, p => sqlx::query_as(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE tenant_id = $1 AND revoked_ms IS NULL ORDER BY name"
        ))
        .bind(tenant_id)
        .fetch_all(p)
        .await)
        .ctx("listing nodes")?;
        Ok(rows.into_iter().map(Node::from).collect())
    }

    pub async fn node(&self, tenant_id: i64, id: i64) -> Result<Option<Node>, StoreError> {
        let row: Option<NodeRow> = on!(&self.read, p => sqlx::query_as(&format!(
            "SELECT {NODE_COLS} FROM nodes WHERE tenant_id = $1 AND id = $2 AND revoked_ms IS NULL"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("reading a node")?;
        Ok(row.map(Node::from))
    }

    /// Revokes a node's key (it must enroll again); returns the key hash.
    pub async fn revoke_node(
        &self,
        tenant_id: i64,
        id: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        on!(&self.write, p => sqlx::query_scalar::<_, Vec<u8>>(
            "UPDATE nodes SET revoked_ms = $1, online = 0 WHERE tenant_id = $2 AND id = $3 AND revoked_ms IS NULL \
             RETURNING agent_key_hash",
        )
        .bind(now_ms())
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("revoking a node")
    }

    /// Records a heartbeat and acknowledges the commands it lists (a group
    /// commit of one; the API batches heartbeats through the writer).
    pub async fn heartbeat(&self, hb: HeartbeatWrite) -> Result<(), StoreError> {
        self.write_telemetry(&[super::metrics::TelemetryWrite {
            node_id: hb.node_id,
            seen_ms: now_ms(),
            heartbeat: Some(hb),
            ..Default::default()
        }])
        .await
    }

    /// Adds to a node's count of events its offline queue dropped.
    pub async fn add_dropped_events(&self, node_id: i64, n: u64) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query("UPDATE nodes SET dropped_events = dropped_events + $1 WHERE id = $2")
            .bind(n.min(i64::MAX as u64) as i64)
            .bind(node_id)
            .execute(p)
            .await.map(|r| r.rows_affected()))
        .ctx("counting dropped events")?;
        Ok(())
    }

    /// Nodes whose `online` flag disagrees with their last contact: online
    /// with no contact since `stale_before_ms`, or offline with contact since.
    pub async fn liveness_changes(
        &self,
        stale_before_ms: i64,
    ) -> Result<Vec<LivenessChange>, StoreError> {
        let rows: Vec<(i64, i64, String, i64, i64)> = on!(&self.read, p => sqlx::query_as(
            "SELECT tenant_id, id, name, online, COALESCE(last_seen_ms, 0) FROM nodes WHERE revoked_ms IS NULL AND \
             ((online = 1 AND COALESCE(last_seen_ms, 0) < $1) OR (online = 0 AND last_seen_ms >= $1))",
        )
        .bind(stale_before_ms)
        .fetch_all(p)
        .await)
        .ctx("checking node liveness")?;
        Ok(rows
            .into_iter()
            .map(
                |(tenant_id, node_id, node, online, last_seen_ms)| LivenessChange {
                    tenant_id,
                    node_id,
                    node,
                    online: online == 0,
                    last_seen_ms,
                },
            )
            .collect())
    }

    pub async fn set_online(&self, node_id: i64, online: bool) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query("UPDATE nodes SET online = $1 WHERE id = $2")
            .bind(online as i64)
            .bind(node_id)
            .execute(p)
            .await.map(|r| r.rows_affected()))
        .ctx("setting node liveness")?;
        Ok(())
    }

    /// (online, offline) node counts over all tenants, for /metrics.
    pub async fn node_counts(&self) -> Result<(i64, i64), StoreError> {
        on!(&self.read, p => sqlx::query_as::<_, (i64, i64)>(
            "SELECT CAST(COALESCE(SUM(online), 0) AS BIGINT), CAST(COUNT(*) - COALESCE(SUM(online), 0) AS BIGINT) \
             FROM nodes WHERE revoked_ms IS NULL",
        )
        .fetch_one(p)
        .await)
        .ctx("counting nodes")
    }
}
