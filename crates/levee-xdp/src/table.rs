//! What should be in the kernel's maps ([`Table`]), and the map writes
//! ([`MapOp`]) that take the kernel there. Pure: no syscalls.
//!
//! Ids and slots: callers name rules with their own [`RuleId`]s; each id in
//! use owns one counter slot (an index into the per-CPU `stats` array),
//! shared by all its source prefixes and fingerprint entries. A slot is
//! zeroed when it is handed to an id and returned when the id has nothing
//! left; free slots are reused oldest-freed first, so a packet still in
//! flight on another CPU is unlikely to land in a slot just handed out.
//!
//! Rule changes are double-buffered: the whole new rule table (entries in
//! insertion order, which is match precedence) is written into the inactive
//! element of `rules`, then `meta[0]` is flipped to it. A packet sees the old
//! table or the new one, never a rule half-written, and a write that fails
//! leaves the old table active.

use crate::error::XdpError;
use crate::prefix::{normalize, LpmKey};
use crate::rule::{FingerprintMatch, RULE_SIZE};

/// Size of `struct ruleset` (`_Static_assert` in the C program).
pub const TABLE_SIZE: usize = 8 + RULE_SIZE * MAX_RULES;
use levee_packet::classify::IpPrefix;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Fingerprint entries the program checks (`MAX_RULES` in the C program).
pub const MAX_RULES: usize = 64;
/// Counter slots, i.e. ids in use at once (`MAX_SLOTS`).
pub const MAX_SLOTS: usize = 256;
/// Source prefixes per address family (`MAX_PREFIXES`).
pub const MAX_PREFIXES: usize = 65_536;

/// A caller-chosen rule id: names a group of source prefixes and/or
/// fingerprint entries and their shared counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One write to the program's maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOp {
    /// Zero every CPU's counters of a slot.
    ZeroStats {
        slot: u32,
    },
    /// `rules[buffer] = table` (a whole `struct ruleset`).
    WriteRules {
        buffer: u32,
        table: Box<[u8; TABLE_SIZE]>,
    },
    /// `meta[0] = buffer`: that rule table is the one packets see.
    Activate {
        buffer: u32,
    },
    /// Insert (or update) a source prefix counting into `slot`.
    InsertPrefix {
        key: LpmKey,
        slot: u32,
    },
    RemovePrefix {
        key: LpmKey,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdState {
    slot: u32,
    prefixes: usize,
    entries: usize,
}

/// The desired content of the maps.
#[derive(Debug, Clone)]
pub struct Table {
    ids: BTreeMap<RuleId, IdState>,
    free: VecDeque<u32>,
    /// Fingerprint entries in kernel order (= match precedence).
    entries: Vec<(RuleId, FingerprintMatch)>,
    prefixes: BTreeMap<IpPrefix, RuleId>,
    v4_prefixes: usize,
    /// The element of `rules` packets see.
    active: u32,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            ids: BTreeMap::new(),
            free: (0..MAX_SLOTS as u32).collect(),
            entries: Vec::new(),
            prefixes: BTreeMap::new(),
            v4_prefixes: 0,
            active: 0,
        }
    }
}

impl Table {
    /// The ops that bring freshly loaded maps to an empty table.
    pub fn initial_ops() -> Vec<MapOp> {
        Table::default().publish_in(0)
    }

    /// Writes the current entries into `buffer` and activates it.
    fn publish_in(&self, buffer: u32) -> Vec<MapOp> {
        let mut table = Box::new([0u8; TABLE_SIZE]);
        table[0..4].copy_from_slice(&(self.entries.len() as u32).to_ne_bytes());
        for (i, (id, m)) in self.entries.iter().enumerate() {
            let at = 8 + i * RULE_SIZE;
            table[at..at + RULE_SIZE].copy_from_slice(&m.encode(self.ids[id].slot));
        }
        vec![
            MapOp::WriteRules { buffer, table },
            MapOp::Activate { buffer },
        ]
    }

    /// Publishes the entries in the inactive buffer and makes it active.
    fn publish(&mut self) -> Vec<MapOp> {
        self.active ^= 1;
        self.publish_in(self.active)
    }

