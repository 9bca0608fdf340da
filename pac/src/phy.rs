//! Registers of the external RMII PHY (LAN8720A / LAN8740), reached over MIIM
//! (pic32mzw1-eth-facts.md §5, from Harmony `drv_extphy_regs.h` and the LAN87x0 drivers).

use bitflags::bitflags;

/// MIIM address of the PHY on the Microchip boards (LAN8720A on EV49N51A, LAN8740 in the
/// Harmony W1 demo).
pub const PHY_ADDRESS: u8 = 0;

/// Register 0: basic mode control.
pub const BMCR: u8 = 0;
/// Register 1: basic mode status.
pub const BMSR: u8 = 1;
/// Register 2: PHY identifier 1.
pub const PHYID1: u8 = 2;
/// Register 3: PHY identifier 2.
pub const PHYID2: u8 = 3;
/// Register 4: auto-negotiation advertisement.
pub const ANAR: u8 = 4;
/// Register 5: auto-negotiation link partner ability.
pub const ANLPAR: u8 = 5;
/// Register 6: auto-negotiation expansion.
pub const ANER: u8 = 6;
/// Register 31 (LAN87x0): PHY special control/status; speed indication in bits 4:2.
pub const PSCSR: u8 = 31;

bitflags! {
    /// BMCR (register 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Bmcr: u16 {
        /// Collision test.
        const COLLISION_TEST = 0x0080;
        /// Full duplex (when auto-negotiation is off).
        const DUPLEX = 0x0100;
        /// Restart auto-negotiation (self-clearing).
        const AN_RESTART = 0x0200;
        /// Isolate.
        const ISOLATE = 0x0400;
        /// Power down.
        const POWER_DOWN = 0x0800;
        /// Auto-negotiation enable.
        const AN_ENABLE = 0x1000;
        /// 100 Mb/s (when auto-negotiation is off).
        const SPEED100 = 0x2000;
        /// Loopback.
        const LOOPBACK = 0x4000;
        /// Software reset (self-clearing).
        const RESET = 0x8000;
    }
}

bitflags! {
    /// BMSR (register 1). LINK_STATUS latches low: read twice for the current state.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Bmsr: u16 {
        /// Extended register capability.
        const EXTENDED = 0x0001;
        /// Jabber detected.
        const JABBER = 0x0002;
        /// Link is up (latched low).
        const LINK_STATUS = 0x0004;
        /// Able to auto-negotiate.
        const AN_ABLE = 0x0008;
        /// Remote fault.
        const REMOTE_FAULT = 0x0010;
        /// Auto-negotiation complete.
        const AN_COMPLETE = 0x0020;
        /// Preamble suppression accepted.
        const PREAMBLE_SUPPRESS = 0x0040;
        /// 10BASE-T half duplex able.
        const T10_HDX = 0x0800;
        /// 10BASE-T full duplex able.
        const T10_FDX = 0x1000;
        /// 100BASE-TX half duplex able.
        const TX100_HDX = 0x2000;
        /// 100BASE-TX full duplex able.
        const TX100_FDX = 0x4000;
    }
}

bitflags! {
    /// ANAR / ANLPAR (registers 4 and 5).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Anar: u16 {
        /// Selector field; 0x0001 = IEEE 802.3.
        const SELECTOR_802_3 = 0x0001;
        /// 10BASE-T.
        const T10 = 0x0020;
        /// 10BASE-T full duplex.
        const T10_FDX = 0x0040;
        /// 100BASE-TX.
        const TX100 = 0x0080;
        /// 100BASE-TX full duplex.
        const TX100_FDX = 0x0100;
        /// 100BASE-T4.
        const T4 = 0x0200;
        /// Symmetric PAUSE.
        const PAUSE = 0x0400;
        /// Asymmetric PAUSE.
        const ASM_DIR = 0x0800;
        /// Remote fault.
        const REMOTE_FAULT = 0x2000;
        /// Next page.
        const NEXT_PAGE = 0x8000;
    }
}

bitflags! {
    /// LAN87x0 register 31, PHY special control/status.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Pscsr: u16 {
        /// Speed indication: 10 Mb/s.
        const SPEED_10 = 0x0004;
        /// Speed indication: 100 Mb/s.
        const SPEED_100 = 0x0008;
        /// Speed indication: full duplex.
        const FULL_DUPLEX = 0x0010;
        /// Auto-negotiation done.
        const AUTODONE = 0x1000;
    }
}
