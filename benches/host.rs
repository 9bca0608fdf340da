//! Host benchmarks: the paths `cargo xtask bench-target` measures on MIPS under QEMU,
//! here on x86_64 with the instructions counted by callgrind (gungraun), for quick
//! iteration: seconds, with no nightly toolchain and no QEMU. The MIPS figures are the
//! reference.
//!
//! `cargo bench --bench host` (needs `valgrind` and `gungraun-runner` of the same
//! version as the `gungraun` dev-dependency; `.ci/run` installs both).
//!
//! The same inputs and the same steps as the target's benchmarks, from the same code:
//! - kernels: `unmask4k`, `utf8_ascii4k`, `utf8_mixed4k` and `checksum1460` on the
//!   inputs of `mzw1_bench_harness::inputs`;
//! - `echo16`, `echo1400`: one masked text frame (`mzw1_bench_harness::ws::text`) in one
//!   segment, from the Ethernet interrupt handler's entry to the echo frame handed to TX
//!   DMA; `handshake`: a browser's SYN and then its upgrade request, each from the
//!   handler's entry to the SYN-ACK or the 101 handed to TX (the harness's work between
//!   the two is not counted). Each for our reference app (`ours`) and for the peer
//!   (`peer`: smoltcp + embedded-websocket on the same MAC driver).
//!
//! The stand-in controller and the scripted client are the target's
//! (`mzw1_bench_harness::{board, runner}`): each benchmark's `setup` brings the stack up,
//! opens the connections and runs the warm-up as the target's run does, then leaves the
//! frame in an RX descriptor with the interrupt raised; the benchmark function is only
//! the call of the interrupt handler; the `teardown` completes the TX descriptors and
//! checks the reply (a wrong reply fails the run).
//!
//! Differences from the target that show in the figures: x86_64 code (no `maddu`
//! checksum, other inlining), the std `critical-section` (a mutex) in place of disabling
//! interrupts, the register-access hook of the simulated board (a null check per access;
//! nothing on the target), and the reference app built for 8 clients unless
//! `MZW1_CLIENTS` says otherwise (the PIC32 image and the QEMU benchmarks have 2: its
//! tables, scanned on every interrupt, are sized by it, while `Config::default()` serves
//! 2 either way).

use gungraun::{library_benchmark, library_benchmark_group, main};
use mzw1_bench_harness::BenchError;
use mzw1_bench_harness::client::{TcpClient, inet_checksum};
use mzw1_bench_harness::inputs::{
    Aligned, MASK_KEY, SEGMENT_BYTES, ascii_text, mixed_text, unmask_input,
};
use mzw1_bench_harness::runner::{TcpBench, WS_CLIENTS, WS_ECHOES, WsClient};
use mzw1_wss::net::checksum::checksum;
use mzw1_wss::ws::mask::apply_mask;
use mzw1_wss::ws::utf8::{self, Utf8Error};
use std::hint::black_box;

/// Our reference app, brought up as the target's `mzw1-bench-ws` brings it up.
mod ours {
    use super::Session;
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, host_window};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::now;
    use mzw1_bench_harness::runner::TcpBench;
    use mzw1_reference::{App, Config, Dma};
    use mzw1_wss::mac::IrqShared;

    static mut DMA: Dma = Dma::new();
    static IRQ: IrqShared = IrqShared::new();
    static APP: Shared<App> = Shared::new();

    /// The reference firmware's `mzw1_eth_interrupt`: what the benchmarks count.
    fn interrupt() {
        APP.with(|app, now| app.on_interrupt(now));
    }

    /// The app on the stand-in controller, and a session on it.
    pub fn start() -> Session {
        let config = Config::default();
        let p = Board::peripherals();
        let dma_ptr = core::ptr::addr_of_mut!(DMA);
        let window = host_window(dma_ptr);
        // SAFETY: the one place that takes the DMA region (once per process: gungraun
        // runs each benchmark in a process of its own).
        let dma = unsafe { &mut *dma_ptr };
        let app = App::new(p, dma, window, &IRQ, config, now());
        APP.put(app);
        let server = Endpoint {
            mac: config.mac.mac_address,
            ip: config.ip.address,
        };
        let stack = mzw1_bench_harness::runner::Stack {
            poll: || {
                APP.with(|app, now| app.poll(now));
            },
            link_up: || {
                APP.with(|app, _| app.mac().link().is_some())
                    .unwrap_or(false)
            },
            interrupt,
        };
        let bench = TcpBench::new(stack, Board::attach(), "", server).expect("one session");
        Session { bench, interrupt }
    }
}

