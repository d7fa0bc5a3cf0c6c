//! Reading a process's CPU time and memory, and interface counters, from /proc.
//!
//! CPU time is the sum over the process's threads of the first field of
//! `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU), which is far finer
//! than `/proc/<pid>/stat`'s utime + stime (clock ticks, usually 10 ms); the
//! latter is the fallback when schedstat is unavailable. Threads that exit
//! between two samples take their time with them, so for processes that start
//! and stop threads the delta is a lower bound. `/proc/<pid>/status` gives
//! VmRSS and VmHWM in kB.
//! `/proc/<pid>/net/dev` shows the interfaces of *that process's* network
//! namespace, so with the agent's pid we read the victim namespace's counters
//! without forking anything.

use crate::error::{LabError, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// CPU time and memory of a process at one instant.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    /// User + system CPU time, all threads.
    pub cpu: Duration,
    /// Resident set size now, kB.
    pub rss_kb: u64,
    /// Peak resident set size, kB.
    pub hwm_kb: u64,
}

impl ProcSample {
    /// CPU use between `earlier` and `self`, in percent of one core.
    pub fn cpu_percent_since(&self, earlier: &ProcSample) -> f64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let cpu = self.cpu.saturating_sub(earlier.cpu).as_secs_f64();
        100.0 * cpu / wall
    }
}

/// Samples `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> Result<ProcSample> {
    let at = Instant::now();
    let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
    let stat =
        std::fs::read_to_string(&stat_path).map_err(|e| LabError::io("read", &stat_path, e))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| LabError::Parse {
        path: stat_path.clone(),
        detail: "no utime/stime fields".into(),
    })?;
    let status_path = PathBuf::from(format!("/proc/{pid}/status"));
    let status =
        std::fs::read_to_string(&status_path).map_err(|e| LabError::io("read", &status_path, e))?;
    Ok(ProcSample {
        at,
        cpu: schedstat_cpu(pid).unwrap_or_else(|| ticks_to_duration(ticks)),
        rss_kb: parse_status_kb(&status, "VmRSS").unwrap_or(0),
        hwm_kb: parse_status_kb(&status, "VmHWM").unwrap_or(0),
    })
}

/// Sum of on-CPU nanoseconds over `/proc/<pid>/task/*/schedstat`.
fn schedstat_cpu(pid: u32) -> Option<Duration> {
    let mut total: u64 = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total += parse_schedstat_ns(&text)?;
        }
    }
    Some(Duration::from_nanos(total))
}

/// The first field of a schedstat line (time spent on the CPU, ns).
pub fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / hz))
}

/// utime + stime (clock ticks) from a `/proc/<pid>/stat` line. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted
/// after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is index 11.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` value such as `VmRSS:   1234 kB` from `/proc/<pid>/status`.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Machine-wide CPU time by kind (the `cpu` line of `/proc/stat`), e.g. to
/// see what the kernel's receive path costs: softirq time is where packet
/// processing (XDP, netfilter, the stack) is charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub nice: Duration,
    pub system: Duration,
    pub idle: Duration,
    pub iowait: Duration,
    pub irq: Duration,
    pub softirq: Duration,
    pub steal: Duration,
}

impl CpuTimes {
    /// Time not idle (user, nice, system, irq, softirq, steal).
    pub fn busy(&self) -> Duration {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }

    /// Field-wise `self - earlier`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        let d = |a: Duration, b: Duration| a.saturating_sub(b);
        CpuTimes {
            user: d(self.user, earlier.user),
            nice: d(self.nice, earlier.nice),
            system: d(self.system, earlier.system),
            idle: d(self.idle, earlier.idle),
            iowait: d(self.iowait, earlier.iowait),
            irq: d(self.irq, earlier.irq),
            softirq: d(self.softirq, earlier.softirq),
            steal: d(self.steal, earlier.steal),
        }
    }
}

