//! The nftables executor: Levee's own tables, `inet levee` and (for the
//! earliest drop) `netdev levee`, changed only through atomic `nft -f -`
//! batches and read back with `nft -j`.
//!
//! Layout:
//! ```text
//! table netdev levee                         table inet levee
//!   set exempt4/6 (interval)                   set exempt4/6 (interval)
//!   chain in_<if>  ingress, prio -500          chain pre_raw  prerouting, prio -300 (before conntrack)
//!     stateless drops/limits                   chain pre_ct   prerouting, prio -150 (needs ct state)
//!                                              chain input    input, prio -10 (reject, ct count)
//! ```
//! Per mitigation (tag `t` = 10 hex digits of its id):
//! - `m_t_d4` / `m_t_d6`: the attacked addresses, each element with a
//!   **timeout = TTL**. Every rule of the mitigation matches
//!   `ip daddr @m_t_d4`, so when the kernel expires the element the rule
//!   stops matching, even if the agent was SIGKILLed; the inert rule is
//!   removed by the next `reconcile`.
//! - `m_t_s4` / `m_t_s6`: attacking sources (source block), elements with
//!   timeouts, same reasoning.
//! - `m_t_h4` / `m_t_c4`...: per-source meters (hash limit, conn limit).
//! - rules carrying `comment "levee:<id>"` and a counter of the packets they
//!   dropped.
//!
//! Every rule also matches `ip saddr != @exempt4` (the allowlist, the node's
//! own addresses, its gateways, protected addresses), so nothing Levee adds
//! can touch them. When the last mitigation goes, both tables are deleted,
//! leaving `nft list ruleset` exactly as it was.
//!
//! The scaffolding lines (`add table`, `add chain`) are idempotent and part
//! of every batch, so a batch is self-contained and the preview shows
//! everything that runs. The exempt sets are declared and filled by the
//! first batch that creates each table; later batches skip them, because
//! refilling an interval set costs the kernel about 10 ms (if the tables
//! vanished meanwhile, the apply fails and is retried with them).

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::matcher::{proto, Fragments, Match};
use crate::rule::{comment_for, id_from_comment, tag_of, RuleSpec};
use crate::runner::{Cmd, CommandRunner};
use levee_packet::classify::fingerprint::{IpPrefix, PortMatch};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use uuid::Uuid;

pub const TABLE: &str = "levee";
/// Priority of the netdev ingress chains: before anything else.
pub const INGRESS_PRIORITY: i32 = -500;
/// Meters of hash limits forget an idle source after this.
const METER_TIMEOUT_S: u64 = 60;

/// Where a rule goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    /// `netdev levee`, ingress of this device.
    Ingress(String),
    /// `inet levee pre_raw`.
    Raw,
    /// `inet levee pre_ct`.
    Conntrack,
    /// `inet levee input`.
    Input,
}

impl Hook {
    fn family(&self) -> &'static str {
        match self {
            Hook::Ingress(_) => "netdev",
            _ => "inet",
        }
    }

    fn chain(&self) -> String {
        match self {
            Hook::Ingress(dev) => ingress_chain(dev),
            Hook::Raw => "pre_raw".into(),
            Hook::Conntrack => "pre_ct".into(),
            Hook::Input => "input".into(),
        }
    }

    fn chain_decl(&self) -> String {
        let (hook, prio) = match self {
            Hook::Ingress(dev) => {
                return format!(
                    "{{ type filter hook ingress device \"{dev}\" priority {INGRESS_PRIORITY}; policy accept; }}"
                )
            }
            Hook::Raw => ("prerouting", -300),
            Hook::Conntrack => ("prerouting", -150),
            Hook::Input => ("input", -10),
        };
        format!("{{ type filter hook {hook} priority {prio}; policy accept; }}")
    }
}

/// The netdev chain name for a device (nft identifiers: letters, digits, `_`).
pub fn ingress_chain(dev: &str) -> String {
    let clean: String = dev
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("in_{clean}")
}

/// The nftables executor.
pub struct NftExecutor {
    runner: Box<dyn CommandRunner>,
    exempt: Vec<IpPrefix>,
    netdev_ingress: bool,
    /// Mitigations applied by this executor and not removed yet.
    applied: BTreeSet<Uuid>,
    /// Tables (`inet`, `netdev`) whose exempt sets this executor has filled;
    /// later batches leave them alone (refilling interval sets costs ~10 ms).
    ready: BTreeSet<&'static str>,
    /// The exempt prefixes changed since start: sets may hold old elements,
    /// so filling one flushes it first.
    exempt_changed: bool,
}

impl NftExecutor {
    /// `exempt`: prefixes no rule may touch (see [`crate::Protected::exempt`]);
    /// `netdev_ingress`: put stateless rules on the interface's ingress hook.
    pub fn new(
        runner: Box<dyn CommandRunner>,
        exempt: Vec<IpPrefix>,
        netdev_ingress: bool,
    ) -> Self {
        NftExecutor {
            runner,
            // Interval sets refuse overlapping elements: keep the widest.
            exempt: crate::rule::collapse(&exempt),
            netdev_ingress,
            applied: BTreeSet::new(),
            ready: BTreeSet::new(),
            exempt_changed: false,
        }
    }

