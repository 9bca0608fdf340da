//! Start-up, console, exit and measurement brackets on QEMU's Malta board.
//!
//! QEMU loads the ELF at its KSEG0 addresses (RAM from 0x80100000, see
//! `benches/malta.ld`) and jumps to `_start` through its built-in boot loader, which also
//! maps the PCI I/O window so COM1 answers at 0xB80003F8 without initialisation.
//!
//! `mzw1_wss::rt` (the PIC32 runtime) is linked too: it brings the `#[panic_handler]`,
//! the `critical-section` implementation (`di`/`ei`) and `_vector_165`, the Ethernet
//! vector that saves the caller-saved registers, calls `mzw1_eth_interrupt` and returns
//! with `eret`. Its PIC32-only sections (reset vector, start-up, the other exception
//! vectors, configuration words) are discarded by the linker script.
//!
//! Brackets: every measured region starts and ends with `mfc0 $t, $9, 0` at one of four
//! fixed addresses (the `marks`); the plugin snapshots its instruction counter there.
//!
//! With the `pic32` feature the same code is built for the PIC32MZW1 instead
//! (`cargo xtask bench-target --pic32`): `mzw1_wss::rt` starts the board (reset vector,
//! `_startup`, `mzw1_main`, here), the console is UART1 and `exit` halts after its line.
//! There the Count deltas are the figures (CP0 Count ticks at SYSCLK / 2: cycles are
//! twice the count); nothing snapshots instructions.
//! [`vector_165`] enters `_vector_165` as the EVIC would: Status.EXL set, EPC at the
//! return point, so the region runs from the jump to the vector to the instruction after
//! its `eret`.

use core::arch::global_asm;
use core::fmt::{self, Write};

#[cfg(not(feature = "pic32"))]
global_asm!(
    r#"
    .set push
    .set mips32r2
    .set noreorder
    .set noat

    .section .text.bench_start, "ax", @progbits
    .globl _start
_start:
    lui   $sp, %hi(__bench_stack_top)
    addiu $sp, $sp, %lo(__bench_stack_top)
    lui   $gp, %hi(_gp)
    addiu $gp, $gp, %lo(_gp)
    /* Kernel mode, interrupts off, EXL = ERL = 0. QEMU resets the CPU with ERL = 1,
       under which eret would return through ErrorEPC instead of EPC. */
    mfc0  $t0, $12, 0
    li    $t1, -8
    and   $t0, $t0, $t1
    mtc0  $t0, $12, 0
    ehb
    lui   $t0, %hi(__bench_bss_start)
    addiu $t0, $t0, %lo(__bench_bss_start)
    lui   $t1, %hi(__bench_bss_end)
    addiu $t1, $t1, %lo(__bench_bss_end)
1:  beq   $t0, $t1, 2f
    nop
    sw    $zero, 0($t0)
    b     1b
    addiu $t0, $t0, 4
2:  jal   bench_main
    nop
3:  b     3b
    nop

    .set pop
"#
);

global_asm!(
    r#"
    .set push
    .set mips32r2
    .set noreorder
    .set noat

    .section .text.bench_marks, "ax", @progbits

    /* u32 bench_count_begin(void), u32 bench_count_end(void): CP0 Count. */
    .globl bench_count_begin
bench_count_begin:
    mfc0  $v0, $9, 0
    jr    $ra
    nop
    .globl bench_count_end
bench_count_end:
    mfc0  $v0, $9, 0
    jr    $ra
    nop

    /* void bench_vector_165(u32 counts[2]): vector 165 as the EVIC enters it. Every
       register the vector does not save is caller-saved in the C ABI, and it saves
       $t2 and $a0, so both survive to the return point. */
    .globl bench_vector_165
bench_vector_165:
    mfc0  $t0, $12, 0
    ori   $t0, $t0, 0x2              /* Status.EXL, as on exception entry */
    lui   $t1, %hi(bench_vector_end)
    addiu $t1, $t1, %lo(bench_vector_end)
    mtc0  $t1, $14, 0                /* EPC: where eret returns */
    mtc0  $t0, $12, 0
    ehb
    .globl bench_vector_begin
bench_vector_begin:
    mfc0  $t2, $9, 0
    j     _vector_165
    nop
    .globl bench_vector_end
bench_vector_end:
    mfc0  $t3, $9, 0
    sw    $t2, 0($a0)
    sw    $t3, 4($a0)
    jr    $ra
    nop

    /* void bench_vector_165_quiet(void): the same, not measured (set-up steps). */
    .globl bench_vector_165_quiet
bench_vector_165_quiet:
    mfc0  $t0, $12, 0
    ori   $t0, $t0, 0x2
    lui   $t1, %hi(bench_vector_quiet_end)
    addiu $t1, $t1, %lo(bench_vector_quiet_end)
    mtc0  $t1, $14, 0
    mtc0  $t0, $12, 0
    ehb
    j     _vector_165
    nop
bench_vector_quiet_end:
    jr    $ra
    nop

    .set pop
"#
);

