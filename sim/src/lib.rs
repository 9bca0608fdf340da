//! `mzw1-sim`: the simulated PIC32MZW1 board.
//!
//! The firmware's own code (the `mzw1-wss` driver, stack and service) runs on the host
//! against a behavioural model of the PIC32 Ethernet controller that works on the same
//! register block and the same DMA descriptors as the silicon ([`eth`]), with a PHY on the
//! MIIM bus ([`phy`]), the interrupt controller and module-enable registers ([`board`]), a
//! virtual clock, and an in-process wire to peers with impairments and pcap capture
//! ([`wire`], [`pcap`]).

pub mod board;
pub mod bridge;
pub mod crc;
pub mod eth;
mod mem;
pub mod pcap;
pub mod peer;
pub mod phy;
pub mod reference;
pub mod tap;
pub mod testbed;
pub mod wire;

pub use board::{Board, BoardConfig, Firmware};
pub use eth::{Faults, ModelStats};
pub use peer::PeerHost;
pub use phy::PhyConfig;
pub use reference::{Reference, Service, TcpEcho};
pub use testbed::{Link, Station, Testbed};
pub use wire::{End, Impairments, Wire, WireConfig};
