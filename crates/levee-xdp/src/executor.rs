//! [`XdpExecutor`]: the XDP drop path as one of `levee-mitigate`'s
//! executors (`executor = "xdp"`), so the mitigation engine previews,
//! applies, verifies, counts, expires and reconciles XDP rules exactly like
//! nftables or iptables ones.
//!
//! What XDP can do: `drop` (packets matching the fingerprint, one entry per
//! combination of ports, flags and ICMP types) and `source_block` (the
//! attacking prefixes). It cannot rate-limit, reject or see connection
//! state; those steps fall back to the executors that can, as the engine
//! decides. XDP sees every packet on the interface, so a rule has no
//! destination match: on a server, everything arriving is for the server.
//!
//! Lifetimes: the program is attached through a bpf_link owned by this
//! process, so when the agent dies — even by SIGKILL — the kernel detaches
//! it and every rule goes with it; no rule can outlive the agent. While the
//! agent lives, the engine's TTL decides. The program is loaded at the
//! first rule and detached when the last one goes, so a quiet agent leaves
//! the interface untouched. (With [`XdpExecutor::preloaded`] the program is
//! loaded at start, unattached, so the first rule costs an attach, not a
//! verifier run.)
//!
//! The preview is the rule table as the program will hold it
//! (`xdp <interface> add ...` lines): there is no command-line tool behind
//! XDP maps, the lines say exactly which entries are written.

use crate::filter::{Mode, XdpFilter};
use crate::reconcile::{plan, reconcile_with, KernelLinks, LinkControl, Step};
use crate::rule::{FingerprintMatch, Range, TcpFlagsMatch};
use crate::table::{RuleId, MAX_RULES};
use crate::{netlink, XdpError};
use levee_mitigate::exec::{Availability, Counter, ExecError, Executor, Owned};
use levee_mitigate::matcher::{Fragments, Match};
use levee_mitigate::runner::Cmd;
use levee_mitigate::{Action, ExecutorKind, RuleSpec};
use levee_packet::classify::PortMatch;
use std::collections::BTreeMap;
use uuid::Uuid;

const KIND: ExecutorKind = ExecutorKind::Xdp;

/// Tag of leftover programs found by [`Executor::owned`]: never backed by a
/// live mitigation, so reconcile always removes them.
const STALE_TAG: &str = "stale-xdp-program";

/// The kernel side, behind a seam so the bookkeeping is unit-tested
/// without root.
pub trait XdpBackend: Send {
    fn attach(&mut self, ifname: &str) -> Result<(), XdpError>;
    fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<(), XdpError>;
    fn add_source(
        &mut self,
        prefix: levee_packet::classify::IpPrefix,
        id: RuleId,
    ) -> Result<(), XdpError>;
    /// Removes every entry and prefix of `id`.
    fn remove(&mut self, id: RuleId) -> Result<(), XdpError>;
    fn counters(&self) -> Result<BTreeMap<RuleId, crate::Counters>, XdpError>;
    /// Whether `id` holds at least one entry or prefix.
    fn holds(&self, id: RuleId) -> bool;
    /// Detaches and unloads.
    fn close(&mut self) -> Result<(), XdpError>;
    /// This process's program id on the interface, if attached.
    fn own_program(&self) -> Option<u32>;
}

/// The real kernel: an [`XdpFilter`] loaded at the first rule.
pub struct KernelBackend {
    mode: Mode,
    filter: Option<XdpFilter>,
}

impl KernelBackend {
    pub fn new(mode: Mode) -> Self {
        KernelBackend { mode, filter: None }
    }

    /// Loads the program now (the kernel's verifier takes a few hundred
    /// milliseconds), so the first rule only attaches it.
    pub fn preloaded(mode: Mode) -> Result<Self, XdpError> {
        Ok(KernelBackend {
            mode,
            filter: Some(XdpFilter::load()?),
        })
    }

