//! The comparison firmware: smoltcp 0.14 (no_std, no alloc) doing the reference app's
//! TCP echo on port 80, on the same MAC driver (`mzw1_wss::mac`), the same stand-in
//! controller and the same client script, measured the same way: from the entry of
//! interrupt vector 165 to its `eret`. Its regions are named `peer_...`.
//!
//! The vector does what an interrupt-driven smoltcp firmware does: acknowledge the
//! controller, `Interface::poll` (ingress, then egress), move what the sockets received
//! to their send buffers, and `Interface::poll_egress` when something was queued.
//!
//! Before the TCP echo, two parts of the WebSocket upgrade with embedded-websocket 0.9.5
//! between plain brackets, the counterparts of ours in `mzw1-bench-firmware`:
//! `peer_upgrade_parse` and `peer_upgrade_response` (the whole WebSocket echo is
//! `mzw1-bench-peers-ws`).
#![cfg_attr(target_os = "none", no_std, no_main)]

/// The device, compiled into this image as a module of its own (as it was before the
/// library shared it), so that the TCP figures do not move with the library's codegen.
#[cfg(target_os = "none")]
mod device;

#[cfg(target_os = "none")]
mod firmware {
    use crate::device::MacDevice;
    use core::hint::black_box;
    use embedded_websocket::{WebSocketServer, read_http_header};
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, WINDOW};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::runner::{self, PORT, Stack, TcpBench};
    use mzw1_bench_harness::ws::{KEYS, upgrade_accepted, upgrade_request};
    use mzw1_bench_harness::{BenchError, now, rt};
    use mzw1_wss::mac::{DmaMemory, IrqShared, Mac, MacConfig};
    use mzw1_wss::time::Instant;
    use smoltcp::iface::{
        Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage,
    };
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant as SmolInstant;
    use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

    /// Listening sockets: one per connection the benchmark opens.
    const SOCKETS: usize = 3;
    /// Bytes of each socket's receive and send buffer.
    const SOCKET_BUFFER: usize = 4096;
    /// The server's address (the reference app's default).
    const IP: [u8; 4] = [192, 168, 7, 2];

    static mut DMA: DmaMemory<8, 8, 8> = DmaMemory::new();
    static IRQ: IrqShared = IrqShared::new();
    static mut STORAGE: [SocketStorage<'static>; SOCKETS] = [SocketStorage::EMPTY; SOCKETS];
    static mut BUFFERS: [[u8; SOCKET_BUFFER]; 2 * SOCKETS] = [[0; SOCKET_BUFFER]; 2 * SOCKETS];
    static PEER: Shared<Peer> = Shared::new();

    struct Peer {
        iface: Interface,
        sockets: SocketSet<'static>,
        dev: MacDevice,
        handles: [SocketHandle; SOCKETS],
    }

    impl Peer {
        /// smoltcp's work for one wake-up, and the echo.
        fn service(&mut self, now: Instant) {
            let ts = SmolInstant::from_millis(now.millis() as i64);
            self.iface.poll(ts, &mut self.dev, &mut self.sockets);
            let mut queued = false;
            let mut chunk = [0u8; 1460];
            for &h in &self.handles {
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                if !s.is_open() {
                    let _ = s.listen(PORT);
                }
                if s.state() == tcp::State::CloseWait {
                    s.close();
                }
                while s.can_recv() && s.can_send() {
                    let n = match s.recv_slice(&mut chunk) {
                        Ok(n) if n > 0 => n,
                        _ => break,
                    };
                    let _ = s.send_slice(chunk.get(..n).unwrap_or(&[]));
                    queued = true;
                }
            }
            if queued {
                self.iface.poll_egress(ts, &mut self.dev, &mut self.sockets);
            }
        }
    }

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
        runner::header("peer");
        let mut code = runner::outcome("upgrade", parts());
        if code == 0 {
            code = runner::outcome("tcp", tcp());
        }
        let dropped = PEER.with(|p, _| p.dev.dropped).unwrap_or(0);
        if dropped > 0 {
            mzw1_bench_harness::say!("info peer_tx_dropped={dropped}");
        }
        rt::exit(code)
    }

    const WARMUP: [&str; 2] = [".warmup", ""];

    /// Two parts of the WebSocket upgrade alone, as `mzw1-bench-firmware` measures ours:
    /// `httparse` (16 headers, as embedded-websocket's server example) and
    /// `read_http_header` over the 432-byte request, then `WebSocketServer::server_accept`
    /// (the accept key, SHA-1 and base64, and the 101 response written into a buffer).
    fn parts() -> Result<(), BenchError> {
        let mut request = [0u8; 512];
        let key = KEYS[1];
        let n = upgrade_request(key.key, &mut request).ok_or(BenchError::WrongResult)?;
        let request = request.get(..n).ok_or(BenchError::WrongResult)?;
        let mut found = None;
        for suffix in WARMUP {
            let (c, context) = rt::measure(|| {
                let mut headers = [httparse::EMPTY_HEADER; 16];
                let mut r = httparse::Request::new(&mut headers);
                match r.parse(black_box(request)) {
                    Ok(httparse::Status::Complete(_)) => {
                        read_http_header(r.headers.iter().map(|h| (h.name, h.value)))
                            .ok()
                            .flatten()
                    }
                    _ => None,
                }
            });
            rt::report("peer_", "upgrade_parse", suffix, c, n, None);
            found = Some(context.ok_or(BenchError::WrongResult)?.sec_websocket_key);
        }
        let k = found.ok_or(BenchError::WrongResult)?;
        let mut out = [0u8; 1024];
        for suffix in WARMUP {
            let (c, len) = rt::measure(|| {
                let mut ws = WebSocketServer::new_server();
                ws.server_accept(black_box(&k), None, &mut out).ok()
            });
            rt::report("peer_", "upgrade_response", suffix, c, 0, None);
            let response = len
                .and_then(|l| out.get(..l))
                .ok_or(BenchError::WrongResult)?;
            if !upgrade_accepted(response, key.accept) {
                return Err(BenchError::WrongResult);
            }
        }
        Ok(())
    }

    fn tcp() -> Result<(), BenchError> {
        let p = Board::peripherals();
        let config = MacConfig::default();
        // SAFETY: the one place that takes the DMA region, the socket storage and the
        // socket buffers.
        let (dma, storage, buffers) = unsafe {
            (
                &mut *core::ptr::addr_of_mut!(DMA),
                &mut *core::ptr::addr_of_mut!(STORAGE),
                &mut *core::ptr::addr_of_mut!(BUFFERS),
            )
        };
        let mac = Mac::new(p, dma, WINDOW, &IRQ, config, now());
        let mut dev = MacDevice::new(mac);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(
            config.mac_address,
        )));
        cfg.random_seed = 0x6D7A_7731;
        let ts = SmolInstant::from_millis(now().millis() as i64);
        let mut iface = Interface::new(cfg, &mut dev, ts);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(IP[0], IP[1], IP[2], IP[3]), 24));
        });
        let mut sockets = SocketSet::new(&mut storage[..]);
        let mut bufs = buffers.iter_mut();
        let mut handles = [SocketHandle::default(); SOCKETS];
        for h in handles.iter_mut() {
            let (Some(rx), Some(tx)) = (bufs.next(), bufs.next()) else {
                return Err(BenchError::WrongResult);
            };
            let mut s = tcp::Socket::new(
                tcp::SocketBuffer::new(&mut rx[..]),
                tcp::SocketBuffer::new(&mut tx[..]),
            );
            s.listen(PORT).map_err(|_| BenchError::WrongResult)?;
            *h = sockets.add(s);
        }
        let peer = Peer {
            iface,
            sockets,
            dev,
            handles,
        };
        PEER.put(peer);
        let server = Endpoint {
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
        let mut bench = TcpBench::new(stack, Board::attach(), "peer_", server)
            .ok_or(BenchError::WrongResult)?;
        bench.run_tcp()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-bench-peers runs on QEMU's Malta board (mipsel-unknown-none).\n\
         Build and run it with: cargo xtask bench-target"
    );
}
