//! The iptables/ip6tables executor: a dedicated `LEVEE` chain in the
//! filter table, jumped to from the top of `INPUT`, holding
//! - `RETURN` rules for the exempt prefixes first (allowlist, own
//!   addresses, gateways), so nothing below can touch them;
//! - one rule per mitigation match, commented `levee:<id>`, with drop,
//!   reject, rate limit (`hashlimit` without a mode: one bucket), per-source
//!   hash limit (`hashlimit --hashlimit-mode srcip`) or connection limit
//!   (`connlimit`).
//!
//! Lifetime: iptables rules cannot expire, but the `time` match can stop
//! matching: every rule carries `-m time --datestop <expiry, UTC>`, so at
//! its TTL the kernel ignores it even if the agent was SIGKILLed; refreshing
//! replaces the rule in place (`-R`) with a later date; reconcile removes
//! inert rules.
//!
//! When the last Levee rule leaves the chain, the chain and its hook are
//! deleted. With the nf_tables backend (iptables-nft), `iptables -N` creates
//! the `ip filter` table if it did not exist; Levee deletes it again when it
//! created it and it is left empty, so `nft list ruleset` ends as it began.
//!
//! The chain handling ([`Chains`]) is shared with the ipset executor, whose
//! rules live in the same chain.

use super::{Availability, Counter, ExecError, Executor, Owned};
use crate::action::{Action, ExecutorKind};
use crate::matcher::{proto, Fragments, Match};
use crate::rule::{id_from_comment, RuleSpec};
use crate::runner::{Cmd, CommandRunner};
use levee_packet::classify::fingerprint::{IpPrefix, PortMatch};
use levee_packet::TcpFlags;
use std::collections::BTreeMap;
use uuid::Uuid;

pub const CHAIN: &str = "LEVEE";
const HOOK_COMMENT: &str = "levee:hook";
const EXEMPT_COMMENT: &str = "levee:exempt";
/// multiport takes at most 15 ports (a range counts as two).
const MULTIPORT_MAX: usize = 15;

fn prog(v6: bool) -> &'static str {
    if v6 {
        "ip6tables"
    } else {
        "iptables"
    }
}

fn fam_table(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

fn ipt(v6: bool, args: Vec<String>) -> Cmd {
    let mut a = vec!["-w".to_string()];
    a.extend(args);
    Cmd::new(prog(v6), a)
}

fn s<I: IntoIterator<Item = T>, T: Into<String>>(v: I) -> Vec<String> {
    v.into_iter().map(Into::into).collect()
}

/// One rule of the `LEVEE` chain as `-S` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// 1-based position in the chain.
    pub num: usize,
    pub owner: Option<Uuid>,
    pub line: String,
}

/// The `LEVEE` chain of one family: setup, listing, deletion, teardown.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chains {
    pub exempt: Vec<IpPrefix>,
    ready: [bool; 2],
    /// Did the nf_tables `filter` table exist before Levee first made its
    /// chain? `None`: not the nf_tables backend, or not known.
    table_existed: [Option<bool>; 2],
}

fn idx(v6: bool) -> usize {
    usize::from(v6)
}

/// Extracts the `levee:<id>` comment of an `iptables -S` line.
fn owner_of(line: &str) -> Option<Uuid> {
    let i = line.find("--comment ")?;
    let rest = &line[i + "--comment ".len()..];
    let word = rest.split_whitespace().next()?;
    id_from_comment(word)
}

impl Chains {
    pub fn new(exempt: Vec<IpPrefix>) -> Chains {
        Chains {
            exempt,
            ..Chains::default()
        }
    }

    pub fn is_ready(&self, v6: bool) -> bool {
        self.ready[idx(v6)]
    }

    /// `op` (`-A`, `-D`; `-I` puts it first) on the exempt rule of `p`.
    fn exempt_rule(op: &str, p: &IpPrefix) -> Cmd {
        let mut args = vec![op.to_string(), CHAIN.to_string()];
        if op == "-I" {
            args.push("1".into());
        }
        args.extend(s([
            "-s",
            &p.to_string(),
            "-m",
            "comment",
            "--comment",
            EXEMPT_COMMENT,
            "-j",
            "RETURN",
        ]));
        ipt(p.addr.is_ipv6(), args)
    }

    /// The commands that take a ready chain's exempt rules from the
    /// current prefixes to `new`: new ones first in the chain, gone ones deleted.
    pub fn exempt_change_cmds(&self, new: &[IpPrefix]) -> Vec<Cmd> {
        let mut v = Vec::new();
        for p in new.iter().filter(|p| !self.exempt.contains(p)) {
            if self.is_ready(p.addr.is_ipv6()) {
                v.push(Self::exempt_rule("-I", p));
            }
        }
        for p in self.exempt.iter().filter(|p| !new.contains(p)) {
            if self.is_ready(p.addr.is_ipv6()) {
                v.push(Self::exempt_rule("-D", p));
            }
        }
        v
    }

