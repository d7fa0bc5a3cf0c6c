//! What a tenant admin may change of the operator's BGP settings through
//! the API: escalation thresholds (per tenant and per attack family) and
//! the rule cap, lowered only. [`BgpTuning`] is the stored and wire form;
//! [`effective`] lays it over the operator's config, checking every field
//! (pure, so the API and the leader's engine use the same code).

use levee_bgp::config::{BgpConfig, Bps, ThresholdConfig, ThresholdOverrides};
use levee_bgp::escalate::Thresholds;
use levee_packet::Family;
use levee_proto::FieldError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Rates in bits per second, written "300Mbps", "2Gbps", "800kbps" or as
/// a number of bits per second in a string ("300000000"); unset keeps the
/// operator's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    /// Level 1, FlowSpec rate-limit, above this rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Level 2, FlowSpec discard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard: Option<String>,
    /// Level 3, RTBH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtbh: Option<String>,
    /// Level 4, scrubbing diversion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divert: Option<String>,
}

/// A tenant's BGP tuning (`PUT /api/v1/bgp/thresholds`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BgpTuning {
    /// The tenant's thresholds over the operator's.
    pub thresholds: Rates,
    /// Per attack family (`syn_flood`, `dns_amplification`, ...), over the
    /// tenant's thresholds.
    pub profiles: BTreeMap<String, Rates>,
    /// Most rules live at once; at most the operator's `max_rules`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rules: Option<u64>,
}

/// Thresholds as shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RatesInEffect {
    pub rate_limit: String,
    pub discard: String,
    pub rtbh: String,
    pub divert: String,
}

impl From<Thresholds> for RatesInEffect {
    fn from(t: Thresholds) -> Self {
        let r = |i: usize| Bps(t.levels[i].1).to_string();
        RatesInEffect {
            rate_limit: r(0),
            discard: r(1),
            rtbh: r(2),
            divert: r(3),
        }
    }
}

fn overrides(at: &str, r: &Rates, problems: &mut Vec<FieldError>) -> ThresholdOverrides {
    let mut parse = |key: &str, v: &Option<String>| {
        v.as_deref().and_then(|s| match Bps::parse(s) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(FieldError::new(format!("{at}.{key}"), e));
                None
            }
        })
    };
    ThresholdOverrides {
        rate_limit: parse("rate_limit", &r.rate_limit),
        discard: parse("discard", &r.discard),
        rtbh: parse("rtbh", &r.rtbh),
        divert: parse("divert", &r.divert),
    }
}

fn merge(base: ThresholdOverrides, over: ThresholdOverrides) -> ThresholdOverrides {
    ThresholdOverrides {
        rate_limit: over.rate_limit.or(base.rate_limit),
        discard: over.discard.or(base.discard),
        rtbh: over.rtbh.or(base.rtbh),
        divert: over.divert.or(base.divert),
    }
}

