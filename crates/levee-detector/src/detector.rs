//! The detector: turns each tick observation into readings per series, steps
//! the incident machine of each group, and feeds the baselines.
//!
//! Grouping: a node's counter series (its interfaces and the host-wide protocol
//! and connection counters) form one group, so one attack gives one incident on
//! the interface that carries it, with every metric it moved listed in it.
//! Per-IP and per-prefix targets (flow and mirror modes) are one group each,
//! kept in the compact [`TargetBank`].

use crate::ids::IdGen;
use crate::incident::{step, Input, OpenIncident, Phase, Reading, Timing, Transition};
use crate::series::Series;
use crate::settings::{DetectorSettings, SettingsError};
use crate::snapshot::{
    BaselineSnapshot, RestoreReport, SeriesSnapshot, SnapshotError, SNAPSHOT_VERSION,
};
use crate::targets::TargetBank;
use crate::window::BaselineWindow;
use levee_model::{
    IncidentInfo, IncidentResolvedSummary, Metric, SeriesKey, Target, TickObservation,
};
use std::collections::BTreeMap;

/// What the detector reports after a tick.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorOutput {
    /// Every known series has finished learning (emitted once).
    BaselineReady {
        series: usize,
    },
    Started(IncidentInfo),
    Updated(IncidentInfo),
    Resolved(IncidentInfo, IncidentResolvedSummary),
}

/// Which incident group a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Node,
}

fn group_of(_target: &Target) -> GroupKey {
    GroupKey::Node
}

#[derive(Debug, Clone)]
struct Group {
    phase: Phase,
    open: Option<OpenIncident>,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            phase: Phase::Idle,
            open: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Detector {
    settings: DetectorSettings,
    series: BTreeMap<SeriesKey, Series>,
    groups: BTreeMap<GroupKey, Group>,
    ids: IdGen,
    baseline_ready_sent: bool,
    bank: TargetBank,
}

/// The (series, value) pairs one observation carries.
fn readings_of(obs: &TickObservation) -> Vec<(SeriesKey, f64)> {
    let mut out = Vec::with_capacity(obs.interfaces.len() * 2 + 5);
    for i in &obs.interfaces {
        let t = Target::Interface(i.name.clone());
        out.push((SeriesKey::new(t.clone(), Metric::RxPps), i.rx_pps));
        out.push((SeriesKey::new(t, Metric::RxBps), i.rx_bps));
    }
    out.push((SeriesKey::new(Target::Host, Metric::TcpPps), obs.tcp_pps));
    out.push((SeriesKey::new(Target::Host, Metric::UdpPps), obs.udp_pps));
    out.push((SeriesKey::new(Target::Host, Metric::IcmpPps), obs.icmp_pps));
    if let Some(c) = obs.conns {
        out.push((
            SeriesKey::new(Target::Host, Metric::SynRecv),
            c.syn_recv as f64,
        ));
        out.push((
            SeriesKey::new(Target::Host, Metric::Connections),
            c.established as f64,
        ));
    }
    out
}

impl Detector {
    /// `seed` drives incident ids only; pass a random one in production and a
    /// fixed one to reproduce a replay exactly.
    pub fn new(settings: DetectorSettings, seed: u64) -> Self {
        Detector {
            settings,
            series: BTreeMap::new(),
            groups: BTreeMap::new(),
            ids: IdGen::new(seed),
            baseline_ready_sent: false,
            bank: TargetBank::default(),
        }
    }

    pub fn settings(&self) -> &DetectorSettings {
        &self.settings
    }

