//! The sFlow v5 decoder: the input after the 32-bit version 5.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = common::primed();
    let mut dg = vec![0u8, 0, 0, 5];
    dg.extend_from_slice(data);
    common::run(&mut d, &dg);
});
