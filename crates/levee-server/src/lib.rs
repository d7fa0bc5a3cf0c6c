//! The Levee server: the control plane agents report to.
//!
//! - [`api`]: the HTTP API under `/api/v1` (axum), its OpenAPI document
//!   (utoipa, generated from the handlers), `/healthz` and `/metrics`;
//! - [`store`]: SQLite or PostgreSQL through one set of queries;
//! - [`ingest`]: telemetry group commits and event effects;
//! - [`auth`]: secrets, passwords, the identity cache, rate limits;
//! - [`correlate`]: cross-node correlation (pure);
//! - [`jobs`]: singleton jobs (liveness, correlation, downsampling,
//!   retention) run by one leader among replicas;
//! - [`bgp`]: BGP escalation per tenant, run by the jobs leader;
//! - [`tls`] and [`serve`]: the HTTPS listener.
//!
//! The `levee server` command is [`run`]; tests build a [`Server`] and use
//! its router in-process or serve it on a loopback port.

pub mod api;
pub mod auth;
pub mod background;
pub mod bgp;
pub mod config;
pub mod correlate;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod serve;
pub mod store;
pub mod tls;

pub use config::{ConfigError, Overrides, ServerConfig};
pub use store::{Backend, Store, StoreError};

use auth::{IdentityCache, Limiter};
use ingest::writer::TelemetryWriter;
use levee_proto::Fingerprint;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Everything a request handler may use.
pub struct AppInner {
    pub store: Store,
    pub cfg: ServerConfig,
    pub metrics: Arc<metrics::Metrics>,
    pub cache: IdentityCache,
    pub limiter: Limiter,
    pub writer: TelemetryWriter,
    /// The certificate fingerprint agents pin (shown in enrollment hints).
    pub fingerprint: Option<Fingerprint>,
    /// Nodes with unacknowledged commands (refreshed by the jobs loop).
    pub pending_commands: RwLock<HashSet<i64>>,
    /// Policy version per tenant (refreshed by the jobs loop).
    pub policy_versions: RwLock<HashMap<i64, u64>>,
    /// Whether this replica is the jobs leader (set by the jobs loop; the
    /// BGP engines announce only while it is true).
    pub leader: std::sync::atomic::AtomicBool,
}

pub type AppState = Arc<AppInner>;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot create data dir {path}: {source} (choose another with --data-dir)")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("BGP: {0}")]
    Bgp(String),
    #[error("cannot listen on {addr}: {source} (choose another address with --listen)")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the first start made: the system tenant's admin token (shown once).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant: String,
    pub user: String,
    pub token: String,
}

/// An opened server: database migrated, TLS identity ready.
pub struct Server {
    pub state: AppState,
    pub tls: Option<tls::TlsMaterial>,
    pub bootstrap: Option<Bootstrap>,
    writer_task: tokio::task::JoinHandle<()>,
    checkpoint_task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the database (migrating it), makes the system tenant and its
    /// admin token on first start, and loads or generates the TLS identity.
    /// Must run inside a tokio runtime.
    pub async fn open(cfg: ServerConfig) -> Result<Server, ServerError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|source| ServerError::DataDir {
            path: cfg.data_dir.clone(),
            source,
        })?;
        let store = match cfg.database_url.as_deref() {
            Some(url) if url.starts_with("sqlite:") => {
                Store::open_sqlite_url(url, cfg.db_connections).await?
            }
            Some(url) => Store::open_postgres(url, cfg.db_connections).await?,
            None => Store::open_sqlite(&cfg.sqlite_path(), cfg.db_connections).await?,
        };
        let tls = tls::load_or_generate(
            cfg.tls_cert.as_deref(),
            cfg.tls_key.as_deref(),
            &cfg.data_dir,
            &cfg.tls_names,
        )?;
        Self::with_store(cfg, store, Some(tls)).await
    }

    /// A server over an open store; `tls` `None` for in-process use only.
    pub async fn with_store(
        cfg: ServerConfig,
        store: Store,
        tls: Option<tls::TlsMaterial>,
    ) -> Result<Server, ServerError> {
        let bootstrap = bootstrap(&store).await?;
        let metrics = Arc::new(metrics::Metrics::new());
        let writers = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => (cfg.db_connections as usize / 2).clamp(1, 4),
        };
        let (writer, writer_task) = TelemetryWriter::spawn(store.clone(), metrics.clone(), writers);
        let checkpoint_task = tokio::spawn(checkpoints(store.clone()));
        let state = Arc::new(AppInner {
            limiter: Limiter::new(cfg.auth_failures_per_minute, cfg.logins_per_minute),
            cache: IdentityCache::new(Duration::from_secs(30), 200_000),
            fingerprint: tls.as_ref().map(|t| t.fingerprint),
            pending_commands: RwLock::new(HashSet::new()),
            policy_versions: RwLock::new(HashMap::new()),
            leader: std::sync::atomic::AtomicBool::new(false),
            store,
            cfg,
            metrics,
            writer,
        });
        jobs::refresh_caches(&state).await?;
        Ok(Server {
            state,
            tls,
            bootstrap,
            writer_task,
            checkpoint_task,
        })
    }

    /// The API as a service (for in-process tests and for [`serve`]).
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// The URL agents should use.
    pub fn public_url(&self, local: std::net::SocketAddr) -> String {
        self.state
            .cfg
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(local))
    }

    /// Stops the writer and closes the database.
    pub async fn close(self) {
        self.writer_task.abort();
        self.checkpoint_task.abort();
        self.state.store.close().await;
    }
}

