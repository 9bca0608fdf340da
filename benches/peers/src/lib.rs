//! The comparison firmware's shared parts: smoltcp's device over the mzw1-wss MAC driver,
//! and the WebSocket echo server built from smoltcp and embedded-websocket. Used by the
//! benchmark images (`mzw1-bench-peers`, `mzw1-bench-peers-ws`, QEMU Malta) and by the
//! PIC32MZW1 image whose footprint `cargo xtask size` reports (`mzw1-peer-image`).
#![no_std]

pub mod device;
pub mod ws_server;
