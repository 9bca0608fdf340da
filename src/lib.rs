//! `mzw1-wss`: a zero-allocation, bare-metal WebSocket server for the PIC32MZW1.
//!
//! Layers, each ignorant of the one above: [`mzw1_pac`] (registers) → [`mac`] (descriptor
//! rings, interrupt) → `net` (Ethernet, ARP, IPv4, ICMP, TCP) → `ws` (handshake, frames,
//! UTF-8) → `service` (the Harmony WSS API and client table).
#![no_std]
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]

pub mod copy;
pub mod mac;
pub mod net;
pub mod service;
pub mod time;
pub mod ws;

#[cfg(all(target_arch = "mips", target_os = "none"))]
pub mod rt;

pub use mzw1_pac as pac;
