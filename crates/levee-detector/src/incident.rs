//! The incident lifecycle: an explicit state machine ([`Phase`], [`Input`],
//! [`step`]) and the data an open incident accumulates ([`OpenIncident`]).
//!
//! ```text
//!            above                above x confirm_ticks
//!   Idle ----------> Confirming ------------------------> Active <----+
//!    ^                   | below (a microburst)            |  ^       | above
//!    +-------------------+                           below |  | above |
//!    ^                                                     v  |       |
//!    +------------------ quiet_period elapsed ---------- Cooling -----+
//! ```
//! With `confirm_ticks == 1` Idle goes straight to Active.

use levee_model::timefmt::rfc3339_millis;
use levee_model::{IncidentInfo, IncidentMetric, IncidentResolvedSummary, SeriesKey, Target};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No incident.
    Idle,
    /// Above threshold for `ticks` consecutive ticks, not yet confirmed.
    Confirming { since_ms: i64, ticks: u32 },
    /// An open incident, some metric above threshold.
    Active,
    /// An open incident, every metric below threshold since `quiet_since_ms`.
    Cooling { quiet_since_ms: i64 },
}

impl Phase {
    /// Whether an incident is open (or about to be): such ticks stay out of the baseline.
    pub fn is_engaged(self) -> bool {
        !matches!(self, Phase::Idle)
    }

    pub fn is_open(self) -> bool {
        matches!(self, Phase::Active | Phase::Cooling { .. })
    }
}

/// What one tick says about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// At least one series of the group is above its threshold.
    Above,
    /// Every series of the group is at or below its threshold.
    Below,
}

/// What a step did, for the caller to turn into outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Stay,
    /// A confirmation run ended below threshold: a microburst, not an attack.
    Discarded,
    Started,
    CoolingDown,
    Resumed,
    Resolved,
}

/// Timing parameters of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub confirm_ticks: u32,
    pub quiet_period_ms: u64,
}

/// The one transition function of the incident lifecycle.
pub fn step(phase: Phase, input: Input, now_ms: i64, t: Timing) -> (Phase, Transition) {
    use Input::*;
    use Phase::*;
    match (phase, input) {
        (Idle, Below) => (Idle, Transition::Stay),
        (Idle, Above) if t.confirm_ticks <= 1 => (Active, Transition::Started),
        (Idle, Above) => (
            Confirming {
                since_ms: now_ms,
                ticks: 1,
            },
            Transition::Stay,
        ),
        (Confirming { since_ms, ticks }, Above) => {
            if ticks + 1 >= t.confirm_ticks {
                (Active, Transition::Started)
            } else {
                (
                    Confirming {
                        since_ms,
                        ticks: ticks + 1,
                    },
                    Transition::Stay,
                )
            }
        }
        (Confirming { .. }, Below) => (Idle, Transition::Discarded),
        (Active, Above) => (Active, Transition::Stay),
        (Active, Below) if t.quiet_period_ms == 0 => (Idle, Transition::Resolved),
        (Active, Below) => (
            Cooling {
                quiet_since_ms: now_ms,
            },
            Transition::CoolingDown,
        ),
        (Cooling { .. }, Above) => (Active, Transition::Resumed),
        (Cooling { quiet_since_ms }, Below) => {
            if now_ms.saturating_sub(quiet_since_ms) >= t.quiet_period_ms as i64 {
                (Idle, Transition::Resolved)
            } else {
                (phase, Transition::Stay)
            }
        }
    }
}

/// One series' reading in one tick, as the detector hands it to a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub key: SeriesKey,
    pub value: f64,
    pub baseline: f64,
    pub threshold: f64,
}

impl Reading {
    pub fn is_above(&self) -> bool {
        self.value > self.threshold
    }

    /// How far above its threshold: picks the primary metric across units.
    fn severity(&self) -> f64 {
        self.value / self.threshold.max(f64::MIN_POSITIVE)
    }
}

