//! [`KernelSource`]: the live [`CounterSource`] that reads `/proc/net/dev`,
//! `/proc/net/snmp`, `/proc/net/snmp6` and `/sys/class/net/*/ifindex` through a
//! [`ProcFs`], connection counts through a [`ConnCounter`], and timestamps from a
//! [`Clock`].

use crate::clock::{Clock, SystemClock};
use crate::conns::ConnCounter;
use crate::error::SourceError;
use crate::filter::InterfaceFilter;
use crate::procfs::{ProcFs, RealProcFs};
use crate::procnetdev::{parse_proc_net_dev, PROC_NET_DEV};
use crate::snmp::{parse_snmp, PROC_NET_SNMP, PROC_NET_SNMP6};
use crate::sockdiag::SockDiagConnCounter;
use crate::source::CounterSource;
use levee_model::{ConnCounts, InterfaceCounters, RawSample};
use std::io;

/// How long resolved ifindexes are trusted while the set of interface names
/// stays the same. Re-reading sysfs for every interface every 100 ms tick costs
/// three syscalls each for a value that changes only when interfaces come and go;
/// a change in the name set (add, remove, rename) refreshes at once, and this
/// bound catches the rare delete-and-recreate under the same name.
const IFINDEX_REFRESH_MS: u64 = 10_000;

/// The live kernel counter source.
///
/// A failing connection counter does not fail the sample: the sample gets
/// `conns: None` and the error is kept in [`KernelSource::last_conn_error`]
/// until a count succeeds again. Failures to read or parse the `/proc` files do
/// fail the sample.
pub struct KernelSource {
    procfs: Box<dyn ProcFs>,
    clock: Box<dyn Clock>,
    filter: InterfaceFilter,
    conn_counter: Option<Box<dyn ConnCounter>>,
    last_conn_error: Option<SourceError>,
    conn_interval_ms: u64,
    /// When the counter last ran, and what it returned (`None` if it failed).
    last_conn_count: Option<(u64, Option<ConnCounts>)>,
    ifindex_cache: IfindexCache,
}

#[derive(Default)]
struct IfindexCache {
    /// Names in `/proc/net/dev` order with their ifindex, as last resolved.
    entries: Vec<(String, Option<u32>)>,
    resolved_at_ms: Option<u64>,
}

impl KernelSource {
    /// A source with no connection counter (samples carry `conns: None`).
    pub fn new(procfs: Box<dyn ProcFs>, clock: Box<dyn Clock>, filter: InterfaceFilter) -> Self {
        KernelSource {
            procfs,
            clock,
            filter,
            conn_counter: None,
            last_conn_error: None,
            conn_interval_ms: 0,
            last_conn_count: None,
            ifindex_cache: IfindexCache::default(),
        }
    }

    /// Adds a connection counter.
    pub fn with_conn_counter(mut self, counter: Box<dyn ConnCounter>) -> Self {
        self.conn_counter = Some(counter);
        self
    }

    /// Runs the connection counter at most once per `ms` (default 0: every
    /// sample); samples in between repeat the last counts. The sock_diag dump
    /// costs the kernel roughly 0.3 us per socket (13 ms for 46k sockets on the
    /// development VM), so on busy hosts counting every 100 ms tick is too
    /// expensive for a gauge that changes slowly.
    pub fn with_conn_interval_ms(mut self, ms: u64) -> Self {
        self.conn_interval_ms = ms;
        self
    }

    /// The real thing: [`RealProcFs`], [`SystemClock`] and a
    /// [`SockDiagConnCounter`]. If the netlink socket cannot be opened, the
    /// source still works without connection counts and the reason is in
    /// [`KernelSource::last_conn_error`] from the start.
    pub fn system(filter: InterfaceFilter) -> Self {
        let source = KernelSource::new(Box::new(RealProcFs), Box::new(SystemClock::new()), filter);
        match SockDiagConnCounter::new() {
            Ok(counter) => source.with_conn_counter(Box::new(counter)),
            Err(e) => KernelSource {
                last_conn_error: Some(e),
                ..source
            },
        }
    }

    /// Why the latest sample has `conns: None`, if the counter failed (or could
    /// not be created). Cleared by the next successful count.
    pub fn last_conn_error(&self) -> Option<&SourceError> {
        self.last_conn_error.as_ref()
    }

    pub fn filter(&self) -> &InterfaceFilter {
        &self.filter
    }

    fn read(&self, path: &str) -> Result<String, SourceError> {
        self.procfs
            .read_to_string(path)
            .map_err(|error| SourceError::Read {
                path: path.to_string(),
                error,
            })
    }

