//! Fuzz target `checkpoint`: see `nerve_fuzz::checkpoint` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("checkpoint"), |data: &[u8]| nerve_fuzz::checkpoint(data));
