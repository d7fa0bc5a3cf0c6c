//! The tc executor: ingress shaping on the attacked interface.
//!
//! Matching packets are redirected at ingress (`clsact` qdisc, `u32`
//! classifier, `mirred` action) to a per-mitigation IFB device whose root
//! `tbf` qdisc limits them to the configured rate; IFB re-injects what
//! passes. This needs only `sch_ingress`, `cls_u32`, `act_mirred`, `ifb`
//! and `sch_tbf`, which every distribution kernel has.
//!
//! ```text
//! eth0 ingress (clsact)
//!   prio 41/42      u32 match ip src <exempt>  classid 1ee:7   -> stops classification: untouched
//!   prio 1000+n     u32 match ip dst <target> ... action mirred egress redirect dev lvf<tag>
//! lvf<tag> (ifb)  root tbf rate <bps>              -> excess dropped, the rest delivered
//! ```
//!
//! Limits, said plainly: `u32` matches fixed offsets, so TCP/UDP/ICMP
//! conditions assume IPv4 headers without options (IPv6 without extension
//! headers); length and TTL ranges cannot be expressed and are left out
//! (shaping a slightly wider set is harmless, dropping it would not be, so
//! tc only shapes); conditions needing connection tracking are refused.
//! tc has no timeouts: rules are removed by the agent at TTL or resolve,
//! and by `reconcile` after a crash.

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::matcher::{proto, Fragments, Match};
use crate::rule::{tag_of, RuleSpec};
use crate::runner::{Cmd, CommandRunner};
use levee_packet::classify::fingerprint::{IpPrefix, PortMatch};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// IFB devices are named `lvf<tag>` (13 characters, under IFNAMSIZ).
pub const IFB_PREFIX: &str = "lvf";
/// Priorities of the exempt filters (IPv4, IPv6; lower numbers are
/// evaluated first) and their marker class.
pub const EXEMPT_PRIO: [u16; 2] = [41, 42];
pub const EXEMPT_CLASS: &str = "1ee:7";
/// Mitigation filters take priorities from here up.
pub const FIRST_PRIO: u16 = 1000;
/// Most u32 filters one mitigation may expand to.
const MAX_FILTERS: usize = 256;

pub fn ifb_name(id: Uuid) -> String {
    format!("{IFB_PREFIX}{}", tag_of(id))
}

fn tag_of_ifb(name: &str) -> Option<String> {
    let t = name.strip_prefix(IFB_PREFIX)?;
    (t.len() == 10 && t.chars().all(|c| c.is_ascii_hexdigit())).then(|| t.to_string())
}

#[derive(Debug, Default, Clone)]
struct DevState {
    /// The device has a clsact or ingress qdisc.
    has_qdisc: bool,
    /// Levee added the clsact qdisc (so it removes it again).
    qdisc_added: bool,
    exempt_added: bool,
    users: BTreeSet<Uuid>,
}

pub struct TcExecutor {
    runner: Box<dyn CommandRunner>,
    exempt: Vec<IpPrefix>,
    devices: BTreeMap<String, DevState>,
    prios: BTreeMap<Uuid, u16>,
}

