//! The persisted form of the learnt baselines, so a restarted agent does not
//! relearn from zero. The agent owns the file; this module owns the format.

use levee_model::SeriesKey;
use serde::{Deserialize, Serialize};

pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSnapshot {
    pub version: u32,
    pub saved_unix_ms: i64,
    /// Window size in force when saved (informational; restore re-sizes).
    pub window: usize,
    pub series: Vec<SeriesSnapshot>,
    /// Seconds the per-IP/per-prefix bank has run (their implicit history).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target_seconds: u64,
    /// Per-IP and per-prefix baselines (flow and mirror modes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::targets::TargetSnapshot>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSnapshot {
    pub key: SeriesKey,
    /// Per-second samples ever learnt (drives the warm-up).
    pub samples: u64,
    /// The window, oldest first.
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub series: usize,
    pub max_samples: u64,
    /// Per-IP and per-prefix targets restored.
    pub targets: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("baseline snapshot has format version {found}, this agent reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("baseline snapshot is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl BaselineSnapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("snapshot serialises")
    }

    pub fn from_json(s: &str) -> Result<Self, SnapshotError> {
        Ok(serde_json::from_str(s)?)
    }
}
