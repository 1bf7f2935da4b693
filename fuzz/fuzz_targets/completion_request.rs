//! Fuzz target `completion_request`: see `nerve_fuzz::completion_request` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("completion_request"), |data: &[u8]| nerve_fuzz::completion_request(data));
