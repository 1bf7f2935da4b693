//! Fuzz target `tokenizer`: see `nerve_fuzz::tokenizer` for the checks made on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: nerve_fuzz::write_seeds("tokenizer"), |data: &[u8]| nerve_fuzz::tokenizer(data));
