//! Commands queued for nodes, delivered in answers until acknowledged.

use super::{now_ms, on, Ctx, Store, StoreError};
use crate::model::{ts_opt, Command};
use levee_model::timefmt::rfc3339_millis;
use levee_proto::AgentCommand;

#[derive(sqlx::FromRow)]
struct CommandRow {
    id: i64,
    node_id: i64,
    kind: String,
    args: String,
    created_ms: i64,
    acked_ms: Option<i64>,
    ok: Option<i64>,
    result: Option<String>,
}

impl From<CommandRow> for Command {
    fn from(r: CommandRow) -> Self {
        Command {
            id: r.id,
            node_id: r.node_id,
            kind: r.kind,
            args: serde_json::from_str(&r.args).unwrap_or(serde_json::Value::Null),
            created_at: rfc3339_millis(r.created_ms),
            acked_at: ts_opt(r.acked_ms),
            ok: r.ok.map(|v| v != 0),
            result: r.result,
        }
    }
}

impl Store {
    pub async fn create_command(
        &self,
        tenant_id: i64,
        node_id: i64,
        kind: &str,
        args: &serde_json::Value,
        created_by: i64,
    ) -> Result<Command, StoreError> {
        let row: CommandRow = on!(&self.write, p => sqlx::query_as(
            "INSERT INTO commands (tenant_id, node_id, kind, args, created_ms, created_by) VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, node_id, kind, args, created_ms, acked_ms, ok, result",
        )
        .bind(tenant_id)
        .bind(node_id)
        .bind(kind)
        .bind(args.to_string())
        .bind(now_ms())
        .bind(created_by)
        .fetch_one(p)
        .await)
        .ctx("queueing a command")?;
        Ok(row.into())
    }

    /// A node's commands, newest first.
    pub async fn commands(
        &self,
        tenant_id: i64,
        node_id: i64,
        limit: i64,
    ) -> Result<Vec<Command>, StoreError> {
        let rows: Vec<CommandRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, node_id, kind, args, created_ms, acked_ms, ok, result FROM commands WHERE tenant_id = $1 AND node_id = $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(node_id)
        .bind(limit)
        .fetch_all(p)
        .await)
        .ctx("listing commands")?;
        Ok(rows.into_iter().map(Command::from).collect())
    }

    /// Unacknowledged commands of a node, oldest first, as the agent sees them.
    pub async fn pending_commands(&self, node_id: i64) -> Result<Vec<AgentCommand>, StoreError> {
        let rows: Vec<CommandRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, node_id, kind, args, created_ms, acked_ms, ok, result FROM commands WHERE node_id = $1 AND acked_ms IS NULL \
             ORDER BY id LIMIT 100",
        )
        .bind(node_id)
        .fetch_all(p)
        .await)
        .ctx("reading pending commands")?;
        Ok(rows
            .into_iter()
            .map(|r| AgentCommand {
                id: r.id,
                kind: r.kind,
                args: serde_json::from_str(&r.args).unwrap_or(serde_json::Value::Null),
                created_at: rfc3339_millis(r.created_ms),
            })
            .collect())
    }

    /// Nodes with unacknowledged commands (a small set, cached per replica).
    pub async fn nodes_with_pending_commands(&self) -> Result<Vec<i64>, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, i64>("SELECT DISTINCT node_id FROM commands WHERE acked_ms IS NULL")
            .fetch_all(p)
            .await)
        .ctx("reading nodes with pending commands")
    }
}
