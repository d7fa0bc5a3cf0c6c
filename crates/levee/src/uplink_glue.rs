//! Connects `levee agent` to a Levee server: enrollment before the loop
//! starts, then an [`Observer`] that hands every event and tick to the
//! uplink thread (which never makes the loop wait).

use anyhow::Context;
use levee_agent::{AgentConfig, Observer};
use levee_detector::Detector;
use levee_model::{Event, EventBody, Metric, SeriesKey, Target, TickObservation};
use levee_proto::BaselineEntry;
use levee_uplink::creds::CredsError;
use levee_uplink::{Credentials, Uplink, UplinkConfig, UplinkHandle};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the detector's baselines are sent.
const BASELINE_EVERY: Duration = Duration::from_secs(10);
/// How long the agent waits at exit for queued events to reach the server
/// (the rest stays on disk for the next start).
const FLUSH_AT_EXIT: Duration = Duration::from_secs(3);

/// Enrolls when `enroll` is given, then starts the uplink if this node is
/// enrolled and the uplink enabled. `None`: run standalone.
pub fn prepare(cfg: &AgentConfig, enroll: Option<&str>) -> anyhow::Result<Option<UplinkHandle>> {
    if let Some(token) = enroll {
        let server = cfg.uplink.server.as_deref().context(
            "--enroll needs the server: pass --server https://HOST:PORT (or set uplink.server)",
        )?;
        levee_uplink::enroll_blocking(
            server,
            token,
            &cfg.node,
            &cfg.interfaces,
            cfg.uplink.server_fingerprint,
            &cfg.state_dir,
        )
        .with_context(|| format!("enrolling node `{}` with {server}", cfg.node))?;
    }
    if !cfg.uplink.enabled {
        tracing::info!("uplink off (uplink.enabled = false or --no-uplink)");
        return Ok(None);
    }
    let creds = match Credentials::load(&cfg.state_dir) {
        Ok(c) => c,
        Err(CredsError::Missing { path }) => {
            if let Some(server) = &cfg.uplink.server {
                anyhow::bail!(
                    "this node is not enrolled with {server} ({} is missing): run once with --enroll TOKEN",
                    path.display()
                );
            }
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(server) = cfg
        .uplink
        .server
        .as_deref()
        .filter(|s| s.trim_end_matches('/') != creds.server)
    {
        tracing::warn!(
            "uplink.server is {server} but this node is enrolled with {}; using the enrollment (enroll again to move)",
            creds.server
        );
    }
    let mut ucfg = UplinkConfig::new(&cfg.state_dir);
    ucfg.queue_cap = cfg.uplink.queue_events;
    tracing::info!(server = %creds.server, node_id = creds.node_id, tenant = %creds.tenant, "uplink on");
    Ok(Some(
        Uplink::start_with(ucfg, creds).context("starting the uplink")?,
    ))
}

/// Feeds the uplink from the agent loop.
pub struct UplinkObserver {
    up: Option<UplinkHandle>,
    /// Incident pcaps written, uploaded when their incident resolves.
    pcaps: HashMap<String, PathBuf>,
    last_baselines: Option<Instant>,
}

impl UplinkObserver {
    pub fn new(up: UplinkHandle) -> Self {
        UplinkObserver {
            up: Some(up),
            pcaps: HashMap::new(),
            last_baselines: None,
        }
    }

    fn answers(&mut self) {
        let Some(up) = &self.up else { return };
        while let Some(a) = up.try_answer() {
            if let Some(p) = &a.policy {
                tracing::info!(
                    version = p.version,
                    allowlist = p.allowlist.len(),
                    "policy received and saved; this agent version does not apply its detector settings yet"
                );
            }
            for c in &a.commands {
                tracing::warn!(id = c.id, kind = %c.kind, "command not supported by this agent version; acknowledged");
                up.command_done(levee_proto::CommandResult {
                    id: c.id,
                    ok: false,
                    message: "not carried out: this agent version does not execute commands".into(),
                });
            }
        }
    }
}

/// The detector's baselines of the series an observation carries.
pub fn baselines(obs: &TickObservation, d: &Detector) -> Vec<BaselineEntry> {
    let mut keys: Vec<SeriesKey> = Vec::new();
    for i in &obs.interfaces {
        for m in [Metric::RxPps, Metric::RxBps] {
            keys.push(SeriesKey::new(Target::Interface(i.name.clone()), m));
        }
    }
    for m in [
        Metric::TcpPps,
        Metric::UdpPps,
        Metric::IcmpPps,
        Metric::SynRecv,
        Metric::Connections,
    ] {
        keys.push(SeriesKey::new(Target::Host, m));
    }
    keys.into_iter()
        .filter_map(|k| {
            let (baseline, threshold) = d.threshold_of(&k)?;
            Some(BaselineEntry {
                target: k.target.to_string(),
                metric: k.metric.name().to_string(),
                baseline,
                threshold,
            })
        })
        .collect()
}

impl Observer for UplinkObserver {
    fn event(&mut self, e: &Event) {
        let Some(up) = &self.up else { return };
        up.event(e);
        match &e.body {
            EventBody::IncidentStarted(i) | EventBody::IncidentUpdated(i) => {
                if let Some(p) = &i.details.pcap {
                    self.pcaps.insert(i.incident_id.clone(), PathBuf::from(p));
                }
            }
            EventBody::IncidentResolved { info, .. } => {
                let path = self
                    .pcaps
                    .remove(&info.incident_id)
                    .or_else(|| info.details.pcap.as_ref().map(PathBuf::from));
                if let Some(p) = path {
                    up.upload_pcap(&info.incident_id, &p);
                }
            }
            _ => {}
        }
    }

    fn tick(&mut self, obs: &TickObservation, d: &Detector) {
        let Some(up) = &self.up else { return };
        up.tick(obs);
        if self
            .last_baselines
            .is_none_or(|t| t.elapsed() >= BASELINE_EVERY)
        {
            let b = baselines(obs, d);
            if !b.is_empty() {
                up.baselines(b);
                self.last_baselines = Some(Instant::now());
            }
        }
        self.answers();
    }

    fn stopped(&mut self) {
        if let Some(up) = self.up.take() {
            let queued = up.status().queued;
            up.shutdown(FLUSH_AT_EXIT);
            if queued > 0 {
                tracing::info!("{queued} events were queued for the server at exit; the rest are sent at the next start");
            }
        }
    }
}
