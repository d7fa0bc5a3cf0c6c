//! XDP drop path vs nftables netdev ingress drop, on the same hping3 SYN
//! flood in the attack lab (not a test; needs root, iproute2, hping3, nft).
//!
//! Each round floods the victim (`hping3 -S -p 80 --flood`) once per
//! variant: no filter (the stack answers with RSTs), the XDP program in
//! generic and in native mode with one rule (IPv4, TCP, dport 80, flags
//! exactly SYN, unfragmented), and an nftables `netdev` table whose ingress
//! chain on the victim veth drops the same packets. Over a window starting
//! 1 s into the flood it reads the rule's counter (packets dropped), the
//! attacker's tx counter (packets offered), the victim's TCP InSegs
//! (packets that got past the filter) and `/proc/stat` (softirq and busy
//! CPU time, machine-wide; the drop work runs in softirq context on the
//! sending CPU). Then the program alone: `BPF_PROG_TEST_RUN` time per packet.
//!
//! `cargo bench -p levee-xdp --bench drop -- [--rounds 3] [--flood-secs 5] [--output FILE]`

use levee_lab::lab::VICTIM_IF;
use levee_lab::procfs::{cpu_times, CpuTimes};
use levee_lab::report::{num, results_table, table, Row};
use levee_lab::stats::summarize;
use levee_lab::{FloodKind, Lab, Ns};
use levee_xdp::{FingerprintMatch, Mode, Range, RuleId, TcpFlagsMatch, XdpFilter};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    NoFilter,
    XdpGeneric,
    XdpNative,
    Nft,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::NoFilter,
        Variant::XdpGeneric,
        Variant::XdpNative,
        Variant::Nft,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::NoFilter => "no filter",
            Variant::XdpGeneric => "XDP generic",
            Variant::XdpNative => "XDP native",
            Variant::Nft => "nftables netdev ingress",
        }
    }
}

const NFT_TABLE: &str = "levee_bench";

fn nft_ruleset() -> String {
    format!(
        "table netdev {NFT_TABLE} {{\n  chain ingress {{\n    type filter hook ingress device \"{VICTIM_IF}\" priority -500; policy accept;\n    meta protocol ip ip frag-off & 0x3fff == 0 ip protocol tcp tcp dport 80 tcp flags == syn counter drop\n  }}\n}}\n"
    )
}

/// `counter packets N` of the bench chain.
fn parse_nft_packets(listing: &str) -> Option<u64> {
    let at = listing.find("counter packets ")? + "counter packets ".len();
    listing[at..].split_whitespace().next()?.parse().ok()
}

fn syn_rule() -> FingerprintMatch {
    FingerprintMatch {
        ip_version: Some(4),
        protocol: Some(6),
        dst_ports: Some(Range::one(80)),
        tcp_flags: Some(TcpFlagsMatch::exact(0x02)),
        fragment: Some(false),
        ..Default::default()
    }
}

/// The filter under test, installed in the victim namespace.
enum Installed {
    None,
    Xdp(Box<XdpFilter>),
    Nft,
}

impl Installed {
    fn new(lab: &Lab, v: Variant) -> Result<Installed> {
        Ok(match v {
            Variant::NoFilter => Installed::None,
            Variant::XdpGeneric | Variant::XdpNative => {
                let mode = if v == Variant::XdpGeneric {
                    Mode::Generic
                } else {
                    Mode::Native
                };
                let mut f = lab.run_in(Ns::Victim, || XdpFilter::attach(VICTIM_IF, mode))??;
                f.add_rule(RuleId(1), &syn_rule())?;
                Installed::Xdp(Box::new(f))
            }
            Variant::Nft => {
                let file = tempfile::Builder::new().suffix(".nft").tempfile()?;
                std::fs::write(file.path(), nft_ruleset())?;
                let path = file.path().to_str().ok_or("temp path is not UTF-8")?;
                lab.exec_in(Ns::Victim, &["nft", "-f", path])?;
                Installed::Nft
            }
        })
    }

    fn dropped(&self, lab: &Lab) -> Result<u64> {
        Ok(match self {
            Installed::None => 0,
            Installed::Xdp(f) => f.counters()?.get(&RuleId(1)).map_or(0, |c| c.packets),
            Installed::Nft => {
                let out = lab.exec_in_stdout(
                    Ns::Victim,
                    &["nft", "list", "chain", "netdev", NFT_TABLE, "ingress"],
                )?;
                parse_nft_packets(&out).ok_or("no counter in the nft listing")?
            }
        })
    }

    fn remove(self, lab: &Lab) -> Result<()> {
        match self {
            Installed::None => {}
            Installed::Xdp(mut f) => f.detach()?,
            Installed::Nft => {
                lab.exec_in(Ns::Victim, &["nft", "delete", "table", "netdev", NFT_TABLE])?;
            }
        }
        Ok(())
    }
}

