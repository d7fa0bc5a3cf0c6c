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

/// A reflection service whose responses an amplification flood imitates:
/// UDP from the service's port with a response-shaped payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reflector {
    Dns,
    Ntp,
    Memcached,
    Ssdp,
    Cldap,
}

impl Reflector {
    pub const ALL: [Reflector; 5] = [
        Reflector::Dns,
        Reflector::Ntp,
        Reflector::Memcached,
        Reflector::Ssdp,
        Reflector::Cldap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reflector::Dns => "dns",
            Reflector::Ntp => "ntp",
            Reflector::Memcached => "memcached",
            Reflector::Ssdp => "ssdp",
            Reflector::Cldap => "cldap",
        }
    }

    /// The UDP source port of the responses.
    pub fn port(self) -> u16 {
        match self {
            Reflector::Dns => 53,
            Reflector::Ntp => 123,
            Reflector::Memcached => 11211,
            Reflector::Ssdp => 1900,
            Reflector::Cldap => 389,
        }
    }

    /// Payload size: about what one amplified response carries (kept under
    /// the veth MTU so the flood is not also a fragment flood).
    pub fn payload_len(self) -> usize {
        match self {
            Reflector::Dns => 1200,
            Reflector::Ntp => 440,
            Reflector::Memcached => 1400,
            Reflector::Ssdp => 300,
            Reflector::Cldap => 1400,
        }
    }

    /// A payload that starts like the service's response (what a real
    /// amplified packet carries), padded to [`Self::payload_len`].
    pub fn payload(self) -> Vec<u8> {
        let mut p: Vec<u8> = match self {
            // DNS header: id, flags 0x8180 (response, recursion available),
            // 1 question, many answers.
            Reflector::Dns => vec![0x13, 0x37, 0x81, 0x80, 0, 1, 0, 40, 0, 0, 0, 1],
            // NTP mode 7 (private), response bit: a `monlist` reply.
            Reflector::Ntp => vec![0x97, 0x00, 0x03, 0x2a, 0x00, 0x06, 0x00, 0x48],
            // memcached UDP frame header, then a `get` response.
            Reflector::Memcached => {
                let mut v = vec![0, 1, 0, 0, 0, 1, 0, 0];
                v.extend_from_slice(b"VALUE a 0 1300\r\n");
                v
            }
            Reflector::Ssdp => b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\nUSN: uuid:lab::upnp:rootdevice\r\n".to_vec(),
            // An LDAP message (BER SEQUENCE) with a searchResEntry.
            Reflector::Cldap => vec![0x30, 0x84, 0, 0, 0x05, 0x70, 0x02, 0x01, 0x01, 0x64, 0x84],
        };
        let fill = match self {
            Reflector::Ssdp => b'x',
            _ => 0x41,
        };
        p.resize(self.payload_len(), fill);
        p
    }
}

/// What to flood with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// TCP SYN to port 80.
    Syn,
    /// TCP ACK to port 80.
    Ack,
    /// TCP RST to port 80.
    Rst,
    /// TCP FIN+PSH+URG ("xmas") to port 80.
    Xmas,
    /// UDP to port 53.
    Udp,
    /// ICMP echo request.
    Icmp,
    /// UDP datagrams of 1400 bytes to port 9999 split into 8 fragments.
    Fragment,
    /// Raw IP protocol 47 (GRE) packets.
    Gre,
    /// Responses of a reflection service from its port, spoofed sources.
    Amplification(Reflector),
}

impl FloodKind {
    /// snake_case name, for output.
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Syn => "syn",
            FloodKind::Ack => "ack",
            FloodKind::Rst => "rst",
            FloodKind::Xmas => "xmas",
            FloodKind::Udp => "udp",
            FloodKind::Icmp => "icmp",
            FloodKind::Fragment => "fragment",
            FloodKind::Gre => "gre",
            FloodKind::Amplification(r) => match r {
                Reflector::Dns => "dns_amplification",
                Reflector::Ntp => "ntp_amplification",
                Reflector::Memcached => "memcached_amplification",
                Reflector::Ssdp => "ssdp_amplification",
                Reflector::Cldap => "cldap_amplification",
            },
        }
    }

    /// The hping3 mode arguments; `payload` is the file holding the payload
    /// of kinds that need one.
    fn hping_args(self, payload: Option<&std::path::Path>) -> Vec<String> {
        let fixed: &[&str] = match self {
            FloodKind::Syn => &["-S", "-p", "80"],
            FloodKind::Ack => &["-A", "-p", "80"],
            FloodKind::Rst => &["-R", "-p", "80"],
            FloodKind::Xmas => &["-F", "-P", "-U", "-p", "80"],
            FloodKind::Udp => &["--udp", "-p", "53"],
            FloodKind::Icmp => &["--icmp"],
            FloodKind::Fragment => &["--udp", "-p", "9999", "-d", "1400", "-f", "-m", "176"],
            FloodKind::Gre => &["--rawip", "-H", "47", "-d", "100"],
            FloodKind::Amplification(_) => &[],
        };
        let mut a: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
        if let FloodKind::Amplification(r) = self {
            // -k keeps the source port fixed; -E fills the payload from the file.
            a.extend([
                "--udp".into(),
                "-s".into(),
                r.port().to_string(),
                "-k".into(),
                "-p".into(),
                "33000".into(),
                "-d".into(),
                r.payload_len().to_string(),
            ]);
            if let Some(p) = payload {
                a.extend(["-E".into(), p.display().to_string()]);
            }
        }
        a
    }

    /// Amplification floods come from many reflectors.
    fn spoofs_by_default(self) -> bool {
        matches!(self, FloodKind::Amplification(_))
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
    /// Random destinations instead of the victim: an hping3 address pattern
    /// (`198.18.5.x`), sent out of the attacker's interface
    /// (`--rand-dest -I`); the caller routes the pattern's network to the
    /// victim inside the lab (carpet bombing).
    pub rand_dest: Option<String>,
}

