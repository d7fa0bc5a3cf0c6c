//! The uplink thread: its own single-threaded tokio runtime, fed by the
//! agent through an unbounded channel ([`UplinkHandle`]), so the detection
//! loop never waits for the network.
//!
//! Tasks inside the runtime:
//! - intake: events go to the on-disk queue first, ticks to the fold buffer;
//! - events: sends the oldest queued events as soon as there are any, in
//!   order, one batch in flight, removing them when the server has stored
//!   them; on failure waits per the [`Link`] backoff;
//! - telemetry: every second, the ticks of that second folded into one
//!   sample; samples not delivered are kept (up to a minute) and resent;
//! - heartbeat: version, queue depth, policy version, acknowledged commands;
//! - pcaps: uploads of incident captures, retried until the server has them.
//!
//! Answers (commands, a newer policy) are saved (policy) and handed to the
//! agent through [`UplinkHandle::try_answer`].

use crate::client::{Client, ClientError};
use crate::creds::{Credentials, CredsError};
use crate::fold::fold;
use crate::link::{Backoff, Link, LinkEvent};
use crate::queue::{DiskQueue, QueueError, DEFAULT_CAP};
use levee_model::{Event, TickObservation};
use levee_proto::limits::{MAX_EVENTS_PER_BATCH, MAX_SAMPLES_PER_BATCH};
use levee_proto::{
    AgentAnswer, BaselineEntry, CommandResult, EventBatch, EventEnvelope, Heartbeat, Policy,
    TelemetryBatch,
};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// How the uplink runs.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    /// The agent's state dir: credentials, queue, saved policy, pending uploads.
    pub state_dir: PathBuf,
    /// Events the offline queue holds before dropping the oldest.
    pub queue_cap: usize,
    pub telemetry_interval: Duration,
    /// Default: what the server asked at enrollment.
    pub heartbeat_interval: Option<Duration>,
    pub request_timeout: Duration,
    pub backoff: Backoff,
    /// Events per request.
    pub max_batch: usize,
}

impl UplinkConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        UplinkConfig {
            state_dir: state_dir.into(),
            queue_cap: DEFAULT_CAP,
            telemetry_interval: Duration::from_secs(1),
            heartbeat_interval: None,
            request_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            max_batch: 200,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Creds(#[from] CredsError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("uplink client: {0}")]
    Client(#[from] ClientError),
    #[error("cannot start the uplink thread: {0}")]
    Thread(std::io::Error),
}

/// What the uplink has done so far (for logs, `levee up`, tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkStatus {
    pub link_up: bool,
    pub queued: u64,
    /// Dropped by the full queue and not yet reported.
    pub dropped_unreported: u64,
    pub events_delivered: u64,
    pub samples_delivered: u64,
    pub heartbeats: u64,
    pub pcaps_uploaded: u64,
    pub policy_version: u64,
    pub last_error: Option<String>,
}

enum Msg {
    Event(Box<Event>),
    Tick(TickObservation),
    Baselines(Vec<BaselineEntry>),
    Pcap(PendingPcap),
    Done(CommandResult),
    Stop(Duration),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingPcap {
    incident_id: String,
    path: PathBuf,
    #[serde(default)]
    attempts: u32,
}

const PCAPS_FILE: &str = "uplink-pcaps.json";
const POLICY_FILE: &str = "policy.json";
/// A capture the server keeps refusing (e.g. its incident never arrived) is given up after this.
const PCAP_MAX_ATTEMPTS: u32 = 30;

/// The agent's end of the uplink. Every method returns at once.
pub struct UplinkHandle {
    tx: mpsc::UnboundedSender<Msg>,
    answers: Mutex<std_mpsc::Receiver<AgentAnswer>>,
    status: Arc<Mutex<UplinkStatus>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for UplinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UplinkHandle")
            .field("status", &self.status())
            .finish()
    }
}

impl UplinkHandle {
    /// Queues an event for the server (on disk first, then sent at once).
    pub fn event(&self, event: &Event) {
        let _ = self.tx.send(Msg::Event(Box::new(event.clone())));
    }

