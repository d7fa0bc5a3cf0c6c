//! A server on its own thread and runtime, for `levee up` (server and agent
//! in one process) and for tests that need a real HTTPS endpoint.

use crate::{ServerConfig, ServerError, Started};
use std::sync::mpsc;
use std::time::Duration;

pub struct BackgroundServer {
    pub started: Started,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl std::fmt::Debug for BackgroundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundServer")
            .field("url", &self.started.url)
            .finish()
    }
}

impl BackgroundServer {
    /// Starts the server with `threads` worker threads and returns once it listens.
    pub fn start(cfg: ServerConfig, threads: usize) -> Result<BackgroundServer, ServerError> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<Started>();
        let thread = std::thread::Builder::new()
            .name("levee-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
                    .thread_name("levee-server-worker")
                    .enable_all()
                    .build()
                    .map_err(|source| ServerError::DataDir {
                        path: "(tokio runtime)".into(),
                        source,
                    })?;
                rt.block_on(crate::run(
                    cfg,
                    async move {
                        let _ = stop_rx.await;
                    },
                    move |s| {
                        let _ = ready_tx.send(s.clone());
                    },
                ))
            })
            .map_err(|source| ServerError::DataDir {
                path: "(server thread)".into(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(started) => Ok(BackgroundServer {
                started,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            // The thread ended before listening: its result says why.
            Err(_) => {
                Err(thread
                    .join()
                    .unwrap_or(Ok(()))
                    .err()
                    .unwrap_or_else(|| ServerError::DataDir {
                        path: "(server thread)".into(),
                        source: std::io::Error::other("the server stopped before it listened"),
                    }))
            }
        }
    }

    /// Stops the server and waits for it (up to about 10 s).
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => {
                let deadline = std::time::Instant::now() + Duration::from_secs(15);
                while !t.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                t.join().unwrap_or(Ok(()))
            }
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
