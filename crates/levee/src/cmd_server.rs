//! `levee server`: flags, config, and the server until SIGTERM/SIGINT.

use anyhow::Context;
use clap::Args;
use levee_server::{Overrides, ServerConfig, Started};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Config file (TOML; every key is documented in examples/server.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on (HTTPS). Default 0.0.0.0:8443.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the TLS certificate.
    /// Default /var/lib/levee-server as root, else ~/.local/state/levee-server.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL instead of SQLite, e.g. postgres://levee:secret@db/levee.
    #[arg(
        long,
        value_name = "URL",
        env = "LEVEE_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Serve this certificate chain (PEM) instead of a generated one.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The URL agents use to reach this server (shown in enrollment commands).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

/// What `levee server` and `levee up` print once the server listens.
pub fn announce(s: &Started, data_dir: &std::path::Path) {
    println!("levee server listening on {} ({})", s.url, s.backend.name());
    println!("data dir:    {}", data_dir.display());
    println!(
        "certificate: {}{}",
        s.cert_path.display(),
        if s.generated_cert {
            " (generated now, self-signed)"
        } else {
            ""
        }
    );
    println!("fingerprint: {}", s.fingerprint);
    if let Some(b) = &s.bootstrap {
        println!(
            "admin token for tenant `{}` user `{}` (shown once, keep it): {}",
            b.tenant, b.user, b.token
        );
    }
}

pub fn run(a: ServerArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: a.listen,
        data_dir: a.data_dir,
        database_url: a.database_url,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        public_url: a.public_url,
    };
    let cfg = ServerConfig::load(a.config.as_deref(), &overrides)?;
    if a.print_config {
        let mut shown = cfg.clone();
        shown.database_url = shown
            .database_url
            .as_deref()
            .map(levee_server::store::redact);
        println!("{shown:#?}");
        return Ok(());
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    let data_dir = cfg.data_dir.clone();
    rt.block_on(levee_server::run(cfg, shutdown_signal(), |s| {
        announce(s, &data_dir)
    }))?;
    tracing::info!("levee server stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("stopping");
}
