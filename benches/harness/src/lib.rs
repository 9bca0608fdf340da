//! The benchmark harness: what the benchmark firmwares share to run the real firmware code
//! on QEMU's Malta board (`qemu-system-mipsel -M malta -cpu M14Kc -icount shift=0,sleep=off`)
//! and count the instructions of each measured region exactly.
//!
//! - [`rt`] (target only): start-up, COM1 output, exit through the Malta soft reset, and
//!   the brackets around measured regions: `mfc0 $t, $9, 0` (CP0 Count) at fixed
//!   addresses, which the QEMU plugin in `benches/qemu-plugin/` snapshots, plus a call
//!   of the PIC32 interrupt vector 165 (`_vector_165` of `mzw1_wss::rt`) as an exception
//!   would enter it.
//! - [`board`]: the register blocks in RAM and a stand-in for the Ethernet controller's
//!   DMA: it writes received frames into RX descriptors and completes TX descriptors, as
//!   the silicon would, outside the measured regions.
//! - [`client`]: the other end of the wire: ARP and a scripted TCP client that builds
//!   frames and checks the replies.
//! - [`ws`]: the WebSocket client: a browser's upgrade request, masked frames, and the
//!   checks of the 101 response and of the echoed frames.
//! - [`runner`]: the TCP and WebSocket benchmarks, the same for every stack under test.
//! - [`inputs`]: the inputs of the kernel micro-benchmarks.
//!
//! [`board`], [`client`], [`ws`], [`inputs`] and [`runner`] also build for the host, where
//! `cargo bench --bench host` (`benches/host.rs` of `mzw1-wss`) runs the same steps on
//! the same inputs and callgrind counts the instructions.
//!
//! The firmware reports on COM1, one line each:
//! `marks begin=0xA,0xB end=0xC,0xD` (the addresses of the bracketing `mfc0`s), then
//! `region NAME count=N [bytes=B] [tx_frames=F]` for every bracketed region in the order
//! they ran, `error ...` on failure, and `EXIT code`. `cargo xtask bench-target` pairs
//! the regions with the plugin's snapshots.
#![no_std]
#![cfg_attr(target_arch = "mips", feature(asm_experimental_arch))]

pub mod board;
pub mod client;
pub mod inputs;
pub mod ws;

#[cfg(all(target_arch = "mips", target_os = "none"))]
pub mod rt;
#[cfg(any(all(target_arch = "mips", target_os = "none"), not(target_os = "none")))]
pub mod runner;

use core::sync::atomic::{AtomicU32, Ordering};
use mzw1_wss::time::Instant;

/// The benchmark's clock, in milliseconds. It advances only when the harness says so,
/// so timers behave the same in every run (the firmware's own clock, CP0 Count, would
/// tie them to the instruction count).
static NOW_MS: AtomicU32 = AtomicU32::new(1000);

/// The current benchmark time.
#[inline]
pub fn now() -> Instant {
    Instant::from_millis(NOW_MS.load(Ordering::Relaxed))
}

/// Advances the benchmark clock.
pub fn advance(ms: u32) {
    NOW_MS.store(
        NOW_MS.load(Ordering::Relaxed).wrapping_add(ms),
        Ordering::Relaxed,
    );
}

/// What a benchmark firmware's interrupt handler and its main line share: the stack under
/// test, reached in a critical section as the reference firmware reaches its `APP`.
pub struct Shared<T>(critical_section::Mutex<core::cell::RefCell<Option<T>>>);

impl<T> Shared<T> {
    /// Empty until [`put`](Self::put).
    pub const fn new() -> Shared<T> {
        Shared(critical_section::Mutex::new(core::cell::RefCell::new(None)))
    }

    /// Puts the stack in place (once it is built).
    pub fn put(&self, value: T) {
        critical_section::with(|cs| self.0.borrow(cs).replace(Some(value)));
    }

    /// Runs `f` on the stack inside a critical section, with the benchmark clock (in
    /// place of the firmware's CoreTimer, so no Count read happens inside the measured
    /// regions); `None` if there is no stack yet or it is in use.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(&mut T, Instant) -> R) -> Option<R> {
        critical_section::with(|cs| {
            let mut v = self.0.borrow(cs).try_borrow_mut().ok()?;
            v.as_mut().map(|v| f(v, now()))
        })
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a benchmark could not run to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchError {
    /// The stand-in controller found no RX descriptor armed for a frame.
    RxNoDescriptor,
    /// A received frame's descriptor was not given back after the interrupt.
    RxNotReleased,
    /// The interrupt handler did not clear IFS5.ETHIF.
    IrqNotAcknowledged,
    /// A TX descriptor was handed over without SOP and EOP, or with a bad length.
    TxMalformed,
    /// More frames were sent than the capture holds.
    TxOverflow,
    /// The link never came up.
    NoLink,
    /// No ARP reply.
    NoArpReply,
    /// No SYN-ACK for a SYN.
    NoSynAck,
    /// No data segment came back for a request.
    NoReply,
    /// The wrong bytes came back for an echo.
    NoEcho,
    /// A micro-benchmark computed the wrong result.
    WrongResult,
    /// The WebSocket upgrade was not answered with a right 101 response.
    NoUpgrade,
    /// The WebSocket echo was not the unmasked frame with the same payload.
    NoWsEcho,
}

impl BenchError {
    /// A short description, for the report.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchError::RxNoDescriptor => "no RX descriptor armed for the frame",
            BenchError::RxNotReleased => "RX descriptor not given back after the interrupt",
            BenchError::IrqNotAcknowledged => "IFS5.ETHIF not cleared by the interrupt",
            BenchError::TxMalformed => "malformed TX descriptor",
            BenchError::TxOverflow => "more TX frames than the capture holds",
            BenchError::NoLink => "link did not come up",
            BenchError::NoArpReply => "no ARP reply",
            BenchError::NoSynAck => "no SYN-ACK",
            BenchError::NoReply => "no reply to the request",
            BenchError::NoEcho => "wrong bytes echoed",
            BenchError::WrongResult => "wrong result",
            BenchError::NoUpgrade => "no right 101 response to the upgrade request",
            BenchError::NoWsEcho => "wrong WebSocket echo frame",
        }
    }
}
