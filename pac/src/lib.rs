//! `mzw1-pac`: a hand-written peripheral access layer for the Microchip PIC32MZW1
//! (PIC32MZ1025W104132): the Ethernet controller (ETH + EMAC), its DMA descriptors, the
//! parts of the interrupt controller and of the configuration block the Ethernet interrupt
//! and module enable need, the external PHY's registers, and CP0.
//!
//! Registers only, no behaviour. Every address, offset and bit comes from
//! `shared/reference/pic32mzw1-eth-facts.md` (W1 values, not PIC32MZ EF ones); the tests in
//! `tests/layout.rs` check each offset against that table.
#![no_std]
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]
#![deny(missing_docs)]

pub mod cfg;
pub mod cp0;
pub mod desc;
pub mod eth;
pub mod evic;
pub mod phy;
pub mod reg;

pub use desc::Descriptor;
pub use eth::EthRegisters;
pub use evic::EvicRegisters;
