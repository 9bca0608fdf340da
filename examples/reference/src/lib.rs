//! The reference firmware app, the same code on the PIC32MZW1 (`src/main.rs`) and on the
//! simulated board (`mzw1-sim`).
//!
//! A WebSocket server on port 80:
//! - any path but `/chat`: a streaming echo. Each chunk is sent back as it arrives,
//!   straight from the RX DMA buffer it was unmasked in into a TX buffer, so a message of
//!   any size needs no buffer of its size. When TCP has no room the chunk stays where it
//!   is and the client's receive window closes (backpressure end to end);
//! - `/chat`: a chat room; each whole message (up to [`CHAT_MESSAGE_MAX`] bytes, 1009
//!   beyond) goes to every chat client;
//! - `GET /` without an upgrade: the chat page, which opens `/chat` back to the board.
//!
//! The chat room and its page are the `chat` feature (on by default). Without it the
//! image is the WebSocket service and its streaming echo alone: what the peer image in
//! `benches/peers` does, so `cargo xtask size` measures both that way too.
#![no_std]

use mzw1_wss::mac::{DmaMemory, DmaWindow, IrqShared, Mac, MacConfig, Peripherals};
use mzw1_wss::net::ipv4::Ipv4Config;
use mzw1_wss::net::tcp::TcpConfig;
use mzw1_wss::net::{Interface, Link, NetConfig};
#[cfg(feature = "chat")]
use mzw1_wss::service::assembly::{Assembled, Assembly};
use mzw1_wss::service::{ClientId, Ctx, DataInfo, Handler, SendError, Server, WssConfig};
#[cfg(feature = "chat")]
use mzw1_wss::service::{Event, Page};
use mzw1_wss::time::Instant;

/// RX descriptors.
pub const RXD: usize = 8;
/// RX buffers: the descriptors plus 8 spares in which TCP keeps data the layer above has
/// not consumed yet (each connection may keep 4, its receive window).
pub const RXB: usize = 16;
/// TX buffers and descriptors.
pub const TXB: usize = 8;

/// WebSocket clients the image is built for (the service's `C`); `Config::wss.clients`
/// of them are served. Set at build time by `MZW1_CLIENTS` (1–8), as Harmony's
/// configurator sets `SYS_WSS_MAX_NUM_CLIENTS`: 8 unless set, so that the simulated board
/// can serve up to 8 (`--clients`); `cargo xtask firmware` builds the PIC32 image with 2,
/// Harmony's default.
pub const CLIENTS: usize = clients_from(option_env!("MZW1_CLIENTS"));

const fn clients_from(v: Option<&str>) -> usize {
    match v {
        None => 8,
        Some(s) => match s.as_bytes() {
            [d @ b'1'..=b'8'] => (*d - b'0') as usize,
            _ => panic!("MZW1_CLIENTS must be a number from 1 to 8"),
        },
    }
}

/// TCP connection slots: the clients and one spare. With every client slot taken the
/// spare still lets a newcomer in to be refused with 503; closed connections wait in
/// TIME-WAIT in whatever slot they had, and the oldest gives way when a new connection
/// finds no free slot (`TcpApi::take_slot`), so they need no slot of their own. Each slot
/// is 160 bytes.
pub const CONNECTIONS: usize = CLIENTS + 1;

/// Longest chat message.
#[cfg(feature = "chat")]
pub const CHAT_MESSAGE_MAX: usize = 256;

/// The DMA region the app needs.
pub type Dma = DmaMemory<RXD, RXB, TXB>;

/// The page served at `/`.
#[cfg(feature = "chat")]
pub const CHAT_PAGE: Page = Page {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("chat.html"),
};

/// The app's configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The MAC driver's configuration (its `mac_address` is the station address).
    pub mac: MacConfig,
    /// IPv4 addresses.
    pub ip: Ipv4Config,
    /// TCP (the listening port among it).
    pub tcp: TcpConfig,
    /// The WebSocket service (clients served, 1..=[`CLIENTS`], and the timeouts).
    pub wss: WssConfig,
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
            wss: WssConfig::default(),
        }
    }
}

/// Brings the MAC up and puts the network stack on it: the part of the start-up every
/// app on this board shares.
pub fn interface(
    p: Peripherals<'static>,
    dma: &'static mut Dma,
    window: DmaWindow,
    shared: &'static IrqShared,
    config: &Config,
    now: Instant,
) -> Interface<'static, CONNECTIONS> {
    let mac = Mac::new(p, dma, window, shared, config.mac, now);
    let link = Link {
        mac: config.mac.mac_address,
        ip: config.ip,
    };
    Interface::new(
        mac,
        NetConfig {
            link,
            tcp: config.tcp,
        },
    )
}

