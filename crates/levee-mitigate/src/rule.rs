//! [`RuleSpec`]: one mitigation as an executor receives it — the action,
//! the matches, the sources, where (interface) and for how long — and the
//! identifiers every kernel object carries so that Levee can always tell
//! its own objects apart (`levee:<mitigation id>` comments, `<tag>` names).

use crate::action::Action;
use crate::matcher::Match;
use levee_packet::classify::fingerprint::IpPrefix;
use std::time::Duration;
use uuid::Uuid;

/// Prefix of every comment Levee writes on a rule: `levee:<mitigation id>`.
pub const COMMENT_PREFIX: &str = "levee:";

/// A mitigation, ready for an executor.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub id: Uuid,
    pub incident_id: String,
    pub action: Action,
    /// Which packets (bound to the attacked addresses). Empty for host
    /// settings (SYN cookies) and for source-only actions.
    pub matches: Vec<Match>,
    /// Attacking prefixes (screened by the safety rules) for
    /// `source_block` and `blackhole`.
    pub sources: Vec<IpPrefix>,
    /// The attacked interface, when known (tc, nftables netdev ingress).
    pub interface: Option<String>,
    pub ttl: Duration,
    /// When the kernel should forget the rule (ms since the epoch).
    pub expires_unix_ms: i64,
}

impl RuleSpec {
    /// `levee:<id>`: the comment on every rule of this mitigation.
    pub fn comment(&self) -> String {
        comment_for(self.id)
    }

    /// 10 hex digits from the random part of the id: short enough for
    /// ipset (31) and interface (15) name limits.
    pub fn tag(&self) -> String {
        tag_of(self.id)
    }

    /// Seconds of TTL left at `now_ms`, at least 1.
    pub fn ttl_secs_left(&self, now_ms: i64) -> u64 {
        (((self.expires_unix_ms - now_ms).max(0) as u64).div_ceil(1000)).max(1)
    }
}

pub fn comment_for(id: Uuid) -> String {
    format!("{COMMENT_PREFIX}{id}")
}

/// The mitigation id in a `levee:<id>` comment.
pub fn id_from_comment(c: &str) -> Option<Uuid> {
    c.trim_matches('"')
        .strip_prefix(COMMENT_PREFIX)?
        .parse()
        .ok()
}

pub fn tag_of(id: Uuid) -> String {
    let s = id.simple().to_string();
    s[s.len() - 10..].to_string()
}

/// Drops prefixes contained in another one of the list (tools reject
/// overlapping elements in interval sets), keeping order.
pub fn collapse(prefixes: &[IpPrefix]) -> Vec<IpPrefix> {
    let mut out: Vec<IpPrefix> = Vec::new();
    for p in prefixes {
        let covered = prefixes
            .iter()
            .any(|q| q != p && q.len < p.len && q.contains(p.addr));
        if !covered && !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tags_comments() {
        let id: Uuid = "01a1fbca-a736-7516-aa18-813da2481001".parse().unwrap();
        assert_eq!(tag_of(id), "3da2481001");
        assert_eq!(
            comment_for(id),
            "levee:01a1fbca-a736-7516-aa18-813da2481001"
        );
        assert_eq!(id_from_comment(&comment_for(id)), Some(id));
        assert_eq!(
            id_from_comment("\"levee:01a1fbca-a736-7516-aa18-813da2481001\""),
            Some(id)
        );
        assert_eq!(id_from_comment("levee:exempt"), None);
        assert_eq!(id_from_comment("other"), None);
    }

    #[test]
    fn collapse_keeps_widest() {
        let p = |s: &str| s.parse::<IpPrefix>().unwrap();
        assert_eq!(
            collapse(&[
                p("10.1.0.0/16"),
                p("10.0.0.0/8"),
                p("192.0.2.0/24"),
                p("192.0.2.0/24")
            ]),
            vec![p("10.0.0.0/8"), p("192.0.2.0/24")]
        );
    }

    #[test]
    fn ttl_left() {
        let r = RuleSpec {
            id: Uuid::nil(),
            incident_id: "i".into(),
            action: Action::Drop,
            matches: vec![],
            sources: vec![],
            interface: None,
            ttl: Duration::from_secs(10),
            expires_unix_ms: 10_500,
        };
        assert_eq!(r.ttl_secs_left(0), 11);
        assert_eq!(r.ttl_secs_left(10_400), 1);
        assert_eq!(r.ttl_secs_left(99_999), 1);
    }
}
