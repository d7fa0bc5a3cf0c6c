//! Metric time series: 1-second rows written in group commits, 1-minute rows
//! made by downsampling, range queries, retention.

use super::{on, Ctx, Store, StoreError};
use crate::model::{MetricPoint, Resolution};
use levee_model::timefmt::rfc3339_millis;
use levee_model::TickObservation;

/// The value columns, in table order.
pub const VALUE_COLS: [&str; 9] = [
    "rx_pps",
    "rx_bps",
    "tx_pps",
    "tx_bps",
    "tcp_pps",
    "udp_pps",
    "icmp_pps",
    "syn_recv",
    "connections",
];

/// One row of `metrics_1s`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub node_id: i64,
    pub target: String,
    /// Whole seconds since the epoch.
    pub ts: i64,
    pub values: [Option<f64>; 9],
}

/// The rows one per-second observation becomes: one per interface (rx/tx
/// rates) and one `host` row (interface sums, protocol rates, connections).
pub fn rows_of(node_id: i64, obs: &TickObservation) -> Vec<MetricRow> {
    let ts = obs.unix_ms.div_euclid(1000);
    let mut rows = Vec::with_capacity(obs.interfaces.len() + 1);
    let mut sum = [0.0f64; 4];
    for i in &obs.interfaces {
        let v = [i.rx_pps, i.rx_bps, i.tx_pps, i.tx_bps];
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
        rows.push(MetricRow {
            node_id,
            target: i.name.clone(),
            ts,
            values: [
                Some(v[0]),
                Some(v[1]),
                Some(v[2]),
                Some(v[3]),
                None,
                None,
                None,
                None,
                None,
            ],
        });
    }
    rows.push(MetricRow {
        node_id,
        target: "host".to_string(),
        ts,
        values: [
            Some(sum[0]),
            Some(sum[1]),
            Some(sum[2]),
            Some(sum[3]),
            Some(obs.tcp_pps),
            Some(obs.udp_pps),
            Some(obs.icmp_pps),
            obs.conns.map(|c| c.syn_recv as f64),
            obs.conns.map(|c| c.established as f64),
        ],
    });
    rows
}

/// One node's share of a group commit.
#[derive(Debug, Clone, Default)]
pub struct TelemetryWrite {
    pub node_id: i64,
    pub rows: Vec<MetricRow>,
    pub seen_ms: i64,
    /// New baselines (JSON), when the agent sent some.
    pub baselines: Option<String>,
    /// A heartbeat's updates, when this write is one.
    pub heartbeat: Option<super::nodes::HeartbeatWrite>,
}

/// Rows per INSERT statement (12 binds each: far below both dialects' limits).
const ROWS_PER_STATEMENT: usize = 1000;
/// Nodes per downsampling / retention statement.
pub const NODES_PER_STEP: i64 = 250;

#[derive(sqlx::FromRow)]
struct PointRow {
    target: String,
    ts: i64,
    rx_pps: Option<f64>,
    rx_bps: Option<f64>,
    tx_pps: Option<f64>,
    tx_bps: Option<f64>,
    tcp_pps: Option<f64>,
    udp_pps: Option<f64>,
    icmp_pps: Option<f64>,
    syn_recv: Option<f64>,
    connections: Option<f64>,
    rx_pps_max: Option<f64>,
    rx_bps_max: Option<f64>,
    samples: Option<i64>,
}

impl From<PointRow> for MetricPoint {
    fn from(r: PointRow) -> Self {
        MetricPoint {
            ts: rfc3339_millis(r.ts * 1000),
            target: r.target,
            rx_pps: r.rx_pps,
            rx_bps: r.rx_bps,
            tx_pps: r.tx_pps,
            tx_bps: r.tx_bps,
            tcp_pps: r.tcp_pps,
            udp_pps: r.udp_pps,
            icmp_pps: r.icmp_pps,
            syn_recv: r.syn_recv,
            connections: r.connections,
            rx_pps_max: r.rx_pps_max,
            rx_bps_max: r.rx_bps_max,
            samples: r.samples,
        }
    }
}

