//! [`MitigationEngine`]: what the agent calls. It turns incidents into
//! mitigations (plan -> safety -> preview -> apply -> verify), keeps them
//! alive while the incident lasts (refreshing kernel TTLs), removes them
//! when it ends or their TTL passes, rolls back rules the collateral guard
//! condemns, reconciles the kernel with what it knows, and writes every
//! step to the audit log.
//!
//! The engine never reads a clock: `now` (ms since the epoch) comes with
//! every call, so a recorded incident stream replays the same way. Each
//! call returns the events to emit ([`EventBody`]); the agent adds `ts` and
//! `node`.

use crate::action::{Action, ExecutorKind};
use crate::audit::{AuditLog, AuditRecord};
use crate::config::{MitigationConfig, Profiles};
use crate::exec::{commands_text, Availability, Executor};
use crate::guard::{judge, LegitHistory, LegitMeter, Verdict};
use crate::host::HostInfo;
use crate::matcher::{self, Match};
use crate::rule::{collapse, RuleSpec};
use crate::safety::Protected;
use crate::state::{transition, Event, State};
use levee_detector::ids::IdGen;
use levee_model::{EventBody, IncidentInfo, MitigationInfo};
use levee_packet::classify::fingerprint::IpPrefix;
use levee_packet::{Family, Fingerprint};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One mitigation the engine tracks.
#[derive(Debug, Clone)]
pub struct Mitigation {
    pub spec: RuleSpec,
    pub executor: ExecutorKind,
    pub state: State,
    /// The exact text rendered at preview.
    pub rule: String,
    /// The incident's target.
    pub target: String,
    pub applied_ms: Option<i64>,
    pub dry_run: bool,
}

impl Mitigation {
    fn info(&self) -> MitigationInfo {
        MitigationInfo {
            mitigation_id: self.spec.id.to_string(),
            incident_id: self.spec.incident_id.clone(),
            executor: self.executor.to_string(),
            rule: self.rule.clone(),
            action: self.spec.action.to_string(),
            target: self.target.clone(),
            ttl_s: self.spec.ttl.as_secs(),
            dry_run: self.dry_run,
        }
    }
}

/// An incident as the engine needs it.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub id: String,
    pub target: String,
    pub family: Option<Family>,
    pub fingerprint: Option<Fingerprint>,
    /// Names of the metrics above threshold.
    pub metrics: Vec<String>,
    /// The attacked address, when the packet view found one destination
    /// taking most of the traffic.
    pub victim: Option<IpAddr>,
    pub started_ms: i64,
}

impl IncidentView {
    /// From an incident event; an unreadable family or fingerprint counts
    /// as absent (the fallbacks take over).
    pub fn from_info(i: &IncidentInfo) -> IncidentView {
        let family = i
            .family
            .as_deref()
            .and_then(|f| serde_json::from_value(serde_json::Value::String(f.into())).ok());
        let fingerprint = i
            .fingerprint
            .clone()
            .and_then(|v| serde_json::from_value::<Fingerprint>(v).ok());
        IncidentView {
            id: i.incident_id.clone(),
            target: i.target.clone(),
            family,
            fingerprint,
            metrics: i.metrics.iter().map(|m| m.metric.clone()).collect(),
            victim: i.details.victim.as_deref().and_then(|v| v.parse().ok()),
            started_ms: levee_model::timefmt::parse_rfc3339(&i.started_at).unwrap_or(0),
        }
    }

    /// The family whose profile applies: the classification, else a guess
    /// from the metrics (SYN_RECV sockets: SYN flood; only UDP or only
    /// ICMP: that flood; anything else: multi_vector's generic profile).
    pub fn profile_family(&self) -> Family {
        if let Some(f) = self.family {
            return f;
        }
        let has = |m: &str| self.metrics.iter().any(|x| x == m);
        if has("syn_recv") {
            Family::SynFlood
        } else if has("udp_pps") && !has("tcp_pps") && !has("icmp_pps") {
            Family::UdpFlood
        } else if has("icmp_pps") && !has("tcp_pps") && !has("udp_pps") {
            Family::IcmpFlood
        } else {
            Family::MultiVector
        }
    }
}

