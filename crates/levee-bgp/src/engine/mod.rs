//! [`BgpEngine`]: what the agent (and the server, per tenant) calls. It
//! feeds each incident's observed rate through the escalation state
//! machine, turns levels into rules (FlowSpec from the fingerprint, RTBH,
//! diversion), checks every announcement (own prefixes, RPKI, the rule
//! cap), announces through the speaker or the scrubber, withdraws on
//! resolve or TTL lapse, and writes every decision to the audit log.
//!
//! The engine never reads the wall clock: `now` (ms since the epoch)
//! comes with every call, and each call returns the events to emit (the
//! agent's `mitigation_*` events, executor = the speaker).

use crate::action::Action;
use crate::build;
use crate::config::{BgpConfig, ThresholdConfig, ThresholdOverrides};
use crate::escalate::{transition, Event, Level, Reason, State, Step};
use crate::render::Op;
use crate::rpki::RoaSet;
use crate::rule::{Diversion, Rtbh, Rule, BLACKHOLE};
use crate::safety::{self, Ownership};
use crate::scrub::Scrubber;
use crate::speaker::Speaker;
use ipnet::IpNet;
use levee_mitigate::audit::{AuditLog, AuditRecord};
use levee_mitigate::IncidentView;
use levee_model::{EventBody, IncidentInfo, MitigationInfo};
use levee_packet::Family;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// Where ROAs are reloaded from (file or RTR cache), behind a seam so
/// tests need neither.
pub trait RoaSource: Send {
    fn describe(&self) -> String;
    fn load(&mut self) -> Result<RoaSet, String>;
}

/// One announced rule.
#[derive(Debug, Clone)]
pub struct LiveRule {
    pub id: String,
    pub level: Level,
    pub rule: Rule,
    pub executor: String,
    /// The exact text run to announce it.
    pub text: String,
    /// The scrubbing provider's receipt (diversions).
    pub receipt: Option<String>,
}

struct Tracked {
    view: IncidentView,
    state: State,
    live: Vec<LiveRule>,
}

pub struct BgpEngine {
    cfg: BgpConfig,
    own: Ownership,
    roas: Option<RoaSet>,
    roa_source: Option<Box<dyn RoaSource>>,
    next_roa_load: i64,
    roa_first_delay: Option<std::time::Duration>,
    speaker: Box<dyn Speaker>,
    scrubber: Option<Box<dyn Scrubber>>,
    audit: Option<AuditLog>,
    incidents: BTreeMap<String, Tracked>,
    seq: u64,
}

/// The rate an incident shows, in bits per second: `rx_bps` when the
/// detector reported it, else `rx_pps` times the fingerprint's mean length
/// (64 bytes without one).
pub fn observed_bps(info: &IncidentInfo) -> f64 {
    let metric = |name: &str| {
        info.metrics
            .iter()
            .filter(|m| m.metric == name)
            .map(|m| m.value)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
            .or_else(|| (info.metric == name).then_some(info.value))
    };
    if let Some(bps) = metric("rx_bps") {
        return bps;
    }
    let pps = metric("rx_pps").unwrap_or(0.0);
    let len = info
        .fingerprint
        .as_ref()
        .and_then(|f| f.get("length"))
        .and_then(|l| l.as_array().cloned())
        .and_then(|a| Some((a.first()?.as_f64()? + a.get(1)?.as_f64()?) / 2.0))
        .unwrap_or(64.0);
    pps * len * 8.0
}

