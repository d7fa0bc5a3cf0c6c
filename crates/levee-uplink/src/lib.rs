//! The agent's uplink to the Levee server.
//!
//! - [`enroll`]: trade a one-time token for the node's key, pin the server's
//!   certificate fingerprint, keep both in the state dir (0600);
//! - [`pin`]: TLS that trusts exactly the pinned certificate;
//! - [`client`]: the agent endpoints of the API;
//! - [`queue`]: the bounded on-disk event queue (oldest dropped when full,
//!   survives restarts, replayed in order);
//! - [`link`]: reconnect backoff with jitter (a state machine);
//! - [`fold`]: ticks folded into per-second samples;
//! - [`runtime`]: the uplink thread. The agent hands it events and ticks
//!   through a channel ([`UplinkHandle`]) and never waits on the network.
//!
//! This crate does not depend on the agent: the agent (or the binary) feeds it.

pub mod client;
pub mod creds;
pub mod enroll;
pub mod fold;
pub mod link;
pub mod pin;
pub mod queue;
pub mod runtime;

pub use client::{Client, ClientError};
pub use creds::Credentials;
pub use enroll::{enroll, enroll_blocking, EnrollError};
pub use runtime::{Uplink, UplinkConfig, UplinkHandle, UplinkStatus};
