//! Fuzz target `prophesee`: see `nerve_fuzz::prophesee` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("prophesee"), |data: &[u8]| nerve_fuzz::prophesee(data));
