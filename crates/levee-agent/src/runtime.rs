//! The agent's loop: every tick, read the counters, feed the detector, emit what
//! it says, and keep the baseline snapshot fresh. Stops cleanly (snapshot saved,
//! `agent_stopped` emitted) when the stop flag is raised.
//!
//! Timing lives here and only here: the detector sees the timestamps carried by
//! observations, never a clock.

use crate::config::AgentConfig;
use crate::sink::{EventSink, SinkError};
use crate::state::{StateDir, StateError, Unusable};
use crate::visibility::Visibility;
use levee_detector::{Detector, DetectorOutput};
use levee_model::{Event, EventBody, TickObservation};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What one read of the counters yields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickResult {
    /// Rates since the previous read; `None` on the first read.
    pub obs: Option<TickObservation>,
    /// Interfaces renamed since the previous read: (old, new).
    pub renames: Vec<(String, String)>,
    /// Interfaces present in this read.
    pub interfaces: Vec<String>,
    /// Sources that failed this read: (source, error). The others still count.
    pub errors: Vec<(String, String)>,
}

/// The seam between the loop and the kernel: real counters in production, a
/// script in tests, a recording in a replay.
pub trait TickSource {
    fn tick(&mut self) -> TickResult;
}

/// Watches the loop: every event emitted and every tick's rates (with the
/// detector, for its baselines). Used to feed the uplink to the server.
/// Implementations must return at once (hand over to a channel): the loop
/// never waits for them.
pub trait Observer {
    fn event(&mut self, _event: &Event) {}
    fn tick(&mut self, _obs: &TickObservation, _detector: &Detector) {}
    /// The loop has ended (after `agent_stopped`).
    fn stopped(&mut self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
}

pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A random seed for incident ids, from the standard library's per-process keys.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(unix_now_ms() as u64);
    h.finish()
}

pub struct Agent {
    cfg: AgentConfig,
    detector: Detector,
    sink: EventSink,
    state: StateDir,
    source: Box<dyn TickSource>,
    stop: Arc<AtomicBool>,
    /// Raised by SIGHUP: re-read the indicator lists.
    reload: Option<Arc<AtomicBool>>,
    /// The packet sampler's view (disabled unless [`Agent::with_visibility`]).
    vis: Visibility,
    /// The last error text per source, so a persistent failure is one event, not ten a second.
    last_errors: Vec<(String, String)>,
    /// On-node mitigation (off unless [`Agent::with_mitigation`]).
    mitigation: Option<levee_mitigate::MitigationEngine>,
    /// Network mitigation: BGP FlowSpec/RTBH (off unless [`Agent::with_bgp`]).
    bgp: Option<levee_bgp::engine::BgpEngine>,
    observers: Vec<Box<dyn Observer>>,
}

impl Agent {
    pub fn new(
        cfg: AgentConfig,
        source: Box<dyn TickSource>,
        sink: EventSink,
        stop: Arc<AtomicBool>,
        seed: u64,
    ) -> Result<Self, RunError> {
        let state = StateDir::open(&cfg.state_dir)?;
        let detector = Detector::new(cfg.detector.clone(), seed);
        let vis = Visibility::disabled(cfg.capture.clone(), &cfg.state_dir);
        Ok(Agent {
            cfg,
            detector,
            sink,
            state,
            source,
            stop,
            reload: None,
            vis,
            last_errors: Vec::new(),
            mitigation: None,
            bgp: None,
            observers: Vec::new(),
        })
    }

    /// Mitigates incidents on this node: applies rules when one starts,
    /// keeps them while it lasts, removes them when it ends; reconciles the
    /// kernel at start and removes everything at stop.
    pub fn with_mitigation(mut self, engine: levee_mitigate::MitigationEngine) -> Self {
        self.mitigation = Some(engine);
        self
    }

