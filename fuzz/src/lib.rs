//! The fuzz harnesses: plain functions over the fuzz input, each asserting its
//! invariants with `assert!` (a failed assertion is a crash to libFuzzer).
//!
//! - [`handshake::run`]: the opening-handshake parser fed the same request cut three ways
//!   (whole, byte by byte, at points the input chooses), which must agree; the response
//!   writer over every buffer size.
//! - [`frames::run`]: the frame receiver against a reference decoder written here, once
//!   with a sink that takes everything and once with one that refuses and takes part of
//!   what it is offered, as the input decides, over input-chosen cuts.
//! - [`stack::run`]: whole Ethernet frames into the reference firmware on the simulated
//!   board, with a WebSocket open and a second connection mid-handshake; then a new
//!   connection must still upgrade and echo, and no buffer may leak.
//!
//! [`seeds`] makes the seed corpus. The same source is compiled into the main
//! workspace's `tests/fuzz_corpus.rs` (through `#[path]`), which replays the committed
//! corpus with the stable toolchain; so this code uses `super::` paths only, and needs
//! nothing but `std` and the project's own crates.
#![allow(dead_code)]

pub mod bytes;
pub mod frames;
pub mod handshake;
pub mod seeds;
pub mod stack;
