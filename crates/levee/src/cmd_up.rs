//! `levee up`: the all-in-one for a first try. A server with SQLite in a
//! local data dir, and an agent on this host enrolled into it, in one
//! process. Prints the URL, the certificate fingerprint and an admin token;
//! the agent's events follow on stdout as JSON lines.

use anyhow::Context;
use clap::Args;
use levee_agent::config::parse_cli_duration;
use levee_agent::{AgentConfig, Overrides};
use levee_server::background::BackgroundServer;
use levee_server::ServerConfig;
use levee_uplink::pin::{client_config, PinVerifier, Trust};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the server's database and certificate and the agent's state live.
    /// Default /var/lib/levee/up as root, else ~/.local/state/levee/up.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the server (HTTPS). Use 0.0.0.0:8443 to let other agents in.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Interface for the agent to watch (repeatable). Default: all but loopback.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    interfaces: Vec<String>,
    /// The agent's counter read interval (default 1s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    tick: Option<Duration>,
    /// The agent's learning phase (default 300s).
    #[arg(long, value_name = "DURATION", value_parser = parse_cli_duration)]
    baseline_warmup: Option<Duration>,
    /// The agent's node name (default: the host name).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Counters only: no packet sampler.
    #[arg(long)]
    no_capture: bool,
}

fn default_dir() -> PathBuf {
    levee_agent::config::default_state_dir().join("up")
}

/// An API token for the system tenant's admin, minted for this run (the
/// first start's bootstrap token is only shown once).
fn admin_token(cfg: &ServerConfig) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    rt.block_on(async {
        let store = levee_server::Store::open_sqlite(&cfg.sqlite_path(), 1).await?;
        let (tenant, user, _) = store
            .login_lookup("default", "admin")
            .await?
            .context("the server has no `default` tenant with an `admin` user")?;
        let token = levee_server::auth::new_secret(levee_server::auth::API_TOKEN_PREFIX);
        let expires = levee_server::store::now_ms() + 30 * 86_400_000;
        store
            .create_api_token(
                tenant,
                user,
                "levee up",
                &levee_server::auth::hash_secret(&token),
                Some(expires),
            )
            .await?;
        store.close().await;
        Ok::<_, anyhow::Error>(token)
    })
}

/// A one-time enrollment token, asked of the server's API like an operator would.
fn enrollment_token(
    url: &str,
    fp: levee_proto::Fingerprint,
    admin: &str,
) -> anyhow::Result<String> {
    let http = reqwest::blocking::Client::builder()
        .use_preconfigured_tls(client_config(Arc::new(PinVerifier::new(Trust::Pinned(fp)))))
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = http
        .post(format!("{url}/api/v1/enrollment-tokens"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"expires_in": "10m"}))
        .send()
        .with_context(|| format!("asking {url} for an enrollment token"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "{url} refused an enrollment token: {status} {body}"
    );
    body["token"]
        .as_str()
        .map(str::to_string)
        .context("the enrollment answer has no token")
}

pub fn run(a: UpArgs) -> anyhow::Result<()> {
    let dir = a.data_dir.unwrap_or_else(default_dir);
    let server_dir = dir.join("server");
    let agent_dir = dir.join("agent");
    let cfg = ServerConfig {
        listen: a.listen,
        data_dir: server_dir.clone(),
        ..Default::default()
    };
    let server = BackgroundServer::start(cfg.clone(), 2)
        .with_context(|| format!("starting the server on {}", a.listen))?;
    let s = server.started.clone();
    let url = if a.listen.ip().is_unspecified() {
        s.url.clone()
    } else {
        format!("https://{}", s.local_addr)
    };
    let admin = admin_token(&cfg)?;
    let enrolled = levee_uplink::Credentials::load(&agent_dir).is_ok();
    let enroll = if enrolled {
        None
    } else {
        Some(enrollment_token(&url, s.fingerprint, &admin)?)
    };
    banner(&url, &s, &admin, &dir);
    let overrides = Overrides {
        node: a.node,
        interfaces: a.interfaces,
        tick: a.tick,
        baseline_warmup: a.baseline_warmup,
        state_dir: Some(agent_dir),
        no_capture: a.no_capture,
        server: Some(url),
        server_fingerprint: Some(s.fingerprint),
        ..Default::default()
    };
    let agent_cfg = AgentConfig::from_parts(None, None, &overrides)?;
    let result = crate::cmd_agent::run_agent(agent_cfg, enroll.as_deref());
    server.stop().context("stopping the server")?;
    result
}

fn banner(url: &str, s: &levee_server::Started, admin: &str, dir: &Path) {
    eprintln!();
    eprintln!("Levee is up: a server and an agent on this host.");
    eprintln!("  server:       {url}   (API /api/v1, OpenAPI /api/v1/openapi.json, /metrics)");
    eprintln!("  fingerprint:  {}", s.fingerprint);
    eprintln!("  admin token:  {admin}   (valid 30 days)");
    eprintln!("  try:          curl -sk -H 'Authorization: Bearer {admin}' {url}/api/v1/nodes");
    eprintln!("  data dir:     {}", dir.display());
    eprintln!("  stop:         Ctrl-C (the agent's events follow on stdout)");
    eprintln!();
}
