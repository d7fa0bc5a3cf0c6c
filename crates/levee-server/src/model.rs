//! The server's domain objects as the API shows them (JSON, with OpenAPI
//! schemas). Times are RFC 3339 UTC strings with milliseconds, like events.

use levee_model::timefmt::rfc3339_millis;
use levee_proto::BaselineEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `Some(rfc3339)` for `Some(ms)`.
pub fn ts_opt(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339_millis)
}

/// What a user may do. Ordered: each role may do what the ones before it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything of the tenant.
    Viewer,
    /// Also: enroll nodes, queue commands, change the policy.
    Operator,
    /// Also: manage users and everyone's tokens; in the system tenant, other tenants.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub has_password: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just made: `token` is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NewApiToken {
    pub token: String,
    #[serde(flatten)]
    pub info: ApiToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EnrollmentToken {
    pub id: i64,
    pub created_at: String,
    pub expires_at: String,
    pub used_at: Option<String>,
    pub node_id: Option<i64>,
}

/// An enrollment token just made: `token` is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NewEnrollmentToken {
    pub token: String,
    /// The server certificate's fingerprint the agent should pin.
    pub server_fingerprint: String,
    /// The command to run on the node.
    pub command: String,
    #[serde(flatten)]
    pub info: EnrollmentToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub version: String,
    pub interfaces: Vec<String>,
    pub enrolled_at: String,
    pub last_seen_at: Option<String>,
    pub online: bool,
    pub policy_version: u64,
    pub queued_events: u64,
    /// Events the node's offline queue had to drop (reported by the agent).
    pub dropped_events: u64,
    pub baselines: Vec<BaselineEntry>,
}

/// One metric row: a second (raw) or a minute (averages; `*_max` are peaks).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MetricPoint {
    pub ts: String,
    pub target: String,
    pub rx_pps: Option<f64>,
    pub rx_bps: Option<f64>,
    pub tx_pps: Option<f64>,
    pub tx_bps: Option<f64>,
    pub tcp_pps: Option<f64>,
    pub udp_pps: Option<f64>,
    pub icmp_pps: Option<f64>,
    pub syn_recv: Option<f64>,
    pub connections: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_pps_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bps_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// 1-second rows (kept `retention.raw`).
    #[serde(rename = "1s")]
    Second,
    /// 1-minute rows (kept `retention.minute`).
    #[serde(rename = "1m")]
    Minute,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MetricRange {
    pub node_id: i64,
    pub resolution: Resolution,
    pub from: String,
    pub to: String,
    pub points: Vec<MetricPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Incident {
    pub id: i64,
    pub node_id: i64,
    pub node: String,
    /// The agent's `incident_id`.
    pub incident_id: String,
    pub target: String,
    pub metric: String,
    /// The most confident classification the agent reported.
    pub family: Option<String>,
    pub confidence: Option<i64>,
    /// `open` or `resolved`.
    pub state: String,
    pub started_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
    pub value: f64,
    pub baseline: f64,
    pub peak: f64,
    pub total_packets: Option<i64>,
    pub total_bytes: Option<i64>,
    /// The correlated incident this one belongs to.
    pub correlation_id: Option<i64>,
    pub has_pcap: bool,
}

/// Several incidents of a tenant that are one attack.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Correlation {
    pub id: i64,
    /// `same_prefix` (targets in one prefix) or `same_attack` (one attack
    /// family on several nodes).
    pub reason: String,
    /// The prefix or the family.
    pub key: String,
    /// `open` while a member is open.
    pub state: String,
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub members: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredEvent {
    pub id: i64,
    pub event_id: String,
    pub node_id: Option<i64>,
    pub ts: String,
    pub kind: String,
    /// The event as the agent (or the server) wrote it.
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Mitigation {
    pub id: i64,
    pub node_id: i64,
    pub mitigation_id: String,
    pub incident_id: Option<String>,
    pub executor: Option<String>,
    pub rule: Option<String>,
    /// The last lifecycle step: `previewed`, `applied`, `rolled_back`, `failed`, ...
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Command {
    pub id: i64,
    pub node_id: i64,
    pub kind: String,
    #[schema(value_type = Object)]
    pub args: Value,
    pub created_at: String,
    /// When the agent reported it handled (`null`: not yet delivered or done).
    pub acked_at: Option<String>,
    /// Whether the agent carried it out (`null`: no result yet, or an agent
    /// that only acknowledges).
    pub ok: Option<bool>,
    /// What the agent did, or why it could not.
    pub result: Option<String>,
}
