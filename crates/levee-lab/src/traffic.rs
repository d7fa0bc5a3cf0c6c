//! Traffic between the lab's namespaces: hping3 floods and light background
//! traffic. Every process runs as
//! `timeout -k 2 <d> ip netns exec <attacker-ns> hping3 … <victim-ip>`, so it
//! ends by itself after its duration even if this process is SIGKILLed, and the
//! handle kills its whole process group on drop.

use crate::clock::{timeout_arg, wall_ms};
use crate::cmd::tool;
use crate::error::Result;
use crate::lab::{Lab, Ns};
use crate::process::GroupChild;
use std::process::Command;
use std::time::{Duration, Instant};

/// Exit code of GNU `timeout` when it had to stop the command (the normal end
/// of a flood).
const TIMEOUT_EXPIRED: i32 = 124;

/// Grace period after `timeout`'s SIGTERM before it sends SIGKILL.
const KILL_AFTER: &str = "2";

/// What to flood with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// TCP SYN to port 80.
    Syn,
    /// TCP ACK to port 80.
    Ack,
    /// TCP RST to port 80.
    Rst,
    /// UDP to port 53.
    Udp,
    /// ICMP echo request.
    Icmp,
}

impl FloodKind {
    /// snake_case name, for output.
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Syn => "syn",
            FloodKind::Ack => "ack",
            FloodKind::Rst => "rst",
            FloodKind::Udp => "udp",
            FloodKind::Icmp => "icmp",
        }
    }

    /// The hping3 mode arguments.
    fn hping_args(self) -> &'static [&'static str] {
        match self {
            FloodKind::Syn => &["-S", "-p", "80"],
            FloodKind::Ack => &["-A", "-p", "80"],
            FloodKind::Rst => &["-R", "-p", "80"],
            FloodKind::Udp => &["--udp", "-p", "53"],
            FloodKind::Icmp => &["--icmp"],
        }
    }
}

/// A flood's parameters; [`FloodOptions::new`] gives `--flood` from the real
/// source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodOptions {
    pub kind: FloodKind,
    pub duration: Duration,
    /// `--rand-source`: spoofed random source addresses.
    pub rand_source: bool,
    /// Send one packet every `interval_us` µs (`-i u<n>`) instead of `--flood`.
    pub interval_us: Option<u32>,
    /// Payload bytes (`-d <n>`).
    pub data_bytes: Option<u32>,
}

impl FloodOptions {
    pub fn new(kind: FloodKind, duration: Duration) -> Self {
        FloodOptions {
            kind,
            duration,
            rand_source: false,
            interval_us: None,
            data_bytes: None,
        }
    }

    /// The hping3 arguments (without the target address).
    pub fn hping_args(&self) -> Vec<String> {
        let mut a: Vec<String> = self
            .kind
            .hping_args()
            .iter()
            .map(|s| s.to_string())
            .collect();
        match self.interval_us {
            Some(us) => a.extend(["-i".into(), format!("u{}", us.max(1))]),
            None => a.push("--flood".into()),
        }
        if self.rand_source {
            a.push("--rand-source".into());
        }
        if let Some(d) = self.data_bytes {
            a.extend(["-d".into(), d.to_string()]);
        }
        a.push("-q".into());
        a
    }
}

/// `timeout -k 2 <d> ip netns exec <attacker> hping3 <args> <target>`.
fn hping_command(lab: &Lab, duration: Duration, args: &[String], target: &str) -> Command {
    let mut c = Command::new(tool("timeout"));
    c.args(["-k", KILL_AFTER, &timeout_arg(duration)])
        .arg(tool("ip"))
        .args(["netns", "exec", lab.ns_name(Ns::Attacker)])
        .arg(tool("hping3"))
        .args(args)
        .arg(target);
    c
}

/// A running flood; killed (with its whole process group) on drop.
#[derive(Debug)]
pub struct Flood {
    child: GroupChild,
    kind: FloodKind,
    duration: Duration,
    spawned_wall_ms: i64,
    spawned_at: Instant,
    stopped: bool,
}