/// The peer, brought up as the target's `mzw1-bench-peers-ws` brings it up.
mod peer {
    use super::Session;
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, host_window};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::now;
    use mzw1_bench_harness::runner::TcpBench;
    use mzw1_bench_peers::ws_server::{Buffers, SOCKETS_EMPTY, Sockets, WsServer};
    use mzw1_wss::mac::{DmaMemory, IrqShared, Mac, MacConfig};

    /// The server's address (the reference app's default).
    const IP: [u8; 4] = [192, 168, 7, 2];

    static mut DMA: DmaMemory<8, 8, 8> = DmaMemory::new();
    static IRQ: IrqShared = IrqShared::new();
    static mut SOCKETS: Sockets = SOCKETS_EMPTY;
    static mut BUFFERS: Buffers = Buffers::new();
    static PEER: Shared<WsServer> = Shared::new();

    /// The peer firmware's `mzw1_eth_interrupt`: what the benchmarks count.
    fn interrupt() {
        PEER.with(|p, now| {
            p.dev.mac.on_interrupt();
            p.service(now);
        });
    }

    /// The peer on the stand-in controller, and a session on it.
    pub fn start() -> Session {
        let p = Board::peripherals();
        let config = MacConfig::default();
        let dma_ptr = core::ptr::addr_of_mut!(DMA);
        let window = host_window(dma_ptr);
        // SAFETY: the one place that takes the DMA region and the server's buffers (once
        // per process, as for ours).
        let (dma, sockets, buffers) = unsafe {
            (
                &mut *dma_ptr,
                &mut *core::ptr::addr_of_mut!(SOCKETS),
                &mut *core::ptr::addr_of_mut!(BUFFERS),
            )
        };
        let mac = Mac::new(p, dma, window, &IRQ, config, now());
        let server = WsServer::new(mac, config.mac_address, IP, sockets, buffers, now());
        PEER.put(server);
        let endpoint = Endpoint {
            mac: config.mac_address,
            ip: IP,
        };
        let stack = mzw1_bench_harness::runner::Stack {
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
            interrupt,
        };
        let bench = TcpBench::new(stack, Board::attach(), "peer_", endpoint).expect("one session");
        Session { bench, interrupt }
    }
}

/// A stack under test: the harness's session on it and its interrupt handler.
pub struct Session {
    bench: TcpBench,
    interrupt: fn(),
}

/// Which stack a benchmark runs on.
#[derive(Clone, Copy, Debug)]
pub enum Under {
    Ours,
    Peer,
}

impl Under {
    fn start(self) -> Session {
        match self {
            Under::Ours => ours::start(),
            Under::Peer => peer::start(),
        }
    }
}

/// A WebSocket benchmark's state, boxed so that the benchmark function moves a pointer,
/// not the session.
pub struct Ws {
    stack: Session,
    client: TcpClient,
    /// The payload of the echo under test (0 for the handshake).
    len: usize,
}

/// Panics with the benchmark's name: gungraun then fails the run.
fn check(what: &str, prefix: &str, r: Result<(), BenchError>) {
    if let Err(e) = r {
        panic!("{prefix}{what}: {}", e.as_str());
    }
}

/// The target's `run_ws` up to the second connection: the link, ARP and the first
/// connection (the warm-up); then `second` goes on with the second client, up to the
/// step under test.
fn ws_setup(
    under: Under,
    what: &str,
    len: usize,
    second: impl FnOnce(&mut TcpBench, &WsClient) -> Result<TcpClient, BenchError>,
) -> Box<Ws> {
    let mut s = under.start();
    let prefix = s.bench.prefix();
    let r = (|| {
        let b = &mut s.bench;
        let [first, next] = &WS_CLIENTS;
        b.link()?;
        b.arp()?;
        b.ws_connect(first, ".warmup")?;
        second(b, next)
    })();
    let client = r.unwrap_or_else(|e| panic!("{prefix}{what} setup: {}", e.as_str()));
    Box::new(Ws {
        stack: s,
        client,
        len,
    })
}

/// The target's `run_ws` up to the measured echo of `len` bytes on the second
/// connection (after its warm-up); the frame is then delivered, the interrupt not taken.
fn echo_setup(under: Under, len: usize) -> Box<Ws> {
    ws_setup(under, "echo", len, |b, second| {
        let mut c = b.ws_connect(second, "")?;
        for (n, name) in WS_ECHOES {
            b.ws_echo(&mut c, n, name, ".warmup")?;
            if n == len {
                break;
            }
            b.ws_echo(&mut c, n, name, "")?;
        }
        b.send_text(&mut c, len)?;
        Ok(c)
    })
}

/// The echo frame must have been handed to TX.
fn echo_teardown(mut ws: Box<Ws>) {
    let Ws { stack, client, len } = &mut *ws;
    let prefix = stack.bench.prefix();
    let r = stack
        .bench
        .after_interrupt()
        .and_then(|()| stack.bench.text_echoed(client, *len));
    check(&format!("echo{len}"), prefix, r);
}

/// The target's `run_ws` up to the second handshake: the link, ARP, the first
/// connection (the warm-up); then the second connection's SYN is delivered.
fn handshake_setup(under: Under) -> Box<Ws> {
    ws_setup(under, "handshake", 0, |b, second| {
        b.send_syn(second.port, second.isn)
    })
}

