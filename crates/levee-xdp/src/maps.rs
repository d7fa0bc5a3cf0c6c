//! The seam in front of the kernel's maps ([`FilterMaps`]) and the rule set
//! that drives it ([`RuleSet`]): table bookkeeping plus map writes, with
//! counters read back. `RuleSet<KernelMaps>` is the real thing inside
//! [`XdpFilter`](crate::XdpFilter); `RuleSet<ModelMaps>` runs without root.

use crate::error::XdpError;
use crate::rule::FingerprintMatch;
use crate::table::{MapOp, RuleId, Table};
use levee_packet::classify::IpPrefix;
use std::collections::BTreeMap;
use std::ops::AddAssign;

/// Packets and bytes (bytes: the whole frame as XDP sees it, L2 header
/// included, no FCS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

impl AddAssign for Counters {
    fn add_assign(&mut self, o: Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// Everything the program saw and everything it dropped, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub seen: Counters,
    pub dropped: Counters,
}

/// Writes and reads of the program's maps.
pub trait FilterMaps {
    fn apply(&mut self, op: &MapOp) -> Result<(), XdpError>;
    /// A counter slot, summed over CPUs.
    fn stats(&self, slot: u32) -> Result<Counters, XdpError>;
    fn totals(&self) -> Result<Totals, XdpError>;
}

/// Source sets and fingerprint rules kept in step with a program's maps.
#[derive(Debug)]
pub struct RuleSet<M> {
    table: Table,
    maps: M,
}

impl<M: FilterMaps> RuleSet<M> {
    /// Takes freshly created maps and initialises them.
    pub fn new(mut maps: M) -> Result<Self, XdpError> {
        for op in Table::initial_ops() {
            maps.apply(&op)?;
        }
        Ok(RuleSet {
            table: Table::default(),
            maps,
        })
    }

    pub fn maps(&self) -> &M {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut M {
        &mut self.maps
    }

    fn apply_all(&mut self, ops: &[MapOp]) -> Result<(), XdpError> {
        ops.iter().try_for_each(|op| self.maps.apply(op))
    }

    /// Applies a table change. The ops are ordered so that a failed write
    /// leaves the kernel as it was (see [`crate::table`]); the table is then
    /// restored too and the error returned.
    fn change<T>(
        &mut self,
        f: impl FnOnce(&mut Table) -> Result<(T, Vec<MapOp>), XdpError>,
    ) -> Result<T, XdpError> {
        let before = self.table.clone();
        let (out, ops) = f(&mut self.table)?;
        if let Err(e) = self.apply_all(&ops) {
            self.table = before;
            return Err(e);
        }
        Ok(out)
    }

    /// Drops packets matching `m`, counted under `id`. An id may hold several
    /// entries (any of which drops) and source prefixes; entries are checked
    /// in the order added, the first match counts.
    pub fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<(), XdpError> {
        self.change(|t| Ok(((), t.add_rule(id, m)?)))
    }

    /// Removes every fingerprint entry of `id` and returns its counters as
    /// they were just before (zero when the id was unknown).
    pub fn remove_rule(&mut self, id: RuleId) -> Result<Counters, XdpError> {
        let last = self.counters_of(id)?;
        self.change(|t| Ok(((), t.remove_rule(id))))?;
        Ok(last)
    }

    /// Drops every packet from `prefix`, counted under `id`.
    pub fn add_source(&mut self, prefix: IpPrefix, id: RuleId) -> Result<(), XdpError> {
        self.change(|t| Ok(((), t.add_source(prefix, id)?)))
    }

    /// Stops dropping `prefix`; the id that held it, if any.
    pub fn remove_source(&mut self, prefix: IpPrefix) -> Result<Option<RuleId>, XdpError> {
        self.change(|t| {
            Ok(match t.remove_source(prefix)? {
                Some((id, ops)) => (Some(id), ops),
                None => (None, Vec::new()),
            })
        })
    }

    fn counters_of(&self, id: RuleId) -> Result<Counters, XdpError> {
        match self.table.slot(id) {
            Some(slot) => self.maps.stats(slot),
            None => Ok(Counters::default()),
        }
    }

    /// Packets and bytes dropped per id in use.
    pub fn counters(&self) -> Result<BTreeMap<RuleId, Counters>, XdpError> {
        self.table
            .slots()
            .map(|(id, slot)| Ok((id, self.maps.stats(slot)?)))
            .collect()
    }

    pub fn totals(&self) -> Result<Totals, XdpError> {
        self.maps.totals()
    }

    /// Fingerprint entries in match order.
    pub fn rules(&self) -> &[(RuleId, FingerprintMatch)] {
        self.table.entries()
    }

    /// Source prefixes and the ids holding them.
    pub fn sources(&self) -> &BTreeMap<IpPrefix, RuleId> {
        self.table.prefixes()
    }
}
