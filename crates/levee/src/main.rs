//! The `levee` command: parses flags, sets up logging and signals, and hands
//! over to the libraries. Subcommands live in their own modules.

mod cmd_agent;
mod cmd_audit;
mod cmd_flow;
mod cmd_flowspec;
mod cmd_mitigate;
mod cmd_pcap;
mod cmd_server;
mod cmd_up;
mod cmd_watch;
mod signals;
mod uplink_glue;

use clap::{Parser, Subcommand};
use is_terminal::IsTerminal;

/// Levee detects DDoS attacks on Linux servers in under a second and says what
/// they are. Events are JSON lines on stdout; logs go to stderr.
#[derive(Parser)]
#[command(name = "levee", version, about, propagate_version = true)]
struct Cli {
    /// Log filter for stderr, e.g. `info`, `debug`, `levee_agent=debug`.
    #[arg(long, global = true, env = "LEVEE_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the detection agent on this host: learn baselines, print incidents.
    Agent(cmd_agent::AgentArgs),
    /// Live per-interface packet and bit rates, protocol mix and connections.
    Watch(cmd_watch::WatchArgs),
    /// Work with packet captures offline.
    #[command(subcommand)]
    Pcap(cmd_pcap::PcapCommand),
    /// Work with flow exports (sFlow, NetFlow, IPFIX) offline.
    #[command(subcommand)]
    Flow(cmd_flow::FlowCommand),
    /// Preview, apply or clean up on-node mitigation rules.
    #[command(subcommand)]
    Mitigate(cmd_mitigate::MitigateCommand),
    /// Check the mitigation audit log.
    #[command(subcommand)]
    Audit(cmd_audit::AuditCommand),
    /// Build BGP FlowSpec rules (ExaBGP, GoBGP, BIRD, Junos, IOS-XR syntax).
    #[command(subcommand)]
    Flowspec(cmd_flowspec::FlowspecCommand),
    /// Run the Levee server: REST API, agent ingest, storage, correlation.
    Server(cmd_server::ServerArgs),
    /// Server and agent on this host in one go (SQLite, self-signed TLS): the quickest start.
    Up(cmd_up::UpArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Agent(a) => cmd_agent::run(a),
        Command::Watch(w) => cmd_watch::run(w),
        Command::Pcap(p) => cmd_pcap::run(p),
        Command::Flow(f) => cmd_flow::run(f),
        Command::Mitigate(m) => cmd_mitigate::run(m),
        Command::Audit(a) => cmd_audit::run(a),
        Command::Flowspec(f) => cmd_flowspec::run(f),
        Command::Server(s) => cmd_server::run(s),
        Command::Up(u) => cmd_up::run(u),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("levee: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