/// The aggregate `cpu` line of `/proc/stat` (fields in USER_HZ ticks).
pub fn parse_proc_stat_cpu(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let t = |i: usize| v.get(i).copied().map(ticks_to_duration);
    Some(CpuTimes {
        user: t(0)?,
        nice: t(1)?,
        system: t(2)?,
        idle: t(3)?,
        iowait: t(4)?,
        irq: t(5)?,
        softirq: t(6)?,
        steal: t(7).unwrap_or_default(),
    })
}

/// Reads this machine's CPU times from `/proc/stat`.
pub fn cpu_times() -> Result<CpuTimes> {
    let path = "/proc/stat";
    let text = std::fs::read_to_string(path).map_err(|e| LabError::io("read", path, e))?;
    parse_proc_stat_cpu(&text).ok_or_else(|| LabError::Parse {
        path: path.into(),
        detail: "no complete `cpu` line".into(),
    })
}

/// One interface's counters from `/proc/net/dev`: the agent's own type, read
/// by the agent's own (fuzzed) parser, so the lab measures what the agent sees.
pub type NetDevRow = levee_model::InterfaceCounters;

/// Parses `/proc/net/dev` text read from `path`.
pub fn parse_net_dev(path: &std::path::Path, text: &str) -> Result<Vec<NetDevRow>> {
    levee_sources::parse_proc_net_dev(text).map_err(|e| LabError::Parse {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// The counters of `iface` in the network namespace of process `pid`.
pub fn net_dev_of_pid(pid: u32, iface: &str) -> Result<NetDevRow> {
    let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
    let text = std::fs::read_to_string(&path).map_err(|e| LabError::io("read", &path, e))?;
    parse_net_dev(&path, &text)?
        .into_iter()
        .find(|r| r.name == iface)
        .ok_or_else(|| LabError::Parse {
            path,
            detail: format!("no interface {iface}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let stat = "1234 (le vee) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 12345 1000 200";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(22));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn proc_stat_cpu_line() {
        let text = "cpu  197960 3406 53780 486580 2196 0 29325 860 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let t = parse_proc_stat_cpu(text).unwrap();
        let tick = ticks_to_duration(1);
        assert_eq!(t.softirq, tick * 29325);
        assert_eq!(t.user, tick * 197_960);
        assert_eq!(t.busy(), tick * (197_960 + 3406 + 53_780 + 29_325 + 860));
        assert_eq!(t.since(&t), CpuTimes::default());
        assert!(parse_proc_stat_cpu("cpu0 1 2\n").is_none());
        assert!(cpu_times().unwrap().busy() > Duration::ZERO);
    }

    #[test]
    fn schedstat() {
        assert_eq!(parse_schedstat_ns("123456789 2000 17\n"), Some(123_456_789));
        assert_eq!(parse_schedstat_ns(""), None);
    }

    #[test]
    fn status_kb() {
        let s = "Name:\tlevee\nVmHWM:\t   9000 kB\nVmRSS:\t    8123 kB\n";
        assert_eq!(parse_status_kb(s, "VmRSS"), Some(8123));
        assert_eq!(parse_status_kb(s, "VmHWM"), Some(9000));
        assert_eq!(parse_status_kb(s, "VmSwap"), None);
    }

    #[test]
    fn net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\nlv-vic0: 74381238 1377427    0    5    0     0          0         0 74381 13774    0    0    0     0       0          0\n";
        let rows = parse_net_dev(std::path::Path::new("/proc/net/dev"), text).unwrap();
        let r = rows.iter().find(|r| r.name == "lv-vic0").unwrap();
        assert_eq!(r.rx_packets, 1_377_427);
        assert_eq!(r.rx_bytes, 74_381_238);
        assert_eq!(r.rx_drops, 5);
        assert_eq!(r.tx_packets, 13_774);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn sample_self() {
        let a = sample(std::process::id()).unwrap();
        assert!(a.rss_kb > 0);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample(std::process::id()).unwrap();
        assert!(b.cpu >= a.cpu);
        assert!(b.cpu_percent_since(&a) >= 0.0);
    }
}
