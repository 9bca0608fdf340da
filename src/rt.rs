//! Bare-metal runtime for the PIC32MZW1 (target only): reset entry, start-up, exception
//! and interrupt vectors, `critical-section` with `di`/`ei`, the core-timer clock, the
//! configuration words and the panic handler.
//!
//! Memory map and start-up follow Microchip's own (W1 DFP 1.8.326: `p32MZ1025W104132.ld`,
//! `xc32/startup/crt0.S`; pic32mzw1-eth-facts.md §3–§4):
//! - the reset vector at 0xBFC00000 (boot flash, KSEG1) jumps to `_startup` in program
//!   flash (KSEG0 0x90000000);
//! - `_startup` sets `$sp` and `$gp`, copies `.data`, zeroes `.bss`, then, as crt0 does,
//!   zeroes Count and parks Compare, sets Status.BEV, writes EBASE = 0x90000000,
//!   IntCtl.VS = 1 and Cause.IV = 1, writes OFF165 (the EVIC jumps to EBASE + OFFnnn),
//!   switches the EVIC to multi-vector mode (INTCON.MVEC), clears BEV and calls
//!   `mzw1_main`;
//! - vector 165 saves the caller-saved registers, calls `mzw1_eth_interrupt` and returns
//!   with `eret`. It runs at EXL = 1, so it is never nested.
//!
//! The application defines two functions:
//! `#[unsafe(no_mangle)] extern "C" fn mzw1_main() -> !` and
//! `#[unsafe(no_mangle)] extern "C" fn mzw1_eth_interrupt()`.
//!
//! Not done here: oscillator and PLL bring-up (Harmony's `CLK_Initialize`: SPLL to
//! 200 MHz, EWPLL to the 50 MHz RMII reference clock, flash wait states). The firmware
//! assumes the clocks are running as configured by those words.

use crate::time::Instant;
use core::arch::global_asm;
use mzw1_pac::cp0;

global_asm!(
    r#"
    .set push
    .set mips32r2
    .set noreorder

    /* Reset: boot flash (KSEG1) to program flash (KSEG0). */
    .section .reset, "ax", @progbits
    .globl _reset
_reset:
    lui   $t0, %hi(_startup)
    addiu $t0, $t0, %lo(_startup)
    jr    $t0
    nop

    /* Exceptions that firmware never expects (TLB refill, cache error, general
       exception): stop here, where a debugger finds EPC and Cause intact. */
    .section .vector.tlb_refill, "ax", @progbits
_tlb_refill:
    b     _tlb_refill
    nop
    .section .vector.cache_error, "ax", @progbits
_cache_error:
    b     _cache_error
    nop
    .section .vector.general, "ax", @progbits
_general_exception:
    b     _general_exception
    nop

    /* Vector 165, Ethernet: save what the C ABI lets the handler clobber. */
    .section .vector.eth, "ax", @progbits
    .globl _vector_165
_vector_165:
    .set noat
    addiu $sp, $sp, -80
    sw    $at,  0($sp)
    sw    $v0,  4($sp)
    sw    $v1,  8($sp)
    sw    $a0, 12($sp)
    sw    $a1, 16($sp)
    sw    $a2, 20($sp)
    sw    $a3, 24($sp)
    sw    $t0, 28($sp)
    sw    $t1, 32($sp)
    sw    $t2, 36($sp)
    sw    $t3, 40($sp)
    sw    $t4, 44($sp)
    sw    $t5, 48($sp)
    sw    $t6, 52($sp)
    sw    $t7, 56($sp)
    sw    $t8, 60($sp)
    sw    $t9, 64($sp)
    sw    $ra, 68($sp)
    mfhi  $t0
    mflo  $t1
    sw    $t0, 72($sp)
    sw    $t1, 76($sp)
    jal   mzw1_eth_interrupt
    nop
    lw    $t0, 72($sp)
    lw    $t1, 76($sp)
    mthi  $t0
    mtlo  $t1
    lw    $at,  0($sp)
    lw    $v0,  4($sp)
    lw    $v1,  8($sp)
    lw    $a0, 12($sp)
    lw    $a1, 16($sp)
    lw    $a2, 20($sp)
    lw    $a3, 24($sp)
    lw    $t0, 28($sp)
    lw    $t1, 32($sp)
    lw    $t2, 36($sp)
    lw    $t3, 40($sp)
    lw    $t4, 44($sp)
    lw    $t5, 48($sp)
    lw    $t6, 52($sp)
    lw    $t7, 56($sp)
    lw    $t8, 60($sp)
    lw    $t9, 64($sp)
    lw    $ra, 68($sp)
    addiu $sp, $sp, 80
    eret
    nop
    .set at

    .section .text._startup, "ax", @progbits
    .globl _startup
_startup:
    lui   $sp, %hi(_stack_top)
    addiu $sp, $sp, %lo(_stack_top)
    lui   $gp, %hi(_gp)
    addiu $gp, $gp, %lo(_gp)

    /* .data: copy from flash */
    lui   $t0, %hi(_data_start)
    addiu $t0, $t0, %lo(_data_start)
    lui   $t1, %hi(_data_end)
    addiu $t1, $t1, %lo(_data_end)
    lui   $t2, %hi(_data_load)
    addiu $t2, $t2, %lo(_data_load)
1:  beq   $t0, $t1, 2f
    nop
    lw    $t3, 0($t2)
    sw    $t3, 0($t0)
    addiu $t0, $t0, 4
    b     1b
    addiu $t2, $t2, 4
2:
    /* .bss: zero */
    lui   $t0, %hi(_bss_start)
    addiu $t0, $t0, %lo(_bss_start)
    lui   $t1, %hi(_bss_end)
    addiu $t1, $t1, %lo(_bss_end)
3:  beq   $t0, $t1, 4f
    nop
    sw    $zero, 0($t0)
    b     3b
    addiu $t0, $t0, 4
4:
    /* CP0 as crt0: Count = 0, Compare parked, BEV while EBASE is written. */
    mtc0  $zero, $9, 0
    li    $t0, -1
    mtc0  $t0, $11, 0
    mfc0  $t0, $12, 0
    lui   $t1, 0x0040              /* Status.BEV */
    or    $t0, $t0, $t1
    mtc0  $t0, $12, 0
    ehb
    lui   $t0, %hi(_ebase_address)
    addiu $t0, $t0, %lo(_ebase_address)
    mtc0  $t0, $15, 1              /* EBASE */
    li    $t1, 0x20                /* IntCtl.VS = 1 (32-byte spacing) */
    mtc0  $t1, $12, 1
    lui   $t1, 0x0080              /* Cause.IV */
    mtc0  $t1, $13, 0
    /* Status: keep SR, NMI and BEV (mask 0x00580000); IE = 0, IPL = 0, CU0 = 0. */
    mfc0  $t1, $12, 0
    lui   $t2, 0x0058
    and   $t1, $t1, $t2
    mtc0  $t1, $12, 0
    ehb
    /* OFF165 = _vector_165 - EBASE */
    lui   $t1, %hi(_vector_165)
    addiu $t1, $t1, %lo(_vector_165)
    subu  $t1, $t1, $t0
    lui   $t2, 0xBF81
    sw    $t1, 0x07D4($t2)         /* OFF165 at 0xBF8107D4 */
    li    $t1, 0x1000
    sw    $t1, 0x0008($t2)         /* INTCONSET = MVEC */
    /* Clear BEV: exceptions and interrupts now vector through EBASE. */
    mfc0  $t1, $12, 0
    lui   $t2, 0xFFBF
    ori   $t2, $t2, 0xFFFF
    and   $t1, $t1, $t2
    mtc0  $t1, $12, 0
    ehb
    jal   mzw1_main
    nop
5:  b     5b
    nop

    .set pop
"#
);

