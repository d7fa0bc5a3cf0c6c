//! The `levee` command as users call it: help and version on every
//! subcommand, config errors reported all at once, and `pcap analyze` on the
//! shared corpus captures.

use std::path::PathBuf;
use std::process::{Command, Output};

fn levee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(args)
        .output()
        .expect("run levee")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_and_version_everywhere() {
    let v = levee(&["--version"]);
    assert!(v.status.success());
    assert!(text(&v).starts_with("levee "), "{}", text(&v));
    for sub in [
        &["agent"][..],
        &["watch"],
        &["pcap"],
        &["pcap", "analyze"],
        &["server"],
        &["up"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let o = levee(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage: levee"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn bad_config_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[agent]\ntick = \"1ms\"\nbogus = 1\n[detector]\nmultiplier = 0.5\n",
    )
    .unwrap();
    let o = levee(&[
        "agent",
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("3 problem(s)"), "{t}");
    for key in ["agent.tick", "agent.bogus", "detector.multiplier"] {
        assert!(t.contains(key), "no mention of {key}: {t}");
    }
}

#[test]
fn bad_flag_value_names_the_flag() {
    let o = levee(&["agent", "--tick", "fast"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--tick"), "{}", text(&o));
}

#[test]
fn example_config_is_accepted() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent.toml");
    let o = levee(&[
        "agent",
        "--config",
        example.to_str().unwrap(),
        "--print-config",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// ../shared/corpus beside the repository (BRIEF: tests read it from there).
fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/attacks");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing at {}",
        dir.display()
    );
    eprintln!("SKIPPING: corpus not found at {}", dir.display());
    None
}

#[test]
fn pcap_analyze_classifies_the_corpus() {
    let Some(dir) = corpus() else { return };
    for (file, family) in [
        ("stopddos-pkt.TCP.synflood.spoofed.pcap", "syn_flood"),
        (
            "stopddos-amp.dns.RRSIG.fragmented.pcap",
            "dns_amplification",
        ),
        ("stopddos-amp.TCP.reflection.SYNACK.pcap", "tcp_flag_abuse"),
    ] {
        let path = dir.join(file);
        let o = levee(&["pcap", "analyze", "--json", path.to_str().unwrap()]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
        assert_eq!(v["family"], family, "{file}");
        for k in [
            "packets",
            "confidence",
            "fingerprint",
            "top_sources",
            "protocols",
        ] {
            assert!(v.get(k).is_some(), "{file}: no {k}");
        }
        assert!(
            v["fingerprint"]["coverage"].as_f64().unwrap() >= 0.95,
            "{file}"
        );
        let human = levee(&["pcap", "analyze", path.to_str().unwrap()]);
        assert!(
            text(&human).contains(&format!("family:      {family}")),
            "{}",
            text(&human)
        );
    }
}

#[test]
fn pcap_analyze_bad_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    for path in [junk.to_str().unwrap(), "/nonexistent/x.pcap"] {
        let o = levee(&["pcap", "analyze", path]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains(path),
            "error should name the file: {}",
            text(&o)
        );
    }
}