/// What the engine is given besides config and executors.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Seed of the mitigation id generator (same seed, same ids).
    pub seed: u64,
}

/// Why an engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid [mitigation] config:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("the configured executor {0} is not available: {1}")]
    Unavailable(ExecutorKind, String),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

pub struct MitigationEngine {
    cfg: MitigationConfig,
    host: HostInfo,
    protected: Protected,
    executors: BTreeMap<ExecutorKind, Box<dyn Executor>>,
    available: BTreeMap<ExecutorKind, Availability>,
    live: Vec<Mitigation>,
    /// Open incidents: id -> start time.
    open: BTreeMap<String, i64>,
    audit: Option<AuditLog>,
    ids: IdGen,
    meter: Option<Box<dyn LegitMeter>>,
    legit: BTreeMap<IpAddr, LegitHistory>,
    last_meter_ms: Option<i64>,
    last_meter_error: Option<String>,
}

/// How often the legitimate-traffic meter is read.
const METER_EVERY_MS: i64 = 1_000;

impl MitigationEngine {
    /// An engine over `executors` (any set; the XDP executor plugs in the
    /// same way). `host` is what the node is; `audit` the open audit log.
    pub fn new(
        cfg: MitigationConfig,
        host: HostInfo,
        executors: Vec<Box<dyn Executor>>,
        audit: Option<AuditLog>,
        opts: EngineOptions,
    ) -> Result<MitigationEngine, EngineError> {
        let problems = cfg.validate("mitigation");
        if !problems.is_empty() {
            return Err(EngineError::Config(problems));
        }
        let protected = Protected::new(&cfg.allowlist, &cfg.protected, &host);
        let mut map = BTreeMap::new();
        let mut available = BTreeMap::new();
        for mut e in executors {
            available.insert(e.kind(), e.availability());
            map.insert(e.kind(), e);
        }
        if !cfg.dry_run {
            match available.get(&cfg.executor) {
                Some(Availability::Ready) => {}
                Some(Availability::Missing(why)) => {
                    return Err(EngineError::Unavailable(cfg.executor, why.clone()))
                }
                None => {
                    return Err(EngineError::Unavailable(
                        cfg.executor,
                        "no such executor was built into this agent".into(),
                    ))
                }
            }
        }
        Ok(MitigationEngine {
            cfg,
            host,
            protected,
            executors: map,
            available,
            live: Vec::new(),
            open: BTreeMap::new(),
            audit,
            ids: IdGen::new(opts.seed),
            meter: None,
            legit: BTreeMap::new(),
            last_meter_ms: None,
            last_meter_error: None,
        })
    }

    /// Adds the collateral guard's measurement of legitimate traffic.
    pub fn with_meter(mut self, meter: Box<dyn LegitMeter>) -> Self {
        self.meter = Some(meter);
        self
    }

    pub fn config(&self) -> &MitigationConfig {
        &self.cfg
    }

    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// Mitigations not yet final.
    pub fn live(&self) -> impl Iterator<Item = &Mitigation> {
        self.live.iter()
    }

    fn audit(&mut self, now: i64, step: &str, m: &Mitigation, reason: &str) {
        if let Some(a) = self.audit.as_mut() {
            let rec = AuditRecord {
                step: step.into(),
                mitigation_id: m.spec.id.to_string(),
                incident_id: m.spec.incident_id.clone(),
                executor: m.executor.to_string(),
                rule: if matches!(step, "previewed" | "applied") {
                    m.rule.clone()
                } else {
                    String::new()
                },
                reason: reason.into(),
            };
            if let Err(e) = a.append(now, rec) {
                // The audit trail failing must not stop mitigation; it is loud.
                tracing::error!("{e}");
            }
        }
    }