    /// The commands that create the chain, its exempt rules and its hook.
    pub fn setup_cmds(&self, v6: bool) -> Vec<Cmd> {
        let mut v = vec![ipt(v6, s(["-N", CHAIN]))];
        for p in self.exempt.iter().filter(|p| p.addr.is_ipv6() == v6) {
            v.push(Self::exempt_rule("-A", p));
        }
        v.push(ipt(
            v6,
            s([
                "-I",
                "INPUT",
                "1",
                "-m",
                "comment",
                "--comment",
                HOOK_COMMENT,
                "-j",
                CHAIN,
            ]),
        ));
        v
    }

    /// The chain's rules, `None` when the chain does not exist.
    pub fn list(
        &self,
        r: &mut dyn CommandRunner,
        v6: bool,
    ) -> Result<Option<Vec<Listed>>, ExecError> {
        let out = r.run(&ipt(v6, s(["-S", CHAIN])))?;
        if !out.success() {
            return Ok(None);
        }
        Ok(Some(
            out.stdout
                .lines()
                .filter(|l| l.starts_with("-A "))
                .enumerate()
                .map(|(i, l)| Listed {
                    num: i + 1,
                    owner: owner_of(l),
                    line: l.to_string(),
                })
                .collect(),
        ))
    }

    /// Makes sure the chain exists with its exempt rules and hook. An
    /// existing chain is kept as it is (another executor sharing it, e.g.
    /// ipset, may have rules there; leftovers of a dead run are reconcile's
    /// job), only its hook is restored if missing.
    pub fn ensure(&mut self, r: &mut dyn CommandRunner, v6: bool) -> Result<(), ExecError> {
        if self.ready[idx(v6)] {
            return Ok(());
        }
        if self.list(r, v6)?.is_some() {
            let check = ipt(
                v6,
                s([
                    "-C",
                    "INPUT",
                    "-m",
                    "comment",
                    "--comment",
                    HOOK_COMMENT,
                    "-j",
                    CHAIN,
                ]),
            );
            if !r.run(&check)?.success() {
                r.check(&ipt(
                    v6,
                    s([
                        "-I",
                        "INPUT",
                        "1",
                        "-m",
                        "comment",
                        "--comment",
                        HOOK_COMMENT,
                        "-j",
                        CHAIN,
                    ]),
                ))?;
            }
            self.ready[idx(v6)] = true;
            return Ok(());
        }
        if self.table_existed[idx(v6)].is_none() && nft_backend(r, v6) {
            let probe = Cmd::new("nft", ["list", "table", fam_table(v6), "filter"]);
            self.table_existed[idx(v6)] = Some(r.run(&probe).map(|o| o.success()).unwrap_or(true));
        }
        for c in self.setup_cmds(v6) {
            r.check(&c)?;
        }
        self.ready[idx(v6)] = true;
        Ok(())
    }

    /// Deletes the rules `pick` selects (highest position first, so the
    /// others keep their numbers); returns how many Levee-owned rules are left.
    pub fn delete(
        &mut self,
        r: &mut dyn CommandRunner,
        v6: bool,
        pick: impl Fn(&Listed) -> bool,
    ) -> Result<usize, ExecError> {
        let Some(rules) = self.list(r, v6)? else {
            return Ok(0);
        };
        let mut left = 0;
        for l in rules.iter().rev() {
            if pick(l) {
                r.check(&ipt(v6, s(["-D", CHAIN, &l.num.to_string()])))?;
            } else if l.owner.is_some() {
                left += 1;
            }
        }
        Ok(left)
    }

    /// Removes hook, chain and (when Levee created it and it is empty) the
    /// nf_tables `filter` table.
    pub fn teardown(&mut self, r: &mut dyn CommandRunner, v6: bool) -> Result<(), ExecError> {
        // The hook may be missing (half-made chain); -D then fails, which is fine.
        let hook = ipt(
            v6,
            s([
                "-D",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                HOOK_COMMENT,
                "-j",
                CHAIN,
            ]),
        );
        while r.run(&hook)?.success() {}
        if self.list(r, v6)?.is_some() {
            r.check(&ipt(v6, s(["-F", CHAIN])))?;
            r.check(&ipt(v6, s(["-X", CHAIN])))?;
        }
        // Delete the nf_tables `filter` table when Levee made it, or when it
        // cannot know (reconciling after a crash) and the table is empty:
        // an empty filter table with accepting built-in chains filters
        // nothing, and iptables-nft makes it again on demand.
        if self.table_existed[idx(v6)] != Some(true) && nft_backend(r, v6) {
            let t = fam_table(v6);
            let out = r.run(&Cmd::new("nft", ["-j", "list", "table", t, "filter"]))?;
            if out.success() && !out.stdout.contains("\"rule\"") && !out.stdout.contains("\"set\"")
            {
                let chains = out.stdout.matches("\"chain\"").count();
                let builtin = ["INPUT", "FORWARD", "OUTPUT"]
                    .iter()
                    .filter(|c| out.stdout.contains(&format!("\"name\": \"{c}\"")))
                    .count();
                let accept = !out.stdout.contains("\"policy\": \"drop\"");
                if chains == builtin && accept {
                    r.check(&Cmd::new("nft", ["delete", "table", t, "filter"]))?;
                }
            }
        }
        self.ready[idx(v6)] = false;
        Ok(())
    }