    /// Sets `ifindex` from `/sys/class/net/NAME/ifindex`; unreadable -> `None`
    /// (e.g. the interface vanished since `/proc/net/dev` was read, or no /sys).
    fn resolve_ifindexes(&mut self, now_ms: u64, interfaces: &mut [InterfaceCounters]) {
        let cache = &mut self.ifindex_cache;
        let fresh = cache
            .resolved_at_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < IFINDEX_REFRESH_MS);
        let same_names = cache.entries.len() == interfaces.len()
            && cache
                .entries
                .iter()
                .zip(interfaces.iter())
                .all(|((cached, _), i)| *cached == i.name);
        if fresh && same_names {
            for (i, (_, idx)) in interfaces.iter_mut().zip(cache.entries.iter()) {
                i.ifindex = *idx;
            }
            return;
        }
        cache.entries.clear();
        for i in interfaces.iter_mut() {
            i.ifindex = self
                .procfs
                .read_to_string(&format!("/sys/class/net/{}/ifindex", i.name))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            cache.entries.push((i.name.clone(), i.ifindex));
        }
        cache.resolved_at_ms = Some(now_ms);
    }
}

impl KernelSource {
    fn count_conns(&mut self, now_ms: u64) -> Option<ConnCounts> {
        let counter = self.conn_counter.as_mut()?;
        if let Some((at, counts)) = self.last_conn_count {
            if now_ms.saturating_sub(at) < self.conn_interval_ms {
                return counts;
            }
        }
        let counts = match counter.count() {
            Ok(counts) => {
                self.last_conn_error = None;
                Some(counts)
            }
            Err(e) => {
                self.last_conn_error = Some(e);
                None
            }
        };
        self.last_conn_count = Some((now_ms, counts));
        counts
    }
}

