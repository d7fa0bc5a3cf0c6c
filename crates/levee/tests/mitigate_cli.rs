//! `levee mitigate preview` and `levee audit verify` as users call them.
//! (Applying rules for real is covered by the mitigation lab tests.)

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
fn help_for_the_new_subcommands() {
    for sub in [
        &["mitigate"][..],
        &["mitigate", "preview"],
        &["mitigate", "apply"],
        &["mitigate", "reconcile"],
        &["audit", "verify"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let o = levee(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
}

#[test]
fn preview_prints_the_ruleset_and_runs_nothing() {
    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "syn_flood",
        "--target",
        "203.0.113.10",
        "--interface",
        "eth0",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("nft -f - <<'EOF'\nadd table netdev levee"),
        "{t}"
    );
    assert!(
        t.contains("tcp flags { 0x2 } limit rate over 2000/second"),
        "{t}"
    );
    assert!(t.contains("sysctl -w net.ipv4.tcp_syncookies=1"), "{t}");
    assert!(t.contains("skipped: source_block"), "{t}");

    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "dns_amplification",
        "--target",
        "203.0.113.10",
        "--executor",
        "iptables",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let e = &lines[0];
    assert_eq!(e["event"], "mitigation_previewed");
    assert_eq!(e["executor"], "iptables");
    assert_eq!(e["dry_run"], true);
    assert!(e["rule"].as_str().unwrap().contains("--sport 53"), "{e}");
}

#[test]
fn preview_uses_a_fingerprint_and_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let fp = dir.path().join("fp.json");
    std::fs::write(
        &fp,
        r#"{"fingerprint":{"ip_version":4,"protocol":"udp","src_ports":[[1024,1100]],"dst_ports":[27015],"tcp_flags":null,
            "icmp_types":null,"length":[28,60],"ttl":[50,60],"fragment":false,"non_first_fragments":false,
            "src_prefixes":["198.51.100.0/24","192.0.2.0/24"],"coverage":0.99,"baseline_match":null,"sample_packets":500}}"#,
    )
    .unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "[agent]\nnode = \"x\"\n[mitigation]\nallowlist = [\"192.0.2.0/24\"]\nttl = \"90s\"\n\
         [mitigation.profiles]\nudp_flood = [{ action = \"source_block\" }, { action = \"drop\" }]\n",
    )
    .unwrap();
    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "udp_flood",
        "--target",
        "203.0.113.10",
        "--fingerprint",
        fp.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("add element inet levee exempt4 { 192.0.2.0/24 }"),
        "{t}"
    );
    assert!(t.contains("198.51.100.0/24 timeout 90000ms"), "{t}");
    assert!(
        !t.contains("192.0.2.0/24 timeout"),
        "the allowlisted source must not be blocked: {t}"
    );
    assert!(
        t.contains("udp dport { 27015 } ip length 28-60 ip ttl 50-60"),
        "{t}"
    );
    assert!(
        !t.contains("sport"),
        "a source-port walk is no rule condition: {t}"
    );

    std::fs::write(&cfg, "[mitigation]\nttl = \"0s\"\nmax_rules = 0\n").unwrap();
    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "udp_flood",
        "--target",
        "203.0.113.10",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("mitigation.ttl") && t.contains("mitigation.max_rules"),
        "{t}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "nope",
        "--target",
        "203.0.113.10",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("unknown attack family \"nope\""),
        "{}",
        text(&o)
    );
    let o = levee(&[
        "mitigate",
        "preview",
        "--family",
        "syn_flood",
        "--target",
        "203.0.113.10",
        "--executor",
        "pf",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown executor"), "{}", text(&o));
}

#[test]
fn audit_verify_reports_the_first_broken_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut log = levee_mitigate::audit::AuditLog::open(&p).unwrap();
    for step in ["previewed", "applied", "verified", "rolled_back"] {
        log.append(
            0,
            levee_mitigate::audit::AuditRecord {
                step: step.into(),
                mitigation_id: "m".into(),
                incident_id: "i".into(),
                executor: "nftables".into(),
                rule: String::new(),
                reason: String::new(),
            },
        )
        .unwrap();
    }
    drop(log);
    let o = levee(&["audit", "verify", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("4 entries, hash chain intact"),
        "{}",
        text(&o)
    );

    let tampered = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("\"applied\"", "\"previewed\"", 1);
    std::fs::write(&p, tampered).unwrap();
    let o = levee(&["audit", "verify", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("line 3"), "{}", text(&o));

    let o = levee(&[
        "audit",
        "verify",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("opening the audit log"), "{}", text(&o));
}