impl BgpEngine {
    /// A new engine; `cfg` is assumed validated ([`BgpConfig::validate`]).
    pub fn new(cfg: BgpConfig, speaker: Box<dyn Speaker>) -> BgpEngine {
        let own = Ownership {
            prefixes: cfg.prefixes.clone(),
            origin_as: cfg.origin_as,
        };
        BgpEngine {
            cfg,
            own,
            roas: None,
            roa_source: None,
            next_roa_load: 0,
            roa_first_delay: None,
            speaker,
            scrubber: None,
            audit: None,
            incidents: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn with_scrubber(mut self, s: Box<dyn Scrubber>) -> Self {
        self.scrubber = Some(s);
        self
    }

    pub fn with_audit(mut self, a: AuditLog) -> Self {
        self.audit = Some(a);
        self
    }

    pub fn with_roas(mut self, roas: RoaSet) -> Self {
        self.roas = Some(roas);
        self
    }

    /// ROAs reloaded from `src` now (first `tick`) and every `[bgp.rpki] refresh`.
    pub fn with_roa_source(mut self, src: Box<dyn RoaSource>) -> Self {
        self.roa_source = Some(src);
        self
    }

    /// The ROAs were just loaded: the first reload is due after `after`
    /// from the first tick, not at it.
    pub fn skip_roa_reload_until(&mut self, after: std::time::Duration) {
        self.roa_first_delay = Some(after);
    }

    pub fn config(&self) -> &BgpConfig {
        &self.cfg
    }

    pub fn roas(&self) -> Option<&RoaSet> {
        self.roas.as_ref()
    }

    /// Every rule announced now.
    pub fn live(&self) -> impl Iterator<Item = &LiveRule> {
        self.incidents.values().flat_map(|t| t.live.iter())
    }

    pub fn live_count(&self) -> usize {
        self.incidents.values().map(|t| t.live.len()).sum()
    }

    /// An incident's escalation state.
    pub fn state(&self, incident_id: &str) -> Option<State> {
        self.incidents.get(incident_id).map(|t| t.state)
    }

    /// Feeds one agent event (incident started/updated/resolved, vector
    /// change); other events are ignored.
    pub fn on_event(&mut self, ev: &EventBody, now: i64) -> Vec<EventBody> {
        match ev {
            EventBody::IncidentStarted(i) | EventBody::IncidentUpdated(i) => {
                let view = IncidentView::from_info(i);
                let bps = observed_bps(i);
                let t = self
                    .incidents
                    .entry(i.incident_id.clone())
                    .or_insert(Tracked {
                        view: view.clone(),
                        state: State::Watching,
                        live: Vec::new(),
                    });
                // Later events carry the current classification.
                if view.fingerprint.is_some() || t.view.fingerprint.is_none() {
                    t.view = view;
                }
                self.step(&i.incident_id, Event::Rate { bps, now }, now)
            }
            EventBody::IncidentResolved { info, .. } => {
                let id = info.incident_id.clone();
                let out = self.step(&id, Event::Resolved, now);
                self.incidents.remove(&id);
                out
            }
            _ => Vec::new(),
        }
    }

    /// Expires rules whose TTL lapsed and reloads ROAs when due.
    pub fn tick(&mut self, now: i64) -> Vec<EventBody> {
        let mut out = self.reload_roas(now);
        let ids: Vec<String> = self.incidents.keys().cloned().collect();
        for id in ids {
            out.extend(self.step(&id, Event::Tick { now }, now));
        }
        out
    }

    /// Withdraws everything (the agent is stopping).
    pub fn shutdown(&mut self, now: i64) -> Vec<EventBody> {
        self.withdraw_everything(now, "agent stopped")
    }

    /// Withdraws every rule and forgets every incident, each withdrawal
    /// audited with `reason` (the server: stopping, leadership lost, an
    /// operator's withdraw through the API).
    pub fn withdraw_everything(&mut self, now: i64, reason: &str) -> Vec<EventBody> {
        let mut out = Vec::new();
        let ids: Vec<String> = self.incidents.keys().cloned().collect();
        for id in ids {
            out.extend(self.withdraw_all(&id, now, reason, false));
        }
        self.incidents.clear();
        out
    }

    /// New escalation thresholds, per-family overrides and rule cap (a
    /// tenant's tuning on the server). Live rules stay; the next rate of
    /// each incident is judged by the new thresholds (levels only rise).
    pub fn retune(
        &mut self,
        thresholds: ThresholdConfig,
        profiles: BTreeMap<Family, ThresholdOverrides>,
        max_rules: usize,
    ) {
        self.cfg.thresholds = thresholds;
        self.cfg.profiles = profiles;
        self.cfg.max_rules = max_rules.max(1);
    }

    /// Every tracked incident: its id, escalation state and live rules.
    pub fn incidents(&self) -> impl Iterator<Item = (&str, State, &[LiveRule])> {
        self.incidents
            .iter()
            .map(|(id, t)| (id.as_str(), t.state, t.live.as_slice()))
    }

    fn reload_roas(&mut self, now: i64) -> Vec<EventBody> {
        let Some(src) = self.roa_source.as_mut() else {
            return Vec::new();
        };
        if let Some(d) = self.roa_first_delay.take() {
            self.next_roa_load = now + d.as_millis() as i64;
        }
        if now < self.next_roa_load {
            return Vec::new();
        }
        let every = self
            .cfg
            .rpki
            .refresh
            .unwrap_or(std::time::Duration::from_secs(600));
        self.next_roa_load = now + every.as_millis() as i64;
        match src.load() {
            Ok(set) => {
                tracing::info!(roas = set.len(), source = %src.describe(), "ROAs loaded");
                self.roas = Some(set);
                Vec::new()
            }
            Err(e) => vec![EventBody::SourceError {
                source_name: "rpki".into(),
                error: format!(
                    "{e} (keeping {} ROAs from the last load)",
                    self.roas.as_ref().map_or(0, RoaSet::len)
                ),
            }],
        }
    }

    fn step(&mut self, id: &str, ev: Event, now: i64) -> Vec<EventBody> {
        let Some(t) = self.incidents.get(id) else {
            return Vec::new();
        };
        let th = self.cfg.thresholds_for(t.view.family);
        let ttl_ms = self.cfg.ttl.as_millis() as i64;
        let (next, step) = transition(t.state, ev, &th, ttl_ms);
        if let Some(t) = self.incidents.get_mut(id) {
            t.state = next;
        }
        match step {
            None | Some(Step::Refresh) => Vec::new(),
            Some(Step::Escalate { to, .. }) => self.escalate(id, to, now),
            Some(Step::WithdrawAll(Reason::Resolved)) => {
                self.withdraw_all(id, now, "incident resolved", false)
            }
            Some(Step::WithdrawAll(Reason::Expired)) => {
                self.withdraw_all(id, now, "ttl expired", true)
            }
        }
    }

    /// The rules level `to` wants for an incident on `victim` (a host
    /// route, or a prefix for flow mode's prefix incidents).
    fn desired(&self, view: &IncidentView, victim: IpNet, to: Level) -> Vec<(Level, Rule)> {
        let action = if to == Level::RateLimit {
            Action::RateLimit(self.cfg.rate_limit_bytes())
        } else {
            Action::Discard
        };
        let flow_level = if to == Level::RateLimit {
            Level::RateLimit
        } else {
            Level::Discard
        };
        let mut out: Vec<(Level, Rule)> = build::flow_rules(view, victim, &[action])
            .into_iter()
            .map(|f| (flow_level, Rule::Flow(f)))
            .collect();
        if to >= Level::Rtbh {
            let mut communities = vec![BLACKHOLE];
            communities.extend(
                self.cfg
                    .rtbh
                    .communities
                    .iter()
                    .copied()
                    .filter(|c| *c != BLACKHOLE),
            );
            let next_hop = if victim.addr().is_ipv4() {
                self.cfg
                    .rtbh
                    .next_hop
                    .unwrap_or(IpAddr::from([192, 0, 2, 1]))
            } else {
                self.cfg
                    .rtbh
                    .next_hop6
                    .unwrap_or("100::1".parse().expect("literal"))
            };
            out.push((
                Level::Rtbh,
                Rule::Rtbh(Rtbh {
                    prefix: victim,
                    next_hop,
                    communities,
                }),
            ));
        }
        if to >= Level::Divert {
            let len = if victim.addr().is_ipv4() {
                self.cfg.divert_len_v4
            } else {
                self.cfg.divert_len_v6
            };
            // A prefix wider than the diversion length is diverted whole.
            if let Ok(p) = IpNet::new(victim.addr(), len.min(victim.prefix_len())) {
                out.push((Level::Divert, Rule::Divert(Diversion { prefix: p.trunc() })));
            }
        }
        out
    }

    fn info(
        &self,
        view: &IncidentView,
        id: &str,
        executor: &str,
        text: &str,
        rule: &Rule,
        level: Level,
    ) -> MitigationInfo {
        MitigationInfo {
            mitigation_id: id.to_string(),
            incident_id: view.id.clone(),
            executor: executor.to_string(),
            rule: text.to_string(),
            action: format!("{} ({level})", rule.describe()),
            target: view.target.clone(),
            ttl_s: self.cfg.ttl.as_secs(),
            dry_run: false,
        }
    }

    fn audit(&mut self, now: i64, step: &str, info: &MitigationInfo, reason: &str) {
        if let Some(a) = self.audit.as_mut() {
            let rec = AuditRecord {
                step: step.into(),
                mitigation_id: info.mitigation_id.clone(),
                incident_id: info.incident_id.clone(),
                executor: info.executor.clone(),
                rule: if matches!(step, "announced" | "refused") {
                    info.rule.clone()
                } else {
                    String::new()
                },
                reason: reason.into(),
            };
            if let Err(e) = a.append(now, rec) {
                tracing::error!("{e}");
            }
        }
    }

    fn next_id(&mut self, incident: &str) -> String {
        self.seq += 1;
        let short: String = incident.chars().take(8).collect();
        format!("bgp-{short}-{}", self.seq)
    }

    fn escalate(&mut self, id: &str, to: Level, now: i64) -> Vec<EventBody> {
        let mut out = Vec::new();
        let view = self.incidents[id].view.clone();
        let Some(victim) = build::target(&view) else {
            let info = MitigationInfo {
                mitigation_id: String::new(),
                incident_id: view.id.clone(),
                executor: self.speaker.name().to_string(),
                rule: String::new(),
                action: to.to_string(),
                target: view.target.clone(),
                ttl_s: self.cfg.ttl.as_secs(),
                dry_run: false,
            };
            let error = format!(
                "refused: incident on {} names no attacked address (no packet view), so no BGP rule can be bound to it",
                view.target
            );
            self.audit(now, "refused", &info, &error);
            out.push(EventBody::MitigationFailed { info, error });
            return out;
        };
        let desired = self.desired(&view, victim, to);
        let live: Vec<Rule> = self.incidents[id]
            .live
            .iter()
            .map(|l| l.rule.clone())
            .collect();
        // Make before break: announce the new level's rules, then withdraw
        // the ones it replaces.
        for (level, rule) in desired.iter().filter(|(_, r)| !live.contains(r)) {
            out.extend(self.announce(id, &view, *level, rule.clone(), now));
        }
        let keep: Vec<&Rule> = desired.iter().map(|(_, r)| r).collect();
        let gone: Vec<LiveRule> = {
            let t = self.incidents.get_mut(id).expect("tracked");
            let (stay, gone): (Vec<_>, Vec<_>) =
                t.live.drain(..).partition(|l| keep.contains(&&l.rule));
            t.live = stay;
            gone
        };
        let desired_keys: Vec<_> = desired.iter().map(|(_, r)| r.key()).collect();
        for l in gone {
            let reason = format!("replaced at {to}");
            if desired_keys.contains(&l.rule.key()) {
                // The new announcement of the same NLRI already replaced it;
                // withdrawing would remove the new one.
                let info = self.info(&view, &l.id, &l.executor, &l.text, &l.rule, l.level);
                self.audit(now, "withdrawn", &info, &reason);
                out.push(EventBody::MitigationRolledBack {
                    info,
                    reason,
                    expired: false,
                    packets: None,
                    bytes: None,
                });
            } else {
                out.extend(self.withdraw(&view, l, now, &reason, false));
            }
        }
        out
    }

    fn announce(
        &mut self,
        id: &str,
        view: &IncidentView,
        level: Level,
        rule: Rule,
        now: i64,
    ) -> Vec<EventBody> {
        let mid = self.next_id(id);
        let (executor, text) = match &rule {
            Rule::Divert(d) => (
                self.scrubber
                    .as_ref()
                    .map_or("scrubber".to_string(), |s| s.name().to_string()),
                format!("divert {}", d.prefix),
            ),
            r => (
                self.speaker.name().to_string(),
                self.speaker
                    .render(r, Op::Announce)
                    .unwrap_or_else(|e| format!("(not renderable: {e})")),
            ),
        };
        let info = self.info(view, &mid, &executor, &text, &rule, level);
        let refuse = |me: &mut Self, error: String| {
            me.audit(now, "refused", &info, &error);
            vec![EventBody::MitigationFailed {
                info: info.clone(),
                error,
            }]
        };
        if self.live_count() >= self.cfg.max_rules {
            let e = format!(
                "refused: {} BGP rules are live, the most allowed ([bgp] max_rules = {}); raise it or let rules expire",
                self.live_count(),
                self.cfg.max_rules
            );
            return refuse(self, e);
        }
        let approval = match safety::check(&rule, &self.own, self.roas.as_ref()) {
            Ok(a) => a,
            Err(r) => return refuse(self, format!("refused: {r}")),
        };
        let mut out = vec![EventBody::MitigationPreviewed(info.clone())];
        let t0 = Instant::now();
        let result: Result<Option<String>, String> = match &rule {
            Rule::Divert(d) => match self.scrubber.as_mut() {
                Some(s) => s.divert(d.prefix).map(Some).map_err(|e| e.to_string()),
                None => Err("no scrubbing provider is configured for level 4".into()),
            },
            r => self
                .speaker
                .announce(r)
                .map(|()| None)
                .map_err(|e| e.to_string()),
        };
        let apply_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(receipt) => {
                self.audit(
                    now,
                    "announced",
                    &info,
                    &format!(
                        "{} covered by {} (ROA {})",
                        level, approval.covering, approval.roa
                    ),
                );
                if let Some(t) = self.incidents.get_mut(id) {
                    t.live.push(LiveRule {
                        id: mid,
                        level,
                        rule,
                        executor,
                        text,
                        receipt,
                    });
                }
                out.push(EventBody::MitigationApplied { info, apply_ms });
            }
            Err(error) => {
                self.audit(now, "failed", &info, &error);
                out.push(EventBody::MitigationFailed { info, error });
            }
        }
        out
    }

    fn withdraw(
        &mut self,
        view: &IncidentView,
        l: LiveRule,
        now: i64,
        reason: &str,
        expired: bool,
    ) -> Vec<EventBody> {
        let info = self.info(view, &l.id, &l.executor, &l.text, &l.rule, l.level);
        let result = match (&l.rule, &l.receipt) {
            (Rule::Divert(_), Some(receipt)) => match self.scrubber.as_mut() {
                Some(s) => s.withdraw(receipt).map_err(|e| e.to_string()),
                None => Err("the scrubbing provider is gone".into()),
            },
            (r, _) => self.speaker.withdraw(r).map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                self.audit(now, "withdrawn", &info, reason);
                // Routers keep FlowSpec counters; BGP carries none back.
                vec![EventBody::MitigationRolledBack {
                    info,
                    reason: reason.to_string(),
                    expired,
                    packets: None,
                    bytes: None,
                }]
            }
            Err(e) => {
                let error = format!("withdrawing ({reason}): {e}");
                self.audit(now, "failed", &info, &error);
                vec![EventBody::MitigationFailed { info, error }]
            }
        }
    }

    fn withdraw_all(&mut self, id: &str, now: i64, reason: &str, expired: bool) -> Vec<EventBody> {
        let Some(t) = self.incidents.get_mut(id) else {
            return Vec::new();
        };
        let view = t.view.clone();
        let live: Vec<LiveRule> = t.live.drain(..).collect();
        let mut out = Vec::new();
        // Highest level first: stop diverting before un-blackholing.
        for l in live.into_iter().rev() {
            out.extend(self.withdraw(&view, l, now, reason, expired));
        }
        out
    }
}

#[cfg(test)]
mod tests;
