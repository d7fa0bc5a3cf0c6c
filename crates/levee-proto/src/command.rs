//! The commands an operator can queue for a node, and what the agent reports
//! back. The server validates `kind` and `args` with [`Command::parse`] when
//! a command is queued (400 naming the field); the agent parses the same way
//! and acknowledges a command it cannot parse (a kind newer than itself) as
//! failed, with the reason.

use crate::error::{FieldError, Problems};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A command the agent knows how to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `rollback_mitigation {"mitigation_id": UUID}`: remove one live mitigation now.
    RollbackMitigation { mitigation_id: String },
    /// `rollback_all {}`: remove every live mitigation now.
    RollbackAll,
    /// `capture_pcap {"incident_id"?: ID}`: write the pcap ring now; upload it
    /// with the incident (the given one, else the open one).
    CapturePcap { incident_id: Option<String> },
    /// `reload_iocs {}`: re-read the indicator lists (what SIGHUP does).
    ReloadIocs,
    /// `save_baseline {}`: write the baseline snapshot now.
    SaveBaseline,
}

/// Every kind, as queued: `kind` of `POST /api/v1/nodes/{id}/commands`.
pub const KINDS: [&str; 5] = [
    "rollback_mitigation",
    "rollback_all",
    "capture_pcap",
    "reload_iocs",
    "save_baseline",
];

impl Command {
    /// The command `kind` with `args` (a JSON object, or null for none), or
    /// every problem, each naming its field (`kind`, `args.mitigation_id`, ...).
    pub fn parse(kind: &str, args: &Value) -> Result<Command, Vec<FieldError>> {
        let mut p = Problems::default();
        let empty = serde_json::Map::new();
        let obj = match args {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => {
                return Err(vec![FieldError::new(
                    "args",
                    "must be a JSON object (or absent)",
                )])
            }
        };
        let allowed: &[&str] = match kind {
            "rollback_mitigation" => &["mitigation_id"],
            "capture_pcap" => &["incident_id"],
            "rollback_all" | "reload_iocs" | "save_baseline" => &[],
            _ => {
                return Err(vec![FieldError::new(
                    "kind",
                    format!("unknown command `{kind}`; one of {}", KINDS.join(", ")),
                )])
            }
        };
        for key in obj.keys() {
            p.check(
                allowed.contains(&key.as_str()),
                format!("args.{key}"),
                if allowed.is_empty() {
                    format!("{kind} takes no arguments")
                } else {
                    format!(
                        "not an argument of {kind} (it takes {})",
                        allowed.join(", ")
                    )
                },
            );
        }
        let text = |p: &mut Problems, name: &str, required: bool| -> Option<String> {
            match obj.get(name) {
                None | Some(Value::Null) => {
                    p.check(!required, format!("args.{name}"), "required");
                    None
                }
                Some(Value::String(s)) => {
                    p.name(s, format!("args.{name}"));
                    Some(s.clone())
                }
                Some(_) => {
                    p.check(false, format!("args.{name}"), "must be a string");
                    None
                }
            }
        };
        let cmd = match kind {
            "rollback_mitigation" => {
                let id = text(&mut p, "mitigation_id", true);
                if let Some(id) = &id {
                    p.check(
                        uuid::Uuid::parse_str(id).is_ok(),
                        "args.mitigation_id",
                        "must be a mitigation id (a UUID, as in mitigation events)",
                    );
                }
                Command::RollbackMitigation {
                    mitigation_id: id.unwrap_or_default(),
                }
            }
            "capture_pcap" => Command::CapturePcap {
                incident_id: text(&mut p, "incident_id", false),
            },
            "rollback_all" => Command::RollbackAll,
            "reload_iocs" => Command::ReloadIocs,
            _ => Command::SaveBaseline,
        };
        p.into_result().map(|_| cmd)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Command::RollbackMitigation { .. } => "rollback_mitigation",
            Command::RollbackAll => "rollback_all",
            Command::CapturePcap { .. } => "capture_pcap",
            Command::ReloadIocs => "reload_iocs",
            Command::SaveBaseline => "save_baseline",
        }
    }
}

/// What became of a command, reported in the heartbeat's `command_results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandResult {
    pub id: i64,
    /// Whether the agent carried it out.
    pub ok: bool,
    /// What it did, or why it could not.
    pub message: String,
}

/// Longest result message the server keeps (longer ones are cut).
pub const MAX_RESULT_LEN: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(kind: &str, args: Value) -> Vec<String> {
        Command::parse(kind, &args)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn every_kind_parses() {
        let id = "01a1fbca-a736-7516-aa18-813da2481001";
        assert_eq!(
            Command::parse("rollback_mitigation", &json!({ "mitigation_id": id })).unwrap(),
            Command::RollbackMitigation {
                mitigation_id: id.into()
            }
        );
        assert_eq!(
            Command::parse("rollback_all", &Value::Null).unwrap(),
            Command::RollbackAll
        );
        assert_eq!(
            Command::parse("capture_pcap", &json!({})).unwrap(),
            Command::CapturePcap { incident_id: None }
        );
        assert_eq!(
            Command::parse("capture_pcap", &json!({"incident_id": "x"})).unwrap(),
            Command::CapturePcap {
                incident_id: Some("x".into())
            }
        );
        assert_eq!(
            Command::parse("reload_iocs", &json!({})).unwrap(),
            Command::ReloadIocs
        );
        assert_eq!(
            Command::parse("save_baseline", &json!({})).unwrap(),
            Command::SaveBaseline
        );
        for k in KINDS {
            let args = if k == "rollback_mitigation" {
                json!({ "mitigation_id": id })
            } else {
                json!({})
            };
            assert_eq!(Command::parse(k, &args).unwrap().kind(), k);
        }
    }

    #[test]
    fn problems_name_their_field() {
        assert_eq!(fields("reboot", json!({})), ["kind"]);
        assert_eq!(
            fields("rollback_mitigation", json!({})),
            ["args.mitigation_id"]
        );
        assert_eq!(
            fields("rollback_mitigation", json!({"mitigation_id": "nope"})),
            ["args.mitigation_id"]
        );
        assert_eq!(
            fields("rollback_mitigation", json!({"mitigation_id": 7})),
            ["args.mitigation_id"]
        );
        assert_eq!(
            fields("rollback_all", json!({"force": true})),
            ["args.force"]
        );
        assert_eq!(fields("capture_pcap", json!([1])), ["args"]);
        let e = Command::parse("reboot", &Value::Null).unwrap_err();
        assert!(e[0].problem.contains("rollback_all"), "{}", e[0].problem);
    }
}
