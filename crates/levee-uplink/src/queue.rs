//! The offline event queue: bounded, on disk, in order.
//!
//! Every event the agent makes is appended here first and removed only when
//! the server has stored it, so events survive a server outage and an agent
//! restart. When the queue holds `cap` events (default 2,000) the oldest is
//! dropped for each new one, and the number dropped is reported to the
//! server with the next delivery.
//!
//! The file is a log of JSON lines ([`Record`]): events with a sequence
//! number, acknowledgements ("delivered through seq N"), drop reports, and a
//! base record written by compaction. [`QueueState`] is the pure core: the
//! same records applied in order give the same state, live or on reload. A
//! torn last line (a crash mid-write) is skipped.

use levee_proto::EventEnvelope;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub const DEFAULT_CAP: usize = 2_000;
pub const FILE: &str = "uplink-queue.jsonl";

/// One line of the queue file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    /// A queued event.
    Event { seq: u64, event: EventEnvelope },
    /// Events up to and including `through` were delivered.
    Ack { through: u64 },
    /// `n` dropped events were reported to the server.
    Reported { n: u64 },
    /// Written first by compaction.
    Base { next_seq: u64, dropped: u64 },
}

/// The queue's contents. Pure: no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueState {
    pub cap: usize,
    items: VecDeque<(u64, EventEnvelope)>,
    next_seq: u64,
    /// Dropped and not yet reported to the server.
    dropped: u64,
}

impl QueueState {
    pub fn new(cap: usize) -> Self {
        QueueState {
            cap: cap.max(1),
            items: VecDeque::new(),
            next_seq: 1,
            dropped: 0,
        }
    }

    /// The one transition function (live and on reload).
    pub fn apply(&mut self, r: &Record) {
        match r {
            Record::Event { seq, event } => {
                self.items.push_back((*seq, event.clone()));
                self.next_seq = self.next_seq.max(seq + 1);
                while self.items.len() > self.cap {
                    self.items.pop_front();
                    self.dropped += 1;
                }
            }
            Record::Ack { through } => {
                while self.items.front().is_some_and(|(s, _)| s <= through) {
                    self.items.pop_front();
                }
            }
            Record::Reported { n } => self.dropped = self.dropped.saturating_sub(*n),
            Record::Base { next_seq, dropped } => {
                self.next_seq = self.next_seq.max(*next_seq);
                self.dropped = *dropped;
            }
        }
    }

    /// The record that queues `event`.
    pub fn push_record(&self, event: EventEnvelope) -> Record {
        Record::Event {
            seq: self.next_seq,
            event,
        }
    }

