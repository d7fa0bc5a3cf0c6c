//! The listeners on real loopback sockets (no root needed): several sockets
//! per address with SO_REUSEPORT, every format, per-exporter counters, a
//! clean stop, and a port already taken.

use levee_flow::build::{self, Flow, SflowSample};
use levee_flow::FlowRecord;
use levee_flowd::{Ingest, ListenConfig, ListenError, Listeners};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn flow(i: u32) -> Flow {
    Flow {
        src: IpAddr::V4((0xc633_6400 + i).into()),
        dst: "203.0.113.5".parse().unwrap(),
        src_port: 5000,
        dst_port: 80,
        protocol: 6,
        tcp_flags: 2,
        packets: 10,
        bytes: 400,
    }
}

fn config(sockets: usize) -> ListenConfig {
    ListenConfig {
        listen: vec![
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ],
        sockets_per_address: sockets,
        ..ListenConfig::default()
    }
}

#[test]
fn every_format_over_udp_with_counters() {
    let got: Arc<Mutex<Vec<FlowRecord>>> = Arc::default();
    let sink = {
        let got = Arc::clone(&got);
        Arc::new(move |_now: i64, flows: &[FlowRecord]| {
            got.lock().unwrap().extend_from_slice(flows)
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = config(2);
    let l = Listeners::start(
        &cfg,
        Ingest::new(cfg.decoder.clone(), 16),
        sink,
        Arc::clone(&stop),
        clock,
    )
    .unwrap();
    let addrs = l.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|a| a.port() != 0));

    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut body = Vec::new();
    for i in 0..5 {
        build::data_record(&flow(i), false, &mut body);
    }
    let tpl = build::set(
        0,
        &build::template_record(256, &build::flow_fields(false), false),
    );
    let datagrams = [
        build::netflow5(1, 1, (0, 0), 0, &[flow(0), flow(1)]),
        // Data first: unknown template; then template + data.
        build::netflow9(1, 0, 1, &[build::set(256, &body)]),
        build::netflow9(2, 0, 1, &[tpl, build::set(256, &body)]),
        build::sflow(
            "127.0.0.1".parse().unwrap(),
            0,
            1,
            &[SflowSample {
                sampling_rate: 100,
                input: 1,
                output: 2,
                frame_length: 64,
                header: build::ethernet_ipv4(&flow(9), 46),
            }],
        ),
        b"garbage".to_vec(),
    ];
    // In order to one port (one socket: the kernel hashes the 4-tuple), then
    // the v5 datagram again to the second address.
    for d in &datagrams {
        tx.send_to(d, addrs[0]).unwrap();
    }
    tx.send_to(&datagrams[0], addrs[1]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the garbage datagram be counted too.
    let stats = loop {
        let s = l.with_ingest(|i| i.exporter(&"127.0.0.1".parse().unwrap()).cloned());
        if s.as_ref().is_some_and(|s| s.datagrams == 6) || Instant::now() > deadline {
            break s.unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let flows = got.lock().unwrap().clone();
    assert_eq!(flows.len(), 2 + 5 + 1 + 2, "{flows:#?}");
    assert!(flows
        .iter()
        .any(|f| f.sampling_rate == 100 && f.dst_port == Some(80)));
    assert_eq!(stats.datagrams, 6);
    assert_eq!(stats.records, 10);
    assert_eq!(stats.unknown_templates, 1);
    assert_eq!(
        stats.decode_errors, 2,
        "the unknown template and the garbage"
    );
    assert_eq!(stats.templates, 1);

    stop.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    l.join();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "threads stop within the poll interval"
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = ListenConfig {
        listen: vec![addr],
        ..ListenConfig::default()
    };
    let sink = Arc::new(|_: i64, _: &[FlowRecord]| {});
    let err = Listeners::start(
        &cfg,
        Ingest::new(cfg.decoder.clone(), 4),
        sink,
        Arc::new(AtomicBool::new(false)),
        clock,
    )
    .err()
    .expect("bind must fail");
    assert!(matches!(err, ListenError::Bind { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("flow.listen"),
        "{text}"
    );
}