    /// The lines that (re)fill table `fam`'s exempt sets; `flush`: empty
    /// them first (in the same transaction, so no packet sees them empty).
    fn exempt_lines(&self, fam: &str, flush: bool) -> String {
        let mut out = String::new();
        for (n, ty) in [(4, "ipv4_addr"), (6, "ipv6_addr")] {
            writeln!(
                out,
                "add set {fam} {TABLE} exempt{n} {{ type {ty}; flags interval; }}"
            )
            .ok();
            if flush {
                writeln!(out, "flush set {fam} {TABLE} exempt{n}").ok();
            }
            let ex: Vec<String> = self
                .exempt
                .iter()
                .filter(|p| p.addr.is_ipv6() == (n == 6))
                .map(prefix_text)
                .collect();
            if !ex.is_empty() {
                writeln!(
                    out,
                    "add element {fam} {TABLE} exempt{n} {{ {} }}",
                    ex.join(", ")
                )
                .ok();
            }
        }
        out
    }

    fn hook_for(&self, action: &Action, m: &Match, iface: Option<&str>) -> Hook {
        match action {
            Action::Reject | Action::ConnLimit { .. } => Hook::Input,
            _ if m.needs_conntrack() => Hook::Conntrack,
            _ => match iface {
                Some(dev) if self.netdev_ingress => Hook::Ingress(dev.to_string()),
                _ => Hook::Raw,
            },
        }
    }

