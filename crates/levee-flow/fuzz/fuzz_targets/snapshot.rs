//! Restoring a template cache snapshot from arbitrary text: a corrupt or
//! tampered state file must be refused or restored within the limits.
#![no_main]

mod common;

use levee_flow::{CacheSnapshot, DecoderConfig, FlowDecoder, Limits, Output};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(snap) = CacheSnapshot::from_json(text) {
        let mut d = FlowDecoder::new(DecoderConfig::default());
        d.restore(&snap, 0);
        assert!(d.templates().len() <= Limits::default().max_templates);
        let mut out = Output::default();
        d.decode(common::EXPORTER, 0, &[0, 10, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut out);
    }
});
