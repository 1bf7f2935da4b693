//! Fuzz target `idx`: see `nerve_fuzz::idx` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("idx"), |data: &[u8]| nerve_fuzz::idx(data));
