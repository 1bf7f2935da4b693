//! Fuzz target `stmnist`: see `nerve_fuzz::stmnist` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("stmnist"), |data: &[u8]| nerve_fuzz::stmnist(data));
