//! The event log: agent events (deduplicated by node and event id) with their
//! effects on incidents and mitigations, and events the server makes itself.

use super::{now_ms, on, Ctx, Store, StoreError};
use crate::ingest::effects::{effect_of, Effect};
use crate::model::StoredEvent;
use levee_model::timefmt::rfc3339_millis;
use levee_proto::EventEnvelope;
use uuid::Uuid;

/// Counts of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u32,
    pub duplicates: u32,
}

/// A filter for [`Store::events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub node_id: Option<i64>,
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    /// Only events with a smaller row id (paging backwards).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    event_id: String,
    node_id: Option<i64>,
    ts_ms: i64,
    kind: String,
    body: String,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        StoredEvent {
            id: r.id,
            event_id: r.event_id,
            node_id: r.node_id,
            ts: rfc3339_millis(r.ts_ms),
            kind: r.kind,
            body: serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (tenant_id, node_id, event_id, ts_ms, kind, incident_id, body, received_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, node_id, event_id) DO NOTHING RETURNING id";

const UPSERT_INCIDENT: &str = "INSERT INTO incidents (tenant_id, node_id, agent_incident_id, target, metric, family, \
     confidence, state, started_ms, updated_ms, resolved_ms, value, baseline, peak, total_packets, total_bytes, last_event) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (node_id, agent_incident_id) DO UPDATE SET \
       target = excluded.target, metric = excluded.metric, \
       family = CASE WHEN incidents.family IS NULL OR COALESCE(excluded.confidence, 0) >= COALESCE(incidents.confidence, 0) \
         THEN COALESCE(excluded.family, incidents.family) ELSE incidents.family END, \
       confidence = CASE WHEN incidents.confidence IS NULL OR COALESCE(excluded.confidence, 0) >= incidents.confidence \
         THEN COALESCE(excluded.confidence, incidents.confidence) ELSE incidents.confidence END, \
       state = CASE WHEN incidents.state = 'resolved' THEN 'resolved' ELSE excluded.state END, \
       updated_ms = CASE WHEN excluded.updated_ms > incidents.updated_ms THEN excluded.updated_ms ELSE incidents.updated_ms END, \
       resolved_ms = COALESCE(incidents.resolved_ms, excluded.resolved_ms), \
       value = excluded.value, baseline = excluded.baseline, \
       peak = CASE WHEN excluded.peak > incidents.peak THEN excluded.peak ELSE incidents.peak END, \
       total_packets = COALESCE(excluded.total_packets, incidents.total_packets), \
       total_bytes = COALESCE(excluded.total_bytes, incidents.total_bytes), \
       last_event = excluded.last_event";

const UPSERT_MITIGATION: &str =
    "INSERT INTO mitigations (tenant_id, node_id, mitigation_id, incident_id, executor, rule, \
     state, created_ms, updated_ms, last_event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
     ON CONFLICT (node_id, mitigation_id) DO UPDATE SET \
       incident_id = COALESCE(excluded.incident_id, mitigations.incident_id), \
       executor = COALESCE(excluded.executor, mitigations.executor), \
       rule = COALESCE(excluded.rule, mitigations.rule), \
       state = excluded.state, updated_ms = excluded.updated_ms, last_event = excluded.last_event";

impl Store {
    /// Stores a node's events in order, each once (by event id), applying
    /// their effects, in one transaction; the node's name is the one of its key.
    pub async fn ingest_events(
        &self,
        tenant_id: i64,
        node_id: i64,
        node: &str,
        events: &[EventEnvelope],
    ) -> Result<Ingested, StoreError> {
        let now = now_ms();
        let mut counts = Ingested::default();
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            for e in events {
                let mut e = e.clone();
                e.node = node.to_string();
                let body = serde_json::to_string(&e).unwrap_or_default();
                let ts_ms = e.ts_ms().unwrap_or(now);
                let stored: Option<i64> = sqlx::query_scalar(INSERT_EVENT)
                    .bind(tenant_id)
                    .bind(node_id)
                    .bind(e.event_id.to_string())
                    .bind(ts_ms)
                    .bind(e.event.as_str())
                    .bind(e.str_field("incident_id"))
                    .bind(&body)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .ctx("storing an event")?;
                if stored.is_none() {
                    counts.duplicates += 1;
                    continue;
                }
                counts.accepted += 1;
                match effect_of(&e) {
                    Some(Effect::Incident(i)) => {
                        sqlx::query(UPSERT_INCIDENT)
                            .bind(tenant_id)
                            .bind(node_id)
                            .bind(&i.agent_incident_id)
                            .bind(&i.target)
                            .bind(&i.metric)
                            .bind(&i.family)
                            .bind(i.confidence)
                            .bind(if i.resolved { "resolved" } else { "open" })
                            .bind(i.started_ms)
                            .bind(i.updated_ms)
                            .bind(i.resolved.then_some(i.updated_ms))
                            .bind(i.value)
                            .bind(i.baseline)
                            .bind(i.peak)
                            .bind(i.total_packets)
                            .bind(i.total_bytes)
                            .bind(&body)
                            .execute(&mut *tx)
                            .await
                            .ctx("recording an incident")?;
                    }
                    Some(Effect::Mitigation(m)) => {
                        sqlx::query(UPSERT_MITIGATION)
                            .bind(tenant_id)
                            .bind(node_id)
                            .bind(&m.mitigation_id)
                            .bind(&m.incident_id)
                            .bind(&m.executor)
                            .bind(&m.rule)
                            .bind(&m.state)
                            .bind(m.ts_ms)
                            .bind(&body)
                            .execute(&mut *tx)
                            .await
                            .ctx("recording a mitigation")?;
                    }
                    None => {}
                }
            }
            tx.commit().await.ctx("committing events")?;
            Ok(counts)
        })
    }

    /// An event the server makes (e.g. `node_offline`), in the agents' format.
    pub async fn server_event(
        &self,
        tenant_id: i64,
        node_id: Option<i64>,
        node: &str,
        kind: &str,
        ts_ms: i64,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let env = EventEnvelope {
            event_id: Uuid::now_v7(),
            ts: rfc3339_millis(ts_ms),
            node: node.to_string(),
            event: kind.to_string(),
            fields,
        };
        let body = serde_json::to_string(&env).unwrap_or_default();
        on!(&self.write, p => sqlx::query(INSERT_EVENT)
            .bind(tenant_id)
            .bind(node_id)
            .bind(env.event_id.to_string())
            .bind(ts_ms)
            .bind(kind)
            .bind(env.str_field("incident_id"))
            .bind(&body)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .ctx("storing a server event")?;
        Ok(())
    }

    /// Events of a tenant, newest first.
    pub async fn events(
        &self,
        tenant_id: i64,
        f: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = on!(&self.read, p => sqlx::query_as(
            "SELECT id, event_id, node_id, ts_ms, kind, body FROM events WHERE tenant_id = $1 \
             AND ($2 IS NULL OR node_id = $2) AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR ts_ms >= $4) \
             AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        )
        .bind(tenant_id)
        .bind(f.node_id)
        .bind(f.kind.as_deref())
        .bind(f.since_ms)
        .bind(f.before_id)
        .bind(f.limit)
        .fetch_all(p)
        .await)
        .ctx("listing events")?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// Deletes events older than `before_ms`; returns how many.
    pub async fn expire_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        on!(&self.write, p => sqlx::query("DELETE FROM events WHERE ts_ms < $1").bind(before_ms).execute(p).await.map(|r| r.rows_affected()))
            .ctx("expiring events")
    }
}
