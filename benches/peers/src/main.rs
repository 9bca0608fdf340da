//! The comparison firmware: smoltcp 0.14 (no_std, no alloc) doing the reference app's
//! TCP echo on port 80, on the same MAC driver (`mzw1_wss::mac`), the same stand-in
//! controller and the same client script, measured the same way: from the entry of
//! interrupt vector 165 to its `eret`. Its regions are named `peer_...`.
//!
//! The vector does what an interrupt-driven smoltcp firmware does: acknowledge the
//! controller, `Interface::poll` (ingress, then egress), move what the sockets received
//! to their send buffers, and `Interface::poll_egress` when something was queued.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::cell::RefCell;
    use critical_section::Mutex;
    use mzw1_bench_harness::board::{Board, WINDOW};
    use mzw1_bench_harness::client::Endpoint;
    use mzw1_bench_harness::runner::{self, PORT, Stack, TcpBench};
    use mzw1_bench_harness::{BenchError, now, rt};
    use mzw1_wss::mac::{DmaMemory, IrqShared, MAX_TX_FRAME, Mac, MacConfig, RxFrame, TxRing};
    use mzw1_wss::time::Instant;
    use smoltcp::iface::{
        Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage,
    };
    use smoltcp::phy::{self, DeviceCapabilities, Medium};
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
    static PEER: Mutex<RefCell<Option<Peer>>> = Mutex::new(RefCell::new(None));

    /// smoltcp's `Device` over the mzw1-wss MAC: received frames are read in place in the
    /// RX DMA buffers, frames to send are written straight into TX DMA buffers.
    struct MacDevice {
        mac: Mac<'static>,
        /// Where a frame goes when no TX buffer is free (then counted, and lost).
        scratch: [u8; MAX_TX_FRAME],
        dropped: u32,
    }

    struct Rx<'a> {
        frame: RxFrame<'a, 'static>,
    }

    struct Tx<'a> {
        tx: &'a mut TxRing<'static>,
        scratch: &'a mut [u8; MAX_TX_FRAME],
        dropped: &'a mut u32,
    }

    impl phy::RxToken for Rx<'_> {
        fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
            f(self.frame.data())
        }
    }

    impl phy::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let tx = self.tx;
            let buf = match tx.alloc() {
                Some(b) => Some(b),
                None => {
                    tx.reap();
                    tx.alloc()
                }
            };
            if let Some(b) = buf {
                if let Some(area) = tx.buffer(&b).and_then(|a| a.get_mut(..len)) {
                    let r = f(area);
                    if tx.send(b, len).is_err() {
                        *self.dropped += 1;
                    }
                    return r;
                }
                tx.release(b);
            }
            *self.dropped += 1;
            let mut empty = [];
            f(self.scratch.get_mut(..len).unwrap_or(&mut empty))
        }
    }

    impl phy::Device for MacDevice {
        type RxToken<'a> = Rx<'a>;
        type TxToken<'a> = Tx<'a>;

        fn receive(&mut self, _: SmolInstant) -> Option<(Rx<'_>, Tx<'_>)> {
            let MacDevice {
                mac,
                scratch,
                dropped,
            } = self;
            let Mac { rx, tx, .. } = mac;
            let frame = rx.receive()?;
            Some((
                Rx { frame },
                Tx {
                    tx,
                    scratch,
                    dropped,
                },
            ))
        }

        fn transmit(&mut self, _: SmolInstant) -> Option<Tx<'_>> {
            let MacDevice {
                mac,
                scratch,
                dropped,
            } = self;
            Some(Tx {
                tx: &mut mac.tx,
                scratch,
                dropped,
            })
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ethernet;
            c.max_transmission_unit = MAX_TX_FRAME;
            c
        }
    }

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

    fn with_peer<R>(f: impl FnOnce(&mut Peer, Instant) -> R) -> Option<R> {
        critical_section::with(|cs| {
            let mut p = PEER.borrow(cs).try_borrow_mut().ok()?;
            p.as_mut().map(|p| f(p, now()))
        })
    }

    /// What vector 165 calls.
    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        with_peer(|p, now| {
            p.dev.mac.on_interrupt();
            p.service(now);
        });
    }

    #[unsafe(no_mangle)]
    extern "C" fn bench_main() -> ! {
        runner::header("peer");
        let code = runner::outcome("tcp", tcp());
        let dropped = with_peer(|p, _| p.dev.dropped).unwrap_or(0);
        if dropped > 0 {
            mzw1_bench_harness::say!("info peer_tx_dropped={dropped}");
        }
        rt::exit(code)
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
        let mut dev = MacDevice {
            mac,
            scratch: [0; MAX_TX_FRAME],
            dropped: 0,
        };
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
        critical_section::with(|cs| PEER.borrow(cs).replace(Some(peer)));
        let server = Endpoint {
            mac: config.mac_address,
            ip: IP,
        };
        let stack = Stack {
            poll: || {
                with_peer(|p, now| {
                    p.dev.mac.poll(now);
                    p.service(now);
                });
            },
            link_up: || with_peer(|p, _| p.dev.mac.link().is_some()).unwrap_or(false),
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
