//! `levee flowspec build`: the printed gobgp command is accepted, pasted
//! as is, by a real gobgpd (in a lab namespace, API on that namespace's
//! 127.0.0.1:50051, gobgp's default), for IPv4 and IPv6, and the
//! `--withdraw` command removes it again; bad flags are named.

use levee_lab::bgp::{GoBgpd, BGP_TOOLS};
use levee_lab::{require_lab_with, Lab};
use std::process::Command;
use std::time::Duration;

fn build(args: &[&str]) -> std::process::Output {
    Command::new(levee_lab::levee_binary().unwrap())
        .args(["flowspec", "build"])
        .args(args)
        .output()
        .unwrap()
}

fn paste(lab: &Lab, line: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", lab.victim_ns(), "sh", "-c", line])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "gobgp refused `{line}`: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gobgp_format_is_a_command_gobgpd_accepts() {
    if require_lab_with(BGP_TOOLS).is_some() {
        return;
    }
    let lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vic = std::net::IpAddr::V4(lab.victim_ip());
    let mut g = GoBgpd::start(lab.victim_ns(), dir.path(), 64500, vic, &[], 50051).unwrap();
    let v4 = [
        "--dst",
        "203.0.113.7",
        "--src",
        "198.51.100.0/24",
        "--protocol",
        "tcp",
        "--dst-port",
        "80,443,8000-8080",
        "--src-port",
        "1024-65535",
        "--tcp-flags",
        "S,SA",
        "--length",
        "40-60",
        "--fragment",
        "not-a-fragment",
        "--dscp",
        "0",
        "--action",
        "rate-limit=1250000",
        "--format",
        "gobgp",
    ];
    let out = build(&v4);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("gobgp global rib -a ipv4-flowspec add match destination 203.0.113.7/32"),
        "{line}"
    );
    paste(&lab, line.trim());
    let rib = g
        .wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
            r.contains("203.0.113.7/32")
        })
        .unwrap();
    assert!(
        rib.contains("[source: 198.51.100.0/24]") && rib.contains("rate: 1250000"),
        "{rib}"
    );
    assert!(
        rib.contains("[destination-port: ==80 ==443 >=8000&<=8080]"),
        "{rib}"
    );

    let icmp6 = [
        "--dst",
        "2001:db8::7",
        "--protocol",
        "icmpv6",
        "--icmp-type",
        "128",
        "--icmp-code",
        "0",
        "--action",
        "discard",
        "--action",
        "mark=10",
        "--format",
        "gobgp",
    ];
    let line = String::from_utf8(build(&icmp6).stdout).unwrap();
    assert!(
        line.starts_with("gobgp global rib -a ipv6-flowspec add"),
        "{line}"
    );
    paste(&lab, line.trim());
    let rib = g
        .wait_rib("ipv6-flowspec", Duration::from_secs(5), |r| {
            r.contains("2001:db8::7/128")
        })
        .unwrap();
    assert!(
        rib.contains("discard") && rib.contains("[icmp-type: ==128]"),
        "{rib}"
    );

    // --withdraw prints the matching delete.
    let mut w = v4.to_vec();
    w.push("--withdraw");
    let line = String::from_utf8(build(&w).stdout).unwrap();
    assert!(line.contains(" del match "), "{line}");
    paste(&lab, line.trim());
    g.wait_rib("ipv4-flowspec", Duration::from_secs(5), |r| {
        !r.contains("203.0.113.7/32")
    })
    .unwrap();
}

#[test]
fn bad_flags_are_named() {
    let out = build(&["--dst", "203.0.113.7", "--dst-port", "70000"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--dst-port `70000`"), "{e}");
    let out = build(&["--dst", "203.0.113.7", "--action", "explode"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("discard, rate-limit=BYTES_PER_S"));
    let out = build(&["--protocol", "tcp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dst PREFIX is required"));
}