/// `u32` conditions for one match, one list per filter.
pub fn u32_filters(m: &Match) -> Result<Vec<Vec<String>>, String> {
    let v6 = m.is_v6();
    if m.not_established {
        return Err("connection-tracking conditions cannot be expressed in tc u32".into());
    }
    let ip = if v6 { "ip6" } else { "ip" };
    let l4 = if v6 { 40 } else { 20 };
    let full = if v6 { 128 } else { 32 };
    let mut base: Vec<String> = vec![
        "match".into(),
        ip.into(),
        "dst".into(),
        format!("{}/{full}", m.dst),
    ];
    if let Some(p) = m.protocol {
        base.extend([
            "match".into(),
            ip.into(),
            "protocol".into(),
            p.to_string(),
            "0xff".into(),
        ]);
    }
    match (m.fragments, v6) {
        (Fragments::Any, _) => {}
        (Fragments::Unfragmented, false) => {
            base.extend(["match", "u16", "0", "0x3fff", "at", "6"].map(String::from))
        }
        // IPv6 fragments carry an extension header: the protocol match above
        // already misses them, and later fragments cannot be told apart.
        (Fragments::Unfragmented, true) => {}
        _ => return Err("fragment conditions cannot be expressed in tc u32".into()),
    }
    let is_l4 = matches!(m.protocol, Some(proto::TCP | proto::UDP | proto::SCTP));
    if (!m.src_ports.is_empty() || !m.dst_ports.is_empty()) && !is_l4 {
        return Err("port conditions need TCP, UDP or SCTP".into());
    }
    let mut filters = vec![base];
    let expand = |filters: Vec<Vec<String>>, alts: Vec<Vec<String>>| -> Vec<Vec<String>> {
        if alts.is_empty() {
            return filters;
        }
        filters
            .into_iter()
            .flat_map(|f| {
                alts.iter().map(move |a| {
                    let mut x = f.clone();
                    x.extend(a.iter().cloned());
                    x
                })
            })
            .collect()
    };
    let port_alts = |dir: &str, v: &[PortMatch]| -> Result<Vec<Vec<String>>, String> {
        v.iter()
            .map(|p| match p {
                PortMatch::Port(x) => Ok(vec![
                    "match".into(),
                    ip.into(),
                    format!("{dir}port"),
                    x.to_string(),
                    "0xffff".into(),
                ]),
                PortMatch::Range(_) => Err("port ranges cannot be expressed in tc u32".to_string()),
            })
            .collect()
    };
    filters = expand(filters, port_alts("s", &m.src_ports)?);
    filters = expand(filters, port_alts("d", &m.dst_ports)?);
    if m.protocol == Some(proto::TCP) {
        let alts = m
            .tcp_flags
            .iter()
            .map(|f| {
                vec![
                    "match".into(),
                    "u8".into(),
                    format!("{:#04x}", f.0),
                    "0xff".into(),
                    "at".into(),
                    (l4 + 13).to_string(),
                ]
            })
            .collect();
        filters = expand(filters, alts);
    }
    let alts = m
        .icmp_types
        .iter()
        .map(|t| {
            vec![
                "match".into(),
                "u8".into(),
                t.to_string(),
                "0xff".into(),
                "at".into(),
                l4.to_string(),
            ]
        })
        .collect();
    filters = expand(filters, alts);
    let alts = m
        .src_prefixes
        .iter()
        .map(|p| vec!["match".into(), ip.into(), "src".into(), p.to_string()])
        .collect();
    filters = expand(filters, alts);
    if filters.len() > MAX_FILTERS {
        return Err(format!(
            "{} u32 filters needed, more than {MAX_FILTERS}; use nftables",
            filters.len()
        ));
    }
    Ok(filters)
}

impl TcExecutor {
    /// `exempt`: prefixes no rule may touch (see [`crate::Protected::exempt`]).
    pub fn new(runner: Box<dyn CommandRunner>, exempt: Vec<IpPrefix>) -> Self {
        TcExecutor {
            runner,
            exempt,
            devices: BTreeMap::new(),
            prios: BTreeMap::new(),
        }
    }

    /// The filters that let exempt sources through on `dev` untouched.
    fn exempt_cmds(&self, dev: &str) -> Vec<Cmd> {
        self.exempt
            .iter()
            .map(|p| {
                let v6 = p.addr.is_ipv6();
                Cmd::new(
                    "tc",
                    [
                        "filter",
                        "add",
                        "dev",
                        dev,
                        "ingress",
                        "prio",
                        &EXEMPT_PRIO[usize::from(v6)].to_string(),
                        "protocol",
                        if v6 { "ipv6" } else { "ip" },
                        "u32",
                        "match",
                        if v6 { "ip6" } else { "ip" },
                        "src",
                        &p.to_string(),
                        "classid",
                        EXEMPT_CLASS,
                    ],
                )
            })
            .collect()
    }

    fn prio_for(&self, id: Uuid) -> u16 {
        if let Some(p) = self.prios.get(&id) {
            return *p;
        }
        let used: BTreeSet<u16> = self.prios.values().copied().collect();
        (FIRST_PRIO..u16::MAX)
            .find(|p| !used.contains(p))
            .unwrap_or(FIRST_PRIO)
    }

