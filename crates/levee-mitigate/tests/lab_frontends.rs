//! ufw and firewalld for real, inside the lab's victim namespace.
//!
//! Both keep global state outside the network namespace, so each test
//! isolates it:
//! - ufw writes `/etc/ufw/*` and reads `/etc/default/ufw`: every ufw command
//!   runs as `ip netns exec <victim> sh -c 'mount --bind <copy> /etc/ufw &&
//!   mount --bind <copy> /etc/default/ufw && exec ufw ...'`. `ip netns
//!   exec` gives each command a private mount namespace, so the binds never
//!   reach the host; the copies live in the test's temp dir. The host's
//!   `/etc/ufw` is checked unchanged afterwards.
//! - firewalld talks over the D-Bus *system* bus and keeps its config in
//!   `/etc/firewalld`: the test starts a private `dbus-daemon` (socket in
//!   its temp dir, found through `DBUS_SYSTEM_BUS_ADDRESS`) and a
//!   `firewalld --nofork --nopid --system-config <copy>` inside the victim
//!   namespace, with a tmpfs over `/run` for its runtime files. Its default
//!   zone is `trusted`, so only Levee's rule filters the flood.
//!
//! Needs root, iproute2, hping3, coreutils, ufw, firewalld and dbus-daemon
//! (CI=true fails without them; elsewhere the tests skip loudly).

mod support;

use levee_lab::Ns;
use levee_mitigate::exec::firewalld::FirewalldExecutor;
use levee_mitigate::exec::ufw::UfwExecutor;
use levee_mitigate::exec::{Availability, Executor};
use levee_mitigate::runner::{Cmd, CommandRunner, SystemRunner};
use levee_mitigate::Action;
use levee_packet::Family;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::{
    attacker_prefix, ctx, flood_scenario, flood_scenario_with, lab_rule, snapshot_without_counters,
    wait_until, Ctx,
};

const UFW: &[(&str, &str)] = &[("ufw", "ufw"), ("iptables", "iptables")];
const FIREWALLD: &[(&str, &str)] = &[
    ("firewalld", "firewalld"),
    ("firewall-cmd", "firewalld"),
    ("dbus-daemon", "dbus-daemon"),
    ("nft", "nftables"),
];

fn sha(path: &str) -> String {
    levee_mitigate::audit::hash_line(&std::fs::read(path).unwrap_or_default())
}

