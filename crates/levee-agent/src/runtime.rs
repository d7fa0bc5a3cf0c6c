//! The agent's loop: every tick, read the counters, feed the detector, emit what
//! it says, and keep the baseline snapshot fresh. Stops cleanly (snapshot saved,
//! `agent_stopped` emitted) when the stop flag is raised.
//!
//! Timing lives here and only here: the detector sees the timestamps carried by
//! observations, never a clock.

use crate::config::AgentConfig;
use crate::control::{CommandDone, Control, Controller};
pub use crate::enrich::IncidentEnricher;
use crate::policy;
use crate::sink::{EventSink, SinkError};
use crate::state::{StateDir, StateError, Unusable};
use crate::visibility::Visibility;
use levee_detector::{Detector, DetectorOutput};
use levee_model::{Event, EventBody, TickObservation};
use levee_proto::{AgentCommand, Command, CommandResult, Policy};
use std::collections::VecDeque;
use std::path::PathBuf;
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
    /// Classification from another view (flow and mirror modes).
    enricher: Option<Box<dyn IncidentEnricher>>,
    /// On-node mitigation (off unless [`Agent::with_mitigation`]).
    mitigation: Option<levee_mitigate::MitigationEngine>,
    /// Network mitigation: BGP FlowSpec/RTBH (off unless [`Agent::with_bgp`]).
    bgp: Option<levee_bgp::engine::BgpEngine>,
    observers: Vec<Box<dyn Observer>>,
    /// Sources of the server's policies and commands (the uplink).
    controllers: Vec<Box<dyn Controller>>,
    /// What the config says about the parts a policy sets.
    policy_base: policy::Base,
    /// The settings in force (the config, or the config under a policy).
    effective: policy::Effective,
    /// Ids of commands handled lately: a command comes again until the
    /// server has the acknowledgement, and runs once.
    handled: VecDeque<i64>,
    /// Incidents open now: (id, target).
    open: Vec<(String, String)>,
}

