//! [`Action`]: what a mitigation does to the traffic it matches, with its
//! parameters, independent of the tool that carries it out; and
//! [`ExecutorKind`], the tools.
//!
//! An action says *what* (drop, rate-limit, ...); a [`crate::Match`] says
//! *which packets*; an executor makes the pair concrete for one tool.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What to do with the packets a mitigation matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Drop every matching packet.
    Drop,
    /// Refuse matching packets (TCP reset / ICMP unreachable), so a client
    /// caught by mistake learns at once instead of timing out.
    Reject,
    /// Drop matching packets above `pps` packets per second (all sources
    /// together), allowing bursts of `burst` packets.
    RateLimit { pps: u64, burst: u64 },
    /// Turn SYN cookies on (`net.ipv4.tcp_syncookies = 1`, or 2 to always
    /// send them), restoring the previous value on rollback.
    SynCookies { mode: u8 },
    /// Refuse new connections from a source (/32, /128) holding more than
    /// `max` connections to the target.
    ConnLimit { max: u32 },
    /// Drop a source's matching packets above `pps` per second (per-source
    /// token bucket of `burst`).
    HashLimit { pps: u64, burst: u64 },
    /// Limit matching traffic to `bps` bits per second.
    Shape { bps: u64 },
    /// A local blackhole route for each attacking prefix: the node stops
    /// answering them, and with reverse-path filtering drops their packets.
    Blackhole,
    /// Drop everything from a set of attacking source prefixes.
    SourceBlock,
}

/// The name of an action in config files and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Drop,
    Reject,
    RateLimit,
    SynCookies,
    ConnLimit,
    HashLimit,
    Shape,
    Blackhole,
    SourceBlock,
}

impl ActionKind {
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Drop,
        ActionKind::Reject,
        ActionKind::RateLimit,
        ActionKind::SynCookies,
        ActionKind::ConnLimit,
        ActionKind::HashLimit,
        ActionKind::Shape,
        ActionKind::Blackhole,
        ActionKind::SourceBlock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Drop => "drop",
            ActionKind::Reject => "reject",
            ActionKind::RateLimit => "rate_limit",
            ActionKind::SynCookies => "syn_cookies",
            ActionKind::ConnLimit => "conn_limit",
            ActionKind::HashLimit => "hash_limit",
            ActionKind::Shape => "shape",
            ActionKind::Blackhole => "blackhole",
            ActionKind::SourceBlock => "source_block",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Drop => ActionKind::Drop,
            Action::Reject => ActionKind::Reject,
            Action::RateLimit { .. } => ActionKind::RateLimit,
            Action::SynCookies { .. } => ActionKind::SynCookies,
            Action::ConnLimit { .. } => ActionKind::ConnLimit,
            Action::HashLimit { .. } => ActionKind::HashLimit,
            Action::Shape { .. } => ActionKind::Shape,
            Action::Blackhole => ActionKind::Blackhole,
            Action::SourceBlock => ActionKind::SourceBlock,
        }
    }

    /// Actions that discard every matching packet. They must never be given
    /// a match that selects all traffic to the target (that would finish
    /// the attacker's job); see [`crate::Match::is_narrow`].
    pub fn discards_all(&self) -> bool {
        matches!(self, Action::Drop | Action::Reject)
    }

    /// Actions that only make sense against known source prefixes.
    pub fn needs_sources(&self) -> bool {
        matches!(self, Action::Blackhole | Action::SourceBlock)
    }

    /// Actions that act on the host, not on matched packets.
    pub fn is_host_setting(&self) -> bool {
        matches!(self, Action::SynCookies { .. })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RateLimit { pps, burst } => write!(f, "rate_limit({pps} pps, burst {burst})"),
            Action::SynCookies { mode } => write!(f, "syn_cookies(mode {mode})"),
            Action::ConnLimit { max } => write!(f, "conn_limit({max} per source)"),
            Action::HashLimit { pps, burst } => {
                write!(f, "hash_limit({pps} pps per source, burst {burst})")
            }
            Action::Shape { bps } => write!(f, "shape({bps} bit/s)"),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

/// The tools that carry out actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    Nftables,
    Iptables,
    Ipset,
    Tc,
    Route,
    Sysctl,
    Ufw,
    Firewalld,
    Csf,
    /// The XDP executor lives in its own crate; it plugs in through
    /// [`crate::exec::Executor`] like any other.
    Xdp,
}

impl ExecutorKind {
    pub const ALL: [ExecutorKind; 10] = [
        ExecutorKind::Nftables,
        ExecutorKind::Iptables,
        ExecutorKind::Ipset,
        ExecutorKind::Tc,
        ExecutorKind::Route,
        ExecutorKind::Sysctl,
        ExecutorKind::Ufw,
        ExecutorKind::Firewalld,
        ExecutorKind::Csf,
        ExecutorKind::Xdp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Nftables => "nftables",
            ExecutorKind::Iptables => "iptables",
            ExecutorKind::Ipset => "ipset",
            ExecutorKind::Tc => "tc",
            ExecutorKind::Route => "route",
            ExecutorKind::Sysctl => "sysctl",
            ExecutorKind::Ufw => "ufw",
            ExecutorKind::Firewalld => "firewalld",
            ExecutorKind::Csf => "csf",
            ExecutorKind::Xdp => "xdp",
        }
    }

    pub fn from_name(s: &str) -> Option<ExecutorKind> {
        ExecutorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The executor that carries out `action` when the configured packet
    /// filter cannot: SYN cookies are a sysctl, shaping is tc, a blackhole
    /// is a route; everything else needs a packet filter.
    pub fn natural_for(action: &Action) -> Option<ExecutorKind> {
        match action {
            Action::SynCookies { .. } => Some(ExecutorKind::Sysctl),
            Action::Shape { .. } => Some(ExecutorKind::Tc),
            Action::Blackhole => Some(ExecutorKind::Route),
            _ => None,
        }
    }
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ExecutorKind::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = ExecutorKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown executor {s:?}: use one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ExecutorKind::ALL {
            assert_eq!(k.as_str().parse::<ExecutorKind>().unwrap(), k);
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        for k in ActionKind::ALL {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        let e = "nope".parse::<ExecutorKind>().unwrap_err();
        assert!(e.contains("nftables"), "{e}");
    }

    #[test]
    fn action_serde_and_kinds() {
        let a = Action::RateLimit {
            pps: 1000,
            burst: 100,
        };
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, r#"{"action":"rate_limit","pps":1000,"burst":100}"#);
        assert_eq!(serde_json::from_str::<Action>(&j).unwrap(), a);
        assert_eq!(a.kind(), ActionKind::RateLimit);
        assert!(Action::Drop.discards_all() && !a.discards_all());
        assert!(Action::SourceBlock.needs_sources());
        assert_eq!(
            ExecutorKind::natural_for(&Action::SynCookies { mode: 1 }),
            Some(ExecutorKind::Sysctl)
        );
        assert_eq!(ExecutorKind::natural_for(&Action::Drop), None);
        assert_eq!(a.to_string(), "rate_limit(1000 pps, burst 100)");
    }
}
