//! Flow and mirror modes: the agent watches the monitored networks of a
//! router's flow exports (`--mode flow`) or of a switch SPAN port
//! (`--mode mirror`), with a baseline per IP and per prefix, instead of its
//! own host.
//!
//! - [`config`]: `agent.mode`, `[networks]`, `[flow]`, `[mirror]`;
//! - [`engine`]: records and sampled packets -> per-IP and per-prefix rates
//!   each tick (pure);
//! - [`features`]: traffic features of the hot IPs and prefixes (pure);
//! - [`classify`]: classification of their incidents ([`NetEnricher`]);
//! - [`mirror`]: the SPAN port's capture thread.
//!
//! [`NetTicks`] is the loop's [`TickSource`] in these modes: each tick it
//! takes the engine's rates into the observation's `targets` (the detector's
//! per-IP bank does the rest), reports listener/capture failures, and every
//! [`STATUS_EVERY`] writes `flow-exporters.json` (counters per exporter) and
//! `flow-templates.json` (the template cache, restored at the next start)
//! into the state directory.

pub mod classify;
pub mod config;
pub mod engine;
pub mod features;
pub mod mirror;

pub use classify::NetEnricher;
pub use config::{Mode, NetModeConfig};
pub use engine::Engine;

use crate::runtime::{unix_now_ms, TickResult, TickSource};
use levee_flow::{CacheSnapshot, DecoderConfig, FlowRecord};
use levee_flowd::{Ingest, ListenConfig, Listeners};
use levee_model::TickObservation;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often exporter counters and the template cache are written.
pub const STATUS_EVERY: Duration = Duration::from_secs(10);
/// File names in the state directory.
pub const TEMPLATES_FILE: &str = "flow-templates.json";
pub const EXPORTERS_FILE: &str = "flow-exporters.json";

/// The running input of flow or mirror mode.
enum Input {
    Flow(Listeners),
    Mirror {
        interface: String,
        thread: Option<JoinHandle<()>>,
        error: Arc<Mutex<Option<String>>>,
    },
}

/// The tick source of flow and mirror modes.
pub struct NetTicks {
    engine: Arc<Mutex<Engine>>,
    input: Input,
    state_dir: PathBuf,
    last_ms: Option<i64>,
    last_status_ms: i64,
    clock: fn() -> i64,
    stop: Arc<AtomicBool>,
}

/// Writes `text` to `path` atomically (temporary file, rename).
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The listen settings of `[flow]`.
pub fn listen_config(cfg: &NetModeConfig) -> ListenConfig {
    ListenConfig {
        listen: cfg.flow.listen.clone(),
        sockets_per_address: cfg.flow.sockets_per_listener,
        recv_buffer: cfg.flow.recv_buffer,
        max_exporters: cfg.flow.max_exporters,
        decoder: DecoderConfig {
            template_timeout_ms: cfg.flow.template_timeout.as_millis() as u64,
            exporters: cfg.flow.exporters.clone(),
            ..DecoderConfig::default()
        },
    }
}