fn family(name: &str) -> Option<Family> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The operator's config with the tenant's tuning laid over it, or every
/// problem of the tuning, each naming its field and the fix.
pub fn effective(op: &BgpConfig, t: &BgpTuning) -> Result<BgpConfig, Vec<FieldError>> {
    let mut problems = Vec::new();
    let mut cfg = op.clone();
    let o = overrides("thresholds", &t.thresholds, &mut problems);
    let base = cfg.thresholds;
    cfg.thresholds = ThresholdConfig {
        rate_limit: o.rate_limit.unwrap_or(base.rate_limit),
        discard: o.discard.unwrap_or(base.discard),
        rtbh: o.rtbh.unwrap_or(base.rtbh),
        divert: o.divert.unwrap_or(base.divert),
    };
    for (name, rates) in &t.profiles {
        let at = format!("profiles.{name}");
        let Some(f) = family(name) else {
            problems.push(FieldError::new(
                at,
                format!(
                    "`{name}` is not an attack family; use one of {}",
                    Family::ALL.map(Family::as_str).join(", ")
                ),
            ));
            continue;
        };
        let over = overrides(&at, rates, &mut problems);
        let was = cfg.profiles.get(&f).copied().unwrap_or_default();
        cfg.profiles.insert(f, merge(was, over));
    }
    if let Some(n) = t.max_rules {
        if n == 0 || n > op.max_rules as u64 {
            problems.push(FieldError::new(
                "max_rules",
                format!(
                    "must be 1 to {} (the operator's cap, max_rules of this tenant's [[bgp.tenant]])",
                    op.max_rules
                ),
            ));
        } else {
            cfg.max_rules = n as usize;
        }
    }
    if problems.is_empty() {
        let grows = |t: Thresholds| t.levels.windows(2).all(|w| w[0].1 <= w[1].1);
        let show = |t: Thresholds| {
            let r = RatesInEffect::from(t);
            format!(
                "rate_limit {} / discard {} / rtbh {} / divert {}",
                r.rate_limit, r.discard, r.rtbh, r.divert
            )
        };
        let mut check = |field: String, t: Thresholds| {
            if !grows(t) {
                problems.push(FieldError::new(
                    field,
                    format!(
                        "thresholds must grow with the level (rate_limit <= discard <= rtbh <= divert); with this change they would be {}; set the neighbouring levels too",
                        show(t)
                    ),
                ));
            }
        };
        check("thresholds".into(), cfg.thresholds_for(None));
        for f in cfg.profiles.keys() {
            check(format!("profiles.{f}"), cfg.thresholds_for(Some(*f)));
        }
    }
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> BgpConfig {
        BgpConfig {
            enabled: true,
            origin_as: 64500,
            prefixes: vec!["203.0.113.0/24".parse().unwrap()],
            max_rules: 50,
            ..BgpConfig::default()
        }
    }

    fn tuning(json: serde_json::Value) -> BgpTuning {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn tuning_lays_over_the_operators_settings() {
        let t = tuning(serde_json::json!({
            "thresholds": {"discard": "200Mbps"},
            "profiles": {"syn_flood": {"rate_limit": "10Mbps", "discard": "20Mbps"}},
            "max_rules": 10
        }));
        let c = effective(&op(), &t).unwrap();
        assert_eq!(c.thresholds.discard.0, 200_000_000);
        assert_eq!(
            c.thresholds.rate_limit.0, 100_000_000,
            "unset keeps the operator's"
        );
        assert_eq!(c.max_rules, 10);
        let syn = c.thresholds_for(Some(Family::SynFlood));
        assert_eq!(syn.levels[1].1, 20_000_000);
        assert_eq!(
            c.thresholds_for(Some(Family::UdpFlood)).levels[1].1,
            200_000_000
        );
        // Only tunables change: prefixes, speaker, RPKI stay the operator's.
        assert_eq!(c.prefixes, op().prefixes);
        assert_eq!(c.speaker, op().speaker);
        assert_eq!(effective(&op(), &BgpTuning::default()).unwrap(), op());
    }

    #[test]
    fn every_problem_names_its_field_and_the_fix() {
        let t = tuning(serde_json::json!({
            "thresholds": {"discard": "fast"},
            "profiles": {"syn_fl00d": {"discard": "1Mbps"}, "udp_flood": {"rtbh": "lots"}},
            "max_rules": 51
        }));
        let p = effective(&op(), &t).unwrap_err();
        let fields: Vec<&str> = p.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "thresholds.discard",
                "profiles.syn_fl00d",
                "profiles.udp_flood.rtbh",
                "max_rules"
            ]
        );
        let text = p
            .iter()
            .map(|e| e.problem.clone())
            .collect::<Vec<_>>()
            .join("\n");
        for needle in ["100Mbps", "syn_flood", "1 to 50"] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        assert!(effective(&op(), &tuning(serde_json::json!({"max_rules": 0}))).is_err());
    }

    #[test]
    fn thresholds_must_still_grow_with_the_level() {
        let t = tuning(serde_json::json!({"thresholds": {"rate_limit": "1Gbps"}}));
        let p = effective(&op(), &t).unwrap_err();
        assert_eq!(p[0].field, "thresholds");
        assert!(
            p[0].problem.contains("rate_limit 1Gbps / discard 500Mbps"),
            "{}",
            p[0].problem
        );
        let t = tuning(serde_json::json!({"profiles": {"udp_flood": {"rtbh": "1Mbps"}}}));
        assert_eq!(
            effective(&op(), &t).unwrap_err()[0].field,
            "profiles.udp_flood"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_value::<BgpTuning>(serde_json::json!({"prefixes": ["0.0.0.0/0"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefixes"), "{e}");
    }
}
