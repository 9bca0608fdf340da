//! The interrupt controller (EVIC) registers the Ethernet interrupt needs
//! (pic32mzw1-eth-facts.md §3).
//!
//! The block is laid out by formula: IFSn at 0x040 + 0x10·n, IECn at 0x0C0 + 0x10·n,
//! IPCn at 0x140 + 0x10·n, and OFFnnn at 0x540 + 4·nnn (plain words, no companions).
//! The Ethernet interrupt is vector 165: IFS5/IEC5 bit 5, priority in IPC41 bits 12:10,
//! sub-priority bits 9:8, vector offset in OFF165. (PIC32MZ EF uses 153 / IFS4 bit 25 /
//! IPC38; those numbers do not apply here.)

use crate::reg::{Reg, Word};
use bitflags::bitflags;

/// KSEG1 address of the EVIC.
pub const EVIC_BASE: usize = 0xBF81_0000;

/// The Ethernet interrupt vector number.
pub const ETH_VECTOR: usize = 165;
/// Index of the IFS/IEC register holding the Ethernet flag and enable (IFS5/IEC5).
pub const ETH_IFS_INDEX: usize = ETH_VECTOR / 32;
/// The Ethernet bit in IFS5/IEC5 (bit 5, mask 0x20).
pub const ETH_IFS_MASK: u32 = 1 << (ETH_VECTOR % 32);
/// Index of the IPC register holding the Ethernet priority (IPC41).
pub const ETH_IPC_INDEX: usize = ETH_VECTOR / 4;
/// Shift of ETHIP (priority, 3 bits) in IPC41.
pub const ETH_IPC_PRIORITY_SHIFT: u32 = 10;
/// Shift of ETHIS (sub-priority, 2 bits) in IPC41.
pub const ETH_IPC_SUBPRIORITY_SHIFT: u32 = 8;
/// Number of interrupt vectors on W1 (0..=168).
pub const VECTOR_COUNT: usize = 169;

/// EVIC register block, 0x000–0x7E3.
#[repr(C)]
pub struct EvicRegisters {
    /// 0x000 INTCON.
    pub intcon: Reg<Intcon>,
    /// 0x010 PRISS: priority shadow select.
    pub priss: Reg<u32>,
    /// 0x020 INTSTAT.
    pub intstat: Reg<u32>,
    /// 0x030 IPTMR: interrupt proximity timer.
    pub iptmr: Reg<u32>,
    /// 0x040 IFS0..: interrupt flags (IFS0–IFS5 are implemented on W1).
    pub ifs: [Reg<u32>; 8],
    /// 0x0C0 IEC0..: interrupt enables (IEC0–IEC5 are implemented on W1).
    pub iec: [Reg<u32>; 8],
    /// 0x140 IPC0..: priorities, four vectors per register (IPC0–IPC42 on W1).
    pub ipc: [Reg<u32>; 64],
    /// 0x540 OFF000..OFF168: vector offsets from EBASE (VOFF, bits 17:1).
    pub off: [Word<u32>; VECTOR_COUNT],
}

impl EvicRegisters {
    /// The EVIC of the PIC32MZW1.
    ///
    /// # Safety
    /// Only meaningful on the target.
    #[inline(always)]
    pub unsafe fn pic32mzw1() -> &'static EvicRegisters {
        // SAFETY: the caller is on the target, where EVIC_BASE is the EVIC block.
        unsafe { &*(EVIC_BASE as *const EvicRegisters) }
    }

    /// IFS5, which holds ETHIF.
    #[inline(always)]
    pub fn eth_ifs(&self) -> &Reg<u32> {
        &self.ifs[ETH_IFS_INDEX]
    }

    /// IEC5, which holds ETHIE.
    #[inline(always)]
    pub fn eth_iec(&self) -> &Reg<u32> {
        &self.iec[ETH_IFS_INDEX]
    }

    /// IPC41, which holds ETHIP/ETHIS.
    #[inline(always)]
    pub fn eth_ipc(&self) -> &Reg<u32> {
        &self.ipc[ETH_IPC_INDEX]
    }

    /// OFF165, the Ethernet vector's offset from EBASE.
    #[inline(always)]
    pub fn eth_off(&self) -> &Word<u32> {
        &self.off[ETH_VECTOR]
    }
}

/// IPC field value for a priority (1..=7) and sub-priority (0..=3) at the given shifts.
pub const fn ipc_field(priority: u32, subpriority: u32) -> u32 {
    ((priority & 7) << ETH_IPC_PRIORITY_SHIFT) | ((subpriority & 3) << ETH_IPC_SUBPRIORITY_SHIFT)
}

/// Mask of the Ethernet priority and sub-priority in IPC41.
pub const ETH_IPC_MASK: u32 = ipc_field(7, 3);

bitflags! {
    /// INTCON.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Intcon: u32 {
        /// External interrupt edge polarity bits (INT0EP–INT4EP).
        const INTEP = 0x1F;
        /// Interrupt proximity timer control field (bits 10:8).
        const TPC = 0x7 << 8;
        /// Multi-vector mode.
        const MVEC = 1 << 12;
    }
}

crate::reg_value_flags!(Intcon);
