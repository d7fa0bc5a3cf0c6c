//! Levee's network mitigation: when an attack is more than a node can
//! absorb, filter it upstream with BGP.
//!
//! Modules, from the model outwards:
//! - [`flowspec`]: the FlowSpec match model (RFC 8955/8956) and its NLRI codec;
//! - [`action`]: traffic actions (discard, rate-limit, redirect, mark) and
//!   their extended communities;
//! - [`rule`]: one announcement: FlowSpec, RTBH (RFC 7999) or a scrubbing
//!   diversion;
//! - [`build`]: rules from an incident (fingerprint, family or metrics,
//!   through `levee_mitigate::matcher`);
//! - [`render`]: rules as ExaBGP, GoBGP, BIRD 2, Junos and IOS-XR text;
//! - [`rpki`]: ROAs (JSON file or an RTR cache, RFC 8210) and origin
//!   validation (RFC 6811); [`safety`]: the checks before every announcement;
//! - [`escalate`]: the per-incident escalation state machine;
//! - [`config`]: `[bgp]` settings;
//! - [`speaker`]: adapters for GoBGP, ExaBGP, BIRD 2 and FRR behind the
//!   [`speaker::Speaker`] trait; [`scrub`]: the [`scrub::Scrubber`] seam;
//! - [`engine`]: the API the agent and the server call.

pub mod action;
pub mod build;
pub mod config;
pub mod engine;
pub mod escalate;
pub mod flowspec;
pub mod render;
pub mod rpki;
pub mod rule;
pub mod safety;
pub mod scrub;
pub mod speaker;
pub mod system;
pub mod testing;