    /// Up to `max` oldest events and the sequence number of the last one.
    pub fn batch(&self, max: usize) -> (Vec<EventEnvelope>, Option<u64>) {
        let items: Vec<&(u64, EventEnvelope)> = self.items.iter().take(max).collect();
        (
            items.iter().map(|(_, e)| e.clone()).collect(),
            items.last().map(|(s, _)| *s),
        )
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The records that recreate this state (for compaction).
    pub fn snapshot(&self) -> Vec<Record> {
        let mut out = vec![Record::Base {
            next_seq: self.next_seq,
            dropped: self.dropped,
        }];
        out.extend(self.items.iter().map(|(seq, e)| Record::Event {
            seq: *seq,
            event: e.clone(),
        }));
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("event queue {path}: {source} (the agent keeps detecting; events are not queued for the server)")]
pub struct QueueError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What opening found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub events: usize,
    pub bad_lines: usize,
}

/// [`QueueState`] mirrored to a file.
pub struct DiskQueue {
    state: QueueState,
    path: PathBuf,
    file: File,
    lines: usize,
}

impl std::fmt::Debug for DiskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskQueue")
            .field("path", &self.path)
            .field("len", &self.state.len())
            .finish()
    }
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, replaying its file.
    pub fn open(dir: &Path, cap: usize) -> Result<(DiskQueue, Loaded), QueueError> {
        let path = dir.join(FILE);
        let err = |source| QueueError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut state = QueueState::new(cap);
        let mut loaded = Loaded::default();
        let mut lines = 0;
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(err)?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    lines += 1;
                    match serde_json::from_str::<Record>(&line) {
                        Ok(r) => state.apply(&r),
                        Err(_) => loaded.bad_lines += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        if loaded.bad_lines > 0 {
            tracing::warn!(
                "{}: skipped {} unreadable lines (a crash mid-write?)",
                path.display(),
                loaded.bad_lines
            );
        }
        loaded.events = state.len();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        let mut q = DiskQueue {
            state,
            path,
            file,
            lines,
        };
        // Start from a clean file: bad lines gone, history folded.
        q.compact()?;
        Ok((q, loaded))
    }

    fn err(&self, source: std::io::Error) -> QueueError {
        QueueError {
            path: self.path.clone(),
            source,
        }
    }

    fn append(&mut self, records: &[Record]) -> Result<(), QueueError> {
        let mut buf = String::new();
        for r in records {
            buf.push_str(&serde_json::to_string(r).expect("records serialise"));
            buf.push('\n');
        }
        // One write (O_APPEND) then fsync: an acknowledged event is on disk.
        self.file
            .write_all(buf.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| self.err(e))?;
        self.lines += records.len();
        for r in records {
            self.state.apply(r);
        }
        if self.lines > 2 * self.state.cap + 64 {
            self.compact()?;
        }
        Ok(())
    }

    /// Queues an event (dropping the oldest when full).
    pub fn push(&mut self, event: EventEnvelope) -> Result<(), QueueError> {
        let before = self.state.dropped();
        let r = self.state.push_record(event);
        self.append(&[r])?;
        if self.state.dropped() > before {
            tracing::warn!(
                "event queue full ({} events): dropped the oldest; {} dropped so far",
                self.state.cap,
                self.state.dropped()
            );
        }
        Ok(())
    }

    /// Marks events up to `through` delivered.
    pub fn ack(&mut self, through: u64) -> Result<(), QueueError> {
        self.append(&[Record::Ack { through }])?;
        if self.state.is_empty() {
            self.compact()?;
        }
        Ok(())
    }

    /// Records that `n` dropped events were reported.
    pub fn reported(&mut self, n: u64) -> Result<(), QueueError> {
        if n == 0 {
            return Ok(());
        }
        self.append(&[Record::Reported { n }])
    }

    /// Rewrites the file as the current state (atomically: temp + rename).
    pub fn compact(&mut self) -> Result<(), QueueError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let records = self.state.snapshot();
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).expect("records serialise"));
            text.push('\n');
        }
        let write = || -> std::io::Result<File> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            OpenOptions::new().append(true).open(&self.path)
        };
        self.file = write().map_err(|e| self.err(e))?;
        self.lines = records.len();
        Ok(())
    }

    pub fn state(&self) -> &QueueState {
        &self.state
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn ev(n: u64) -> EventEnvelope {
        serde_json::from_value(serde_json::json!({
            "event_id": Uuid::from_u128(n as u128), "ts": "2026-11-21T01:44:10.123Z", "node": "n",
            "event": "baseline_ready", "series": n}))
        .unwrap()
    }

    #[test]
    fn oldest_dropped_when_full_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = DiskQueue::open(dir.path(), 3).unwrap();
        for n in 1..=5 {
            q.push(ev(n)).unwrap();
        }
        let (batch, last) = q.state().batch(10);
        assert_eq!(batch, vec![ev(3), ev(4), ev(5)]);
        assert_eq!(last, Some(5));
        assert_eq!(q.state().dropped(), 2);
        q.reported(2).unwrap();
        assert_eq!(q.state().dropped(), 0);
    }

    #[test]
    fn survives_restart_in_order_and_acks_stick() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut q, _) = DiskQueue::open(dir.path(), 100).unwrap();
            for n in 1..=10 {
                q.push(ev(n)).unwrap();
            }
            let (_, last) = q.state().batch(4);
            q.ack(last.unwrap()).unwrap();
        }
        let (q, loaded) = DiskQueue::open(dir.path(), 100).unwrap();
        assert_eq!(loaded.events, 6);
        let (batch, last) = q.state().batch(100);
        assert_eq!(batch, (5..=10).map(ev).collect::<Vec<_>>());
        assert_eq!(last, Some(10));
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut q, _) = DiskQueue::open(dir.path(), 10).unwrap();
            q.push(ev(1)).unwrap();
        }
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"r\":\"event\",\"seq\":2,\"ev").unwrap();
        drop(f);
        let (mut q, loaded) = DiskQueue::open(dir.path(), 10).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                events: 1,
                bad_lines: 1
            }
        );
        q.push(ev(2)).unwrap();
        assert_eq!(
            q.state().batch(10).1,
            Some(2),
            "sequence numbers keep growing"
        );
    }

    #[test]
    fn a_smaller_cap_on_restart_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut q, _) = DiskQueue::open(dir.path(), 10).unwrap();
            for n in 1..=6 {
                q.push(ev(n)).unwrap();
            }
        }
        let (q, _) = DiskQueue::open(dir.path(), 4).unwrap();
        assert_eq!(q.state().batch(10).0, (3..=6).map(ev).collect::<Vec<_>>());
        assert_eq!(q.state().dropped(), 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        AckSome(usize),
        Report,
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Push),
            2 => (1usize..5).prop_map(Op::AckSome),
            1 => Just(Op::Report),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The file always reloads to the in-memory state, and the queue
        /// holds exactly the newest unacknowledged events up to the cap.
        #[test]
        fn disk_matches_memory_and_a_model(ops in proptest::collection::vec(op(), 1..120), cap in 1usize..8) {
            let dir = tempfile::tempdir().unwrap();
            let (mut q, _) = DiskQueue::open(dir.path(), cap).unwrap();
            let mut model: VecDeque<u64> = VecDeque::new();
            let mut model_dropped = 0u64;
            let mut n = 0u64;
            for o in ops {
                match o {
                    Op::Push => {
                        n += 1;
                        q.push(ev(n)).unwrap();
                        model.push_back(n);
                        if model.len() > cap { model.pop_front(); model_dropped += 1; }
                    }
                    Op::AckSome(k) => {
                        let (_, last) = q.state().batch(k);
                        if let Some(last) = last {
                            q.ack(last).unwrap();
                            for _ in 0..k.min(model.len()) { model.pop_front(); }
                        }
                    }
                    Op::Report => {
                        let d = q.state().dropped();
                        q.reported(d).unwrap();
                        model_dropped = 0;
                    }
                    Op::Reopen => {
                        let before = q.state().clone();
                        drop(q);
                        q = DiskQueue::open(dir.path(), cap).unwrap().0;
                        prop_assert_eq!(q.state().batch(usize::MAX).0, before.batch(usize::MAX).0);
                        prop_assert_eq!(q.state().dropped(), before.dropped());
                    }
                }
                let got: Vec<EventEnvelope> = q.state().batch(usize::MAX).0;
                let want: Vec<EventEnvelope> = model.iter().map(|&k| ev(k)).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(q.state().dropped(), model_dropped);
            }
        }
    }
}
