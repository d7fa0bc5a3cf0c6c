//! The XDP program on the lab's victim veth, against real traffic: an hping3
//! SYN flood dropped by a fingerprint rule (counter up, segments delivered to
//! the victim's TCP stack down, back up once the rule is removed), a source
//! set dropping one source's pings while another source's pass, native and
//! generic mode, detach, and leftovers (a SIGKILLed `levee mitigate apply --executor xdp`, a program
//! attached with `ip link ... xdp obj`) found and removed by reconcile.
//! Needs root, iproute2, hping3 and ping; fails on CI without them.

mod common;

use levee_lab::lab::VICTIM_IF;
use levee_lab::process::GroupChild;
use levee_lab::{require_lab, FloodKind, Lab, Ns};
use levee_xdp::{
    AttachedMode, FingerprintMatch, Mode, Outcome, Range, RuleId, TcpFlagsMatch, XdpFilter,
};
use std::process::Command;
use std::time::{Duration, Instant};

fn ready() -> bool {
    require_lab().is_none() && common::require_xdp()
}

fn attach(lab: &Lab, mode: Mode) -> XdpFilter {
    lab.run_in(Ns::Victim, || XdpFilter::attach(VICTIM_IF, mode))
        .expect("entering the victim namespace")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `ip -d link show` of the victim interface.
fn link_show(lab: &Lab) -> String {
    lab.exec_in_stdout(Ns::Victim, &["ip", "-d", "link", "show", VICTIM_IF])
        .expect("ip link show")
}

/// TCP segments the victim's stack received so far.
fn tcp_in(lab: &Lab) -> u64 {
    lab.snmp(Ns::Victim).expect("victim snmp").tcp_in_segs
}

fn rule_packets(f: &XdpFilter, id: RuleId) -> u64 {
    f.counters().unwrap().get(&id).map_or(0, |c| c.packets)
}

fn syn_to_80() -> FingerprintMatch {
    FingerprintMatch {
        ip_version: Some(4),
        protocol: Some(6),
        dst_ports: Some(Range::one(80)),
        tcp_flags: Some(TcpFlagsMatch::exact(0x02)),
        fragment: Some(false),
        ..Default::default()
    }
}

/// Flood -> rule -> no rule, in one 8 s SYN flood; each window 1.5 s.
fn syn_flood_rule_cycle(mode: Mode) {
    if !ready() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let mut f = attach(&lab, mode);
    let (_, attached) = f.attachment().expect("attached");
    if mode == Mode::Native {
        assert_eq!(attached, AttachedMode::Native);
    }
    // What the kernel reports, through netlink and through iproute2.
    let reported = lab
        .run_in(Ns::Victim, || {
            levee_xdp::netlink::attached(levee_xdp::netlink::ifindex(VICTIM_IF).unwrap())
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        reported,
        [levee_xdp::Attached {
            mode: attached,
            prog_id: f.program_id()
        }]
    );
    let shown = link_show(&lab);
    let word = match attached {
        AttachedMode::Generic => "xdpgeneric",
        _ => "xdp",
    };
    assert!(
        shown.split_whitespace().any(|w| w == word)
            && shown.contains(&format!("prog/xdp id {}", f.program_id())),
        "{mode:?} attach not visible in ip link:\n{shown}"
    );
    eprintln!("attached in {} mode", attached.name());

    let mut flood = lab
        .flood(FloodKind::Syn, Duration::from_secs(8))
        .expect("flood");
    let window = Duration::from_millis(1500);
    std::thread::sleep(Duration::from_millis(700));
    let a0 = tcp_in(&lab);
    std::thread::sleep(window);
    let open = tcp_in(&lab) - a0;

    let id = RuleId(1);
    f.add_rule(id, &syn_to_80()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (b0, c0) = (tcp_in(&lab), rule_packets(&f, id));
    std::thread::sleep(window);
    let (blocked, dropped) = (tcp_in(&lab) - b0, rule_packets(&f, id) - c0);

    let last = f.remove_rule(id).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let r0 = tcp_in(&lab);
    std::thread::sleep(window);
    let reopened = tcp_in(&lab) - r0;
    flood.stop();
    eprintln!(
        "{}: delivered {open} without the rule, {blocked} with it ({dropped} dropped by it), \
         {reopened} after removal; {} dropped in all",
        attached.name(),
        last.packets
    );

    assert!(
        open > 5_000,
        "the flood hardly reached the victim: {open} segments in 1.5 s"
    );
    assert!(dropped > 5_000, "the rule's counter barely rose: {dropped}");
    assert!(
        blocked * 100 <= dropped,
        "with the rule {blocked} segments still reached TCP while it dropped {dropped}"
    );
    assert!(
        reopened > 10 * blocked.max(100),
        "traffic did not flow again after removal: {reopened} vs {blocked}"
    );
    assert!(
        last.packets >= dropped,
        "final counters {last:?} below {dropped}"
    );
    let totals = f.totals().unwrap();
    assert!(totals.dropped.packets >= last.packets && totals.seen.packets > totals.dropped.packets);

    f.detach().unwrap();
    let shown = link_show(&lab);
    assert!(
        !shown.contains("prog/xdp"),
        "still attached after detach:\n{shown}"
    );
}

#[test]
fn syn_flood_is_dropped_by_a_fingerprint_rule_generic_mode() {
    syn_flood_rule_cycle(Mode::Generic);
}

#[test]
fn syn_flood_is_dropped_by_a_fingerprint_rule_native_mode() {
    syn_flood_rule_cycle(Mode::Native);
}

/// `ping -c N` from `src` in the attacker namespace; replies received.
fn ping(lab: &Lab, src: &str, n: u32) -> u32 {
    let out = lab
        .command_in(Ns::Attacker, "ping")
        .args([
            "-n",
            "-q",
            "-c",
            &n.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            "-I",
            src,
        ])
        .arg(lab.victim_ip().to_string())
        .output()
        .expect("running ping (Debian package iputils-ping)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read ping's summary: {text}"))
}

#[test]
fn source_set_drops_only_the_listed_source() {
    if !ready() {
        return;
    }
    let lab = Lab::new().expect("lab");
    // A second source on the attacker side, routed back from the victim.
    let other = "192.0.2.77";
    lab.exec_in(
        Ns::Attacker,
        &[
            "ip",
            "addr",
            "add",
            &format!("{other}/32"),
            "dev",
            lab.attacker_if(),
        ],
    )
    .unwrap();
    lab.exec_in(
        Ns::Victim,
        &[
            "ip",
            "route",
            "add",
            &format!("{other}/32"),
            "dev",
            VICTIM_IF,
        ],
    )
    .unwrap();
    let attacker = lab.attacker_ip().to_string();
    assert_eq!(ping(&lab, &attacker, 3), 3, "lab connectivity");
    assert_eq!(ping(&lab, other, 3), 3, "lab connectivity from {other}");

    let mut f = attach(&lab, Mode::Auto);
    let id = RuleId(5);
    f.add_source(format!("{attacker}/32").parse().unwrap(), id)
        .unwrap();
    assert_eq!(
        ping(&lab, &attacker, 5),
        0,
        "the listed source still gets through"
    );
    assert_eq!(ping(&lab, other, 5), 5, "another source was dropped");
    assert_eq!(
        rule_packets(&f, id),
        5,
        "one count per echo request from {attacker}"
    );

    assert_eq!(
        f.remove_source(format!("{attacker}/32").parse().unwrap())
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        ping(&lab, &attacker, 3),
        3,
        "the source is still dropped after removal"
    );
    assert!(f.counters().unwrap().is_empty());
}

#[test]
fn dropping_the_filter_detaches_it() {
    if !ready() {
        return;
    }
    let lab = Lab::new().expect("lab");
    let f = attach(&lab, Mode::Generic);
    assert!(link_show(&lab).contains("prog/xdp"));
    drop(f);
    let shown = link_show(&lab);
    assert!(
        !shown.contains("prog/xdp"),
        "still attached after drop:\n{shown}"
    );
}

fn wait_for(lab: &Lab, attached: bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = link_show(lab);
        if shown.contains("prog/xdp") == attached || Instant::now() > deadline {
            return shown;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_holder_leaves_nothing() {
    if !ready() {
        return;
    }
    let lab = Lab::new().expect("lab");
    // The holder is the product itself: `levee mitigate apply` with an XDP
    // drop rule, inside the victim namespace, killed before it can clean up.
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("agent.toml");
    std::fs::write(
        &config,
        "[mitigation]\nenabled = true\n[mitigation.profiles]\nsyn_flood = [{ action = \"drop\" }]\n",
    )
    .unwrap();
    let bin = levee_lab::levee_binary().unwrap_or_else(|e| panic!("levee binary: {e}"));
    let target = lab.victim_ip().to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lab.victim_ns()])
        .arg(&bin)
        .args([
            "mitigate",
            "apply",
            "--family",
            "syn_flood",
            "--executor",
            "xdp",
        ])
        .args([
            "--target",
            &target,
            "--interface",
            VICTIM_IF,
            "--hold-for",
            "30s",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(work.path().join("state"));
    let mut holder = GroupChild::spawn(cmd).unwrap();
    let shown = wait_for(&lab, true);
    assert!(
        shown.contains("name levee_xdp"),
        "the holder did not attach: {shown}\n{}",
        holder.stderr_text()
    );
    holder.kill();
    // The kernel releases the bpf_link with the process's files.
    let shown = wait_for(&lab, false);
    assert!(
        !shown.contains("prog/xdp"),
        "left behind by a SIGKILLed holder:\n{shown}"
    );
    let r = lab
        .run_in(Ns::Victim, || levee_xdp::reconcile(VICTIM_IF))
        .unwrap()
        .unwrap();
    assert!(r.outcomes.is_empty(), "{r:?}");
}

#[test]
fn reconcile_removes_a_netlink_attached_leftover_but_not_a_live_filter() {
    if !ready() {
        return;
    }
    let lab = Lab::new().expect("lab");
    // A program attached the pre-bpf_link way (as an older kernel, or
    // `ip link`, leaves it): it outlives the process that attached it.
    let obj = tempfile::Builder::new().suffix(".o").tempfile().unwrap();
    std::fs::write(obj.path(), levee_xdp::kernel::object().unwrap()).unwrap();
    let path = obj.path().to_str().unwrap();
    lab.exec_in(
        Ns::Victim,
        &[
            "ip",
            "link",
            "set",
            "dev",
            VICTIM_IF,
            "xdpgeneric",
            "obj",
            path,
            "sec",
            "xdp",
        ],
    )
    .unwrap();
    let shown = link_show(&lab);
    assert!(shown.contains("name levee_xdp"), "{shown}");

    let r = lab
        .run_in(Ns::Victim, || levee_xdp::reconcile(VICTIM_IF))
        .unwrap()
        .unwrap();
    assert!(
        matches!(r.outcomes.as_slice(), [Outcome::Removed(a)] if a.mode == AttachedMode::Generic),
        "{r:?}"
    );
    let shown = link_show(&lab);
    assert!(
        !shown.contains("prog/xdp"),
        "leftover still attached:\n{shown}"
    );

    // A live filter is held by its bpf_link: reconcile from elsewhere keeps
    // it, and the filter's own reconcile sees itself.
    let f = attach(&lab, Mode::Generic);
    let r = lab
        .run_in(Ns::Victim, || levee_xdp::reconcile(VICTIM_IF))
        .unwrap()
        .unwrap();
    assert!(
        matches!(r.outcomes.as_slice(), [Outcome::HeldByLiveProcess(a)] if a.prog_id == f.program_id()),
        "{r:?}"
    );
    let r = lab
        .run_in(Ns::Victim, || f.reconcile(VICTIM_IF))
        .unwrap()
        .unwrap();
    assert!(matches!(r.outcomes.as_slice(), [Outcome::Own(_)]), "{r:?}");
    assert!(link_show(&lab).contains("prog/xdp"));
}