impl NetTicks {
    /// Flow mode: binds the listeners (all or nothing) after restoring the
    /// saved template cache.
    pub fn flow(
        cfg: &NetModeConfig,
        state_dir: &Path,
        engine: Arc<Mutex<Engine>>,
        stop: Arc<AtomicBool>,
        clock: fn() -> i64,
    ) -> Result<NetTicks, levee_flowd::ListenError> {
        let lc = listen_config(cfg);
        let mut ingest = Ingest::new(lc.decoder.clone(), lc.max_exporters);
        let path = state_dir.join(TEMPLATES_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => match CacheSnapshot::from_json(&text) {
                Ok(snap) => {
                    let r = ingest.restore(&snap, clock());
                    tracing::info!(
                        templates = r.templates,
                        samplers = r.samplers,
                        dropped = r.dropped,
                        "flow templates restored from {}",
                        path.display()
                    );
                }
                Err(e) => tracing::warn!(
                    "{}: {e}; waiting for exporters to resend templates",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot read {}: {e}", path.display()),
        }
        let sink_engine = Arc::clone(&engine);
        let sink = Arc::new(move |now: i64, flows: &[FlowRecord]| {
            let mut e = sink_engine.lock().unwrap_or_else(PoisonError::into_inner);
            for r in flows {
                e.observe_record(now, r);
            }
        });
        let listeners = Listeners::start(&lc, ingest, sink, Arc::clone(&stop), clock)?;
        Ok(NetTicks {
            engine,
            input: Input::Flow(listeners),
            state_dir: state_dir.to_path_buf(),
            last_ms: None,
            last_status_ms: clock(),
            clock,
            stop,
        })
    }

    /// Mirror mode: starts the capture thread on the SPAN interface.
    pub fn mirror(
        interface: &str,
        budget_pps: u32,
        opener: mirror::MirrorOpener,
        state_dir: &Path,
        engine: Arc<Mutex<Engine>>,
        stop: Arc<AtomicBool>,
        clock: fn() -> i64,
    ) -> std::io::Result<NetTicks> {
        let error = Arc::new(Mutex::new(None));
        let thread = mirror::spawn(
            interface.to_string(),
            budget_pps,
            opener,
            Arc::clone(&engine),
            Arc::clone(&error),
            Arc::clone(&stop),
            clock,
        )?;
        Ok(NetTicks {
            engine,
            input: Input::Mirror {
                interface: interface.to_string(),
                thread: Some(thread),
                error,
            },
            state_dir: state_dir.to_path_buf(),
            last_ms: None,
            last_status_ms: clock(),
            clock,
            stop,
        })
    }

    /// The listeners' bound addresses (flow mode).
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        match &self.input {
            Input::Flow(l) => l.local_addrs().to_vec(),
            Input::Mirror { .. } => Vec::new(),
        }
    }

    /// Writes the exporter counters and the template cache.
    fn write_status(&self, now_ms: i64) {
        let Input::Flow(l) = &self.input else {
            return;
        };
        let (exporters, totals, snapshot) =
            l.with_ingest(|i| (i.exporters(), i.totals(), i.snapshot(now_ms)));
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stats();
        let status = serde_json::json!({
            "ts": levee_model::timefmt::rfc3339_millis(now_ms),
            "totals": totals,
            "engine": engine,
            "exporters": exporters,
        });
        let p = self.state_dir.join(EXPORTERS_FILE);
        if let Err(e) = write_atomic(&p, &status.to_string()) {
            tracing::warn!("cannot write {}: {e}", p.display());
        }
        let p = self.state_dir.join(TEMPLATES_FILE);
        if let Err(e) = write_atomic(&p, &snapshot.to_json()) {
            tracing::warn!("cannot write {}: {e}", p.display());
        }
        tracing::info!(
            datagrams = totals.datagrams,
            records = totals.records,
            decode_errors = totals.decode_errors,
            unknown_templates = totals.unknown_templates,
            active_ips = engine.active_ips,
            "flow collector"
        );
    }
}

impl TickSource for NetTicks {
    fn tick(&mut self) -> TickResult {
        let now = (self.clock)();
        let targets = self
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick(now);
        let obs = self.last_ms.map(|last| TickObservation {
            unix_ms: now,
            dt: (now - last).max(1) as f64 / 1000.0,
            targets,
            ..TickObservation::default()
        });
        self.last_ms = Some(now);
        if now - self.last_status_ms >= STATUS_EVERY.as_millis() as i64 {
            self.last_status_ms = now;
            self.write_status(now);
        }
        let (interfaces, errors) = match &self.input {
            Input::Flow(_) => (Vec::new(), Vec::new()),
            Input::Mirror {
                interface, error, ..
            } => (
                vec![interface.clone()],
                error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .map(|e| vec![("mirror capture".to_string(), e)])
                    .unwrap_or_default(),
            ),
        };
        TickResult {
            obs,
            renames: Vec::new(),
            interfaces,
            errors,
        }
    }
}

impl Drop for NetTicks {
    /// Stops and waits for the threads (the agent has normally raised the
    /// flag already), and saves the template cache one last time.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.write_status((self.clock)());
        match std::mem::replace(
            &mut self.input,
            Input::Mirror {
                interface: String::new(),
                thread: None,
                error: Arc::default(),
            },
        ) {
            Input::Flow(l) => l.join(),
            Input::Mirror { thread, .. } => {
                if let Some(t) = thread {
                    let _ = t.join();
                }
            }
        }
    }
}

/// The agent's clock, for the threads of these modes.
pub fn wall_clock() -> i64 {
    unix_now_ms()
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Listen(#[from] levee_flowd::ListenError),
    #[error("cannot start the mirror capture thread: {0}")]
    Mirror(std::io::Error),
    #[error("agent.mode is host: nothing to start for flow or mirror mode")]
    HostMode,
}

/// Starts flow or mirror mode as configured: the tick source for the
/// agent's loop and the enricher that classifies its incidents.
pub fn start(
    cfg: &crate::AgentConfig,
    stop: &Arc<AtomicBool>,
) -> Result<(NetTicks, NetEnricher), StartError> {
    let n = &cfg.netmode;
    let engine = Arc::new(Mutex::new(Engine::new(n.networks.clone(), wall_clock())));
    let ticks = match n.mode {
        Mode::Host => return Err(StartError::HostMode),
        Mode::Flow => NetTicks::flow(
            n,
            &cfg.state_dir,
            Arc::clone(&engine),
            Arc::clone(stop),
            wall_clock,
        )?,
        Mode::Mirror => {
            let iface = n.mirror.interface.clone().unwrap_or_default();
            let opener = mirror::afpacket(iface.clone(), n.mirror.promiscuous, n.mirror.snaplen);
            NetTicks::mirror(
                &iface,
                n.mirror.budget_pps,
                opener,
                &cfg.state_dir,
                Arc::clone(&engine),
                Arc::clone(stop),
                wall_clock,
            )
            .map_err(StartError::Mirror)?
        }
    };
    Ok((ticks, NetEnricher::new(engine)))
}