    /// Ids in use with their counter slots.
    pub fn slots(&self) -> impl Iterator<Item = (RuleId, u32)> + '_ {
        self.ids.iter().map(|(id, s)| (*id, s.slot))
    }

    /// Fingerprint entries in kernel order.
    pub fn entries(&self) -> &[(RuleId, FingerprintMatch)] {
        &self.entries
    }

    /// Source prefixes and their ids.
    pub fn prefixes(&self) -> &BTreeMap<IpPrefix, RuleId> {
        &self.prefixes
    }

    /// The slot of `id`, allocating one (and zeroing its counters) if new.
    fn slot_for(&mut self, id: RuleId, ops: &mut Vec<MapOp>) -> Result<u32, XdpError> {
        if let Some(s) = self.ids.get(&id) {
            return Ok(s.slot);
        }
        let slot = self
            .free
            .pop_front()
            .ok_or(XdpError::IdsFull { max: MAX_SLOTS })?;
        self.ids.insert(
            id,
            IdState {
                slot,
                prefixes: 0,
                entries: 0,
            },
        );
        ops.push(MapOp::ZeroStats { slot });
        Ok(slot)
    }

    /// Returns `id`'s slot once it has neither prefixes nor entries.
    fn release_if_unused(&mut self, id: RuleId) {
        if let Some(s) = self.ids.get(&id) {
            if s.prefixes == 0 && s.entries == 0 {
                self.free.push_back(s.slot);
                self.ids.remove(&id);
            }
        }
    }

    /// Appends a fingerprint entry under `id`.
    pub fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<Vec<MapOp>, XdpError> {
        m.validate()
            .map_err(|source| XdpError::BadRule { id, source })?;
        if self.entries.len() >= MAX_RULES {
            return Err(XdpError::RulesFull { max: MAX_RULES });
        }
        let mut ops = Vec::new();
        self.slot_for(id, &mut ops)?;
        self.entries.push((id, *m));
        if let Some(s) = self.ids.get_mut(&id) {
            s.entries += 1;
        }
        ops.extend(self.publish());
        Ok(ops)
    }

    /// Removes every fingerprint entry of `id` (none: no ops).
    pub fn remove_rule(&mut self, id: RuleId) -> Vec<MapOp> {
        let before = self.entries.len();
        self.entries.retain(|(i, _)| *i != id);
        let removed = before - self.entries.len();
        if removed == 0 {
            return Vec::new();
        }
        if let Some(s) = self.ids.get_mut(&id) {
            s.entries -= removed;
        }
        self.release_if_unused(id);
        self.publish()
    }

    /// Drops packets from `prefix` under `id`. Adding a prefix already held
    /// by the same id does nothing; held by another id, it is an error.
    pub fn add_source(&mut self, prefix: IpPrefix, id: RuleId) -> Result<Vec<MapOp>, XdpError> {
        let prefix = normalize(prefix)?;
        match self.prefixes.get(&prefix) {
            Some(held) if *held == id => return Ok(Vec::new()),
            Some(held) => return Err(XdpError::PrefixInUse { prefix, id: *held }),
            None => {}
        }
        let v4 = prefix.addr.is_ipv4();
        let in_family = if v4 {
            self.v4_prefixes
        } else {
            self.prefixes.len() - self.v4_prefixes
        };
        if in_family >= MAX_PREFIXES {
            return Err(XdpError::PrefixesFull { max: MAX_PREFIXES });
        }
        let mut ops = Vec::new();
        let slot = self.slot_for(id, &mut ops)?;
        ops.push(MapOp::InsertPrefix {
            key: LpmKey::from(prefix),
            slot,
        });
        self.prefixes.insert(prefix, id);
        self.v4_prefixes += usize::from(v4);
        if let Some(s) = self.ids.get_mut(&id) {
            s.prefixes += 1;
        }
        Ok(ops)
    }

    /// Stops dropping `prefix`; `None` when it was not present, else the id
    /// that held it and the ops.
    pub fn remove_source(
        &mut self,
        prefix: IpPrefix,
    ) -> Result<Option<(RuleId, Vec<MapOp>)>, XdpError> {
        let prefix = normalize(prefix)?;
        let Some(id) = self.prefixes.remove(&prefix) else {
            return Ok(None);
        };
        self.v4_prefixes -= usize::from(prefix.addr.is_ipv4());
        if let Some(s) = self.ids.get_mut(&id) {
            s.prefixes -= 1;
        }
        self.release_if_unused(id);
        Ok(Some((
            id,
            vec![MapOp::RemovePrefix {
                key: LpmKey::from(prefix),
            }],
        )))
    }

    /// The slot of `id`, if in use.
    pub fn slot(&self, id: RuleId) -> Option<u32> {
        self.ids.get(&id).map(|s| s.slot)
    }
}