struct Snapshot {
    at: Instant,
    cpu: CpuTimes,
    offered: u64,
    dropped: u64,
    delivered: u64,
}

fn snapshot(lab: &Lab, f: &Installed) -> Result<Snapshot> {
    let offered = lab
        .net_dev(Ns::Attacker)?
        .into_iter()
        .find(|r| r.name == lab.attacker_if())
        .ok_or("attacker interface missing")?
        .tx_packets;
    let dropped = f.dropped(lab)?;
    let delivered = lab.snmp(Ns::Victim)?.tcp_in_segs;
    Ok(Snapshot {
        at: Instant::now(),
        cpu: cpu_times()?,
        offered,
        dropped,
        delivered,
    })
}

/// One flood under one variant.
#[derive(Debug, Clone, Copy)]
struct Measured {
    offered_pps: f64,
    dropped_pps: f64,
    delivered_pps: f64,
    /// Softirq CPU time per dropped packet (per offered packet without a filter).
    softirq_ns: f64,
    /// All busy CPU time (hping3 included) per offered packet.
    busy_ns: f64,
}

fn measure(lab: &Lab, v: Variant, flood_secs: u64) -> Result<Measured> {
    let f = Installed::new(lab, v)?;
    let mut flood = lab.flood(FloodKind::Syn, Duration::from_secs(flood_secs))?;
    std::thread::sleep(Duration::from_secs(1));
    let a = snapshot(lab, &f)?;
    std::thread::sleep(Duration::from_secs(flood_secs - 2));
    let b = snapshot(lab, &f)?;
    flood.stop();
    f.remove(lab)?;
    let secs = b.at.duration_since(a.at).as_secs_f64();
    let cpu = b.cpu.since(&a.cpu);
    let offered = (b.offered - a.offered) as f64;
    let dropped = (b.dropped - a.dropped) as f64;
    let per = if v == Variant::NoFilter {
        offered
    } else {
        dropped
    };
    Ok(Measured {
        offered_pps: offered / secs,
        dropped_pps: dropped / secs,
        delivered_pps: (b.delivered - a.delivered) as f64 / secs,
        softirq_ns: cpu.softirq.as_nanos() as f64 / per.max(1.0),
        busy_ns: cpu.busy().as_nanos() as f64 / offered.max(1.0),
    })
}