impl Flood {
    pub(crate) fn spawn(lab: &Lab, opts: &FloodOptions) -> Result<Flood> {
        let cmd = hping_command(
            lab,
            opts.duration,
            &opts.hping_args(),
            &lab.victim_ip().to_string(),
        );
        // Taken just before spawning: the first packet leaves later, so
        // `event.ts - spawned_wall_ms` is an upper bound on detection latency.
        let spawned_wall_ms = wall_ms();
        let spawned_at = Instant::now();
        let child = GroupChild::spawn(cmd)?;
        Ok(Flood {
            child,
            kind: opts.kind,
            duration: opts.duration,
            spawned_wall_ms,
            spawned_at,
            stopped: false,
        })
    }

    pub fn kind(&self) -> FloodKind {
        self.kind
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Wall-clock ms since the epoch taken just before the spawn.
    pub fn spawned_wall_ms(&self) -> i64 {
        self.spawned_wall_ms
    }

    /// Monotonic instant taken just before the spawn.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// pid of the `timeout` process (= process group id).
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// An error if the flood already ended with a failure (e.g. hping3 could
    /// not open a raw socket); `Ok` while it runs, after a normal end or after
    /// [`stop`](Self::stop).
    pub fn check(&mut self) -> Result<()> {
        match self.child.try_status() {
            Some(s) if !self.stopped && !normal_end(s) => Err(self.child.exit_error(s)),
            _ => Ok(()),
        }
    }

    /// Waits for the flood's natural end (duration + a grace period), killing
    /// it if it overruns; an error if it ended with a failure.
    pub fn wait(&mut self) -> Result<()> {
        let left = self.duration.saturating_sub(self.spawned_at.elapsed());
        if self
            .child
            .wait_timeout(left + Duration::from_secs(5))
            .is_none()
        {
            self.child.kill();
        }
        self.check()
    }

    /// Stops the flood now (SIGKILL to the process group).
    pub fn stop(&mut self) {
        self.stopped = true;
        self.child.kill();
    }
}

fn normal_end(s: std::process::ExitStatus) -> bool {
    s.success() || s.code() == Some(TIMEOUT_EXPIRED)
}

/// Light background traffic; killed on drop.
#[derive(Debug)]
pub struct BackgroundTraffic {
    children: Vec<GroupChild>,
    stopped: bool,
}

impl BackgroundTraffic {
    pub(crate) fn spawn(lab: &Lab, pps: u32, duration: Duration) -> Result<BackgroundTraffic> {
        let target = lab.victim_ip().to_string();
        let pps = pps.max(1);
        // Half ICMP echo, half TCP SYN to port 22 (answered by RST).
        let streams: Vec<(&[&str], u32)> = if pps == 1 {
            vec![(&["--icmp"], 1)]
        } else {
            vec![(&["--icmp"], pps / 2), (&["-S", "-p", "22"], pps - pps / 2)]
        };
        let mut children = Vec::new();
        for (mode, rate) in streams {
            let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
            args.extend([
                "-i".into(),
                format!("u{}", 1_000_000 / rate.max(1)),
                "-q".into(),
            ]);
            children.push(GroupChild::spawn(hping_command(
                lab, duration, &args, &target,
            ))?);
        }
        Ok(BackgroundTraffic {
            children,
            stopped: false,
        })
    }

    /// An error if a stream ended with a failure (not after [`stop`](Self::stop)).
    pub fn check(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        for c in &mut self.children {
            if let Some(s) = c.try_status() {
                if !normal_end(s) {
                    return Err(c.exit_error(s));
                }
            }
        }
        Ok(())
    }

    /// Stops the traffic now.
    pub fn stop(&mut self) {
        self.stopped = true;
        for c in &mut self.children {
            c.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_args() {
        let o = FloodOptions::new(FloodKind::Syn, Duration::from_secs(1));
        assert_eq!(o.hping_args(), ["-S", "-p", "80", "--flood", "-q"]);
        let mut o = FloodOptions::new(FloodKind::Udp, Duration::from_secs(1));
        o.rand_source = true;
        o.interval_us = Some(0);
        o.data_bytes = Some(100);
        assert_eq!(
            o.hping_args(),
            [
                "--udp",
                "-p",
                "53",
                "-i",
                "u1",
                "--rand-source",
                "-d",
                "100",
                "-q"
            ]
        );
        let o = FloodOptions::new(FloodKind::Icmp, Duration::from_secs(1));
        assert_eq!(o.hping_args(), ["--icmp", "--flood", "-q"]);
    }
}