/// The active entries of an encoded rule table: `(slot, rule)` in match
/// order (entries that do not decode are skipped; the count is capped at
/// [`MAX_RULES`] as the program's loop is).
pub fn decode_table(table: &[u8; TABLE_SIZE]) -> Vec<(u32, FingerprintMatch)> {
    let n = u32::from_ne_bytes([table[0], table[1], table[2], table[3]]) as usize;
    table[8..]
        .chunks_exact(RULE_SIZE)
        .take(n.min(MAX_RULES))
        .filter_map(|c| FingerprintMatch::decode(c.try_into().ok()?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Range;

    fn tcp_port(p: u16) -> FingerprintMatch {
        FingerprintMatch {
            protocol: Some(6),
            dst_ports: Some(Range::one(p)),
            ..Default::default()
        }
    }

    fn pfx(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    /// The table a WriteRules op writes, decoded, and the buffer it targets.
    fn written(ops: &[MapOp]) -> (u32, Vec<(u32, FingerprintMatch)>) {
        ops.iter()
            .find_map(|op| match op {
                MapOp::WriteRules { buffer, table } => Some((*buffer, decode_table(table))),
                _ => None,
            })
            .expect("a WriteRules op")
    }

    #[test]
    fn changes_write_the_inactive_table_then_flip_to_it() {
        let mut t = Table::default();
        let init = Table::initial_ops();
        assert_eq!(written(&init), (0, vec![]));
        assert_eq!(init.last(), Some(&MapOp::Activate { buffer: 0 }));

        let ops = t.add_rule(RuleId(9), &tcp_port(80)).unwrap();
        assert_eq!(ops[0], MapOp::ZeroStats { slot: 0 });
        assert_eq!(written(&ops), (1, vec![(0, tcp_port(80))]));
        assert_eq!(ops.last(), Some(&MapOp::Activate { buffer: 1 }));
        assert_eq!(ops.len(), 3);

        // Same id again: same slot, no zeroing, the other buffer.
        let ops = t.add_rule(RuleId(9), &tcp_port(443)).unwrap();
        assert_eq!(
            written(&ops),
            (0, vec![(0, tcp_port(80)), (0, tcp_port(443))])
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(t.slot(RuleId(9)), Some(0));
    }

    #[test]
    fn remove_keeps_insertion_order() {
        let mut t = Table::default();
        t.add_rule(RuleId(1), &tcp_port(1)).unwrap();
        t.add_rule(RuleId(2), &tcp_port(2)).unwrap();
        t.add_rule(RuleId(1), &tcp_port(3)).unwrap();
        t.add_rule(RuleId(3), &tcp_port(4)).unwrap();
        let ops = t.remove_rule(RuleId(1));
        assert_eq!(written(&ops).1, vec![(1, tcp_port(2)), (2, tcp_port(4))]);
        assert_eq!(t.slot(RuleId(1)), None, "slot released");
        assert!(t.remove_rule(RuleId(1)).is_empty(), "idempotent");
    }

    #[test]
    fn slots_are_reused_oldest_freed_first_and_zeroed() {
        let mut t = Table::default();
        t.add_rule(RuleId(1), &tcp_port(1)).unwrap();
        t.add_rule(RuleId(2), &tcp_port(2)).unwrap();
        t.remove_rule(RuleId(1));
        // Slot 0 went to the back of the queue: the next id gets slot 2.
        let ops = t.add_rule(RuleId(3), &tcp_port(3)).unwrap();
        assert_eq!(ops[0], MapOp::ZeroStats { slot: 2 });
    }

    #[test]
    fn prefixes_share_the_ids_slot_and_are_normalised() {
        let mut t = Table::default();
        t.add_rule(RuleId(5), &tcp_port(80)).unwrap();
        let ops = t.add_source(pfx("192.0.2.77/24"), RuleId(5)).unwrap();
        assert_eq!(
            ops,
            vec![MapOp::InsertPrefix {
                key: LpmKey::V4 {
                    len: 24,
                    addr: [192, 0, 2, 0]
                },
                slot: 0
            }]
        );
        assert!(t
            .add_source(pfx("192.0.2.0/24"), RuleId(5))
            .unwrap()
            .is_empty());
        let e = t.add_source(pfx("192.0.2.1/24"), RuleId(6)).unwrap_err();
        assert!(
            e.to_string().contains("192.0.2.0/24") && e.to_string().contains("rule 5"),
            "{e}"
        );
        t.remove_rule(RuleId(5));
        assert_eq!(t.slot(RuleId(5)), Some(0), "prefix still holds the slot");
        let (id, ops) = t.remove_source(pfx("192.0.2.0/24")).unwrap().unwrap();
        assert_eq!(id, RuleId(5));
        assert_eq!(
            ops,
            vec![MapOp::RemovePrefix {
                key: LpmKey::V4 {
                    len: 24,
                    addr: [192, 0, 2, 0]
                }
            }]
        );
        assert_eq!(t.slot(RuleId(5)), None);
        assert!(t.remove_source(pfx("192.0.2.0/24")).unwrap().is_none());
    }

    #[test]
    fn capacity_and_bad_rules_are_errors() {
        let mut t = Table::default();
        for i in 0..MAX_RULES as u16 {
            t.add_rule(RuleId(1), &tcp_port(i)).unwrap();
        }
        let e = t.add_rule(RuleId(1), &tcp_port(9999)).unwrap_err();
        assert!(e.to_string().contains("64"), "{e}");
        let mut t = Table::default();
        let e = t
            .add_rule(RuleId(4), &FingerprintMatch::default())
            .unwrap_err();
        assert!(e.to_string().contains("rule 4"), "{e}");
        assert!(t.entries().is_empty() && t.slot(RuleId(4)).is_none());
        let mut t = Table::default();
        for i in 0..MAX_SLOTS as u32 {
            t.add_source(pfx(&format!("10.{}.{}.0/24", i / 256, i % 256)), RuleId(i))
                .unwrap();
        }
        assert!(matches!(
            t.add_source(pfx("10.9.9.0/24"), RuleId(999)),
            Err(XdpError::IdsFull { .. })
        ));
    }
}