    fn filter(&mut self) -> Result<&mut XdpFilter, XdpError> {
        self.filter.as_mut().ok_or(XdpError::Load {
            detail: "the program is not loaded (no interface attached yet)".into(),
        })
    }
}

impl XdpBackend for KernelBackend {
    fn attach(&mut self, ifname: &str) -> Result<(), XdpError> {
        match &mut self.filter {
            Some(f) => {
                f.attach_to(ifname, self.mode)?;
            }
            None => self.filter = Some(XdpFilter::attach(ifname, self.mode)?),
        }
        Ok(())
    }

    fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<(), XdpError> {
        self.filter()?.add_rule(id, m)
    }

    fn add_source(
        &mut self,
        prefix: levee_packet::classify::IpPrefix,
        id: RuleId,
    ) -> Result<(), XdpError> {
        self.filter()?.add_source(prefix, id)
    }

    fn remove(&mut self, id: RuleId) -> Result<(), XdpError> {
        let f = self.filter()?;
        let prefixes: Vec<_> = f
            .sources()
            .iter()
            .filter(|(_, owner)| **owner == id)
            .map(|(p, _)| *p)
            .collect();
        for p in prefixes {
            f.remove_source(p)?;
        }
        f.remove_rule(id)?;
        Ok(())
    }

    fn counters(&self) -> Result<BTreeMap<RuleId, crate::Counters>, XdpError> {
        match &self.filter {
            Some(f) => f.counters(),
            None => Ok(BTreeMap::new()),
        }
    }

    fn holds(&self, id: RuleId) -> bool {
        self.filter.as_ref().is_some_and(|f| {
            f.rules().iter().any(|(r, _)| *r == id) || f.sources().values().any(|r| *r == id)
        })
    }

    fn close(&mut self) -> Result<(), XdpError> {
        // Detached but kept loaded: the next attack attaches at once.
        match &mut self.filter {
            Some(f) => f.detach(),
            None => Ok(()),
        }
    }

    fn own_program(&self) -> Option<u32> {
        self.filter
            .as_ref()
            .filter(|f| f.attachment().is_some())
            .map(|f| f.program_id())
    }
}

/// One mitigation's rules in the program.
#[derive(Debug, Clone)]
struct Installed {
    rule: RuleId,
    ifname: String,
}

/// The XDP executor (see the module docs).
pub struct XdpExecutor {
    backend: Box<dyn XdpBackend>,
    /// Where rules go when the incident names no interface.
    default_interface: Option<String>,
    /// Interfaces to look at for leftovers at reconcile.
    watch: Vec<String>,
    attached: Option<String>,
    installed: BTreeMap<Uuid, Installed>,
    next_id: u32,
}

impl XdpExecutor {
    /// On the real kernel; `interfaces` are the agent's (the first is where
    /// rules go when an incident names none).
    pub fn new(interfaces: &[String], mode: Mode) -> Self {
        Self::with_backend(Box::new(KernelBackend::new(mode)), interfaces)
    }

    /// As [`new`](Self::new), with the program loaded (not attached) up
    /// front: use when XDP is the configured executor.
    pub fn preloaded(interfaces: &[String], mode: Mode) -> Result<Self, XdpError> {
        Ok(Self::with_backend(
            Box::new(KernelBackend::preloaded(mode)?),
            interfaces,
        ))
    }

    pub fn with_backend(backend: Box<dyn XdpBackend>, interfaces: &[String]) -> Self {
        XdpExecutor {
            backend,
            default_interface: interfaces.first().cloned(),
            watch: interfaces.to_vec(),
            attached: None,
            installed: BTreeMap::new(),
            next_id: 1,
        }
    }

    fn interface_for(&self, rule: &RuleSpec) -> Result<String, ExecError> {
        rule.interface
            .clone()
            .or_else(|| self.default_interface.clone())
            .ok_or_else(|| ExecError::Other {
                executor: KIND,
                message: "XDP attaches to an interface and the incident names none; \
                          set the agent's `interfaces`"
                    .into(),
            })
    }

