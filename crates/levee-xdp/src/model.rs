//! A Rust model of the XDP program and its maps ([`ModelMaps`]): applies the
//! same [`MapOp`]s as the kernel maps and decides frames the way
//! `levee_xdp()` does, reading the rules back from their encoded bytes.
//!
//! It is the test double behind the [`FilterMaps`] seam (rule bookkeeping is
//! tested without root) and the oracle the kernel differential test compares
//! the real program with. Parsing is levee-packet's decoder, limited to what
//! the program parses ([`parsed_by_program`]): other link layers (MPLS,
//! PPPoE, more than two VLAN tags) pass untouched.

use crate::error::XdpError;
use crate::maps::{Counters, FilterMaps, Totals};
use crate::prefix::LpmKey;
use crate::table::{decode_table, MapOp, MAX_SLOTS, TABLE_SIZE};
use levee_packet::decode::decode_ethernet;
use std::collections::HashMap;
use std::net::IpAddr;

/// What the program does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Dropped, counted into this slot.
    Drop {
        slot: u32,
    },
}

/// In-memory maps with the kernel's semantics.
#[derive(Debug, Clone)]
pub struct ModelMaps {
    tables: [Box<[u8; TABLE_SIZE]>; 2],
    active: u32,
    prefixes: HashMap<LpmKey, u32>,
    stats: Vec<Counters>,
    totals: Totals,
}

impl Default for ModelMaps {
    fn default() -> Self {
        ModelMaps {
            tables: [Box::new([0; TABLE_SIZE]), Box::new([0; TABLE_SIZE])],
            active: 0,
            prefixes: HashMap::new(),
            stats: vec![Counters::default(); MAX_SLOTS],
            totals: Totals::default(),
        }
    }
}

impl ModelMaps {
    /// The verdict for `frame` (an Ethernet frame), without counting.
    pub fn verdict(&self, frame: &[u8]) -> Verdict {
        if !parsed_by_program(frame) {
            return Verdict::Pass;
        }
        let Ok(meta) = decode_ethernet(frame) else {
            return Verdict::Pass;
        };
        if let Some(slot) = self.source_slot(meta.src) {
            return Verdict::Drop { slot };
        }
        decode_table(&self.tables[self.active as usize & 1])
            .into_iter()
            .find(|(_, m)| m.matches(&meta))
            .map_or(Verdict::Pass, |(slot, _)| Verdict::Drop { slot })
    }

    /// Runs the program on `frame`: verdict plus counters.
    pub fn run(&mut self, frame: &[u8]) -> Verdict {
        let bytes = Counters {
            packets: 1,
            bytes: frame.len() as u64,
        };
        self.totals.seen += bytes;
        let v = self.verdict(frame);
        if let Verdict::Drop { slot } = v {
            if let Some(c) = self.stats.get_mut(slot as usize) {
                *c += bytes;
            }
            self.totals.dropped += bytes;
        }
        v
    }

    /// Longest-prefix match of a source address.
    fn source_slot(&self, src: IpAddr) -> Option<u32> {
        let (max, key): (u8, Box<dyn Fn(u8) -> LpmKey>) = match src {
            IpAddr::V4(a) => (
                32,
                Box::new(move |len| LpmKey::V4 {
                    len,
                    addr: (u32::from(a) & mask32(len)).to_be_bytes(),
                }),
            ),
            IpAddr::V6(a) => (
                128,
                Box::new(move |len| LpmKey::V6 {
                    len,
                    addr: (u128::from(a) & mask128(len)).to_be_bytes(),
                }),
            ),
        };
        (0..=max)
            .rev()
            .find_map(|len| self.prefixes.get(&key(len)).copied())
    }
}

/// Whether the program looks past the link layer: Ethernet with at most two
/// 802.1Q / 802.1ad (or pre-standard 0x9100) tags, then IPv4 or IPv6.
pub fn parsed_by_program(frame: &[u8]) -> bool {
    let ethertype = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let mut at = 12;
    for _ in 0..=2 {
        match ethertype(at) {
            Some(0x0800 | 0x86dd) => return true,
            Some(0x8100 | 0x88a8 | 0x9100) => at += 4,
            _ => return false,
        }
    }
    false
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl FilterMaps for ModelMaps {
    fn apply(&mut self, op: &MapOp) -> Result<(), XdpError> {
        match op {
            MapOp::ZeroStats { slot } => self.stats[*slot as usize] = Counters::default(),
            MapOp::WriteRules { buffer, table } => self.tables[*buffer as usize] = table.clone(),
            MapOp::Activate { buffer } => self.active = *buffer,
            MapOp::InsertPrefix { key, slot } => {
                self.prefixes.insert(*key, *slot);
            }
            MapOp::RemovePrefix { key } => {
                self.prefixes.remove(key).ok_or_else(|| XdpError::Map {
                    map: "src",
                    action: "delete",
                    detail: format!("no such key {key:?}"),
                })?;
            }
        }
        Ok(())
    }

    fn stats(&self, slot: u32) -> Result<Counters, XdpError> {
        Ok(self.stats[slot as usize])
    }

    fn totals(&self) -> Result<Totals, XdpError> {
        Ok(self.totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_layers_the_program_parses() {
        let frame = |types: &[u16]| {
            let mut f = vec![0u8; 12];
            for t in types {
                f.extend(t.to_be_bytes());
                f.extend([0, 1]);
            }
            f
        };
        assert!(parsed_by_program(&frame(&[0x0800])));
        assert!(parsed_by_program(&frame(&[0x8100, 0x86dd])));
        assert!(parsed_by_program(&frame(&[0x88a8, 0x8100, 0x0800])));
        assert!(!parsed_by_program(&frame(&[
            0x8100, 0x8100, 0x8100, 0x0800
        ])));
        assert!(!parsed_by_program(&frame(&[0x8847])), "MPLS");
        assert!(!parsed_by_program(&frame(&[0x8864])), "PPPoE");
        assert!(!parsed_by_program(&[0u8; 13]));
    }
}