    /// Matched packets per mitigation (`-L -v -n -x`).
    pub fn counters(
        &self,
        r: &mut dyn CommandRunner,
        v6: bool,
    ) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let cmd = ipt(v6, s(["-L", CHAIN, "-v", "-n", "-x"]));
        let out = r.run(&cmd)?;
        let mut m: BTreeMap<Uuid, Counter> = BTreeMap::new();
        if !out.success() {
            return Ok(m);
        }
        for line in out.stdout.lines() {
            let Some(i) = line.find("/* levee:") else {
                continue;
            };
            let Some(id) = line[i + 3..]
                .split_whitespace()
                .next()
                .and_then(id_from_comment)
            else {
                continue;
            };
            let mut t = line.split_whitespace();
            let (Some(p), Some(b)) = (t.next(), t.next()) else {
                continue;
            };
            let (Ok(packets), Ok(bytes)) = (p.parse::<u64>(), b.parse::<u64>()) else {
                return Err(ExecError::Parse {
                    executor: ExecutorKind::Iptables,
                    command: cmd.line(),
                    message: format!("no packet/byte counts in {line:?}"),
                });
            };
            *m.entry(id).or_default() += Counter { packets, bytes };
        }
        Ok(m)
    }

    /// The chain's objects for reconcile.
    pub fn owned(
        &self,
        r: &mut dyn CommandRunner,
        v6: bool,
        kind: ExecutorKind,
    ) -> Result<Vec<Owned>, ExecError> {
        let mut v = Vec::new();
        let Some(rules) = self.list(r, v6)? else {
            return Ok(v);
        };
        v.push(Owned {
            executor: kind,
            owner: None,
            tag: None,
            what: format!("{} chain {CHAIN} and its INPUT hook", prog(v6)),
            handle: format!("chain {}", prog(v6)),
        });
        for l in rules.iter().filter(|l| l.owner.is_some()) {
            v.push(Owned {
                executor: kind,
                owner: l.owner,
                tag: None,
                what: format!("{} {}", prog(v6), l.line),
                handle: format!("rule {} {}", prog(v6), l.line),
            });
        }
        Ok(v)
    }

    /// Reconcile: deletes listed rules; tears the chain down when no
    /// Levee rule is left.
    pub fn remove_owned(
        &mut self,
        r: &mut dyn CommandRunner,
        items: &[Owned],
        v6: bool,
    ) -> Result<(), ExecError> {
        let lines: Vec<&str> = items
            .iter()
            .filter_map(|o| o.handle.strip_prefix(&format!("rule {} ", prog(v6))))
            .collect();
        let left = self.delete(r, v6, |l| lines.contains(&l.line.as_str()))?;
        let whole = items
            .iter()
            .any(|o| o.handle == format!("chain {}", prog(v6)));
        if left == 0 && (whole || !lines.is_empty()) {
            self.teardown(r, v6)?;
        }
        Ok(())
    }
}

/// The `LEVEE` chains, shared by the iptables and ipset executors (their
/// rules live in the same chain; the chain goes when neither has a rule left).
#[derive(Debug, Clone, Default)]
pub struct ChainHandle(std::sync::Arc<std::sync::Mutex<Chains>>);

