//! `levee flow decode`: every capture of the shared flow corpus, a NetFlow v5
//! capture on an unusual port written here, and bad input.

#[path = "../../levee-packet/tests/support/corpus.rs"]
mod corpus;

use levee_flow::build::{self, Flow};
use serde_json::Value;
use std::net::IpAddr;
use std::process::{Command, Output};

fn levee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_levee"))
        .args(args)
        .output()
        .expect("run levee")
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

const FLOW_KEYS: [&str; 13] = [
    "exporter",
    "version",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "protocol",
    "tcp_flags",
    "packets",
    "bytes",
    "sampling_rate",
    "frame",
    "domain",
];

#[test]
fn decodes_every_corpus_capture() {
    let Some(files) = corpus::flow_captures() else {
        return;
    };
    let mut flows = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let o = levee(&["flow", "decode", "--json", path.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lines = json_lines(&o);
        for l in &lines {
            match l["record"].as_str() {
                Some("flow") => {
                    flows += 1;
                    for k in FLOW_KEYS {
                        assert!(l.get(k).is_some(), "{name}: no {k} in {l}");
                    }
                }
                Some("counter") | Some("error") => {}
                other => panic!("{name}: unknown record kind {other:?}"),
            }
        }
        let text = levee(&["flow", "decode", path.to_str().unwrap()]);
        assert!(text.status.success());
        assert!(String::from_utf8_lossy(&text.stderr).contains("flow records"));
        match name.as_str() {
            "pmacct-104-IPFIXv10-IPv6-CISCO-sampling_option.pcap" => {
                // The options data (selector 1: 1 out of 256) comes before
                // the flows that name selector 1.
                let rates: Vec<u64> = lines
                    .iter()
                    .filter(|l| l["record"] == "flow")
                    .map(|l| l["sampling_rate"].as_u64().unwrap())
                    .collect();
                assert_eq!(rates, [256, 256, 256], "{name}");
            }
            "ndpi-netflowv9.pcap" => {
                // Templates were sent before the capture started.
                assert!(lines.iter().all(|l| l["record"] == "error"));
                assert!(lines.iter().all(|l| l["kind"] == "unknown_template"));
                assert_eq!(lines.len(), 23);
            }
            "nxthdr-sflow.pcap" => {
                let l = &lines[0];
                assert_eq!(
                    (
                        &l["src_addr"],
                        &l["dst_addr"],
                        &l["dst_port"],
                        &l["sampling_rate"]
                    ),
                    (
                        &Value::from("3.3.3.3"),
                        &Value::from("4.4.4.4"),
                        &Value::from(25562),
                        &Value::from(1000)
                    )
                );
            }
            _ => {}
        }
    }
    assert!(flows > 100, "only {flows} flow records in the whole corpus");
}

#[test]
fn netflow_v5_on_any_port_and_garbage_datagrams() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("v5.pcap");
    let flow = Flow {
        src: "198.51.100.7".parse::<IpAddr>().unwrap(),
        dst: "203.0.113.9".parse().unwrap(),
        src_port: 123,
        dst_port: 40_000,
        protocol: 17,
        tcp_flags: 0,
        packets: 500,
        bytes: 234_000,
    };
    let datagrams = [
        build::netflow5(1, 1, (0, 0), 0x4000 | 64, &[flow, flow]),
        b"hello".to_vec(),
    ];
    std::fs::write(&pcap, build::pcap([10, 1, 1, 1].into(), 12_345, &datagrams)).unwrap();
    let o = levee(&["flow", "decode", "--json", pcap.to_str().unwrap()]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let f = &lines[0];
    assert_eq!(f["record"], "flow");
    assert_eq!(f["exporter"], "10.1.1.1");
    assert_eq!(f["version"], "netflow5");
    assert_eq!(f["src_addr"], "198.51.100.7");
    assert_eq!(
        (f["packets"].as_u64(), f["bytes"].as_u64()),
        (Some(500), Some(234_000))
    );
    assert_eq!(f["sampling_rate"], 64);
    assert_eq!(lines[2]["record"], "error");
    assert_eq!(lines[2]["kind"], "unknown_format");
    assert_eq!(lines[2]["frame"], 2);
    let human = levee(&["flow", "decode", pcap.to_str().unwrap()]);
    let t = String::from_utf8_lossy(&human.stdout);
    assert!(t.contains("198.51.100.7") && t.contains("netflow5"), "{t}");
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"not a capture").unwrap();
    for path in [junk.to_str().unwrap(), "/nonexistent/flows.pcap"] {
        let o = levee(&["flow", "decode", path]);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).contains(path));
    }
    let o = levee(&["flow", "decode", "--help"]);
    assert!(o.status.success());
}