    /// One tick's rates; folded into per-second telemetry.
    pub fn tick(&self, obs: &TickObservation) {
        let _ = self.tx.send(Msg::Tick(obs.clone()));
    }

    /// The detector's current baselines (sent with the next telemetry).
    pub fn baselines(&self, baselines: Vec<BaselineEntry>) {
        let _ = self.tx.send(Msg::Baselines(baselines));
    }

    /// Uploads a capture of an incident (retried until the server has it).
    pub fn upload_pcap(&self, incident_id: &str, path: &Path) {
        let _ = self.tx.send(Msg::Pcap(PendingPcap {
            incident_id: incident_id.to_string(),
            path: path.to_path_buf(),
            attempts: 0,
        }));
    }

    /// Reports what became of a command (sent with the next heartbeat,
    /// which also acknowledges it so the server stops sending it).
    pub fn command_done(&self, result: CommandResult) {
        let _ = self.tx.send(Msg::Done(result));
    }

    /// The next answer with commands or a new policy, if any.
    pub fn try_answer(&self) -> Option<AgentAnswer> {
        self.answers.lock().ok()?.try_recv().ok()
    }

    pub fn status(&self) -> UplinkStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the uplink, trying for up to `flush` to deliver queued events
    /// first (those not delivered stay on disk for the next start). Later
    /// calls on the handle do nothing.
    pub fn shutdown(&self, flush: Duration) {
        let _ = self.tx.send(Msg::Stop(flush));
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for UplinkHandle {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.thread).take() {
            let _ = self.tx.send(Msg::Stop(Duration::ZERO));
            let _ = t.join();
        }
    }
}

/// Starts uplinks.
pub struct Uplink;

impl Uplink {
    /// Loads the credentials and the queue from the state dir and starts
    /// the uplink thread.
    pub fn start(cfg: UplinkConfig) -> Result<UplinkHandle, UplinkError> {
        let creds = Credentials::load(&cfg.state_dir)?;
        Self::start_with(cfg, creds)
    }

    pub fn start_with(cfg: UplinkConfig, creds: Credentials) -> Result<UplinkHandle, UplinkError> {
        let (queue, loaded) = DiskQueue::open(&cfg.state_dir, cfg.queue_cap)?;
        if loaded.events > 0 {
            tracing::info!(
                "{} events from before the restart wait for the server",
                loaded.events
            );
        }
        let client = Client::pinned(
            &creds.server,
            creds.fingerprint,
            &creds.agent_key,
            cfg.request_timeout,
        )?;
        let policy_version = saved_policy(&cfg.state_dir).map(|p| p.version).unwrap_or(0);
        let status = Arc::new(Mutex::new(UplinkStatus {
            queued: queue.state().len() as u64,
            dropped_unreported: queue.state().dropped(),
            policy_version,
            ..Default::default()
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let (answers_tx, answers_rx) = std_mpsc::channel();
        let heartbeat = cfg.heartbeat_interval.unwrap_or(Duration::from_secs(
            creds.heartbeat_interval_s.clamp(1, 3600),
        ));
        let shared = Shared {
            queue: Mutex::new(queue),
            link: Mutex::new(Link::new(cfg.backoff)),
            status: status.clone(),
            wake: Notify::new(),
            ticks: Mutex::new(Vec::new()),
            baselines: Mutex::new(None),
            acks: Mutex::new(Vec::new()),
            interfaces: Mutex::new(Vec::new()),
            pcaps: Mutex::new(load_pcaps(&cfg.state_dir)),
            policy_version: Mutex::new(policy_version),
            answers: Mutex::new(answers_tx),
            client,
            cfg,
            heartbeat,
            started: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("levee-uplink".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("uplink runtime: {e}; events stay queued on disk");
                        return;
                    }
                };
                rt.block_on(run(Arc::new(shared), rx));
            })
            .map_err(UplinkError::Thread)?;
        Ok(UplinkHandle {
            tx,
            answers: Mutex::new(answers_rx),
            status,
            thread: Mutex::new(Some(thread)),
        })
    }
}

struct Shared {
    queue: Mutex<DiskQueue>,
    link: Mutex<Link>,
    status: Arc<Mutex<UplinkStatus>>,
    wake: Notify,
    ticks: Mutex<Vec<TickObservation>>,
    baselines: Mutex<Option<Vec<BaselineEntry>>>,
    acks: Mutex<Vec<CommandResult>>,
    interfaces: Mutex<Vec<String>>,
    pcaps: Mutex<Vec<PendingPcap>>,
    policy_version: Mutex<u64>,
    answers: Mutex<std_mpsc::Sender<AgentAnswer>>,
    client: Client,
    cfg: UplinkConfig,
    heartbeat: Duration,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn status(&self, f: impl FnOnce(&mut UplinkStatus)) {
        f(&mut lock(&self.status));
    }

