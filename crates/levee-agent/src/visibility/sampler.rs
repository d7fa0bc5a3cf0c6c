//! The capture thread of one interface: sampled frames from a
//! [`PacketSource`] into the interface's [`FeatureWindows`] and pcap ring.
//!
//! The thread owns the source and the sampling controller; what the agent
//! loop reads (windows, ring, counters, the last error) sits behind one mutex
//! in [`Shared`]. The lock is taken once per batch, when the first frame of a
//! ready block arrives, never while waiting for one, so the agent loop is not
//! held up by a quiet link.
//!
//! A source that fails (interface gone, permission denied) is reopened every
//! [`REOPEN_EVERY`] until the agent stops; the error stays in [`Shared`] for
//! the agent to report.

use super::windows::{FeatureWindows, WindowConfig};
use levee_capture::ControllerConfig;
use levee_capture::{
    AfPacketConfig, AfPacketSource, CaptureError, KernelStats, PacketSource, PcapRing, RingConfig,
    SamplingController,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a failed source waits before it is reopened.
pub const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// How often the sampling rate is reconsidered. Short, so that a flood
/// starting at line rate is brought down to the budget within a few hundred
/// ms (each step may raise N 16-fold).
const CONTROL_EVERY: Duration = Duration::from_millis(200);

/// Frames the pcap ring takes per 100 ms: a twentieth of its capacity, so
/// it always reaches at least 2 s back. Without this a flood fills a
/// 10,000-frame ring in under half a second and the incident pcap, written
/// ~300 ms into the attack, would hold nothing from before it.
#[derive(Debug, Clone)]
pub struct RingAdmission {
    per_slot: u32,
    slot: u64,
    taken: u32,
}

const SLOT_NS: u64 = 100_000_000;

impl RingAdmission {
    pub fn new(capacity: usize) -> Self {
        RingAdmission {
            per_slot: u32::try_from(capacity / 20).unwrap_or(u32::MAX).max(1),
            slot: 0,
            taken: 0,
        }
    }

    /// Whether a frame captured at `ts_ns` goes into the ring.
    pub fn admit(&mut self, ts_ns: u64) -> bool {
        let slot = ts_ns / SLOT_NS;
        if slot != self.slot {
            self.slot = slot;
            self.taken = 0;
        }
        if self.taken < self.per_slot {
            self.taken += 1;
            true
        } else {
            false
        }
    }
}

/// What the agent loop reads, behind the mutex.
#[derive(Debug)]
pub struct Shared {
    pub windows: FeatureWindows,
    /// `None` when pcaps are off (`ring_packets = 0`).
    pub ring: Option<PcapRing>,
    /// Sampling rate N in force.
    pub rate: u32,
    pub kernel: KernelStats,
    /// The source's last failure, cleared when it works again.
    pub error: Option<String>,
}

/// Parameters of one capture thread.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interface: String,
    pub snaplen: u32,
    pub budget_pps: f64,
    pub ring_packets: usize,
    pub window: WindowConfig,
}

/// A running capture thread.
#[derive(Debug)]
pub struct Sampler {
    pub interface: String,
    shared: Arc<Mutex<Shared>>,
    handle: Option<JoinHandle<()>>,
}

/// Opens a source for the interface (the live one in production).
pub type Opener =
    Box<dyn FnMut(&SamplerConfig) -> Result<Box<dyn PacketSource>, CaptureError> + Send>;

/// The production opener: AF_PACKET with TPACKET_V3 and a small ring (2 MiB:
/// at the default budget of 20k sampled packets of 256 bytes a second it
/// holds over 300 ms, six block timeouts).
pub fn afpacket_opener() -> Opener {
    Box::new(|c: &SamplerConfig| {
        let mut a = AfPacketConfig::new(c.interface.clone());
        a.snaplen = c.snaplen;
        a.block_size = 1 << 18;
        a.block_count = 8;
        let src = AfPacketSource::open(a)?;
        Ok(Box::new(src) as Box<dyn PacketSource>)
    })
}

