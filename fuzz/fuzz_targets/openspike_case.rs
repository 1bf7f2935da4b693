//! Fuzz target `openspike_case`: see `nerve_fuzz::openspike_case` for the checks made on every
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("openspike_case"), |data: &[u8]| {
    nerve_fuzz::openspike_case(data)
});
