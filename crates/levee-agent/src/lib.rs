//! The Levee agent as a library: configuration ([`config`]), the run loop
//! ([`runtime`]), the server's policy laid over the config ([`policy`]) and
//! commands and policies arriving through [`control`], the event sink ([`sink`]), baseline persistence ([`state`]),
//! the kernel tick source ([`kernel`]) and the `levee watch` formatter ([`watch`]) and the
//! interval timer both loops use ([`ticker`]); flow and mirror modes
//! ([`netmode`]) plug in through the tick source and [`enrich`].
//! The `levee` binary only parses flags and wires these together.

pub mod capture_config;
pub mod config;
pub mod control;
pub mod enrich;
pub mod kernel;
pub mod netmode;
pub mod policy;
pub mod runtime;
pub mod sink;
pub mod state;
pub mod ticker;
pub mod tomlread;
pub mod uplink_config;
pub mod visibility;
pub mod watch;

pub use config::{AgentConfig, ConfigError, Overrides};
pub use control::{CommandDone, Control, Controller};
pub use runtime::{Agent, Observer, TickResult, TickSource};