    /// Picks the executor for `action`: the step's own, else the configured
    /// one when it can, else the action's natural one.
    fn executor_for(
        &self,
        action: &Action,
        wanted: Option<ExecutorKind>,
    ) -> Result<ExecutorKind, String> {
        let kind = match wanted {
            Some(k) => k,
            None => {
                let default_ok = self
                    .executors
                    .get(&self.cfg.executor)
                    .is_some_and(|e| e.supports(action));
                if default_ok {
                    self.cfg.executor
                } else if let Some(k) = ExecutorKind::natural_for(action) {
                    k
                } else if self.cfg.executor == ExecutorKind::Xdp
                    && self
                        .executors
                        .get(&ExecutorKind::Nftables)
                        .is_some_and(|e| e.supports(action))
                {
                    // XDP only drops; it sits in front of netfilter, so
                    // what it cannot do nftables does behind it.
                    ExecutorKind::Nftables
                } else if *action == Action::SourceBlock
                    && self.executors.contains_key(&ExecutorKind::Ipset)
                {
                    ExecutorKind::Ipset
                } else {
                    return Err(format!("executor {} cannot do {action}", self.cfg.executor));
                }
            }
        };
        let Some(e) = self.executors.get(&kind) else {
            return Err(format!("executor {kind} is not built into this agent"));
        };
        if !e.supports(action) {
            return Err(format!("executor {kind} cannot do {action}"));
        }
        if let Some(Availability::Missing(why)) = self.available.get(&kind) {
            if !self.cfg.dry_run {
                return Err(format!("executor {kind} is not available: {why}"));
            }
        }
        Ok(kind)
    }

    fn active_count(&self) -> usize {
        self.live.iter().filter(|m| !m.state.is_final()).count()
    }

    /// Plans and (unless dry-run) applies the incident's profile.
    pub fn on_incident_started(&mut self, info: &IncidentInfo, now: i64) -> Vec<EventBody> {
        let inc = IncidentView::from_info(info);
        self.open.insert(
            inc.id.clone(),
            if inc.started_ms > 0 {
                inc.started_ms
            } else {
                now
            },
        );
        self.start(&inc, now)
    }

    /// As [`on_incident_started`](Self::on_incident_started), from a view.
    pub fn start(&mut self, inc: &IncidentView, now: i64) -> Vec<EventBody> {
        let mut events = Vec::new();
        let family = inc.profile_family();
        if !family.is_attack() {
            return events;
        }
        // The packet view's victim narrows an interface to the one address
        // under attack (when it is this node's).
        let dsts: Vec<IpAddr> = match inc.victim {
            Some(v) if self.host.addresses.iter().any(|a| a.addr == v) => vec![v],
            _ => self.host.target_addresses(&inc.target),
        };
        let (ttl_s, dry_run) = (self.cfg.ttl.as_secs(), self.cfg.dry_run);
        let fail = |events: &mut Vec<EventBody>, executor: &str, action: String, error: String| {
            events.push(EventBody::MitigationFailed {
                info: MitigationInfo {
                    mitigation_id: String::new(),
                    incident_id: inc.id.clone(),
                    executor: executor.into(),
                    rule: String::new(),
                    action,
                    target: inc.target.clone(),
                    ttl_s,
                    dry_run,
                },
                error,
            });
        };
        if dsts.is_empty() {
            fail(
                &mut events,
                "",
                String::new(),
                format!(
                    "no address of this node belongs to target {}; nothing to protect",
                    inc.target
                ),
            );
            return events;
        }
        let mut matches: Vec<Match> = Vec::new();
        let metric_names: Vec<&str> = inc.metrics.iter().map(String::as_str).collect();
        for dst in &dsts {
            matches.extend(matcher::for_incident(
                inc.fingerprint.as_ref(),
                inc.family,
                &metric_names,
                *dst,
            ));
        }
        let mut refusals = Vec::new();
        let sources: Vec<_> = inc
            .fingerprint
            .as_ref()
            .map(|fp| {
                let all: Vec<_> = if fp.any_of.is_empty() {
                    fp.src_prefixes.clone()
                } else {
                    fp.any_of
                        .iter()
                        .flat_map(|v| v.src_prefixes.clone())
                        .collect()
                };
                let (kept, refused) = self.protected.screen(&all);
                refusals = refused;
                collapse(&kept)
            })
            .unwrap_or_default();
        for m in &mut matches {
            let (kept, _) = self.protected.screen(&m.src_prefixes);
            m.src_prefixes = kept;
        }
        for r in &refusals {
            tracing::warn!(incident = %inc.id, "{r}");
        }
        let interface = if self.host.is_interface(&inc.target) {
            Some(inc.target.clone())
        } else {
            dsts.first()
                .and_then(|d| self.host.interface_of(*d))
                .map(String::from)
        }
        .filter(|i| !i.is_empty());

        for (action, wanted) in self.cfg.steps(family) {
            if action.needs_sources() && sources.is_empty() {
                continue; // no known sources (spoofed or unclassified): the next step acts
            }
            let kind = match self.executor_for(&action, wanted) {
                Ok(k) => k,
                Err(e) => {
                    fail(
                        &mut events,
                        wanted.map(|k| k.as_str()).unwrap_or(""),
                        action.to_string(),
                        e,
                    );
                    continue;
                }
            };
            if action.discards_all() {
                if let Some(m) = matches.iter().find(|m| !m.is_narrow()) {
                    fail(
                        &mut events,
                        kind.as_str(),
                        action.to_string(),
                        format!(
                            "refused: {action} of \"{m}\" would discard all such traffic, legitimate included; profile {family} needs a narrower match (a fingerprint) or rate_limit/hash_limit"
                        ),
                    );
                    continue;
                }
            }
            if self.active_count() >= self.cfg.max_rules {
                fail(
                    &mut events,
                    kind.as_str(),
                    action.to_string(),
                    format!(
                        "refused: {} mitigations are live, the max_rules cap",
                        self.cfg.max_rules
                    ),
                );
                continue;
            }
            let spec = RuleSpec {
                id: self.ids.next_id(now),
                incident_id: inc.id.clone(),
                action,
                matches: if action.is_host_setting() {
                    vec![]
                } else {
                    matches.clone()
                },
                sources: if action.needs_sources() {
                    sources.clone()
                } else {
                    vec![]
                },
                interface: interface.clone(),
                ttl: self.cfg.ttl,
                expires_unix_ms: now + self.cfg.ttl.as_millis() as i64,
            };
            events.extend(self.launch(spec, kind, &inc.target, now));
        }
        events
    }

