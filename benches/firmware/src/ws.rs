//! WebSocket benchmarks of the reference firmware on QEMU's Malta board, instructions
//! counted exactly by the QEMU plugin (`cargo xtask bench-target` runs it all).
//!
//! The reference app itself, `mzw1_reference::App` (the WebSocket service of `mzw1-wss`
//! with the reference `Echo` handler, its streaming echo), brought up as its `mzw1_main`
//! does (`App::new` with `Config::default()` and its own DMA region) on the stand-in
//! controller, and driven as its `mzw1_eth_interrupt` drives it (`App::on_interrupt`).
//! An image of its own, apart from the TCP benchmarks, so that the compiler sees the
//! app's code as it sees it in the reference image.
//!
//! - `handshake_syn`: a browser's SYN, up to the SYN-ACK handed to TX;
//! - `handshake_upgrade`: the ACK completing the TCP handshake, carrying the browser's
//!   432-byte upgrade request, up to the 101 response handed to TX (request parsing,
//!   SHA-1 and base64 of the accept key included);
//! - `echo16`, `echo1400`: one masked text frame with a 16-byte (ASCII) or 1400-byte
//!   (ASCII and multibyte UTF-8) payload in one segment, up to the unmasked echo frame
//!   handed to TX.
//!
//! Each from the entry of vector 165 to its `eret`, after a warm-up of the same step
//! (`.warmup`): the handshake on a first connection, the echoes on the same connection.
//! Nothing else is in this image (the parts of the upgrade measured alone are in
//! `mzw1-bench-firmware`), so that no other call site changes how the compiler inlines
//! the app's code.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, WINDOW};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::runner::{self, Stack, TcpBench};
    use mzw1_bench_harness::{BenchError, now, rt};
    use mzw1_reference::{App, Config, Dma};
    use mzw1_wss::mac::IrqShared;

    /// Descriptors and packet buffers (ordinary RAM on Malta).
    static mut DMA: Dma = Dma::new();
    static IRQ: IrqShared = IrqShared::new();
    static APP: Shared<App> = Shared::new();

    /// What vector 165 calls: the reference firmware's `mzw1_eth_interrupt`.
    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        APP.with(|app, now| app.on_interrupt(now));
    }

    #[unsafe(no_mangle)]
    extern "C" fn bench_main() -> ! {
        runner::header("ours-ws");
        let code = runner::outcome("ws", ws());
        rt::exit(code)
    }

    fn ws() -> Result<(), BenchError> {
        let config = Config::default();
        let p = Board::peripherals();
        // SAFETY: the one place that takes the DMA region.
        let dma = unsafe { &mut *core::ptr::addr_of_mut!(DMA) };
        let app = App::new(p, dma, WINDOW, &IRQ, config, now());
        APP.put(app);
        let server = Endpoint {
            mac: config.mac.mac_address,
            ip: config.ip.address,
        };
        let stack = Stack {
            poll: || {
                APP.with(|app, now| app.poll(now));
            },
            link_up: || {
                APP.with(|app, _| app.mac().link().is_some())
                    .unwrap_or(false)
            },
        };
        let mut bench =
            TcpBench::new(stack, Board::attach(), "", server).ok_or(BenchError::WrongResult)?;
        bench.run_ws()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-bench-ws runs on QEMU's Malta board (mipsel-unknown-none).\n\
         Build and run it with: cargo xtask bench-target"
    );
}
