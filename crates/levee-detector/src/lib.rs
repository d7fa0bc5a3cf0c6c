//! Levee's detector: self-learning per-second baselines and the incident
//! lifecycle, as a pure library.
//!
//! The detector never reads a clock, a file or a socket: the caller passes each
//! [`levee_model::TickObservation`] (which carries its own timestamp) to
//! [`Detector::observe`] and gets back what happened. Replaying a recorded tick
//! stream with the same seed therefore yields the same incidents, ids included.
//!
//! Modules: [`settings`] (tunables and defaults), [`window`] (the sliding p99
//! window), [`series`] (one metric on one target: tick-to-second aggregation and
//! the breach test), [`incident`] (the incident state machine), [`detector`]
//! (wires series into incident groups), [`snapshot`] (baseline persistence),
//! [`ids`] (deterministic incident ids), [`targets`] (per-IP and per-prefix
//! baselines and incidents of flow and mirror modes, in [`compact`] windows;
//! [`fold`] folds the addresses of an attacked prefix into its incident).

pub mod compact;
pub mod detector;
pub mod fold;
pub mod ids;
pub mod incident;
pub mod series;
pub mod settings;
pub mod snapshot;
pub mod targets;
pub mod window;

pub use detector::{Detector, DetectorOutput};
pub use settings::{DetectorSettings, SettingsError};
pub use snapshot::{BaselineSnapshot, RestoreReport, SnapshotError};