    fn sync_queue_status(&self) {
        let (queued, dropped) = {
            let q = lock(&self.queue);
            (q.state().len() as u64, q.state().dropped())
        };
        self.status(|s| {
            s.queued = queued;
            s.dropped_unreported = dropped;
        });
    }

    /// Records the outcome of a request in the link state.
    fn outcome<T>(&self, r: &Result<T, ClientError>) {
        let mut link = lock(&self.link);
        match r {
            Ok(_) => link.on(LinkEvent::Success),
            Err(e) if e.retryable() => link.on(LinkEvent::Failure),
            // The server answered: the link works, the request did not.
            Err(_) => link.on(LinkEvent::Success),
        }
        let up = link.is_up();
        drop(link);
        self.status(|s| {
            s.link_up = up;
            if let Err(e) = r {
                s.last_error = Some(e.to_string());
            }
        });
    }

    fn apply_answer(&self, answer: AgentAnswer) {
        if let Some(policy) = &answer.policy {
            *lock(&self.policy_version) = policy.version;
            self.status(|s| s.policy_version = policy.version);
            if let Err(e) = save_json(&self.cfg.state_dir.join(POLICY_FILE), policy) {
                tracing::warn!("cannot save the policy: {e}");
            }
            tracing::info!(version = policy.version, "new policy from the server");
        }
        if !answer.commands.is_empty() || answer.policy.is_some() {
            let _ = lock(&self.answers).send(answer);
        }
    }

