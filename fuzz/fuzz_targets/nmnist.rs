//! Fuzz target `nmnist`: see `nerve_fuzz::nmnist` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("nmnist"), |data: &[u8]| nerve_fuzz::nmnist(data));