unsafe extern "C" {
    fn bench_count_begin() -> u32;
    fn bench_count_end() -> u32;
    fn bench_vector_165(counts: *mut [u32; 2]);
    fn bench_vector_165_quiet();
    static bench_vector_begin: u32;
    static bench_vector_end: u32;
}

/// The addresses of the bracketing `mfc0`s: (begin marks, end marks).
pub fn marks() -> ([usize; 2], [usize; 2]) {
    let begin_fn: unsafe extern "C" fn() -> u32 = bench_count_begin;
    let end_fn: unsafe extern "C" fn() -> u32 = bench_count_end;
    (
        [
            begin_fn as usize,
            core::ptr::addr_of!(bench_vector_begin) as usize,
        ],
        [
            end_fn as usize,
            core::ptr::addr_of!(bench_vector_end) as usize,
        ],
    )
}

/// Runs `f` between two Count reads; returns the Count delta and `f`'s result.
#[inline(never)]
pub fn measure<R>(f: impl FnOnce() -> R) -> (u32, R) {
    // SAFETY: the bracket functions only read CP0 Count.
    let c0 = unsafe { bench_count_begin() };
    let r = core::hint::black_box(f());
    // SAFETY: as above.
    let c1 = unsafe { bench_count_end() };
    (c1.wrapping_sub(c0), r)
}

/// Runs the Ethernet interrupt vector (vector 165 of `mzw1_wss::rt`, which calls the
/// firmware's `mzw1_eth_interrupt`) as the hardware enters it; returns the Count delta
/// from entry to return.
#[inline(never)]
pub fn vector_165() -> u32 {
    let mut counts = [0u32; 2];
    // SAFETY: the vector saves and restores every register the C ABI does not preserve
    // and returns through EPC, which points back into the bracket; interrupts are off.
    unsafe { bench_vector_165(&mut counts) };
    let [c0, c1] = counts;
    c1.wrapping_sub(c0)
}

/// Runs the interrupt vector outside any measured region.
pub fn vector_165_quiet() {
    // SAFETY: as for `vector_165`.
    unsafe { bench_vector_165_quiet() }
}

/// COM1 of the Malta board (PIIX4 16550 at ISA 0x3F8 through the PCI I/O window).
#[cfg(not(feature = "pic32"))]
mod console {
    const COM1: usize = 0xB800_03F8;
    /// Line status register: transmit holding register empty.
    const LSR_THRE: u8 = 0x20;

    pub fn putc(c: u8) {
        let thr = COM1 as *mut u8;
        // SAFETY: COM1's registers, mapped by QEMU's Malta boot loader.
        unsafe {
            while core::ptr::read_volatile(thr.add(5)) & LSR_THRE == 0 {}
            core::ptr::write_volatile(thr, c);
        }
    }

    /// Leaves QEMU through the Malta soft reset (with `-no-reboot` QEMU then exits).
    pub fn halt() -> ! {
        // SAFETY: SOFTRES of the Malta FPGA; 0x42 resets the board.
        unsafe { core::ptr::write_volatile(0xBF00_0500 as *mut u32, 0x42) };
        loop {
            core::hint::spin_loop();
        }
    }
}

