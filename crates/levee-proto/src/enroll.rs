//! Enrollment: a one-time token, made by an operator, exchanged once for the
//! node's own key.

use crate::error::{FieldError, Problems};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/agent/enroll` (no bearer: the enrollment token is the credential).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The one-time enrollment token (`lve_...`).
    pub token: String,
    /// The node's name (its events' `node`); unique within the tenant.
    pub node: String,
    /// The agent's version.
    pub version: String,
    /// Interfaces the agent watches.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

impl EnrollRequest {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(!self.token.is_empty(), "token", "must not be empty");
        p.name(&self.node, "node");
        p.check(self.version.len() <= 64, "version", "at most 64 bytes");
        p.check(self.interfaces.len() <= 256, "interfaces", "at most 256");
        for (i, name) in self.interfaces.iter().enumerate() {
            p.name(name, format!("interfaces[{i}]"));
        }
        p.into_result()
    }
}

/// The answer to a successful enrollment. `agent_key` is shown this once; the
/// server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    pub node_id: i64,
    pub node: String,
    pub tenant: String,
    /// Bearer credential for every later agent call (`lva_...`).
    pub agent_key: String,
    /// Seconds between heartbeats the server expects.
    pub heartbeat_interval_s: u64,
}
