//! The agent's packet view fed by a replayed capture instead of a live
//! interface (the `PacketSource` seam): a real spoofed SYN flood from the
//! shared corpus goes through a capture thread, the feature windows and the
//! classifier into an incident event, and the incident pcap written from the
//! ring reads back with the same frames.

#[path = "../../levee-packet/tests/support/corpus.rs"]
mod corpus;

use levee_agent::capture_config::CaptureConfig;
use levee_agent::visibility::sampler::Opener;
use levee_agent::visibility::Visibility;
use levee_capture::PcapSource;
use levee_model::{EventBody, IncidentInfo};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn info(id: &str, target: &str) -> IncidentInfo {
    IncidentInfo {
        incident_id: id.into(),
        target: target.into(),
        metric: "rx_pps".into(),
        value: 100_000.0,
        baseline: 10.0,
        ratio: 10_000.0,
        threshold: 2_000.0,
        metrics: vec![],
        started_at: "2026-11-21T01:44:10.123Z".into(),
        family: None,
        confidence: None,
        fingerprint: None,
        details: Default::default(),
    }
}

fn replay(path: PathBuf) -> Opener {
    let mut used = false;
    Box::new(move |_cfg| {
        // One pass: a reopened replay would count the file twice.
        if used {
            return Err(levee_capture::CaptureError::Config {
                interface: "replay".into(),
                detail: "replay already consumed".into(),
            });
        }
        used = true;
        Ok(Box::new(PcapSource::open(&path)?) as Box<dyn levee_capture::PacketSource>)
    })
}

#[test]
fn replayed_syn_flood_is_classified_and_captured() {
    let Some(path) = corpus::attack("stopddos-pkt.TCP.synflood.spoofed.pcap") else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = CaptureConfig {
        // A window far longer than the test: everything lands in one.
        window: Duration::from_secs(3600),
        // The capture is years old: reach back to its packets.
        pcap_before: Duration::from_secs(u64::from(u32::MAX)),
        ..CaptureConfig::default()
    };
    let now_ms = 1_795_225_450_000i64;
    let mut vis = Visibility::start(
        cfg,
        state.path(),
        &["replay".to_string()],
        |_| replay(path.clone()),
        &stop,
        now_ms as u64 * 1_000_000,
    )
    .unwrap();
    // The replay ends by itself; wait until its packets are in.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut started = info("01a1fbfd-0000-7000-8000-000000000001", "replay");
    let job = loop {
        let mut probe = info("probe", "replay");
        let _ = vis.started(&mut probe, now_ms);
        vis.resolved(&mut probe);
        if probe.details.sampled_packets.unwrap_or(0) > 1_000 || Instant::now() > deadline {
            break vis.started(&mut started, now_ms);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(vis.errors().is_empty(), "{:?}", vis.errors());
    assert_eq!(started.family.as_deref(), Some("syn_flood"), "{started:?}");
    assert!(started.confidence.unwrap_or(0) >= 90);
    let fp = started.fingerprint.clone().expect("fingerprint");
    assert_eq!(fp["protocol"], "tcp");
    assert_eq!(fp["tcp_flags"], serde_json::json!(["S"]));
    assert!(fp["coverage"].as_f64().unwrap() >= 0.95);
    assert!(started.details.spoofing.as_ref().unwrap()["likely"] == true);
    assert!(started.details.victim.is_some());
    let ev = serde_json::to_value(EventBody::IncidentStarted(started.clone())).unwrap();
    assert!(ev["top_sources"].as_array().is_some_and(|a| !a.is_empty()));

    // The pcap: written from the ring, readable, the replayed frames in it.
    let job = job.expect("a pcap job");
    // The ring keeps at most a twentieth of its capacity per 100 ms of
    // capture time; the file's frames all come from the replay.
    let sum = vis.write_pcap(&job).unwrap();
    assert!(sum.frames > 0);
    let back = levee_packet::analyze_path(&job.path, &Default::default()).unwrap();
    assert_eq!(back.packets as usize, sum.frames);
    assert_eq!(back.family, Some(levee_packet::Family::SynFlood));
    assert_eq!(
        started.details.pcap.as_deref(),
        Some(job.path.to_str().unwrap())
    );

    stop.store(true, Ordering::SeqCst);
    vis.join();
}
