//! Fuzz target `nq`: see `nerve_fuzz::nq` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("nq"), |data: &[u8]| nerve_fuzz::nq(data));