    async fn wait_for_link(&self, stop: &mut watch::Receiver<Option<Instant>>) -> bool {
        loop {
            let wait = lock(&self.link).wait();
            if wait.is_zero() {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return false,
            }
        }
    }
}

/// The last policy the server sent, as saved in the state dir (`None`:
/// never received, or unreadable).
pub fn saved_policy(dir: &Path) -> Option<Policy> {
    let text = std::fs::read_to_string(dir.join(POLICY_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn load_pcaps(dir: &Path) -> Vec<PendingPcap> {
    std::fs::read_to_string(dir.join(PCAPS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(value).expect("serialisable"),
    )?;
    std::fs::rename(&tmp, path)
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    // Some(deadline) once asked to stop: tasks finish by then.
    let (stop_tx, stop_rx) = watch::channel::<Option<Instant>>(None);
    let events = tokio::spawn(events_task(shared.clone(), stop_rx.clone()));
    let telemetry = tokio::spawn(telemetry_task(shared.clone(), stop_rx.clone()));
    let heartbeat = tokio::spawn(heartbeat_task(shared.clone(), stop_rx.clone()));
    let pcaps = tokio::spawn(pcap_task(shared.clone(), stop_rx.clone()));
    let mut flush = Duration::ZERO;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Event(e) => {
                let env = EventEnvelope::from_event(*e);
                if let Err(e) = lock(&shared.queue).push(env) {
                    tracing::error!("{e}");
                }
                shared.sync_queue_status();
                shared.wake.notify_one();
            }
            Msg::Tick(t) => {
                let mut names = lock(&shared.interfaces);
                if names.len() != t.interfaces.len()
                    || names.iter().zip(&t.interfaces).any(|(a, b)| *a != b.name)
                {
                    *names = t.interfaces.iter().map(|i| i.name.clone()).collect();
                }
                drop(names);
                lock(&shared.ticks).push(t);
            }
            Msg::Baselines(b) => *lock(&shared.baselines) = Some(b),
            Msg::Pcap(p) => {
                let mut list = lock(&shared.pcaps);
                list.push(p);
                if let Err(e) = save_json(&shared.cfg.state_dir.join(PCAPS_FILE), &*list) {
                    tracing::warn!("cannot save pending pcap uploads: {e}");
                }
            }
            Msg::Done(r) => lock(&shared.acks).push(r),
            Msg::Stop(d) => {
                flush = d;
                break;
            }
        }
    }
    let _ = stop_tx.send(Some(Instant::now() + flush));
    let tasks = [events, telemetry, heartbeat, pcaps];
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    // A request in flight may outlive the flush time; anything it carried is
    // still on disk and is sent again (the server deduplicates) next start.
    if tokio::time::timeout(flush + Duration::from_secs(1), futures_join(tasks))
        .await
        .is_err()
    {
        for a in aborts {
            a.abort();
        }
    }
}

async fn futures_join(tasks: [tokio::task::JoinHandle<()>; 4]) {
    for t in tasks {
        let _ = t.await;
    }
}

async fn events_task(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let max = shared.cfg.max_batch.clamp(1, MAX_EVENTS_PER_BATCH);
    loop {
        let stopping = *stop.borrow();
        if let Some(deadline) = stopping {
            if Instant::now() >= deadline || lock(&shared.queue).state().is_empty() {
                return;
            }
        }
        let (batch, last, dropped) = {
            let q = lock(&shared.queue);
            let (b, l) = q.state().batch(max);
            (b, l, q.state().dropped())
        };
        let Some(last) = last
            .filter(|_| !batch.is_empty())
            .or((dropped > 0).then_some(0))
        else {
            // Nothing to send: wait for an event or the stop signal.
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        if stopping.is_none() && !shared.wait_for_link(&mut stop).await {
            continue;
        }
        let n = batch.len();
        let r = shared
            .client
            .events(&EventBatch {
                events: batch,
                dropped,
            })
            .await;
        shared.outcome(&r);
        match r {
            Ok(_) => {
                let mut q = lock(&shared.queue);
                let done =
                    (if n > 0 { q.ack(last) } else { Ok(()) }).and_then(|_| q.reported(dropped));
                if let Err(e) = done {
                    tracing::error!("{e}");
                }
                drop(q);
                shared.status(|s| s.events_delivered += n as u64);
                shared.sync_queue_status();
            }
            Err(e) if e.status() == Some(400) => {
                // The server will never take this batch: keep the rest moving.
                tracing::error!("server refused {n} events ({e}); dropping them");
                let mut q = lock(&shared.queue);
                if let Err(e) = q.ack(last) {
                    tracing::error!("{e}");
                }
                drop(q);
                shared.sync_queue_status();
            }
            Err(e) => {
                if !e.retryable() {
                    tracing::error!("{e}");
                }
                if stopping.is_some() {
                    return; // no retries while stopping; the events stay on disk
                }
            }
        }
    }
}

async fn telemetry_task(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let mut tick = tokio::time::interval(shared.cfg.telemetry_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unsent: VecDeque<TickObservation> = VecDeque::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let ticks = std::mem::take(&mut *lock(&shared.ticks));
        if let Some(sample) = fold(&ticks) {
            unsent.push_back(sample);
            while unsent.len() > MAX_SAMPLES_PER_BATCH {
                unsent.pop_front();
            }
        }
        if unsent.is_empty() || !lock(&shared.link).may_try() {
            continue;
        }
        let baselines = lock(&shared.baselines).clone();
        let batch = TelemetryBatch {
            samples: unsent.iter().cloned().collect(),
            baselines: baselines.clone().unwrap_or_default(),
            policy_version: *lock(&shared.policy_version),
        };
        let r = shared.client.telemetry(&batch).await;
        shared.outcome(&r);
        match r {
            Ok(answer) => {
                let n = unsent.len() as u64;
                unsent.clear();
                if baselines.is_some() {
                    // Sent; only changes need sending again.
                    let mut b = lock(&shared.baselines);
                    if *b == baselines {
                        *b = None;
                    }
                }
                shared.status(|s| s.samples_delivered += n);
                shared.apply_answer(answer);
            }
            Err(e) if e.status() == Some(400) => {
                tracing::error!(
                    "server refused telemetry ({e}); dropping {} samples",
                    unsent.len()
                );
                unsent.clear();
            }
            Err(e) => tracing::debug!("telemetry: {e}"),
        }
    }
}

async fn heartbeat_task(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let mut tick = tokio::time::interval(shared.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !lock(&shared.link).may_try() {
            continue;
        }
        let acked = std::mem::take(&mut *lock(&shared.acks));
        let hb = Heartbeat {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: shared.started.elapsed().as_secs(),
            queued_events: lock(&shared.queue).state().len() as u64,
            policy_version: *lock(&shared.policy_version),
            acked_commands: acked.iter().map(|r| r.id).collect(),
            command_results: acked.clone(),
            interfaces: lock(&shared.interfaces).clone(),
        };
        let r = shared.client.heartbeat(&hb).await;
        shared.outcome(&r);
        match r {
            Ok(answer) => {
                shared.status(|s| s.heartbeats += 1);
                shared.apply_answer(answer);
            }
            Err(e) => {
                tracing::debug!("heartbeat: {e}");
                // Not delivered: send the acknowledgements next time.
                lock(&shared.acks).extend(acked);
            }
        }
    }
}

async fn pcap_task(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Instant>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let next = lock(&shared.pcaps).first().cloned();
        let Some(p) = next else { continue };
        // The incident must reach the server before its capture.
        if !lock(&shared.queue).state().is_empty() || !lock(&shared.link).may_try() {
            continue;
        }
        let keep = match tokio::fs::read(&p.path).await {
            Err(e) => {
                tracing::warn!(
                    "cannot read capture {} of incident {}: {e}; not uploading it",
                    p.path.display(),
                    p.incident_id
                );
                false
            }
            Ok(data) => {
                let r = shared.client.upload_pcap(&p.incident_id, data).await;
                shared.outcome(&r);
                match r {
                    Ok(()) => {
                        shared.status(|s| s.pcaps_uploaded += 1);
                        false
                    }
                    Err(e) if e.retryable() => true,
                    Err(e) => {
                        tracing::warn!("pcap upload of incident {}: {e}", p.incident_id);
                        p.attempts + 1 < PCAP_MAX_ATTEMPTS
                    }
                }
            }
        };
        let mut list = lock(&shared.pcaps);
        if let Some(first) = list
            .first_mut()
            .filter(|f| f.incident_id == p.incident_id && f.path == p.path)
        {
            if keep {
                first.attempts += 1;
                // Move it to the back so one stuck capture does not block the others.
                let f = list.remove(0);
                list.push(f);
            } else {
                list.remove(0);
            }
        }
        if let Err(e) = save_json(&shared.cfg.state_dir.join(PCAPS_FILE), &*list) {
            tracing::warn!("cannot save pending pcap uploads: {e}");
        }
    }
}
