//! Fuzz target `aedat`: see `nerve_fuzz::aedat` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("aedat"), |data: &[u8]| nerve_fuzz::aedat(data));
