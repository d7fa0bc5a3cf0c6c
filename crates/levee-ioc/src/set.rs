//! [`IocSet`]: several named indicator lists in one immutable prefix-match structure.
//!
//! A set is built once ([`IocSetBuilder`]) and then only read, so it can be shared as
//! an `Arc` between the detector thread and reloads without locks on the lookup path.

use std::io::BufRead;
use std::net::IpAddr;

use crate::error::SetError;
use crate::parse::{parse_reader, Indicator, ParseReport};
use crate::prefix::Prefix;
use crate::table::{Entry, Table, V6Bits, NO_NOTE};
use crate::Format;

/// One list containing a looked-up address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match<'a> {
    /// The list's configured name.
    pub list: &'a str,
    /// The list's prefix that contains the address.
    pub prefix: Prefix,
    /// The list's note for that prefix (Spamhaus: the SBL reference).
    pub note: Option<&'a str>,
}

/// Identifies a list inside a builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListId(u16);

/// Notes stored back to back in one string: one allocation instead of one per note.
#[derive(Debug, Default)]
struct NotePool {
    text: String,
    ends: Vec<u32>,
}

impl NotePool {
    fn push(&mut self, note: &str) -> u32 {
        let (Ok(id), Ok(_)) = (
            u32::try_from(self.ends.len()),
            u32::try_from(self.text.len() + note.len()),
        ) else {
            // Beyond 4 GiB of notes: keep the indicator, drop its note.
            return NO_NOTE;
        };
        if id == NO_NOTE {
            return NO_NOTE;
        }
        self.text.push_str(note);
        // Fits: checked just above.
        self.ends.push(self.text.len() as u32);
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        let i = usize::try_from(id).ok()?;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }

    fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4
    }
}

/// An immutable, multi-list, longest-prefix-first indicator set for IPv4 and IPv6.
#[derive(Debug, Default)]
pub struct IocSet {
    lists: Vec<Box<str>>,
    list_sizes: Vec<usize>,
    v4: Table<u32>,
    v6: Table<V6Bits>,
    notes: NotePool,
}

impl IocSet {
    /// Start building a set.
    pub fn builder() -> IocSetBuilder {
        IocSetBuilder::default()
    }

    /// Every list containing `ip`, longest prefix first (an address can be in several
    /// lists, and in one list through several nested prefixes).
    pub fn lookup(&self, ip: IpAddr) -> impl Iterator<Item = Match<'_>> + '_ {
        let (a4, a6) = match ip {
            IpAddr::V4(a) => (Some(u32::from(a)), None),
            IpAddr::V6(a) => (None, Some(V6Bits::from(u128::from(a)))),
        };
        let v4 = self
            .v4
            .lookup(a4)
            .map(|e| self.to_match(e, Prefix::v4(e.net, e.len)));
        let v6 = self
            .v6
            .lookup(a6)
            .map(|e| self.to_match(e, Prefix::v6(u128::from(e.net), e.len)));
        v4.chain(v6)
    }

    /// For an incident's top sources: each source that is in at least one list, with
    /// its matches. Sources in no list are left out; input order is kept.
    pub fn match_sources(&self, sources: &[IpAddr]) -> Vec<(IpAddr, Vec<Match<'_>>)> {
        sources
            .iter()
            .filter_map(|&ip| {
                let matches: Vec<_> = self.lookup(ip).collect();
                (!matches.is_empty()).then_some((ip, matches))
            })
            .collect()
    }

    /// The list names, in configuration order.
    pub fn list_names(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().map(|l| &**l)
    }

    /// Distinct indicators held for `list` (None if no such list).
    pub fn list_len(&self, list: &str) -> Option<usize> {
        let i = self.lists.iter().position(|l| &**l == list)?;
        self.list_sizes.get(i).copied()
    }

    /// Total distinct (prefix, list) pairs.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True if no list holds any indicator.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the set (the benchmark cross-checks this against an allocator
    /// count).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.notes.heap_bytes()
            + self.lists.iter().map(|l| l.len()).sum::<usize>()
            + self.lists.capacity() * std::mem::size_of::<Box<str>>()
            + self.list_sizes.capacity() * std::mem::size_of::<usize>()
    }

    fn to_match<K>(&self, e: &Entry<K>, prefix: Prefix) -> Match<'_> {
        Match {
            list: self.lists.get(usize::from(e.list)).map_or("", |l| l),
            prefix,
            note: self.notes.get(e.note),
        }
    }
}

