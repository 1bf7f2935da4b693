//! Fuzz target `hf_checkpoint`: see `nerve_fuzz::hf_checkpoint` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("hf_checkpoint"), |data: &[u8]| nerve_fuzz::hf_checkpoint(data));