/// A runner for ufw inside the victim namespace with private /etc/ufw.
fn ufw_runner(c: &Ctx) -> SystemRunner {
    let etc = c.work.path().join("etc-ufw");
    let default = c.work.path().join("default-ufw");
    if !etc.exists() {
        let out = std::process::Command::new("cp")
            .args(["-a", "/etc/ufw"])
            .arg(&etc)
            .output()
            .unwrap();
        assert!(out.status.success(), "copying /etc/ufw: {out:?}");
        // Accept by default (only Levee's deny should filter), and no
        // sysctl file: the test namespace keeps its settings.
        let sysctl = c.work.path().join("ufw-sysctl.conf");
        std::fs::write(&sysctl, "").unwrap();
        let text = std::fs::read_to_string("/etc/default/ufw").unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("DEFAULT_INPUT_POLICY=") {
                    "DEFAULT_INPUT_POLICY=\"ACCEPT\"".to_string()
                } else if l.starts_with("IPT_SYSCTL=") {
                    format!("IPT_SYSCTL={}", sysctl.display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&default, text + "\n").unwrap();
    }
    let script = format!(
        "mount --bind {} /etc/ufw && mount --bind {} /etc/default/ufw && exec \"$@\"",
        etc.display(),
        default.display()
    );
    SystemRunner::with_prefix([
        "ip",
        "netns",
        "exec",
        c.lab.victim_ns(),
        "sh",
        "-c",
        &script,
        "sh",
    ])
}

#[test]
fn ufw_denies_the_attacker_and_leaves_no_trace() {
    let Some(c) = ctx(UFW) else { return };
    let host_rules = (sha("/etc/ufw/user.rules"), sha("/etc/ufw/ufw.conf"));
    let mut r = ufw_runner(&c);
    let mut exec = UfwExecutor::ufw(Box::new(r.clone()));
    assert!(
        matches!(exec.availability(), Availability::Missing(ref m) if m.contains("inactive")),
        "a fresh ufw is inactive"
    );
    r.check(&Cmd::new("ufw", ["--force", "enable"])).unwrap();
    assert_eq!(exec.availability(), Availability::Ready);
    // ufw completes its IPv6 limit chains on its first rule change after
    // `enable`; one unrelated add and delete brings it to its steady state,
    // so the comparison below sees only what Levee did.
    r.check(&Cmd::new("ufw", ["allow", "9/tcp"])).unwrap();
    r.check(&Cmd::new("ufw", ["delete", "allow", "9/tcp"]))
        .unwrap();
    let mut rule = lab_rule(
        &c,
        Action::SourceBlock,
        Family::SynFlood,
        Duration::from_secs(60),
    );
    rule.sources = vec![attacker_prefix(&c)];
    // ufw keeps no counters per rule: the delivered rate tells. ufw's own
    // rules count the flood, so counts are blanked in the comparison.
    flood_scenario_with(
        &c,
        &mut exec,
        &rule,
        0.05,
        false,
        &snapshot_without_counters,
    );
    let status = r.check(&Cmd::new("ufw", ["status"])).unwrap().stdout;
    assert!(!status.contains("levee:"), "{status}");
    assert_eq!(
        (sha("/etc/ufw/user.rules"), sha("/etc/ufw/ufw.conf")),
        host_rules,
        "the host's ufw files changed"
    );
}

/// A private D-Bus system bus and firewalld in the victim namespace;
/// both are killed on drop (and with the namespace by the lab).
struct Firewalld {
    dbus: Child,
    daemon: Child,
    bus: String,
}

impl Drop for Firewalld {
    fn drop(&mut self) {
        for ch in [&mut self.daemon, &mut self.dbus] {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

fn start_firewalld(c: &Ctx) -> Firewalld {
    let dir = c.work.path();
    let sock = dir.join("system_bus_socket");
    let bus = format!("unix:path={}", sock.display());
    std::fs::write(
        dir.join("bus.conf"),
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>system</type><listen>{bus}</listen><auth>EXTERNAL</auth>\n\
             <policy context=\"default\"><allow user=\"root\"/><allow own=\"*\"/>\
             <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>\n"
        ),
    )
    .unwrap();
    let dbus = c
        .lab
        .command_in(Ns::Victim, "dbus-daemon")
        .args([
            "--nofork",
            &format!("--config-file={}", dir.join("bus.conf").display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || sock.exists()),
        "dbus-daemon did not start"
    );
    let etc = dir.join("etc-firewalld");
    let out = std::process::Command::new("cp")
        .args(["-a", "/etc/firewalld"])
        .arg(&etc)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let conf = etc.join("firewalld.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("DefaultZone=") {
                "DefaultZone=trusted"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&conf, text + "\n").unwrap();
    let log = std::fs::File::create(dir.join("firewalld.log")).unwrap();
    let daemon = c
        .lab
        .command_in(Ns::Victim, "sh")
        .args([
            "-c",
            "mount -t tmpfs tmpfs /run && exec firewalld --nofork --nopid --log-target console --system-config \"$0\"",
        ])
        .arg(&etc)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let fw = Firewalld { dbus, daemon, bus };
    let mut r = fw_runner(c, &fw);
    let up = wait_until(Duration::from_secs(30), || {
        r.run(&Cmd::new("firewall-cmd", ["--state"]))
            .is_ok_and(|o| o.stdout.trim() == "running")
    });
    assert!(
        up,
        "firewalld did not come up:\n{}",
        std::fs::read_to_string(dir.join("firewalld.log")).unwrap_or_default()
    );
    fw
}

fn fw_runner(c: &Ctx, fw: &Firewalld) -> SystemRunner {
    SystemRunner::in_netns(c.lab.victim_ns()).env("DBUS_SYSTEM_BUS_ADDRESS", &fw.bus)
}

#[test]
fn firewalld_rich_rule_blocks_the_attacker_and_expires_by_itself() {
    let Some(c) = ctx(FIREWALLD) else { return };
    let host_conf = sha("/etc/firewalld/firewalld.conf");
    let fw = start_firewalld(&c);
    let mut exec = FirewalldExecutor::firewalld(Box::new(fw_runner(&c, &fw)));
    assert_eq!(exec.availability(), Availability::Ready);
    let mut rule = lab_rule(
        &c,
        Action::SourceBlock,
        Family::SynFlood,
        Duration::from_secs(60),
    );
    rule.sources = vec![attacker_prefix(&c)];
    flood_scenario(&c, &mut exec, &rule, 0.05, false);

    // firewalld's own timeout removes a rule whose agent is gone.
    let mut short = lab_rule(
        &c,
        Action::SourceBlock,
        Family::SynFlood,
        Duration::from_secs(2),
    );
    short.sources = vec![attacker_prefix(&c)];
    exec.apply(&short).unwrap();
    assert!(exec.verify(&short).unwrap());
    let mut r = fw_runner(&c, &fw);
    let gone = wait_until(Duration::from_secs(8), || {
        r.check(&Cmd::new("firewall-cmd", ["--list-rich-rules"]))
            .is_ok_and(|o| o.stdout.trim().is_empty())
    });
    assert!(gone, "firewalld kept the rule past its timeout");
    assert_eq!(
        sha("/etc/firewalld/firewalld.conf"),
        host_conf,
        "the host's firewalld config changed"
    );
    drop(fw);
}