/// The most severe reading; on a tie the first in key order (interfaces sort
/// before the host), so the choice is stable across runs.
fn most_severe<'a>(readings: &[&'a Reading]) -> Option<&'a Reading> {
    readings.iter().copied().reduce(|best, r| {
        if r.severity() > best.severity() {
            r
        } else {
            best
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
struct MetricState {
    value: f64,
    baseline: f64,
    threshold: f64,
    peak: f64,
}

/// Everything an open incident has accumulated.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    pub id: String,
    pub started_ms: i64,
    pub target: Target,
    pub primary: SeriesKey,
    metrics: BTreeMap<SeriesKey, MetricState>,
    pub last_update_ms: i64,
    total_packets: f64,
    total_bytes: f64,
}

/// The incident's target: an interface (or, in flow and mirror modes, the
/// IP or prefix) when any of its metrics is above, otherwise the host. An
/// incident that starts on host-wide counters moves to the interface once one
/// shows the attack, but never hops between interfaces.
fn choose_target(current: Option<&Target>, above: &[&Reading]) -> Target {
    if let Some(t) = current.filter(|t| !matches!(t, Target::Host)) {
        return t.clone();
    }
    let interfaces: Vec<&Reading> = above
        .iter()
        .copied()
        .filter(|r| !matches!(r.key.target, Target::Host))
        .collect();
    most_severe(&interfaces)
        .map(|r| r.key.target.clone())
        .unwrap_or(Target::Host)
}

impl OpenIncident {
    /// Opens an incident from the readings of its first tick (some must be above).
    pub fn open(id: String, now_ms: i64, readings: &[Reading]) -> Self {
        let above: Vec<&Reading> = readings.iter().filter(|r| r.is_above()).collect();
        let primary = most_severe(&above)
            .map(|r| r.key.clone())
            .unwrap_or_else(|| SeriesKey::new(Target::Host, levee_model::Metric::RxPps));
        let mut inc = OpenIncident {
            id,
            started_ms: now_ms,
            target: choose_target(None, &above),
            primary,
            metrics: BTreeMap::new(),
            last_update_ms: now_ms,
            total_packets: 0.0,
            total_bytes: 0.0,
        };
        inc.absorb(readings);
        inc
    }

    /// Takes one tick's readings: metrics above threshold join the incident,
    /// metrics already in it track their value and peak.
    pub fn absorb(&mut self, readings: &[Reading]) {
        let above: Vec<&Reading> = readings.iter().filter(|r| r.is_above()).collect();
        for r in readings {
            let joined = r.is_above();
            if let Some(m) = self.metrics.get_mut(&r.key) {
                m.value = r.value;
                m.peak = m.peak.max(r.value);
            } else if joined {
                // Baseline and threshold are frozen at the moment a metric joins:
                // the window does not learn during an incident anyway.
                self.metrics.insert(
                    r.key.clone(),
                    MetricState {
                        value: r.value,
                        baseline: r.baseline,
                        threshold: r.threshold,
                        peak: r.value,
                    },
                );
            }
        }
        if let Some(top) = most_severe(&above) {
            self.primary = top.key.clone();
        }
        self.target = choose_target(Some(&self.target), &above);
    }

    /// Adds traffic received during one tick to the incident's totals.
    pub fn add_traffic(&mut self, packets: f64, bytes: f64) {
        if packets.is_finite() && packets > 0.0 {
            self.total_packets += packets;
        }
        if bytes.is_finite() && bytes > 0.0 {
            self.total_bytes += bytes;
        }
    }

    pub fn info(&self) -> IncidentInfo {
        let p = self
            .metrics
            .get(&self.primary)
            .cloned()
            .unwrap_or(MetricState {
                value: 0.0,
                baseline: 0.0,
                threshold: 0.0,
                peak: 0.0,
            });
        IncidentInfo {
            incident_id: self.id.clone(),
            target: self.target.to_string(),
            metric: self.primary.metric.to_string(),
            value: round2(p.value),
            baseline: round2(p.baseline),
            ratio: ratio(p.value, p.baseline),
            threshold: round2(p.threshold),
            metrics: self
                .metrics
                .iter()
                .map(|(k, m)| IncidentMetric {
                    target: k.target.to_string(),
                    metric: k.metric.to_string(),
                    value: round2(m.value),
                    baseline: round2(m.baseline),
                    threshold: round2(m.threshold),
                    ratio: ratio(m.value, m.baseline),
                    peak: round2(m.peak),
                })
                .collect(),
            started_at: rfc3339_millis(self.started_ms),
            family: None,
            confidence: None,
            fingerprint: None,
            details: Default::default(),
        }
    }

    pub fn summary(&self, now_ms: i64) -> IncidentResolvedSummary {
        IncidentResolvedSummary {
            duration_s: (now_ms - self.started_ms).max(0) as f64 / 1000.0,
            peak: round2(self.metrics.get(&self.primary).map_or(0.0, |m| m.peak)),
            total_packets: self.total_packets.round() as u64,
            total_bytes: self.total_bytes.round() as u64,
        }
    }

    /// Moves an interface's metrics to its new name after a rename.
    pub fn rename_interface(&mut self, old: &str, new: &str) {
        let rename = |t: &Target| match t {
            Target::Interface(n) if n == old => Target::Interface(new.to_string()),
            other => other.clone(),
        };
        self.target = rename(&self.target);
        self.primary.target = rename(&self.primary.target);
        self.metrics = std::mem::take(&mut self.metrics)
            .into_iter()
            .map(|(k, v)| (SeriesKey::new(rename(&k.target), k.metric), v))
            .collect();
    }
}

/// value / baseline, with the baseline floored at 1 unit so a silent baseline
/// gives a large finite ratio rather than infinity (JSON has no infinity).
fn ratio(value: f64, baseline: f64) -> f64 {
    round2(value / baseline.max(1.0))
}

fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::Metric;

    const T3: Timing = Timing {
        confirm_ticks: 3,
        quiet_period_ms: 10_000,
    };

    #[test]
    fn every_transition() {
        use Input::*;
        use Phase::*;
        assert_eq!(step(Idle, Below, 0, T3), (Idle, Transition::Stay));
        assert_eq!(
            step(Idle, Above, 0, T3),
            (
                Confirming {
                    since_ms: 0,
                    ticks: 1
                },
                Transition::Stay
            )
        );
        let c2 = Confirming {
            since_ms: 0,
            ticks: 2,
        };
        assert_eq!(
            step(
                Confirming {
                    since_ms: 0,
                    ticks: 1
                },
                Above,
                100,
                T3
            ),
            (c2, Transition::Stay)
        );
        assert_eq!(step(c2, Above, 200, T3), (Active, Transition::Started));
        assert_eq!(step(c2, Below, 200, T3), (Idle, Transition::Discarded));
        assert_eq!(step(Active, Above, 300, T3), (Active, Transition::Stay));
        assert_eq!(
            step(Active, Below, 300, T3),
            (
                Cooling {
                    quiet_since_ms: 300
                },
                Transition::CoolingDown
            )
        );
        let cool = Cooling {
            quiet_since_ms: 300,
        };
        assert_eq!(step(cool, Above, 400, T3), (Active, Transition::Resumed));
        assert_eq!(step(cool, Below, 10_299, T3), (cool, Transition::Stay));
        assert_eq!(step(cool, Below, 10_300, T3), (Idle, Transition::Resolved));
        let t1 = Timing {
            confirm_ticks: 1,
            quiet_period_ms: 0,
        };
        assert_eq!(step(Idle, Above, 0, t1), (Active, Transition::Started));
        assert_eq!(step(Active, Below, 0, t1), (Idle, Transition::Resolved));
    }

    fn reading(target: Target, metric: Metric, value: f64, threshold: f64) -> Reading {
        Reading {
            key: SeriesKey::new(target, metric),
            value,
            baseline: threshold / 3.0,
            threshold,
        }
    }

    #[test]
    fn incident_prefers_interface_target_and_tracks_peak() {
        let eth = || Target::Interface("eth0".into());
        let mut inc = OpenIncident::open(
            "id".into(),
            1000,
            &[
                reading(Target::Host, Metric::TcpPps, 90_000.0, 3_000.0),
                reading(eth(), Metric::RxPps, 10.0, 3_000.0),
            ],
        );
        assert_eq!(inc.target, Target::Host, "only host metrics above at start");
        assert_eq!(inc.primary.metric, Metric::TcpPps);
        inc.absorb(&[
            reading(Target::Host, Metric::TcpPps, 120_000.0, 3_000.0),
            reading(eth(), Metric::RxPps, 150_000.0, 3_000.0),
        ]);
        assert_eq!(inc.target, eth());
        assert_eq!(inc.primary.metric, Metric::RxPps);
        inc.absorb(&[
            reading(Target::Host, Metric::TcpPps, 0.0, 3_000.0),
            reading(eth(), Metric::RxPps, 0.0, 3_000.0),
        ]);
        let info = inc.info();
        assert_eq!(info.target, "eth0");
        assert_eq!(info.metrics.len(), 2);
        assert_eq!(
            info.metrics
                .iter()
                .find(|m| m.metric == "tcp_pps")
                .unwrap()
                .peak,
            120_000.0
        );
        inc.add_traffic(1_000.0, 60_000.0);
        let s = inc.summary(13_500);
        assert_eq!(
            (s.duration_s, s.peak, s.total_packets, s.total_bytes),
            (12.5, 150_000.0, 1_000, 60_000)
        );
    }

    #[test]
    fn ratio_is_finite_for_silent_baseline() {
        assert_eq!(ratio(5_000.0, 0.0), 5_000.0);
        assert_eq!(ratio(5_000.0, 100.0), 50.0);
    }
}
