//! Fuzz target `events_auto`: see `nerve_fuzz::events_auto` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("events_auto"), |data: &[u8]| nerve_fuzz::events_auto(data));