    /// (bits per second, burst bytes) of the shaper.
    fn rate(rule: &RuleSpec) -> Result<(u64, u64), ExecError> {
        match rule.action {
            Action::Shape { bps } => Ok((bps, (bps / 8 / 20).max(3_000))),
            Action::RateLimit { pps, burst } => {
                let max_len = rule
                    .matches
                    .iter()
                    .map(|m| m.length.map(|[_, hi]| u64::from(hi)))
                    .collect::<Option<Vec<u64>>>()
                    .and_then(|v| v.into_iter().max())
                    .ok_or_else(|| {
                        ExecError::unsupported(
                            ExecutorKind::Tc,
                            &rule.action,
                            "tc shapes bytes; a packet rate needs the fingerprint's length range (use nftables, or a shape step)",
                        )
                    })?;
                Ok((pps * max_len * 8, (burst * max_len).max(3_000)))
            }
            _ => Err(ExecError::unsupported(
                ExecutorKind::Tc,
                &rule.action,
                "tc here shapes (shape, rate_limit with a known length); use nftables or iptables to drop",
            )),
        }
    }

    fn plan(&self, rule: &RuleSpec) -> Result<(String, Vec<Cmd>), ExecError> {
        let (bps, burst) = Self::rate(rule)?;
        let dev = rule.interface.clone().ok_or_else(|| ExecError::Other {
            executor: ExecutorKind::Tc,
            message: "tc needs the attacked interface; the incident names none".into(),
        })?;
        if rule.matches.is_empty() {
            return Err(ExecError::Other {
                executor: ExecutorKind::Tc,
                message: format!("{} without any match (nothing to act on)", rule.action),
            });
        }
        let ifb = ifb_name(rule.id);
        let prio = self.prio_for(rule.id).to_string();
        let state = self.devices.get(&dev).cloned().unwrap_or_default();
        let mut cmds = Vec::new();
        if !state.has_qdisc {
            cmds.push(Cmd::new("tc", ["qdisc", "add", "dev", &dev, "clsact"]));
        }
        if !state.exempt_added {
            cmds.extend(self.exempt_cmds(&dev));
        }
        cmds.push(Cmd::new("ip", ["link", "add", &ifb, "type", "ifb"]));
        cmds.push(Cmd::new("ip", ["link", "set", &ifb, "up"]));
        cmds.push(Cmd::new(
            "tc",
            [
                "qdisc",
                "add",
                "dev",
                &ifb,
                "root",
                "tbf",
                "rate",
                &format!("{bps}bit"),
                "burst",
                &burst.to_string(),
                "latency",
                "50ms",
            ],
        ));
        for m in &rule.matches {
            let filters = u32_filters(m)
                .map_err(|why| ExecError::unsupported(ExecutorKind::Tc, &rule.action, why))?;
            for f in filters {
                let mut a: Vec<String> = [
                    "filter", "add", "dev", &dev, "ingress", "prio", &prio, "protocol",
                ]
                .map(String::from)
                .to_vec();
                a.push(if m.is_v6() { "ipv6" } else { "ip" }.into());
                a.push("u32".into());
                a.extend(f);
                a.extend(["action", "mirred", "egress", "redirect", "dev", &ifb].map(String::from));
                cmds.push(Cmd::new("tc", a));
            }
        }
        Ok((dev, cmds))
    }