/// Between the handshake's two interrupts: the SYN-ACK is taken in, and the ACK with
/// the upgrade request delivered. Not counted: the `--toggle-collect` of this function
/// in the `handshake` benchmark's configuration turns collection off inside it.
#[inline(never)]
fn handshake_gap(ws: &mut Ws) {
    let Ws { stack, client, .. } = ws;
    let prefix = stack.bench.prefix();
    let r = stack
        .bench
        .after_interrupt()
        .and_then(|()| stack.bench.syn_acked(client))
        .and_then(|()| stack.bench.send_upgrade(client, &WS_CLIENTS[1].key));
    check("handshake", prefix, r);
}

/// The 101 must have been handed to TX.
fn handshake_teardown(mut ws: Box<Ws>) {
    let Ws { stack, client, .. } = &mut *ws;
    let prefix = stack.bench.prefix();
    let r = stack
        .bench
        .after_interrupt()
        .and_then(|()| stack.bench.upgraded(client, &WS_CLIENTS[1].key));
    check("handshake", prefix, r);
}

#[library_benchmark]
#[bench::ours(args = (Under::Ours, 16), setup = echo_setup, teardown = echo_teardown)]
#[bench::peer(args = (Under::Peer, 16), setup = echo_setup, teardown = echo_teardown)]
fn echo16(ws: Box<Ws>) -> Box<Ws> {
    (ws.stack.interrupt)();
    ws
}

#[library_benchmark]
#[bench::ours(args = (Under::Ours, 1400), setup = echo_setup, teardown = echo_teardown)]
#[bench::peer(args = (Under::Peer, 1400), setup = echo_setup, teardown = echo_teardown)]
fn echo1400(ws: Box<Ws>) -> Box<Ws> {
    (ws.stack.interrupt)();
    ws
}

// Both interrupts counted, the harness's work between them not (see `handshake_gap`):
// the target's `handshake` is the sum of its two regions.
#[library_benchmark(
    config = gungraun::LibraryBenchmarkConfig::default()
        .tool(gungraun::Callgrind::with_args(["--toggle-collect=host::handshake_gap"]))
)]
#[bench::ours(args = (Under::Ours), setup = handshake_setup, teardown = handshake_teardown)]
#[bench::peer(args = (Under::Peer), setup = handshake_setup, teardown = handshake_teardown)]
fn handshake(mut ws: Box<Ws>) -> Box<Ws> {
    (ws.stack.interrupt)();
    handshake_gap(&mut ws);
    (ws.stack.interrupt)();
    ws
}

/// A 4 KiB input made by `fill`.
fn input(fill: fn(&mut [u8])) -> Box<Aligned> {
    let mut buf = Box::new(Aligned::new());
    fill(&mut buf.0);
    buf
}

/// Unmasked and masked again: back to the input.
fn unmask_teardown(mut buf: Box<Aligned>) {
    apply_mask(MASK_KEY, 0, &mut buf.0);
    assert!(input(unmask_input).0 == buf.0, "unmask4k: wrong result");
}

#[library_benchmark]
#[bench::kernel(args = (unmask_input), setup = input, teardown = unmask_teardown)]
fn unmask4k(mut buf: Box<Aligned>) -> Box<Aligned> {
    black_box(apply_mask(
        black_box(MASK_KEY),
        0,
        black_box(&mut buf.0[..]),
    ));
    buf
}

fn utf8_teardown((_, r): (Box<Aligned>, Result<(), Utf8Error>)) {
    assert!(r.is_ok(), "utf8: valid text refused");
}

// The buffer goes back out with the result so that freeing it is not counted.
#[library_benchmark]
#[bench::kernel(args = (ascii_text), setup = input, teardown = utf8_teardown)]
fn utf8_ascii4k(buf: Box<Aligned>) -> (Box<Aligned>, Result<(), Utf8Error>) {
    let r = utf8::validate(black_box(&buf.0[..]));
    (buf, r)
}

#[library_benchmark]
#[bench::kernel(args = (mixed_text), setup = input, teardown = utf8_teardown)]
fn utf8_mixed4k(buf: Box<Aligned>) -> (Box<Aligned>, Result<(), Utf8Error>) {
    let r = utf8::validate(black_box(&buf.0[..]));
    (buf, r)
}

/// Against the harness's own checksum.
fn checksum_teardown((buf, sum): (Box<Aligned>, u16)) {
    assert_eq!(
        sum,
        inet_checksum(&buf.0[..SEGMENT_BYTES], 0),
        "checksum1460: wrong sum"
    );
}

// The first 1460 bytes of the mixed text, word-aligned, as on the target.
#[library_benchmark]
#[bench::kernel(args = (mixed_text), setup = input, teardown = checksum_teardown)]
fn checksum1460(buf: Box<Aligned>) -> (Box<Aligned>, u16) {
    let sum = checksum(black_box(&buf.0[..SEGMENT_BYTES]));
    (buf, sum)
}

library_benchmark_group!(
    name = kernels,
    benchmarks = [unmask4k, utf8_ascii4k, utf8_mixed4k, checksum1460]
);

library_benchmark_group!(name = websocket, benchmarks = [echo16, echo1400, handshake]);

main!(library_benchmark_groups = kernels, websocket);