/// Command ids remembered against repeats (the server sends at most 100 pending).
const HANDLED_MEMORY: usize = 1_000;

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
        let policy_base = policy::Base {
            detector: cfg.detector.clone(),
            allowlist: cfg.mitigation.allowlist.clone(),
            profiles: cfg.mitigation.profiles.clone(),
        };
        let effective = policy::Effective::from_base(&policy_base);
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
            enricher: None,
            mitigation: None,
            bgp: None,
            observers: Vec::new(),
            controllers: Vec::new(),
            policy_base,
            effective,
            handled: VecDeque::new(),
            open: Vec::new(),
        })
    }

    /// Classifies incidents with `e` too (flow and mirror modes).
    pub fn with_enricher(mut self, e: Box<dyn IncidentEnricher>) -> Self {
        self.enricher = Some(e);
        self
    }

    /// Takes policies and commands from `controller` (polled every tick).
    pub fn with_controller(mut self, controller: Box<dyn Controller>) -> Self {
        self.controllers.push(controller);
        self
    }

    /// The settings in force (config, or config under the server's policy).
    pub fn effective(&self) -> &policy::Effective {
        &self.effective
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
        self.emit_after(now, t0, events)
    }

    /// Emits what an engine call returned, stamped `now` plus the time the
    /// call took since `t0` (its rules were in place by then).
    fn emit_after(
        &mut self,
        now: i64,
        t0: Instant,
        events: Vec<EventBody>,
    ) -> Result<(), RunError> {
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
        self.emit_after(now, t0, events)
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

    /// Re-reads the indicator lists; `Ok((all loaded, summary))`.
    fn reload_iocs(&mut self) -> Result<(bool, String), RunError> {
        let Some(report) = self.vis.reload_iocs() else {
            tracing::info!("reload: no indicator lists configured");
            return Ok((
                false,
                "no indicator lists configured ([[ioc.lists]])".into(),
            ));
        };
        let mut all_ok = true;
        let mut summary = Vec::new();
        for l in &report.lists {
            match &l.outcome {
                levee_ioc::ListOutcome::Loaded(p) => {
                    tracing::info!(list = %l.name, "indicator list reloaded: {p}");
                    summary.push(format!("{}: {p}", l.name));
                }
                levee_ioc::ListOutcome::KeptPrevious { error, kept } => {
                    let text = format!("{error}; keeping the previous {kept} indicators");
                    tracing::warn!(list = %l.name, "{text}");
                    summary.push(format!("{}: {text}", l.name));
                    all_ok = false;
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
        Ok((all_ok, summary.join("; ")))
    }

    /// Applies the server's `policy` unless its version is in force already;
    /// `report`: emit `policy_applied` (not for the saved policy reapplied at
    /// start, which was reported when it arrived).
    fn apply_policy(&mut self, policy: &Policy, now: i64, report: bool) -> Result<(), RunError> {
        if policy.version == self.effective.version {
            return Ok(());
        }
        let policy::Outcome {
            mut effective,
            mut rejected,
        } = policy::apply(&self.policy_base, &self.effective, policy);
        if let Err(problems) = self.detector.retune(effective.detector.clone()) {
            rejected.extend(problems.into_iter().map(|e| {
                format!(
                    "detector.{}: {}; the detector settings stay as they were",
                    e.field, e.problem
                )
            }));
            effective.detector = self.detector.settings().clone();
        }
        let mut warnings = Vec::new();
        if let Some(engine) = self.mitigation.as_mut() {
            match engine.set_policy(effective.allowlist.clone(), effective.profiles.clone()) {
                Ok(w) => warnings = w,
                Err(problems) => {
                    rejected.extend(problems);
                    effective.profiles = engine.config().profiles.clone();
                    effective.policy_families = self.effective.policy_families.clone();
                }
            }
        }
        tracing::info!(version = policy.version, rejected = ?rejected, "policy in force");
        self.effective = effective;
        for w in warnings {
            tracing::warn!("{w}");
            self.emit(
                now,
                EventBody::SourceError {
                    source_name: "policy".into(),
                    error: w,
                },
            )?;
        }
        if report {
            let d = &self.effective.detector;
            self.emit(
                now,
                EventBody::PolicyApplied {
                    version: policy.version,
                    multiplier: d.multiplier,
                    quiet_period_ms: d.quiet_period_ms,
                    floors: levee_model::Metric::ALL
                        .into_iter()
                        .map(|m| (m.name().to_string(), d.floor(m)))
                        .collect(),
                    allowlist: self.effective.policy_allowlist,
                    profiles: self
                        .effective
                        .policy_families
                        .iter()
                        .map(|f| f.to_string())
                        .collect(),
                    rejected,
                },
            )?;
        }
        // Saved after the event: a crash in between reports it twice, never not at all.
        if let Err(e) = self.state.save_policy(policy) {
            tracing::warn!("{e}; a restart before the server is back runs without this policy");
        }
        Ok(())
    }

    /// Polls every controller and carries out what they hand over.
    fn control(&mut self, now: i64) -> Result<(), RunError> {
        for i in 0..self.controllers.len() {
            for c in self.controllers[i].poll() {
                match c {
                    Control::Policy(p) => self.apply_policy(&p, now, true)?,
                    Control::Command(cmd) => {
                        if self.handled.contains(&cmd.id) {
                            continue;
                        }
                        self.handled.push_back(cmd.id);
                        if self.handled.len() > HANDLED_MEMORY {
                            self.handled.pop_front();
                        }
                        let (ok, message, upload) = self.execute(&cmd, now)?;
                        tracing::info!(id = cmd.id, kind = %cmd.kind, ok, "{message}");
                        self.emit(
                            now,
                            EventBody::CommandExecuted {
                                command_id: cmd.id,
                                kind: cmd.kind.clone(),
                                ok,
                                message: message.clone(),
                            },
                        )?;
                        self.controllers[i].done(CommandDone {
                            result: CommandResult {
                                id: cmd.id,
                                ok,
                                message,
                            },
                            upload,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Carries out one command: (ok, what happened, a capture to upload).
    #[allow(clippy::type_complexity)]
    fn execute(
        &mut self,
        cmd: &AgentCommand,
        now: i64,
    ) -> Result<(bool, String, Option<(String, PathBuf)>), RunError> {
        let parsed = match Command::parse(&cmd.kind, &cmd.args) {
            Ok(c) => c,
            Err(problems) => {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                return Ok((
                    false,
                    format!(
                        "not carried out: {} (this agent is version {})",
                        text.join("; "),
                        env!("CARGO_PKG_VERSION")
                    ),
                    None,
                ));
            }
        };
        const NO_MITIGATION: &str =
            "on-node mitigation is off on this node ([mitigation] enabled = false)";
        let reason = format!("rolled back by command {}", cmd.id);
        Ok(match parsed {
            Command::RollbackMitigation { mitigation_id } => {
                let Some(engine) = self.mitigation.as_mut() else {
                    return Ok((false, NO_MITIGATION.into(), None));
                };
                match engine.rollback(&mitigation_id, &reason, now) {
                    Err(e) => (false, e, None),
                    Ok(events) => {
                        let failed = events
                            .iter()
                            .any(|e| matches!(e, EventBody::MitigationFailed { .. }));
                        for e in events {
                            self.emit(now, e)?;
                        }
                        if failed {
                            (false, format!("removing mitigation {mitigation_id} failed (see its mitigation_failed event)"), None)
                        } else {
                            (
                                true,
                                format!("mitigation {mitigation_id} rolled back"),
                                None,
                            )
                        }
                    }
                }
            }
            Command::RollbackAll => {
                let Some(engine) = self.mitigation.as_mut() else {
                    return Ok((false, NO_MITIGATION.into(), None));
                };
                let events = engine.rollback_all(&reason, now);
                let (mut done, mut failed) = (0, 0);
                for e in events {
                    match &e {
                        EventBody::MitigationRolledBack { .. } => done += 1,
                        EventBody::MitigationFailed { .. } => failed += 1,
                        _ => {}
                    }
                    self.emit(now, e)?;
                }
                let msg =
                    format!("live mitigations: {done} rolled back, {failed} could not be removed");
                (failed == 0, msg, None)
            }
            Command::CapturePcap { incident_id } => self.capture(cmd.id, incident_id, now),
            Command::ReloadIocs => {
                let (ok, summary) = self.reload_iocs()?;
                (ok, summary, None)
            }
            Command::SaveBaseline => {
                let snap = self.detector.snapshot(unix_now_ms());
                match self.state.save_snapshot(&snap) {
                    Ok(()) => (
                        true,
                        format!(
                            "baseline saved: {} series to {}",
                            snap.series.len(),
                            self.state.snapshot_path().display()
                        ),
                        None,
                    ),
                    Err(e) => (false, e.to_string(), None),
                }
            }
        })
    }

    /// `capture_pcap`: the ring written now; uploaded with the incident
    /// asked for, else the open one, else kept on this node only.
    fn capture(
        &mut self,
        cmd_id: i64,
        incident_id: Option<String>,
        now: i64,
    ) -> (bool, String, Option<(String, PathBuf)>) {
        let incident = match &incident_id {
            Some(id) => match self.open.iter().find(|(i, _)| i == id) {
                Some(x) => Some(x.clone()),
                None => {
                    return (
                        false,
                        format!("incident {id} is not open on this node; omit incident_id to capture anyway"),
                        None,
                    )
                }
            },
            None => self.open.last().cloned(),
        };
        let target = incident.as_ref().map_or("", |(_, t)| t.as_str());
        let label = match &incident {
            Some((id, _)) => format!("{id}-command{cmd_id}"),
            None => format!("command{cmd_id}"),
        };
        let name =
            crate::visibility::pcaps::file_name(&levee_model::timefmt::rfc3339_millis(now), &label);
        match self.vis.capture_now(target, &name, now) {
            Err(e) => (false, e, None),
            Ok((path, sum)) => {
                let what = format!("{} packets written to {}", sum.frames, path.display());
                match incident {
                    Some((id, _)) => (
                        true,
                        format!("{what}; uploading it as incident {id}'s capture"),
                        Some((id, path)),
                    ),
                    None => (
                        true,
                        format!("{what}; not uploaded: no incident is open (the server keeps captures per incident)"),
                        None,
                    ),
                }
            }
        }
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
        self.control(now)?;
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
                self.open.push((i.incident_id.clone(), i.target.clone()));
                let pcap = self.vis.started(&mut i, now);
                if let Some(e) = self.enricher.as_mut() {
                    e.started(&mut i, now);
                }
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
                let mut change = self.vis.updated(&mut i);
                if let Some(e) = self.enricher.as_mut() {
                    change = e.updated(&mut i).or(change);
                }
                self.emit_incident(now, EventBody::IncidentUpdated(i))?;
                match change {
                    Some(c) => self.emit(now, c),
                    None => Ok(()),
                }
            }
            DetectorOutput::Resolved(mut info, summary) => {
                self.vis.resolved(&mut info);
                if let Some(e) = self.enricher.as_mut() {
                    e.resolved(&mut info);
                }
                let id = info.incident_id.clone();
                self.open.retain(|(i, _)| *i != id);
                self.emit_incident(now, EventBody::IncidentResolved { info, summary })?;
                self.mitigate(now, |m, t| m.on_incident_resolved(&id, t))
            }
        }
    }

    /// Runs until the stop flag is raised (then parks are cut short by an unpark
    /// of this thread), or `max_ticks` reads when given (tests, replays).
    pub fn run(mut self, max_ticks: Option<u64>) -> Result<(), RunError> {
        let restored = self.restore();
        // The server's last policy holds across restarts, server or not.
        if let Some(p) = self.state.load_policy() {
            self.apply_policy(&p, unix_now_ms(), false)?;
        }
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

    /// A fast agent for scripted runs: 100 ms ticks, `warmup_s` of
    /// baseline, 1 s quiet period, state in `dir`.
    fn test_config(dir: &std::path::Path, warmup_s: u64) -> AgentConfig {
        let o = Overrides {
            tick: Some(Duration::from_millis(100)),
            baseline_warmup: Some(Duration::from_secs(warmup_s)),
            quiet_period: Some(Duration::from_secs(1)),
            state_dir: Some(dir.to_path_buf()),
            node: Some("t".into()),
            ..Default::default()
        };
        AgentConfig::from_parts(None, None, &o).unwrap()
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
        let cfg = test_config(dir, warmup_s);
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

    /// Hands its scripted controls over at the given poll, records results.
    struct Scripted {
        script: Vec<(usize, Control)>,
        polls: usize,
        done: Arc<std::sync::Mutex<Vec<CommandDone>>>,
    }

    impl Controller for Scripted {
        fn poll(&mut self) -> Vec<Control> {
            self.polls += 1;
            self.script
                .iter()
                .filter(|(at, _)| *at == self.polls)
                .map(|(_, c)| c.clone())
                .collect()
        }
        fn done(&mut self, done: CommandDone) {
            self.done.lock().unwrap().push(done);
        }
    }

    fn command(id: i64, kind: &str, args: serde_json::Value) -> Control {
        Control::Command(levee_proto::AgentCommand {
            id,
            kind: kind.into(),
            args,
            created_at: String::new(),
        })
    }

    fn run_controlled(
        dir: &std::path::Path,
        rates: Vec<f64>,
        script: Vec<(usize, Control)>,
    ) -> (Vec<serde_json::Value>, Vec<CommandDone>) {
        run_controlled_with(dir, rates, script, None)
    }

    fn run_controlled_with(
        dir: &std::path::Path,
        rates: Vec<f64>,
        script: Vec<(usize, Control)>,
        engine: Option<levee_mitigate::MitigationEngine>,
    ) -> (Vec<serde_json::Value>, Vec<CommandDone>) {
        let cfg = test_config(dir, 2);
        let n = rates.len() as u64;
        let sink = EventSink::open(&cfg.events_file, None).unwrap();
        let done = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut agent = Agent::new(
            cfg,
            Box::new(Script { rates, i: 0 }),
            sink,
            Arc::new(AtomicBool::new(false)),
            5,
        )
        .unwrap()
        .with_controller(Box::new(Scripted {
            script,
            polls: 0,
            done: done.clone(),
        }));
        if let Some(e) = engine {
            agent = agent.with_mitigation(e);
        }
        agent.run(Some(n)).unwrap();
        let evs = std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let done = done.lock().unwrap().clone();
        (evs, done)
    }

    /// A policy arriving mid-run retunes the detector at once (a floor above
    /// the flood: no incident), is reported once, and holds after a restart
    /// without any server; commands run once each and report their outcome.
    #[test]
    fn the_servers_policy_and_commands_take_effect_in_the_running_loop() {
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let policy: levee_proto::Policy = serde_json::from_value(json!({
            "version": 3,
            "attack_profiles": {"syn_flood": [{"action": "drop", "pps": 5}]},
            "detector": {"multiplier": 2.5, "floors": {"rx_pps": 1.0e9}}
        }))
        .unwrap();
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        rates.extend(vec![3_000.0; 10]);
        let script = vec![
            (5, Control::Policy(policy.clone())),
            (6, command(1, "save_baseline", json!({}))),
            (7, command(1, "save_baseline", json!({}))),
            (7, command(2, "reboot", json!({}))),
            (8, command(3, "rollback_all", json!({}))),
            (9, Control::Policy(policy.clone())),
        ];
        let (evs, done) = run_controlled(dir.path(), rates.clone(), script);
        let k = kinds(&evs);
        assert!(
            !k.iter().any(|e| e == "incident_started"),
            "floor 1e9: {k:?}"
        );
        let applied: Vec<_> = evs
            .iter()
            .filter(|e| e["event"] == "policy_applied")
            .collect();
        assert_eq!(applied.len(), 1, "the same version twice is one event");
        let a = applied[0];
        assert_eq!(a["version"], 3);
        assert_eq!(a["multiplier"], 2.5);
        assert_eq!(a["floors"]["rx_pps"], 1.0e9);
        assert_eq!(a["floors"]["udp_pps"], 2_000.0);
        assert_eq!(a["profiles"], json!([]), "the bad profile is not in force");
        let rejected = a["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(rejected[0]
            .as_str()
            .unwrap()
            .contains("syn_flood[0].pps: not a parameter"));

        let results: Vec<(i64, bool)> = done.iter().map(|d| (d.result.id, d.result.ok)).collect();
        assert_eq!(
            results,
            [(1, true), (2, false), (3, false)],
            "command 1 runs once"
        );
        assert!(
            done[0].result.message.starts_with("baseline saved"),
            "{:?}",
            done[0]
        );
        assert!(
            done[1].result.message.contains("unknown command `reboot`"),
            "{:?}",
            done[1]
        );
        assert!(
            done[2].result.message.contains("mitigation is off"),
            "{:?}",
            done[2]
        );
        let executed: Vec<_> = evs
            .iter()
            .filter(|e| e["event"] == "command_executed")
            .collect();
        assert_eq!(executed.len(), 3);
        assert_eq!(
            (&executed[1]["command_id"], &executed[1]["ok"]),
            (&json!(2), &json!(false))
        );

        // Restarted, no controller: the saved policy holds, unreported.
        let (evs2, _) = run_controlled(dir.path(), rates, vec![]);
        let k2 = kinds(&evs2);
        let second_run = &k2[k.len()..];
        assert!(
            !second_run.iter().any(|e| e == "policy_applied"),
            "{second_run:?}"
        );
        assert!(
            !second_run.iter().any(|e| e == "incident_started"),
            "{second_run:?}"
        );
    }

    /// With mitigation on: the policy's allowlist reaches the executors'
    /// exemptions and its profile shapes the rules; an operator's
    /// rollback_all removes them mid-incident.
    #[test]
    fn policy_and_commands_drive_the_mitigation_engine() {
        use levee_mitigate::testing::Fake;
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let nft = Fake::new(levee_mitigate::ExecutorKind::Nftables);
        let host = levee_mitigate::host::HostInfo {
            addresses: vec![levee_mitigate::host::HostAddr {
                interface: "eth0".into(),
                addr: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
                scope: "global".into(),
            }],
            gateways: vec![],
        };
        let engine = levee_mitigate::MitigationEngine::new(
            levee_mitigate::MitigationConfig {
                enabled: true,
                ..Default::default()
            },
            host,
            vec![Box::new(nft.clone())],
            None,
            Default::default(),
        )
        .unwrap();
        let policy: levee_proto::Policy = serde_json::from_value(json!({
            "version": 7,
            "allowlist": ["198.51.100.0/24"],
            // An unclassified rx_pps incident takes multi_vector's profile.
            "attack_profiles": {"multi_vector": [{"action": "rate_limit", "pps": 100}]}
        }))
        .unwrap();
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        let script = vec![
            (2, Control::Policy(policy)),
            (45, command(9, "rollback_all", json!({}))),
        ];
        let (evs, done) = run_controlled_with(dir.path(), rates, script, Some(engine));
        let a = evs.iter().find(|e| e["event"] == "policy_applied").unwrap();
        assert_eq!(
            (&a["profiles"], &a["allowlist"]),
            (&json!(["multi_vector"]), &json!(1))
        );
        let exempt = nft.k().exempt.last().cloned().unwrap();
        assert!(
            exempt.contains(&"198.51.100.0/24".parse().unwrap()),
            "{exempt:?}"
        );
        let applied: Vec<_> = evs
            .iter()
            .filter(|e| e["event"] == "mitigation_applied")
            .collect();
        assert_eq!(applied.len(), 1, "the policy's one step");
        assert_eq!(applied[0]["action"], "rate_limit(100 pps, burst 10)");
        let k = kinds(&evs);
        let pos = |e: &str| {
            k.iter()
                .position(|x| x == e)
                .unwrap_or_else(|| panic!("no {e} in {k:?}"))
        };
        assert!(pos("mitigation_applied") < pos("mitigation_rolled_back"));
        assert!(pos("mitigation_rolled_back") < pos("command_executed"));
        let rb = &evs[pos("mitigation_rolled_back")];
        assert_eq!(rb["reason"], "rolled back by command 9");
        assert!(
            !k.iter().any(|e| e == "incident_resolved"),
            "still under attack"
        );
        assert_eq!(done[0].result.id, 9);
        assert!(done[0].result.ok, "{:?}", done[0]);
        assert_eq!(
            done[0].result.message,
            "live mitigations: 1 rolled back, 0 could not be removed"
        );
        assert!(nft.k().applied.is_empty());
    }

    /// Without a policy the same flood is an incident: the test above is not
    /// passing for want of a flood.
    #[test]
    fn without_a_policy_the_flood_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut rates = vec![3_000.0; 30];
        rates.extend(vec![300_000.0; 20]);
        let (evs, _) = run_controlled(dir.path(), rates, vec![]);
        assert!(kinds(&evs).iter().any(|e| e == "incident_started"));
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
