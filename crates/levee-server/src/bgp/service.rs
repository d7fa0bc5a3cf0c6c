//! The leader's BGP loop: one engine per `[[bgp.tenant]]`, fed the
//! tenant's incident events from the events table (so events ingested by
//! any replica reach it), its output stored as the tenant's events.
//!
//! - Only the jobs leader runs engines ([`crate::AppInner::leader`]). On
//!   becoming leader (and at start) an engine is fed the tenant's open
//!   incidents updated within the rule TTL, so their rules are announced
//!   again; on losing leadership or at shutdown it withdraws everything.
//! - Every `poll_interval` it reads the tenant's incident events past its
//!   cursor; every second it ticks the engines (TTL lapse, ROA reload),
//!   applies a changed tuning, serves withdraw requests and snapshots the
//!   status for `GET /api/v1/bgp`.
//! - Engine output (`mitigation_*` with executor = the speaker, refusals
//!   with their reason) is stored with node `server`: the server, not an
//!   agent, acted.

use super::config::TenantBgp;
use super::status::{self, EngineStatus};
use super::tuning::{effective, BgpTuning};
use super::worker::EngineHandle;
use crate::store::{now_ms, StoreError};
use crate::AppState;
use levee_model::EventBody;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Rows read per query.
const BATCH: i64 = 1000;

/// Builds every configured engine (loads ROAs, opens audit logs): a
/// blocking call, made once at start; an error names the tenant.
pub fn build_engines(
    tenants: &[TenantBgp],
    data_dir: &std::path::Path,
) -> Result<Vec<TenantEngine>, String> {
    let mut out = Vec::new();
    for t in tenants.iter().filter(|t| t.bgp.enabled) {
        let dir = t.state_dir(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "[[bgp.tenant]] {}: creating {}: {e}",
                t.tenant,
                dir.display()
            )
        })?;
        let engine = levee_bgp::system::build(&t.bgp, &dir)
            .map_err(|e| format!("[[bgp.tenant]] {}: {e}", t.tenant))?;
        let te = TenantEngine::with_engine(t.clone(), engine)
            .map_err(|e| format!("[[bgp.tenant]] {}: starting its thread: {e}", t.tenant))?;
        out.push(te);
    }
    Ok(out)
}

/// Reads ids past a cursor, tolerating rows that commit late.
///
/// PostgreSQL hands out ids at insert and several replicas commit in
/// any order, so an id below one already read can still appear. The
/// cursor re-reads a trailing window (`lag`) and skips ids it has seen.
/// SQLite (one writer) commits in id order: `lag` zero.
#[derive(Debug)]
pub struct Cursor {
    floor: i64,
    seen: BTreeSet<i64>,
    history: VecDeque<(Instant, i64)>,
    lag: Duration,
}

impl Cursor {
    pub fn new(start: i64, lag: Duration) -> Cursor {
        Cursor {
            floor: start,
            seen: BTreeSet::new(),
            history: VecDeque::new(),
            lag,
        }
    }

    /// Where the next read starts (exclusive).
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// Whether `id` is new (and remembers it).
    pub fn take(&mut self, id: i64) -> bool {
        id > self.floor && self.seen.insert(id)
    }

    /// After a read at `now`: moves the floor to the highest id seen at
    /// least `lag` ago.
    pub fn settle(&mut self, now: Instant) {
        let top = self.seen.last().copied().unwrap_or(self.floor);
        self.history.push_back((now, top));
        while let Some(&(at, id)) = self.history.front() {
            if now.duration_since(at) < self.lag {
                break;
            }
            self.floor = self.floor.max(id);
            self.history.pop_front();
        }
        let floor = self.floor;
        self.seen.retain(|i| *i > floor);
    }
}

/// One tenant's engine and where the leader loop is with it.
pub struct TenantEngine {
    pub entry: TenantBgp,
    handle: EngineHandle,
    tenant_id: Option<i64>,
    active: bool,
    cursor: Cursor,
    tuning_version: i64,
    withdraw_done: i64,
    /// Incidents withdrawn through the API: their later events are ignored.
    suppressed: HashSet<String>,
    last_error: Option<String>,
}