/// `https://<host>:<port>`, with the host name for a wildcard listen address.
pub fn default_public_url(local: std::net::SocketAddr) -> String {
    let host = if local.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    format!("https://{host}:{}", local.port())
}

/// Checkpoints SQLite's WAL every second, off the writer's path.
async fn checkpoints(store: Store) {
    if store.backend() != Backend::Sqlite {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = store.checkpoint().await {
            tracing::warn!("{e}");
        }
    }
}

async fn bootstrap(store: &Store) -> Result<Option<Bootstrap>, StoreError> {
    if store.tenant_count().await? > 0 {
        return Ok(None);
    }
    let Some((tenant, user_id)) = store.create_tenant("default", "admin").await? else {
        // Another replica bootstrapped at the same moment: it printed the token.
        return Ok(None);
    };
    let token = auth::new_secret(auth::API_TOKEN_PREFIX);
    store
        .create_api_token(
            tenant.id,
            user_id,
            "bootstrap",
            &auth::hash_secret(&token),
            None,
        )
        .await?;
    Ok(Some(Bootstrap {
        tenant: tenant.name,
        user: "admin".into(),
        token,
    }))
}

/// How [`run`] reports that it is up.
#[derive(Debug, Clone)]
pub struct Started {
    pub local_addr: std::net::SocketAddr,
    pub url: String,
    pub fingerprint: Fingerprint,
    pub cert_path: std::path::PathBuf,
    pub generated_cert: bool,
    pub backend: Backend,
    pub bootstrap: Option<Bootstrap>,
}

/// Opens and serves until `shutdown` resolves: the HTTPS listener and the
/// jobs loop. `on_started` runs once the socket listens.
pub async fn run(
    cfg: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_started: impl FnOnce(&Started) + Send,
) -> Result<(), ServerError> {
    let server = Server::open(cfg).await?;
    // Engines load their ROAs and open their audit logs now, so a bad
    // [[bgp.tenant]] stops the start with its name.
    let (tenants, data_dir) = (
        server.state.cfg.bgp.tenants.clone(),
        server.state.cfg.data_dir.clone(),
    );
    let engines =
        tokio::task::spawn_blocking(move || bgp::service::build_engines(&tenants, &data_dir))
            .await
            .map_err(|e| ServerError::Bgp(e.to_string()))?
            .map_err(ServerError::Bgp)?;
    let listener = tokio::net::TcpListener::bind(server.state.cfg.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: server.state.cfg.listen,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: server.state.cfg.listen,
            source,
        })?;
    let tls = server.tls.clone().expect("Server::open always loads TLS");
    on_started(&Started {
        local_addr,
        url: server.public_url(local_addr),
        fingerprint: tls.fingerprint,
        cert_path: tls.cert_path.clone(),
        generated_cert: tls.generated,
        backend: server.state.store.backend(),
        bootstrap: server.bootstrap.clone(),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = tokio::spawn(jobs::run(server.state.clone(), stop_rx.clone()));
    let bgp = tokio::spawn(bgp::service::run(
        server.state.clone(),
        engines,
        stop_rx.clone(),
    ));
    let serving = serve::serve(listener, tls.config.clone(), server.router(), stop_rx);
    tokio::pin!(serving);
    tokio::select! {
        r = &mut serving => { r.ok(); }
        () = shutdown => {
            let _ = stop_tx.send(true);
            // Give open requests a moment to finish.
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut serving).await;
        }
    }
    let _ = stop_tx.send(true);
    // The BGP engines withdraw while the database is still open.
    let _ = bgp.await;
    let _ = jobs.await;
    server.close().await;
    Ok(())
}
