//! Singleton jobs and per-replica cache refreshes.
//!
//! Every replica refreshes its caches (pending commands, policy versions)
//! each `jobs_interval`. The jobs that must run once per deployment —
//! node liveness (`node_offline` / `node_online` events), correlation,
//! downsampling and retention — run only on the leader: with SQLite the
//! one server; with PostgreSQL the replica holding a session advisory lock
//! ([`Leadership`]). If the leader dies its connection closes, the lock is
//! released and another replica takes over within one interval.

use crate::correlate::{correlate, Decision, Settings};
use crate::store::{now_ms, Store, StoreError};
use crate::AppState;
use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The advisory lock id of the jobs leader ("LEVEEJOB" in ASCII).
pub const LEADER_LOCK: i64 = 0x4C45_5645_454A_4F42;

/// Whether this replica is the leader.
pub enum Leadership {
    /// SQLite: one server per database, always the leader.
    Always,
    /// PostgreSQL: leader while this connection holds the advisory lock.
    Pg {
        pool: sqlx::PgPool,
        held: Option<PgConnection>,
    },
}

impl Leadership {
    pub fn new(store: &Store) -> Self {
        match store.pg_pool() {
            Some(pool) => Leadership::Pg {
                pool: pool.clone(),
                held: None,
            },
            None => Leadership::Always,
        }
    }

    /// Checks (and tries to take) leadership.
    pub async fn check(&mut self) -> bool {
        let Leadership::Pg { pool, held } = self else {
            return true;
        };
        if let Some(conn) = held {
            if conn.ping().await.is_ok() {
                return true;
            }
            tracing::warn!("lost the jobs leader connection; contending again");
            *held = None;
        }
        let attempt = async {
            let mut conn = pool.acquire().await?.detach();
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK)
                .fetch_one(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(got.then_some(conn))
        };
        match attempt.await {
            Ok(Some(conn)) => {
                tracing::info!("this replica is now the jobs leader");
                *held = Some(conn);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("leader election: {e}");
                false
            }
        }
    }

    /// Gives up leadership (closing the connection releases the lock).
    pub async fn release(&mut self) {
        if let Leadership::Pg { held, .. } = self {
            if let Some(conn) = held.take() {
                let _ = conn.close().await;
            }
        }
    }
}

/// Reloads the per-replica caches from the database.
pub async fn refresh_caches(state: &AppState) -> Result<(), StoreError> {
    let pending = state.store.nodes_with_pending_commands().await?;
    let versions = state.store.policy_versions().await?;
    *state
        .pending_commands
        .write()
        .unwrap_or_else(|e| e.into_inner()) = pending.into_iter().collect();
    *state
        .policy_versions
        .write()
        .unwrap_or_else(|e| e.into_inner()) = versions
        .into_iter()
        .map(|(t, v)| (t, v.max(0) as u64))
        .collect();
    Ok(())
}

/// Marks nodes offline after `heartbeat_timeout` without contact (and back
/// online when they return), with a `node_offline` / `node_online` event each.
pub async fn liveness(state: &AppState) -> Result<usize, StoreError> {
    let now = now_ms();
    let stale_before = now - state.cfg.heartbeat_timeout.as_millis() as i64;
    let changes = state.store.liveness_changes(stale_before).await?;
    for c in &changes {
        state.store.set_online(c.node_id, c.online).await?;
        let kind = if c.online {
            "node_online"
        } else {
            "node_offline"
        };
        tracing::info!(node = %c.node, tenant = c.tenant_id, "{kind}");
        let mut fields = serde_json::Map::new();
        fields.insert("node_id".into(), json!(c.node_id));
        fields.insert(
            "last_seen".into(),
            json!(levee_model::timefmt::rfc3339_millis(c.last_seen_ms)),
        );
        state
            .store
            .server_event(c.tenant_id, Some(c.node_id), &c.node, kind, now, fields)
            .await?;
    }
    Ok(changes.len())
}

