//! Per-IP and per-prefix detection ([`TargetBank`]) for flow and mirror
//! modes: the detector's rules, applied to every target of
//! [`TickObservation::targets`].
//!
//! Same as the node's series ([`crate::series`]): ticks folded into
//! time-weighted per-second values, a sliding window of
//! [`DetectorSettings::window`] seconds, its nearest-rank p99 recomputed
//! every [`DetectorSettings::recompute_every`] seconds, alert above
//! `max(multiplier x p99, floor)`, the warm-up, the confirmation and quiet
//! period of the incident state machine ([`crate::incident::step`]), and
//! seconds during an incident kept out of the baseline. Different, for
//! memory: the window is a [`CompactWindow`] (12-bit logarithmic codes,
//! within 0.45%), and each target is one incident group of its six metrics
//! ([`LANES`]).
//!
//! A target that has never been seen has, by definition, received nothing:
//! its history is zeros since the bank started. So a target is created when
//! traffic first reaches it, pre-filled with that many zero seconds (warm at
//! once when the bank is), and evicted again once a whole window has gone by
//! with nothing, no incident open. Memory therefore follows the IPs that
//! receive traffic, up to [`DetectorSettings::max_targets`]; beyond that,
//! new targets are not tracked (their prefix still is, in the caller).
//!
//! A target marked not `alertable` in a tick learns as usual but counts as
//! below threshold for its incident (the caller's carpet-bombing rule uses
//! this for prefixes whose traffic is one IP's attack); its seconds above
//! threshold are kept out of its baseline all the same.
//!
//! Prefixes are stepped before addresses each tick: an address inside a
//! prefix whose incident is engaged (confirming or open) is folded into it
//! and starts no incident of its own ([`crate::fold`]). A carpet bombing is
//! then one incident on the prefix however its thin per-IP rates jitter
//! around their floors: the prefix carries each member's traffic and the
//! rest of the spread, so it crosses its threshold no later than they do.

use crate::compact::{decode, encode, CompactWindow};
use crate::detector::DetectorOutput;
use crate::fold::Folds;
use crate::ids::IdGen;
use crate::incident::{step, Input, OpenIncident, Phase, Reading, Timing, Transition};
use crate::settings::DetectorSettings;
use levee_model::{Metric, SeriesKey, Target, TargetRates, TickObservation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The metrics of a target, in lane order.
pub const LANES: [Metric; 6] = [
    Metric::RxPps,
    Metric::RxBps,
    Metric::Flows,
    Metric::TcpPps,
    Metric::UdpPps,
    Metric::IcmpPps,
];
const N: usize = LANES.len();

fn values_of(t: &TargetRates) -> [f64; N] {
    let clean = |v: f64| if v.is_finite() && v >= 0.0 { v } else { 0.0 };
    [
        clean(t.pps),
        clean(t.bps),
        clean(t.flows),
        clean(t.tcp_pps),
        clean(t.udp_pps),
        clean(t.icmp_pps),
    ]
}

#[derive(Debug, Clone)]
struct State {
    window: CompactWindow,
    /// Cached p99 code per lane.
    p99: [u16; N],
    pushes_since: usize,
    bucket_sum: [f64; N],
    bucket_ms: u64,
    tainted: bool,
    /// This tick's values, valid when `seen_tick` is the current tick.
    current: [f64; N],
    seen_tick: u64,
    alertable: bool,
    phase: Phase,
    open: Option<Box<OpenIncident>>,
    /// Last second with any non-zero value.
    last_active_ms: i64,
}

impl State {
    fn new(settings: &DetectorSettings, seconds: u64, now_ms: i64) -> Self {
        State {
            window: CompactWindow::new(N, settings.window, seconds as usize, seconds),
            p99: [0; N],
            pushes_since: 0,
            bucket_sum: [0.0; N],
            bucket_ms: 0,
            tainted: false,
            current: [0.0; N],
            seen_tick: 0,
            alertable: true,
            phase: Phase::Idle,
            open: None,
            last_active_ms: now_ms,
        }
    }

    fn recompute(&mut self, scratch: &mut Vec<u16>) {
        self.pushes_since = 0;
        self.window.percentile_codes(0.99, &mut self.p99, scratch);
    }

    /// Spreads the targets' p99 recomputations over the `recompute_every`
    /// seconds: targets created together (a /16 lighting up at once) would
    /// otherwise all recompute in the same second.
    fn stagger(&mut self, target: &Target, settings: &DetectorSettings) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        target.hash(&mut h);
        self.pushes_since = (h.finish() % settings.recompute_every.max(1) as u64) as usize;
    }

    fn is_warm(&self, settings: &DetectorSettings) -> bool {
        self.window.total() >= settings.warmup_samples && !self.window.is_empty()
    }

    /// (baseline, threshold) of a lane.
    fn threshold(&self, settings: &DetectorSettings, lane: usize) -> (f64, f64) {
        let baseline = decode(self.p99[lane]);
        let floor = settings.floor(LANES[lane]);
        (baseline, (baseline * settings.multiplier).max(floor))
    }
}

