//! Packet visibility in the agent: what the sampled packets say about an
//! incident the counters found.
//!
//! - [`sampler`]: one capture thread per interface, sampled frames into
//!   feature windows and a pcap ring.
//! - [`windows`]: the pure feature windows (live, previous, calm baseline).
//! - [`incidents`]: the pure per-incident classification memory (which family
//!   was reported, when a vector change is confirmed).
//! - [`pcaps`]: incident capture file names and retention.
//!
//! [`Visibility`] ties them together for the agent loop: on
//! `incident_started` it classifies the attacked interface's window against
//! its calm baseline and fills family, confidence, fingerprint, spoofing,
//! victim, top sources and indicator matches into the event; it names the
//! pcap the loop writes right after emitting the event; on each
//! `incident_updated` it re-classifies and reports a confirmed change of
//! vector as its own event.

pub mod incidents;
pub mod pcaps;
pub mod sampler;
pub mod windows;

use crate::capture_config::CaptureConfig;
use incidents::{HasFamily, IncidentMemory, Verdict};
use levee_capture::WriteSummary;
use levee_ioc::{IocStore, ReloadReport};
use levee_model::{EventBody, IncidentInfo};
use levee_packet::{classify, top_sources, Classification, ClassifyConfig};
use sampler::{Opener, Sampler, SamplerConfig};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use windows::{agent_feature_config, WindowConfig};

/// Sources listed in incident events.
const TOP_SOURCES: usize = 10;

/// A pcap the loop writes once `incident_started` is out (writing takes a
/// few ms; detection latency should not include them).
#[derive(Debug, Clone)]
pub struct PcapJob {
    sampler: usize,
    pub path: PathBuf,
    from_ns: u64,
}

/// The agent's packet view.
pub struct Visibility {
    samplers: Vec<Sampler>,
    capture: CaptureConfig,
    pcap_dir: PathBuf,
    classify: ClassifyConfig,
    iocs: Option<IocStore>,
    memory: IncidentMemory<Finding>,
}

/// Fields an incident event gets from one classification.
#[derive(Debug, Clone)]
pub struct Finding {
    classification: Classification,
    victim: Option<IpAddr>,
    top_sources: serde_json::Value,
    sources: Vec<IpAddr>,
    sampling_rate: u32,
    sampled_packets: u64,
    estimated_packets: u64,
}

