//! One lab: an attacker and a victim network namespace joined by a veth pair.
//!
//! ```text
//!   lv-<pid>-<n>-att                      lv-<pid>-<n>-vic
//!   lv-att0 10.213.X.1/30  <--veth-->  lv-vic0 10.213.X.2/30
//!           fd00:213:X::1/64                  fd00:213:X::2/64
//! ```
//! The veth pair is created inside the attacker namespace with its peer placed
//! directly in the victim namespace: nothing is ever created in the host's
//! namespace. `Drop` kills every process still inside the namespaces and
//! deletes them; [`Lab::new`] first deletes leftovers of dead runs.

use crate::cmd::{self, run, tool};
use crate::error::{LabError, Result};
use crate::lock::LabLock;
use crate::names::{self, LabId, Role};
use crate::procfs::{self, NetDevRow};
use crate::traffic::{BackgroundTraffic, Flood, FloodKind, FloodOptions};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output};
use std::time::Duration;

/// Attacker-side interface name (inside the attacker namespace).
pub const ATTACKER_IF: &str = "lv-att0";
/// Victim-side interface name (inside the victim namespace).
pub const VICTIM_IF: &str = "lv-vic0";

/// Which namespace of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    Attacker,
    Victim,
}

/// A running lab. Holds the lab lock (unless made with [`Lab::new_unlocked`])
/// until dropped; dropping deletes both namespaces.
#[derive(Debug)]
pub struct Lab {
    id: LabId,
    attacker_ns: String,
    victim_ns: String,
    /// Namespaces created so far, deleted in reverse order by Drop.
    created: Vec<String>,
    ipv6: bool,
    // Declared last so it is released after Drop::drop has deleted the namespaces.
    _lock: Option<LabLock>,
}

impl Lab {
    /// Takes the lab lock (blocking), cleans up leftovers of dead runs, and
    /// builds a fresh lab.
    pub fn new() -> Result<Lab> {
        let lock = LabLock::acquire()?;
        Self::build(Some(lock))
    }

    /// Like [`Lab::new`] without taking the lab lock, for callers that hold it
    /// already (e.g. to run two labs at once).
    pub fn new_unlocked() -> Result<Lab> {
        Self::build(None)
    }

    fn build(lock: Option<LabLock>) -> Result<Lab> {
        cleanup_stale();
        let id = LabId::next();
        let mut lab = Lab {
            id,
            attacker_ns: id.ns_name(Role::Attacker),
            victim_ns: id.ns_name(Role::Victim),
            created: Vec::new(),
            ipv6: false,
            _lock: lock,
        };
        // On any error below, `lab` is dropped and deletes what exists so far.
        let ip = tool("ip");
        for ns in [lab.attacker_ns.clone(), lab.victim_ns.clone()] {
            cmd::run_args(&ip, &["netns", "add", &ns])?;
            lab.created.push(ns);
        }
        let (att, vic) = (lab.attacker_ns.clone(), lab.victim_ns.clone());
        let a4 = format!("{}/30", id.attacker_ip());
        let v4 = format!("{}/30", id.victim_ip());
        let steps: Vec<Vec<&str>> = vec![
            vec!["-n", &att, "link", "set", "lo", "up"],
            vec!["-n", &vic, "link", "set", "lo", "up"],
            vec![
                "-n",
                &att,
                "link",
                "add",
                ATTACKER_IF,
                "type",
                "veth",
                "peer",
                "name",
                VICTIM_IF,
                "netns",
                &vic,
            ],
            vec!["-n", &att, "addr", "add", &a4, "dev", ATTACKER_IF],
            vec!["-n", &vic, "addr", "add", &v4, "dev", VICTIM_IF],
        ];
        for step in &steps {
            cmd::run_args(&ip, step)?;
        }
        // IPv6 is optional: kernels or containers may have it disabled.
        let a6 = format!("{}/64", id.attacker_ip6());
        let v6 = format!("{}/64", id.victim_ip6());
        lab.ipv6 = cmd::run_args(
            &ip,
            &["-n", &att, "addr", "add", &a6, "dev", ATTACKER_IF, "nodad"],
        )
        .and_then(|_| {
            cmd::run_args(
                &ip,
                &["-n", &vic, "addr", "add", &v6, "dev", VICTIM_IF, "nodad"],
            )
        })
        .is_ok();
        cmd::run_args(&ip, &["-n", &att, "link", "set", ATTACKER_IF, "up"])?;
        cmd::run_args(&ip, &["-n", &vic, "link", "set", VICTIM_IF, "up"])?;
        lab.wait_link_up()?;
        Ok(lab)
    }

