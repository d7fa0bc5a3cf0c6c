//! The crate's error type. Every message names the thing (rule id, prefix,
//! interface, map) and, where there is one, the fix.

use crate::rule::RuleError;
use crate::table::RuleId;
use levee_packet::classify::IpPrefix;

/// Debian packages the XDP program needs at build time.
pub const BUILD_PACKAGES: &str = "clang libbpf-dev linux-libc-dev";

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "this levee was built without its XDP program ({missing}); install the Debian packages \
         `{BUILD_PACKAGES}` (apt-get install {BUILD_PACKAGES}) and rebuild levee"
    )]
    NotBuilt { missing: &'static str },
    #[error("rule {id}: {source}")]
    BadRule {
        id: RuleId,
        #[source]
        source: RuleError,
    },
    #[error("source prefix {prefix}: {reason}")]
    BadPrefix { prefix: String, reason: String },
    #[error("source prefix {prefix} is already dropped by rule {id}; remove it there first")]
    PrefixInUse { prefix: IpPrefix, id: RuleId },
    #[error("the XDP rule table is full ({max} fingerprint entries); remove a rule first")]
    RulesFull { max: usize },
    #[error(
        "the XDP program has no free counter slot ({max} rule ids in use); remove a rule first"
    )]
    IdsFull { max: usize },
    #[error("the XDP source set is full ({max} prefixes per address family)")]
    PrefixesFull { max: usize },
    #[error("interface {ifname:?} does not exist (check `ip link`)")]
    UnknownInterface { ifname: String },
    #[error(
        "loading the XDP program into the kernel: {detail} (needs root, or CAP_BPF, \
         CAP_NET_ADMIN and CAP_PERFMON)"
    )]
    Load { detail: String },
    #[error("attaching the XDP program to {ifname} in {mode} mode: {detail}")]
    Attach {
        ifname: String,
        mode: &'static str,
        detail: String,
    },
    #[error("detaching the XDP program from {ifname}: {detail}")]
    Detach { ifname: String, detail: String },
    #[error("XDP map {map}: {action}: {detail}")]
    Map {
        map: &'static str,
        action: &'static str,
        detail: String,
    },
    #[error("netlink ({action}) on {ifname}: {source}")]
    Netlink {
        ifname: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("BPF_PROG_TEST_RUN of the XDP program: {source}")]
    TestRun {
        #[source]
        source: std::io::Error,
    },
}
