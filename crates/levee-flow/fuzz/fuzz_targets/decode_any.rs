//! The whole decoder front, format detection included, on raw input.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = common::primed();
    common::run(&mut d, data);
});
