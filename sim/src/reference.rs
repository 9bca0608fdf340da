//! Firmware for the simulated board: the reference app (`mzw1-reference`), the service
//! with any application on the same start-up (for tests that need their own callbacks),
//! and a plain TCP echo for tests of the layers below WebSocket.

use crate::board::{Board, Firmware};
use mzw1_reference::{App, CLIENTS, CONNECTIONS, Config};
use mzw1_wss::mac::IrqShared;
use mzw1_wss::net::Interface;
use mzw1_wss::net::tcp::{ConnId, TcpApi, TcpEvent, TcpHandler};
use mzw1_wss::service::{Handler, Server};
use mzw1_wss::time::Instant;

fn irq_shared() -> &'static IrqShared {
    Box::leak(Box::new(IrqShared::new()))
}

/// The reference app as board firmware.
pub struct Reference(pub App);

impl Reference {
    /// Boots the app on `board` with `config`.
    pub fn boot(board: &mut Board, config: Config) -> Reference {
        let (dma, window) = board.alloc_dma();
        Reference(App::new(
            board.peripherals(),
            dma,
            window,
            irq_shared(),
            config,
            board.now(),
        ))
    }
}

impl Firmware for Reference {
    fn on_interrupt(&mut self, now: Instant) {
        self.0.on_interrupt(now);
    }

    fn poll(&mut self, now: Instant) {
        self.0.poll(now);
    }
}

/// The WebSocket service with the application `H`, on the reference app's start-up and
/// configuration (`Config::wss` included).
pub struct Service<H: Handler>(pub Server<'static, H, CONNECTIONS, CLIENTS>);

impl<H: Handler> Service<H> {
    /// Boots the service on `board`.
    pub fn boot(board: &mut Board, config: Config, handler: H) -> Service<H> {
        let (dma, window) = board.alloc_dma();
        let net = mzw1_reference::interface(
            board.peripherals(),
            dma,
            window,
            irq_shared(),
            &config,
            board.now(),
        );
        Service(Server::initialize(net, config.wss, Some(handler)))
    }
}

impl<H: Handler> Firmware for Service<H> {
    fn on_interrupt(&mut self, now: Instant) {
        self.0.on_interrupt(now);
    }

    fn poll(&mut self, now: Instant) {
        self.0.poll(now);
    }
}

/// Echoes every byte received on the reference app's port, written straight from the RX
/// buffer into a TX buffer; closes when the peer closes. The TCP/IP stack's tests use it
/// against smoltcp and the Linux kernel.
pub struct TcpEcho {
    /// The network stack.
    pub net: Interface<'static, CONNECTIONS>,
    handler: EchoBytes,
}

struct EchoBytes;

impl TcpHandler for EchoBytes {
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
        let mut done = 0;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            let sent = tcp.send(conn, rest.len(), |buf| {
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            });
            match sent {
                Ok(n) if n > 0 => done += n,
                // No room: what is left stays in its RX buffer and is offered again.
                _ => break,
            }
        }
        done
    }

    fn on_event(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, event: TcpEvent) {
        if event == TcpEvent::PeerClosed {
            tcp.close(conn);
        }
    }
}

impl TcpEcho {
    /// Boots the echo on `board` with the reference app's network configuration.
    pub fn boot(board: &mut Board, config: Config) -> TcpEcho {
        let (dma, window) = board.alloc_dma();
        let net = mzw1_reference::interface(
            board.peripherals(),
            dma,
            window,
            irq_shared(),
            &config,
            board.now(),
        );
        TcpEcho {
            net,
            handler: EchoBytes,
        }
    }
}

impl Firmware for TcpEcho {
    fn on_interrupt(&mut self, now: Instant) {
        self.net.on_interrupt(now, &mut self.handler);
    }

    fn poll(&mut self, now: Instant) {
        self.net.poll(now, &mut self.handler);
    }
}