    /// Previews one mitigation and, unless dry-run, applies and verifies it.
    fn launch(
        &mut self,
        spec: RuleSpec,
        kind: ExecutorKind,
        target: &str,
        now: i64,
    ) -> Vec<EventBody> {
        let mut events = Vec::new();
        let exec = self
            .executors
            .get_mut(&kind)
            .expect("executor_for checked it exists");
        let mut m = Mitigation {
            rule: String::new(),
            spec,
            executor: kind,
            state: State::Previewed,
            target: target.into(),
            applied_ms: None,
            dry_run: self.cfg.dry_run,
        };
        match exec.render(&m.spec) {
            Ok(cmds) => m.rule = commands_text(&cmds),
            Err(e) => {
                events.push(EventBody::MitigationFailed {
                    info: m.info(),
                    error: e.to_string(),
                });
                return events;
            }
        }
        events.push(EventBody::MitigationPreviewed(m.info()));
        self.audit(now, "previewed", &m.clone(), "");
        if self.cfg.dry_run {
            self.live.push(m);
            return events;
        }
        let exec = self.executors.get_mut(&kind).expect("present");
        let t0 = Instant::now();
        let applied = exec.apply(&m.spec);
        let apply_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match applied {
            Err(e) => {
                m.state = step(m.state, Event::ApplyFailed);
                events.push(EventBody::MitigationFailed {
                    info: m.info(),
                    error: e.to_string(),
                });
                self.audit(now, "failed", &m.clone(), &e.to_string());
                return events;
            }
            Ok(()) => {
                m.state = step(m.state, Event::Applied);
                m.applied_ms = Some(now);
                events.push(EventBody::MitigationApplied {
                    info: m.info(),
                    apply_ms: (apply_ms * 1000.0).round() / 1000.0,
                });
                self.audit(now, "applied", &m.clone(), "");
            }
        }
        let exec = self.executors.get_mut(&kind).expect("present");
        match exec.verify(&m.spec) {
            Ok(true) => {
                m.state = step(m.state, Event::Verified);
                self.audit(now, "verified", &m.clone(), "");
            }
            Ok(false) | Err(_) => {
                let why = "the rule is not in the kernel after the tool accepted it".to_string();
                let _ = exec.remove(&m.spec);
                m.state = step(m.state, Event::VerifyFailed);
                events.push(EventBody::MitigationFailed {
                    info: m.info(),
                    error: why.clone(),
                });
                self.audit(now, "failed", &m.clone(), &why);
                return events;
            }
        }
        self.live.push(m);
        events
    }