/// ns per run of the program on a SYN frame (`BPF_PROG_TEST_RUN`, 1M runs).
fn program_ns(rules: &[FingerprintMatch]) -> Result<f64> {
    let mut f = XdpFilter::load()?;
    for (i, r) in rules.iter().enumerate() {
        f.add_rule(RuleId(i as u32), r)?;
    }
    let mut frame = vec![0u8; 60];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14..34].copy_from_slice(&[
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    frame[34..54].copy_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    let best = (0..5)
        .map(|_| f.test_run(&frame, 1_000_000).map(|r| r.duration_ns))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .min()
        .unwrap_or(0);
    Ok(f64::from(best))
}

struct Args {
    rounds: usize,
    flood_secs: u64,
    output: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        rounds: 3,
        flood_secs: 5,
        output: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => a.rounds = it.next().ok_or("--rounds N")?.parse()?,
            "--flood-secs" => a.flood_secs = it.next().ok_or("--flood-secs N")?.parse()?,
            "--output" => a.output = Some(it.next().ok_or("--output FILE")?),
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if a.flood_secs < 3 {
        return Err("--flood-secs must be at least 3".into());
    }
    Ok(a)
}

fn median_range(v: &[f64], decimals: usize, unit: &str) -> String {
    match summarize(v) {
        Some(s) => format!(
            "{} ({}–{})",
            num(Some(s.p50), decimals, unit),
            num(Some(s.min), decimals, ""),
            num(Some(s.max), decimals, "")
        ),
        None => "n/a".into(),
    }
}

fn main() -> Result<()> {
    let args = args()?;
    let mut missing = levee_lab::prereq::missing_prerequisites();
    if levee_lab::cmd::which("nft").is_none() {
        missing.push("`nft` (Debian package nftables)".into());
    }
    if let Err(e) = levee_xdp::available() {
        missing.push(e.to_string());
    }
    if !missing.is_empty() {
        return Err(format!("prerequisites missing: {}", missing.join("; ")).into());
    }
    let lab = Lab::new()?;
    let mut results: Vec<(usize, Variant, Measured)> = Vec::new();
    for round in 1..=args.rounds {
        for v in Variant::ALL {
            let m = measure(&lab, v, args.flood_secs)?;
            eprintln!(
                "round {round} {:<24} offered {:>8.0} pps, dropped {:>8.0} pps, delivered {:>8.0} pps, softirq {:>6.0} ns/pkt, busy {:>6.0} ns/pkt",
                v.name(), m.offered_pps, m.dropped_pps, m.delivered_pps, m.softirq_ns, m.busy_ns
            );
            results.push((round, v, m));
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    drop(lab);
    let col = |v: Variant, f: fn(&Measured) -> f64| -> Vec<f64> {
        results
            .iter()
            .filter(|r| r.1 == v)
            .map(|r| f(&r.2))
            .collect()
    };

    let no_rules = program_ns(&[])?;
    let one = program_ns(&[syn_rule()])?;
    let miss: Vec<FingerprintMatch> = (0..levee_xdp::MAX_RULES as u16)
        .map(|i| FingerprintMatch {
            dst_ports: Some(Range::one(1000 + i)),
            ..syn_rule()
        })
        .collect();
    let all_miss = program_ns(&miss)?;

    let how_flood = format!(
        "`hping3 -S -p 80 --flood` attacker -> victim veth, {} s per run, window from 1 s to {} s; median (min–max) of {} rounds",
        args.flood_secs,
        args.flood_secs - 1,
        args.rounds
    );
    let nft = |f: fn(&Measured) -> f64, d: usize, unit: &str| {
        format!(
            "nftables netdev ingress: {}",
            median_range(&col(Variant::Nft, f), d, unit)
        )
    };
    let mut rows = Vec::new();
    for v in [Variant::XdpGeneric, Variant::XdpNative] {
        rows.push(Row::new(
            &format!("Packets dropped per second, {}", v.name()),
            &format!("rule counter delta / window; {how_flood}"),
            median_range(&col(v, |m| m.dropped_pps), 0, " pps"),
            "side by side with nftables",
            nft(|m| m.dropped_pps, 0, " pps"),
        ));
    }
    for v in [Variant::XdpGeneric, Variant::XdpNative] {
        rows.push(Row::new(
            &format!("Softirq CPU per dropped packet, {}", v.name()),
            "softirq time (/proc/stat, all CPUs, 250 Hz tick sampling) / packets dropped, same window",
            median_range(&col(v, |m| m.softirq_ns), 0, " ns"),
            "side by side with nftables",
            nft(|m| m.softirq_ns, 0, " ns"),
        ));
    }
    for v in [Variant::XdpGeneric, Variant::XdpNative] {
        rows.push(Row::new(
            &format!(
                "All busy CPU per offered packet (hping3 included), {}",
                v.name()
            ),
            "user+system+irq+softirq time (/proc/stat) / attacker tx packets, same window",
            median_range(&col(v, |m| m.busy_ns), 0, " ns"),
            "-",
            nft(|m| m.busy_ns, 0, " ns"),
        ));
    }
    rows.push(Row::new(
        "Flood packets reaching the victim's TCP stack, XDP generic / native",
        "victim /proc/net/snmp Tcp InSegs delta / window",
        format!(
            "{} / {}",
            median_range(&col(Variant::XdpGeneric, |m| m.delivered_pps), 0, " pps"),
            median_range(&col(Variant::XdpNative, |m| m.delivered_pps), 0, " pps")
        ),
        "0",
        format!(
            "{}; no filter: {}",
            nft(|m| m.delivered_pps, 0, " pps"),
            median_range(&col(Variant::NoFilter, |m| m.delivered_pps), 0, " pps")
        ),
    ));
    rows.push(Row::new(
        "Softirq CPU per packet with no filter (the stack answers RST)",
        "softirq time / attacker tx packets, same window",
        median_range(&col(Variant::NoFilter, |m| m.softirq_ns), 0, " ns"),
        "-",
        "-".into(),
    ));
    rows.push(Row::new(
        "XDP program time per packet: no rules / 1 matching rule / 64 rules none matching",
        "BPF_PROG_TEST_RUN on a 60-byte SYN frame, 1,000,000 repeats, best of 5",
        format!("{no_rules:.0} / {one:.0} / {all_miss:.0} ns"),
        "-",
        "-".into(),
    ));

    let mut out = format!("{}\n\n", levee_lab::machine::describe());
    out.push_str(&results_table(&rows));
    out.push_str("\n### Per run\n\n");
    let detail: Vec<Vec<String>> = results
        .iter()
        .map(|(round, v, m)| {
            vec![
                round.to_string(),
                v.name().to_string(),
                format!("{:.0}", m.offered_pps),
                format!("{:.0}", m.dropped_pps),
                format!("{:.0}", m.delivered_pps),
                format!("{:.0}", m.softirq_ns),
                format!("{:.0}", m.busy_ns),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "round",
            "variant",
            "offered pps",
            "dropped pps",
            "delivered pps",
            "softirq ns/pkt",
            "busy ns/pkt",
        ],
        &detail,
    ));
    println!("{out}");
    if let Some(path) = args.output {
        std::fs::write(&path, &out)?;
    }
    Ok(())
}
