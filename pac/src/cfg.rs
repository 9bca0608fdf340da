//! The system configuration registers needed to switch the Ethernet module on: CFGCON0
//! (PMDLOCK), SYSKEY and PMD3 (ETH1MD).
//!
//! Source: W1 DFP 1.8.326 `p32mz1025w104132.h` and ATDF (Microchip-MPLAB-Harmony/dev_packs
//! @c7edd49). These registers have no CLR/SET/INV companions, so they are plain words
//! written read-modify-write. Harmony's clock set-up unlocks SYSKEY, clears
//! CFGCON0.PMDLOCK, writes PMD3 = 0x19030306 (ETH1MD = 0), sets PMDLOCK and relocks
//! (`plib_clk.c`, wireless_apps_pic32mzw1_wfi32e01 @014f50a).

use crate::reg::Word;
use bitflags::bitflags;

/// KSEG1 address of the configuration block (CFGCON0).
pub const CFG_BASE: usize = 0xBF80_0000;

/// SYSKEY unlock values, written in this order after a 0.
pub const SYSKEY_UNLOCK: [u32; 2] = [0xAA99_6655, 0x5566_99AA];
/// Any other value relocks; Harmony writes this one.
pub const SYSKEY_LOCK: u32 = 0x3333_3333;

/// Configuration registers, 0x000–0x0B3.
#[repr(C)]
pub struct CfgRegisters {
    /// 0x000 CFGCON0.
    pub cfgcon0: Word<Cfgcon0>,
    _r0: [u32; 3],
    /// 0x010 CFGCON1 (FMIIEN bit 8, ETHEXEREF bit 9, copied from DEVCFG1).
    pub cfgcon1: Word<u32>,
    _r1: [u32; 3],
    /// 0x020 CFGCON2.
    pub cfgcon2: Word<u32>,
    _r2: [u32; 3],
    /// 0x030 CFGCON3.
    pub cfgcon3: Word<u32>,
    _r3: [u32; 3],
    /// 0x040 CFGCON4.
    pub cfgcon4: Word<u32>,
    _r4: [u32; 3],
    /// 0x050 CFGPG.
    pub cfgpg: Word<u32>,
    _r5: [u32; 3],
    /// 0x060 DEVID.
    pub devid: Word<u32>,
    _r6: [u32; 7],
    /// 0x080 SYSKEY.
    pub syskey: Word<u32>,
    _r8: [u32; 3],
    /// 0x090 PMD1.
    pub pmd1: Word<u32>,
    _r9: [u32; 3],
    /// 0x0A0 PMD2.
    pub pmd2: Word<u32>,
    _ra: [u32; 3],
    /// 0x0B0 PMD3.
    pub pmd3: Word<Pmd3>,
}

impl CfgRegisters {
    /// The configuration block of the PIC32MZW1.
    ///
    /// # Safety
    /// Only meaningful on the target.
    #[inline(always)]
    pub unsafe fn pic32mzw1() -> &'static CfgRegisters {
        // SAFETY: the caller is on the target, where CFG_BASE is this block.
        unsafe { &*(CFG_BASE as *const CfgRegisters) }
    }
}

bitflags! {
    /// CFGCON0 lock bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Cfgcon0: u32 {
        /// Power-management unit registers locked.
        const PMULOCK = 1 << 10;
        /// Permission-group registers locked.
        const PGLOCK = 1 << 11;
        /// PMD registers locked.
        const PMDLOCK = 1 << 12;
        /// PPS registers locked.
        const IOLOCK = 1 << 13;
        /// BCFG0 and system configuration registers locked (field).
        const CFGLOCK = 0x3 << 14;
    }
}

bitflags! {
    /// PMD3: 1 disables a module.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Pmd3: u32 {
        /// UART1.
        const U1MD = 1 << 0;
        /// UART2.
        const U2MD = 1 << 1;
        /// UART3.
        const U3MD = 1 << 2;
        /// Ethernet.
        const ETH1MD = 1 << 4;
        /// SPI1.
        const SPI1MD = 1 << 8;
        /// SPI2.
        const SPI2MD = 1 << 9;
        /// 2.4 GHz Wi-Fi.
        const W24GMD = 1 << 12;
        /// I2C1.
        const I2C1MD = 1 << 16;
        /// I2C2.
        const I2C2MD = 1 << 17;
        /// USB.
        const USB1MD = 1 << 24;
        /// CAN1.
        const CAN1MD = 1 << 27;
        /// CAN2.
        const CAN2MD = 1 << 28;
    }
}

crate::reg_value_flags!(Cfgcon0, Pmd3);