impl ChainHandle {
    /// `exempt`: prefixes no rule may touch (see [`crate::Protected::exempt`]).
    pub fn new(exempt: Vec<IpPrefix>) -> ChainHandle {
        ChainHandle(std::sync::Arc::new(std::sync::Mutex::new(Chains::new(
            exempt,
        ))))
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Chains> {
        // Chains holds plain flags; a panic elsewhere leaves them usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// New exempt prefixes: chains already made get their exempt rules
    /// changed now (both executors sharing the chain call this; the second
    /// finds nothing to do).
    pub(crate) fn set_exempt(
        &self,
        r: &mut dyn CommandRunner,
        exempt: &[IpPrefix],
    ) -> Result<(), ExecError> {
        let mut chains = self.lock();
        let cmds = chains.exempt_change_cmds(exempt);
        chains.exempt = exempt.to_vec();
        drop(chains);
        for c in &cmds {
            r.check(c)?;
        }
        Ok(())
    }
}

/// Whether `iptables -V` says the nf_tables backend.
fn nft_backend(r: &mut dyn CommandRunner, v6: bool) -> bool {
    r.run(&Cmd::new(prog(v6), ["-V"]))
        .map(|o| o.stdout.contains("nf_tables"))
        .unwrap_or(false)
}

/// `2026-11-21T01:44:10` (UTC), the `--datestop` form.
pub fn datestop(unix_ms: i64) -> String {
    levee_model::timefmt::rfc3339_millis(unix_ms)[..19].to_string()
}

fn ports_arg(v: &[PortMatch]) -> String {
    v.iter()
        .map(|p| match p {
            PortMatch::Port(x) => x.to_string(),
            PortMatch::Range([lo, hi]) => format!("{lo}:{hi}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn port_args(dir: &str, v: &[PortMatch]) -> Result<Vec<String>, String> {
    if v.is_empty() {
        return Ok(vec![]);
    }
    let weight: usize = v
        .iter()
        .map(|p| {
            if matches!(p, PortMatch::Range(_)) {
                2
            } else {
                1
            }
        })
        .sum();
    if v.len() == 1 {
        return Ok(s([format!("--{dir}port"), ports_arg(v)]));
    }
    if weight > MULTIPORT_MAX {
        return Err(format!("{} {dir} ports exceed multiport's 15", v.len()));
    }
    Ok(s([
        "-m".to_string(),
        "multiport".into(),
        format!("--{dir}ports"),
        ports_arg(v),
    ]))
}

/// iptables' flag names (it knows only the low six bits).
fn flags_arg(f: TcpFlags) -> String {
    let names = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| f.0 & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "NONE".into()
    } else {
        set.join(",")
    }
}

/// The match arguments of `m`, one list per rule (lists of TCP flag sets,
/// ICMP types and source prefixes become one rule each).
pub fn match_args(m: &Match) -> Result<Vec<Vec<String>>, String> {
    let v6 = m.is_v6();
    let full = if v6 { 128 } else { 32 };
    let mut base = s(["-d".to_string(), format!("{}/{full}", m.dst)]);
    if let Some(p) = m.protocol {
        base.push("-p".into());
        base.push(match p {
            proto::ICMP if !v6 => "icmp".into(),
            proto::ICMP | proto::ICMPV6 if v6 => "ipv6-icmp".into(),
            proto::TCP => "tcp".into(),
            proto::UDP => "udp".into(),
            proto::SCTP => "sctp".into(),
            n => n.to_string(),
        });
    }
    match (m.fragments, v6) {
        (Fragments::Any, _) => {}
        (Fragments::Unfragmented, false) => base.extend(s(["-m", "u32", "--u32", "4&0x3FFF=0"])),
        (Fragments::Fragments, false) => {
            base.extend(s(["-m", "u32", "--u32", "4&0x3FFF=0x1:0x3FFF"]))
        }
        (Fragments::NonFirst, false) => base.push("-f".into()),
        (Fragments::Unfragmented, true) => {
            base.extend(s(["-m", "ipv6header", "!", "--header", "frag", "--soft"]))
        }
        // ip6tables cannot single out later fragments; all fragments it is.
        (Fragments::Fragments | Fragments::NonFirst, true) => base.extend(s(["-m", "frag"])),
    }
    if m.has_transport()
        && !matches!(
            m.protocol,
            Some(proto::TCP | proto::UDP | proto::SCTP | proto::ICMP | proto::ICMPV6)
        )
    {
        return Err("ports need TCP, UDP or SCTP".into());
    }
    base.extend(port_args("s", &m.src_ports)?);
    base.extend(port_args("d", &m.dst_ports)?);
    if let Some([lo, hi]) = m.length {
        base.extend(s([
            "-m".to_string(),
            "length".into(),
            "--length".into(),
            format!("{lo}:{hi}"),
        ]));
    }
    if let Some([lo, hi]) = m.ttl {
        let (module, gt, lt) = if v6 {
            ("hl", "--hl-gt", "--hl-lt")
        } else {
            ("ttl", "--ttl-gt", "--ttl-lt")
        };
        if lo > 0 {
            base.extend(s(["-m", module, gt, &(lo - 1).to_string()]));
        }
        if hi < 255 {
            base.extend(s(["-m", module, lt, &(hi + 1).to_string()]));
        }
    }
    if m.not_established {
        base.extend(s([
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "ESTABLISHED,RELATED",
        ]));
    }
    // Expand the "any of" lists into one rule each.
    let mut rules = vec![base];
    if !m.tcp_flags.is_empty() {
        rules = rules
            .into_iter()
            .flat_map(|r| {
                m.tcp_flags.iter().map(move |f| {
                    let mut x = r.clone();
                    x.extend(s(["--tcp-flags".to_string(), "ALL".into(), flags_arg(*f)]));
                    x
                })
            })
            .collect();
    }
    if !m.icmp_types.is_empty() {
        let opt = if v6 { "--icmpv6-type" } else { "--icmp-type" };
        rules = rules
            .into_iter()
            .flat_map(|r| {
                m.icmp_types.iter().map(move |t| {
                    let mut x = r.clone();
                    x.extend(s([opt.to_string(), t.to_string()]));
                    x
                })
            })
            .collect();
    }
    if !m.src_prefixes.is_empty() {
        rules = rules
            .into_iter()
            .flat_map(|r| {
                m.src_prefixes.iter().map(move |p| {
                    let mut x = s(["-s".to_string(), p.to_string()]);
                    x.extend(r.clone());
                    x
                })
            })
            .collect();
    }
    Ok(rules)
}

/// The target arguments (after the time match and comment).
fn target_args(rule: &RuleSpec, m: &Match) -> Result<Vec<String>, ExecError> {
    let v6 = m.is_v6();
    let name = format!("lv{}", rule.tag());
    Ok(match rule.action {
        Action::Drop | Action::SourceBlock => s(["-j", "DROP"]),
        Action::Reject => {
            let with = if m.protocol == Some(proto::TCP) {
                "tcp-reset"
            } else if v6 {
                "icmp6-port-unreachable"
            } else {
                "icmp-port-unreachable"
            };
            s(["-j", "REJECT", "--reject-with", with])
        }
        Action::RateLimit { pps, burst } | Action::HashLimit { pps, burst } => {
            let mut a = s([
                "-m".to_string(),
                "hashlimit".into(),
                "--hashlimit-above".into(),
                format!("{}/sec", pps.min(1_000_000)),
                "--hashlimit-burst".into(),
                burst.to_string(),
                "--hashlimit-name".into(),
                name,
            ]);
            if matches!(rule.action, Action::HashLimit { .. }) {
                a.extend(s([
                    "--hashlimit-mode",
                    "srcip",
                    "--hashlimit-htable-expire",
                    "60000",
                ]));
            }
            a.extend(s(["-j", "DROP"]));
            a
        }
        Action::ConnLimit { max } => {
            if m.protocol != Some(proto::TCP) {
                return Err(ExecError::unsupported(
                    ExecutorKind::Iptables,
                    &rule.action,
                    "connection limits apply to TCP only; the match is not TCP",
                ));
            }
            s([
                "-m".to_string(),
                "conntrack".into(),
                "--ctstate".into(),
                "NEW".into(),
                "-m".into(),
                "connlimit".into(),
                "--connlimit-above".into(),
                max.to_string(),
                "--connlimit-mask".into(),
                (if v6 { "128" } else { "32" }).into(),
                "-j".into(),
                "REJECT".into(),
                "--reject-with".into(),
                "tcp-reset".into(),
            ])
        }
        Action::Shape { .. } | Action::SynCookies { .. } | Action::Blackhole => {
            return Err(ExecError::unsupported(
                ExecutorKind::Iptables,
                &rule.action,
                "use tc for shaping, sysctl for SYN cookies, route for blackholes",
            ))
        }
    })
}

/// The full rule specs (after `-A LEVEE`) of `rule`, per family.
pub fn rule_specs(rule: &RuleSpec) -> Result<Vec<(bool, Vec<String>)>, ExecError> {
    let unsupported =
        |why: String| ExecError::unsupported(ExecutorKind::Iptables, &rule.action, why);
    let tail = |m: &Match| -> Result<Vec<String>, ExecError> {
        let mut t = s(["-m", "time", "--datestop", &datestop(rule.expires_unix_ms)]);
        t.extend(s([
            "-m".to_string(),
            "comment".into(),
            "--comment".into(),
            rule.comment(),
        ]));
        t.extend(target_args(rule, m)?);
        Ok(t)
    };
    let mut out = Vec::new();
    if rule.action == Action::SourceBlock {
        for p in &rule.sources {
            let v6 = p.addr.is_ipv6();
            let dsts: Vec<&Match> = rule.matches.iter().filter(|m| m.is_v6() == v6).collect();
            let full = if v6 { 128 } else { 32 };
            for m in dsts {
                let mut a = s([
                    "-s".to_string(),
                    p.to_string(),
                    "-d".into(),
                    format!("{}/{full}", m.dst),
                ]);
                a.extend(tail(m)?);
                if !out.iter().any(|(f, x)| *f == v6 && *x == a) {
                    out.push((v6, a));
                }
            }
        }
        if out.is_empty() {
            return Err(unsupported(
                "no source prefix of the attacked addresses' family".into(),
            ));
        }
        return Ok(out);
    }
    if rule.matches.is_empty() {
        return Err(unsupported("no match (nothing to act on)".into()));
    }
    for m in &rule.matches {
        let t = tail(m)?;
        for mut a in match_args(m).map_err(unsupported)? {
            a.extend(t.iter().cloned());
            out.push((m.is_v6(), a));
        }
    }
    Ok(out)
}

/// The iptables executor.
pub struct IptablesExecutor {
    runner: Box<dyn CommandRunner>,
    chains: ChainHandle,
}

impl IptablesExecutor {
    /// `chains`: the `LEVEE` chains, shared with the ipset executor.
    pub fn new(runner: Box<dyn CommandRunner>, chains: ChainHandle) -> Self {
        IptablesExecutor { runner, chains }
    }
}

impl Executor for IptablesExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Iptables
    }

    fn set_exempt(&mut self, exempt: &[IpPrefix]) -> Result<(), ExecError> {
        self.chains.set_exempt(&mut *self.runner, exempt)
    }

    fn availability(&mut self) -> Availability {
        match self.runner.run(&Cmd::new("iptables", ["-V"])) {
            Ok(o) if o.success() => Availability::Ready,
            Ok(o) => Availability::Missing(format!("`iptables -V` failed: {}", o.stderr.trim())),
            Err(e) => Availability::Missing(format!("{e}; install the Debian package iptables")),
        }
    }

    fn supports(&self, action: &Action) -> bool {
        !matches!(
            action,
            Action::Shape { .. } | Action::SynCookies { .. } | Action::Blackhole
        )
    }

    fn render(&self, rule: &RuleSpec) -> Result<Vec<Cmd>, ExecError> {
        let specs = rule_specs(rule)?;
        let mut v = Vec::new();
        for v6 in [false, true] {
            if !self.chains.lock().is_ready(v6) && specs.iter().any(|(f, _)| *f == v6) {
                v.extend(self.chains.lock().setup_cmds(v6));
            }
        }
        for (v6, a) in specs {
            let mut args = s(["-A", CHAIN]);
            args.extend(a);
            v.push(ipt(v6, args));
        }
        Ok(v)
    }

    fn apply(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let specs = rule_specs(rule)?;
        for v6 in [false, true] {
            if specs.iter().any(|(f, _)| *f == v6) {
                self.chains.lock().ensure(self.runner.as_mut(), v6)?;
            }
        }
        for (v6, a) in specs {
            let mut args = s(["-A", CHAIN]);
            args.extend(a);
            if let Err(e) = self.runner.check(&ipt(v6, args)) {
                // Leave nothing half-applied behind.
                let _ = self.remove(rule);
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn verify(&mut self, rule: &RuleSpec) -> Result<bool, ExecError> {
        let want = rule_specs(rule)?.len();
        let mut found = 0;
        for v6 in [false, true] {
            if let Some(l) = self.chains.lock().list(self.runner.as_mut(), v6)? {
                found += l.iter().filter(|x| x.owner == Some(rule.id)).count();
            }
        }
        Ok(found == want)
    }

    fn refresh(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        let specs = rule_specs(rule)?;
        for v6 in [false, true] {
            let mine: Vec<Vec<String>> = specs
                .iter()
                .filter(|(f, _)| *f == v6)
                .map(|(_, a)| a.clone())
                .collect();
            let Some(listed) = self.chains.lock().list(self.runner.as_mut(), v6)? else {
                continue;
            };
            let nums: Vec<usize> = listed
                .iter()
                .filter(|l| l.owner == Some(rule.id))
                .map(|l| l.num)
                .collect();
            if nums.len() != mine.len() {
                return Err(ExecError::Other {
                    executor: ExecutorKind::Iptables,
                    message: format!(
                        "{} has {} rules of mitigation {}, expected {}; reconcile will clean up",
                        prog(v6),
                        nums.len(),
                        rule.id,
                        mine.len()
                    ),
                });
            }
            for (n, a) in nums.into_iter().zip(mine) {
                let mut args = s(["-R", CHAIN, &n.to_string()]);
                args.extend(a);
                self.runner.check(&ipt(v6, args))?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, rule: &RuleSpec) -> Result<(), ExecError> {
        for v6 in [false, true] {
            let left = self
                .chains
                .lock()
                .delete(self.runner.as_mut(), v6, |l| l.owner == Some(rule.id))?;
            if left == 0 && self.chains.lock().list(self.runner.as_mut(), v6)?.is_some() {
                self.chains.lock().teardown(self.runner.as_mut(), v6)?;
            }
        }
        Ok(())
    }

    fn counters(&mut self) -> Result<BTreeMap<Uuid, Counter>, ExecError> {
        let mut m = self.chains.lock().counters(self.runner.as_mut(), false)?;
        for (k, c) in self.chains.lock().counters(self.runner.as_mut(), true)? {
            *m.entry(k).or_default() += c;
        }
        Ok(m)
    }

    fn owned(&mut self) -> Result<Vec<Owned>, ExecError> {
        let mut v =
            self.chains
                .lock()
                .owned(self.runner.as_mut(), false, ExecutorKind::Iptables)?;
        v.extend(
            self.chains
                .lock()
                .owned(self.runner.as_mut(), true, ExecutorKind::Iptables)?,
        );
        Ok(v)
    }

    fn remove_owned(&mut self, items: &[Owned], _live: &[Uuid]) -> Result<(), ExecError> {
        for v6 in [false, true] {
            self.chains
                .lock()
                .remove_owned(self.runner.as_mut(), items, v6)?;
        }
        Ok(())
    }
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

    fn spec(action: Action, family: Family) -> RuleSpec {
        RuleSpec {
            id: id(),
            incident_id: "inc".into(),
            action,
            matches: from_family(family, "10.0.0.2".parse().unwrap()).unwrap(),
            sources: vec![],
            interface: None,
            ttl: Duration::from_secs(600),
            // 2026-11-21T01:54:10Z
            expires_unix_ms: 1_795_225_450_123 + 600_000,
        }
    }

    #[test]
    fn renders_setup_and_rules() {
        let e = IptablesExecutor::new(
            Box::new(ScriptedRunner::new()),
            ChainHandle::new(vec!["192.0.2.0/24".parse().unwrap()]),
        );
        let cmds = e
            .render(&spec(
                Action::RateLimit {
                    pps: 2000,
                    burst: 500,
                },
                Family::SynFlood,
            ))
            .unwrap();
        let lines: Vec<String> = cmds.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "iptables -w -N LEVEE",
                "iptables -w -A LEVEE -s 192.0.2.0/24 -m comment --comment levee:exempt -j RETURN",
                "iptables -w -I INPUT 1 -m comment --comment levee:hook -j LEVEE",
                "iptables -w -A LEVEE -d 10.0.0.2/32 -p tcp -m u32 --u32 '4&0x3FFF=0' --tcp-flags ALL SYN -m time --datestop 2026-11-21T01:54:10 -m comment --comment levee:01a1fbca-a736-7516-aa18-813da2481001 -m hashlimit --hashlimit-above 2000/sec --hashlimit-burst 500 --hashlimit-name lv3da2481001 -j DROP",
            ]
        );
    }

    #[test]
    fn actions_and_matches() {
        let specs = rule_specs(&spec(Action::Drop, Family::DnsAmplification)).unwrap();
        let j: Vec<String> = specs.iter().map(|(_, a)| a.join(" ")).collect();
        assert_eq!(j[0], "-d 10.0.0.2/32 -p udp --sport 53 -m conntrack ! --ctstate ESTABLISHED,RELATED -m time --datestop 2026-11-21T01:54:10 -m comment --comment levee:01a1fbca-a736-7516-aa18-813da2481001 -j DROP");
        assert!(
            j[1].starts_with("-d 10.0.0.2/32 -p udp -f -m time"),
            "{}",
            j[1]
        );
        // Two flag sets -> two rules.
        let specs = rule_specs(&spec(Action::Drop, Family::RstFlood)).unwrap();
        assert_eq!(specs.len(), 2);
        assert!(specs[1].1.join(" ").contains("--tcp-flags ALL RST,ACK"));
        let c = rule_specs(&spec(Action::ConnLimit { max: 50 }, Family::HttpFlood)).unwrap();
        assert!(
            c[0].1
                .join(" ")
                .contains("-m multiport --dports 80,443 -m time"),
            "{:?}",
            c[0]
        );
        assert!(c[0].1.join(" ").ends_with("-m conntrack --ctstate NEW -m connlimit --connlimit-above 50 --connlimit-mask 32 -j REJECT --reject-with tcp-reset"));
        let h = rule_specs(&spec(
            Action::HashLimit { pps: 10, burst: 5 },
            Family::UdpFlood,
        ))
        .unwrap();
        assert!(h[0]
            .1
            .join(" ")
            .ends_with("--hashlimit-mode srcip --hashlimit-htable-expire 60000 -j DROP"));
        assert!(rule_specs(&spec(Action::Shape { bps: 1_000_000 }, Family::UdpFlood)).is_err());
        let mut sb = spec(Action::SourceBlock, Family::SynFlood);
        sb.sources = vec!["203.0.113.0/24".parse().unwrap()];
        let x = rule_specs(&sb).unwrap();
        assert_eq!(x.len(), 1);
        assert!(x[0]
            .1
            .join(" ")
            .starts_with("-s 203.0.113.0/24 -d 10.0.0.2/32 -m time"));
        let mut m6 = Match::to("2001:db8::2".parse().unwrap());
        m6.protocol = Some(proto::ICMPV6);
        m6.icmp_types = vec![128, 129];
        m6.ttl = Some([0, 64]);
        let a = match_args(&m6).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1].join(" "),
            "-d 2001:db8::2/128 -p ipv6-icmp -m hl --hl-lt 65 --icmpv6-type 129"
        );
    }

    #[test]
    fn new_exempt_prefixes_change_a_ready_chain_in_place() {
        let s = ScriptedRunner::new();
        let chains = ChainHandle::new(vec!["192.0.2.0/24".parse().unwrap()]);
        let mut ipt = IptablesExecutor::new(Box::new(s.clone()), chains.clone());
        let mut ips = super::super::ipset::IpsetExecutor::new(Box::new(s.clone()), chains.clone());
        let new: Vec<IpPrefix> = vec!["198.51.100.0/24".parse().unwrap()];
        ipt.set_exempt(&new).unwrap();
        assert!(s.lines().is_empty(), "no chain yet: nothing to run");
        chains.lock().ready = [true, false];
        let newer: Vec<IpPrefix> = vec![
            "198.51.100.0/24".parse().unwrap(),
            "203.0.113.0/24".parse().unwrap(),
        ];
        ipt.set_exempt(&newer).unwrap();
        ips.set_exempt(&newer).unwrap();
        assert_eq!(
            s.lines(),
            ["iptables -w -I LEVEE 1 -s 203.0.113.0/24 -m comment --comment levee:exempt -j RETURN"],
            "the second executor sharing the chain finds nothing to do"
        );
        s.clear();
        ipt.set_exempt(&newer[1..]).unwrap();
        assert_eq!(
            s.lines(),
            ["iptables -w -D LEVEE -s 198.51.100.0/24 -m comment --comment levee:exempt -j RETURN"]
        );
    }

    #[test]
    fn listing_counters_and_removal() {
        let s = ScriptedRunner::new();
        let listing = "-N LEVEE\n-A LEVEE -s 192.0.2.0/24 -m comment --comment \"levee:exempt\" -j RETURN\n\
            -A LEVEE -d 10.0.0.2/32 -m comment --comment \"levee:01a1fbca-a736-7516-aa18-813da2481001\" -j DROP\n\
            -A LEVEE -d 10.0.0.3/32 -m comment --comment \"levee:01a1fbca-0000-7516-aa18-ffffffffffff\" -j DROP\n";
        let l = listing.to_string();
        s.respond(move |c| {
            let a = c.args.join(" ");
            match (c.program.as_str(), a.as_str()) {
                ("iptables", "-w -S LEVEE") => Some(CmdOutput::ok(l.clone())),
                ("iptables", "-w -L LEVEE -v -n -x") => Some(CmdOutput::ok(
                    "Chain LEVEE (1 references)\n    pkts      bytes target prot opt in out source destination\n\
                     0 0 RETURN all -- * * 192.0.2.0/24 0.0.0.0/0 /* levee:exempt */\n\
                     1200 48000 DROP all -- * * 0.0.0.0/0 10.0.0.2 /* levee:01a1fbca-a736-7516-aa18-813da2481001 */\n",
                )),
                ("ip6tables", "-w -S LEVEE") | ("ip6tables", "-w -L LEVEE -v -n -x") => {
                    Some(CmdOutput::failed(1, "ip6tables: No chain/target/match by that name."))
                }
                _ => None,
            }
        });
        let mut e = IptablesExecutor::new(Box::new(s.clone()), ChainHandle::default());
        assert_eq!(
            e.counters().unwrap()[&id()],
            Counter {
                packets: 1200,
                bytes: 48000
            }
        );
        let owned = e.owned().unwrap();
        assert_eq!(owned.len(), 3, "{owned:#?}");
        s.clear();
        e.remove(&spec(Action::Drop, Family::AckFlood)).unwrap();
        // The other mitigation's rule keeps the chain.
        assert_eq!(s.lines()[1], "iptables -w -D LEVEE 2");
        assert!(
            !s.lines().iter().any(|l| l.contains("-X LEVEE")),
            "{:?}",
            s.lines()
        );
    }

    #[test]
    fn datestop_is_utc_seconds() {
        assert_eq!(datestop(1_795_225_450_999), "2026-11-21T01:44:10");
    }
}