/// Where a builder stood before a list was added, to undo it if it proves corrupt.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint {
    v4: usize,
    v6: usize,
}

/// Builds an [`IocSet`]: declare lists, stream indicators in, then [`build`](Self::build).
#[derive(Debug, Default)]
pub struct IocSetBuilder {
    set: IocSet,
}

impl IocSetBuilder {
    /// Declare a list; its name is what [`Match::list`] reports.
    pub fn add_list(&mut self, name: &str) -> Result<ListId, SetError> {
        if self.set.lists.iter().any(|l| &**l == name) {
            return Err(SetError::DuplicateList(name.to_owned()));
        }
        let id = u16::try_from(self.set.lists.len()).map_err(|_| SetError::TooManyLists {
            max: usize::from(u16::MAX) + 1,
        })?;
        self.set.lists.push(name.into());
        Ok(ListId(id))
    }

    /// Add one indicator to a list.
    pub fn insert(&mut self, list: ListId, indicator: Indicator<'_>) {
        let note = indicator.note.map_or(NO_NOTE, |n| self.set.notes.push(n));
        let len = indicator.prefix.len();
        match indicator.prefix.addr() {
            IpAddr::V4(a) => self.set.v4.push(Entry {
                net: u32::from(a),
                note,
                list: list.0,
                len,
            }),
            IpAddr::V6(a) => self.set.v6.push(Entry {
                net: V6Bits::from(u128::from(a)),
                note,
                list: list.0,
                len,
            }),
        }
    }

    /// Parse a list from `reader` straight into the set (no intermediate copy).
    pub fn add_reader<R: BufRead>(
        &mut self,
        list: ListId,
        reader: R,
        file: &str,
        format: Format,
    ) -> std::io::Result<ParseReport> {
        parse_reader(reader, file, format, |i| self.insert(list, i))
    }

    /// Copy every indicator of `old_list` in `old` into `list` (keeping the previous
    /// version of a list whose new file failed). Returns how many were copied.
    pub fn copy_list(&mut self, list: ListId, old: &IocSet, old_list: &str) -> usize {
        let Some(old_id) = old.lists.iter().position(|l| &**l == old_list) else {
            return 0;
        };
        let mut copied = 0;
        for e in old
            .v4
            .entries()
            .iter()
            .filter(|e| usize::from(e.list) == old_id)
        {
            let note = old.notes.get(e.note);
            self.insert(
                list,
                Indicator {
                    prefix: Prefix::v4(e.net, e.len),
                    note,
                },
            );
            copied += 1;
        }
        for e in old
            .v6
            .entries()
            .iter()
            .filter(|e| usize::from(e.list) == old_id)
        {
            let note = old.notes.get(e.note);
            let prefix = Prefix::v6(u128::from(e.net), e.len);
            self.insert(list, Indicator { prefix, note });
            copied += 1;
        }
        copied
    }

    /// Remember the current position (see [`rollback`](Self::rollback)).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            v4: self.set.v4.len(),
            v6: self.set.v6.len(),
        }
    }

    /// Drop every indicator inserted since `cp`. Notes already pooled stay (they are
    /// unreferenced and small); lists declared since stay declared.
    pub fn rollback(&mut self, cp: Checkpoint) {
        self.set.v4.truncate(cp.v4);
        self.set.v6.truncate(cp.v6);
    }

    /// Sort, deduplicate and index; the set is then immutable.
    pub fn build(mut self) -> IocSet {
        self.set.v4.seal();
        self.set.v6.seal();
        self.set.notes.text.shrink_to_fit();
        self.set.notes.ends.shrink_to_fit();
        let mut sizes = vec![0usize; self.set.lists.len()];
        let lists = self.set.v4.entries().iter().map(|e| e.list);
        for list in lists.chain(self.set.v6.entries().iter().map(|e| e.list)) {
            if let Some(n) = sizes.get_mut(usize::from(list)) {
                *n += 1;
            }
        }
        self.set.list_sizes = sizes;
        self.set
    }
}