    /// The incident's rules have done their job: remove them.
    pub fn on_incident_resolved(&mut self, incident_id: &str, now: i64) -> Vec<EventBody> {
        self.open.remove(incident_id);
        let ids: Vec<Uuid> = self
            .live
            .iter()
            .filter(|m| m.spec.incident_id == incident_id)
            .map(|m| m.spec.id)
            .collect();
        let mut events = Vec::new();
        for id in ids {
            events.extend(self.end(id, now, Event::RolledBack, "incident resolved"));
        }
        events
    }

    /// Removes one mitigation, ending in `how` (rolled back or expired).
    fn end(&mut self, id: Uuid, now: i64, how: Event, reason: &str) -> Vec<EventBody> {
        let Some(pos) = self.live.iter().position(|m| m.spec.id == id) else {
            return vec![];
        };
        let mut m = self.live.remove(pos);
        if m.state == State::Previewed {
            // Never applied (dry run): nothing to remove.
            m.state = step(m.state, Event::Withdrawn);
            self.audit(now, "rolled_back", &m, reason);
            return vec![];
        }
        let exec = self
            .executors
            .get_mut(&m.executor)
            .expect("executor of a live mitigation");
        // Read before removal: the counters go with the rules.
        let counted = exec.counters().ok().and_then(|c| c.get(&id).copied());
        match exec.remove(&m.spec) {
            Ok(()) => {
                m.state = step(m.state, how);
                let step_name = if how == Event::Expired {
                    "expired"
                } else {
                    "rolled_back"
                };
                self.audit(now, step_name, &m, reason);
                vec![EventBody::MitigationRolledBack {
                    info: m.info(),
                    reason: reason.into(),
                    expired: how == Event::Expired,
                    packets: counted.map(|c| c.packets),
                    bytes: counted.map(|c| c.bytes),
                }]
            }
            Err(e) => {
                m.state = step(m.state, Event::RemoveFailed);
                let why = format!("removing it failed ({e}); reconcile will retry");
                self.audit(now, "failed", &m, &why);
                vec![EventBody::MitigationFailed {
                    info: m.info(),
                    error: why,
                }]
            }
        }
    }

    /// Periodic work: refresh kernel TTLs of rules whose incident is still
    /// open, expire the others at their TTL, and run the collateral guard.
    pub fn tick(&mut self, now: i64) -> Vec<EventBody> {
        let mut events = Vec::new();
        self.read_meter(now);
        let ttl_ms = self.cfg.ttl.as_millis() as i64;
        let ids: Vec<Uuid> = self.live.iter().map(|m| m.spec.id).collect();
        for id in ids {
            let Some(m) = self.live.iter().find(|m| m.spec.id == id).cloned() else {
                continue;
            };
            if !m.state.is_active() {
                continue;
            }
            if let Some(reason) = self.guard_verdict(&m, now).and_then(|v| v.reason()) {
                events.extend(self.end(id, now, Event::RolledBack, &reason));
                continue;
            }
            let open = self.open.contains_key(&m.spec.incident_id);
            if open && m.spec.expires_unix_ms - now < ttl_ms / 2 {
                let mut spec = m.spec.clone();
                spec.expires_unix_ms = now + ttl_ms;
                let exec = self.executors.get_mut(&m.executor).expect("present");
                match exec.refresh(&spec) {
                    Ok(()) => {
                        if let Some(x) = self.live.iter_mut().find(|x| x.spec.id == id) {
                            x.spec = spec;
                        }
                    }
                    Err(e) => tracing::warn!(mitigation = %id, "refreshing the TTL failed: {e}"),
                }
            } else if now >= m.spec.expires_unix_ms {
                let reason = format!(
                    "TTL of {} reached",
                    humantime::format_duration(self.cfg.ttl)
                );
                events.extend(self.end(id, now, Event::Expired, &reason));
            }
        }
        events
    }