/// One correlation pass; returns the decisions applied.
pub async fn correlation(state: &AppState) -> Result<Vec<Decision>, StoreError> {
    let c = &state.cfg.correlation;
    let settings = Settings {
        window_ms: c.window.as_millis() as i64,
        ipv4_prefix: c.ipv4_prefix,
        ipv6_prefix: c.ipv6_prefix,
    };
    let candidates = state
        .store
        .correlation_candidates(settings.window_ms)
        .await?;
    let groups = state.store.open_correlations().await?;
    let decisions = correlate(&candidates, &groups, &settings);
    let now = now_ms();
    for d in &decisions {
        match d {
            Decision::Join {
                tenant_id,
                group,
                incident,
            } => {
                state
                    .store
                    .join_correlation(*tenant_id, *group, *incident)
                    .await?
            }
            Decision::Create {
                tenant_id,
                reason,
                key,
                started_ms,
                members,
            } => {
                let id = state
                    .store
                    .create_correlation(*tenant_id, reason.name(), key, *started_ms, members)
                    .await?;
                let mut fields = serde_json::Map::new();
                fields.insert("correlation_id".into(), json!(id));
                fields.insert("reason".into(), json!(reason.name()));
                fields.insert("key".into(), json!(key));
                fields.insert("members".into(), json!(members));
                state
                    .store
                    .server_event(
                        *tenant_id,
                        None,
                        "server",
                        "correlation_started",
                        now,
                        fields,
                    )
                    .await?;
            }
        }
    }
    for (tenant_id, id) in state.store.close_correlations().await? {
        let mut fields = serde_json::Map::new();
        fields.insert("correlation_id".into(), json!(id));
        state
            .store
            .server_event(
                tenant_id,
                None,
                "server",
                "correlation_resolved",
                now,
                fields,
            )
            .await?;
    }
    Ok(decisions)
}

/// The downsampling watermark: minutes before it are in `metrics_1m`.
const WATERMARK: &str = "downsample_1m";
/// Minutes are downsampled this long after they end (late telemetry).
const GRACE_S: i64 = 120;
/// At most this many seconds per downsampling statement.
const STEP_S: i64 = 3600;

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub minute_rows: u64,
    pub raw_deleted: u64,
    pub minute_deleted: u64,
    pub events_deleted: u64,
}

/// Downsamples finished minutes and applies retention, as of `now_s`.
pub async fn maintain(state: &AppState, now_s: i64) -> Result<Maintenance, StoreError> {
    let store = &state.store;
    let mut m = Maintenance::default();
    let end = (now_s - GRACE_S).div_euclid(60) * 60;
    let mut from = match store.job_value(WATERMARK).await? {
        Some(w) => w,
        None => match store.oldest_raw_metric().await? {
            Some(oldest) => oldest.div_euclid(60) * 60,
            None => end,
        },
    };
    while from < end {
        let to = (from + STEP_S).min(end);
        m.minute_rows += store.downsample(from, to).await?;
        store.set_job_value(WATERMARK, to).await?;
        from = to;
    }
    let r = &state.cfg.retention;
    // Never drop raw seconds that have not been downsampled yet.
    let raw_before = (now_s - r.raw.as_secs() as i64).min(from);
    let minute_before = now_s - r.minute.as_secs() as i64;
    (m.raw_deleted, m.minute_deleted) = store.expire_metrics(raw_before, minute_before).await?;
    m.events_deleted = store
        .expire_events(now_s * 1000 - r.events.as_millis() as i64)
        .await?;
    Ok(m)
}

fn log_err<T>(what: &str, r: Result<T, StoreError>) -> Option<T> {
    r.map_err(|e| tracing::error!("{what}: {e}")).ok()
}

/// The jobs loop of one replica, until `stop` becomes true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut lead = Leadership::new(&state.store);
    let mut tick = tokio::time::interval(state.cfg.jobs_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_maintenance: Option<Instant> = None;
    let mut last_shrink = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
        log_err("refreshing caches", refresh_caches(&state).await);
        let leader = lead.check().await;
        state.metrics.leader.set(leader as i64);
        state
            .leader
            .store(leader, std::sync::atomic::Ordering::Release);
        if leader {
            log_err("node liveness", liveness(&state).await);
            log_err("correlation", correlation(&state).await);
            if last_maintenance.is_none_or(|t| t.elapsed() >= state.cfg.retention.interval) {
                last_maintenance = Some(Instant::now());
                if let Some(m) = log_err(
                    "downsampling and retention",
                    maintain(&state, now_ms() / 1000).await,
                ) {
                    tracing::debug!(?m, "maintenance");
                }
            }
        }
        if let Some((online, offline)) = log_err("counting nodes", state.store.node_counts().await)
        {
            state.metrics.nodes_online.set(online);
            state.metrics.nodes_offline.set(offline);
        }
        if last_shrink.elapsed() >= Duration::from_secs(60) {
            state.limiter.shrink();
            last_shrink = Instant::now();
        }
    }
    state
        .leader
        .store(false, std::sync::atomic::Ordering::Release);
    lead.release().await;
}
