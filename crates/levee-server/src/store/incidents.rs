//! Incidents (from agent events), correlated incidents, mitigations.

use super::{now_ms, on, Ctx, Store, StoreError};
use crate::correlate::{Candidate, OpenGroup};
use crate::model::{ts_opt, Correlation, Incident, Mitigation};
use levee_model::timefmt::rfc3339_millis;

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: i64,
    node_id: i64,
    node: String,
    agent_incident_id: String,
    target: String,
    metric: String,
    family: Option<String>,
    confidence: Option<i64>,
    state: String,
    started_ms: i64,
    updated_ms: i64,
    resolved_ms: Option<i64>,
    value: f64,
    baseline: f64,
    peak: f64,
    total_packets: Option<i64>,
    total_bytes: Option<i64>,
    correlation_id: Option<i64>,
    has_pcap: i64,
}

impl From<IncidentRow> for Incident {
    fn from(r: IncidentRow) -> Self {
        Incident {
            id: r.id,
            node_id: r.node_id,
            node: r.node,
            incident_id: r.agent_incident_id,
            target: r.target,
            metric: r.metric,
            family: r.family,
            confidence: r.confidence,
            state: r.state,
            started_at: rfc3339_millis(r.started_ms),
            updated_at: rfc3339_millis(r.updated_ms),
            resolved_at: ts_opt(r.resolved_ms),
            value: r.value,
            baseline: r.baseline,
            peak: r.peak,
            total_packets: r.total_packets,
            total_bytes: r.total_bytes,
            correlation_id: r.correlation_id,
            has_pcap: r.has_pcap != 0,
        }
    }
}

const INCIDENT_SELECT: &str = "SELECT i.id, i.node_id, n.name AS node, i.agent_incident_id, i.target, i.metric, \
     i.family, i.confidence, i.state, i.started_ms, i.updated_ms, i.resolved_ms, i.value, i.baseline, i.peak, \
     i.total_packets, i.total_bytes, i.correlation_id, \
     CAST(CASE WHEN p.incident_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_pcap \
     FROM incidents i JOIN nodes n ON n.id = i.node_id LEFT JOIN pcaps p ON p.incident_id = i.id";

