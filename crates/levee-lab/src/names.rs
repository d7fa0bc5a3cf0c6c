//! Names and addresses of one lab, and recognising leftovers of dead runs.
//!
//! Namespace names are `lv-<pid>-<n>-att` and `lv-<pid>-<n>-vic` where `pid` is
//! the creating process and `n` counts labs within it. A namespace whose pid no
//! longer exists belongs to a run that died without cleaning up (SIGKILL, power
//! loss) and may be deleted by anyone.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every lab namespace.
pub const NS_PREFIX: &str = "lv-";

/// Which side of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Attacker,
    Victim,
}

impl Role {
    fn suffix(self) -> &'static str {
        match self {
            Role::Attacker => "att",
            Role::Victim => "vic",
        }
    }
}

/// The identity of one lab: creating pid and sequence number within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabId {
    pub pid: u32,
    pub n: u32,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl LabId {
    /// A fresh id for this process.
    pub fn next() -> Self {
        LabId {
            pid: std::process::id(),
            n: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The namespace name for one side.
    pub fn ns_name(&self, role: Role) -> String {
        format!("{NS_PREFIX}{}-{}-{}", self.pid, self.n, role.suffix())
    }

    /// The third octet X of 10.213.X.0/30, in 1..=254, derived from pid and n.
    /// The namespaces are isolated, so equal X in two labs would still work; the
    /// spread only makes captures and logs of concurrent labs easy to tell apart.
    pub fn subnet_octet(&self) -> u8 {
        ((u64::from(self.pid) + u64::from(self.n) * 97) % 254 + 1) as u8
    }

    /// 10.213.X.1 (attacker side).
    pub fn attacker_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet_octet(), 1)
    }

    /// 10.213.X.2 (victim side).
    pub fn victim_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet_octet(), 2)
    }

    /// fd00:213:X::1 (attacker side, ULA).
    pub fn attacker_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x213, u16::from(self.subnet_octet()), 0, 0, 0, 0, 1)
    }

    /// fd00:213:X::2 (victim side, ULA).
    pub fn victim_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x213, u16::from(self.subnet_octet()), 0, 0, 0, 0, 2)
    }
}

/// Parses a lab namespace name into its id and role; `None` for anything else.
pub fn parse_ns_name(name: &str) -> Option<(LabId, Role)> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    let role = match parts.next()? {
        "att" => Role::Attacker,
        "vic" => Role::Victim,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((LabId { pid, n }, role))
}

/// Namespace names from `ip netns list` output (first token of each line).
pub fn parse_netns_list(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The lab namespaces among `names` whose creating pid is not alive.
pub fn stale_namespaces(names: &[String], pid_alive: impl Fn(u32) -> bool) -> Vec<String> {
    names
        .iter()
        .filter(|n| matches!(parse_ns_name(n), Some((id, _)) if !pid_alive(id.pid)))
        .cloned()
        .collect()
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let id = LabId { pid: 4242, n: 3 };
        assert_eq!(id.ns_name(Role::Attacker), "lv-4242-3-att");
        assert_eq!(id.ns_name(Role::Victim), "lv-4242-3-vic");
        assert_eq!(parse_ns_name("lv-4242-3-vic"), Some((id, Role::Victim)));
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for n in [
            "lv-x-1-att",
            "lv-1-2-foo",
            "lv-1-2-att-x",
            "other",
            "lv-1-att",
            "lv--1-att",
        ] {
            assert_eq!(parse_ns_name(n), None, "{n}");
        }
    }

    #[test]
    fn octet_in_range_and_addresses_in_one_slash30() {
        for pid in [0, 1, 253, 254, 255, 4_194_304, u32::MAX] {
            for n in 0..4 {
                let id = LabId { pid, n };
                let x = id.subnet_octet();
                assert!((1..=254).contains(&x));
                assert_eq!(id.attacker_ip().octets()[..3], id.victim_ip().octets()[..3]);
            }
        }
        let id = LabId { pid: 10, n: 0 };
        assert_eq!(id.victim_ip6().to_string(), "fd00:213:b::2");
    }

    #[test]
    fn stale_are_dead_pids_only() {
        let list = parse_netns_list("lv-1-0-att (id: 3)\nlv-1-0-vic (id: 4)\nlv-2-0-att\nprod\n");
        let stale = stale_namespaces(&list, |pid| pid == 2);
        assert_eq!(
            stale,
            vec!["lv-1-0-att".to_string(), "lv-1-0-vic".to_string()]
        );
    }
}
