//! Fuzz target `nir`: see `nerve_fuzz::nir` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("nir"), |data: &[u8]| nerve_fuzz::nir(data));