impl Sampler {
    /// Starts the thread; it runs until `stop` is raised.
    pub fn spawn(
        cfg: SamplerConfig,
        mut open: Opener,
        stop: Arc<AtomicBool>,
        now_ns: u64,
    ) -> std::io::Result<Sampler> {
        let shared = Arc::new(Mutex::new(Shared {
            windows: FeatureWindows::new(cfg.window.clone(), now_ns),
            ring: (cfg.ring_packets > 0).then(|| {
                PcapRing::new(RingConfig {
                    capacity: cfg.ring_packets,
                    snaplen: cfg.snaplen as usize,
                })
            }),
            rate: 1,
            kernel: KernelStats::default(),
            error: None,
        }));
        let interface = cfg.interface.clone();
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("capture-{interface}"))
            .spawn(move || run(&cfg, &mut open, &s, &stop))?;
        Ok(Sampler {
            interface,
            shared,
            handle: Some(handle),
        })
    }

    /// The shared state (a poisoned lock is still usable: every update is
    /// a whole batch, and a panic mid-batch loses at most that batch).
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the thread after the stop flag was raised.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!(interface = %self.interface, "capture thread panicked");
            }
        }
    }
}

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(cfg: &SamplerConfig, open: &mut Opener, shared: &Mutex<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match open(cfg) {
            Ok(src) => {
                lock(shared).error = None;
                tracing::info!(interface = %cfg.interface, "packet sampler started");
                match capture(cfg, src, shared, stop) {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(interface = %cfg.interface, "packet sampler: {e}");
                        lock(shared).error = Some(e.to_string());
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                let mut g = lock(shared);
                if g.error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(interface = %cfg.interface, "packet sampler: {text}");
                }
                g.error = Some(text);
            }
        }
        let until = Instant::now() + REOPEN_EVERY;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads batches until `stop` (Ok) or a source error. A replayed source that
/// ends also returns Ok: there is nothing more to read.
fn capture(
    cfg: &SamplerConfig,
    mut src: Box<dyn PacketSource>,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
) -> Result<(), CaptureError> {
    let mut ctl = SamplingController::new(ControllerConfig {
        budget_pps: cfg.budget_pps,
        ..ControllerConfig::default()
    });
    src.set_sampling_rate(ctl.rate())?;
    let mut admission = RingAdmission::new(cfg.ring_packets);
    let mut since = Instant::now();
    let mut frames_since = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let rate = src.sampling_rate();
        let mut guard: Option<MutexGuard<'_, Shared>> = None;
        let stats = src.next_batch(&mut |frame| {
            let g = guard.get_or_insert_with(|| lock(shared));
            if let Some(ring) = g.ring.as_mut() {
                if admission.admit(frame.ts_ns) {
                    ring.push(&frame, rate);
                }
            }
            match frame.decode() {
                Ok(meta) => g.windows.observe(frame.ts_ns, &meta, rate),
                Err(e) => g.windows.count_error(&e),
            }
        })?;
        let g = guard.get_or_insert_with(|| lock(shared));
        g.kernel = stats.kernel;
        g.rate = rate;
        drop(guard);
        frames_since += stats.frames;
        if stats.end_of_stream {
            return Ok(());
        }
        let elapsed = since.elapsed();
        if elapsed >= CONTROL_EVERY {
            let pps = frames_since as f64 / elapsed.as_secs_f64();
            let next = ctl.observe(pps);
            if next != src.sampling_rate() {
                tracing::debug!(interface = %cfg.interface, rate = next, "sampling rate");
                src.set_sampling_rate(next)?;
            }
            since = Instant::now();
            frames_since = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_admission_caps_each_100ms_slot() {
        let mut a = RingAdmission::new(10_000);
        let base = 1_795_225_450 * 1_000_000_000;
        let taken = (0..2_000u64).filter(|i| a.admit(base + i * 10)).count();
        assert_eq!(taken, 500, "a twentieth of the capacity per slot");
        assert!(a.admit(base + SLOT_NS), "the next slot starts afresh");
        let mut tiny = RingAdmission::new(5);
        assert!(tiny.admit(0));
        assert!(!tiny.admit(1));
    }
}