    /// Changes the tunables that take effect at the next tick without
    /// relearning: multiplier, floors, quiet period, confirmation, update
    /// interval (a policy from the server). The fields that shape the
    /// learnt windows (`window`, `recompute_every`, `warmup_samples`,
    /// `tick_ms`) must stay as they are; nothing changes on any problem.
    pub fn retune(&mut self, new: DetectorSettings) -> Result<(), Vec<SettingsError>> {
        let mut problems = new.validate();
        let old = &self.settings;
        for (field, same) in [
            ("window", new.window == old.window),
            (
                "recompute_every",
                new.recompute_every == old.recompute_every,
            ),
            ("warmup_samples", new.warmup_samples == old.warmup_samples),
            ("tick", new.tick_ms == old.tick_ms),
        ] {
            if !same {
                problems.push(SettingsError {
                    field: field.to_string(),
                    problem: "cannot change while running (the learnt baselines depend on it); restart with the new value".into(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.settings = new;
        Ok(())
    }

    /// Feeds one tick. Observations with a non-positive or non-finite `dt` are
    /// ignored (they carry no rate).
    pub fn observe(&mut self, obs: &TickObservation) -> Vec<DetectorOutput> {
        let mut out = Vec::new();
        if !(obs.dt.is_finite() && obs.dt > 0.0) {
            return out;
        }
        let now = obs.unix_ms;
        let dt_ms = ((obs.dt * 1000.0).round() as u64).max(1);
        let timing = Timing {
            confirm_ticks: self.settings.confirm_ticks_effective(),
            quiet_period_ms: self.settings.quiet_period_ms,
        };
        let values = readings_of(obs);

        // 1. Judge this tick against thresholds learnt before it.
        let mut by_group: BTreeMap<GroupKey, Vec<Reading>> = BTreeMap::new();
        for (key, value) in &values {
            let series = self
                .series
                .entry(key.clone())
                .or_insert_with(|| Series::new(key.metric, &self.settings));
            if let Some(t) = series.threshold(&self.settings) {
                by_group
                    .entry(group_of(&key.target))
                    .or_default()
                    .push(Reading {
                        key: key.clone(),
                        value: *value,
                        baseline: t.baseline,
                        threshold: t.threshold,
                    });
            }
        }
        by_group.entry(GroupKey::Node).or_default();

        // 2. Step each group's incident machine.
        for (gk, readings) in &by_group {
            let group = self.groups.entry(*gk).or_default();
            let input = if readings.iter().any(Reading::is_above) {
                Input::Above
            } else {
                Input::Below
            };
            let (phase, transition) = step(group.phase, input, now, timing);
            group.phase = phase;
            match transition {
                Transition::Started => {
                    let id = self.ids.next_id(now).to_string();
                    let inc = OpenIncident::open(id, now, readings);
                    out.push(DetectorOutput::Started(inc.info()));
                    group.open = Some(inc);
                }
                Transition::Resolved => {
                    if let Some(mut inc) = group.open.take() {
                        inc.absorb(readings);
                        out.push(DetectorOutput::Resolved(inc.info(), inc.summary(now)));
                    }
                }
                Transition::Stay
                | Transition::CoolingDown
                | Transition::Resumed
                | Transition::Discarded => {
                    if let Some(inc) = group.open.as_mut() {
                        inc.absorb(readings);
                        if now - inc.last_update_ms >= self.settings.update_interval_ms as i64 {
                            inc.last_update_ms = now;
                            out.push(DetectorOutput::Updated(inc.info()));
                        }
                    }
                }
            }
            if let Some(inc) = group.open.as_mut() {
                let (p, b) = traffic_on(obs, &inc.target);
                inc.add_traffic(p, b);
            }
        }

        // 3. Feed the baselines, keeping incident time out of them.
        for (key, value) in values {
            let engaged = self
                .groups
                .get(&group_of(&key.target))
                .is_some_and(|g| g.phase.is_engaged());
            if let Some(series) = self.series.get_mut(&key) {
                series.record_tick(now, value, dt_ms, engaged);
            }
        }

        // 4. Per-IP and per-prefix targets. Every tick, even without any:
        // the bank counts the seconds a target first seen later has been
        // (implicitly) silent, which is what makes it warm at once.
        out.extend(self.bank.observe(&self.settings, &mut self.ids, obs));

        if !self.baseline_ready_sent && !self.series.is_empty() {
            let live = self.series.values().filter(|s| s.last_seen_ms == now);
            if live.clone().all(|s| s.is_warm(&self.settings)) {
                self.baseline_ready_sent = true;
                out.push(DetectorOutput::BaselineReady {
                    series: live.count(),
                });
            }
        }
        out
    }

    /// Whether an incident is open now.
    pub fn has_open_incident(&self) -> bool {
        self.groups.values().any(|g| g.open.is_some()) || self.bank.has_open_incident()
    }

    /// The per-IP and per-prefix targets.
    pub fn targets(&self) -> &TargetBank {
        &self.bank
    }

    /// The current threshold view of a series: (baseline p99, threshold), or None
    /// while learning or unknown.
    pub fn threshold_of(&self, key: &SeriesKey) -> Option<(f64, f64)> {
        if matches!(key.target, Target::Ip(_) | Target::Prefix(_)) {
            return self.bank.threshold_of(&self.settings, key);
        }
        self.series
            .get(key)?
            .threshold(&self.settings)
            .map(|t| (t.baseline, t.threshold))
    }

    /// Per-second samples the most advanced series has learnt.
    pub fn learned_samples(&self) -> u64 {
        self.series
            .values()
            .map(|s| s.window().total())
            .max()
            .unwrap_or(0)
    }

    /// Moves an interface's baselines (and any open incident) to its new name.
    pub fn rename_interface(&mut self, old: &str, new: &str) {
        let keys: Vec<SeriesKey> = self
            .series
            .keys()
            .filter(|k| matches!(&k.target, Target::Interface(n) if n == old))
            .cloned()
            .collect();
        for k in keys {
            if let Some(s) = self.series.remove(&k) {
                self.series.insert(
                    SeriesKey::new(Target::Interface(new.to_string()), k.metric),
                    s,
                );
            }
        }
        for g in self.groups.values_mut() {
            if let Some(inc) = g.open.as_mut() {
                inc.rename_interface(old, new);
            }
        }
    }

    /// The learnt baselines, for persistence.
    pub fn snapshot(&self, now_ms: i64) -> BaselineSnapshot {
        let (target_seconds, targets) = self.bank.snapshot();
        BaselineSnapshot {
            version: SNAPSHOT_VERSION,
            saved_unix_ms: now_ms,
            window: self.settings.window,
            series: self
                .series
                .iter()
                .map(|(k, s)| SeriesSnapshot {
                    key: k.clone(),
                    samples: s.window().total(),
                    values: s.window().values().collect(),
                })
                .collect(),
            target_seconds,
            targets,
        }
    }

    /// Loads saved baselines. Call before the first tick; series already known
    /// are replaced.
    pub fn restore(&mut self, snap: &BaselineSnapshot) -> Result<RestoreReport, SnapshotError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snap.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let mut report = RestoreReport::default();
        for s in &snap.series {
            let w = BaselineWindow::restore(
                self.settings.window,
                self.settings.recompute_every,
                &s.values,
                s.samples,
            );
            report.series += 1;
            report.max_samples = report.max_samples.max(w.total());
            self.series
                .insert(s.key.clone(), Series::with_window(s.key.metric, w));
        }
        report.targets = self.bank.restore(
            &self.settings,
            snap.target_seconds,
            &snap.targets,
            snap.saved_unix_ms,
        );
        Ok(report)
    }
}

/// Packets and bytes received during the tick on the incident's target: its
/// interface, or every interface for a host-wide incident.
fn traffic_on(obs: &TickObservation, target: &Target) -> (f64, f64) {
    obs.interfaces
        .iter()
        .filter(|i| match target {
            Target::Interface(n) => &i.name == n,
            Target::Host => true,
            // Per-IP targets count their own traffic (see `targets`).
            Target::Ip(_) | Target::Prefix(_) => false,
        })
        .fold((0.0, 0.0), |(p, b), i| {
            (p + i.rx_pps * obs.dt, b + i.rx_bps * obs.dt / 8.0)
        })
}