    /// Mitigates in the network: every incident event feeds the BGP
    /// escalation engine (rules announced as the rate grows, withdrawn on
    /// resolve or TTL lapse); the tick expires rules; stop withdraws all.
    pub fn with_bgp(mut self, engine: levee_bgp::engine::BgpEngine) -> Self {
        self.bgp = Some(engine);
        self
    }

    /// Runs one BGP engine call and emits its events.
    fn network(
        &mut self,
        now: i64,
        call: impl FnOnce(&mut levee_bgp::engine::BgpEngine, i64) -> Vec<EventBody>,
    ) -> Result<(), RunError> {
        let Some(engine) = self.bgp.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let events = call(engine, now);
        let ts = now + t0.elapsed().as_millis() as i64;
        for e in events {
            self.emit(ts, e)?;
        }
        Ok(())
    }

    /// Emits an incident event and hands it to the BGP engine.
    fn emit_incident(&mut self, now: i64, body: EventBody) -> Result<(), RunError> {
        let copy = self.bgp.is_some().then(|| body.clone());
        self.emit(now, body)?;
        match copy {
            Some(b) => self.network(now, |e, t| e.on_event(&b, t)),
            None => Ok(()),
        }
    }

    /// Runs one mitigation call and emits its events, stamped `now` plus the
    /// time the call took (the rules were in place by then).
    fn mitigate(
        &mut self,
        now: i64,
        call: impl FnOnce(&mut levee_mitigate::MitigationEngine, i64) -> Vec<EventBody>,
    ) -> Result<(), RunError> {
        let Some(engine) = self.mitigation.as_mut() else {
            return Ok(());
        };
        let t0 = Instant::now();
        let events = call(engine, now);
        let ts = now + t0.elapsed().as_millis() as i64;
        for e in events {
            self.emit(ts, e)?;
        }
        Ok(())
    }

    /// Adds an observer of events and ticks (e.g. the uplink to the server).
    pub fn with_observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Classifies incidents with the packet sampler's view.
    pub fn with_visibility(mut self, vis: Visibility) -> Self {
        self.vis = vis;
        self
    }

    /// A flag (raised by SIGHUP) that makes the loop re-read the indicator lists.
    pub fn with_reload_flag(mut self, reload: Arc<AtomicBool>) -> Self {
        self.reload = Some(reload);
        self
    }