impl TenantEngine {
    /// `engine` (built for `entry`) on its own thread; for [`run`].
    pub fn with_engine(
        entry: TenantBgp,
        engine: levee_bgp::engine::BgpEngine,
    ) -> std::io::Result<Self> {
        let handle = EngineHandle::spawn(&entry.tenant, engine)?;
        Ok(TenantEngine::new(entry, handle))
    }

    fn new(entry: TenantBgp, handle: EngineHandle) -> Self {
        TenantEngine {
            entry,
            handle,
            tenant_id: None,
            active: false,
            cursor: Cursor::new(0, Duration::ZERO),
            tuning_version: -1,
            withdraw_done: 0,
            suppressed: HashSet::new(),
            last_error: None,
        }
    }

    fn name(&self) -> &str {
        &self.entry.tenant
    }

    /// Stores engine output as the tenant's events (node `server`).
    async fn emit(&mut self, state: &AppState, out: Vec<EventBody>) -> Result<(), StoreError> {
        let Some(tid) = self.tenant_id else {
            return Ok(());
        };
        for ev in out {
            match &ev {
                EventBody::MitigationFailed { error, .. } => self.last_error = Some(error.clone()),
                EventBody::SourceError { error, .. } => self.last_error = Some(error.clone()),
                _ => {}
            }
            let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(&ev) else {
                continue;
            };
            let kind = match fields.remove("event") {
                Some(serde_json::Value::String(k)) => k,
                _ => continue,
            };
            state
                .store
                .server_event(tid, None, "server", &kind, now_ms(), fields)
                .await?;
        }
        Ok(())
    }

