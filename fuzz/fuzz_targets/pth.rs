//! Fuzz target `pth`: see `nerve_fuzz::pth` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("pth"), |data: &[u8]| nerve_fuzz::pth(data));
