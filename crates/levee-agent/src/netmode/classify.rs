//! [`NetEnricher`]: classification of per-IP and per-prefix incidents, the
//! flow and mirror modes' counterpart of [`crate::visibility::Visibility`].
//!
//! On `incident_started` the target is pinned in the engine's
//! [`super::features::FeatureStore`] (so it stays watched while the incident
//! is open) and its window is classified by levee-packet's classifier, the
//! same rules as the packet sampler's: family, confidence, fingerprint,
//! spoofing estimate, top sources; a prefix's incident also says how many
//! of its IPs received traffic (`members`: the addresses folded into it,
//! which start no incidents of their own). Updates re-classify, and a confirmed
//! change of family becomes `incident_vector_changed`, with the same
//! confirmation as host mode ([`IncidentMemory`]).
//!
//! What flow records cannot say: TTLs and payloads are unknown for NetFlow
//! and IPFIX (sFlow raw headers and mirror mode have them), so the spoofing
//! estimate leans on source counts and entropy only, and amplification
//! families lose the confidence a response payload would add.

use super::engine::{Engine, Key};
use crate::runtime::IncidentEnricher;
use crate::visibility::incidents::{vector_changed, HasFamily, IncidentMemory, Verdict};
use levee_model::{EventBody, IncidentInfo};
use levee_packet::{classify, top_sources, Classification, ClassifyConfig};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const TOP_SOURCES: usize = 10;

/// What one classification adds to an incident event.
#[derive(Debug, Clone)]
pub struct NetFinding {
    classification: Classification,
    victim: Option<IpAddr>,
    top_sources: serde_json::Value,
    sampling_rate: u32,
    records: u64,
    estimated_packets: u64,
    /// A prefix's IPs with traffic: what its incident folds in.
    members: Option<u64>,
}

impl HasFamily for NetFinding {
    fn family(&self) -> &str {
        self.classification.family.as_str()
    }
}

/// Classifies incidents of flow and mirror modes.
pub struct NetEnricher {
    engine: Arc<Mutex<Engine>>,
    classify: ClassifyConfig,
    memory: IncidentMemory<NetFinding>,
}

fn lock(e: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    e.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NetEnricher {
    pub fn new(engine: Arc<Mutex<Engine>>) -> Self {
        NetEnricher {
            engine,
            classify: ClassifyConfig::default(),
            memory: IncidentMemory::default(),
        }
    }

    fn find(&self, key: &Key) -> Option<NetFinding> {
        let engine = lock(&self.engine);
        let view = engine.features().view(key)?;
        let classification = classify(view.features, None, &self.classify)?;
        let talkers = top_sources(view.features, TOP_SOURCES);
        Some(NetFinding {
            victim: match key {
                Key::Ip(ip) => Some(*ip),
                Key::Prefix(_) => None,
            },
            top_sources: serde_json::to_value(&talkers).unwrap_or_default(),
            sampling_rate: view.sampling_rate,
            records: view.records,
            estimated_packets: view.features.packets,
            members: match key {
                Key::Ip(_) => None,
                Key::Prefix(p) => engine.members(p).map(|n| n as u64),
            },
            classification,
        })
    }

    fn fill(f: &NetFinding, info: &mut IncidentInfo) {
        f.classification.apply_to(info);
        let d = &mut info.details;
        d.victim = f.victim.map(|v| v.to_string());
        d.top_sources = Some(f.top_sources.clone());
        d.sampling_rate = Some(f.sampling_rate);
        d.sampled_packets = Some(f.records);
        d.estimated_packets = Some(f.estimated_packets);
        d.members = f.members;
    }
}

impl IncidentEnricher for NetEnricher {
    fn started(&mut self, info: &mut IncidentInfo, now_ms: i64) {
        let Some(key) = Key::parse(&info.target) else {
            return;
        };
        lock(&self.engine).features_mut().pin(key, now_ms);
        let finding = self.find(&key);
        if let Some(f) = &finding {
            Self::fill(f, info);
        }
        self.memory.start(&info.incident_id, finding, None);
    }

    fn updated(&mut self, info: &mut IncidentInfo) -> Option<EventBody> {
        let key = Key::parse(&info.target)?;
        let finding = self.find(&key);
        let verdict = self.memory.update(&info.incident_id, finding);
        let stable = self.memory.current(&info.incident_id)?.0.clone();
        Self::fill(&stable, info);
        match verdict {
            Verdict::Changed { previous } => Some(vector_changed(info, previous)),
            Verdict::Same => None,
        }
    }

    fn resolved(&mut self, info: &mut IncidentInfo) {
        if let Some((f, _)) = self.memory.finish(&info.incident_id) {
            Self::fill(&f, info);
        }
        if let Some(key) = Key::parse(&info.target) {
            lock(&self.engine).features_mut().unpin(&key);
        }
    }
}
