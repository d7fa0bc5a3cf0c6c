//! Load/memory/lookup benchmark for 1,000,000 indicators (`cargo bench -p levee-ioc`).
//!
//! A plain binary rather than criterion: the numbers that matter (one cold load of a
//! big file, bytes retained) are single measurements, and a short run keeps a shared
//! lab machine's cores free. Memory is counted by a counting global allocator (exact
//! heap bytes, current and peak) and cross-checked with the RSS delta.
//! `LEVEE_IOC_BENCH_N` overrides the indicator count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use levee_ioc::{Format, IocStore, ListSource};

/// Counts live and peak heap bytes.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to `System` unchanged; only adds relaxed counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_v4(rng: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::from(rng.next() as u32)
}

fn random_v6(rng: &mut Rng) -> Ipv6Addr {
    // Keep IPv6 inside 2000::/3 like real feeds.
    let bits = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | (1u128 << 125);
    Ipv6Addr::from(bits)
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn machine() -> String {
    levee_lab::machine::describe()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("LEVEE_IOC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x5eed_1e7e_e10c_0001);

    // Half IPv4 (/8../32, mostly /24../32), half IPv6 (/16../128, mostly /32../64).
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("indicators.netset");
    {
        let mut w = BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "#\n# levee-ioc benchmark list, {n} random prefixes\n#")?;
        for i in 0..n {
            if i % 2 == 0 {
                let len = if rng.below(4) == 0 {
                    8 + rng.below(16)
                } else {
                    24 + rng.below(9)
                };
                writeln!(w, "{}/{}", random_v4(&mut rng), len)?;
            } else {
                let len = if rng.below(4) == 0 {
                    16 + rng.below(113)
                } else {
                    32 + rng.below(33)
                };
                writeln!(w, "{}/{}", random_v6(&mut rng), len)?;
            }
        }
        w.flush()?;
    }
    let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let rss_before = rss_kib();
    let heap_before = CURRENT.load(Relaxed);
    PEAK.store(heap_before, Relaxed);
    let start = Instant::now();
    let (store, report) = IocStore::open(vec![ListSource {
        name: "bench".into(),
        path: path.clone(),
        format: Format::Auto,
    }])?;
    let load = start.elapsed();
    let set = store.current();
    let heap_retained = CURRENT.load(Relaxed).saturating_sub(heap_before);
    let heap_peak = PEAK.load(Relaxed).saturating_sub(heap_before);
    let rss_delta = rss_kib().zip(rss_before).map(|(a, b)| a.saturating_sub(b));
    if !report.is_ok() {
        return Err(format!("bench list failed to load: {report:?}").into());
    }

    // Lookups: random addresses, half of each family, one thread.
    let probes: Vec<IpAddr> = (0..1_000_000)
        .map(|i| {
            if i % 2 == 0 {
                IpAddr::V4(random_v4(&mut rng))
            } else {
                IpAddr::V6(random_v6(&mut rng))
            }
        })
        .collect();
    let start = Instant::now();
    let mut hits = 0usize;
    for ip in &probes {
        hits += set.lookup(*ip).count();
    }
    let lookup = start.elapsed();
    let lps = probes.len() as f64 / lookup.as_secs_f64();

    let m = machine();
    let mb = |b: usize| b as f64 / 1_048_576.0;
    println!("\n## levee-ioc: {n} indicators ({file_mb:.1} MB netset file)\n");
    println!("| what | how measured | result | target | machine |");
    println!("|---|---|---|---|---|");
    println!(
        "| load time | IocStore::open on a {n}-line file (parse + sort + index), wall clock, 1 run | {:.0} ms | < 1000 ms | {m} |",
        load.as_secs_f64() * 1e3
    );
    println!(
        "| memory retained | counting global allocator, heap bytes live after load | {:.1} MB ({} distinct entries, {:.1} B/entry) | < 64 MB | {m} |",
        mb(heap_retained),
        set.len(),
        heap_retained as f64 / set.len().max(1) as f64
    );
    println!(
        "| memory peak during load | counting global allocator, peak heap minus baseline | {:.1} MB | < 64 MB | {m} |",
        mb(heap_peak)
    );
    println!(
        "| RSS delta | /proc/self/status VmRSS after - before load | {} | < 64 MB | {m} |",
        rss_delta.map_or("n/a".into(), |k| format!("{:.1} MB", k as f64 / 1024.0))
    );
    println!(
        "| lookups | IocSet::lookup(..).count() over 1,000,000 random IPv4/IPv6 addresses, 1 thread | {:.2} M lookups/s ({hits} matches) | n/a | {m} |",
        lps / 1e6
    );
    println!("\nset.heap_bytes() = {:.1} MB", mb(set.heap_bytes()));
    Ok(())
}
