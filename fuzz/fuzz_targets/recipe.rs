//! Fuzz target `recipe`: see `nerve_fuzz::recipe` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("recipe"), |data: &[u8]| nerve_fuzz::recipe(data));