/// UART1 of the PIC32MZW1, transmit only, 8N1 at 115200 baud.
///
/// Addresses: Microchip's W1 device pack, `PIC32MZ-W_DFP/1.5.203/xc32/32MZ1025W104132/
/// p32MZ1025W104132.S` (Microchip-MPLAB-Harmony/dev_packs): U1MODE 0xBF840600, U1STA
/// 0xBF840610, U1TXREG 0xBF840620, U1BRG 0xBF840640 (on peripheral bus 3), each with
/// CLR/SET/INV at +4/+8/+C. Set-up as Harmony's `UART1_Initialize` for the
/// PIC32MZ W1 Curiosity board (Microchip-MPLAB-Harmony/csp_apps_pic32mz_w1,
/// `apps/uart/uart_echo_interrupt/.../peripheral/uart/plib_uart1.c`): U1MODE = 0x8
/// (BRGH: 4 clocks per bit), U1STASET = UTXEN, U1BRG = 216, U1MODESET = ON; 115200 baud
/// from the 100 MHz UART clock Harmony's `CLK_Initialize` sets up (SPLL at 200 MHz).
/// mzw1-wss does not bring the PLL up (see `mzw1_wss::rt`): the baud rate is right only
/// if the clocks are as Harmony leaves them. The UART1 pins need no PPS mapping (Harmony's
/// `GPIO_Initialize` for that board maps none). Bits as in every PIC32 UART (PIC32 FRM
/// section 21): U1MODE.ON = bit 15, U1MODE.BRGH = bit 3, U1STA.UTXEN = bit 10,
/// U1STA.UTXBF = bit 9, U1STA.TRMT = bit 8.
#[cfg(feature = "pic32")]
mod console {
    const U1MODE: usize = 0xBF84_0600;
    const U1STA: usize = 0xBF84_0610;
    const U1TXREG: usize = 0xBF84_0620;
    const U1BRG: usize = 0xBF84_0640;
    const SET: usize = 8;
    const MODE_ON: u32 = 1 << 15;
    const MODE_BRGH: u32 = 1 << 3;
    const STA_UTXEN: u32 = 1 << 10;
    const STA_UTXBF: u32 = 1 << 9;
    const STA_TRMT: u32 = 1 << 8;
    /// 115200 baud at 100 MHz with BRGH: 100e6 / (4 * (216 + 1)) = 115207.
    const BRG_115200: u32 = 216;

    fn write(addr: usize, v: u32) {
        // SAFETY: a UART1 register of the PIC32MZW1 (KSEG1, uncached SFR space).
        unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
    }

    fn read(addr: usize) -> u32 {
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    pub fn init() {
        write(U1MODE, MODE_BRGH);
        write(U1STA + SET, STA_UTXEN);
        write(U1BRG, BRG_115200);
        write(U1MODE + SET, MODE_ON);
    }

    pub fn putc(c: u8) {
        while read(U1STA) & STA_UTXBF != 0 {}
        write(U1TXREG, c as u32);
    }

    /// Waits for the last byte to leave, then stays put.
    pub fn halt() -> ! {
        while read(U1STA) & STA_TRMT == 0 {}
        loop {
            core::hint::spin_loop();
        }
    }
}

/// The PIC32 start-up (`_startup` of `mzw1_wss::rt`) ends here: the console, then the
/// benchmark firmware's `bench_main`, as `_start` calls it on Malta.
#[cfg(feature = "pic32")]
#[unsafe(no_mangle)]
extern "C" fn mzw1_main() -> ! {
    unsafe extern "C" {
        fn bench_main() -> !;
    }
    console::init();
    // SAFETY: the benchmark firmware's entry, called once, as on Malta.
    unsafe { bench_main() }
}

fn putc(c: u8) {
    console::putc(c);
}

/// The console (COM1).
pub struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

/// Prints a line on the console.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::rt::Uart, $($arg)*);
    }};
}

/// Prints `EXIT code`, then leaves QEMU through the Malta soft reset (with `-no-reboot`
/// QEMU then exits), or halts the PIC32.
pub fn exit(code: u32) -> ! {
    crate::say!("EXIT {code}");
    console::halt()
}

/// Prints the marks line the host pairs the plugin's snapshots with.
pub fn print_marks() {
    let (b, e) = marks();
    crate::say!(
        "marks begin={:#x},{:#x} end={:#x},{:#x}",
        b[0],
        b[1],
        e[0],
        e[1]
    );
}

/// Prints one region line: `region PREFIXNAMESUFFIX count=N [bytes=B] [tx_frames=F]`.
pub fn report(
    prefix: &str,
    name: &str,
    suffix: &str,
    count: u32,
    bytes: usize,
    tx_frames: Option<usize>,
) {
    let mut u = Uart;
    let _ = write!(u, "region {prefix}{name}{suffix} count={count}");
    if bytes > 0 {
        let _ = write!(u, " bytes={bytes}");
    }
    if let Some(n) = tx_frames {
        let _ = write!(u, " tx_frames={n}");
    }
    let _ = writeln!(u);
}