    fn kernel(e: XdpError) -> ExecError {
        ExecError::Other {
            executor: KIND,
            message: e.to_string(),
        }
    }
}

/// The program's entries for one match: the product of its port, flag and
/// ICMP-type alternatives (each list means "any of"). Pure.
pub fn entries_for(m: &Match, action: &Action) -> Result<Vec<FingerprintMatch>, ExecError> {
    if m.not_established {
        return Err(ExecError::unsupported(
            KIND,
            action,
            "XDP runs before connection tracking and cannot tell established traffic apart; \
             use nftables or iptables for this step",
        ));
    }
    if !m.src_prefixes.is_empty() {
        return Err(ExecError::unsupported(
            KIND,
            action,
            "XDP drops source prefixes whole (source_block), not combined with a fingerprint",
        ));
    }
    let ports = |list: &[PortMatch]| -> Vec<Option<Range<u16>>> {
        if list.is_empty() {
            return vec![None];
        }
        list.iter()
            .map(|p| {
                Some(match *p {
                    PortMatch::Port(x) => Range::one(x),
                    PortMatch::Range([lo, hi]) => Range::new(lo, hi),
                })
            })
            .collect()
    };
    let flags = any_or(
        m.tcp_flags
            .iter()
            .map(|f| Some(TcpFlagsMatch::exact(f.0)))
            .collect(),
    );
    let icmp = any_or(m.icmp_types.iter().map(|t| Some(Range::one(*t))).collect());
    let (fragment, later_fragments) = match m.fragments {
        Fragments::Any => (None, true),
        Fragments::Unfragmented => (Some(false), false),
        Fragments::Fragments => (Some(true), true),
        Fragments::NonFirst => (Some(true), true),
    };
    let base = FingerprintMatch {
        ip_version: Some(if m.dst.is_ipv4() { 4 } else { 6 }),
        protocol: m.protocol,
        length: m.length.map(|[lo, hi]| Range::new(lo, hi)),
        ttl: m.ttl.map(|[lo, hi]| Range::new(lo, hi)),
        fragment,
        later_fragments: later_fragments && m.has_transport(),
        ..Default::default()
    };
    let mut out = Vec::new();
    for d in ports(&m.dst_ports) {
        for s in ports(&m.src_ports) {
            for f in &flags {
                for i in &icmp {
                    out.push(FingerprintMatch {
                        dst_ports: d,
                        src_ports: s,
                        tcp_flags: *f,
                        icmp_types: *i,
                        ..base
                    });
                }
            }
        }
    }
    if out.len() > MAX_RULES {
        return Err(ExecError::unsupported(
            KIND,
            action,
            format!(
                "the fingerprint needs {} XDP entries, more than the program's {MAX_RULES}",
                out.len()
            ),
        ));
    }
    for e in &out {
        e.validate().map_err(|e| ExecError::Other {
            executor: KIND,
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

/// `[None]` ("any") for an empty list of alternatives.
fn any_or<T>(v: Vec<Option<T>>) -> Vec<Option<T>> {
    if v.is_empty() {
        vec![None]
    } else {
        v
    }
}

/// What a rule puts in the program: fingerprint entries and source prefixes.
fn plan_rule(rule: &RuleSpec) -> Result<Vec<Planned>, ExecError> {
    let mut out = Vec::new();
    match rule.action {
        Action::Drop => {
            for m in &rule.matches {
                out.extend(
                    entries_for(m, &rule.action)?
                        .into_iter()
                        .map(Planned::Entry),
                );
            }
        }
        Action::SourceBlock => {
            out.extend(
                levee_mitigate::rule::collapse(&rule.sources)
                    .into_iter()
                    .map(Planned::Source),
            );
        }
        other => {
            return Err(ExecError::unsupported(
                KIND,
                &other,
                "XDP only drops (drop, source_block)",
            ))
        }
    }
    if out.is_empty() {
        return Err(ExecError::unsupported(
            KIND,
            &rule.action,
            "nothing to match: no fingerprint and no source prefixes",
        ));
    }
    Ok(out)
}

enum Planned {
    Entry(FingerprintMatch),
    Source(levee_packet::classify::IpPrefix),
}

impl Executor for XdpExecutor {
    fn kind(&self) -> ExecutorKind {
        KIND
    }

    fn availability(&mut self) -> Availability {
        match crate::available() {
            Ok(()) => Availability::Ready,
            Err(e) => Availability::Missing(e.to_string()),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        matches!(action, Action::Drop | Action::SourceBlock)
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        let ifname = self.interface_for(rule)?;
        let tag = rule.comment();
        Ok(plan_rule(rule)?
            .into_iter()
            .map(|p| match p {
                Planned::Entry(m) => Cmd::new(
                    "xdp",
                    [ifname.clone(), "drop".into(), m.to_string(), tag.clone()],
                ),
                Planned::Source(s) => Cmd::new(
                    "xdp",
                    [
                        ifname.clone(),
                        "drop-source".into(),
                        s.to_string(),
                        tag.clone(),
                    ],
                ),
            })
            .collect())
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let ifname = self.interface_for(rule)?;
        let planned = plan_rule(rule)?;
        match &self.attached {
            Some(a) if *a != ifname => {
                return Err(ExecError::Other {
                    executor: KIND,
                    message: format!(
                        "the XDP program is attached to {a}; this agent filters one interface \
                         with XDP at a time ({ifname} asked for)"
                    ),
                })
            }
            Some(_) => {}
            None => {
                self.backend.attach(&ifname).map_err(Self::kernel)?;
                self.attached = Some(ifname.clone());
            }
        }
        let id = RuleId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut result = Ok(());
        for p in planned {
            result = match p {
                Planned::Entry(m) => self.backend.add_rule(id, &m),
                Planned::Source(s) => self.backend.add_source(s, id),
            };
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            // All or nothing: a half-installed mitigation is removed.
            let _ = self.backend.remove(id);
            self.close_if_idle();
            return Err(Self::kernel(e));
        }
        self.installed
            .insert(rule.id, Installed { rule: id, ifname });
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        Ok(self
            .installed
            .get(&rule.id)
            .is_some_and(|i| self.backend.holds(i.rule) && self.backend.own_program().is_some()))
    }

    fn refresh(&mut self, _rule: &RuleSpec) -> Result<(), ExecError> {
        // No kernel-side timer: the rules live exactly as long as this
        // process holds the program (see the module docs).
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        if let Some(i) = self.installed.remove(&rule.id) {
            self.backend.remove(i.rule).map_err(Self::kernel)?;
        }
        self.close_if_idle();
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let by_rule = self.backend.counters().map_err(Self::kernel)?;
        Ok(self
            .installed
            .iter()
            .filter_map(|(uuid, i)| {
                by_rule.get(&i.rule).map(|c| {
                    (
                        *uuid,
                        Counter {
                            packets: c.packets,
                            bytes: c.bytes,
                        },
                    )
                })
            })
            .collect())
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let mut out: Vec<Owned> = self
            .installed
            .iter()
            .map(|(uuid, i)| Owned {
                executor: KIND,
                owner: Some(*uuid),
                tag: None,
                what: format!("XDP rule {} on {}", i.rule, i.ifname),
                handle: format!("rule:{}", i.rule.0),
            })
            .collect();
        let own = self.backend.own_program();
        for ifname in &self.watch {
            let Ok(idx) = netlink::ifindex(ifname) else {
                continue;
            };
            let mut links = KernelLinks;
            let attached = links.attached(idx).map_err(|e| ExecError::Other {
                executor: KIND,
                message: format!("listing XDP programs on {ifname}: {e}"),
            })?;
            for a in attached {
                let name = links.program_name(a.prog_id).ok().flatten();
                if let Step::Detach(a) = plan(a, name.as_deref(), own) {
                    out.push(Owned {
                        executor: KIND,
                        owner: None,
                        tag: Some(STALE_TAG.into()),
                        what: format!(
                            "leftover Levee XDP program {} on {ifname} ({})",
                            a.prog_id,
                            a.mode.name()
                        ),
                        handle: format!("iface:{ifname}"),
                    });
                }
            }
        }
        Ok(out)
    }

    fn remove_owned(&mut self, items: &[Owned], live: &[Uuid]) -> Result<(), ExecError> {
        for item in items.iter().filter(|o| !o.backed_by(live)) {
            if let Some(ifname) = item.handle.strip_prefix("iface:") {
                let idx = netlink::ifindex(ifname).map_err(Self::kernel)?;
                reconcile_with(&mut KernelLinks, ifname, idx, self.backend.own_program())
                    .map_err(Self::kernel)?;
            } else if let Some(owner) = item.owner {
                if let Some(i) = self.installed.remove(&owner) {
                    self.backend.remove(i.rule).map_err(Self::kernel)?;
                }
            }
        }
        self.close_if_idle();
        Ok(())
    }
}

impl XdpExecutor {
    /// Detaches the program once no mitigation uses it, so the interface
    /// is as it was before the first rule.
    fn close_if_idle(&mut self) {
        if self.installed.is_empty() && self.attached.take().is_some() {
            if let Err(e) = self.backend.close() {
                tracing::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_packet::TcpFlags;

    fn syn_match() -> Match {
        let mut m = Match::to("10.0.0.2".parse().unwrap());
        m.protocol = Some(6);
        m.dst_ports = vec![PortMatch::Port(80), PortMatch::Range([8000, 8080])];
        m.tcp_flags = vec![TcpFlags(0x02)];
        m.fragments = Fragments::Unfragmented;
        m
    }

    #[test]
    fn entries_are_the_product_of_alternatives() {
        let e = entries_for(&syn_match(), &Action::Drop).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dst_ports, Some(Range::one(80)));
        assert_eq!(e[1].dst_ports, Some(Range::new(8000, 8080)));
        assert!(e.iter().all(|x| x.ip_version == Some(4)
            && x.protocol == Some(6)
            && x.tcp_flags == Some(TcpFlagsMatch::exact(0x02))
            && x.fragment == Some(false)));
    }

    #[test]
    fn what_xdp_cannot_do_is_refused_with_the_reason() {
        let mut m = syn_match();
        m.not_established = true;
        let err = entries_for(&m, &Action::Drop).unwrap_err().to_string();
        assert!(err.contains("connection tracking"), "{err}");
        let mut m = syn_match();
        m.src_prefixes = vec!["203.0.113.0/24".parse().unwrap()];
        assert!(entries_for(&m, &Action::Drop).is_err());
        let x = XdpExecutor::new(&[], Mode::Auto);
        assert!(!x.supports(&Action::RateLimit { pps: 1, burst: 1 }));
        assert!(x.supports(&Action::SourceBlock));
        let r = RuleSpec {
            id: Uuid::now_v7(),
            incident_id: "inc".into(),
            action: Action::Drop,
            matches: vec![syn_match()],
            sources: vec![],
            interface: None,
            ttl: std::time::Duration::from_secs(60),
            expires_unix_ms: 0,
        };
        let err = x.render(&r).unwrap_err().to_string();
        assert!(err.contains("interfaces"), "{err}");
        let r = RuleSpec {
            action: Action::Reject,
            interface: Some("eth0".into()),
            ..r
        };
        let err = x.render(&r).unwrap_err().to_string();
        assert!(err.contains("only drops"), "{err}");
    }
}