/// Configuration words DEVCFG4, DEVCFG2, DEVCFG1, DEVCFG0, FBCFG0 (0xBFC55F8C..0xBFC55F9F),
/// the values XC32 produces from Harmony's W1 pragmas, identical to the ATDF defaults:
/// RMII (FMIIEN = OFF), ETH_CLK_OUT as PHY reference (ETHEXEREF = OFF), watchdogs off,
/// POSC in HS mode, MIPS32 boot ISA. FUSERID, FCPN0 (code protection off) and FSIGN0
/// stay erased.
#[unsafe(link_section = ".config_words")]
#[used]
static CONFIG_WORDS: [u32; 5] = [
    0x0418_0000,
    0x5F60_FE30,
    0x0000_DC31,
    0x2080_0001,
    0x0000_0008,
];

struct MipsCriticalSection;
critical_section::set_impl!(MipsCriticalSection);

// SAFETY: `di` clears Status.IE atomically and returns the previous Status; interrupts are
// re-enabled only if they were enabled on entry, so nesting works.
unsafe impl critical_section::Impl for MipsCriticalSection {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        cp0::disable_interrupts() & 1 != 0
    }

    unsafe fn release(was_enabled: critical_section::RawRestoreState) {
        if was_enabled {
            // SAFETY: restoring the state found on entry.
            unsafe { cp0::enable_interrupts() };
        }
    }
}

/// Enables interrupts (Status.IE); call once the handlers' state is ready.
///
/// # Safety
/// `mzw1_eth_interrupt` may run from the next instruction on.
pub unsafe fn enable_interrupts() {
    // SAFETY: upheld by the caller.
    unsafe { cp0::enable_interrupts() }
}

/// Milliseconds from CP0 Count (SYSCLK / 2 = 100 MHz). Call at least every 42 s, the
/// period of the 32-bit counter.
pub struct CoreTimer {
    last: u32,
    ticks: u32,
    ms: u32,
}

const TICKS_PER_MS: u32 = cp0::COUNT_HZ / 1000;

impl CoreTimer {
    /// Starts counting from the current Count.
    pub fn new() -> CoreTimer {
        CoreTimer {
            last: cp0::count(),
            ticks: 0,
            ms: 0,
        }
    }

    /// The current time.
    pub fn now(&mut self) -> Instant {
        let c = cp0::count();
        self.ticks = self.ticks.wrapping_add(c.wrapping_sub(self.last));
        self.last = c;
        let whole = self.ticks / TICKS_PER_MS;
        self.ticks -= whole * TICKS_PER_MS;
        self.ms = self.ms.wrapping_add(whole);
        Instant::from_millis(self.ms)
    }
}

impl Default for CoreTimer {
    fn default() -> Self {
        CoreTimer::new()
    }
}

/// No code path of the firmware may panic; `cargo xtask size` fails the build if this
/// handler is linked at all.
#[panic_handler]
#[inline(never)]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
