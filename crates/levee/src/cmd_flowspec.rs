//! `levee flowspec build`: the FlowSpec rule builder. From flags, or from
//! an incident in the agent's event log (the same rules the BGP engine
//! would announce), print the rule in a speaker's or router's syntax. The
//! gobgp format is a complete `gobgp global rib -a ipv4-flowspec add ...`
//! command line to paste.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ipnet::IpNet;
use levee_bgp::action::Action;
use levee_bgp::flowspec::text::{parse_fragment, parse_protocols, parse_tcp_flags, parse_values};
use levee_bgp::flowspec::{nlri, Afi, FlowPrefix, FlowSpec};
use levee_bgp::render::{render, Format, Op};
use levee_bgp::rule::{FlowRule, Rule};
use levee_mitigate::IncidentView;
use levee_model::{Event, EventBody, IncidentInfo};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum FlowspecCommand {
    /// Print a FlowSpec rule built from flags or from an incident.
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Destination prefix or address (required unless --incident).
    #[arg(long, value_name = "PREFIX", value_parser = parse_net)]
    dst: Option<IpNet>,
    /// Source prefix or address.
    #[arg(long, value_name = "PREFIX", value_parser = parse_net)]
    src: Option<IpNet>,
    /// Protocols: tcp, udp, icmp, icmpv6, gre, esp, sctp or numbers, comma-separated.
    #[arg(long, value_name = "P")]
    protocol: Option<String>,
    /// Destination ports: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    dst_port: Option<String>,
    /// Source ports: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    src_port: Option<String>,
    /// Source or destination ports: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    port: Option<String>,
    /// Exact TCP flag sets as letters (F S R P A U E C), comma-separated: S,SA.
    #[arg(long, value_name = "F")]
    tcp_flags: Option<String>,
    /// Packet lengths: N, N-M, comma-separated.
    #[arg(long, value_name = "RANGE")]
    length: Option<String>,
    /// not-a-fragment, is-fragment, first-fragment, last-fragment, dont-fragment, later-fragments.
    #[arg(long, value_name = "F")]
    fragment: Option<String>,
    /// ICMP types: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    icmp_type: Option<String>,
    /// ICMP codes: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    icmp_code: Option<String>,
    /// DSCP values: N, N-M, comma-separated.
    #[arg(long, value_name = "N")]
    dscp: Option<String>,
    /// discard, rate-limit=BYTES_PER_S, redirect=ASN:N, mark=DSCP (repeatable).
    #[arg(long, value_name = "ACTION", default_value = "discard")]
    action: Vec<Action>,
    /// Build the rules for this incident (from --events).
    #[arg(long, value_name = "ID", conflicts_with_all = ["dst", "src", "protocol", "dst_port", "src_port", "port", "tcp_flags", "length", "fragment", "icmp_type", "icmp_code", "dscp"])]
    incident: Option<String>,
    /// The agent's event log (default: /var/lib/levee/events.jsonl, or the
    /// user state directory's).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// exabgp, gobgp, bird, junos or cisco.
    #[arg(long, default_value = "gobgp")]
    format: Format,
    /// Withdraw instead of announce (exabgp, gobgp, junos, cisco).
    #[arg(long)]
    withdraw: bool,
    /// Also print each rule's NLRI bytes (hex) as a comment.
    #[arg(long)]
    nlri: bool,
}

/// A prefix, or an address meaning its host prefix.
fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is neither a prefix (203.0.113.0/24) nor an address"))
}

pub fn run(cmd: FlowspecCommand) -> anyhow::Result<()> {
    match cmd {
        FlowspecCommand::Build(a) => {
            let rules = if let Some(id) = &a.incident {
                incident_rules(&a, id)?
            } else {
                vec![Rule::Flow(FlowRule {
                    spec: spec_from_flags(&a)?,
                    actions: a.action.clone(),
                })]
            };
            let op = if a.withdraw {
                Op::Withdraw
            } else {
                Op::Announce
            };
            for (i, r) in rules.iter().enumerate() {
                let name = format!("levee-{}", i + 1);
                if a.nlri {
                    if let Rule::Flow(f) = r {
                        let b = nlri::encode(&f.spec).context("encoding the NLRI")?;
                        let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                        println!("# NLRI: {}", hex.join(" "));
                    }
                }
                println!("{}", render(r, a.format, op, &name)?);
            }
            Ok(())
        }
    }
}

fn spec_from_flags(a: &BuildArgs) -> anyhow::Result<FlowSpec> {
    let Some(dst) = a.dst else {
        bail!("--dst PREFIX is required (or --incident ID to build from an incident)");
    };
    let afi = Afi::of(&dst);
    let mut s = FlowSpec::to(dst);
    if let Some(src) = a.src {
        if Afi::of(&src) != afi {
            bail!("--src {src} and --dst {dst} are of different IP versions");
        }
        s.src = Some(FlowPrefix::new(src));
    }
    let vals = |v: &Option<String>, max, what| -> anyhow::Result<_> {
        Ok(match v {
            Some(v) => parse_values(v, max, what).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        })
    };
    if let Some(p) = &a.protocol {
        s.protocol = parse_protocols(p).map_err(anyhow::Error::msg)?;
    }
    s.dst_port = vals(&a.dst_port, 65535, "--dst-port")?;
    s.src_port = vals(&a.src_port, 65535, "--src-port")?;
    s.port = vals(&a.port, 65535, "--port")?;
    s.length = vals(&a.length, 65535, "--length")?;
    s.icmp_type = vals(&a.icmp_type, 255, "--icmp-type")?;
    s.icmp_code = vals(&a.icmp_code, 255, "--icmp-code")?;
    s.dscp = vals(&a.dscp, 63, "--dscp")?;
    if let Some(f) = &a.tcp_flags {
        s.tcp_flags = parse_tcp_flags(f).map_err(anyhow::Error::msg)?;
    }
    if let Some(f) = &a.fragment {
        s.fragment = parse_fragment(f).map_err(anyhow::Error::msg)?;
    }
    s.validate().map_err(anyhow::Error::msg)?;
    Ok(s)
}

fn incident_rules(a: &BuildArgs, id: &str) -> anyhow::Result<Vec<Rule>> {
    let path = a
        .events
        .clone()
        .unwrap_or_else(|| levee_agent::config::default_state_dir().join("events.jsonl"));
    let f = std::fs::File::open(&path).with_context(|| {
        format!(
            "reading the event log {} (pass --events FILE)",
            path.display()
        )
    })?;
    let mut found: Option<IncidentInfo> = None;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let Ok(ev) = serde_json::from_str::<Event>(&line) else {
            continue;
        };
        let info = match ev.body {
            EventBody::IncidentStarted(i) | EventBody::IncidentUpdated(i) => i,
            EventBody::IncidentResolved { info, .. } => info,
            _ => continue,
        };
        if info.incident_id == id {
            // Later events carry the latest classification.
            found = Some(info);
        }
    }
    let Some(info) = found else {
        bail!("no incident {id} in {}", path.display());
    };
    let view = IncidentView::from_info(&info);
    let Some(victim) = levee_bgp::build::target(&view) else {
        bail!(
            "incident {id} on {} names no attacked address or prefix (no packet view); use --dst",
            info.target
        );
    };
    Ok(levee_bgp::build::flow_rules(&view, victim, &a.action)
        .into_iter()
        .map(Rule::Flow)
        .collect())
}
