//! A compact, sorted prefix table for one address family.
//!
//! Layout: one `Vec` of fixed-size entries sorted by (length descending, network, list),
//! plus an index of the runs of equal length, each with a bucket index on its top bits.
//! A lookup masks the address once per length present in the table and searches that
//! run's bucket. That is at most 33 (IPv4)
//! or 129 (IPv6) searches, in practice the ~10-25 lengths real feeds use, and it
//! finds *every* matching prefix (all lists, all lengths), longest first, which is what
//! correlation needs; a trie answering only the longest match would need a
//! per-node list of values for that.
//!
//! Why not a trie crate: an entry here is 12 bytes (IPv4) or 24 bytes (IPv6), plus at
//! most 4 bytes of bucket index, with no per-node allocation, and building is a single sort; see the crate docs for the
//! measured load time and memory.

use std::cmp::Reverse;

/// Key bits of one family, ordered like the address.
pub(crate) trait Bits: Copy + Ord {
    /// Keep the top `len` bits.
    fn mask(self, len: u8) -> Self;
    /// The top `bits` bits (`bits` <= [`MAX_BUCKET_BITS`]) as a bucket number.
    fn top(self, bits: u8) -> usize;
}

/// Upper bound on a run's bucket index (2^24 buckets = 64 MiB would be absurd, but a
/// run never gets more buckets than entries, so this only caps pathological inputs).
pub(crate) const MAX_BUCKET_BITS: u8 = 24;

impl Bits for u32 {
    fn mask(self, len: u8) -> u32 {
        self & crate::prefix::mask32(len)
    }
    fn top(self, bits: u8) -> usize {
        self.checked_shr(32 - u32::from(bits)).unwrap_or(0) as usize
    }
}

/// An IPv6 address split in two halves: 8-byte alignment keeps an entry at 24 bytes
/// where a `u128` (16-byte aligned) would pad it to 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct V6Bits {
    hi: u64,
    lo: u64,
}

impl From<u128> for V6Bits {
    fn from(v: u128) -> V6Bits {
        // Truncating casts are the point: split the 128 bits in two halves.
        V6Bits {
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }
}

impl From<V6Bits> for u128 {
    fn from(v: V6Bits) -> u128 {
        (u128::from(v.hi) << 64) | u128::from(v.lo)
    }
}

impl Bits for V6Bits {
    fn mask(self, len: u8) -> V6Bits {
        V6Bits::from(u128::from(self) & crate::prefix::mask128(len))
    }
    fn top(self, bits: u8) -> usize {
        self.hi.checked_shr(64 - u32::from(bits)).unwrap_or(0) as usize
    }
}

/// One indicator: a prefix in one list, with an optional note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<K> {
    pub(crate) net: K,
    /// Index into the set's note pool, or [`NO_NOTE`].
    pub(crate) note: u32,
    pub(crate) list: u16,
    pub(crate) len: u8,
}

/// Marker for "no note".
pub(crate) const NO_NOTE: u32 = u32::MAX;

/// A run of entries sharing one prefix length, with a bucket index on its top bits:
/// `buckets[first + b]..buckets[first + b + 1]` are the entries whose top `bits` bits
/// equal `b`. It turns a binary search over the whole run (~17 cache misses for a
/// large run) into one over a handful of entries, for at most 4 bytes per entry.
#[derive(Clone, Copy, Debug)]
struct Run {
    len: u8,
    bits: u8,
    first: usize,
}

/// A family's entries (sorted once built) and their length runs.
#[derive(Debug)]
pub(crate) struct Table<K> {
    entries: Vec<Entry<K>>,
    runs: Vec<Run>,
    buckets: Vec<u32>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            runs: Vec::new(),
            buckets: Vec::new(),
        }
    }
}

impl<K: Bits> Table<K> {
    /// Append an entry (the table must be [`Table::seal`]ed before lookups).
    pub(crate) fn push(&mut self, e: Entry<K>) {
        self.entries.push(e);
    }

    /// Number of entries (after sealing: distinct (prefix, list) pairs).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drop entries pushed after `len` (undoing a list that turned out corrupt).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
    }

    /// All entries, in table order.
    pub(crate) fn entries(&self) -> &[Entry<K>] {
        &self.entries
    }

    /// Sort, drop duplicates of the same prefix in the same list, index the runs.
    pub(crate) fn seal(&mut self) {
        self.entries
            .sort_unstable_by_key(|e| (Reverse(e.len), e.net, e.list));
        // Keep the first note when a list repeats a prefix.
        self.entries
            .dedup_by(|b, a| a.len == b.len && a.net == b.net && a.list == b.list);
        self.entries.shrink_to_fit();
        self.runs.clear();
        self.buckets.clear();
        let mut start = 0;
        while start < self.entries.len() {
            let len = self.entries[start].len;
            let end = start + self.entries[start..].partition_point(|e| e.len == len);
            // No more buckets than entries (memory), no more bits than the prefix has
            // (a bucket must hold whole prefixes).
            let bits = (end - start).ilog2().min(u32::from(len)) as u8;
            let bits = bits.min(MAX_BUCKET_BITS);
            self.runs.push(Run {
                len,
                bits,
                first: self.buckets.len(),
            });
            let mut pos = start;
            for b in 0..(1usize << bits) {
                while pos < end && self.entries[pos].net.top(bits) < b {
                    pos += 1;
                }
                self.buckets.push(pos as u32);
            }
            self.buckets.push(end as u32);
            start = end;
        }
        self.buckets.shrink_to_fit();
    }

    /// Every entry whose prefix contains `addr`, longest prefix first.
    /// `None` (an address of the other family) yields nothing.
    pub(crate) fn lookup(&self, addr: Option<K>) -> impl Iterator<Item = &Entry<K>> + '_ {
        addr.into_iter().flat_map(move |addr| {
            self.runs.iter().flat_map(move |run| {
                let key = addr.mask(run.len);
                let b = run.first + key.top(run.bits);
                let lo = self.buckets.get(b).map_or(0, |&p| p as usize);
                let hi = self.buckets.get(b + 1).map_or(0, |&p| p as usize);
                let bucket = self.entries.get(lo..hi).unwrap_or(&[]);
                let first = bucket.partition_point(|e| e.net < key);
                bucket[first..].iter().take_while(move |e| e.net == key)
            })
        })
    }

    /// Bytes of heap this table holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<K>>()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.buckets.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_compact() {
        assert_eq!(std::mem::size_of::<Entry<u32>>(), 12);
        assert_eq!(std::mem::size_of::<Entry<V6Bits>>(), 24);
    }

    #[test]
    fn v6_bits_round_trip_and_order() {
        let a: u128 = 0x2001_0db8_0000_0000_ffff_0000_0000_0001;
        assert_eq!(u128::from(V6Bits::from(a)), a);
        assert!(V6Bits::from(1u128 << 64) > V6Bits::from(u128::from(u64::MAX)));
    }
}
