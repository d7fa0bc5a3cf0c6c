//! Assembling a production engine: probe the node, compute what no rule
//! may touch, build every executor over the real tools, open the audit log,
//! and attach the collateral guard's meter.

use crate::audit::AuditLog;
use crate::config::MitigationConfig;
use crate::engine::{EngineError, EngineOptions, MitigationEngine};
use crate::exec::csf::CsfExecutor;
use crate::exec::firewalld::FirewalldExecutor;
use crate::exec::ipset::IpsetExecutor;
use crate::exec::iptables::{ChainHandle, IptablesExecutor};
use crate::exec::nft::NftExecutor;
use crate::exec::route::RouteExecutor;
use crate::exec::sysctl::SysctlExecutor;
use crate::exec::tc::TcExecutor;
use crate::exec::ufw::UfwExecutor;
use crate::exec::Executor;
use crate::host::HostInfo;
use crate::meter::SockDiagLegitMeter;
use crate::runner::{CommandRunner, SystemRunner};
use crate::safety::Protected;
use std::path::Path;

/// Every executor this crate has, over `runner` (each gets its own copy).
/// `exempt`: prefixes no rule may touch; `state_dir`: where the sysctl
/// executor keeps the value it replaced.
pub fn standard_executors<R: CommandRunner + Clone + 'static>(
    cfg: &MitigationConfig,
    exempt: Vec<levee_packet::classify::fingerprint::IpPrefix>,
    runner: &R,
    state_dir: Option<&Path>,
) -> Vec<Box<dyn Executor>> {
    let r = || Box::new(runner.clone());
    let chains = ChainHandle::new(exempt.clone());
    vec![
        Box::new(NftExecutor::new(r(), exempt.clone(), cfg.netdev_ingress)),
        Box::new(IptablesExecutor::new(r(), chains.clone())),
        Box::new(IpsetExecutor::new(r(), chains)),
        Box::new(TcExecutor::new(r(), exempt)),
        Box::new(RouteExecutor::new(r())),
        Box::new(SysctlExecutor::new(
            r(),
            state_dir.map(|d| d.join("syncookies.prev")),
        )),
        Box::new(UfwExecutor::ufw(r())),
        Box::new(FirewalldExecutor::firewalld(r())),
        Box::new(CsfExecutor::csf(r())),
    ]
}

/// The agent's engine: everything real. `extra` executors (e.g. XDP) are
/// added to the standard ones (replacing one of the same kind).
pub fn build(
    cfg: MitigationConfig,
    state_dir: &Path,
    runner: SystemRunner,
    extra: Vec<Box<dyn Executor>>,
    seed: u64,
) -> Result<MitigationEngine, EngineError> {
    let host = HostInfo::probe(&mut runner.clone())?;
    let protected = Protected::new(&cfg.allowlist, &cfg.protected, &host);
    let mut executors = standard_executors(&cfg, protected.exempt(), &runner, Some(state_dir));
    for e in extra {
        executors.retain(|x| x.kind() != e.kind());
        executors.push(e);
    }
    let audit_path = cfg
        .audit_file
        .clone()
        .unwrap_or_else(|| state_dir.join("audit.jsonl"));
    let audit = AuditLog::open(&audit_path)?;
    let guard = cfg.guard.enabled;
    let engine = MitigationEngine::new(cfg, host, executors, Some(audit), EngineOptions { seed })?;
    Ok(if guard {
        match SockDiagLegitMeter::new() {
            Ok(m) => engine.with_meter(Box::new(m)),
            Err(e) => {
                tracing::warn!("collateral guard off: cannot read connection counters ({e})");
                engine
            }
        }
    } else {
        engine
    })
}
