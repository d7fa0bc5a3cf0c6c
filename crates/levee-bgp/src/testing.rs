//! Incident events for tests and benchmarks of the engine (the lab tests,
//! the RIB latency benchmark): an incident on the lab's victim interface
//! with an observed `rx_bps`, and its resolution.

use levee_model::{
    EventBody, IncidentDetails, IncidentInfo, IncidentMetric, IncidentResolvedSummary,
};
use std::net::IpAddr;

/// An incident of `family` on `victim` at `bps` bits per second.
pub fn incident(id: &str, victim: IpAddr, bps: f64, family: &str) -> IncidentInfo {
    let metric = IncidentMetric {
        target: "lv-vic0".into(),
        metric: "rx_bps".into(),
        value: bps,
        baseline: 1e4,
        threshold: 1e5,
        ratio: bps / 1e4,
        peak: bps,
    };
    IncidentInfo {
        incident_id: id.into(),
        target: "lv-vic0".into(),
        metric: "rx_bps".into(),
        value: bps,
        baseline: 1e4,
        ratio: bps / 1e4,
        threshold: 1e5,
        metrics: vec![metric],
        started_at: "2026-11-21T00:00:00.000Z".into(),
        family: Some(family.into()),
        confidence: Some(99),
        fingerprint: None,
        details: IncidentDetails {
            victim: Some(victim.to_string()),
            ..Default::default()
        },
    }
}

/// `incident_resolved` for [`incident`]'s `id`.
pub fn resolved(id: &str, victim: IpAddr, family: &str) -> EventBody {
    EventBody::IncidentResolved {
        info: incident(id, victim, 0.0, family),
        summary: IncidentResolvedSummary {
            duration_s: 1.0,
            peak: 1.0,
            total_packets: 1,
            total_bytes: 1,
        },
    }
}
