//! [`IocStore`]: the configured list files and the current [`IocSet`], with atomic reload.
//!
//! The agent calls [`IocStore::reload`] when it receives SIGHUP (signal wiring lives in
//! the agent, not here). A reload reads every file into a *new* set built off to the
//! side while lookups keep using the old one, then swaps the `Arc` in one step.
//! A list whose file is unreadable, corrupt or suddenly empty keeps its previous
//! indicators, copied from the old set: a broken feed download must never silently
//! remove protection.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::error::{ListError, SetError};
use crate::parse::ParseReport;
use crate::set::{IocSet, IocSetBuilder, ListId};
use crate::Format;

/// One configured list file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSource {
    /// The name matches report (e.g. `spamhaus_drop`).
    pub name: String,
    /// The file to read.
    pub path: PathBuf,
    /// Its format (`Auto` detects).
    pub format: Format,
}

/// What happened to one list during a load.
#[derive(Debug)]
pub enum ListOutcome {
    /// The file was read; bad lines (if any) are in the report.
    Loaded(ParseReport),
    /// The file failed; the previous version (`kept` indicators) stays in force.
    KeptPrevious {
        /// Why the new file was refused.
        error: ListError,
        /// Indicators kept from the previous version (0 on the first load).
        kept: usize,
    },
}

/// One list's result.
#[derive(Debug)]
pub struct ListReport {
    /// The list's name.
    pub name: String,
    /// What happened.
    pub outcome: ListOutcome,
}

/// The result of a (re)load, list by list.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// One entry per configured list, in configuration order.
    pub lists: Vec<ListReport>,
}

impl ReloadReport {
    /// True if every list loaded from its file.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The lists that kept their previous version, with the reason.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &ListError)> {
        self.lists.iter().filter_map(|l| match &l.outcome {
            ListOutcome::KeptPrevious { error, .. } => Some((l.name.as_str(), error)),
            ListOutcome::Loaded(_) => None,
        })
    }
}

/// The configured lists and the set currently in force.
#[derive(Debug)]
pub struct IocStore {
    sources: Vec<ListSource>,
    current: RwLock<Arc<IocSet>>,
    /// Serialises reloads so two quick SIGHUPs cannot interleave and lose a list.
    reloading: Mutex<()>,
}

impl IocStore {
    /// Declare the lists and load them once. Lists that fail start empty and are
    /// reported; the store is usable either way.
    pub fn open(sources: Vec<ListSource>) -> Result<(IocStore, ReloadReport), SetError> {
        // Validate names up front so `reload` cannot fail on them later.
        let mut check = IocSet::builder();
        for s in &sources {
            check.add_list(&s.name)?;
        }
        let store = IocStore {
            sources,
            current: RwLock::new(Arc::new(IocSet::default())),
            reloading: Mutex::new(()),
        };
        let report = store.reload();
        Ok((store, report))
    }

    /// The set in force. Cheap (an `Arc` clone); hold it for as long as a lookup batch.
    pub fn current(&self) -> Arc<IocSet> {
        // A poisoned lock only means a panic elsewhere while holding it; the Arc
        // inside is still a complete set.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The configured lists.
    pub fn sources(&self) -> &[ListSource] {
        &self.sources
    }

    /// Re-read every list file, build a new set and swap it in atomically.
    ///
    /// Call this on SIGHUP. Lookups are never blocked by the file reading and sorting;
    /// they see either the old or the new set, never a mix. A list that fails keeps its
    /// previous indicators, and the report says which and why.
    pub fn reload(&self) -> ReloadReport {
        let _guard = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let old = self.current();
        let mut builder = IocSet::builder();
        let mut report = ReloadReport::default();
        for source in &self.sources {
            let Ok(id) = builder.add_list(&source.name) else {
                // Names were validated in `open`; a duplicate cannot appear later.
                continue;
            };
            let outcome = load_one(&mut builder, id, source, &old);
            match &outcome {
                ListOutcome::Loaded(r) => tracing::info!(list = %source.name, "{r}"),
                ListOutcome::KeptPrevious { error, kept } => {
                    tracing::warn!(list = %source.name, kept, "{error}; keeping the previous version")
                }
            }
            report.lists.push(ListReport {
                name: source.name.clone(),
                outcome,
            });
        }
        let new = Arc::new(builder.build());
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = new;
        report
    }
}

/// Load one list into `builder`, falling back to its version in `old`.
fn load_one(
    builder: &mut IocSetBuilder,
    id: ListId,
    source: &ListSource,
    old: &IocSet,
) -> ListOutcome {
    let previous = old.list_len(&source.name).unwrap_or(0);
    let cp = builder.checkpoint();
    let label = source.path.display().to_string();
    let result = File::open(&source.path).and_then(|f| {
        builder.add_reader(
            id,
            BufReader::with_capacity(1 << 16, f),
            &label,
            source.format,
        )
    });
    let error = match result {
        Ok(r) if r.bad_lines > r.indicators => ListError::Corrupt {
            path: source.path.clone(),
            bad: r.bad_lines,
            good: r.indicators,
            first: r.first_errors.into_iter().next(),
        },
        Ok(r) if r.indicators == 0 && previous > 0 => ListError::Emptied {
            path: source.path.clone(),
            previous,
        },
        Ok(r) => return ListOutcome::Loaded(r),
        Err(e) => ListError::Io {
            path: source.path.clone(),
            source: e,
        },
    };
    builder.rollback(cp);
    let kept = builder.copy_list(id, old, &source.name);
    ListOutcome::KeptPrevious { error, kept }
}
