//! Connects `levee agent` to a Levee server: enrollment before the loop
//! starts, then an [`Observer`] that hands every event and tick to the
//! uplink thread (which never makes the loop wait), and a [`Controller`]
//! that hands the server's policies and commands to the loop (drained from
//! a channel at each tick) and their results back.
//!
//! The server's addresses are protected from mitigation rules.

use anyhow::Context;
use levee_agent::{AgentConfig, CommandDone, Control, Controller, Observer};
use levee_detector::Detector;
use levee_model::{Event, EventBody, Metric, SeriesKey, Target, TickObservation};
use levee_proto::BaselineEntry;
use levee_uplink::creds::CredsError;
use levee_uplink::{Credentials, Uplink, UplinkConfig, UplinkHandle};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the detector's baselines are sent.
const BASELINE_EVERY: Duration = Duration::from_secs(10);
/// How long the agent waits at exit for queued events to reach the server
/// (the rest stays on disk for the next start).
const FLUSH_AT_EXIT: Duration = Duration::from_secs(3);

/// A started uplink.
pub struct Uplinked {
    pub handle: Arc<UplinkHandle>,
    /// The server's URL, as enrolled.
    pub server: String,
}

impl Uplinked {
    /// The observer and the controller to give the agent.
    pub fn into_parts(self, state_dir: &std::path::Path) -> (UplinkObserver, UplinkController) {
        (
            UplinkObserver::new(self.handle.clone()),
            UplinkController {
                up: self.handle,
                // What the uplink last saved: a policy that arrived just
                // before the agent stopped may not have been applied yet.
                first: levee_uplink::runtime::saved_policy(state_dir),
            },
        )
    }
}

/// The addresses of the server at `url` (an IP literal, or every address
/// its name resolves to); unresolvable: none, with a warning, since the
/// agent must start without the server.
pub fn server_addresses(url: &str) -> Vec<IpAddr> {
    let Ok(u) = reqwest::Url::parse(url) else {
        tracing::warn!(
            "server URL {url} does not parse; its address is not protected from mitigation"
        );
        return vec![];
    };
    let port = u.port_or_known_default().unwrap_or(443);
    let Some(host) = u.host_str() else {
        return vec![];
    };
    if let Ok(a) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return vec![a];
    }
    use std::net::ToSocketAddrs;
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let mut v: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            v.sort();
            v.dedup();
            v
        }
        Err(e) => {
            tracing::warn!("cannot resolve the server {host} ({e}); its address is not protected from mitigation until the agent restarts");
            vec![]
        }
    }
}

/// Enrolls when `enroll` is given, then starts the uplink if this node is
/// enrolled and the uplink enabled. `None`: run standalone.
pub fn prepare(cfg: &AgentConfig, enroll: Option<&str>) -> anyhow::Result<Option<Uplinked>> {
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
    let server = creds.server.clone();
    let handle = Uplink::start_with(ucfg, creds).context("starting the uplink")?;
    Ok(Some(Uplinked {
        handle: Arc::new(handle),
        server,
    }))
}

/// Feeds the uplink from the agent loop.
pub struct UplinkObserver {
    up: Option<Arc<UplinkHandle>>,
    /// Incident pcaps written, uploaded when their incident resolves.
    pcaps: HashMap<String, PathBuf>,
    last_baselines: Option<Instant>,
}

impl UplinkObserver {
    pub fn new(up: Arc<UplinkHandle>) -> Self {
        UplinkObserver {
            up: Some(up),
            pcaps: HashMap::new(),
            last_baselines: None,
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

/// Hands the server's policies and commands to the agent loop.
pub struct UplinkController {
    up: Arc<UplinkHandle>,
    /// The saved policy, handed over at the first poll.
    first: Option<levee_proto::Policy>,
}

impl Controller for UplinkController {
    fn poll(&mut self) -> Vec<Control> {
        let mut out: Vec<Control> = self.first.take().map(Control::Policy).into_iter().collect();
        while let Some(a) = self.up.try_answer() {
            out.extend(a.policy.map(Control::Policy));
            out.extend(a.commands.into_iter().map(Control::Command));
        }
        out
    }

    fn done(&mut self, done: CommandDone) {
        if let Some((incident, path)) = &done.upload {
            self.up.upload_pcap(incident, path);
        }
        self.up.command_done(done.result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_from_literals_and_names() {
        assert_eq!(
            server_addresses("https://192.0.2.7:8443"),
            ["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            server_addresses("https://[2001:db8::7]:8443/"),
            ["2001:db8::7".parse::<IpAddr>().unwrap()]
        );
        // `localhost` resolves from /etc/hosts, no DNS needed.
        let local = server_addresses("https://localhost:8443");
        assert!(
            !local.is_empty() && local.iter().all(IpAddr::is_loopback),
            "{local:?}"
        );
        assert!(server_addresses("not a url").is_empty());
        assert!(server_addresses("https://no-such-host.invalid:8443").is_empty());
    }
}