    fn read_meter(&mut self, now: i64) {
        let Some(meter) = self.meter.as_mut() else {
            return;
        };
        if self.last_meter_ms.is_some_and(|t| now - t < METER_EVERY_MS) {
            return;
        }
        self.last_meter_ms = Some(now);
        match meter.sample() {
            Ok(by_addr) => {
                self.last_meter_error = None;
                for (addr, n) in by_addr {
                    self.legit.entry(addr).or_default().push(now, n);
                }
            }
            Err(e) => {
                if self.last_meter_error.as_ref() != Some(&e) {
                    tracing::warn!("collateral guard cannot measure legitimate traffic: {e}");
                    self.last_meter_error = Some(e);
                }
            }
        }
    }

    /// The guard's verdict on `m`, summed over its attacked addresses.
    fn guard_verdict(&self, m: &Mitigation, now: i64) -> Option<Verdict> {
        let applied = m.applied_ms?;
        if self.meter.is_none() || m.spec.action.is_host_setting() {
            return None;
        }
        let started = *self.open.get(&m.spec.incident_id).unwrap_or(&applied);
        let dsts: BTreeSet<IpAddr> = m.spec.matches.iter().map(|x| x.dst).collect();
        let (mut before, mut after) = (None::<f64>, None::<f64>);
        for d in dsts {
            let Some(h) = self.legit.get(&d) else {
                continue;
            };
            if let (Some(b), Some(a)) = (h.pre_attack(started), h.recent(now)) {
                before = Some(before.unwrap_or(0.0) + b);
                after = Some(after.unwrap_or(0.0) + a);
            }
        }
        let since = Duration::from_millis((now - applied).max(0) as u64);
        Some(judge(&self.cfg.guard, before, after, since))
    }