/// One target in a snapshot: its p99 per metric, 3 hex digits per 12-bit
/// code in [`LANES`] order, and the seconds it had learnt.
///
/// Not the whole window: a /16's windows are 178 MB, and a snapshot is
/// written every few seconds. A restored target's window is its p99 repeated
/// (as many seconds as it had, up to the window): the same threshold at
/// once, re-learnt second by second as real values push those out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSnapshot {
    pub target: Target,
    pub samples: u64,
    pub codes: String,
}

fn hex_codes(codes: &[u16]) -> String {
    codes
        .iter()
        .map(|c| format!("{:03x}", c & 0x0fff))
        .collect()
}

fn parse_hex_codes(s: &str) -> Option<Vec<u16>> {
    if s.len() % 3 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 3)
        .map(|i| u16::from_str_radix(&s[i * 3..i * 3 + 3], 16).ok())
        .collect()
}

/// Every per-IP and per-prefix target's baseline and incident.
#[derive(Debug, Clone, Default)]
pub struct TargetBank {
    /// Boxed: the map's buckets stay small (a /16 plus prefixes is just
    /// over 2^16 entries, where the table doubles).
    states: HashMap<Target, Box<State>>,
    /// Whole seconds since the bank started (restored ones included): the
    /// implicit zero history of a target seen for the first time.
    seconds: u64,
    bucket_ms: u64,
    tick: u64,
    scratch: Vec<u16>,
    /// Targets not tracked because the bank was full.
    refused: u64,
    /// This tick's engaged prefixes (kept to reuse the allocation).
    folds: Folds,
}

impl TargetBank {
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Targets that could not be tracked because the bank was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn has_open_incident(&self) -> bool {
        self.states.values().any(|s| s.open.is_some())
    }

    /// Heap bytes held by the windows (the bulk of the bank's memory).
    pub fn window_bytes(&self) -> usize {
        self.states.values().map(|s| s.window.heap_bytes()).sum()
    }

    /// (baseline, threshold) of one metric of a target, `None` while
    /// learning or unknown.
    pub fn threshold_of(&self, settings: &DetectorSettings, key: &SeriesKey) -> Option<(f64, f64)> {
        let s = self.states.get(&key.target)?;
        let lane = LANES.iter().position(|m| *m == key.metric)?;
        s.is_warm(settings).then(|| s.threshold(settings, lane))
    }

    /// Feeds one tick's targets; returns the incident outputs.
    pub fn observe(
        &mut self,
        settings: &DetectorSettings,
        ids: &mut IdGen,
        obs: &TickObservation,
    ) -> Vec<DetectorOutput> {
        let mut out = Vec::new();
        let now = obs.unix_ms;
        let dt_ms = ((obs.dt * 1000.0).round() as u64).max(1);
        self.tick += 1;
        let tick = self.tick;
        for t in &obs.targets {
            if !self.states.contains_key(&t.target) {
                if self.states.len() >= settings.max_targets {
                    self.refused += 1;
                    continue;
                }
                let mut st = Box::new(State::new(settings, self.seconds, now));
                st.stagger(&t.target, settings);
                self.states.insert(t.target.clone(), st);
            }
            let Some(st) = self.states.get_mut(&t.target) else {
                continue;
            };
            st.current = values_of(t);
            st.seen_tick = tick;
            st.alertable = t.alertable;
        }
        let ctx = StepCtx {
            settings,
            timing: Timing {
                confirm_ticks: settings.confirm_ticks_effective(),
                quiet_period_ms: settings.quiet_period_ms,
            },
            now,
            dt: obs.dt,
            dt_ms,
            tick,
        };
        // Prefixes first, so their members see this tick's verdict: an
        // address inside a prefix whose incident is engaged is folded into
        // it (see [`crate::fold`]).
        let folds = &mut self.folds;
        folds.clear();
        for (target, st) in self.states.iter_mut() {
            if let Target::Prefix(p) = target {
                step_target(&ctx, ids, &mut self.scratch, target, st, false, &mut out);
                if st.phase.is_engaged() {
                    folds.insert(p);
                }
            }
        }
        for (target, st) in self.states.iter_mut() {
            let inside = match target {
                Target::Prefix(_) => continue,
                Target::Ip(ip) => !folds.is_empty() && folds.contains(*ip),
                _ => false,
            };
            step_target(&ctx, ids, &mut self.scratch, target, st, inside, &mut out);
        }
        self.bucket_ms += dt_ms;
        if self.bucket_ms >= 1_000 {
            self.bucket_ms = 0;
            self.seconds += 1;
            self.evict(settings, now);
        }
        out
    }

