//! The reference firmware app, the same code on the PIC32MZW1 (`src/main.rs`) and on the
//! simulated board (`mzw1-sim`).
//!
//! Until the WebSocket service lands it is a TCP echo server: every byte received on the
//! listening port is sent back, written straight from the RX buffer into a TX buffer.
#![no_std]

use mzw1_wss::mac::{DmaMemory, DmaWindow, IrqShared, Mac, MacConfig, MacEvents, Peripherals};
use mzw1_wss::net::ipv4::Ipv4Config;
use mzw1_wss::net::tcp::{ConnId, TcpApi, TcpConfig, TcpEvent, TcpHandler};
use mzw1_wss::net::{Interface, Link, NetConfig};
use mzw1_wss::time::Instant;

/// RX descriptors.
pub const RXD: usize = 8;
/// RX buffers: the descriptors plus 8 spares in which TCP keeps data the layer above has
/// not consumed yet (each connection may keep 4, its receive window).
pub const RXB: usize = 16;
/// TX buffers and descriptors.
pub const TXB: usize = 8;

/// TCP connection slots.
pub const CONNECTIONS: usize = 4;

/// The DMA region the app needs.
pub type Dma = DmaMemory<RXD, RXB, TXB>;

/// The app's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The MAC driver's configuration (its `mac_address` is the station address).
    pub mac: MacConfig,
    /// IPv4 addresses.
    pub ip: Ipv4Config,
    /// TCP (the listening port among it).
    pub tcp: TcpConfig,
}

/// The simulated board's default network: 192.168.7.2/24 behind 192.168.7.1.
pub const DEFAULT_IP: Ipv4Config = Ipv4Config {
    address: [192, 168, 7, 2],
    netmask: [255, 255, 255, 0],
    gateway: [192, 168, 7, 1],
};

impl Default for Config {
    fn default() -> Self {
        Config {
            mac: MacConfig::default(),
            ip: DEFAULT_IP,
            tcp: TcpConfig {
                port: 80,
                rx_segments: 4,
                ..TcpConfig::default()
            },
        }
    }
}

/// Echoes every byte it receives; closes when the peer closes.
pub struct Echo;

impl TcpHandler for Echo {
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
        let mut done = 0;
        while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
            let sent = tcp.send(conn, rest.len(), |buf| {
                let n = buf.len().min(rest.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
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

/// The reference app.
pub struct App {
    net: Interface<'static, CONNECTIONS>,
    echo: Echo,
    link_events: MacEvents,
}

impl App {
    /// Brings the hardware up.
    pub fn new(
        p: Peripherals<'static>,
        dma: &'static mut Dma,
        window: DmaWindow,
        shared: &'static IrqShared,
        config: Config,
        now: Instant,
    ) -> App {
        let mac = Mac::new(p, dma, window, shared, config.mac, now);
        let link = Link {
            mac: config.mac.mac_address,
            ip: config.ip,
        };
        let net = Interface::new(
            mac,
            NetConfig {
                link,
                tcp: config.tcp,
            },
        );
        App {
            net,
            echo: Echo,
            link_events: MacEvents::empty(),
        }
    }

    /// Vector 165: acknowledge, then handle what arrived right away.
    pub fn on_interrupt(&mut self, now: Instant) {
        self.net.on_interrupt(now, &mut self.echo);
    }

    /// One pass of the superloop: link, timers, and anything the interrupt left.
    pub fn poll(&mut self, now: Instant) {
        self.link_events |= self.net.poll(now, &mut self.echo);
    }

    /// The network stack (for status displays and tests).
    pub fn net(&self) -> &Interface<'static, CONNECTIONS> {
        &self.net
    }

    /// The network stack, mutably (to inspect connections).
    pub fn net_mut(&mut self) -> &mut Interface<'static, CONNECTIONS> {
        &mut self.net
    }

    /// The MAC driver.
    pub fn mac(&self) -> &Mac<'static> {
        self.net.mac()
    }
}