    /// Devices with a clsact or ingress qdisc.
    fn qdisc_devices(&mut self) -> Result<Vec<String>, ExecError> {
        let cmd = Cmd::new("tc", ["-j", "qdisc", "show"]);
        let v = json(self.runner.check(&cmd)?.stdout, &cmd)?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter(|q| {
                matches!(
                    q.get("kind").and_then(Value::as_str),
                    Some("clsact" | "ingress")
                )
            })
            .filter_map(|q| q.get("dev").and_then(Value::as_str).map(String::from))
            .collect())
    }

    /// Filters on `dev`'s ingress.
    fn filters(&mut self, dev: &str) -> Result<Vec<TcFilter>, ExecError> {
        let cmd = Cmd::new("tc", ["-j", "filter", "show", "dev", dev, "ingress"]);
        let v = json(self.runner.check(&cmd)?.stdout, &cmd)?;
        let mut out = Vec::new();
        for f in v.as_array().into_iter().flatten() {
            let Some(o) = f.get("options") else { continue };
            if o.get("fh")
                .and_then(Value::as_str)
                .is_some_and(|fh| fh.ends_with(':'))
            {
                continue; // the hash table itself, not a filter
            }
            let prio = f.get("pref").and_then(Value::as_u64).unwrap_or(0) as u16;
            let protocol = f
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("all")
                .to_string();
            let to = o
                .get("actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|a| a.get("to_dev").and_then(Value::as_str).map(String::from));
            let flowid = o.get("flowid").and_then(Value::as_str).map(String::from);
            out.push(TcFilter {
                prio,
                protocol,
                to,
                flowid,
            });
        }
        Ok(out)
    }

    fn del_filter(&mut self, dev: &str, prio: u16, protocol: &str) -> Result<(), ExecError> {
        let out = self.runner.run(&Cmd::new(
            "tc",
            [
                "filter",
                "del",
                "dev",
                dev,
                "ingress",
                "prio",
                &prio.to_string(),
                "protocol",
                protocol,
            ],
        ))?;
        // Already gone is fine (both protocols share nothing; a second del finds none).
        if out.success()
            || out
                .stderr
                .contains("Filter with specified priority/protocol not found")
            || out.stderr.contains("Cannot find specified filter chain")
        {
            Ok(())
        } else {
            Err(ExecError::Other {
                executor: ExecutorKind::Tc,
                message: format!(
                    "deleting filter prio {prio} on {dev}: {}",
                    out.stderr.trim()
                ),
            })
        }
    }

    fn del_link(&mut self, name: &str) -> Result<(), ExecError> {
        let out = self.runner.run(&Cmd::new("ip", ["link", "del", name]))?;
        if out.success() || out.stderr.contains("Cannot find device") {
            Ok(())
        } else {
            Err(ExecError::Other {
                executor: ExecutorKind::Tc,
                message: format!("deleting {name}: {}", out.stderr.trim()),
            })
        }
    }

    /// Removes exempt filters from `dev` when no Levee filter is left
    /// there, and the clsact qdisc when Levee added it (or, reconciling
    /// after a crash, when no filter at all is left on it).
    fn tidy(&mut self, dev: &str, reconciling: bool) -> Result<(), ExecError> {
        let filters = self.filters(dev)?;
        let ours_left = filters.iter().any(TcFilter::is_levee);
        if ours_left {
            return Ok(());
        }
        for (i, p) in EXEMPT_PRIO.iter().enumerate() {
            if filters.iter().any(|f| f.prio == *p && f.is_exempt()) {
                self.del_filter(dev, *p, if i == 1 { "ipv6" } else { "ip" })?;
            }
        }
        let others = filters.iter().any(|f| !f.is_exempt());
        let state = self.devices.remove(dev).unwrap_or_default();
        if !others && (state.qdisc_added || reconciling) {
            let egress = Cmd::new("tc", ["-j", "filter", "show", "dev", dev, "egress"]);
            let eg = self.runner.run(&egress)?;
            let egress_empty = eg.success()
                && json(eg.stdout, &egress)?
                    .as_array()
                    .is_none_or(Vec::is_empty);
            if egress_empty {
                self.runner
                    .check(&Cmd::new("tc", ["qdisc", "del", "dev", dev, "clsact"]))?;
            }
        }
        Ok(())
    }
}

/// One ingress filter as `tc -j filter show` lists it.
#[derive(Debug, Clone)]
struct TcFilter {
    prio: u16,
    protocol: String,
    /// The device a mirred action redirects to.
    to: Option<String>,
    flowid: Option<String>,
}

impl TcFilter {
    fn is_levee(&self) -> bool {
        self.to.as_deref().and_then(tag_of_ifb).is_some()
    }

    fn is_exempt(&self) -> bool {
        EXEMPT_PRIO.contains(&self.prio) && self.flowid.as_deref() == Some(EXEMPT_CLASS)
    }
}

fn json(text: String, cmd: &Cmd) -> Result<Value, ExecError> {
    if text.trim().is_empty() {
        return Ok(Value::Array(vec![]));
    }
    serde_json::from_str(&text).map_err(|e| ExecError::Parse {
        executor: ExecutorKind::Tc,
        command: cmd.line(),
        message: e.to_string(),
    })
}