    /// Forgets targets idle for a whole window with no incident: their
    /// window is all zeros, which is what an unseen target has anyway.
    fn evict(&mut self, settings: &DetectorSettings, now: i64) {
        let idle_ms = settings.window as i64 * 1000;
        self.states.retain(|_, s| {
            s.phase != Phase::Idle || s.open.is_some() || now - s.last_active_ms <= idle_ms
        });
    }

    pub fn snapshot(&self) -> (u64, Vec<TargetSnapshot>) {
        let mut v: Vec<TargetSnapshot> = self
            .states
            .iter()
            .map(|(t, s)| TargetSnapshot {
                target: t.clone(),
                samples: s.window.total(),
                codes: hex_codes(&s.p99),
            })
            .collect();
        v.sort_by(|a, b| a.target.cmp(&b.target));
        (self.seconds, v)
    }

    /// Loads saved targets; returns how many were restored (a target whose
    /// codes don't parse is skipped).
    pub fn restore(
        &mut self,
        settings: &DetectorSettings,
        seconds: u64,
        saved: &[TargetSnapshot],
        now_ms: i64,
    ) -> usize {
        self.seconds = self.seconds.max(seconds);
        let mut n = 0;
        for t in saved {
            if self.states.len() >= settings.max_targets {
                break;
            }
            let Some(p99) = parse_hex_codes(&t.codes).filter(|c| c.len() == N) else {
                continue;
            };
            let seconds = (t.samples as usize).min(settings.window);
            let codes: Vec<u16> = (0..seconds).flat_map(|_| p99.iter().copied()).collect();
            let mut st = Box::new(State::new(settings, 0, now_ms));
            st.window = CompactWindow::restore(N, settings.window, &codes, t.samples);
            st.recompute(&mut self.scratch);
            st.stagger(&t.target, settings);
            self.states.insert(t.target.clone(), st);
            n += 1;
        }
        n
    }
}

/// What every target's step of one tick shares.
struct StepCtx<'a> {
    settings: &'a DetectorSettings,
    timing: Timing,
    now: i64,
    /// The tick's length, in seconds and whole milliseconds.
    dt: f64,
    dt_ms: u64,
    tick: u64,
}

