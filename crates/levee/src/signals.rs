//! Signal handling: SIGTERM/SIGINT raise a stop flag and wake the main thread,
//! so a sleeping loop stops at once and still saves its state; SIGHUP raises a
//! reload flag the loop checks at its next tick.

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags the signal thread raises.
pub struct Flags {
    pub stop: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
}

pub fn install() -> anyhow::Result<Flags> {
    let flags = Flags {
        stop: Arc::new(AtomicBool::new(false)),
        reload: Arc::new(AtomicBool::new(false)),
    };
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let main = std::thread::current();
    let stop = flags.stop.clone();
    let reload = flags.reload.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    reload.store(true, Ordering::SeqCst);
                    continue;
                }
                stop.store(true, Ordering::SeqCst);
                main.unpark();
                break;
            }
        })
        .context("starting the signal thread")?;
    Ok(flags)
}

/// Only the stop flag (commands without a reload).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    Ok(install()?.stop)
}
