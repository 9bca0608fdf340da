#![no_main]
//! The opening-handshake parser and the response writer; see `src/handshake.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mzw1_wss_fuzz::handshake::run(data));
