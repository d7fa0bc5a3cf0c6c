//! Mirror mode's capture thread: sampled frames of the SPAN interface
//! (levee-capture's AF_PACKET source, promiscuous, kernel-side 1-in-N
//! sampling steered to a packets/s budget) decoded and fed to the per-IP
//! [`Engine`], each with the sampling rate it was taken at.
//!
//! The engine lock is taken once per batch. A source that fails is reopened
//! every [`REOPEN_EVERY`] until the agent stops; its error is kept for the
//! agent to report as a `source_error`.

use super::engine::Engine;
use crate::visibility::sampler::REOPEN_EVERY;
use levee_capture::{
    AfPacketConfig, AfPacketSource, CaptureError, ControllerConfig, PacketSource,
    SamplingController,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the sampling rate is reconsidered.
const CONTROL_EVERY: Duration = Duration::from_millis(200);

/// Opens the packet source (AF_PACKET in production, a pcap in tests).
pub type MirrorOpener = Box<dyn FnMut() -> Result<Box<dyn PacketSource>, CaptureError> + Send>;

/// The production opener.
pub fn afpacket(interface: String, promiscuous: bool, snaplen: u32) -> MirrorOpener {
    Box::new(move || {
        let mut c = AfPacketConfig::new(interface.clone());
        c.promiscuous = promiscuous;
        c.snaplen = snaplen;
        c.block_size = 1 << 18;
        c.block_count = 8;
        Ok(Box::new(AfPacketSource::open(c)?) as Box<dyn PacketSource>)
    })
}

/// Starts the capture thread; `error` holds its current failure.
pub fn spawn(
    interface: String,
    budget_pps: u32,
    mut open: MirrorOpener,
    engine: Arc<Mutex<Engine>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    clock: fn() -> i64,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("mirror-{interface}"))
        .spawn(move || {
            let set_error = |e: Option<String>| {
                *error.lock().unwrap_or_else(PoisonError::into_inner) = e;
            };
            while !stop.load(Ordering::Relaxed) {
                match open() {
                    Ok(src) => {
                        set_error(None);
                        tracing::info!(interface = %interface, "mirror capture started");
                        match capture(src, budget_pps, &engine, &stop, clock) {
                            Ok(()) => return,
                            Err(e) => {
                                set_error(Some(format!("mirror capture on {interface}: {e}")))
                            }
                        }
                    }
                    Err(e) => set_error(Some(format!("mirror capture on {interface}: {e}"))),
                }
                let until = Instant::now() + REOPEN_EVERY;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
}

fn capture(
    mut src: Box<dyn PacketSource>,
    budget_pps: u32,
    engine: &Mutex<Engine>,
    stop: &AtomicBool,
    clock: fn() -> i64,
) -> Result<(), CaptureError> {
    let mut ctl = SamplingController::new(ControllerConfig {
        budget_pps: f64::from(budget_pps),
        ..ControllerConfig::default()
    });
    src.set_sampling_rate(ctl.rate())?;
    let mut since = Instant::now();
    let mut frames_since = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let rate = src.sampling_rate();
        // The engine's clock is the agent's (wall ms); frames arrive now.
        let now = clock();
        let mut guard = None;
        let stats = src.next_batch(&mut |frame| {
            if let Ok(meta) = frame.decode() {
                let g = guard
                    .get_or_insert_with(|| engine.lock().unwrap_or_else(PoisonError::into_inner));
                g.observe_packet(now, &meta, rate);
            }
        })?;
        drop(guard);
        frames_since += stats.frames;
        if stats.end_of_stream {
            return Ok(());
        }
        let elapsed = since.elapsed();
        if elapsed >= CONTROL_EVERY {
            let next = ctl.observe(frames_since as f64 / elapsed.as_secs_f64());
            if next != src.sampling_rate() {
                src.set_sampling_rate(next)?;
            }
            since = Instant::now();
            frames_since = 0;
        }
    }
    Ok(())
}
