//! The production [`TickSource`]: kernel counters (`levee-sources`) turned into
//! rates. One sample per tick; the first only sets the starting point.

use crate::config::AgentConfig;
use crate::runtime::{TickResult, TickSource};
use levee_sources::{CounterSource, InterfaceFilter, KernelSource, RateCalculator};

pub struct KernelTicks {
    source: KernelSource,
    rates: RateCalculator,
}

impl KernelTicks {
    pub fn new(cfg: &AgentConfig) -> Result<Self, levee_sources::SourceError> {
        Self::with_interfaces(&cfg.interfaces, cfg.conn_interval.as_millis() as u64)
    }

    /// Watches `names`, or every interface but loopback when empty. A named
    /// interface that does not exist yet is watched from when it appears.
    /// Connections are counted at most every `conn_interval_ms`.
    pub fn with_interfaces(
        names: &[String],
        conn_interval_ms: u64,
    ) -> Result<Self, levee_sources::SourceError> {
        let filter = if names.is_empty() {
            InterfaceFilter::AllExceptLoopback
        } else {
            InterfaceFilter::Only(names.to_vec())
        };
        let mut source = KernelSource::system(filter).with_conn_interval_ms(conn_interval_ms);
        // Probe once so an unreadable /proc fails at start with its path, not
        // as a stream of per-tick errors.
        let probe = source.sample()?;
        for n in names {
            if !probe.interfaces.iter().any(|i| &i.name == n) {
                tracing::warn!(
                    "interface {n} does not exist (yet); it is watched from when it appears"
                );
            }
        }
        Ok(KernelTicks {
            source,
            rates: RateCalculator::new(),
        })
    }
}

impl TickSource for KernelTicks {
    fn tick(&mut self) -> TickResult {
        let mut r = TickResult::default();
        let sample = match self.source.sample() {
            Ok(s) => s,
            Err(e) => {
                r.errors.push(("counters".into(), e.to_string()));
                return r;
            }
        };
        if let Some(e) = self.source.last_conn_error() {
            r.errors.push(("sock_diag".into(), e.to_string()));
        }
        r.interfaces = sample.interfaces.iter().map(|i| i.name.clone()).collect();
        match self.rates.push(&sample) {
            Ok(Some(t)) => {
                r.renames = t.renames.into_iter().map(|x| (x.old, x.new)).collect();
                r.obs = Some(t.observation);
            }
            Ok(None) => {}
            Err(e) => r.errors.push(("rates".into(), e.to_string())),
        }
        r
    }
}
