//! The UDP edge: sockets on the configured addresses (sFlow 6343, NetFlow
//! 2055, IPFIX 4739 by default), several per address with SO_REUSEPORT so
//! the kernel spreads exporters over threads (it hashes the 4-tuple, so one
//! exporter stays on one socket and its datagrams stay in order), one thread
//! per socket.
//!
//! Each thread receives into its own buffer, decodes under the shared
//! [`Ingest`] lock, and hands the records to the [`RecordSink`] after
//! releasing it. Threads stop within [`POLL`] of the stop flag.

use crate::ingest::Ingest;
use levee_flow::{DecoderConfig, FlowRecord, Output};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a blocked receive wakes to look at the stop flag.
pub const POLL: Duration = Duration::from_millis(200);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Where records go once decoded.
pub trait RecordSink: Send + Sync {
    /// `flows` were decoded from datagrams received at `now_ms`.
    fn flows(&self, now_ms: i64, flows: &[FlowRecord]);
}

impl<F: Fn(i64, &[FlowRecord]) + Send + Sync> RecordSink for F {
    fn flows(&self, now_ms: i64, flows: &[FlowRecord]) {
        self(now_ms, flows)
    }
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    pub listen: Vec<SocketAddr>,
    /// Sockets (and threads) per address, sharing it with SO_REUSEPORT.
    pub sockets_per_address: usize,
    /// SO_RCVBUF asked for each socket (the kernel caps it at
    /// net.core.rmem_max; what it grants is logged).
    pub recv_buffer: usize,
    /// Exporters counted individually (the rest share one row).
    pub max_exporters: usize,
    pub decoder: DecoderConfig,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], 6343)),
                SocketAddr::from(([0, 0, 0, 0], 2055)),
                SocketAddr::from(([0, 0, 0, 0], 4739)),
            ],
            sockets_per_address: 1,
            recv_buffer: 4 << 20,
            max_exporters: 4_096,
            decoder: DecoderConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on UDP {addr}: {source} (another collector on this port? change flow.listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a listener thread for {addr}: {source}")]
    Thread {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Running listeners.
pub struct Listeners {
    ingest: Arc<Mutex<Ingest>>,
    threads: Vec<JoinHandle<()>>,
    local: Vec<SocketAddr>,
}

fn lock(m: &Mutex<Ingest>) -> MutexGuard<'_, Ingest> {
    // A panic mid-datagram leaves the decoder consistent between datagrams.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn socket_for(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // So that 0.0.0.0:P and [::]:P can both be configured.
        s.set_only_v6(true)?;
    }
    // Best effort: the default (~200 KiB) drops bursts of a busy router.
    // SO_RCVBUF is capped at net.core.rmem_max; with CAP_NET_ADMIN,
    // SO_RCVBUFFORCE is not (socket(7)).
    let _ = s.set_recv_buffer_size(recv_buffer);
    if s.recv_buffer_size().unwrap_or(0) < recv_buffer {
        force_recv_buffer(&s, recv_buffer);
    }
    s.set_read_timeout(Some(POLL))?;
    s.bind(&addr.into())?;
    let granted = s.recv_buffer_size().unwrap_or(0);
    tracing::debug!(%addr, recv_buffer = granted, "flow socket bound");
    Ok(s.into())
}

fn force_recv_buffer(s: &Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on an open socket we own, with a c_int option
    // value of the size we pass; failure (no CAP_NET_ADMIN) is ignored.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl Listeners {
    /// Binds every socket (all or nothing), then starts the threads.
    /// `clock` gives the arrival time in ms since the Unix epoch.
    pub fn start(
        cfg: &ListenConfig,
        ingest: Ingest,
        sink: Arc<dyn RecordSink>,
        stop: Arc<AtomicBool>,
        clock: fn() -> i64,
    ) -> Result<Listeners, ListenError> {
        let mut sockets = Vec::new();
        let mut local = Vec::new();
        for &addr in &cfg.listen {
            let bind = |a: SocketAddr| {
                socket_for(a, cfg.recv_buffer)
                    .map_err(|source| ListenError::Bind { addr: a, source })
            };
            let first = bind(addr)?;
            // Port 0: the others must join the port the first one got.
            let bound = first.local_addr().unwrap_or(addr);
            tracing::info!(addr = %bound, sockets = cfg.sockets_per_address.max(1), "flow listener bound");
            local.push(bound);
            sockets.push((bound, first));
            for _ in 1..cfg.sockets_per_address.max(1) {
                sockets.push((bound, bind(bound)?));
            }
        }
        let ingest = Arc::new(Mutex::new(ingest));
        let mut threads = Vec::new();
        for (i, (addr, sock)) in sockets.into_iter().enumerate() {
            let (ingest, sink, stop) = (Arc::clone(&ingest), Arc::clone(&sink), Arc::clone(&stop));
            let h = std::thread::Builder::new()
                .name(format!("flow-{}-{i}", addr.port()))
                .spawn(move || receive(&sock, &ingest, sink.as_ref(), &stop, clock))
                .map_err(|source| ListenError::Thread { addr, source })?;
            threads.push(h);
        }
        Ok(Listeners {
            ingest,
            threads,
            local,
        })
    }

    /// The addresses bound (with the real port when 0 was configured).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Runs `f` on the shared decoder and counters.
    pub fn with_ingest<T>(&self, f: impl FnOnce(&mut Ingest) -> T) -> T {
        f(&mut lock(&self.ingest))
    }

    /// Waits for the threads (the stop flag must be raised).
    pub fn join(self) {
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a flow listener thread panicked");
            }
        }
    }
}

fn receive(
    sock: &UdpSocket,
    ingest: &Mutex<Ingest>,
    sink: &dyn RecordSink,
    stop: &AtomicBool,
    clock: fn() -> i64,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Output::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!("flow listener receive failed: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let src = canonical(from.ip());
        let data = &buf[..n];
        let now = clock();
        out.clear();
        lock(ingest).datagram(src, now, data, &mut out);
        if !out.flows.is_empty() {
            sink.flows(now, &out.flows);
        }
    }
}

/// IPv4 exporters reaching an IPv6 socket appear as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_canonical(),
        v4 => v4,
    }
}
