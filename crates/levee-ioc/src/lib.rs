//! Threat-intel (IOC) correlation for Levee: which of an incident's top sources are on
//! which indicator list.
//!
//! - [`parse`]: streaming parsers for plain IP/CIDR lists, Spamhaus DROP/EDROP and
//!   FireHOL netsets, with auto-detection ([`Format`]); bad lines are counted and the
//!   first few reported (file and line), never fatal; prefixes with host bits set are
//!   masked and counted.
//! - [`IocSet`]: many named lists in one immutable structure; [`IocSet::lookup`] yields
//!   every list containing an address, longest prefix first, and
//!   [`IocSet::match_sources`] does it for an incident's top sources.
//! - [`IocStore`]: the configured files and the current set behind an `Arc`;
//!   [`IocStore::reload`] (call it on SIGHUP) rebuilds off to the side, swaps
//!   atomically, and keeps a list's previous version when its file fails.
//!
//! # Why our own structure
//!
//! The set is a sorted array per family (12 bytes per IPv4 entry, 24 per IPv6 entry)
//! split into runs of equal prefix length, each with a bucket index on its top bits
//! (at most 4 bytes per entry); a lookup masks the address per length present, jumps
//! to its bucket and searches a handful of entries. Building is one sort, with no
//! per-prefix allocation, and multi-list matches fall out naturally (equal prefixes
//! from different lists sit side by side). The trie crates (`prefix-trie`,
//! `ip_network_table`) map one value per prefix, so several lists would need a `Vec`
//! per node, and they allocate per node; we did not benchmark them, because our own
//! structure already meets the targets with a wide margin and has no dependency.
//!
//! What `cargo bench -p levee-ioc` measured (1,000,000 random prefixes, half IPv4
//! half IPv6, 2 CPUs AMD EPYC, 2026-11-21):
//!
//! | what | result | target |
//! |---|---|---|
//! | load (parse + sort + index) | 293 ms | < 1 s |
//! | heap retained (counting allocator) | 19.4 MB (21.1 B/entry) | < 64 MB |
//! | heap peak during load | 20.0 MB | < 64 MB |
//! | RSS delta | 19.6 MB | < 64 MB |
//! | lookups, 1 thread, random addresses | 0.36 M/s | n/a |
//!
//! The bucket index bought 4.5x on lookups (0.08 -> 0.36 M/s) for 2.7 MB. The
//! remaining lookup cost is one probe per distinct prefix length (the benchmark has
//! ~130, real feeds far fewer), ample for an incident's top sources.

pub mod error;
pub mod format;
pub mod parse;
pub mod prefix;
pub mod set;
pub mod store;
mod table;

pub use error::{ListError, SetError};
pub use format::Format;
pub use parse::{
    parse_reader, parse_str, Indicator, LineError, LineErrorKind, OwnedIndicator, ParseReport,
};
pub use prefix::{Prefix, PrefixError};
pub use set::{Checkpoint, IocSet, IocSetBuilder, ListId, Match};
pub use store::{IocStore, ListOutcome, ListReport, ListSource, ReloadReport};
