//! Builds a [`BgpEngine`] from `[bgp]` config: the speaker adapter, the
//! ROA source (file or RTR cache) and the audit log. The binary's and the
//! server's one call.

use crate::config::{BgpConfig, SpeakerKind};
use crate::engine::{BgpEngine, RoaSource};
use crate::rpki::{json, rtr, RoaSet};
use crate::scrub::{ProviderScrubber, Scrubber};
use crate::speaker::{bird::Bird, exabgp::ExaBgp, frr::Frr, gobgp::GoBgp, Speaker, SpeakerError};
use levee_mitigate::audit::AuditLog;
use levee_mitigate::runner::{CommandRunner, SystemRunner};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// ROAs from a file or an RTR cache.
pub enum Source {
    File(PathBuf),
    Rtr(SocketAddr),
}

impl RoaSource for Source {
    fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Rtr(a) => format!("rtr://{a}"),
        }
    }
    fn load(&mut self) -> Result<RoaSet, String> {
        match self {
            Source::File(p) => json::load(p).map_err(|e| e.to_string()),
            Source::Rtr(a) => rtr::fetch(*a, Duration::from_secs(10))
                .map(|s| s.roas)
                .map_err(|e| e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid [bgp] config:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("BGP speaker: {0}")]
    Speaker(#[from] SpeakerError),
    #[error(transparent)]
    Audit(#[from] levee_mitigate::audit::AuditError),
    #[error("loading ROAs from {source_name}: {error}")]
    Roas { source_name: String, error: String },
    #[error("[bgp.scrubbing]: {0}")]
    Scrubbing(String),
}

/// The level-4 scrubber `[bgp.scrubbing]` names, if any.
pub fn scrubber(cfg: &BgpConfig) -> Result<Option<Box<dyn Scrubber>>, BuildError> {
    let s = &cfg.scrubbing;
    let (file, name) = match (&s.providers_file, &s.provider) {
        (None, None) => return Ok(None),
        (Some(f), Some(n)) => (f, n),
        _ => {
            return Err(BuildError::Scrubbing(
                "set both providers_file and provider (or neither)".into(),
            ))
        }
    };
    let parsed =
        levee_providers::load_config(file).map_err(|e| BuildError::Scrubbing(e.to_string()))?;
    let names: Vec<String> = parsed.providers.iter().map(|p| p.name.clone()).collect();
    let provider = levee_providers::build_providers(&parsed)
        .map_err(|e| BuildError::Scrubbing(e.to_string()))?
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            BuildError::Scrubbing(format!(
                "provider `{name}` is not in {} (it has: {})",
                file.display(),
                names.join(", ")
            ))
        })?;
    Ok(Some(Box::new(ProviderScrubber::new(provider))))
}

fn runner(cfg: &BgpConfig) -> Box<dyn CommandRunner> {
    match &cfg.speaker.netns {
        Some(ns) => Box::new(SystemRunner::in_netns(ns)),
        None => Box::new(SystemRunner::new()),
    }
}

/// The configured speaker adapter.
pub fn speaker(cfg: &BgpConfig) -> Result<Box<dyn Speaker>, SpeakerError> {
    let s = &cfg.speaker;
    Ok(match s.kind {
        SpeakerKind::Gobgp => Box::new(GoBgp::new(
            runner(cfg),
            &s.gobgp.display().to_string(),
            s.gobgp_api,
        )),
        SpeakerKind::Exabgp => {
            let acks = s.exabgp_pipe.with_extension("acks");
            Box::new(ExaBgp::open(
                &s.exabgp_pipe,
                Some(&acks),
                Duration::from_secs(5),
            )?)
        }
        SpeakerKind::Bird => Box::new(Bird::new(
            runner(cfg),
            &s.birdc.display().to_string(),
            s.bird_socket.as_deref(),
            &s.bird_dir,
        )?),
        SpeakerKind::Frr => Box::new(Frr::new(
            runner(cfg),
            &s.vtysh.display().to_string(),
            s.frr_vty_socket.as_deref(),
            s.frr_asn.unwrap_or(cfg.origin_as),
        )),
    })
}

/// The engine for `cfg`, with ROAs loaded once now (a first load that
/// fails is an error: announcing without ROAs would refuse everything),
/// its audit log at `cfg.audit_file` or `<state_dir>/bgp-audit.jsonl`.
pub fn build(cfg: &BgpConfig, state_dir: &Path) -> Result<BgpEngine, BuildError> {
    let problems = cfg.validate("bgp");
    if !problems.is_empty() {
        return Err(BuildError::Config(problems));
    }
    let mut src = match (&cfg.rpki.roa_file, cfg.rpki.rtr) {
        (Some(p), _) => Source::File(p.clone()),
        (None, Some(a)) => Source::Rtr(a),
        (None, None) => unreachable!("validated"),
    };
    let roas = src.load().map_err(|error| BuildError::Roas {
        source_name: src.describe(),
        error,
    })?;
    let audit_path = cfg
        .audit_file
        .clone()
        .unwrap_or_else(|| state_dir.join("bgp-audit.jsonl"));
    let refresh = cfg.rpki.refresh.unwrap_or(Duration::from_secs(600));
    let mut engine = BgpEngine::new(cfg.clone(), speaker(cfg)?)
        .with_roas(roas)
        .with_audit(AuditLog::open(&audit_path)?)
        .with_roa_source(Box::new(src));
    engine.skip_roa_reload_until(refresh);
    if let Some(s) = scrubber(cfg)? {
        engine = engine.with_scrubber(s);
    }
    Ok(engine)
}