    /// Removes everything of Levee's in the kernel that no live mitigation
    /// backs, executor by executor, and reports it.
    pub fn reconcile(&mut self, now: i64) -> Vec<EventBody> {
        let live: Vec<Uuid> = self
            .live
            .iter()
            .filter(|m| m.state.is_active())
            .map(|m| m.spec.id)
            .collect();
        let mut events = Vec::new();
        let kinds: Vec<ExecutorKind> = self.executors.keys().copied().collect();
        for kind in kinds {
            if !matches!(self.available.get(&kind), Some(Availability::Ready)) {
                continue;
            }
            let exec = self.executors.get_mut(&kind).expect("present");
            let owned = match exec.owned() {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(executor = %kind, "reconcile cannot list Levee's objects: {e}");
                    continue;
                }
            };
            let orphans: Vec<_> = owned.into_iter().filter(|o| !o.backed_by(&live)).collect();
            if orphans.is_empty() {
                continue;
            }
            let removed: Vec<String> = orphans.iter().map(|o| o.what.clone()).collect();
            let result = exec.remove_owned(&orphans, &live);
            if let Some(a) = self.audit.as_mut() {
                let rec = AuditRecord {
                    step: "reconciled".into(),
                    mitigation_id: String::new(),
                    incident_id: String::new(),
                    executor: kind.to_string(),
                    rule: removed.join("\n"),
                    reason: match &result {
                        Ok(()) => "not backed by a live mitigation".into(),
                        Err(e) => format!("removal failed: {e}"),
                    },
                };
                if let Err(e) = a.append(now, rec) {
                    tracing::error!("{e}");
                }
            }
            match result {
                Ok(()) => events.push(EventBody::MitigationReconciled {
                    executor: kind.to_string(),
                    removed,
                }),
                Err(e) => {
                    tracing::warn!(executor = %kind, "reconcile could not remove {removed:?}: {e}")
                }
            }
        }
        events
    }

    /// A new allowlist and attack profiles (a policy from the server): the
    /// allowlist joins the protected set (the node's addresses, gateways
    /// and `protected` stay), every executor's exemptions follow at once,
    /// and later incidents get the new profiles. Nothing changes when the
    /// profiles are invalid (every problem, each naming its key); an
    /// executor failing to update its exemptions is reported but the new
    /// policy holds (its next rule carries them).
    pub fn set_policy(
        &mut self,
        allowlist: Vec<IpPrefix>,
        profiles: Profiles,
    ) -> Result<Vec<String>, Vec<String>> {
        let mut cfg = self.cfg.clone();
        cfg.allowlist = allowlist;
        cfg.profiles = profiles;
        let problems: Vec<String> = cfg
            .validate("policy")
            .into_iter()
            .filter(|p| p.starts_with("policy.profiles"))
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        self.protected = Protected::new(&cfg.allowlist, &cfg.protected, &self.host);
        self.cfg = cfg;
        let exempt = self.protected.exempt();
        let mut warnings = Vec::new();
        for (kind, e) in self.executors.iter_mut() {
            if !matches!(self.available.get(kind), Some(Availability::Ready)) {
                continue;
            }
            if let Err(err) = e.set_exempt(&exempt) {
                warnings.push(format!(
                    "{kind}: updating the exempt prefixes failed: {err}"
                ));
            }
        }
        Ok(warnings)
    }

    /// Removes one live mitigation now (an operator's command); `Err` when
    /// no live mitigation has that id.
    pub fn rollback(
        &mut self,
        mitigation_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<EventBody>, String> {
        let id = self
            .live
            .iter()
            .map(|m| m.spec.id)
            .find(|id| id.to_string() == mitigation_id)
            .ok_or_else(|| format!("no live mitigation {mitigation_id} on this node"))?;
        Ok(self.end(id, now, Event::RolledBack, reason))
    }

    /// Removes every live mitigation now, with `reason`.
    pub fn rollback_all(&mut self, reason: &str, now: i64) -> Vec<EventBody> {
        let ids: Vec<Uuid> = self.live.iter().map(|m| m.spec.id).collect();
        let mut events = Vec::new();
        for id in ids {
            events.extend(self.end(id, now, Event::RolledBack, reason));
        }
        events
    }

    /// Removes every live mitigation (the agent is stopping).
    pub fn shutdown(&mut self, now: i64) -> Vec<EventBody> {
        let ids: Vec<Uuid> = self.live.iter().map(|m| m.spec.id).collect();
        let mut events = Vec::new();
        for id in ids {
            events.extend(self.end(id, now, Event::RolledBack, "agent stopping"));
        }
        events
    }

    /// Counters of live mitigations (packets their rules acted on).
    pub fn counters(&mut self) -> BTreeMap<Uuid, crate::exec::Counter> {
        let mut out = BTreeMap::new();
        let kinds: BTreeSet<ExecutorKind> = self.live.iter().map(|m| m.executor).collect();
        for k in kinds {
            if let Some(e) = self.executors.get_mut(&k) {
                match e.counters() {
                    Ok(c) => out.extend(c),
                    Err(err) => tracing::warn!(executor = %k, "reading counters: {err}"),
                }
            }
        }
        out
    }

    /// Renders (without applying) what `inc` would get: the preview.
    pub fn preview(&mut self, inc: &IncidentView, now: i64) -> Vec<EventBody> {
        let dry = self.cfg.dry_run;
        self.cfg.dry_run = true;
        let audit = self.audit.take();
        let events = self.start(inc, now);
        self.audit = audit;
        self.cfg.dry_run = dry;
        self.live.retain(|m| m.state != State::Previewed);
        events
    }
}

/// Applies a transition the engine's own control flow guarantees is valid.
fn step(s: State, e: Event) -> State {
    match transition(s, e) {
        Ok(t) => t,
        Err(err) => {
            // A bug in the engine, not an input problem; keep the state and say so.
            tracing::error!("{err}");
            debug_assert!(false, "{err}");
            s
        }
    }
}

#[cfg(test)]
mod tests;