impl Executor for TcExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Tc
    }

    /// Devices already shaped get their exempt filters replaced (deleted by
    /// priority, then added again: for those few ms the shaper sees the
    /// exempt sources too, which only delays them).
    fn set_exempt(&mut self, exempt: &[IpPrefix]) -> Result<(), ExecError> {
        if exempt == self.exempt.as_slice() {
            return Ok(());
        }
        self.exempt = exempt.to_vec();
        let devs: Vec<String> = self
            .devices
            .iter()
            .filter(|(_, st)| st.exempt_added)
            .map(|(d, _)| d.clone())
            .collect();
        for dev in devs {
            for (i, p) in EXEMPT_PRIO.iter().enumerate() {
                self.del_filter(&dev, *p, if i == 1 { "ipv6" } else { "ip" })?;
            }
            for c in self.exempt_cmds(&dev) {
                self.runner.check(&c)?;
            }
        }
        Ok(())
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("tc", ["-V"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`tc -V` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package iproute2")),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        matches!(action, Action::Shape { .. } | Action::RateLimit { .. })
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        Ok(self.plan(rule)?.1)
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let (dev, _) = self.plan(rule)?;
        // Learn whether the interface already has an ingress-capable qdisc
        // (the operator's): then Levee adds its filters to it and leaves it.
        if !self.devices.contains_key(&dev) {
            let has_qdisc = self.qdisc_devices()?.contains(&dev);
            self.devices.insert(
                dev.clone(),
                DevState {
                    has_qdisc,
                    ..DevState::default()
                },
            );
        }
        let (dev, cmds) = self.plan(rule)?;
        let prio = self.prio_for(rule.id);
        let adds_qdisc = cmds
            .first()
            .is_some_and(|c| c.args.last().map(String::as_str) == Some("clsact"));
        self.prios.insert(rule.id, prio);
        for c in &cmds {
            if let Err(e) = self.runner.check(c) {
                let _ = self.remove(rule);
                return Err(e.into());
            }
        }
        let st = self.devices.entry(dev).or_default();
        st.has_qdisc = true;
        st.qdisc_added |= adds_qdisc;
        st.exempt_added = true;
        st.users.insert(rule.id);
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let Some(dev) = rule.interface.clone() else {
            return Ok(false);
        };
        let ifb = ifb_name(rule.id);
        let n = self
            .filters(&dev)?
            .iter()
            .filter(|f| f.to.as_deref() == Some(ifb.as_str()))
            .count();
        Ok(n > 0)
    }

    fn refresh(&mut self, _rule: &RuleSpec) -> Result<(), ExecError> {
        // No kernel-side lifetime to extend: the agent removes tc rules itself.
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let Some(dev) = rule.interface.clone() else {
            return Ok(());
        };
        if let Some(prio) = self.prios.remove(&rule.id) {
            for p in ["ip", "ipv6"] {
                self.del_filter(&dev, prio, p)?;
            }
        }
        self.del_link(&ifb_name(rule.id))?;
        if let Some(st) = self.devices.get_mut(&dev) {
            st.users.remove(&rule.id);
        }
        self.tidy(&dev, false)
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let mut m = BTreeMap::new();
        let ids: Vec<Uuid> = self.prios.keys().copied().collect();
        for id in ids {
            let cmd = Cmd::new("tc", ["-s", "-j", "qdisc", "show", "dev", &ifb_name(id)]);
            let out = self.runner.run(&cmd)?;
            if !out.success() {
                continue;
            }
            let v = json(out.stdout, &cmd)?;
            let q = v
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or(Value::Null);
            // Counted like the other executors: packets the rule held back.
            m.insert(
                id,
                Counter {
                    packets: q.get("drops").and_then(Value::as_u64).unwrap_or(0),
                    bytes: 0,
                },
            );
        }
        Ok(m)
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let mut v = Vec::new();
        let cmd = Cmd::new("ip", ["-j", "link", "show", "type", "ifb"]);
        let links = json(self.runner.check(&cmd)?.stdout, &cmd)?;
        for l in links.as_array().into_iter().flatten() {
            if let Some(name) = l.get("ifname").and_then(Value::as_str) {
                if let Some(tag) = tag_of_ifb(name) {
                    v.push(Owned {
                        executor: ExecutorKind::Tc,
                        owner: None,
                        tag: Some(tag),
                        what: format!("ifb device {name}"),
                        handle: format!("link {name}"),
                    });
                }
            }
        }
        for dev in self.qdisc_devices()? {
            for f in self.filters(&dev)? {
                let tag = f.to.as_deref().and_then(tag_of_ifb);
                let (prio, protocol) = (f.prio, &f.protocol);
                if tag.is_some() || f.is_exempt() {
                    let what =
                        format!("tc filter dev {dev} ingress prio {prio} protocol {protocol}");
                    if v.iter().any(|o: &Owned| o.what == what) {
                        continue;
                    }
                    v.push(Owned {
                        executor: ExecutorKind::Tc,
                        owner: None,
                        tag,
                        handle: format!("filter {dev} {prio} {protocol}"),
                        what,
                    });
                }
            }
        }
        Ok(v)
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        let mut devs = BTreeSet::new();
        for o in items {
            let parts: Vec<&str> = o.handle.split(' ').collect();
            match parts.as_slice() {
                ["filter", dev, prio, protocol] => {
                    let prio: u16 = prio.parse().unwrap_or(0);
                    self.del_filter(dev, prio, protocol)?;
                    self.prios.retain(|_, p| *p != prio);
                    devs.insert(dev.to_string());
                }
                ["link", name] => self.del_link(name)?,
                _ => {}
            }
        }
        for d in devs {
            self.tidy(&d, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::from_family;
    use crate::runner::ScriptedRunner;
    use levee_packet::Family;
    use std::time::Duration;

    fn rule(action: Action, family: Family) -> RuleSpec {
        RuleSpec {
            id: "01a1fbca-a736-7516-aa18-813da2481001".parse().unwrap(),
            incident_id: "i".into(),
            action,
            matches: from_family(family, "10.0.0.2".parse().unwrap()).unwrap(),
            sources: vec![],
            interface: Some("eth0".into()),
            ttl: Duration::from_secs(60),
            expires_unix_ms: 0,
        }
    }

    #[test]
    fn renders_ifb_tbf_and_u32() {
        let e = TcExecutor::new(
            Box::new(ScriptedRunner::new()),
            vec!["192.0.2.0/24".parse().unwrap()],
        );
        let lines: Vec<String> = e
            .render(&rule(Action::Shape { bps: 64_000 }, Family::SynFlood))
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "tc qdisc add dev eth0 clsact",
                "tc filter add dev eth0 ingress prio 41 protocol ip u32 match ip src 192.0.2.0/24 classid 1ee:7",
                "ip link add lvf3da2481001 type ifb",
                "ip link set lvf3da2481001 up",
                "tc qdisc add dev lvf3da2481001 root tbf rate 64000bit burst 3000 latency 50ms",
                "tc filter add dev eth0 ingress prio 1000 protocol ip u32 match ip dst 10.0.0.2/32 match ip protocol 6 0xff match u16 0 0x3fff at 6 match u8 0x02 0xff at 33 action mirred egress redirect dev lvf3da2481001",
            ]
        );
    }

    #[test]
    fn what_u32_cannot_say_is_refused() {
        let e = TcExecutor::new(Box::new(ScriptedRunner::new()), vec![]);
        assert!(e.render(&rule(Action::Drop, Family::SynFlood)).is_err());
        let err = e
            .render(&rule(
                Action::Shape { bps: 64_000 },
                Family::DnsAmplification,
            ))
            .unwrap_err();
        assert!(err.to_string().contains("connection-tracking"), "{err}");
        let err = e
            .render(&rule(
                Action::RateLimit { pps: 10, burst: 5 },
                Family::SynFlood,
            ))
            .unwrap_err();
        assert!(err.to_string().contains("length range"), "{err}");
        let mut r = rule(
            Action::RateLimit {
                pps: 1000,
                burst: 100,
            },
            Family::SynFlood,
        );
        r.matches[0].length = Some([40, 60]);
        let cmds = e.render(&r).unwrap();
        assert!(cmds
            .iter()
            .any(|c| c.to_string().contains("tbf rate 480000bit burst 6000")));
        let mut six = rule(Action::Shape { bps: 64_000 }, Family::HttpFlood);
        six.matches[0].dst = "2001:db8::2".parse().unwrap();
        let f = u32_filters(&six.matches[0]).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[1].join(" "),
            "match ip6 dst 2001:db8::2/128 match ip6 protocol 6 0xff match ip6 dport 443 0xffff"
        );
        let mut nor = rule(Action::Shape { bps: 64_000 }, Family::SynFlood);
        nor.interface = None;
        assert!(e
            .render(&nor)
            .unwrap_err()
            .to_string()
            .contains("interface"));
    }
}