/// A filter for [`Store::incidents`].
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<String>,
    pub node_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct CandidateRow {
    id: i64,
    tenant_id: i64,
    node_id: i64,
    target: String,
    metric: String,
    family: Option<String>,
    started_ms: i64,
    state: String,
    correlation_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CorrelationRow {
    id: i64,
    reason: String,
    key: String,
    state: String,
    started_ms: i64,
    resolved_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct MitigationRow {
    id: i64,
    node_id: i64,
    mitigation_id: String,
    incident_id: Option<String>,
    executor: Option<String>,
    rule: Option<String>,
    state: String,
    created_ms: i64,
    updated_ms: i64,
}

impl From<MitigationRow> for Mitigation {
    fn from(r: MitigationRow) -> Self {
        Mitigation {
            id: r.id,
            node_id: r.node_id,
            mitigation_id: r.mitigation_id,
            incident_id: r.incident_id,
            executor: r.executor,
            rule: r.rule,
            state: r.state,
            created_at: rfc3339_millis(r.created_ms),
            updated_at: rfc3339_millis(r.updated_ms),
        }
    }
}

impl Store {
    /// Incidents of a tenant, newest first.
    pub async fn incidents(
        &self,
        tenant_id: i64,
        f: &IncidentFilter,
    ) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "{INCIDENT_SELECT} WHERE i.tenant_id = $1 AND ($2 IS NULL OR i.state = $2) AND ($3 IS NULL OR i.node_id = $3) \
             AND ($4 IS NULL OR i.id < $4) ORDER BY i.id DESC LIMIT $5"
        );
        let rows: Vec<IncidentRow> = on!(&self.read, p => sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(f.state.as_deref())
            .bind(f.node_id)
            .bind(f.before_id)
            .bind(f.limit)
            .fetch_all(p)
            .await)
        .ctx("listing incidents")?;
        Ok(rows.into_iter().map(Incident::from).collect())
    }

    pub async fn incident(&self, tenant_id: i64, id: i64) -> Result<Option<Incident>, StoreError> {
        let sql = format!("{INCIDENT_SELECT} WHERE i.tenant_id = $1 AND i.id = $2");
        let row: Option<IncidentRow> = on!(&self.read, p => sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(p)
            .await)
        .ctx("reading an incident")?;
        Ok(row.map(Incident::from))
    }

    /// The server's id of a node's incident, by the agent's incident id.
    pub async fn incident_of_agent(
        &self,
        node_id: i64,
        agent_incident_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, i64>(
            "SELECT id FROM incidents WHERE node_id = $1 AND agent_incident_id = $2",
        )
        .bind(node_id)
        .bind(agent_incident_id)
        .fetch_optional(p)
        .await)
        .ctx("finding an incident")
    }

    /// Incidents correlation may still group: open, or resolved within `window_ms`.
    pub async fn correlation_candidates(
        &self,
        window_ms: i64,
    ) -> Result<Vec<Candidate>, StoreError> {
        let since = now_ms() - window_ms;
        let rows: Vec<CandidateRow> = on!(&self.read, p =>
            sqlx::query_as(
                "SELECT id, tenant_id, node_id, target, metric, family, started_ms, state, correlation_id FROM incidents \
                 WHERE state = 'open' OR resolved_ms >= $1 ORDER BY id",
            )
            .bind(since)
            .fetch_all(p)
            .await)
        .ctx("reading correlation candidates")?;
        Ok(rows
            .into_iter()
            .map(|r| Candidate {
                id: r.id,
                tenant_id: r.tenant_id,
                node_id: r.node_id,
                target: r.target,
                metric: r.metric,
                family: r.family,
                started_ms: r.started_ms,
                open: r.state == "open",
                correlation_id: r.correlation_id,
            })
            .collect())
    }

    pub async fn open_correlations(&self) -> Result<Vec<OpenGroup>, StoreError> {
        let rows: Vec<(i64, i64, String, String, i64)> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, tenant_id, reason, key, started_ms FROM correlations WHERE state = 'open' ORDER BY id",
        )
        .fetch_all(p)
        .await)
        .ctx("reading open correlations")?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant_id, reason, key, started_ms)| OpenGroup {
                id,
                tenant_id,
                reason,
                key,
                started_ms,
            })
            .collect())
    }

    /// A new correlated incident with its first members; returns its id.
    pub async fn create_correlation(
        &self,
        tenant_id: i64,
        reason: &str,
        key: &str,
        started_ms: i64,
        members: &[i64],
    ) -> Result<i64, StoreError> {
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO correlations (tenant_id, reason, key, state, started_ms) VALUES ($1, $2, $3, 'open', $4) RETURNING id",
            )
            .bind(tenant_id)
            .bind(reason)
            .bind(key)
            .bind(started_ms)
            .fetch_one(&mut *tx)
            .await
            .ctx("creating a correlation")?;
            for m in members {
                sqlx::query("UPDATE incidents SET correlation_id = $1 WHERE id = $2 AND tenant_id = $3 AND correlation_id IS NULL")
                    .bind(id)
                    .bind(*m)
                    .bind(tenant_id)
                    .execute(&mut *tx)
                    .await
                    .ctx("joining a correlation")?;
            }
            tx.commit().await.ctx("committing a correlation")?;
            Ok(id)
        })
    }

    pub async fn join_correlation(
        &self,
        tenant_id: i64,
        correlation_id: i64,
        incident_id: i64,
    ) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query(
            "UPDATE incidents SET correlation_id = $1 WHERE id = $2 AND tenant_id = $3 AND correlation_id IS NULL",
        )
        .bind(correlation_id)
        .bind(incident_id)
        .bind(tenant_id)
        .execute(p)
        .await.map(|r| r.rows_affected()))
        .ctx("joining a correlation")?;
        Ok(())
    }

    /// Resolves open correlations none of whose members is open; returns (tenant, id) of each.
    pub async fn close_correlations(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        on!(&self.write, p => sqlx::query_as::<_, (i64, i64)>(
            "UPDATE correlations SET state = 'resolved', resolved_ms = $1 WHERE state = 'open' AND NOT EXISTS \
             (SELECT 1 FROM incidents i WHERE i.correlation_id = correlations.id AND i.state = 'open') \
             RETURNING tenant_id, id",
        )
        .bind(now_ms())
        .fetch_all(p)
        .await)
        .ctx("closing correlations")
    }

    /// Correlated incidents of a tenant (newest first), with members.
    pub async fn correlations(
        &self,
        tenant_id: i64,
        limit: i64,
    ) -> Result<Vec<Correlation>, StoreError> {
        let rows: Vec<CorrelationRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, reason, key, state, started_ms, resolved_ms FROM correlations WHERE tenant_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant_id)
        .bind(limit)
        .fetch_all(p)
        .await)
        .ctx("listing correlations")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.with_members(tenant_id, r).await?);
        }
        Ok(out)
    }

    pub async fn correlation(
        &self,
        tenant_id: i64,
        id: i64,
    ) -> Result<Option<Correlation>, StoreError> {
        let row: Option<CorrelationRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, reason, key, state, started_ms, resolved_ms FROM correlations WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("reading a correlation")?;
        match row {
            Some(r) => Ok(Some(self.with_members(tenant_id, r).await?)),
            None => Ok(None),
        }
    }

    async fn with_members(
        &self,
        tenant_id: i64,
        r: CorrelationRow,
    ) -> Result<Correlation, StoreError> {
        let sql = format!(
            "{INCIDENT_SELECT} WHERE i.tenant_id = $1 AND i.correlation_id = $2 ORDER BY i.id"
        );
        let members: Vec<IncidentRow> = on!(&self.read, p => sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(r.id)
            .fetch_all(p)
            .await)
        .ctx("reading correlation members")?;
        Ok(Correlation {
            id: r.id,
            reason: r.reason,
            key: r.key,
            state: r.state,
            started_at: rfc3339_millis(r.started_ms),
            resolved_at: ts_opt(r.resolved_ms),
            members: members.into_iter().map(Incident::from).collect(),
        })
    }

    /// Mitigations of a tenant, most recently changed first.
    pub async fn mitigations(
        &self,
        tenant_id: i64,
        node_id: Option<i64>,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Mitigation>, StoreError> {
        let rows: Vec<MitigationRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, node_id, mitigation_id, incident_id, executor, rule, state, created_ms, updated_ms FROM mitigations \
             WHERE tenant_id = $1 AND ($2 IS NULL OR node_id = $2) AND ($3 IS NULL OR state = $3) \
             ORDER BY updated_ms DESC, id DESC LIMIT $4",
        )
        .bind(tenant_id)
        .bind(node_id)
        .bind(state)
        .bind(limit)
        .fetch_all(p)
        .await)
        .ctx("listing mitigations")?;
        Ok(rows.into_iter().map(Mitigation::from).collect())
    }

    pub async fn mitigation(
        &self,
        tenant_id: i64,
        id: i64,
    ) -> Result<Option<Mitigation>, StoreError> {
        let row: Option<MitigationRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, node_id, mitigation_id, incident_id, executor, rule, state, created_ms, updated_ms FROM mitigations \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)
        .ctx("reading a mitigation")?;
        Ok(row.map(Mitigation::from))
    }
}