impl Store {
    /// Writes many nodes' telemetry and heartbeats in one transaction: metric
    /// rows (a replayed second is ignored), last contact, baselines, versions,
    /// command acknowledgements.
    pub async fn write_telemetry(&self, batch: &[TelemetryWrite]) -> Result<(), StoreError> {
        let rows: Vec<&MetricRow> = batch.iter().flat_map(|w| &w.rows).collect();
        on!(&self.write, p => {
            let mut tx = p.begin().await.ctx("starting a transaction")?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT).filter(|c| !c.is_empty()) {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO metrics_1s (node_id, target, ts, {}) ",
                    VALUE_COLS.join(", ")
                ));
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.node_id).push_bind(r.target.as_str()).push_bind(r.ts);
                    for v in r.values {
                        b.push_bind(v);
                    }
                });
                q.push(" ON CONFLICT (node_id, target, ts) DO NOTHING");
                q.build().execute(&mut *tx).await.ctx("writing metrics")?;
            }
            for chunk in batch.chunks(ROWS_PER_STATEMENT).filter(|c| !c.is_empty()) {
                // UPDATE ... FROM (VALUES ...): one statement for many nodes;
                // both dialects name the VALUES columns column1, column2.
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE nodes SET last_seen_ms = v.column2 FROM (",
                );
                q.push_values(chunk, |mut b, w| {
                    b.push_bind(w.node_id).push_bind(w.seen_ms);
                });
                q.push(") AS v WHERE nodes.id = v.column1");
                q.build().execute(&mut *tx).await.ctx("recording node contact")?;
            }
            for w in batch.iter().filter(|w| w.baselines.is_some()) {
                sqlx::query("UPDATE nodes SET baselines = $1 WHERE id = $2")
                    .bind(w.baselines.as_deref())
                    .bind(w.node_id)
                    .execute(&mut *tx)
                    .await
                    .ctx("recording baselines")?;
            }
            let beats: Vec<(&TelemetryWrite, &super::nodes::HeartbeatWrite)> =
                batch.iter().filter_map(|w| Some((w, w.heartbeat.as_ref()?))).collect();
            for chunk in beats.chunks(ROWS_PER_STATEMENT).filter(|c| !c.is_empty()) {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE nodes SET version = v.column2, interfaces = v.column3, queued_events = v.column4, \
                     policy_version = v.column5 FROM (",
                );
                q.push_values(chunk, |mut b, (_, hb)| {
                    b.push_bind(hb.node_id)
                        .push_bind(hb.version.as_str())
                        .push_bind(serde_json::to_string(&hb.interfaces).unwrap_or_else(|_| "[]".into()))
                        .push_bind(hb.queued_events.min(i64::MAX as u64) as i64)
                        .push_bind(hb.policy_version.min(i64::MAX as u64) as i64);
                });
                q.push(") AS v WHERE nodes.id = v.column1");
                q.build().execute(&mut *tx).await.ctx("recording heartbeats")?;
            }
            for (w, hb) in &beats {
                for r in &hb.command_results {
                    let mut msg = r.message.clone();
                    if msg.len() > levee_proto::command::MAX_RESULT_LEN {
                        let mut cut = levee_proto::command::MAX_RESULT_LEN;
                        while !msg.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        msg.truncate(cut);
                    }
                    sqlx::query("UPDATE commands SET acked_ms = COALESCE(acked_ms, $1), ok = $2, result = $3 \
                                 WHERE id = $4 AND node_id = $5 AND ok IS NULL")
                        .bind(w.seen_ms)
                        .bind(i64::from(r.ok))
                        .bind(msg)
                        .bind(r.id)
                        .bind(hb.node_id)
                        .execute(&mut *tx)
                        .await
                        .ctx("recording a command result")?;
                }
                for id in &hb.acked_commands {
                    sqlx::query("UPDATE commands SET acked_ms = $1 WHERE id = $2 AND node_id = $3 AND acked_ms IS NULL")
                        .bind(w.seen_ms)
                        .bind(*id)
                        .bind(hb.node_id)
                        .execute(&mut *tx)
                        .await
                        .ctx("acknowledging a command")?;
                }
            }
            tx.commit().await.ctx("committing telemetry")?;
            Ok(())
        })
    }

    /// Points of one node in `[from_s, to_s)`, oldest first, at most `limit`.
    pub async fn metric_points(
        &self,
        node_id: i64,
        resolution: Resolution,
        from_s: i64,
        to_s: i64,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        let cols = VALUE_COLS.join(", ");
        let sql = match resolution {
            Resolution::Second => format!(
                "SELECT target, ts, {cols}, CAST(NULL AS DOUBLE PRECISION) AS rx_pps_max, \
                 CAST(NULL AS DOUBLE PRECISION) AS rx_bps_max, CAST(NULL AS BIGINT) AS samples FROM metrics_1s"
            ),
            Resolution::Minute => format!("SELECT target, ts, {cols}, rx_pps_max, rx_bps_max, samples FROM metrics_1m"),
        } + " WHERE node_id = $1 AND ts >= $2 AND ts < $3 AND ($4 IS NULL OR target = $4) ORDER BY ts, target LIMIT $5";
        let rows: Vec<PointRow> = on!(&self.read, p => sqlx::query_as(&sql)
            .bind(node_id)
            .bind(from_s)
            .bind(to_s)
            .bind(target)
            .bind(limit)
            .fetch_all(p)
            .await)
        .ctx("reading metrics")?;
        Ok(rows.into_iter().map(MetricPoint::from).collect())
    }

    /// Averages the 1-second rows of `[from_s, to_s)` (whole minutes) into
    /// 1-minute rows; minutes already downsampled are left alone. Returns rows made.
    ///
    /// Works through the nodes [`NODES_PER_STEP`] at a time: each statement
    /// is short, so on SQLite the telemetry writer gets the write lock
    /// between steps instead of waiting for the whole minute of every node.
    pub async fn downsample(&self, from_s: i64, to_s: i64) -> Result<u64, StoreError> {
        let avgs: Vec<String> = VALUE_COLS.iter().map(|c| format!("AVG({c})")).collect();
        let sql = format!(
            "INSERT INTO metrics_1m (node_id, target, ts, {cols}, rx_pps_max, rx_bps_max, samples) \
             SELECT node_id, target, (ts / 60) * 60, {avgs}, MAX(rx_pps), MAX(rx_bps), COUNT(*) FROM metrics_1s \
             WHERE ts >= $1 AND ts < $2 AND node_id >= $3 AND node_id < $4 GROUP BY node_id, target, (ts / 60) * 60 \
             ON CONFLICT (node_id, target, ts) DO NOTHING",
            cols = VALUE_COLS.join(", "),
            avgs = avgs.join(", ")
        );
        let mut n = 0;
        for (lo, hi) in self.node_ranges().await? {
            n += on!(&self.write, p => sqlx::query(&sql).bind(from_s).bind(to_s).bind(lo).bind(hi).execute(p).await.map(|r| r.rows_affected()))
                .ctx("downsampling metrics")?;
        }
        Ok(n)
    }

    /// Node id ranges `[lo, hi)` covering every node, [`NODES_PER_STEP`] ids each.
    async fn node_ranges(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let max: i64 = on!(&self.read, p => sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM nodes")
            .fetch_one(p)
            .await)
        .ctx("reading the largest node id")?;
        Ok((0..=max / NODES_PER_STEP)
            .map(|k| (k * NODES_PER_STEP, (k + 1) * NODES_PER_STEP))
            .collect())
    }

    /// Deletes rows older than the cut-offs (seconds); returns (raw, minute) rows deleted.
    pub async fn expire_metrics(
        &self,
        raw_before_s: i64,
        minute_before_s: i64,
    ) -> Result<(u64, u64), StoreError> {
        let (mut raw, mut minute) = (0, 0);
        // In steps, like downsampling, so the writer is never held up long.
        for (lo, hi) in self.node_ranges().await? {
            raw += on!(&self.write, p => sqlx::query("DELETE FROM metrics_1s WHERE ts < $1 AND node_id >= $2 AND node_id < $3")
                .bind(raw_before_s).bind(lo).bind(hi).execute(p).await.map(|r| r.rows_affected()))
                .ctx("expiring 1-second metrics")?;
            minute += on!(&self.write, p => sqlx::query("DELETE FROM metrics_1m WHERE ts < $1 AND node_id >= $2 AND node_id < $3")
                .bind(minute_before_s).bind(lo).bind(hi).execute(p).await.map(|r| r.rows_affected()))
                .ctx("expiring 1-minute metrics")?;
        }
        Ok((raw, minute))
    }

    /// The oldest 1-second row's time, if any (where downsampling starts).
    pub async fn oldest_raw_metric(&self) -> Result<Option<i64>, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(ts) FROM metrics_1s").fetch_one(p).await)
            .ctx("reading the oldest metric")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::{ConnCounts, InterfaceRates};

    #[test]
    fn an_observation_becomes_interface_rows_and_a_host_row() {
        let obs = TickObservation {
            unix_ms: 1_795_225_450_999,
            dt: 1.0,
            interfaces: vec![
                InterfaceRates {
                    name: "eth0".into(),
                    rx_pps: 10.0,
                    rx_bps: 100.0,
                    ..Default::default()
                },
                InterfaceRates {
                    name: "eth1".into(),
                    rx_pps: 5.0,
                    tx_pps: 1.0,
                    ..Default::default()
                },
            ],
            tcp_pps: 7.0,
            conns: Some(ConnCounts {
                established: 3,
                syn_recv: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let rows = rows_of(9, &obs);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.ts == 1_795_225_450 && r.node_id == 9));
        assert_eq!(rows[0].target, "eth0");
        assert_eq!(
            rows[0].values[4], None,
            "protocol rates live on the host row"
        );
        let host = &rows[2];
        assert_eq!(host.target, "host");
        assert_eq!(host.values[0], Some(15.0));
        assert_eq!(host.values[2], Some(1.0));
        assert_eq!(host.values[4], Some(7.0));
        assert_eq!(host.values[7], Some(2.0));
        assert_eq!(host.values[8], Some(3.0));
    }
}
