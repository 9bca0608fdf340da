//! The comparison firmware for the WebSocket benchmarks: smoltcp 0.14 and
//! embedded-websocket 0.9.5 ([`mzw1_bench_peers::ws_server`]) doing the reference app's
//! WebSocket echo on port 80, on the same MAC driver (`mzw1_wss::mac`), the same
//! stand-in controller and the same client script as `mzw1-bench-ws`, measured the same
//! way: from the entry of interrupt vector 165 to its `eret`. Its regions are named
//! `peer_...`.
//!
//! The vector does what an interrupt-driven smoltcp firmware does: acknowledge the
//! controller, then `WsServer::service` (`Interface::poll`, the WebSocket work of every
//! socket, `Interface::poll_egress` when something was queued).
//! The parts of the upgrade measured alone are in `mzw1-bench-peers`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, WINDOW};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::runner::{self, Stack, TcpBench};
    use mzw1_bench_harness::{BenchError, now, rt};
    use mzw1_bench_peers::ws_server::{Buffers, SOCKETS_EMPTY, Sockets, WsServer};
    use mzw1_wss::mac::{DmaMemory, IrqShared, Mac, MacConfig};

    /// The server's address (the reference app's default).
    const IP: [u8; 4] = [192, 168, 7, 2];

    static mut DMA: DmaMemory<8, 8, 8> = DmaMemory::new();
    static IRQ: IrqShared = IrqShared::new();
    static mut SOCKETS: Sockets = SOCKETS_EMPTY;
    static mut BUFFERS: Buffers = Buffers::new();
    static PEER: Shared<WsServer> = Shared::new();

    /// What vector 165 calls.
    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        PEER.with(|p, now| {
            p.dev.mac.on_interrupt();
            p.service(now);
        });
    }

    #[unsafe(no_mangle)]
    extern "C" fn bench_main() -> ! {
        runner::header("peer-ws");
        let code = runner::outcome("ws", ws());
        if let Some((dropped, stats)) = PEER.with(|p, _| (p.dev.dropped, p.stats)) {
            mzw1_bench_harness::say!(
                "info peer_tx_dropped={dropped} upgrades={} echoed={} failed={}",
                stats.upgrades,
                stats.echoed,
                stats.failed
            );
        }
        rt::exit(code)
    }

    fn ws() -> Result<(), BenchError> {
        let p = Board::peripherals();
        let config = MacConfig::default();
        // SAFETY: the one place that takes the DMA region and the server's buffers.
        let (dma, sockets, buffers) = unsafe {
            (
                &mut *core::ptr::addr_of_mut!(DMA),
                &mut *core::ptr::addr_of_mut!(SOCKETS),
                &mut *core::ptr::addr_of_mut!(BUFFERS),
            )
        };
        let mac = Mac::new(p, dma, WINDOW, &IRQ, config, now());
        let server = WsServer::new(mac, config.mac_address, IP, sockets, buffers, now());
        PEER.put(server);
        let endpoint = Endpoint {
            mac: config.mac_address,
            ip: IP,
        };
        let stack = Stack {
            poll: || {
                PEER.with(|p, now| {
                    p.dev.mac.poll(now);
                    p.service(now);
                });
            },
            link_up: || {
                PEER.with(|p, _| p.dev.mac.link().is_some())
                    .unwrap_or(false)
            },
        };
        let mut bench = TcpBench::new(stack, Board::attach(), "peer_", endpoint)
            .ok_or(BenchError::WrongResult)?;
        bench.run_ws()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-bench-peers-ws runs on QEMU's Malta board (mipsel-unknown-none).\n\
         Build and run it with: cargo xtask bench-target"
    );
}
