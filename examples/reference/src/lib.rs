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

/// TCP connection slots: up to 8 clients, plus room for refusals and TIME-WAIT.
pub const CONNECTIONS: usize = 10;

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
    /// Clients served at once (1..=8); more are closed as they connect.
    pub clients: u8,
    /// A client silent for this long is closed (0: never).
    pub idle_timeout_ms: u32,
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
            clients: 8,
            idle_timeout_ms: 30_000,
        }
    }
}

/// Echoes every byte it receives; closes when the peer closes, when a client has been
/// silent for the idle timeout, and when more clients than allowed connect.
pub struct Echo {
    clients: u8,
    idle_timeout_ms: u32,
    /// Each client and when it last sent something.
    active: [Option<(ConnId, Instant)>; CONNECTIONS],
}

impl Echo {
    fn new(config: &Config) -> Echo {
        Echo {
            clients: config.clients.clamp(1, 8),
            idle_timeout_ms: config.idle_timeout_ms,
            active: [None; CONNECTIONS],
        }
    }

    fn touch(&mut self, conn: ConnId, now: Instant) {
        if let Some(e) = self.active.iter_mut().flatten().find(|e| e.0 == conn) {
            e.1 = now;
        }
    }

    fn forget(&mut self, conn: ConnId) {
        for e in self.active.iter_mut() {
            if e.is_some_and(|e| e.0 == conn) {
                *e = None;
            }
        }
    }

    /// Closes clients idle for longer than the timeout.
    fn expire(&mut self, tcp: &mut TcpApi<'_, '_>) {
        if self.idle_timeout_ms == 0 {
            return;
        }
        let now = tcp.now();
        for e in self.active.iter_mut() {
            if let Some((id, last)) = *e
                && now.since(last) >= self.idle_timeout_ms
            {
                tcp.close(id);
                *e = None;
            }
        }
    }
}

impl TcpHandler for Echo {
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
        self.touch(conn, tcp.now());
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
        match event {
            TcpEvent::Connected => {
                let served = self.active.iter().flatten().count();
                let free = self.active.iter_mut().find(|e| e.is_none());
                match free {
                    Some(slot) if served < self.clients as usize => *slot = Some((conn, tcp.now())),
                    _ => {
                        tcp.close(conn);
                    }
                }
            }
            TcpEvent::PeerClosed => {
                tcp.close(conn);
            }
            TcpEvent::Closed | TcpEvent::Reset | TcpEvent::TimedOut => self.forget(conn),
            TcpEvent::Writable => {}
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
            echo: Echo::new(&config),
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
        self.echo.expire(&mut self.net.tcp(now));
    }

    /// Closes every connection (FIN), for an orderly stop; keep polling until
    /// [`Interface::slots_in_use`] reaches 0.
    pub fn shutdown(&mut self, now: Instant) {
        let mut tcp = self.net.tcp(now);
        let open: heapless::Vec<ConnId, CONNECTIONS> =
            tcp.connections().map(|(id, _)| id).collect();
        for id in open {
            tcp.close(id);
        }
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
