//! One thread per tenant engine. `BgpEngine` is synchronous and its
//! speaker runs commands (`gobgp`, `birdc`, `vtysh`) or provider HTTP
//! calls that take milliseconds to seconds, so it lives on its own thread
//! and the async side sends it closures and awaits their answers.

use levee_bgp::engine::BgpEngine;
use std::sync::mpsc;

type Job = Box<dyn FnOnce(&mut BgpEngine) + Send>;

/// The handle of an engine's thread; the thread ends when it is dropped.
pub struct EngineHandle {
    tx: mpsc::Sender<Job>,
}

impl EngineHandle {
    /// Moves `engine` onto a thread named `bgp-<tenant>`.
    pub fn spawn(tenant: &str, mut engine: BgpEngine) -> std::io::Result<EngineHandle> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("bgp-{tenant}"))
            .spawn(move || {
                for job in rx {
                    job(&mut engine);
                }
            })?;
        Ok(EngineHandle { tx })
    }

    /// Runs `f` on the engine's thread; `None` if the thread is gone (it
    /// panicked).
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut BgpEngine) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |e| {
                let _ = tx.send(f(e));
            }))
            .ok()?;
        rx.await.ok()
    }
}