/// What the app counts.
#[cfg(feature = "chat")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Chat messages received whole.
    pub chat_messages: u32,
    /// Chat deliveries skipped because a client had no room for the message.
    pub chat_undelivered: u32,
}

/// The application: streaming echo, and the chat room.
pub struct Echo {
    /// Clients connected on `/chat`.
    #[cfg(feature = "chat")]
    chat: [bool; CLIENTS],
    #[cfg(feature = "chat")]
    assembly: Assembly<CHAT_MESSAGE_MAX, CLIENTS>,
    /// Counters.
    #[cfg(feature = "chat")]
    pub stats: EchoStats,
}

impl Echo {
    const fn new() -> Echo {
        Echo {
            #[cfg(feature = "chat")]
            chat: [false; CLIENTS],
            #[cfg(feature = "chat")]
            assembly: Assembly::new(),
            #[cfg(feature = "chat")]
            stats: EchoStats {
                chat_messages: 0,
                chat_undelivered: 0,
            },
        }
    }

    /// Chat messages refused for length (1009).
    #[cfg(feature = "chat")]
    pub fn chat_too_big(&self) -> u32 {
        self.assembly.too_big
    }
}

impl Handler for Echo {
    fn on_data(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        data: &mut [u8],
        info: DataInfo,
    ) -> Option<usize> {
        #[cfg(feature = "chat")]
        if self.chat.get(client.index()).copied().unwrap_or(false) {
            if let Assembled::Whole(kind, message) = self.assembly.push(ctx, client, data, info) {
                self.stats.chat_messages += 1;
                for (i, _) in self.chat.iter().enumerate().filter(|(_, c)| **c) {
                    if ctx
                        .send_whole(ClientId::from_index(i as u8), kind, message)
                        .is_err()
                    {
                        self.stats.chat_undelivered += 1;
                    }
                }
            }
            return Some(data.len());
        }
        // Echo: the frames sent back follow the chunks as they come; `info.last` ends the
        // echoed message where the client's ended.
        match ctx.send_message(client, info.kind, data, info.last) {
            Ok(n) => Some(n),
            Err(SendError::WouldBlock) => None,
            // Closing, or gone: nothing to echo to.
            Err(_) => Some(data.len()),
        }
    }

    #[cfg(feature = "chat")]
    fn on_event(&mut self, _ctx: &mut Ctx<'_, '_, '_>, client: ClientId, event: Event<'_>) {
        let Some(chat) = self.chat.get_mut(client.index()) else {
            return;
        };
        match event {
            Event::Connected { path, .. } => *chat = path == b"/chat",
            Event::Closed => {
                *chat = false;
                self.assembly.reset(client);
            }
            _ => {}
        }
    }

    #[cfg(feature = "chat")]
    fn page(&mut self, path: &[u8]) -> Option<&'static Page> {
        match path {
            b"/" | b"/index.html" => Some(&CHAT_PAGE),
            _ => None,
        }
    }
}

/// The service as the app runs it.
pub type WsServer = Server<'static, Echo, CONNECTIONS, CLIENTS>;

/// The reference app.
pub struct App {
    server: WsServer,
}

impl App {
    /// Brings the hardware up and starts the service.
    pub fn new(
        p: Peripherals<'static>,
        dma: &'static mut Dma,
        window: DmaWindow,
        shared: &'static IrqShared,
        config: Config,
        now: Instant,
    ) -> App {
        let net = interface(p, dma, window, shared, &config, now);
        App {
            server: Server::initialize(net, config.wss, Some(Echo::new())),
        }
    }

    /// Vector 165: acknowledge, then handle what arrived right away.
    pub fn on_interrupt(&mut self, now: Instant) {
        self.server.on_interrupt(now);
    }

    /// One pass of the superloop: link, timers, and anything the interrupt left.
    pub fn poll(&mut self, now: Instant) {
        self.server.poll(now);
    }

    /// Deinitializes the service: every client gets a Close (1001); keep polling until
    /// [`App::is_stopped`], when the MAC is quiet.
    pub fn shutdown(&mut self, now: Instant) {
        self.server.deinitialize(now);
    }

    /// Whether the shutdown has finished.
    pub fn is_stopped(&self) -> bool {
        self.server.is_stopped()
    }

    /// The service.
    pub fn server(&self) -> &WsServer {
        &self.server
    }

    /// The service, mutably (to send from outside a callback).
    pub fn server_mut(&mut self) -> &mut WsServer {
        &mut self.server
    }

    /// The network stack (for status displays and tests).
    pub fn net(&self) -> &Interface<'static, CONNECTIONS> {
        self.server.net()
    }

    /// The MAC driver.
    pub fn mac(&self) -> &Mac<'static> {
        self.server.mac()
    }
}
