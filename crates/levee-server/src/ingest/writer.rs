//! The telemetry group-commit writer: requests queue their rows; a writer
//! task takes everything queued, writes it in one transaction, and answers
//! each request when the transaction commits. No timer: under light load a
//! batch is one request, under heavy load batches grow by themselves.
//!
//! SQLite has one writer task (it allows one writer at a time anyway);
//! PostgreSQL several, so that one batch's round trips overlap another's
//! commit. A batch that loses a deadlock or serialization race (two batches
//! touching one node row) is retried once.

use crate::metrics::Metrics;
use crate::store::metrics::TelemetryWrite;
use crate::store::Store;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Queued requests beyond which callers wait (back-pressure, not memory growth).
const QUEUE: usize = 20_000;
/// Requests per transaction at most.
const MAX_BATCH: usize = 5_000;

struct Job {
    write: TelemetryWrite,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("telemetry writer stopped")]
    Stopped,
    #[error("{0}")]
    Store(String),
}

#[derive(Clone)]
pub struct TelemetryWriter {
    tx: mpsc::Sender<Job>,
}

impl TelemetryWriter {
    /// Starts `writers` writer tasks on the current runtime.
    pub fn spawn(
        store: Store,
        metrics: Arc<Metrics>,
        writers: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let tasks: Vec<_> = (0..writers.max(1))
            .map(|_| tokio::spawn(run(store.clone(), metrics.clone(), rx.clone())))
            .collect();
        let task = tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        });
        (TelemetryWriter { tx }, task)
    }

    /// Queues one node's rows and waits for their commit.
    pub async fn write(&self, write: TelemetryWrite) -> Result<(), WriteError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job { write, done })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Store)
    }
}

async fn run(
    store: Store,
    metrics: Arc<Metrics>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut writes = Vec::with_capacity(MAX_BATCH);
    loop {
        // Whoever holds the receiver takes what is queued; the others write meanwhile.
        if rx.lock().await.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        writes.extend(jobs.iter_mut().map(|j| std::mem::take(&mut j.write)));
        // Rows in node order: concurrent batches then mostly take node row
        // locks in the same order (the planner may still choose otherwise:
        // a lost deadlock is retried).
        writes.sort_by_key(|w| w.node_id);
        let started = Instant::now();
        let mut result = store.write_telemetry(&writes).await;
        if result.as_ref().is_err_and(|e| e.is_retryable()) {
            result = store.write_telemetry(&writes).await;
        }
        metrics
            .write_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.write_batch_nodes.observe(writes.len() as f64);
        let samples: usize = writes
            .iter()
            .map(|w| w.rows.iter().filter(|r| r.target == "host").count())
            .sum();
        let reply = match result {
            Ok(()) => {
                metrics.samples.inc_by(samples as u64);
                Ok(())
            }
            Err(e) => {
                tracing::error!("{e}");
                Err(e.to_string())
            }
        };
        for job in jobs.drain(..) {
            // A caller that gave up (client went away) is not an error.
            let _ = job.done.send(reply.clone());
        }
        writes.clear();
    }
}
