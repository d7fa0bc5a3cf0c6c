//! The ipfix decoder: the input after a fixed version field, so every
//! execution goes past format detection.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = common::primed();
    let mut dg = vec![0u8, 10];
    dg.extend_from_slice(data);
    common::run(&mut d, &dg);
});