impl Visibility {
    /// No sampler: incidents stay unclassified.
    pub fn disabled(capture: CaptureConfig, state_dir: &std::path::Path) -> Self {
        let pcap_dir = capture
            .pcap_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("pcap"));
        Visibility {
            samplers: Vec::new(),
            capture,
            pcap_dir,
            classify: ClassifyConfig::default(),
            iocs: None,
            memory: IncidentMemory::default(),
        }
    }

    /// Starts one capture thread per interface with `open` (the AF_PACKET
    /// opener in production, a pcap replay in tests). Failures to open show
    /// up in [`Visibility::errors`], not here: the agent runs without them.
    pub fn start(
        capture: CaptureConfig,
        state_dir: &std::path::Path,
        interfaces: &[String],
        mut opener: impl FnMut(&str) -> Opener,
        stop: &Arc<AtomicBool>,
        now_ns: u64,
    ) -> std::io::Result<Self> {
        let mut v = Visibility::disabled(capture, state_dir);
        if !v.capture.enabled || interfaces.is_empty() {
            return Ok(v);
        }
        // The budget is shared: an agent on a router with many ports should
        // not inspect many times what one on a single-NIC host does.
        let budget = f64::from(v.capture.budget_pps) / interfaces.len() as f64;
        for iface in interfaces {
            let window = WindowConfig {
                window_ns: v.capture.window.as_nanos() as u64,
                features: agent_feature_config(),
                ..WindowConfig::default()
            };
            let cfg = SamplerConfig {
                interface: iface.clone(),
                snaplen: v.capture.snaplen,
                budget_pps: budget,
                ring_packets: v.capture.ring_packets,
                window,
            };
            v.samplers.push(Sampler::spawn(
                cfg,
                opener(iface),
                Arc::clone(stop),
                now_ns,
            )?);
        }
        Ok(v)
    }

    /// Loads the indicator lists; the report says which failed.
    pub fn set_iocs(&mut self, store: IocStore) {
        self.iocs = Some(store);
    }

    /// Re-reads the indicator lists (SIGHUP); a list that fails keeps its
    /// previous contents. `None` when no lists are configured.
    pub fn reload_iocs(&self) -> Option<ReloadReport> {
        self.iocs.as_ref().map(IocStore::reload)
    }

    /// Interfaces sampled.
    pub fn interfaces(&self) -> Vec<String> {
        self.samplers.iter().map(|s| s.interface.clone()).collect()
    }

    /// Current sampler failures: (source name, error).
    pub fn errors(&self) -> Vec<(String, String)> {
        self.samplers
            .iter()
            .filter_map(|s| {
                let g = s.lock();
                g.error
                    .clone()
                    .map(|e| (format!("packet sampler {}", s.interface), e))
            })
            .collect()
    }

    /// Called every tick: ends feature windows that are due. Windows ending
    /// while no incident is open feed the calm baseline.
    pub fn rotate(&mut self, now_ms: i64) {
        let quiet = self.memory.is_empty();
        let now_ns = ms_to_ns(now_ms);
        for s in &self.samplers {
            s.lock().windows.rotate(now_ns, quiet);
        }
    }

    /// The sampler whose packets describe `target`: the interface itself, or
    /// for a host-wide incident the interface with the most packets now.
    fn sampler_for(&self, target: &str) -> Option<usize> {
        if let Some(i) = self.samplers.iter().position(|s| s.interface == target) {
            return Some(i);
        }
        (0..self.samplers.len()).max_by_key(|&i| self.samplers[i].lock().windows.live_packets())
    }

    fn find(&self, i: usize) -> Option<Finding> {
        let g = self.samplers.get(i)?.lock();
        let view = g.windows.view()?;
        let baseline = g.windows.calm().map(|c| c.for_victim(view.victim));
        let classification = classify(view.features, baseline, &self.classify)?;
        let talkers = top_sources(view.features, TOP_SOURCES);
        Some(Finding {
            victim: view.victim,
            sources: talkers.iter().map(|t| t.address).collect(),
            top_sources: serde_json::to_value(&talkers).unwrap_or_default(),
            sampling_rate: g.rate,
            sampled_packets: view.sampled_packets,
            estimated_packets: view.scaled_packets,
            classification,
        })
    }

    fn fill(&self, f: &Finding, info: &mut IncidentInfo) {
        f.classification.apply_to(info);
        let d = &mut info.details;
        d.victim = f.victim.map(|v| v.to_string());
        d.top_sources = Some(f.top_sources.clone());
        d.sampling_rate = Some(f.sampling_rate);
        d.sampled_packets = Some(f.sampled_packets);
        d.estimated_packets = Some(f.estimated_packets);
        d.ioc_matches = self.ioc_matches(&f.sources);
    }

    fn ioc_matches(&self, sources: &[IpAddr]) -> Option<serde_json::Value> {
        let set = self.iocs.as_ref()?.current();
        let hits: Vec<serde_json::Value> = set
            .match_sources(sources)
            .into_iter()
            .flat_map(|(ip, ms)| {
                ms.into_iter().map(move |m| {
                    serde_json::json!({
                        "source": ip.to_string(),
                        "list": m.list,
                        "prefix": m.prefix.to_string(),
                        "note": m.note,
                    })
                })
            })
            .collect();
        Some(serde_json::Value::Array(hits))
    }

    /// Classifies a new incident into its `incident_started` event; returns
    /// the pcap to write once the event is out.
    pub fn started(&mut self, info: &mut IncidentInfo, now_ms: i64) -> Option<PcapJob> {
        let i = self.sampler_for(&info.target)?;
        let finding = self.find(i);
        self.samplers[i].lock().windows.incident_started();
        if let Some(f) = &finding {
            self.fill(f, info);
        }
        let job = self.pcap_job(i, info, now_ms);
        if let Some(j) = &job {
            info.details.pcap = Some(j.path.display().to_string());
        }
        self.memory
            .start(&info.incident_id, finding, info.details.pcap.clone());
        job
    }

    fn pcap_job(&self, i: usize, info: &IncidentInfo, now_ms: i64) -> Option<PcapJob> {
        if self.capture.ring_packets == 0 || self.samplers[i].lock().ring.is_none() {
            return None;
        }
        let from_ns = ms_to_ns(now_ms).saturating_sub(self.capture.pcap_before.as_nanos() as u64);
        Some(PcapJob {
            sampler: i,
            path: self
                .pcap_dir
                .join(pcaps::file_name(&info.started_at, &info.incident_id)),
            from_ns,
        })
    }

    /// Writes an incident pcap and prunes old ones.
    pub fn write_pcap(&self, job: &PcapJob) -> Result<WriteSummary, String> {
        pcaps::ensure_dir(&self.pcap_dir)?;
        let g = self.samplers[job.sampler].lock();
        let ring = g.ring.as_ref().ok_or("pcap ring is off")?;
        let sum = ring
            .write_pcap(&job.path, job.from_ns, self.capture.pcap_packets)
            .map_err(|e| e.to_string())?;
        drop(g);
        pcaps::prune(&self.pcap_dir, self.capture.pcap_keep);
        Ok(sum)
    }

    /// Writes the pcap ring of the sampler on `target` (else the busiest)
    /// now, to `file_name` in the pcap directory: the packets sampled in the
    /// last `pcap_before`. For an operator's `capture_pcap` command.
    pub fn capture_now(
        &self,
        target: &str,
        file_name: &str,
        now_ms: i64,
    ) -> Result<(PathBuf, WriteSummary), String> {
        let i = self.sampler_for(target).ok_or(
            "no packet sampler runs on this node (capture.enabled = false or --no-capture)",
        )?;
        if self.capture.ring_packets == 0 || self.samplers[i].lock().ring.is_none() {
            return Err("the pcap ring is off (capture.ring_packets = 0)".into());
        }
        let job = PcapJob {
            sampler: i,
            path: self.pcap_dir.join(file_name),
            from_ns: ms_to_ns(now_ms).saturating_sub(self.capture.pcap_before.as_nanos() as u64),
        };
        let sum = self.write_pcap(&job)?;
        Ok((job.path, sum))
    }

    /// Re-classifies an open incident into its `incident_updated` event;
    /// returns an `incident_vector_changed` event when a new family is
    /// confirmed.
    pub fn updated(&mut self, info: &mut IncidentInfo) -> Option<EventBody> {
        let finding = self.sampler_for(&info.target).and_then(|i| self.find(i));
        let verdict = self.memory.update(&info.incident_id, finding);
        let (stable, pcap) = self.memory.current(&info.incident_id)?;
        let stable = stable.clone();
        let pcap = pcap.clone();
        self.fill(&stable, info);
        info.details.pcap = pcap;
        match verdict {
            Verdict::Changed { previous } => Some(incidents::vector_changed(info, previous)),
            Verdict::Same => None,
        }
    }

    /// Puts the last classification into `incident_resolved` and forgets the
    /// incident.
    pub fn resolved(&mut self, info: &mut IncidentInfo) {
        if let Some((f, pcap)) = self.memory.finish(&info.incident_id) {
            self.fill(&f, info);
            info.details.pcap = pcap;
        }
    }

    /// Stops waiting for the capture threads (the stop flag must be raised).
    pub fn join(self) {
        for s in self.samplers {
            s.join();
        }
    }
}

fn ms_to_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

impl HasFamily for Finding {
    fn family(&self) -> &str {
        self.classification.family.as_str()
    }
}