    /// The whole batch for `rule`, as `nft -f -` input.
    pub fn batch(&self, rule: &RuleSpec) -> Result<String, ExecError> {
        let kind = ExecutorKind::Nftables;
        if !self.supports(&rule.action) {
            return Err(ExecError::unsupported(
                kind,
                &rule.action,
                "use sysctl for SYN cookies and route for blackholes",
            ));
        }
        let tag = rule.tag();
        // (hook, family v6?) -> rule lines
        let mut rules: Vec<(Hook, String)> = Vec::new();
        let mut sets: BTreeMap<(&'static str, String), String> = BTreeMap::new();
        let mut elements: Vec<(&'static str, String, String)> = Vec::new();
        let ttl_ms = rule.ttl.as_millis().max(1000);
        let iface = rule.interface.as_deref();

        if rule.action == Action::SourceBlock {
            for v6 in [false, true] {
                let srcs: Vec<&IpPrefix> = rule
                    .sources
                    .iter()
                    .filter(|p| p.addr.is_ipv6() == v6)
                    .collect();
                if srcs.is_empty() {
                    continue;
                }
                let hook = match iface {
                    Some(dev) if self.netdev_ingress => Hook::Ingress(dev.to_string()),
                    _ => Hook::Raw,
                };
                let fam = hook.family();
                let (ty, ip) = addr_type(v6);
                let name = format!("m_{tag}_s{}", if v6 { 6 } else { 4 });
                sets.insert(
                    (fam, name.clone()),
                    format!("{{ type {ty}; flags interval,timeout; }}"),
                );
                let elems: Vec<String> = srcs
                    .iter()
                    .map(|p| format!("{} timeout {ttl_ms}ms", prefix_text(p)))
                    .collect();
                elements.push((fam, name.clone(), elems.join(", ")));
                let mut line = String::new();
                let dsts: Vec<&Match> = rule.matches.iter().filter(|m| m.is_v6() == v6).collect();
                if !dsts.is_empty() {
                    let dname = format!("m_{tag}_d{}", if v6 { 6 } else { 4 });
                    write!(line, "{ip} daddr @{dname} ").ok();
                    add_dst_set(&mut sets, &mut elements, fam, &dname, v6, &dsts, ttl_ms);
                }
                write!(line, "{ip} saddr @{name} counter drop").ok();
                rules.push((hook, line));
            }
            if rules.is_empty() {
                return Err(ExecError::Other {
                    executor: kind,
                    message: "source_block without any source prefix (nothing to block)".into(),
                });
            }
        } else {
            if rule.matches.is_empty() {
                return Err(ExecError::Other {
                    executor: kind,
                    message: format!("{} without any match (nothing to act on)", rule.action),
                });
            }
            for m in &rule.matches {
                let hook = self.hook_for(&rule.action, m, iface);
                let fam = hook.family();
                let v6 = m.is_v6();
                let (_, ip) = addr_type(v6);
                let dname = format!("m_{tag}_d{}", if v6 { 6 } else { 4 });
                let same_fam: Vec<&Match> =
                    rule.matches.iter().filter(|x| x.is_v6() == v6).collect();
                add_dst_set(&mut sets, &mut elements, fam, &dname, v6, &same_fam, ttl_ms);
                let mut line = format!(
                    "{ip} daddr @{dname} {ip} saddr != @exempt{} ",
                    if v6 { 6 } else { 4 }
                );
                line.push_str(&match_expr(m));
                line.push_str(&self.verdict(rule, m, fam, &tag, &mut sets)?);
                rules.push((hook, line));
            }
        }

        let mut out = String::new();
        let mut tables: BTreeSet<&'static str> = BTreeSet::new();
        let mut hooks: BTreeSet<Hook> = BTreeSet::new();
        for (h, _) in &rules {
            tables.insert(h.family());
            hooks.insert(h.clone());
        }
        for fam in &tables {
            writeln!(out, "add table {fam} {TABLE}").ok();
            if self.ready.contains(fam) {
                continue;
            }
            out.push_str(&self.exempt_lines(fam, self.exempt_changed));
        }
        for h in &hooks {
            writeln!(
                out,
                "add chain {} {TABLE} {} {}",
                h.family(),
                h.chain(),
                h.chain_decl()
            )
            .ok();
        }
        for ((fam, name), decl) in &sets {
            writeln!(out, "add set {fam} {TABLE} {name} {decl}").ok();
        }
        for (fam, name, elems) in &elements {
            writeln!(out, "add element {fam} {TABLE} {name} {{ {elems} }}").ok();
        }
        let comment = comment_for(rule.id);
        for (h, line) in &rules {
            writeln!(
                out,
                "add rule {} {TABLE} {} {line} comment \"{comment}\"",
                h.family(),
                h.chain()
            )
            .ok();
        }
        Ok(out)
    }

    fn verdict(
        &self,
        rule: &RuleSpec,
        m: &Match,
        fam: &'static str,
        tag: &str,
        sets: &mut BTreeMap<(&'static str, String), String>,
    ) -> Result<String, ExecError> {
        let v6 = m.is_v6();
        let (ty, ip) = addr_type(v6);
        let n = if v6 { 6 } else { 4 };
        Ok(match rule.action {
            Action::Drop => "counter drop".into(),
            Action::Reject => {
                if m.protocol == Some(proto::TCP) {
                    "counter reject with tcp reset".into()
                } else {
                    "counter reject".into()
                }
            }
            Action::RateLimit { pps, burst } => {
                format!("limit rate over {pps}/second burst {burst} packets counter drop")
            }
            Action::Shape { bps } => {
                format!(
                    "limit rate over {} bytes/second counter drop",
                    (bps / 8).max(1)
                )
            }
            Action::HashLimit { pps, burst } => {
                let name = format!("m_{tag}_h{n}");
                sets.insert(
                    (fam, name.clone()),
                    format!(
                        "{{ type {ty}; size 65535; flags dynamic,timeout; timeout {METER_TIMEOUT_S}s; }}"
                    ),
                );
                format!(
                    "add @{name} {{ {ip} saddr limit rate over {pps}/second burst {burst} packets }} counter drop"
                )
            }
            Action::ConnLimit { max } => {
                if m.protocol != Some(proto::TCP) {
                    return Err(ExecError::unsupported(
                        ExecutorKind::Nftables,
                        &rule.action,
                        "connection limits apply to TCP only; the match is not TCP",
                    ));
                }
                let name = format!("m_{tag}_c{n}");
                sets.insert(
                    (fam, name.clone()),
                    format!("{{ type {ty}; size 65535; flags dynamic; }}"),
                );
                format!(
                    "ct state new add @{name} {{ {ip} saddr ct count over {max} }} counter reject with tcp reset"
                )
            }
            Action::SourceBlock | Action::SynCookies { .. } | Action::Blackhole => {
                return Err(ExecError::unsupported(
                    ExecutorKind::Nftables,
                    &rule.action,
                    "not a per-packet action",
                ))
            }
        })
    }

    /// `nft -j list table <fam> levee`, `None` when the table does not exist.
    fn list(&mut self, fam: &str) -> Result<Option<Value>, ExecError> {
        let cmd = Cmd::new("nft", ["-j", "list", "table", fam, TABLE]);
        let out = self.runner.run(&cmd)?;
        if !out.success() {
            if out.stderr.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(crate::runner::RunError::Failed {
                command: cmd.line(),
                status: out.status,
                stderr: out.stderr.trim().to_string(),
            }
            .into());
        }
        serde_json::from_str(&out.stdout)
            .map(Some)
            .map_err(|e| ExecError::Parse {
                executor: ExecutorKind::Nftables,
                command: cmd.line(),
                message: e.to_string(),
            })
    }

    fn listing(&mut self) -> Result<Listing, ExecError> {
        let mut l = Listing::default();
        for fam in ["inet", "netdev"] {
            if let Some(v) = self.list(fam)? {
                l.tables.push(fam);
                parse_listing(fam, &v, &mut l);
            }
        }
        Ok(l)
    }

    fn forget_deleted_tables(&mut self, batch: &str) {
        for line in batch.lines() {
            if let Some(rest) = line.strip_prefix("delete table ") {
                self.ready.remove(if rest.starts_with("inet") {
                    "inet"
                } else {
                    "netdev"
                });
            }
        }
    }

    fn run_batch(&mut self, text: &str) -> Result<(), ExecError> {
        self.runner
            .check(&Cmd::new("nft", ["-f", "-"]).with_stdin(text))?;
        Ok(())
    }

    /// The batch deleting what `keep` does not cover; whole tables when
    /// nothing is to be kept.
    fn removal_batch(
        l: &Listing,
        drop: impl Fn(Option<Uuid>, Option<&str>) -> bool,
        keep_none: bool,
    ) -> String {
        let mut out = String::new();
        if keep_none {
            for fam in &l.tables {
                writeln!(out, "delete table {fam} {TABLE}").ok();
            }
            return out;
        }
        for r in &l.rules {
            if drop(r.owner, None) {
                writeln!(
                    out,
                    "delete rule {} {TABLE} {} handle {}",
                    r.family, r.chain, r.handle
                )
                .ok();
            }
        }
        for s in &l.sets {
            if let Some(tag) = &s.tag {
                if drop(None, Some(tag)) {
                    writeln!(out, "delete set {} {TABLE} {}", s.family, s.name).ok();
                }
            }
        }
        out
    }
}

fn addr_type(v6: bool) -> (&'static str, &'static str) {
    if v6 {
        ("ipv6_addr", "ip6")
    } else {
        ("ipv4_addr", "ip")
    }
}

fn prefix_text(p: &IpPrefix) -> String {
    let full = if p.addr.is_ipv4() { 32 } else { 128 };
    if p.len == full {
        p.addr.to_string()
    } else {
        p.to_string()
    }
}

fn add_dst_set(
    sets: &mut BTreeMap<(&'static str, String), String>,
    elements: &mut Vec<(&'static str, String, String)>,
    fam: &'static str,
    name: &str,
    v6: bool,
    matches: &[&Match],
    ttl_ms: u128,
) {
    if sets.contains_key(&(fam, name.to_string())) {
        return;
    }
    let (ty, _) = addr_type(v6);
    sets.insert(
        (fam, name.to_string()),
        format!("{{ type {ty}; flags timeout; }}"),
    );
    let mut dsts: Vec<String> = matches.iter().map(|m| m.dst.to_string()).collect();
    dsts.sort();
    dsts.dedup();
    let elems: Vec<String> = dsts
        .iter()
        .map(|d| format!("{d} timeout {ttl_ms}ms"))
        .collect();
    elements.push((fam, name.to_string(), elems.join(", ")));
}

fn ports_text(v: &[PortMatch]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|p| match p {
            PortMatch::Port(x) => x.to_string(),
            PortMatch::Range([lo, hi]) => format!("{lo}-{hi}"),
        })
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// The match conditions of `m` (after the address conditions), each
/// followed by a space.
pub fn match_expr(m: &Match) -> String {
    let v6 = m.is_v6();
    let (_, ip) = addr_type(v6);
    let mut s = String::new();
    if !m.src_prefixes.is_empty() {
        let p: Vec<String> = m.src_prefixes.iter().map(prefix_text).collect();
        write!(s, "{ip} saddr {{ {} }} ", p.join(", ")).ok();
    }
    if let Some(p) = m.protocol {
        match m.protocol_name() {
            Some(name) if levee_packet::meta::protocol_name(p).is_some() => {
                write!(s, "meta l4proto {name} ").ok()
            }
            _ => write!(s, "meta l4proto {p} ").ok(),
        };
    }
    match (m.fragments, v6) {
        (Fragments::Any, _) => {}
        (Fragments::Unfragmented, false) => s.push_str("ip frag-off & 0x3fff == 0 "),
        (Fragments::Fragments, false) => s.push_str("ip frag-off & 0x3fff != 0 "),
        (Fragments::NonFirst, false) => s.push_str("ip frag-off & 0x1fff != 0 "),
        (Fragments::Unfragmented, true) => s.push_str("exthdr frag missing "),
        (Fragments::Fragments, true) => s.push_str("exthdr frag exists "),
        (Fragments::NonFirst, true) => s.push_str("frag frag-off != 0 "),
    }
    let l4 = match m.protocol {
        Some(proto::TCP) => "tcp",
        Some(proto::UDP) => "udp",
        Some(proto::SCTP) => "sctp",
        _ => "th",
    };
    if !m.tcp_flags.is_empty() && m.protocol == Some(proto::TCP) {
        let f: Vec<String> = m.tcp_flags.iter().map(|f| format!("{:#x}", f.0)).collect();
        write!(s, "tcp flags {{ {} }} ", f.join(", ")).ok();
    }
    if !m.src_ports.is_empty() {
        write!(s, "{l4} sport {} ", ports_text(&m.src_ports)).ok();
    }
    if !m.dst_ports.is_empty() {
        write!(s, "{l4} dport {} ", ports_text(&m.dst_ports)).ok();
    }
    if !m.icmp_types.is_empty() {
        let t: Vec<String> = m.icmp_types.iter().map(|t| t.to_string()).collect();
        let kw = if v6 { "icmpv6" } else { "icmp" };
        write!(s, "{kw} type {{ {} }} ", t.join(", ")).ok();
    }
    if let Some([lo, hi]) = m.length {
        if v6 {
            // ip6 length is the payload length: total minus the 40-byte header.
            write!(
                s,
                "ip6 length {}-{} ",
                lo.saturating_sub(40),
                hi.saturating_sub(40)
            )
            .ok();
        } else {
            write!(s, "ip length {lo}-{hi} ").ok();
        }
    }
    if let Some([lo, hi]) = m.ttl {
        let f = if v6 { "ip6 hoplimit" } else { "ip ttl" };
        write!(s, "{f} {lo}-{hi} ").ok();
    }
    if m.not_established {
        s.push_str("ct state & (established|related) == 0 ");
    }
    s
}

#[derive(Debug, Default)]
struct Listing {
    tables: Vec<&'static str>,
    rules: Vec<ListedRule>,
    sets: Vec<ListedSet>,
}

#[derive(Debug)]
struct ListedRule {
    family: &'static str,
    chain: String,
    handle: u64,
    owner: Option<Uuid>,
    counter: Counter,
}

#[derive(Debug)]
struct ListedSet {
    family: &'static str,
    name: String,
    /// `m_<tag>_..` sets: the tag.
    tag: Option<String>,
    elements: usize,
}

fn parse_listing(fam: &'static str, v: &Value, l: &mut Listing) {
    let items = v.get("nftables").and_then(Value::as_array);
    for item in items.into_iter().flatten() {
        if let Some(r) = item.get("rule") {
            let owner = r
                .get("comment")
                .and_then(Value::as_str)
                .and_then(id_from_comment);
            let mut counter = Counter::default();
            for e in r
                .get("expr")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(c) = e.get("counter") {
                    counter.packets += c.get("packets").and_then(Value::as_u64).unwrap_or(0);
                    counter.bytes += c.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                }
            }
            l.rules.push(ListedRule {
                family: fam,
                chain: r
                    .get("chain")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                handle: r.get("handle").and_then(Value::as_u64).unwrap_or(0),
                owner,
                counter,
            });
        } else if let Some(s) = item.get("set") {
            let name = s
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let tag = name
                .strip_prefix("m_")
                .and_then(|r| r.split('_').next())
                .map(str::to_string);
            l.sets.push(ListedSet {
                family: fam,
                elements: s.get("elem").and_then(Value::as_array).map_or(0, Vec::len),
                name,
                tag,
            });
        }
    }
}

impl Executor for NftExecutor {
    fn set_exempt(&mut self, exempt: &[IpPrefix]) -> Result<(), ExecError> {
        let exempt = crate::rule::collapse(exempt);
        if exempt == self.exempt {
            return Ok(());
        }
        self.exempt = exempt;
        self.exempt_changed = true;
        // Tables already there get the new sets now, atomically.
        let text: String = self
            .ready
            .iter()
            .map(|fam| format!("add table {fam} {TABLE}\n{}", self.exempt_lines(fam, true)))
            .collect();
        if text.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.run_batch(&text) {
            // The next apply rebuilds them from scratch.
            self.ready.clear();
            return Err(e);
        }
        Ok(())
    }

    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Nftables
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("nft", ["--version"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`nft --version` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package nftables")),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        !matches!(action, Action::SynCookies { .. } | Action::Blackhole)
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        Ok(vec![
            Cmd::new("nft", ["-f", "-"]).with_stdin(self.batch(rule)?)
        ])
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let text = self.batch(rule)?;
        if let Err(e) = self.run_batch(&text) {
            if self.ready.is_empty() {
                return Err(e);
            }
            // Someone removed our tables behind our back: rebuild them whole.
            self.ready.clear();
            let text = self.batch(rule)?;
            self.run_batch(&text)?;
        }
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("add table ") {
                self.ready.insert(if rest.starts_with("inet") {
                    "inet"
                } else {
                    "netdev"
                });
            }
        }
        self.applied.insert(rule.id);
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let l = self.listing()?;
        let tag = rule.tag();
        let rules = l.rules.iter().filter(|r| r.owner == Some(rule.id)).count();
        let armed = l
            .sets
            .iter()
            .filter(|s| {
                s.tag.as_deref() == Some(&tag) && (s.name.contains("_d") || s.name.contains("_s"))
            })
            .all(|s| s.elements > 0);
        Ok(rules > 0 && armed)
    }

    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        // Re-arming = flushing the mitigation's timed sets and adding the
        // elements again with a fresh timeout, in one transaction.
        let batch = self.batch(rule)?;
        let mut out = String::new();
        for line in batch.lines() {
            if let Some(rest) = line.strip_prefix("add element ") {
                let mut parts = rest.splitn(4, ' ');
                let (fam, table, name) = (parts.next(), parts.next(), parts.next());
                if let (Some(fam), Some(table), Some(name)) = (fam, table, name) {
                    if name.starts_with("m_") {
                        writeln!(out, "flush set {fam} {table} {name}").ok();
                        writeln!(out, "{line}").ok();
                    }
                }
            }
        }
        self.run_batch(&out)
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        self.applied.remove(&rule.id);
        let l = self.listing()?;
        let tag = rule.tag();
        let others = l.rules.iter().any(|r| {
            r.owner
                .is_some_and(|o| o != rule.id && self.applied.contains(&o))
        });
        let text = Self::removal_batch(
            &l,
            |owner, t| owner == Some(rule.id) || t == Some(tag.as_str()),
            !others,
        );
        if text.is_empty() {
            return Ok(());
        }
        self.forget_deleted_tables(&text);
        self.run_batch(&text)
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let l = self.listing()?;
        let mut m: BTreeMap<Uuid, Counter> = BTreeMap::new();
        for r in &l.rules {
            if let Some(id) = r.owner {
                *m.entry(id).or_default() += r.counter;
            }
        }
        Ok(m)
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let l = self.listing()?;
        let mut v = Vec::new();
        for fam in &l.tables {
            v.push(Owned {
                executor: ExecutorKind::Nftables,
                owner: None,
                tag: None,
                what: format!("nft table {fam} {TABLE}"),
                handle: format!("table {fam}"),
            });
        }
        for r in &l.rules {
            v.push(Owned {
                executor: ExecutorKind::Nftables,
                owner: r.owner,
                tag: None,
                what: format!(
                    "nft rule {} {TABLE} {} handle {}{}",
                    r.family,
                    r.chain,
                    r.handle,
                    r.owner
                        .map(|o| format!(" ({})", comment_for(o)))
                        .unwrap_or_default()
                ),
                handle: format!("rule {} {} {}", r.family, r.chain, r.handle),
            });
        }
        for s in l.sets.iter().filter(|s| s.tag.is_some()) {
            v.push(Owned {
                executor: ExecutorKind::Nftables,
                owner: None,
                tag: s.tag.clone(),
                what: format!("nft set {} {TABLE} {}", s.family, s.name),
                handle: format!("set {} {}", s.family, s.name),
            });
        }
        Ok(v)
    }

    fn remove_owned(&mut self, items: &[Owned], live: &[Uuid]) -> Result<(), ExecError> {
        if items.is_empty() {
            return Ok(());
        }
        let l = self.listing()?;
        let handles: BTreeSet<&str> = items.iter().map(|o| o.handle.as_str()).collect();
        let text = if live.is_empty() {
            Self::removal_batch(&l, |_, _| true, true)
        } else {
            let mut out = String::new();
            for r in &l.rules {
                if handles.contains(format!("rule {} {} {}", r.family, r.chain, r.handle).as_str())
                {
                    writeln!(
                        out,
                        "delete rule {} {TABLE} {} handle {}",
                        r.family, r.chain, r.handle
                    )
                    .ok();
                }
            }
            for s in &l.sets {
                if handles.contains(format!("set {} {}", s.family, s.name).as_str()) {
                    writeln!(out, "delete set {} {TABLE} {}", s.family, s.name).ok();
                }
            }
            out
        };
        self.applied.retain(|id| live.contains(id));
        self.forget_deleted_tables(&text);
        if text.is_empty() {
            return Ok(());
        }
        self.run_batch(&text)
    }
}

/// `tag_of` re-exported for tests that build names.
pub fn set_name(id: Uuid, kind: &str, v6: bool) -> String {
    format!("m_{}_{kind}{}", tag_of(id), if v6 { 6 } else { 4 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::from_family;
    use crate::runner::{CmdOutput, ScriptedRunner};
    use levee_packet::Family;
    use std::time::Duration;

    fn id() -> Uuid {
        "01a1fbca-a736-7516-aa18-813da2481001".parse().unwrap()
    }

    fn spec(action: Action, family: Family, iface: Option<&str>) -> RuleSpec {
        RuleSpec {
            id: id(),
            incident_id: "inc".into(),
            action,
            matches: from_family(family, "10.0.0.2".parse().unwrap()).unwrap(),
            sources: vec![],
            interface: iface.map(String::from),
            ttl: Duration::from_secs(600),
            expires_unix_ms: 0,
        }
    }

    fn exec(s: &ScriptedRunner) -> NftExecutor {
        NftExecutor::new(
            Box::new(s.clone()),
            vec![
                "192.0.2.0/24".parse().unwrap(),
                "10.0.0.1/32".parse().unwrap(),
            ],
            true,
        )
    }

    #[test]
    fn syn_rate_limit_goes_to_netdev_ingress() {
        let s = ScriptedRunner::new();
        let e = exec(&s);
        let text = e
            .batch(&spec(
                Action::RateLimit {
                    pps: 2000,
                    burst: 500,
                },
                Family::SynFlood,
                Some("eth0"),
            ))
            .unwrap();
        let want = "\
add table netdev levee
add set netdev levee exempt4 { type ipv4_addr; flags interval; }
add element netdev levee exempt4 { 10.0.0.1, 192.0.2.0/24 }
add set netdev levee exempt6 { type ipv6_addr; flags interval; }
add chain netdev levee in_eth0 { type filter hook ingress device \"eth0\" priority -500; policy accept; }
add set netdev levee m_3da2481001_d4 { type ipv4_addr; flags timeout; }
add element netdev levee m_3da2481001_d4 { 10.0.0.2 timeout 600000ms }
add rule netdev levee in_eth0 ip daddr @m_3da2481001_d4 ip saddr != @exempt4 meta l4proto tcp ip frag-off & 0x3fff == 0 tcp flags { 0x2 } limit rate over 2000/second burst 500 packets counter drop comment \"levee:01a1fbca-a736-7516-aa18-813da2481001\"
";
        // exempt order follows the list given; compare line sets for that one line.
        let got: Vec<&str> = text.lines().collect();
        let want: Vec<&str> = want.lines().collect();
        assert_eq!(got.len(), want.len(), "{text}");
        for (g, w) in got.iter().zip(&want) {
            if w.contains("add element netdev levee exempt4") {
                assert!(g.contains("10.0.0.1") && g.contains("192.0.2.0/24"), "{g}");
            } else {
                assert_eq!(g, w);
            }
        }
    }

    #[test]
    fn reflection_needs_conntrack_and_tails_are_stateless() {
        let s = ScriptedRunner::new();
        let e = exec(&s);
        let text = e
            .batch(&spec(Action::Drop, Family::DnsAmplification, Some("eth0")))
            .unwrap();
        assert!(text.contains("add chain inet levee pre_ct { type filter hook prerouting priority -150; policy accept; }"), "{text}");
        assert!(text.contains("add rule inet levee pre_ct ip daddr @m_3da2481001_d4 ip saddr != @exempt4 meta l4proto udp udp sport { 53 } ct state & (established|related) == 0 counter drop"), "{text}");
        assert!(text.contains("add rule netdev levee in_eth0 ip daddr @m_3da2481001_d4 ip saddr != @exempt4 meta l4proto udp ip frag-off & 0x1fff != 0 counter drop"), "{text}");
        // The timed destination set exists in both tables.
        assert!(text.contains("add element inet levee m_3da2481001_d4"));
        assert!(text.contains("add element netdev levee m_3da2481001_d4"));
    }

    #[test]
    fn actions_render() {
        let s = ScriptedRunner::new();
        let e = exec(&s);
        let t = e
            .batch(&spec(
                Action::ConnLimit { max: 20 },
                Family::HttpFlood,
                None,
            ))
            .unwrap();
        assert!(t.contains(
            "add set inet levee m_3da2481001_c4 { type ipv4_addr; size 65535; flags dynamic; }"
        ));
        assert!(t.contains("tcp dport { 80, 443 } ct state new add @m_3da2481001_c4 { ip saddr ct count over 20 } counter reject with tcp reset"), "{t}");
        let t = e
            .batch(&spec(
                Action::HashLimit {
                    pps: 100,
                    burst: 10,
                },
                Family::UdpFlood,
                None,
            ))
            .unwrap();
        assert!(t.contains("add rule inet levee pre_raw"), "{t}");
        assert!(t.contains("add @m_3da2481001_h4 { ip saddr limit rate over 100/second burst 10 packets } counter drop"), "{t}");
        let t = e
            .batch(&spec(
                Action::Shape { bps: 8_000_000 },
                Family::UdpFlood,
                None,
            ))
            .unwrap();
        assert!(
            t.contains("limit rate over 1000000 bytes/second counter drop"),
            "{t}"
        );
        let t = e
            .batch(&spec(Action::Reject, Family::SynFlood, None))
            .unwrap();
        assert!(
            t.contains("add rule inet levee input") && t.contains("reject with tcp reset"),
            "{t}"
        );
        let mut sb = spec(Action::SourceBlock, Family::SynFlood, None);
        sb.sources = vec![
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8:9::/48".parse().unwrap(),
        ];
        let t = e.batch(&sb).unwrap();
        assert!(
            t.contains(
                "add set inet levee m_3da2481001_s4 { type ipv4_addr; flags interval,timeout; }"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "add element inet levee m_3da2481001_s4 { 203.0.113.0/24 timeout 600000ms }"
            ),
            "{t}"
        );
        assert!(t.contains("add rule inet levee pre_raw ip daddr @m_3da2481001_d4 ip saddr @m_3da2481001_s4 counter drop"), "{t}");
        assert!(
            t.contains("add rule inet levee pre_raw ip6 saddr @m_3da2481001_s6 counter drop"),
            "{t}"
        );
        assert!(e
            .batch(&spec(
                Action::SynCookies { mode: 1 },
                Family::SynFlood,
                None
            ))
            .is_err());
        let mut conn_udp = spec(Action::ConnLimit { max: 3 }, Family::UdpFlood, None);
        conn_udp.matches[0].protocol = Some(proto::UDP);
        assert!(e
            .batch(&conn_udp)
            .unwrap_err()
            .to_string()
            .contains("TCP only"));
        let empty = spec(Action::SourceBlock, Family::SynFlood, None);
        assert!(e
            .batch(&empty)
            .unwrap_err()
            .to_string()
            .contains("nothing to block"));
    }

    #[test]
    fn ipv6_match_expr() {
        let mut m = Match::to("2001:db8::2".parse().unwrap());
        m.protocol = Some(proto::ICMPV6);
        m.icmp_types = vec![128];
        m.length = Some([48, 1500]);
        m.ttl = Some([1, 64]);
        m.fragments = Fragments::Unfragmented;
        m.src_prefixes = vec!["2001:db8:1::/48".parse().unwrap()];
        assert_eq!(
            match_expr(&m),
            "ip6 saddr { 2001:db8:1::/48 } meta l4proto icmpv6 exthdr frag missing icmpv6 type { 128 } ip6 length 8-1460 ip6 hoplimit 1-64 "
        );
        let mut g = Match::to("10.0.0.2".parse().unwrap());
        g.protocol = Some(253);
        g.dst_ports = vec![PortMatch::Range([1000, 2000])];
        assert_eq!(match_expr(&g), "meta l4proto 253 th dport { 1000-2000 } ");
    }

    const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "inet", "name": "levee", "handle": 1}},
      {"set": {"family": "inet", "name": "exempt4", "table": "levee", "type": "ipv4_addr", "handle": 1, "flags": ["interval"]}},
      {"set": {"family": "inet", "name": "m_3da2481001_d4", "table": "levee", "type": "ipv4_addr", "handle": 3, "flags": ["timeout"], "elem": [{"elem": {"val": "10.0.0.2", "timeout": 600, "expires": 599}}]}},
      {"set": {"family": "inet", "name": "m_ffffffffff_d4", "table": "levee", "type": "ipv4_addr", "handle": 4, "flags": ["timeout"]}},
      {"chain": {"family": "inet", "table": "levee", "name": "pre_raw", "handle": 2}},
      {"rule": {"family": "inet", "table": "levee", "chain": "pre_raw", "handle": 7, "comment": "levee:01a1fbca-a736-7516-aa18-813da2481001", "expr": [{"counter": {"packets": 120, "bytes": 4800}}, {"drop": null}]}},
      {"rule": {"family": "inet", "table": "levee", "chain": "pre_raw", "handle": 8, "comment": "levee:01a1fbca-a736-7516-aa18-813da2481001", "expr": [{"counter": {"packets": 5, "bytes": 200}}, {"drop": null}]}},
      {"rule": {"family": "inet", "table": "levee", "chain": "pre_raw", "handle": 9, "comment": "levee:01a1fbca-0000-7516-aa18-ffffffffffff", "expr": [{"counter": {"packets": 1, "bytes": 40}}, {"drop": null}]}}]}"#;

    fn scripted_listing() -> ScriptedRunner {
        let s = ScriptedRunner::new();
        s.respond(|c| {
            let a = c.args.join(" ");
            if a == "-j list table inet levee" {
                Some(CmdOutput::ok(LISTING))
            } else if a == "-j list table netdev levee" {
                Some(CmdOutput::failed(
                    1,
                    "Error: No such file or directory\nlist table netdev levee\n",
                ))
            } else {
                None
            }
        });
        s
    }

    #[test]
    fn counters_verify_and_removal_from_listing() {
        let s = scripted_listing();
        let mut e = exec(&s);
        let c = e.counters().unwrap();
        assert_eq!(
            c[&id()],
            Counter {
                packets: 125,
                bytes: 5000
            }
        );
        assert_eq!(c.len(), 2);
        let r = spec(Action::Drop, Family::AckFlood, None);
        assert!(e.verify(&r).unwrap());

        // Two mitigations applied; removing one deletes only its objects.
        let other: Uuid = "01a1fbca-0000-7516-aa18-ffffffffffff".parse().unwrap();
        e.applied.insert(id());
        e.applied.insert(other);
        s.clear();
        e.remove(&r).unwrap();
        let last = s.log().last().unwrap().clone();
        assert_eq!(
            last.stdin.as_deref(),
            Some("delete rule inet levee pre_raw handle 7\ndelete rule inet levee pre_raw handle 8\ndelete set inet levee m_3da2481001_d4\n")
        );
        // The last one takes the tables with it.
        s.clear();
        let mut r2 = r.clone();
        r2.id = other;
        e.remove(&r2).unwrap();
        assert_eq!(
            s.log().last().unwrap().stdin.as_deref(),
            Some("delete table inet levee\n")
        );
    }

    #[test]
    fn owned_and_reconcile() {
        let s = scripted_listing();
        let mut e = exec(&s);
        let owned = e.owned().unwrap();
        // table + 3 rules + 2 tagged sets
        assert_eq!(owned.len(), 6, "{owned:#?}");
        let live = [id()];
        let orphans: Vec<Owned> = owned.into_iter().filter(|o| !o.backed_by(&live)).collect();
        let whats: Vec<&str> = orphans.iter().map(|o| o.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "nft rule inet levee pre_raw handle 9 (levee:01a1fbca-0000-7516-aa18-ffffffffffff)",
                "nft set inet levee m_ffffffffff_d4"
            ]
        );
        s.clear();
        e.remove_owned(&orphans, &live).unwrap();
        assert_eq!(
            s.log().last().unwrap().stdin.as_deref(),
            Some(
                "delete rule inet levee pre_raw handle 9\ndelete set inet levee m_ffffffffff_d4\n"
            )
        );
        s.clear();
        e.remove_owned(&orphans, &[]).unwrap();
        assert_eq!(
            s.log().last().unwrap().stdin.as_deref(),
            Some("delete table inet levee\n")
        );
    }

    /// A new allowlist reaches tables already in the kernel at once (flush
    /// and refill in one transaction) and every later first fill.
    #[test]
    fn new_exempt_prefixes_refill_live_sets_atomically() {
        let s = ScriptedRunner::new();
        let mut e = exec(&s);
        let new: Vec<IpPrefix> = vec![
            "198.51.100.0/24".parse().unwrap(),
            "10.0.0.1/32".parse().unwrap(),
        ];
        e.set_exempt(&new).unwrap();
        assert!(s.log().is_empty(), "no table yet: nothing to run");
        e.apply(&spec(Action::Drop, Family::AckFlood, None))
            .unwrap();
        let first = s.log()[0].stdin.clone().unwrap();
        assert!(
            first.contains("flush set inet levee exempt4\nadd element inet levee exempt4 { 198.51.100.0/24, 10.0.0.1 }"),
            "{first}"
        );
        assert!(!first.contains("192.0.2.0/24"), "{first}");
        s.clear();
        e.set_exempt(&new).unwrap();
        assert!(s.log().is_empty(), "unchanged: nothing to run");
        e.set_exempt(&["203.0.113.7/32".parse().unwrap()]).unwrap();
        assert_eq!(
            s.log()[0].stdin.as_deref(),
            Some(
                "add table inet levee\n\
                 add set inet levee exempt4 { type ipv4_addr; flags interval; }\n\
                 flush set inet levee exempt4\n\
                 add element inet levee exempt4 { 203.0.113.7 }\n\
                 add set inet levee exempt6 { type ipv6_addr; flags interval; }\n\
                 flush set inet levee exempt6\n"
            )
        );
    }

    #[test]
    fn exempt_sets_are_filled_once_per_table() {
        let s = ScriptedRunner::new();
        let mut e = exec(&s);
        let r = spec(Action::Drop, Family::AckFlood, None);
        e.apply(&r).unwrap();
        assert!(s.log()[0]
            .stdin
            .as_deref()
            .unwrap()
            .contains("add element inet levee exempt4"));
        let mut r2 = r.clone();
        r2.id = Uuid::from_u128(5);
        e.apply(&r2).unwrap();
        let second = s.log()[1].stdin.clone().unwrap();
        assert!(!second.contains("exempt4 {"), "{second}");
        assert!(second.contains("add table inet levee"));
        // A failing batch (tables gone) is retried with the exempt sets.
        s.push(CmdOutput::failed(1, "Error: No such file or directory"));
        let mut r3 = r.clone();
        r3.id = Uuid::from_u128(6);
        e.apply(&r3).unwrap();
        assert!(s.log()[3]
            .stdin
            .as_deref()
            .unwrap()
            .contains("add element inet levee exempt4"));
    }

    #[test]
    fn refresh_rearms_timed_sets_only() {
        let s = ScriptedRunner::new();
        let mut e = exec(&s);
        e.refresh(&spec(
            Action::RateLimit { pps: 1, burst: 5 },
            Family::SynFlood,
            Some("eth0"),
        ))
        .unwrap();
        assert_eq!(
            s.log()[0].stdin.as_deref(),
            Some("flush set netdev levee m_3da2481001_d4\nadd element netdev levee m_3da2481001_d4 { 10.0.0.2 timeout 600000ms }\n")
        );
    }
}
