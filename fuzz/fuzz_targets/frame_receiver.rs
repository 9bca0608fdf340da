#![no_main]
//! The frame receiver against a reference decoder; see `src/frames.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mzw1_wss_fuzz::frames::run(data));