    /// Becomes the tenant's announcing engine (this replica leads).
    async fn activate(&mut self, state: &AppState) -> Result<(), StoreError> {
        let store = &state.store;
        let Some(tenant) = store.tenant_by_name(self.name()).await? else {
            let e = format!(
                "no tenant named `{}`: create it, or fix `tenant` of this [[bgp.tenant]]",
                self.name()
            );
            if self.last_error.as_deref() != Some(e.as_str()) {
                tracing::warn!("BGP: {e}");
                self.last_error = Some(e);
            }
            return Ok(());
        };
        let tid = tenant.id;
        self.tenant_id = Some(tid);
        // The cursor first: an event arriving while the open incidents are
        // read is then fed twice at worst (the engine takes rates idempotently).
        let lag = match store.backend() {
            crate::Backend::Sqlite => Duration::ZERO,
            crate::Backend::Postgres => Duration::from_secs(5),
        };
        self.cursor = Cursor::new(store.last_event_id(tid).await?, lag);
        let row = store.bgp_row(tid).await?;
        self.withdraw_done = row.withdraw_requested;
        self.tuning_version = -1;
        self.apply_tuning(&row.tuning, row.tuning_version).await;
        let since = now_ms() - self.entry.bgp.ttl.as_millis() as i64;
        let open: Vec<EventBody> = store
            .open_incident_events(tid, since)
            .await?
            .iter()
            .filter_map(|b| parse(b))
            .filter(|ev| incident_id(ev).is_none_or(|i| !self.suppressed.contains(i)))
            .collect();
        let n = open.len();
        let out = self
            .handle
            .call(move |e| {
                open.iter()
                    .flat_map(|ev| e.on_event(ev, now_ms()))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        self.active = true;
        tracing::info!(
            tenant = self.name(),
            open_incidents = n,
            "BGP engine announcing"
        );
        let mut fields = serde_json::Map::new();
        fields.insert("open_incidents".into(), n.into());
        fields.insert(
            "speaker".into(),
            serde_json::to_value(self.entry.bgp.speaker.kind).unwrap_or_default(),
        );
        store
            .server_event(tid, None, "server", "bgp_engine_started", now_ms(), fields)
            .await?;
        self.emit(state, out).await?;
        self.write_status(state).await
    }

    /// Withdraws everything and stops announcing (leadership lost, stop).
    async fn deactivate(&mut self, state: &AppState, reason: &'static str) {
        self.active = false;
        let out = self
            .handle
            .call(move |e| e.withdraw_everything(now_ms(), reason))
            .await
            .unwrap_or_default();
        tracing::info!(
            tenant = self.name(),
            withdrawn = out.len(),
            "BGP engine stopped: {reason}"
        );
        if let Err(e) = self.emit(state, out).await {
            tracing::warn!("BGP {}: storing withdrawals: {e}", self.name());
        }
        if let Err(e) = self.write_status(state).await {
            tracing::warn!("BGP {}: {e}", self.name());
        }
    }

    async fn apply_tuning(&mut self, tuning: &str, version: i64) {
        if version == self.tuning_version {
            return;
        }
        self.tuning_version = version;
        let parsed: Result<BgpTuning, String> =
            serde_json::from_str(tuning).map_err(|e| e.to_string());
        let cfg = match parsed.and_then(|t| {
            effective(&self.entry.bgp, &t).map_err(|p| {
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }) {
            Ok(c) => c,
            Err(e) => {
                // E.g. the operator lowered max_rules under the stored value.
                self.last_error = Some(format!(
                    "the tenant's BGP tuning no longer fits the operator's settings ({e}); using the operator's thresholds until it is set again"
                ));
                self.entry.bgp.clone()
            }
        };
        self.handle
            .call(move |e| e.retune(cfg.thresholds, cfg.profiles, cfg.max_rules))
            .await;
    }

    /// New incident events past the cursor, fed in order.
    async fn poll(&mut self, state: &AppState) -> Result<bool, StoreError> {
        let Some(tid) = self.tenant_id else {
            return Ok(false);
        };
        let mut after = self.cursor.floor();
        let mut fed = Vec::new();
        loop {
            let rows = state.store.incident_events_after(tid, after, BATCH).await?;
            let full = rows.len() as i64 == BATCH;
            for (id, body) in &rows {
                if !self.cursor.take(*id) {
                    continue;
                }
                let Some(ev) = parse(body) else {
                    tracing::warn!(
                        tenant = self.name(),
                        id,
                        "BGP: unreadable incident event skipped"
                    );
                    continue;
                };
                if let Some(inc) = incident_id(&ev) {
                    if self.suppressed.contains(inc) {
                        if matches!(ev, EventBody::IncidentResolved { .. }) {
                            self.suppressed.remove(inc);
                        }
                        continue;
                    }
                }
                fed.push(ev);
            }
            match rows.last() {
                Some((id, _)) if full => after = *id,
                _ => break,
            }
        }
        self.cursor.settle(Instant::now());
        if fed.is_empty() {
            return Ok(false);
        }
        let out = self
            .handle
            .call(move |e| {
                fed.iter()
                    .flat_map(|ev| e.on_event(ev, now_ms()))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        let changed = !out.is_empty();
        self.emit(state, out).await?;
        Ok(changed)
    }

    /// Once a second: TTL lapse and ROA reloads, tuning, withdraw requests.
    async fn tick(&mut self, state: &AppState) -> Result<(), StoreError> {
        let Some(tid) = self.tenant_id else {
            return Ok(());
        };
        let out = self
            .handle
            .call(|e| e.tick(now_ms()))
            .await
            .unwrap_or_default();
        self.emit(state, out).await?;
        let row = state.store.bgp_row(tid).await?;
        self.apply_tuning(&row.tuning, row.tuning_version).await;
        if row.withdraw_requested > self.withdraw_done {
            let (out, incidents) = self
                .handle
                .call(|e| {
                    let ids: Vec<String> = e.incidents().map(|(id, _, _)| id.to_string()).collect();
                    (
                        e.withdraw_everything(now_ms(), "withdrawn through the API"),
                        ids,
                    )
                })
                .await
                .unwrap_or_default();
            let rules = out
                .iter()
                .filter(|e| matches!(e, EventBody::MitigationRolledBack { .. }))
                .count();
            self.suppressed.extend(incidents.iter().cloned());
            self.emit(state, out).await?;
            let mut fields = serde_json::Map::new();
            fields.insert("request".into(), row.withdraw_requested.into());
            fields.insert("rules".into(), rules.into());
            fields.insert("incidents".into(), incidents.into());
            state
                .store
                .server_event(tid, None, "server", "bgp_withdrawn", now_ms(), fields)
                .await?;
            self.withdraw_done = row.withdraw_requested;
        }
        self.write_status(state).await
    }

    async fn write_status(&mut self, state: &AppState) -> Result<(), StoreError> {
        let Some(tid) = self.tenant_id else {
            return Ok(());
        };
        let (live, incidents) = self
            .handle
            .call(|e| status::snapshot(e))
            .await
            .unwrap_or_default();
        let s = EngineStatus {
            running: self.active,
            live,
            incidents,
            last_error: self.last_error.clone(),
        };
        let json = serde_json::to_string(&s).unwrap_or_default();
        state
            .store
            .set_bgp_status(tid, &json, self.withdraw_done)
            .await
    }
}

fn parse(body: &str) -> Option<EventBody> {
    serde_json::from_str::<levee_model::Event>(body)
        .ok()
        .map(|e| e.body)
}

fn incident_id(ev: &EventBody) -> Option<&str> {
    match ev {
        EventBody::IncidentStarted(i) | EventBody::IncidentUpdated(i) => Some(&i.incident_id),
        EventBody::IncidentResolved { info, .. } => Some(&info.incident_id),
        _ => None,
    }
}

/// The loop, until `stop`; then every active engine withdraws.
pub async fn run(state: AppState, mut engines: Vec<TenantEngine>, mut stop: watch::Receiver<bool>) {
    if engines.is_empty() {
        return;
    }
    let poll = state.cfg.bgp.poll_interval;
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
        if *stop.borrow() {
            break;
        }
        let leader = state.leader.load(Ordering::Acquire);
        let tick = last_tick.elapsed() >= Duration::from_secs(1);
        if tick {
            last_tick = Instant::now();
        }
        for t in &mut engines {
            if !leader {
                if t.active {
                    t.deactivate(&state, "this server is no longer the jobs leader")
                        .await;
                }
                continue;
            }
            let r = async {
                if !t.active {
                    if !tick {
                        return Ok(());
                    }
                    t.activate(&state).await?;
                    if !t.active {
                        return Ok(());
                    }
                }
                let changed = t.poll(&state).await?;
                if tick {
                    t.tick(&state).await?;
                } else if changed {
                    t.write_status(&state).await?;
                }
                Ok::<(), StoreError>(())
            }
            .await;
            if let Err(e) = r {
                tracing::error!("BGP {}: {e}", t.name());
                t.last_error = Some(e.to_string());
            }
        }
    }
    for t in &mut engines {
        if t.active {
            t.deactivate(&state, "server stopping").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_without_lag_moves_past_what_it_read() {
        let mut c = Cursor::new(10, Duration::ZERO);
        assert!(!c.take(10), "the start is exclusive");
        assert!(c.take(11) && c.take(14));
        assert!(!c.take(11), "once each");
        c.settle(Instant::now());
        assert_eq!(c.floor(), 14);
    }

    #[test]
    fn cursor_with_lag_rereads_the_window_and_catches_late_commits() {
        let t0 = Instant::now();
        let mut c = Cursor::new(0, Duration::from_secs(5));
        assert!(c.take(1) && c.take(3));
        c.settle(t0);
        assert_eq!(c.floor(), 0, "the window is re-read");
        // Id 2 commits after 3 was read: still taken, once.
        assert!(c.take(2));
        assert!(!c.take(3));
        c.settle(t0 + Duration::from_secs(1));
        c.settle(t0 + Duration::from_secs(6));
        assert_eq!(c.floor(), 3);
        assert!(!c.take(2));
    }
}
