//! What the server tells an agent: commands waiting for it and the tenant's policy.

use crate::error::{FieldError, Problems};
use levee_model::Metric;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The answer to telemetry and heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentAnswer {
    /// Commands not yet acknowledged by the agent (repeated until acked in a
    /// heartbeat's `acked_commands`), oldest first.
    #[serde(default)]
    pub commands: Vec<AgentCommand>,
    /// The tenant's policy, present when newer than the agent's `policy_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// An instruction for one node, queued by an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCommand {
    pub id: i64,
    /// What to do: one of [`crate::command::KINDS`] (see [`crate::Command`]).
    pub kind: String,
    /// The kind's arguments.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub args: Value,
    pub created_at: String,
}

/// Detector settings a tenant imposes on its agents; unset fields keep the
/// agent's own configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DetectorPolicy {
    /// Alert at `multiplier` x p99 (> 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Quiet time before an incident resolves, in milliseconds (1,000 to 3,600,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_period_ms: Option<u64>,
    /// Absolute floors per metric name (`rx_pps`, `udp_pps`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub floors: BTreeMap<String, f64>,
}

/// A tenant's policy. `version` is set by the server and grows with each change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub version: u64,
    /// Addresses and prefixes (CIDR) never to mitigate against.
    #[serde(default)]
    pub allowlist: Vec<String>,
    /// Attack profiles for the mitigation engine (opaque to the server for now).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attack_profiles: Value,
    #[serde(default)]
    pub detector: DetectorPolicy,
}

impl Policy {
    /// Checks every field; all problems at once, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(
            self.allowlist.len() <= 10_000,
            "allowlist",
            "at most 10,000 entries",
        );
        for (i, entry) in self.allowlist.iter().enumerate() {
            let ok =
                entry.parse::<ipnet::IpNet>().is_ok() || entry.parse::<std::net::IpAddr>().is_ok();
            p.check(
                ok,
                format!("allowlist[{i}]"),
                format!("`{entry}` is not an IP address or CIDR prefix (e.g. 192.0.2.0/24)"),
            );
        }
        p.check(
            self.attack_profiles.is_null()
                || self.attack_profiles.is_object()
                || self.attack_profiles.is_array(),
            "attack_profiles",
            "must be an object or an array",
        );
        let d = &self.detector;
        if let Some(m) = d.multiplier {
            p.check(
                m.is_finite() && m > 1.0 && m <= 1000.0,
                "detector.multiplier",
                "must be in (1, 1000]",
            );
        }
        if let Some(q) = d.quiet_period_ms {
            p.check(
                (1_000..=3_600_000).contains(&q),
                "detector.quiet_period_ms",
                "must be 1000 to 3600000",
            );
        }
        for (name, v) in &d.floors {
            let field = format!("detector.floors.{name}");
            if Metric::from_name(name).is_none() {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                p.check(
                    false,
                    field.clone(),
                    format!("unknown metric ({})", known.join(", ")),
                );
            }
            p.finite(*v, field);
        }
        p.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_policy_validates() {
        let pol: Policy = serde_json::from_str(
            r#"{"allowlist":["192.0.2.0/24","2001:db8::1"],"attack_profiles":{"web":{}},
                "detector":{"multiplier":4.0,"floors":{"rx_pps":5000}}}"#,
        )
        .unwrap();
        assert!(pol.validate().is_ok());
    }

    #[test]
    fn every_problem_is_named() {
        let pol = Policy {
            allowlist: vec!["10.0.0.0/8".into(), "not-an-ip".into()],
            detector: DetectorPolicy {
                multiplier: Some(0.5),
                quiet_period_ms: Some(5),
                floors: [("bogus".to_string(), 1.0)].into(),
            },
            ..Default::default()
        };
        let fields: Vec<String> = pol
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "allowlist[1]",
                "detector.multiplier",
                "detector.quiet_period_ms",
                "detector.floors.bogus"
            ]
        );
    }

    #[test]
    fn unknown_policy_keys_are_rejected() {
        assert!(serde_json::from_str::<Policy>(r#"{"allow_list":[]}"#).is_err());
    }
}