    fn wait_link_up(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.exec_in(Ns::Victim, &[&tool("ip"), "link", "show", VICTIM_IF])?;
            if String::from_utf8_lossy(&out.stdout).contains("LOWER_UP") {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(LabError::Other(format!(
                    "veth {VICTIM_IF} in {} did not come up within 5 s",
                    self.victim_ns
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lab's id (pid and sequence number).
    pub fn id(&self) -> LabId {
        self.id
    }

    /// The name of one namespace.
    pub fn ns_name(&self, ns: Ns) -> &str {
        match ns {
            Ns::Attacker => &self.attacker_ns,
            Ns::Victim => &self.victim_ns,
        }
    }

    pub fn attacker_ns(&self) -> &str {
        &self.attacker_ns
    }

    pub fn victim_ns(&self) -> &str {
        &self.victim_ns
    }

    /// The victim's interface (inside the victim namespace).
    pub fn victim_if(&self) -> &str {
        VICTIM_IF
    }

    /// The attacker's interface (inside the attacker namespace).
    pub fn attacker_if(&self) -> &str {
        ATTACKER_IF
    }

    pub fn victim_ip(&self) -> Ipv4Addr {
        self.id.victim_ip()
    }

    pub fn attacker_ip(&self) -> Ipv4Addr {
        self.id.attacker_ip()
    }

    /// The victim's ULA address, if IPv6 could be configured.
    pub fn victim_ip6(&self) -> Option<Ipv6Addr> {
        self.ipv6.then(|| self.id.victim_ip6())
    }

    /// The attacker's ULA address, if IPv6 could be configured.
    pub fn attacker_ip6(&self) -> Option<Ipv6Addr> {
        self.ipv6.then(|| self.id.attacker_ip6())
    }

    /// A command that runs `program` inside `ns` (`ip netns exec <ns> program`).
    /// `ip netns exec` execs, so the spawned pid is the program's pid.
    pub fn command_in(&self, ns: Ns, program: &str) -> Command {
        let mut c = Command::new(tool("ip"));
        c.args(["netns", "exec", self.ns_name(ns), program]);
        c
    }

    /// Runs `argv` inside `ns` to completion; non-zero exit is an error with stderr.
    pub fn exec_in(&self, ns: Ns, argv: &[&str]) -> Result<Output> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| LabError::Other("exec_in: empty command".into()))?;
        run(self.command_in(ns, program).args(args))
    }

    /// Runs `argv` inside `ns` and returns its stdout as text.
    pub fn exec_in_stdout(&self, ns: Ns, argv: &[&str]) -> Result<String> {
        let out = self.exec_in(ns, argv)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// All interface counters in `ns` (reads `/proc/net/dev` there).
    pub fn net_dev(&self, ns: Ns) -> Result<Vec<NetDevRow>> {
        let text = self.exec_in_stdout(ns, &["cat", "/proc/net/dev"])?;
        procfs::parse_net_dev(std::path::Path::new("/proc/net/dev"), &text)
    }

    /// The namespace's protocol counters (`/proc/net/snmp`, and `snmp6` when
    /// IPv6 is on): TCP segments, UDP datagrams and ICMP messages received
    /// by its stack, i.e. what got past XDP, tc and the firewall.
    pub fn snmp(&self, ns: Ns) -> Result<levee_model::ProtoCounters> {
        let v4 = self.exec_in_stdout(ns, &["cat", "/proc/net/snmp"])?;
        let v6 = self.exec_in_stdout(ns, &["cat", "/proc/net/snmp6"]).ok();
        levee_sources::parse_snmp(&v4, v6.as_deref()).map_err(|e| LabError::Parse {
            path: "/proc/net/snmp".into(),
            detail: e.to_string(),
        })
    }

    /// Runs `f` on a thread that has entered namespace `ns` (setns changes
    /// only the calling thread). Sockets, BPF links and interface indexes
    /// made there keep the namespace after the thread ends.
    pub fn run_in<T: Send>(&self, ns: Ns, f: impl FnOnce() -> T + Send) -> Result<T> {
        use std::os::fd::AsRawFd;
        let path = format!("/var/run/netns/{}", self.ns_name(ns));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file =
                        std::fs::File::open(&path).map_err(|e| LabError::io("open", &path, e))?;
                    // SAFETY: setns on a valid netns fd; it affects only this
                    // thread, which ends when `f` returns.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(LabError::io(
                            "setns",
                            &path,
                            std::io::Error::last_os_error(),
                        ));
                    }
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The victim interface's counters.
    pub fn victim_counters(&self) -> Result<NetDevRow> {
        self.net_dev(Ns::Victim)?
            .into_iter()
            .find(|r| r.name == VICTIM_IF)
            .ok_or_else(|| LabError::Other(format!("{VICTIM_IF} missing in {}", self.victim_ns)))
    }

    /// Starts a flood of `kind` from attacker to victim for `duration`
    /// (`hping3 --flood`, bounded by `timeout`, killed when the handle drops).
    pub fn flood(&self, kind: FloodKind, duration: Duration) -> Result<Flood> {
        self.flood_with(&FloodOptions::new(kind, duration))
    }

    /// Starts a flood with explicit options.
    pub fn flood_with(&self, opts: &FloodOptions) -> Result<Flood> {
        Flood::spawn(self, opts)
    }

    /// Starts light legitimate-looking traffic (ICMP echo + TCP SYN to port 22)
    /// from attacker to victim at about `pps` packets per second in total.
    pub fn background_traffic(&self, pps: u32, duration: Duration) -> Result<BackgroundTraffic> {
        BackgroundTraffic::spawn(self, pps, duration)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = delete_ns(ns) {
                eprintln!("levee-lab: cleanup of namespace {ns} failed: {e}");
            }
        }
    }
}

/// Kills every process inside `ns` and deletes it.
fn delete_ns(ns: &str) -> Result<()> {
    let ip = tool("ip");
    if let Ok(out) = cmd::run_args(&ip, &["netns", "pids", ns]) {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) on a pid inside a namespace this lab created;
            // only processes the lab (or an earlier lab run) started live there.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    cmd::run_args(&ip, &["netns", "del", ns]).map(|_| ())
}

/// Deletes lab namespaces left behind by runs whose process no longer exists
/// (best effort; failures are printed, not fatal).
pub fn cleanup_stale() {
    let ip = tool("ip");
    let Ok(out) = cmd::run_args(&ip, &["netns", "list"]) else {
        return;
    };
    let list = names::parse_netns_list(&String::from_utf8_lossy(&out.stdout));
    for ns in names::stale_namespaces(&list, names::pid_alive) {
        eprintln!("levee-lab: removing leftover namespace {ns} of a dead run");
        if let Err(e) = delete_ns(&ns) {
            eprintln!("levee-lab: could not remove {ns}: {e}");
        }
    }
}