/// One target's tick: threshold test, incident state machine, baseline.
///
/// `inside`: the target lies inside a prefix whose incident is engaged this
/// tick. It is then folded into that incident: it starts none of its own
/// (one that was already open before goes on: it began as an attack of its
/// own), and its seconds stay out of its baseline like an incident's.
fn step_target(
    ctx: &StepCtx<'_>,
    ids: &mut IdGen,
    scratch: &mut Vec<u16>,
    target: &Target,
    st: &mut State,
    inside: bool,
    out: &mut Vec<DetectorOutput>,
) {
    let (settings, now, dt_ms) = (ctx.settings, ctx.now, ctx.dt_ms);
    let (values, alertable) = if st.seen_tick == ctx.tick {
        (st.current, st.alertable)
    } else {
        ([0.0; N], true)
    };
    let warm = st.is_warm(settings);
    let mut above = false;
    if warm {
        for (lane, v) in values.iter().enumerate() {
            if *v > st.threshold(settings, lane).1 {
                above = true;
            }
        }
    }
    // Readings are built only when an incident can start or is open:
    // most targets are idle most of the time.
    let needs_readings = warm && (above || st.phase != Phase::Idle);
    let readings: Vec<Reading> = if needs_readings {
        (0..N)
            .map(|lane| {
                let (baseline, threshold) = st.threshold(settings, lane);
                Reading {
                    key: SeriesKey::new(target.clone(), LANES[lane]),
                    value: values[lane],
                    baseline,
                    threshold,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let folded = inside && st.open.is_none();
    let input = if above && alertable && !folded {
        Input::Above
    } else {
        Input::Below
    };
    let (phase, transition) = step(st.phase, input, now, ctx.timing);
    st.phase = phase;
    match transition {
        Transition::Started => {
            let id = ids.next_id(now).to_string();
            let inc = OpenIncident::open(id, now, &readings);
            out.push(DetectorOutput::Started(inc.info()));
            st.open = Some(Box::new(inc));
        }
        Transition::Resolved => {
            if let Some(mut inc) = st.open.take() {
                inc.absorb(&readings);
                out.push(DetectorOutput::Resolved(inc.info(), inc.summary(now)));
            }
        }
        _ => {
            if let Some(inc) = st.open.as_mut() {
                inc.absorb(&readings);
                if now - inc.last_update_ms >= settings.update_interval_ms as i64 {
                    inc.last_update_ms = now;
                    out.push(DetectorOutput::Updated(inc.info()));
                }
            }
        }
    }
    if let Some(inc) = st.open.as_mut() {
        inc.add_traffic(values[0] * ctx.dt, values[1] * ctx.dt / 8.0);
    }
    // The baseline: time-weighted seconds, incident time left out.
    for (lane, v) in values.iter().enumerate() {
        st.bucket_sum[lane] += v * dt_ms as f64;
    }
    st.bucket_ms += dt_ms;
    st.tainted |= st.phase.is_engaged() || above || inside;
    if st.bucket_ms >= 1_000 {
        let ms = st.bucket_ms as f64;
        let codes: [u16; N] = st.bucket_sum.map(|sum| encode(sum / ms));
        let active = codes.iter().any(|c| *c != 0);
        if !st.tainted {
            st.window.push(&codes);
            st.pushes_since += 1;
            if st.pushes_since >= settings.recompute_every || st.window.len() == 1 {
                st.recompute(scratch);
            }
        }
        if active {
            st.last_active_ms = now;
        }
        st.bucket_sum = [0.0; N];
        st.bucket_ms = 0;
        st.tainted = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const T0: i64 = 1_795_225_450_000;

    fn settings() -> DetectorSettings {
        DetectorSettings {
            warmup_samples: 5,
            tick_ms: 1_000,
            quiet_period_ms: 2_000,
            ..Default::default()
        }
    }

    fn ip(s: &str) -> Target {
        Target::Ip(s.parse::<IpAddr>().unwrap())
    }

    fn rates(t: Target, pps: f64) -> TargetRates {
        TargetRates {
            target: t,
            pps,
            bps: pps * 800.0,
            flows: pps / 10.0,
            tcp_pps: pps,
            udp_pps: 0.0,
            icmp_pps: 0.0,
            alertable: true,
        }
    }

    fn obs(i: i64, targets: Vec<TargetRates>) -> TickObservation {
        TickObservation {
            unix_ms: T0 + i * 1000,
            dt: 1.0,
            targets,
            ..Default::default()
        }
    }

    #[test]
    fn hex_codes_round_trip() {
        let codes = vec![0, 1, 4095, 2048, 7];
        assert_eq!(parse_hex_codes(&hex_codes(&codes)), Some(codes));
        assert_eq!(parse_hex_codes("12"), None);
        assert_eq!(parse_hex_codes("zzz"), None);
    }

    #[test]
    fn a_new_ip_is_warm_when_the_bank_is_and_alerts_above_its_floor() {
        let s = settings();
        let mut bank = TargetBank::default();
        let mut ids = IdGen::new(1);
        let a = ip("203.0.113.1");
        for i in 0..10 {
            assert!(bank
                .observe(&s, &mut ids, &obs(i, vec![rates(a.clone(), 100.0)]))
                .is_empty());
        }
        // 203.0.113.9 never seen: created with 10 s of zeros, so warm.
        let b = ip("203.0.113.9");
        let outs = bank.observe(
            &s,
            &mut ids,
            &obs(
                10,
                vec![rates(a.clone(), 100.0), rates(b.clone(), 50_000.0)],
            ),
        );
        assert_eq!(outs.len(), 1, "{outs:?}");
        let DetectorOutput::Started(info) = &outs[0] else {
            panic!("{outs:?}")
        };
        assert_eq!(info.target, "203.0.113.9");
        assert_eq!(info.threshold, 2_000.0, "floor over a zero baseline");
        assert!(info.metrics.iter().any(|m| m.metric == "flows"));
        // Quiet again: resolves after the quiet period, with totals.
        let mut resolved = None;
        for i in 11..16 {
            for o in bank.observe(&s, &mut ids, &obs(i, vec![rates(a.clone(), 100.0)])) {
                if let DetectorOutput::Resolved(info, sum) = o {
                    resolved = Some((info, sum));
                }
            }
        }
        let (info, sum) = resolved.expect("resolved");
        assert_eq!(info.target, "203.0.113.9");
        assert_eq!(sum.total_packets, 50_000);
        assert!(!bank.has_open_incident());
    }

    #[test]
    fn learning_suppression_and_taint() {
        let s = settings();
        let mut bank = TargetBank::default();
        let mut ids = IdGen::new(1);
        let p = Target::Prefix("203.0.113.0/24".into());
        for i in 0..20 {
            bank.observe(&s, &mut ids, &obs(i, vec![rates(p.clone(), 10_000.0)]));
        }
        let key = SeriesKey::new(p.clone(), Metric::RxPps);
        let (base, thr) = bank.threshold_of(&s, &key).unwrap();
        assert!((base - 10_000.0).abs() < 50.0, "{base}");
        assert!((thr - 30_000.0).abs() < 150.0);
        // Not alertable: no incident, and the attack stays out of the window.
        let mut r = rates(p.clone(), 500_000.0);
        r.alertable = false;
        for i in 20..40 {
            assert!(bank
                .observe(&s, &mut ids, &obs(i, vec![r.clone()]))
                .is_empty());
        }
        let (base, _) = bank.threshold_of(&s, &key).unwrap();
        assert!(
            (base - 10_000.0).abs() < 50.0,
            "the suppressed attack was not learnt: {base}"
        );
        // Alertable: an incident on the prefix.
        let outs = bank.observe(&s, &mut ids, &obs(40, vec![rates(p.clone(), 500_000.0)]));
        assert!(matches!(&outs[..], [DetectorOutput::Started(i)] if i.target == "203.0.113.0/24"));
    }

    /// 100 ms ticks, so the confirmation takes 3 ticks (as in the agent).
    fn fast() -> DetectorSettings {
        DetectorSettings {
            tick_ms: 100,
            ..settings()
        }
    }

    fn fast_obs(i: i64, targets: Vec<TargetRates>) -> TickObservation {
        TickObservation {
            unix_ms: T0 + i * 100,
            dt: 0.1,
            targets,
            ..Default::default()
        }
    }

    fn started(outs: &[DetectorOutput]) -> Vec<String> {
        outs.iter()
            .filter_map(|o| match o {
                DetectorOutput::Started(i) => Some(i.target.clone()),
                _ => None,
            })
            .collect()
    }

    /// A carpet bombing of 64 IPs whose per-IP rates jitter around (and
    /// often far over) their floors, as bunched flow exports make them:
    /// one incident, on the prefix, in every arrangement of the jitter.
    #[test]
    fn a_carpet_with_jittery_members_is_one_prefix_incident() {
        let s = fast();
        let p = Target::Prefix("198.18.0.0/24".into());
        for seed in 0..20u64 {
            let mut bank = TargetBank::default();
            let mut ids = IdGen::new(1);
            let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut all = Vec::new();
            for i in 0..200 {
                let attack = (60..140).contains(&i);
                let mut t = Vec::new();
                let mut sum = 0.0;
                for h in 0..64u8 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // 0 to 6x the floor; calm: a few pps.
                    let pps = if attack {
                        (x >> 33) as f64 / f64::from(u32::MAX >> 1) * 12_000.0
                    } else {
                        (x >> 60) as f64
                    };
                    sum += pps;
                    t.push(rates(ip(&format!("198.18.0.{h}")), pps));
                }
                t.push(rates(p.clone(), sum));
                all.extend(started(&bank.observe(&s, &mut ids, &fast_obs(i, t))));
            }
            assert_eq!(all, ["198.18.0.0/24"], "seed {seed}");
        }
    }

    #[test]
    fn folding_spares_open_incidents_and_ends_with_the_prefix() {
        let s = fast();
        let mut bank = TargetBank::default();
        let mut ids = IdGen::new(1);
        let p = Target::Prefix("203.0.113.0/24".into());
        let (a, b) = (ip("203.0.113.7"), ip("203.0.113.8"));
        let tick = |bank: &mut TargetBank, ids: &mut IdGen, i, pa, pb, carpet: bool| {
            let mut t = vec![rates(a.clone(), pa), rates(b.clone(), pb)];
            let mut pr = rates(p.clone(), pa + pb + if carpet { 100_000.0 } else { 0.0 });
            pr.alertable = carpet;
            t.push(pr);
            started(&bank.observe(&s, ids, &fast_obs(i, t)))
        };
        let mut all = Vec::new();
        for i in 0..50 {
            all.extend(tick(&mut bank, &mut ids, i, 10.0, 10.0, false));
        }
        // A flood on .7 alone: its own incident (the prefix is not alertable).
        for i in 50..60 {
            all.extend(tick(&mut bank, &mut ids, i, 50_000.0, 10.0, false));
        }
        assert_eq!(all, ["203.0.113.7"]);
        // Then the whole /24: one prefix incident; .8, far above its floor,
        // is folded into it; .7's incident goes on.
        for i in 60..80 {
            all.extend(tick(&mut bank, &mut ids, i, 50_000.0, 20_000.0, true));
        }
        assert_eq!(all, ["203.0.113.7", "203.0.113.0/24"]);
        assert!(bank.states[&a].open.is_some(), ".7 still open");
        assert_eq!(bank.states[&b].phase, Phase::Idle, ".8 folded");
        // The carpet ends: the prefix resolves after its quiet period, and
        // .8, still flooded on its own, now has its own incident.
        for i in 80..130 {
            all.extend(tick(&mut bank, &mut ids, i, 10.0, 20_000.0, false));
        }
        assert!(bank.states[&p].open.is_none(), "the prefix resolved");
        assert_eq!(all, ["203.0.113.7", "203.0.113.0/24", "203.0.113.8"]);
        // The folded seconds were not learnt: .8's baseline is still calm.
        let key = SeriesKey::new(b.clone(), Metric::RxPps);
        let (base, _) = bank.threshold_of(&s, &key).unwrap();
        assert!(base < 100.0, "{base}");
    }

    #[test]
    fn idle_targets_are_evicted_and_the_bank_is_bounded() {
        let s = DetectorSettings {
            window: 10,
            max_targets: 3,
            ..settings()
        };
        let mut bank = TargetBank::default();
        let mut ids = IdGen::new(1);
        let t: Vec<TargetRates> = (1..=5)
            .map(|i| rates(ip(&format!("10.0.0.{i}")), 10.0))
            .collect();
        bank.observe(&s, &mut ids, &obs(0, t));
        assert_eq!((bank.len(), bank.refused()), (3, 2));
        assert_eq!(bank.window_bytes(), 3 * 90, "10 s x 6 lanes x 12 bits each");
        for i in 1..13 {
            bank.observe(&s, &mut ids, &obs(i, vec![]));
        }
        assert!(bank.is_empty(), "idle for a whole window");
    }

    #[test]
    fn snapshot_round_trip() {
        let s = settings();
        let mut bank = TargetBank::default();
        let mut ids = IdGen::new(1);
        let a = ip("2001:db8::1");
        for i in 0..30 {
            bank.observe(
                &s,
                &mut ids,
                &obs(i, vec![rates(a.clone(), 1_000.0 + i as f64)]),
            );
        }
        let (secs, snap) = bank.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let back: Vec<TargetSnapshot> = serde_json::from_str(&json).unwrap();
        let mut restored = TargetBank::default();
        assert_eq!(restored.restore(&s, secs, &back, T0), 1);
        assert_eq!(restored.snapshot(), (secs, snap), "same p99s and samples");
        for m in LANES {
            let key = SeriesKey::new(a.clone(), m);
            assert_eq!(
                restored.threshold_of(&s, &key),
                bank.threshold_of(&s, &key),
                "{m}"
            );
        }
    }
}
