//! Coprocessor 0 registers the firmware uses: Count, Compare, Status, IntCtl, Cause, EPC
//! and EBase (MIPS32 Privileged Resource Architecture, release 2).
//!
//! CP0 Count ticks at SYSCLK/2: 100 MHz on a 200 MHz W1 (pic32mzw1-eth-facts.md §4).
//! The accessors exist only when compiling for the MIPS target.

use bitflags::bitflags;

/// CP0 Count frequency on a 200 MHz PIC32MZW1 (SYSCLK / 2).
pub const COUNT_HZ: u32 = 100_000_000;

bitflags! {
    /// CP0 Status ($12, select 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u32 {
        /// Interrupt enable.
        const IE = 1 << 0;
        /// Exception level.
        const EXL = 1 << 1;
        /// Error level.
        const ERL = 1 << 2;
        /// Interrupt priority level field (external interrupt controller mode).
        const IPL = 0x3F << 10;
        /// Exception vectors at the bootstrap (BEV) location.
        const BEV = 1 << 22;
        /// Coprocessor 0 usable in user mode.
        const CU0 = 1 << 28;
    }
}

bitflags! {
    /// CP0 Cause ($13, select 0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Cause: u32 {
        /// Exception code field (bits 6:2).
        const EXC_CODE = 0x1F << 2;
        /// Requested interrupt priority level (EIC mode, bits 15:10).
        const RIPL = 0x3F << 10;
        /// Interrupts use the special interrupt vector.
        const IV = 1 << 23;
        /// Disable the Count register.
        const DC = 1 << 27;
        /// Branch delay slot.
        const BD = 1 << 31;
    }
}

/// IntCtl.VS (bits 9:5): vector spacing; 1 = 32 bytes.
pub const INTCTL_VS_SHIFT: u32 = 5;

#[cfg(all(target_arch = "mips", target_os = "none"))]
mod imp {
    use core::arch::asm;

    macro_rules! cp0_rw {
        ($read:ident, $write:ident, $reg:literal, $sel:literal, $doc:literal) => {
            #[doc = concat!("Reads ", $doc, ".")]
            #[inline(always)]
            pub fn $read() -> u32 {
                let v: u32;
                // SAFETY: reading a CP0 register has no side effects.
                unsafe {
                    asm!(".set push", ".set noat",
                         concat!("mfc0 {0}, $", $reg, ", ", $sel),
                         ".set pop", out(reg) v, options(nostack, preserves_flags));
                }
                v
            }

            #[doc = concat!("Writes ", $doc, ", then clears the execution hazard.")]
            ///
            /// # Safety
            /// Changes processor state (interrupts, vectors, timers).
            #[inline(always)]
            pub unsafe fn $write(v: u32) {
                // SAFETY: upheld by the caller.
                unsafe {
                    asm!(".set push", ".set noat",
                         concat!("mtc0 {0}, $", $reg, ", ", $sel),
                         "ehb", ".set pop", in(reg) v, options(nostack, preserves_flags));
                }
            }
        };
    }

    cp0_rw!(count, write_count, "9", "0", "CP0 Count");
    cp0_rw!(compare, write_compare, "11", "0", "CP0 Compare");
    cp0_rw!(status, write_status, "12", "0", "CP0 Status");
    cp0_rw!(intctl, write_intctl, "12", "1", "CP0 IntCtl");
    cp0_rw!(cause, write_cause, "13", "0", "CP0 Cause");
    cp0_rw!(epc, write_epc, "14", "0", "CP0 EPC");
    cp0_rw!(ebase, write_ebase, "15", "1", "CP0 EBase");

    /// Disables interrupts and returns the previous Status (`di`; MIPS32r2).
    #[inline(always)]
    pub fn disable_interrupts() -> u32 {
        let s: u32;
        // SAFETY: `di` only clears Status.IE; `ehb` makes it effective before the next
        // instruction.
        unsafe {
            asm!(".set push", ".set noat", "di {0}", "ehb", ".set pop", out(reg) s,
                 options(nostack, preserves_flags));
        }
        s
    }

    /// Enables interrupts (`ei`; MIPS32r2).
    ///
    /// # Safety
    /// Interrupt handlers may run from the next instruction on.
    #[inline(always)]
    pub unsafe fn enable_interrupts() {
        // SAFETY: upheld by the caller.
        unsafe { asm!("ei", "ehb", options(nostack, preserves_flags)) };
    }
}

#[cfg(all(target_arch = "mips", target_os = "none"))]
pub use imp::*;