    fn reload_iocs(&mut self) -> Result<(), RunError> {
        let Some(report) = self.vis.reload_iocs() else {
            tracing::info!("SIGHUP: no indicator lists configured");
            return Ok(());
        };
        for l in &report.lists {
            match &l.outcome {
                levee_ioc::ListOutcome::Loaded(p) => {
                    tracing::info!(list = %l.name, "indicator list reloaded: {p}")
                }
                levee_ioc::ListOutcome::KeptPrevious { error, kept } => {
                    let text = format!("{error}; keeping the previous {kept} indicators");
                    tracing::warn!(list = %l.name, "{text}");
                    self.emit(
                        unix_now_ms(),
                        EventBody::SourceError {
                            source_name: format!("indicator list {}", l.name),
                            error: text,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, unix_ms: i64, body: EventBody) -> Result<(), RunError> {
        let ev = Event::new(unix_ms, self.cfg.node.clone(), body);
        self.sink.emit(&ev)?;
        for o in &mut self.observers {
            o.event(&ev);
        }
        Ok(())
    }

    /// Loads the saved baseline; returns the per-second samples restored.
    fn restore(&mut self) -> u64 {
        match self
            .state
            .load_snapshot(unix_now_ms(), self.cfg.snapshot_max_age)
        {
            Ok(None) => 0,
            Ok(Some(snap)) => match self.detector.restore(&snap) {
                Ok(r) => {
                    tracing::info!(
                        series = r.series,
                        samples = r.max_samples,
                        "baseline restored"
                    );
                    r.max_samples
                }
                Err(e) => {
                    tracing::warn!("{e}; learning afresh");
                    0
                }
            },
            Err(Unusable::Stale { age }) => {
                tracing::warn!(
                    "baseline snapshot is {} old (snapshot_max_age {}); learning afresh",
                    humantime::format_duration(Duration::from_secs(age.as_secs())),
                    humantime::format_duration(self.cfg.snapshot_max_age)
                );
                0
            }
            Err(Unusable::Corrupt { moved_to, reason }) => {
                tracing::warn!(
                    "baseline snapshot unreadable ({reason}); moved to {}; learning afresh",
                    moved_to.display()
                );
                0
            }
        }
    }

    fn save(&mut self) {
        if let Err(e) = self
            .state
            .save_snapshot(&self.detector.snapshot(unix_now_ms()))
        {
            // Losing a snapshot costs relearning after a restart, not detection now.
            tracing::warn!("{e}");
        }
    }

    fn handle(&mut self, mut r: TickResult) -> Result<(), RunError> {
        let now = r.obs.as_ref().map_or_else(unix_now_ms, |o| o.unix_ms);
        r.errors.extend(self.vis.errors());
        for (source, error) in &r.errors {
            let known = self
                .last_errors
                .iter()
                .any(|(s, e)| s == source && e == error);
            if !known {
                tracing::warn!(source = %source, "{error}");
                self.emit(
                    now,
                    EventBody::SourceError {
                        source_name: source.clone(),
                        error: error.clone(),
                    },
                )?;
            }
        }
        self.last_errors = r.errors;
        for (old, new) in &r.renames {
            tracing::info!("interface {old} renamed to {new}; its baseline follows");
            self.detector.rename_interface(old, new);
        }
        if let Some(obs) = r.obs {
            for out in self.detector.observe(&obs) {
                self.on_output(obs.unix_ms, out)?;
            }
            for o in &mut self.observers {
                o.tick(&obs, &self.detector);
            }
        }
        self.vis.rotate(now);
        self.network(now, |b, t| b.tick(t))?;
        self.mitigate(now, |m, t| m.tick(t))
    }

    /// Emits one detector output, classified by the packet view.
    fn on_output(&mut self, now: i64, out: DetectorOutput) -> Result<(), RunError> {
        match out {
            DetectorOutput::BaselineReady { series } => {
                self.emit(now, EventBody::BaselineReady { series })
            }
            DetectorOutput::Started(mut i) => {
                let pcap = self.vis.started(&mut i, now);
                let to_mitigate = self.mitigation.is_some().then(|| i.clone());
                self.emit_incident(now, EventBody::IncidentStarted(i))?;
                if let Some(i) = to_mitigate {
                    self.mitigate(now, |m, t| m.on_incident_started(&i, t))?;
                }
                // After the event: the capture file is evidence, not detection.
                if let Some(job) = pcap {
                    match self.vis.write_pcap(&job) {
                        Ok(sum) => tracing::info!(
                            path = %job.path.display(),
                            frames = sum.frames,
                            "incident pcap written"
                        ),
                        Err(e) => self.emit(
                            now,
                            EventBody::SourceError {
                                source_name: "incident pcap".into(),
                                error: format!("{e} (the incident continues without it)"),
                            },
                        )?,
                    }
                }
                Ok(())
            }
            DetectorOutput::Updated(mut i) => {
                let change = self.vis.updated(&mut i);
                self.emit_incident(now, EventBody::IncidentUpdated(i))?;
                match change {
                    Some(c) => self.emit(now, c),
                    None => Ok(()),
                }
            }
            DetectorOutput::Resolved(mut info, summary) => {
                self.vis.resolved(&mut info);
                let id = info.incident_id.clone();
                self.emit_incident(now, EventBody::IncidentResolved { info, summary })?;
                self.mitigate(now, |m, t| m.on_incident_resolved(&id, t))
            }
        }
    }

    /// Runs until the stop flag is raised (then parks are cut short by an unpark
    /// of this thread), or `max_ticks` reads when given (tests, replays).
    pub fn run(mut self, max_ticks: Option<u64>) -> Result<(), RunError> {
        let restored = self.restore();
        let first = self.source.tick();
        self.emit(
            unix_now_ms(),
            EventBody::AgentStarted {
                version: env!("CARGO_PKG_VERSION").to_string(),
                tick_ms: self.cfg.tick.as_millis() as u64,
                baseline_warmup_s: self.cfg.baseline_warmup.as_secs(),
                restored_samples: restored,
                interfaces: first.interfaces.clone(),
            },
        )?;
        // Rules a previous run left behind (crash, SIGKILL) go first.
        self.mitigate(unix_now_ms(), |m, t| m.reconcile(t))?;
        self.handle(first)?;
        let mut ticker = crate::ticker::Ticker::new(self.cfg.tick);
        let mut last_save = Instant::now();
        let mut ticks = 1u64;
        let reason = loop {
            if max_ticks.is_some_and(|m| ticks >= m) {
                break "tick limit";
            }
            if !ticker.wait(&self.stop) {
                break "signal";
            }
            if self
                .reload
                .as_ref()
                .is_some_and(|f| f.swap(false, Ordering::SeqCst))
            {
                self.reload_iocs()?;
            }
            let r = self.source.tick();
            self.handle(r)?;
            ticks += 1;
            if last_save.elapsed() >= self.cfg.snapshot_interval {
                self.save();
                last_save = Instant::now();
            }
        };
        self.save();
        // The capture threads watch the same flag; raising it is harmless
        // when the loop ended on its tick limit.
        self.stop.store(true, Ordering::SeqCst);
        let vis = std::mem::replace(
            &mut self.vis,
            Visibility::disabled(self.cfg.capture.clone(), &self.cfg.state_dir),
        );
        vis.join();
        self.mitigate(unix_now_ms(), |m, t| m.shutdown(t))?;
        self.network(unix_now_ms(), |b, t| b.shutdown(t))?;
        self.emit(
            unix_now_ms(),
            EventBody::AgentStopped {
                reason: reason.to_string(),
            },
        )?;
        for o in &mut self.observers {
            o.stopped();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use levee_model::InterfaceRates;

    /// Replays scripted rates with synthetic timestamps 100 ms apart.
    struct Script {
        rates: Vec<f64>,
        i: usize,
    }

    impl TickSource for Script {
        fn tick(&mut self) -> TickResult {
            let i = self.i;
            self.i += 1;
            let obs = (i > 0).then(|| TickObservation {
                unix_ms: 1_795_225_450_000 + i as i64 * 100,
                dt: 0.1,
                interfaces: vec![InterfaceRates {
                    name: "eth0".into(),
                    rx_pps: self.rates.get(i).copied().unwrap_or(0.0),
                    ..Default::default()
                }],
                ..Default::default()
            });
            let errors = if i == 3 || i == 4 {
                vec![("/proc/net/snmp".into(), "gone".into())]
            } else {
                vec![]
            };
            TickResult {
                obs,
                interfaces: vec!["eth0".into()],
                errors,
                ..Default::default()
            }
        }
    }

    fn run(dir: &std::path::Path, rates: Vec<f64>, warmup_s: u64) -> Vec<serde_json::Value> {
        run_with(dir, rates, warmup_s, None)
    }

    fn run_with(
        dir: &std::path::Path,
        rates: Vec<f64>,
        warmup_s: u64,
        mitigation: Option<levee_mitigate::MitigationEngine>,
    ) -> Vec<serde_json::Value> {
        run_full(dir, rates, warmup_s, mitigation, None)
    }

    fn run_full(
        dir: &std::path::Path,
        rates: Vec<f64>,
        warmup_s: u64,
        mitigation: Option<levee_mitigate::MitigationEngine>,
        bgp: Option<levee_bgp::engine::BgpEngine>,
    ) -> Vec<serde_json::Value> {
        let o = Overrides {
            tick: Some(Duration::from_millis(100)),
            baseline_warmup: Some(Duration::from_secs(warmup_s)),
            quiet_period: Some(Duration::from_secs(1)),
            state_dir: Some(dir.to_path_buf()),
            node: Some("t".into()),
            ..Default::default()
        };
        let cfg = AgentConfig::from_parts(None, None, &o).unwrap();
        let n = rates.len() as u64;
        let sink = EventSink::open(&cfg.events_file, None).unwrap();
        let agent = Agent::new(
            cfg,
            Box::new(Script { rates, i: 0 }),
            sink,
            Arc::new(AtomicBool::new(false)),
            5,
        )
        .unwrap();
        let agent = match mitigation {
            Some(m) => agent.with_mitigation(m),
            None => agent,
        };
        let agent = match bgp {
            Some(b) => agent.with_bgp(b),
            None => agent,
        };
        agent.run(Some(n)).unwrap();
        std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn kinds(evs: &[serde_json::Value]) -> Vec<String> {
        evs.iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }

    /// The BGP hook: incident events reach the engine, whose decisions are
    /// emitted right after them. These scripted incidents are on an
    /// interface with no packet view, so the engine refuses, saying why.
    #[test]
    fn incidents_reach_the_bgp_engine() {
        let dir = tempfile::tempdir().unwrap();
        let runner = levee_mitigate::runner::ScriptedRunner::new();
        let speaker =
            levee_bgp::speaker::gobgp::GoBgp::new(Box::new(runner.clone()), "gobgp", None);
        let mut cfg = levee_bgp::config::BgpConfig {
            enabled: true,
            origin_as: 64500,
            prefixes: vec!["10.0.0.0/24".parse().unwrap()],
            ..Default::default()
        };
        cfg.thresholds.rate_limit = levee_bgp::config::Bps(1);
        let engine = levee_bgp::engine::BgpEngine::new(cfg, Box::new(speaker));
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        rates.extend(vec![3_000.0; 20]);
        let evs = run_full(dir.path(), rates, 2, None, Some(engine));
        let k = kinds(&evs);
        let started = k.iter().position(|e| e == "incident_started").unwrap();
        assert_eq!(k[started + 1], "mitigation_failed", "{k:?}");
        let f = &evs[started + 1];
        assert_eq!(f["executor"], "gobgp");
        assert!(
            f["error"]
                .as_str()
                .unwrap()
                .contains("names no attacked address"),
            "{f}"
        );
        assert!(runner.lines().is_empty(), "nothing announced");
    }

    /// The mitigation hook: reconcile at start, rules with the incident,
    /// removal at its end, each as events in order.
    #[test]
    fn incidents_are_mitigated_through_the_hook() {
        use levee_mitigate::testing::Fake;
        let dir = tempfile::tempdir().unwrap();
        let nft = Fake::new(levee_mitigate::ExecutorKind::Nftables);
        nft.k()
            .leftovers
            .push((uuid::Uuid::from_u128(7), "rule of a dead agent".into()));
        let host = levee_mitigate::host::HostInfo {
            addresses: vec![levee_mitigate::host::HostAddr {
                interface: "eth0".into(),
                addr: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                scope: "global".into(),
            }],
            gateways: vec![],
        };
        let cfg = levee_mitigate::MitigationConfig {
            enabled: true,
            ..Default::default()
        };
        let engine = levee_mitigate::MitigationEngine::new(
            cfg,
            host,
            vec![Box::new(nft.clone())],
            None,
            Default::default(),
        )
        .unwrap();
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        rates.extend(vec![3_000.0; 20]);
        let evs = run_with(dir.path(), rates, 2, Some(engine));
        let k = kinds(&evs);
        let pos = |e: &str| {
            k.iter()
                .position(|x| x == e)
                .unwrap_or_else(|| panic!("no {e} in {k:?}"))
        };
        assert!(pos("agent_started") < pos("mitigation_reconciled"));
        assert!(pos("incident_started") < pos("mitigation_previewed"));
        assert!(pos("mitigation_previewed") < pos("mitigation_applied"));
        assert!(pos("incident_resolved") < pos("mitigation_rolled_back"));
        let applied = &evs[pos("mitigation_applied")];
        assert_eq!(
            applied["incident_id"],
            evs[pos("incident_started")]["incident_id"]
        );
        assert_eq!(applied["executor"], "nftables");
        assert!(nft.k().applied.is_empty(), "rules removed at resolve");
        assert!(nft.k().leftovers.is_empty(), "leftovers reconciled");
    }

    #[test]
    fn lifecycle_is_logged_and_baseline_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        // 3 s of 3 kpps (warm-up 2 s), 2 s flood, 2 s calm.
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        rates.extend(vec![3_000.0; 20]);
        let evs = run(dir.path(), rates, 2);
        let k = kinds(&evs);
        assert_eq!(k.first().map(String::as_str), Some("agent_started"));
        assert_eq!(
            k.iter().filter(|e| *e == "source_error").count(),
            1,
            "a repeated error is one event"
        );
        for want in [
            "baseline_ready",
            "incident_started",
            "incident_updated",
            "incident_resolved",
        ] {
            assert!(k.iter().any(|e| e == want), "no {want} in {k:?}");
        }
        assert_eq!(k.last().map(String::as_str), Some("agent_stopped"));
        assert!(evs
            .iter()
            .all(|e| e["node"] == "t" && e["ts"].as_str().unwrap().ends_with('Z')));
        assert_eq!(evs[0]["restored_samples"], 0);

        // Second run on the same state dir: the baseline comes back.
        let evs2 = run(dir.path(), vec![3_000.0; 5], 2);
        let started = evs2
            .iter()
            .rev()
            .find(|e| e["event"] == "agent_started")
            .unwrap();
        // Two clean seconds were learnt; the flood's seconds were kept out.
        assert_eq!(started["restored_samples"], 2, "{started}");
        assert!(
            kinds(&evs2).iter().any(|e| e == "baseline_ready"),
            "warm at once after restore"
        );
    }

    #[derive(Default)]
    struct Seen {
        events: Vec<String>,
        ticks: usize,
        thresholds_known: usize,
        stopped: bool,
    }

    struct Recorder(Arc<std::sync::Mutex<Seen>>);

    impl Observer for Recorder {
        fn event(&mut self, e: &Event) {
            self.0.lock().unwrap().events.push(e.to_json_line());
        }
        fn tick(&mut self, obs: &TickObservation, d: &Detector) {
            let mut s = self.0.lock().unwrap();
            s.ticks += 1;
            let key = levee_model::SeriesKey::new(
                levee_model::Target::Interface(obs.interfaces[0].name.clone()),
                levee_model::Metric::RxPps,
            );
            if d.threshold_of(&key).is_some() {
                s.thresholds_known += 1;
            }
        }
        fn stopped(&mut self) {
            self.0.lock().unwrap().stopped = true;
        }
    }

    #[test]
    fn observers_see_every_event_and_tick() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            tick: Some(Duration::from_millis(100)),
            baseline_warmup: Some(Duration::from_secs(1)),
            state_dir: Some(dir.path().to_path_buf()),
            node: Some("t".into()),
            ..Default::default()
        };
        let cfg = AgentConfig::from_parts(None, None, &o).unwrap();
        let sink = EventSink::open(&cfg.events_file, None).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let agent = Agent::new(
            cfg,
            Box::new(Script {
                rates: vec![3_000.0; 40],
                i: 0,
            }),
            sink,
            Arc::new(AtomicBool::new(false)),
            5,
        )
        .unwrap()
        .with_observer(Box::new(Recorder(seen.clone())));
        agent.run(Some(40)).unwrap();
        let s = seen.lock().unwrap();
        let log: Vec<String> = std::fs::read_to_string(dir.path().join("events.jsonl"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(s.events, log, "the observer sees exactly what is logged");
        assert_eq!(
            s.ticks, 39,
            "every tick with rates (the first read has none)"
        );
        assert!(
            s.thresholds_known > 0,
            "baselines are visible through the detector"
        );
        assert!(s.stopped);
    }
}