impl CounterSource for KernelSource {
    fn sample(&mut self) -> Result<RawSample, SourceError> {
        // One timestamp for the whole sample, taken right before the interface
        // counters it is mostly used to turn into rates.
        let mono_ms = self.clock.mono_ms();
        let unix_ms = self.clock.unix_ms();

        let dev = self.read(PROC_NET_DEV)?;
        let mut interfaces = parse_proc_net_dev(&dev)?;
        interfaces.retain(|i| self.filter.matches(&i.name));
        self.resolve_ifindexes(mono_ms, &mut interfaces);

        let snmp = self.read(PROC_NET_SNMP)?;
        let snmp6 = match self.procfs.read_to_string(PROC_NET_SNMP6) {
            Ok(text) => Some(text),
            // The file only exists when IPv6 is enabled.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(SourceError::Read {
                    path: PROC_NET_SNMP6.to_string(),
                    error,
                })
            }
        };
        let proto = parse_snmp(&snmp, snmp6.as_deref())?;

        let conns = self.count_conns(mono_ms);

        Ok(RawSample {
            mono_ms,
            unix_ms,
            interfaces,
            proto,
            conns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::procfs::FakeProcFs;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const DEV: &str = include_str!("../tests/fixtures/proc_net_dev.txt");
    const SNMP: &str = include_str!("../tests/fixtures/proc_net_snmp.txt");
    const SNMP6: &str = include_str!("../tests/fixtures/proc_net_snmp6.txt");

    fn fake() -> FakeProcFs {
        let fs = FakeProcFs::new();
        fs.set(PROC_NET_DEV, DEV);
        fs.set(PROC_NET_SNMP, SNMP);
        fs.set(PROC_NET_SNMP6, SNMP6);
        fs.set("/sys/class/net/lo/ifindex", "1\n");
        fs.set("/sys/class/net/eth0/ifindex", "4\n");
        fs.set("/sys/class/net/ifb0/ifindex", "2\n");
        fs
    }

    fn source(fs: &FakeProcFs, clock: &ManualClock, filter: InterfaceFilter) -> KernelSource {
        KernelSource::new(Box::new(fs.clone()), Box::new(clock.clone()), filter)
    }

    #[test]
    fn samples_fake_files_with_filter_ifindex_and_clock() {
        let fs = fake();
        let clock = ManualClock::new(5_000, 1_700_000_000_000);
        let mut src = source(&fs, &clock, InterfaceFilter::default());
        let s = src.sample().unwrap();
        assert_eq!((s.mono_ms, s.unix_ms), (5_000, 1_700_000_000_000));
        let got: Vec<(&str, Option<u32>)> = s
            .interfaces
            .iter()
            .map(|i| (i.name.as_str(), i.ifindex))
            .collect();
        // lo filtered out; ifb1 has no sysfs file -> None.
        assert_eq!(got, [("ifb0", Some(2)), ("ifb1", None), ("eth0", Some(4))]);
        assert_eq!(s.proto.icmp_in_msgs, 2);
        assert_eq!(s.conns, None);
        assert!(src.last_conn_error().is_none());
    }

    #[test]
    fn explicit_filter_keeps_only_named() {
        let fs = fake();
        let clock = ManualClock::new(0, 0);
        let filter = InterfaceFilter::Only(vec!["eth0".into(), "lo".into(), "nope".into()]);
        let s = source(&fs, &clock, filter).sample().unwrap();
        let names: Vec<&str> = s.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0"]);
    }

    #[test]
    fn snmp6_absent_means_ipv4_only() {
        let fs = fake();
        fs.remove(PROC_NET_SNMP6);
        let s = source(&fs, &ManualClock::new(0, 0), InterfaceFilter::default())
            .sample()
            .unwrap();
        assert_eq!(s.proto.icmp_in_msgs, 1);
    }

    #[test]
    fn missing_proc_file_names_the_path() {
        let fs = fake();
        fs.remove(PROC_NET_SNMP);
        let e = source(&fs, &ManualClock::new(0, 0), InterfaceFilter::default())
            .sample()
            .unwrap_err();
        assert!(e.to_string().starts_with("reading /proc/net/snmp:"), "{e}");
    }

    #[test]
    fn bad_proc_file_is_a_parse_error() {
        let fs = fake();
        fs.set(PROC_NET_DEV, "garbage");
        let e = source(&fs, &ManualClock::new(0, 0), InterfaceFilter::default())
            .sample()
            .unwrap_err();
        assert!(matches!(e, SourceError::Parse(_)), "{e}");
    }

    #[test]
    fn conn_counter_failure_does_not_fail_the_sample() {
        let fs = fake();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let counter = move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(SourceError::netlink(
                    "dump request",
                    io::Error::from_raw_os_error(libc::EPERM),
                ))
            } else {
                Ok(ConnCounts {
                    established: 3,
                    syn_recv: 1,
                    time_wait: 0,
                    total: 5,
                })
            }
        };
        let mut src = source(&fs, &ManualClock::new(0, 0), InterfaceFilter::default())
            .with_conn_counter(Box::new(counter));
        let s = src.sample().unwrap();
        assert_eq!(s.conns, None);
        assert!(src.last_conn_error().unwrap().is_permission_denied());
        let s = src.sample().unwrap();
        assert_eq!(s.conns.unwrap().established, 3);
        assert!(src.last_conn_error().is_none());
    }

    #[test]
    fn conn_interval_repeats_the_last_counts_between_runs() {
        let fs = fake();
        let clock = ManualClock::new(0, 0);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let counter = move || {
            let n = c.fetch_add(1, Ordering::SeqCst) as u64;
            Ok(ConnCounts {
                total: n,
                ..ConnCounts::default()
            })
        };
        let mut src = source(&fs, &clock, InterfaceFilter::default())
            .with_conn_counter(Box::new(counter))
            .with_conn_interval_ms(1_000);
        let mut totals = Vec::new();
        for _ in 0..12 {
            totals.push(src.sample().unwrap().conns.unwrap().total);
            clock.advance(100);
        }
        assert_eq!(totals, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn ifindex_cache_follows_renames_and_expires() {
        let fs = fake();
        let clock = ManualClock::new(0, 0);
        let mut src = source(
            &fs,
            &clock,
            InterfaceFilter::Only(vec!["eth0".into(), "wan0".into()]),
        );
        assert_eq!(src.sample().unwrap().interfaces[0].ifindex, Some(4));

        // Same names: the cached value is used even though sysfs changed...
        fs.set("/sys/class/net/eth0/ifindex", "40\n");
        clock.advance(100);
        assert_eq!(src.sample().unwrap().interfaces[0].ifindex, Some(4));
        // ...until the refresh interval passes.
        clock.advance(IFINDEX_REFRESH_MS);
        assert_eq!(src.sample().unwrap().interfaces[0].ifindex, Some(40));

        // A rename changes the name set, so it is resolved at once.
        fs.set(PROC_NET_DEV, DEV.replace("eth0:", "wan0:"));
        fs.set("/sys/class/net/wan0/ifindex", "40\n");
        clock.advance(100);
        let s = src.sample().unwrap();
        assert_eq!(s.interfaces[0].name, "wan0");
        assert_eq!(s.interfaces[0].ifindex, Some(40));
    }
}
