//! Levee's XDP drop path: an eBPF program in C (`bpf/levee_xdp.c`, built by
//! clang from `build.rs`) that drops packets by source set and by attack
//! fingerprint in the earliest hook Linux has, and the Rust side that loads
//! it (aya, no libbpf at run time), installs rules and reads per-rule
//! counters back.
//!
//! ```no_run
//! use levee_xdp::{FingerprintMatch, Mode, Range, RuleId, TcpFlagsMatch, XdpFilter};
//! # fn main() -> Result<(), levee_xdp::XdpError> {
//! levee_xdp::reconcile("eth0")?;                 // leftovers of a killed agent
//! let mut xdp = XdpFilter::attach("eth0", Mode::Auto)?;
//! xdp.add_rule(RuleId(1), &FingerprintMatch {
//!     protocol: Some(6),
//!     dst_ports: Some(Range::one(80)),
//!     tcp_flags: Some(TcpFlagsMatch::exact(0x02)), // SYN only
//!     ..Default::default()
//! })?;
//! xdp.add_source("203.0.113.0/24".parse().unwrap(), RuleId(2))?;
//! let dropped = xdp.counters()?;                 // per RuleId: packets, bytes
//! xdp.remove_rule(RuleId(1))?;
//! xdp.detach()?;                                 // also on drop / process exit
//! # Ok(()) }
//! ```
//!
//! Modules, each owning one thing:
//! - [`rule`]: [`FingerprintMatch`], its checks, its kernel encoding and the
//!   Rust model of the match; [`convert`]: levee-packet fingerprints -> rules;
//!   [`prefix`]: source prefixes -> LPM keys;
//! - [`table`]: ids, counter slots and map writes (pure); [`maps`]: the
//!   [`FilterMaps`] seam and [`RuleSet`]; [`model`]: in-memory maps and a model
//!   of the program (test double and differential oracle);
//! - [`kernel`]: the embedded object, aya loading, kernel maps,
//!   `BPF_PROG_TEST_RUN`; [`netlink`] and [`reconcile`]: what is attached
//!   where, and removing leftovers; [`filter`]: [`XdpFilter`];
//! - [`executor`]: [`XdpExecutor`], the filter as `levee-mitigate`'s
//!   `executor = "xdp"`.
//!
//! # Without clang
//!
//! When clang or the libbpf / kernel headers are missing at build time the
//! crate still builds, and [`XdpFilter::load`] (and [`available`]) return
//! [`XdpError::NotBuilt`], naming the Debian packages to install
//! (`clang libbpf-dev linux-libc-dev`).
//!
//! # What the program parses
//!
//! Ethernet with up to two 802.1Q/802.1ad tags, IPv4 (options included) and
//! IPv6 with up to eight extension headers (hop-by-hop, routing, destination
//! options, fragment, AH, mobility, HIP, shim6) totalling at most 4 KiB.
//! Anything else (ARP, MPLS, PPPoE, deeper tag stacks, malformed headers)
//! passes untouched, as do packets the kernel hands to XDP without their
//! transport header.

pub mod convert;
pub mod error;
pub mod executor;
pub mod filter;
pub mod kernel;
pub mod maps;
pub mod model;
pub mod netlink;
pub mod prefix;
pub mod reconcile;
pub mod rule;
pub mod table;

pub use convert::exact_matches;
pub use error::{XdpError, BUILD_PACKAGES};
pub use executor::{XdpBackend, XdpExecutor};
pub use filter::{Mode, XdpFilter};
pub use kernel::{available, TestRun, XdpAction, PROGRAM_NAME};
pub use maps::{Counters, FilterMaps, RuleSet, Totals};
pub use model::{ModelMaps, Verdict};
pub use netlink::{Attached, AttachedMode};
pub use reconcile::{reconcile, Outcome, Reconciled};
pub use rule::{FingerprintMatch, Range, RuleError, TcpFlagsMatch};
pub use table::{RuleId, MAX_PREFIXES, MAX_RULES, MAX_SLOTS};
