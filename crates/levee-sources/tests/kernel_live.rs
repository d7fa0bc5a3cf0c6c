//! `KernelSource::system` against this machine's real /proc (no root needed):
//! samples parse, `lo` is filtered out, time advances, rates come out.

use levee_sources::{CounterSource, InterfaceFilter, KernelSource, RateCalculator};

#[test]
fn samples_the_running_kernel() {
    let mut src = KernelSource::system(InterfaceFilter::AllExceptLoopback);
    let a = src.sample().expect("first sample");
    assert!(a.interfaces.iter().all(|i| i.name != "lo"));
    assert!(a.proto.tcp_in_segs > 0 || a.proto.udp_in_datagrams > 0 || a.interfaces.is_empty());
    if let Some(e) = src.last_conn_error() {
        eprintln!("note: connection counts unavailable here: {e}");
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = src.sample().expect("second sample");
    assert!(b.mono_ms > a.mono_ms);

    let mut rc = RateCalculator::new();
    assert!(rc.push(&a).unwrap().is_none());
    let tick = rc.push(&b).unwrap().expect("rates from two samples");
    assert!(tick.observation.dt > 0.0);
    assert_eq!(tick.observation.conns, b.conns);
}