impl FloodOptions {
    pub fn new(kind: FloodKind, duration: Duration) -> Self {
        FloodOptions {
            kind,
            duration,
            rand_source: false,
            interval_us: None,
            data_bytes: None,
            rand_dest: None,
        }
    }

    /// The hping3 arguments (without the target address); `payload` is the
    /// payload file of kinds that need one.
    pub fn hping_args_with(&self, payload: Option<&std::path::Path>) -> Vec<String> {
        let mut a = self.kind.hping_args(payload);
        match self.interval_us {
            Some(us) => a.extend(["-i".into(), format!("u{}", us.max(1))]),
            None => a.push("--flood".into()),
        }
        if self.rand_source || self.kind.spoofs_by_default() {
            a.push("--rand-source".into());
        }
        if let Some(d) = self.data_bytes {
            a.extend(["-d".into(), d.to_string()]);
        }
        if self.rand_dest.is_some() {
            a.extend([
                "--rand-dest".into(),
                "-I".into(),
                crate::lab::ATTACKER_IF.into(),
            ]);
        }
        a.push("-q".into());
        a
    }

    /// The hping3 arguments without a payload file.
    pub fn hping_args(&self) -> Vec<String> {
        self.hping_args_with(None)
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
    /// The payload file, deleted when the flood is dropped.
    _payload: Option<tempfile::NamedTempFile>,
    kind: FloodKind,
    duration: Duration,
    spawned_wall_ms: i64,
    spawned_at: Instant,
    stopped: bool,
}

impl Flood {
    pub(crate) fn spawn(lab: &Lab, opts: &FloodOptions) -> Result<Flood> {
        let payload = match opts.kind {
            FloodKind::Amplification(r) => Some(payload_file(&r.payload())?),
            _ => None,
        };
        let target = opts
            .rand_dest
            .clone()
            .unwrap_or_else(|| lab.victim_ip().to_string());
        let cmd = hping_command(
            lab,
            opts.duration,
            &opts.hping_args_with(payload.as_ref().map(|f| f.path())),
            &target,
        );
        // Taken just before spawning: the first packet leaves later, so
        // `event.ts - spawned_wall_ms` is an upper bound on detection latency.
        let spawned_wall_ms = wall_ms();
        let spawned_at = Instant::now();
        let child = GroupChild::spawn(cmd)?;
        Ok(Flood {
            child,
            _payload: payload,
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

/// Writes a payload for `hping3 -E` to a temporary file.
fn payload_file(bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let tmp = std::env::temp_dir();
    let mut f = tempfile::Builder::new()
        .prefix("levee-lab-payload-")
        .tempfile()
        .map_err(|e| crate::error::LabError::io("creating a payload file in", &tmp, e))?;
    let path = f.path().to_path_buf();
    f.write_all(bytes)
        .and_then(|()| f.flush())
        .map_err(|e| crate::error::LabError::io("writing", path, e))?;
    Ok(f)
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
        let o = FloodOptions::new(
            FloodKind::Amplification(Reflector::Ntp),
            Duration::from_secs(1),
        );
        assert_eq!(
            o.hping_args_with(Some(std::path::Path::new("/p"))),
            [
                "--udp",
                "-s",
                "123",
                "-k",
                "-p",
                "33000",
                "-d",
                "440",
                "-E",
                "/p",
                "--flood",
                "--rand-source",
                "-q"
            ]
        );
    }

    #[test]
    fn payloads_have_their_size_and_shape() {
        for r in Reflector::ALL {
            let p = r.payload();
            assert_eq!(p.len(), r.payload_len(), "{}", r.name());
        }
        assert_eq!(Reflector::Dns.payload()[2] & 0x80, 0x80);
        assert_eq!(Reflector::Ntp.payload()[0] & 7, 7);
        assert!(Reflector::Memcached.payload()[8..].starts_with(b"VALUE"));
        assert!(Reflector::Ssdp.payload().starts_with(b"HTTP/1.1 200"));
        assert_eq!(Reflector::Cldap.payload()[0], 0x30);
    }
}
