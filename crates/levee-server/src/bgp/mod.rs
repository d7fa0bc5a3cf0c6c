//! BGP escalation in the server, per tenant (issue 6): the operator's
//! `[[bgp.tenant]]` settings ([`config`]), the tenant admin's tuning
//! ([`tuning`]), one engine thread per tenant ([`worker`]) driven by the
//! jobs leader from the events table ([`service`]), and the status the
//! API shows ([`status`]). The engine itself is `levee_bgp::engine`, the
//! same one the agent runs.

pub mod config;
pub mod service;
pub mod status;
pub mod tuning;
pub mod worker;
