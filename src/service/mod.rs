//! The WebSocket server service: Harmony's WSS system service model, done in Rust.
//!
//! - [`Server::initialize`] / [`Server::deinitialize`] (every client closed with 1001,
//!   then the MAC stopped), [`Server::register_callback`], [`Server::send_message`]
//!   (text or binary, fragmented with `fin`, any size, partial sends reported),
//!   [`Server::ping_client`], [`Server::close_connection`], [`Server::broadcast`].
//! - Per-client states CLOSED → CONNECTING → CONNECTED → CLOSING as in the seed;
//!   `C` clients (const generic, 1..=8), of which `WssConfig::clients` are served; an idle
//!   timeout per client with an optional ping before it fires; a handshake timeout and a
//!   closing-handshake timeout.
//! - Events to a [`Handler`]: connecting, connected, data (zero-copy chunks in place with
//!   message start and end), ping, pong, close frame received, closing, closed, timeout,
//!   error, writable. A page hook answers plain HTTP GETs (404 by default), an accept hook
//!   refuses paths (404).
//!
//! Each client's receive state (the handshake parser, then the frame [`Receiver`]) lives
//! in its own array, apart from the rest of the client's state, so the frame receiver can
//! work in place on the DMA buffer while the application's callback sends to any client,
//! the same one included.

use crate::mac::Mac;
use crate::net::Interface;
use crate::net::tcp::{ConnId, SendError as TcpSendError, TcpApi, TcpEvent, TcpHandler};
use crate::time::Instant;
use crate::ws::frame::{self, FrameSink, MessageKind, Opcode, Receiver, code, header_len};
use crate::ws::handshake::{self, HandshakeConfig, Progress, Request, RequestParser, Status};

pub mod assembly;

/// Clients a server can be built for at most.
pub const MAX_CLIENTS: usize = 8;

/// A client silent since it connected for this long may lose its slot to a new
/// connection when every slot is taken (`Glue::preempt_idle`).
const PREEMPT_IDLE_MS: u32 = 20;

/// A client slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(u8);

impl ClientId {
    /// The slot index (0-based), Harmony's `clientIndex`.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The client with this index (no check: calls with an invalid one fail cleanly).
    pub const fn from_index(i: u8) -> ClientId {
        ClientId(i)
    }
}

/// A client's state (Harmony's `SYS_WSS_STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// No connection.
    Closed,
    /// TCP connected, opening handshake in progress (or an HTTP response being sent).
    Connecting,
    /// WebSocket open.
    Connected,
    /// Closing handshake in progress.
    Closing,
}

/// Why a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client broke RFC 6455; the connection was failed with this close code.
    Protocol(u16),
    /// The opening handshake was refused with this HTTP status.
    Handshake(Status),
    /// The opening handshake did not finish in time.
    HandshakeTimeout,
    /// The client did not complete the closing handshake in time.
    CloseTimeout,
    /// The TCP connection was reset by the client.
    Reset,
    /// TCP gave up retransmitting.
    TcpTimeout,
    /// The peer closed TCP without a closing handshake.
    Abnormal,
    /// The client had sent nothing since it connected and every slot was taken: it was
    /// closed to make room for a new connection.
    Preempted,
}

/// What happened to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// TCP connected; the opening handshake begins. The client's address and port.
    Connecting([u8; 4], u16),
    /// The opening handshake completed: the request path and the subprotocol chosen.
    Connected {
        /// Request-target of the upgrade request.
        path: &'a [u8],
        /// Subprotocol selected from `HandshakeConfig::subprotocols`.
        subprotocol: Option<&'static str>,
    },
    /// A Ping arrived (already answered with a Pong).
    Ping(&'a [u8]),
    /// A Pong arrived.
    Pong(&'a [u8]),
    /// The client's Close frame: its code (none for an empty body) and reason.
    CloseReceived {
        /// Status code.
        code: Option<u16>,
        /// Reason, UTF-8.
        reason: &'a [u8],
    },
    /// The closing handshake began.
    Closing,
    /// The connection is gone; the slot is free.
    Closed,
    /// The client was idle for the idle timeout; it is being closed.
    Timeout,
    /// The connection failed.
    Error(ErrorKind),
    /// A send that returned `WouldBlock` (or a partial count) can go on.
    Writable,
}

/// Where data chunks sit in their message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataInfo {
    /// Text or binary.
    pub kind: MessageKind,
    /// The message's first bytes.
    pub first: bool,
    /// The message's last bytes.
    pub last: bool,
}

/// A page served for a plain HTTP GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: &'static [u8],
}

/// The application (the callback registered with the service).
pub trait Handler {
    /// A chunk of a message, unmasked in place inside the DMA buffer (text already
    /// validated as UTF-8 so far). An empty chunk marks a message's start or end where
    /// its frame carried no payload. Return `Some(n)` for the `n` bytes taken (the rest is
    /// offered again later, after [`Event::Writable`] for instance), or `None` to take
    /// nothing now, which holds back even an empty chunk (backpressure: the data stays in
    /// its DMA buffer and TCP's window closes).
    fn on_data(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        data: &mut [u8],
        info: DataInfo,
    ) -> Option<usize> {
        let _ = (ctx, client, info);
        Some(data.len())
    }

    /// Something happened to a client.
    fn on_event(&mut self, ctx: &mut Ctx<'_, '_, '_>, client: ClientId, event: Event<'_>) {
        let _ = (ctx, client, event);
    }

    /// Whether to accept an upgrade to `path`; refused ones get 404.
    fn accept(&mut self, path: &[u8]) -> bool {
        let _ = path;
        true
    }

    /// The page for a plain HTTP GET of `path`; `None` answers 404. A reference, so that
    /// a client owing a page's body holds 4 bytes for it, not the page's two slices.
    fn page(&mut self, path: &[u8]) -> Option<&'static Page> {
        let _ = path;
        None
    }
}

/// Why a send did not go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such client, or it is not connected (or is closing).
    NotConnected,
    /// No room now (TCP window or buffers); [`Event::Writable`] follows.
    WouldBlock,
    /// A control frame payload over 125 bytes, or a close code not allowed on the wire.
    Invalid,
}

/// Service settings.
#[derive(Clone, Copy, Debug)]
pub struct WssConfig {
    /// Clients served at once, 1..=C (Harmony's default is 2).
    pub clients: u8,
    /// A connected client silent this long is closed (0: never). Harmony: 30 s.
    pub idle_timeout_ms: u32,
    /// Ping a client once when it has been silent for half the idle timeout.
    pub ping_before_timeout: bool,
    /// An opening handshake not finished within this is dropped.
    pub handshake_timeout_ms: u32,
    /// A closing handshake not finished within this ends with a reset.
    pub close_timeout_ms: u32,
    /// The opening handshake's limits, origins and subprotocols.
    pub handshake: HandshakeConfig,
}

impl Default for WssConfig {
    fn default() -> Self {
        WssConfig {
            clients: 2,
            idle_timeout_ms: 30_000,
            ping_before_timeout: false,
            handshake_timeout_ms: 5_000,
            close_timeout_ms: 2_000,
            handshake: HandshakeConfig::default(),
        }
    }
}

/// Service counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WssStats {
    /// Upgrades accepted (101).
    pub upgrades: u32,
    /// Handshakes refused with an HTTP error status.
    pub refused: u32,
    /// Connections refused because every client slot was taken (503).
    pub refused_full: u32,
    /// Of those, 503s TCP had no room for (the peer's window was shut): closed bare.
    pub refused_unsent: u32,
    /// Plain HTTP pages served.
    pub pages: u32,
    /// Handshakes dropped for taking too long.
    pub handshake_timeouts: u32,
    /// Connections failed for a protocol error (1002), bad UTF-8 (1007)...
    pub protocol_errors: u32,
    /// Clients closed for being idle.
    pub idle_timeouts: u32,
    /// Closing handshakes that timed out.
    pub close_timeouts: u32,
    /// Pings answered.
    pub pongs_sent: u32,
    /// Data bytes delivered to the application.
    pub rx_bytes: u64,
    /// Data bytes sent.
    pub tx_bytes: u64,
    /// Events with no handler registered (dropped).
    pub events_without_handler: u32,
    /// Received bytes discarded: after the client's Close, after a refusal, on a
    /// connection given up or refused with 503.
    pub rx_discarded: u64,
    /// Responses whose head did not fit `RESPONSE_HEAD_MAX` (a subprotocol name or a
    /// page's content type too long): the connection was dropped.
    pub heads_too_long: u32,
    /// Clients still in the opening handshake with nothing received, closed to make
    /// room for a new connection when every slot was taken (browsers open spare
    /// connections they may never use).
    pub idle_handshakes_preempted: u32,
}

/// A client's receive side: the handshake parser, then the frame receiver.
#[derive(Clone, Debug)]
enum RxState {
    Idle,
    Handshake(RequestParser),
    Frames(Receiver),
}

/// What a client owes the peer when TCP has room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owed {
    Nothing,
    /// The 101 response (the frames that follow wait for it).
    Upgrade,
    /// An HTTP response (error or page): the head, then `sent` bytes of the body so far;
    /// then the connection closes.
    Response {
        status: Status,
        body: Option<&'static Page>,
        head_sent: bool,
        sent: usize,
    },
    /// A Close frame with this code (0: no body).
    Close(u16),
}

/// A client's send side and timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    state: ClientState,
    conn: Option<ConnId>,
    since: Instant,
    last_rx: Instant,
    /// A fragmented message being sent (its kind).
    tx_message: Option<MessageKind>,
    owed: Owed,
    close_sent: bool,
    close_received: bool,
    pinged: bool,
    subprotocol: Option<u8>,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            state: ClientState::Closed,
            conn: None,
            since: Instant(0),
            last_rx: Instant(0),
            tx_message: None,
            owed: Owed::Nothing,
            close_sent: false,
            close_received: false,
            pinged: false,
            subprotocol: None,
        }
    }
}

/// The context of a callback: sends and queries for any client.
pub struct Ctx<'c, 'a, 'm> {
    tcp: &'c mut TcpApi<'a, 'm>,
    slots: &'c mut [Slot],
    stats: &'c mut WssStats,
}

impl Ctx<'_, '_, '_> {
    /// The current time.
    pub fn now(&self) -> Instant {
        self.tcp.now()
    }

    /// A client's state.
    pub fn state(&self, client: ClientId) -> ClientState {
        self.slots
            .get(client.index())
            .map_or(ClientState::Closed, |s| s.state)
    }

    /// The client's address and port.
    pub fn remote(&self, client: ClientId) -> Option<([u8; 4], u16)> {
        let conn = self.slots.get(client.index())?.conn?;
        self.tcp.remote(conn)
    }

    /// The connection of a client that may be sent to, and its slot. `Connected` says
    /// it all: `finish_upgrade` sets it once the 101 is out (nothing owed), and every
    /// path that sends or owes our Close (`close_connection`, the client's Close, `fail`,
    /// the FIN) moves the client to `Closing` with it.
    fn open(&self, client: ClientId) -> Result<(ConnId, &Slot), SendError> {
        let slot = self
            .slots
            .get(client.index())
            .ok_or(SendError::NotConnected)?;
        debug_assert!(
            slot.state != ClientState::Connected
                || (!slot.close_sent && slot.owed == Owed::Nothing)
        );
        match slot.conn {
            Some(conn) if slot.state == ClientState::Connected => Ok((conn, slot)),
            _ => Err(SendError::NotConnected),
        }
    }

    /// Connected clients.
    pub fn connected(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == ClientState::Connected && !s.close_sent)
            .map(|(i, _)| ClientId(i as u8))
    }

    /// Sends `data` as (part of) a message. The first call of a message gives its kind;
    /// `fin` ends the message once all of `data` is out. Returns the bytes sent: fewer
    /// than `data.len()` when TCP has no more room now (the message stays open; send the
    /// rest after [`Event::Writable`]).
    pub fn send_message(
        &mut self,
        client: ClientId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, SendError> {
        let i = client.index();
        let (conn, slot) = self.open(client)?;
        let mut kind_now = slot.tx_message;
        // A small whole message, the usual case, is sent as one frame without asking for
        // the room first: `send_more` offers the frame the room there is, and
        // `write_frame` writes nothing into too little. Only then is the room asked for,
        // to size the frames to it.
        if fin
            && kind_now.is_none()
            && data.len() < 126
            && sent_whole(send_frame(self.tcp, conn, true, kind.opcode(), data, &[]))
        {
            self.stats.tx_bytes += data.len() as u64;
            return Ok(data.len());
        }
        let mut sent = 0;
        let mut frames = 0;
        loop {
            let rest = data.get(sent..).unwrap_or_default();
            if rest.is_empty() && frames > 0 {
                break;
            }
            if rest.is_empty() && !fin && kind_now.is_some() {
                return Ok(0); // nothing to add to an open message
            }
            let room = self.tcp.send_more_capacity(conn);
            // With room for a 126-byte payload behind a 4-byte header, the frame takes
            // what fits behind one; else a frame with a 2-byte header (up to 125 bytes),
            // which is also how any rest under 126 bytes that fits goes.
            let take = if room >= 4 + 126 {
                rest.len().min(room - 4)
            } else {
                rest.len().min(room.saturating_sub(2)).min(125)
            };
            // (Too little room gives `take` 0: only an empty final frame has nothing to take.)
            if take == 0 && (room < 2 || !rest.is_empty()) {
                break;
            }
            let opcode = if kind_now.is_some() {
                Opcode::Continuation
            } else {
                kind.opcode()
            };
            let last = fin && take == rest.len();
            let Some(chunk) = rest.get(..take) else {
                break;
            };
            if !sent_whole(send_frame(self.tcp, conn, last, opcode, chunk, &[])) {
                break;
            }
            sent += take;
            frames += 1;
            kind_now = if last { None } else { Some(kind) };
            if last {
                break;
            }
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.tx_message = kind_now;
        }
        if sent < data.len() || (fin && kind_now.is_some()) {
            // Blocked: TCP tells us (`Event::Writable`) when there is room again.
            self.tcp.want_write(conn);
        }
        if frames == 0 {
            return Err(SendError::WouldBlock);
        }
        self.stats.tx_bytes += sent as u64;
        Ok(sent)
    }

    /// Sends a Ping (payload up to 125 bytes).
    pub fn ping_client(&mut self, client: ClientId, data: &[u8]) -> Result<(), SendError> {
        let (conn, _) = self.open(client)?;
        send_control(self.tcp, conn, Opcode::Ping, &[], data)
    }

    /// Starts the closing handshake with `code` (a code allowed on the wire, §7.4) and a
    /// reason of up to 123 bytes. The TCP connection closes once the client answers, or
    /// after the close timeout.
    pub fn close_connection(
        &mut self,
        client: ClientId,
        code: u16,
        reason: &[u8],
    ) -> Result<(), SendError> {
        if !frame::close_code_valid(code) || reason.len() > 123 {
            return Err(SendError::Invalid);
        }
        let now = self.now();
        let slot = self
            .slots
            .get_mut(client.index())
            .ok_or(SendError::NotConnected)?;
        let conn = slot.conn.ok_or(SendError::NotConnected)?;
        if slot.close_sent || slot.state == ClientState::Closed {
            return Err(SendError::NotConnected);
        }
        debug_assert!(slot.owed != Owed::Upgrade || slot.state == ClientState::Connecting);
        if slot.state == ClientState::Connecting {
            // No WebSocket yet: just drop the TCP connection.
            self.tcp.close(conn);
            slot.state = ClientState::Closing;
            slot.since = now;
            return Ok(());
        }
        slot.state = ClientState::Closing;
        slot.since = now;
        send_close(self.tcp, conn, slot, code, reason);
        Ok(())
    }

    /// Sends a whole message in one frame, or nothing: `WouldBlock` when TCP has no room
    /// for all of it now, or while a fragmented message to this client is open. Messages
    /// longer than one segment's payload (MSS minus the frame header) always block; send
    /// those with [`Ctx::send_message`].
    pub fn send_whole(
        &mut self,
        client: ClientId,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<(), SendError> {
        let (conn, slot) = self.open(client)?;
        if slot.tx_message.is_some()
            || self.tcp.send_more_capacity(conn) < header_len(data.len()) + data.len()
        {
            self.tcp.want_write(conn);
            return Err(SendError::WouldBlock);
        }
        match self.send_message(client, kind, data, true) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(SendError::WouldBlock), // not reached: the room was checked
            Err(e) => Err(e),
        }
    }

    /// Sends a whole message (as [`Ctx::send_whole`]) to every connected client (Harmony's
    /// `clientIndex < 0`). Returns how many clients it reached; the others had no room
    /// (or were mid-message) and did not get it.
    pub fn broadcast(&mut self, kind: MessageKind, data: &[u8]) -> usize {
        let mut n = 0;
        for i in 0..self.slots.len() {
            if self.send_whole(ClientId(i as u8), kind, data).is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// Sends a frame (header, `head`, `tail`) as the next bytes of connection `conn`, whole
/// or not at all; returns what `send_more` does (the frame's length when it went).
fn send_frame(
    tcp: &mut TcpApi<'_, '_>,
    conn: ConnId,
    fin: bool,
    opcode: Opcode,
    head: &[u8],
    tail: &[u8],
) -> Result<usize, TcpSendError> {
    let len = head.len() + tail.len();
    // `move`: the writer holds the frame's fields itself, rather than pointers to them
    // in this function's frame.
    tcp.send_more(conn, header_len(len) + len, move |buf| {
        write_frame(buf, fin, opcode, head, tail)
    })
}

/// Whether `send_frame` sent its frame: it sends all of it or nothing (`write_frame`
/// writes nothing into too little room), so any bytes sent are the whole frame.
fn sent_whole(sent: Result<usize, TcpSendError>) -> bool {
    matches!(sent, Ok(n) if n > 0)
}

/// Writes a frame at the start of `buf`: the header, then `head` and `tail` as its
/// payload. Returns its length, or 0 if it does not fit.
fn write_frame(buf: &mut [u8], fin: bool, opcode: Opcode, head: &[u8], tail: &[u8]) -> usize {
    let len = head.len() + tail.len();
    let Some(h) = frame::encode_header(buf, fin, opcode, len) else {
        return 0;
    };
    let Some((a, rest)) = buf
        .get_mut(h..)
        .and_then(|b| b.split_at_mut_checked(head.len()))
    else {
        return 0;
    };
    let Some(b) = rest.get_mut(..tail.len()) else {
        return 0;
    };
    crate::copy::copy(a, head);
    crate::copy::copy(b, tail);
    h + len
}

/// A control frame (header, `head`, `tail`) in one segment, or `WouldBlock`.
fn send_control(
    tcp: &mut TcpApi<'_, '_>,
    conn: ConnId,
    opcode: Opcode,
    head: &[u8],
    tail: &[u8],
) -> Result<(), SendError> {
    let len = head.len() + tail.len();
    if len > 125 {
        return Err(SendError::Invalid);
    }
    if tcp.send_more_capacity(conn) < 2 + len {
        tcp.want_write(conn);
        return Err(SendError::WouldBlock);
    }
    match send_frame(tcp, conn, true, opcode, head, tail) {
        Err(TcpSendError::NotConnected) => Err(SendError::NotConnected),
        sent if sent_whole(sent) => Ok(()),
        _ => Err(SendError::WouldBlock),
    }
}

/// Sends our Close frame (§5.5.1) with `code` (0: an empty body, §7.1.5) and `reason`;
/// if TCP has no room now, the Close is owed (without its reason) and `pay` sends it.
/// Out of line: the idle timeout's `close_connection` had a second copy inlined (72 bytes).
#[inline(never)]
fn send_close(tcp: &mut TcpApi<'_, '_>, conn: ConnId, slot: &mut Slot, code: u16, reason: &[u8]) {
    let bytes = code.to_be_bytes();
    let head: &[u8] = if code == 0 { &[] } else { &bytes };
    match send_control(tcp, conn, Opcode::Close, head, reason) {
        Ok(()) => {
            slot.close_sent = true;
            slot.owed = Owed::Nothing;
        }
        Err(_) => slot.owed = Owed::Close(code),
    }
}

/// The client table and protocol state of a server for `C` clients.
pub struct WsCore<const C: usize> {
    config: WssConfig,
    rx: [RxState; C],
    slots: [Slot; C],
    stats: WssStats,
    stopping: bool,
    since_stop: Instant,
    stopped: bool,
}

impl<const C: usize> WsCore<C> {
    const VALID: () = assert!(C >= 1 && C <= MAX_CLIENTS, "1..=8 clients");

    fn new(config: WssConfig) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        let mut config = config;
        config.clients = config.clients.clamp(1, C as u8);
        WsCore {
            config,
            rx: [const { RxState::Idle }; C],
            slots: [const { Slot::new() }; C],
            stats: WssStats::default(),
            stopping: false,
            since_stop: Instant(0),
            stopped: false,
        }
    }
}

/// Glue from TCP events to clients, with the handler.
struct Glue<'g, H, const C: usize> {
    core: &'g mut WsCore<C>,
    handler: &'g mut Option<H>,
}

/// The frame receiver's sink for one client.
struct Sink<'s, 'c, 'a, 'm, H> {
    /// Held here, not lent: one pointer fewer to follow to the client table and TCP.
    ctx: Ctx<'c, 'a, 'm>,
    handler: &'s mut Option<H>,
    client: ClientId,
    /// The client's Close is in (or TCP closed, or the connection failed): data is no
    /// longer handed to the application (§5.5.1). Read from the slot once per call of
    /// the receiver: during one, only the Close frame sets it, and the receiver reads
    /// nothing after that.
    after_close: bool,
}

impl<H: Handler> FrameSink for Sink<'_, '_, '_, '_, H> {
    fn data(
        &mut self,
        chunk: &mut [u8],
        kind: MessageKind,
        first: bool,
        last: bool,
    ) -> Option<usize> {
        if self.after_close {
            return Some(chunk.len()); // nothing after the client's Close counts
        }
        let n = match self.handler.as_mut() {
            Some(h) => h
                .on_data(
                    &mut self.ctx,
                    self.client,
                    chunk,
                    DataInfo { kind, first, last },
                )?
                .min(chunk.len()),
            None => {
                self.ctx.stats.events_without_handler += 1;
                chunk.len()
            }
        };
        self.ctx.stats.rx_bytes += n as u64;
        Some(n)
    }

    fn control(&mut self, opcode: Opcode, payload: &[u8]) -> bool {
        let now = self.ctx.now();
        let Some(slot) = self.ctx.slots.get_mut(self.client.index()) else {
            return true;
        };
        let Some(conn) = slot.conn else { return true };
        match opcode {
            Opcode::Ping => {
                if slot.close_sent || slot.close_received {
                    return true;
                }
                // Answer first (§5.5.2), with the same payload; if there is no room, the
                // ping waits, and so does everything after it.
                if send_control(self.ctx.tcp, conn, Opcode::Pong, &[], payload).is_err() {
                    return false;
                }
                self.ctx.stats.pongs_sent += 1;
                emit(
                    self.handler,
                    &mut self.ctx,
                    self.client,
                    Event::Ping(payload),
                );
            }
            Opcode::Pong => emit(
                self.handler,
                &mut self.ctx,
                self.client,
                Event::Pong(payload),
            ),
            Opcode::Close => {
                if slot.close_received {
                    return true;
                }
                let was_connected = slot.state == ClientState::Connected;
                let (code, reason) = frame::close_payload(payload);
                slot.close_received = true;
                slot.state = ClientState::Closing;
                slot.since = now;
                if !slot.close_sent {
                    // Our own Close if one is owed (the app or a timeout decided first),
                    // else the client's status code echoed (§5.5.1); owed if there is no
                    // room for it now.
                    let answer = match slot.owed {
                        Owed::Close(c) => c,
                        _ => code.unwrap_or(0),
                    };
                    send_close(self.ctx.tcp, conn, slot, answer, &[]);
                }
                // Once our Close is out, the closing handshake is complete: TCP is closed
                // and the slot freed after this segment's frames (`finish_if_done`).
                emit(
                    self.handler,
                    &mut self.ctx,
                    self.client,
                    Event::CloseReceived { code, reason },
                );
                if was_connected {
                    emit(self.handler, &mut self.ctx, self.client, Event::Closing);
                }
            }
            _ => {}
        }
        true
    }
}

fn emit<H: Handler>(
    handler: &mut Option<H>,
    ctx: &mut Ctx<'_, '_, '_>,
    client: ClientId,
    event: Event<'_>,
) {
    match handler.as_mut() {
        Some(h) => h.on_event(ctx, client, event),
        None => ctx.stats.events_without_handler += 1,
    }
}

impl<H: Handler, const C: usize> Glue<'_, H, C> {
    fn ctx<'c, 'a, 'm>(
        core: &'c mut WsCore<C>,
        tcp: &'c mut TcpApi<'a, 'm>,
    ) -> (Ctx<'c, 'a, 'm>, &'c mut [RxState], &'c WssConfig) {
        let WsCore {
            config,
            rx,
            slots,
            stats,
            ..
        } = core;
        (Ctx { tcp, slots, stats }, rx, config)
    }

    fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.core.slots.iter().position(|s| s.conn == Some(conn))
    }

    /// Fails a client's connection: Close with `code`, then TCP closes (§7.1.7).
    fn fail(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, code: u16) {
        let (mut ctx, _, _) = Self::ctx(self.core, tcp);
        ctx.stats.protocol_errors += 1;
        let now = ctx.now();
        let Some(slot) = ctx.slots.get_mut(i) else {
            return;
        };
        let Some(conn) = slot.conn else { return };
        let was_closing = slot.close_sent || slot.state == ClientState::Closing;
        if !slot.close_sent {
            // If there is no room, it is owed, and TCP closes after it (`pay`).
            send_close(ctx.tcp, conn, slot, code, &[]);
        }
        // Nothing more is read from this client: TCP closes as soon as our Close is out
        // (§7.1.7), without waiting for the client's.
        slot.close_received = true;
        slot.state = ClientState::Closing;
        slot.since = now;
        let client = ClientId(i as u8);
        emit(
            self.handler,
            &mut ctx,
            client,
            Event::Error(ErrorKind::Protocol(code)),
        );
        if !was_closing {
            emit(self.handler, &mut ctx, client, Event::Closing);
        }
    }

    /// Sends the owed 101; once out, the client is connected and frames begin.
    fn finish_upgrade(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize) {
        let (mut ctx, rx, config) = Self::ctx(self.core, tcp);
        let Some(RxState::Handshake(parser)) = rx.get_mut(i) else {
            return;
        };
        let request = parser.request();
        let proto = request
            .subprotocol
            .and_then(|p| config.handshake.subprotocols.get(p as usize))
            .copied();
        match send_upgrade(&mut ctx, i, request, proto) {
            Head::Sent => {}
            Head::NoRoom => return, // stays owed; retried on Writable and from the timers
            Head::TooLong => {
                give_up(&mut ctx, i);
                return;
            }
        }
        ctx.stats.upgrades += 1;
        let now = ctx.now();
        if let Some(s) = ctx.slots.get_mut(i) {
            s.owed = Owed::Nothing;
            s.state = ClientState::Connected;
            s.last_rx = now;
        }
        // The path is lent from the parser (the handler cannot reach the receive state,
        // so nothing replaces it meanwhile); then frames begin.
        emit(
            self.handler,
            &mut ctx,
            ClientId(i as u8),
            Event::Connected {
                path: &request.path,
                subprotocol: proto,
            },
        );
        if let Some(r) = rx.get_mut(i) {
            *r = RxState::Frames(Receiver::new());
        }
    }

    /// The opening handshake: feeds the parser, answers when the request is complete.
    /// Returns the bytes consumed.
    fn handshake(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, data: &mut [u8]) -> usize {
        let (mut ctx, rx, config) = Self::ctx(self.core, tcp);
        let Some(RxState::Handshake(parser)) = rx.get_mut(i) else {
            return data.len();
        };
        // Every answer but the 101 is an HTTP response, after which nothing more is read
        // from this client (`RxState::Idle` discards it): one tail for them all. A page
        // is looked up only for a complete request (`Refused` never carries 200).
        let (status, page) = match parser.feed(data, &config.handshake) {
            Progress::NeedMore => return data.len(),
            Progress::Refused(status) => (status, None),
            Progress::Complete(used) => {
                let request = parser.request();
                match parser.verdict() {
                    Status::SwitchingProtocols
                        if self
                            .handler
                            .as_mut()
                            .is_none_or(|h| h.accept(&request.path)) =>
                    {
                        if let Some(s) = ctx.slots.get_mut(i) {
                            s.subprotocol = request.subprotocol;
                            s.owed = Owed::Upgrade;
                        }
                        self.finish_upgrade(tcp, i);
                        return used;
                    }
                    Status::SwitchingProtocols => (Status::NotFound, None),
                    Status::Ok => (
                        Status::Ok,
                        self.handler.as_mut().and_then(|h| h.page(&request.path)),
                    ),
                    other => (other, None),
                }
            }
        };
        if let Some(r) = rx.get_mut(i) {
            *r = RxState::Idle;
        }
        // No such page: 404, not an error of the client's handshake.
        let answer = match page {
            None if status == Status::Ok => Status::NotFound,
            _ => status,
        };
        respond(&mut ctx, i, answer, page);
        if status != Status::Ok {
            emit(
                self.handler,
                &mut ctx,
                ClientId(i as u8),
                Event::Error(ErrorKind::Handshake(status)),
            );
        }
        data.len()
    }
}

/// Sends the 101 response to `request`, with the subprotocol chosen: `Head::NoRoom` if
/// TCP has no room now (it stays owed), `Head::TooLong` if it cannot be built.
fn send_upgrade(
    ctx: &mut Ctx<'_, '_, '_>,
    i: usize,
    request: &Request,
    subprotocol: Option<&str>,
) -> Head {
    let Some(conn) = ctx.slots.get(i).and_then(|s| s.conn) else {
        return Head::TooLong;
    };
    if ctx.tcp.send_more_capacity(conn) < MIN_UPGRADE_RESPONSE {
        // Not even the shortest 101 fits: wait, without hashing the key each time.
        ctx.tcp.want_write(conn);
        return Head::NoRoom;
    }
    let Some(key) = request.key else {
        return Head::TooLong;
    };
    let accept = handshake::accept_key(&key);
    send_head(
        ctx.tcp,
        conn,
        Status::SwitchingProtocols,
        Some(&accept),
        subprotocol,
        None,
        0,
    )
}

/// Writes a response head (`handshake::write_response`) straight into a TX buffer,
/// whole in one segment or not at all: no head is built on the stack and copied. It
/// fails for want of room (and asks to be told when there is), or, given
/// `RESPONSE_HEAD_MAX` bytes, because it is too long.
fn send_head(
    tcp: &mut TcpApi<'_, '_>,
    conn: ConnId,
    status: Status,
    accept: Option<&[u8; 28]>,
    subprotocol: Option<&str>,
    content_type: Option<&str>,
    content_length: usize,
) -> Head {
    let mut too_long = false;
    let too_long_flag = &mut too_long;
    // `move`: the writer holds the head's fields itself, not pointers to them.
    let sent = tcp.send_more(conn, RESPONSE_HEAD_MAX, move |buf| {
        let head = handshake::write_response(
            buf,
            status,
            accept,
            subprotocol,
            content_type,
            content_length,
        );
        // Too long is a configuration error; short of room, it waits for more.
        *too_long_flag = head.is_err_and(|needs| needs > RESPONSE_HEAD_MAX);
        head.unwrap_or(0)
    });
    match sent {
        Ok(n) if n > 0 => Head::Sent,
        _ if too_long => Head::TooLong,
        _ => {
            tcp.want_write(conn);
            Head::NoRoom
        }
    }
}

/// Longest response head the service builds (status line and headers); a longer
/// subprotocol name or content type is a configuration error, counted
/// (`WssStats::heads_too_long`) and answered by dropping the connection.
const RESPONSE_HEAD_MAX: usize = 256;

/// The shortest 101 response (no subprotocol).
const MIN_UPGRADE_RESPONSE: usize = 129;

/// Whether a response head went out.
enum Head {
    Sent,
    NoRoom,
    TooLong,
}

/// A response that cannot be built: the connection is dropped (RST), and the slot freed
/// by the closing timeout.
fn give_up(ctx: &mut Ctx<'_, '_, '_>, i: usize) {
    ctx.stats.heads_too_long += 1;
    let now = ctx.now();
    if let Some(s) = ctx.slots.get_mut(i) {
        if let Some(conn) = s.conn {
            ctx.tcp.abort(conn);
        }
        s.owed = Owed::Nothing;
        s.state = ClientState::Closing;
        s.since = now;
    }
}

/// An HTTP response (error or page); then the connection closes.
fn respond(ctx: &mut Ctx<'_, '_, '_>, i: usize, status: Status, page: Option<&'static Page>) {
    if status == Status::Ok {
        ctx.stats.pages += 1;
    } else {
        ctx.stats.refused += 1;
    }
    if let Some(s) = ctx.slots.get_mut(i) {
        s.owed = Owed::Response {
            status,
            body: page,
            head_sent: false,
            sent: 0,
        };
        s.state = ClientState::Connecting;
    }
    pay_response(ctx, i);
}

/// Sends what is owed of an HTTP response as TCP room allows; closes when done.
fn pay_response(ctx: &mut Ctx<'_, '_, '_>, i: usize) {
    let Some(slot) = ctx.slots.get(i) else {
        return;
    };
    let Some(conn) = slot.conn else { return };
    let Owed::Response {
        status,
        body,
        mut head_sent,
        mut sent,
    } = slot.owed
    else {
        return;
    };
    let bytes = body.map_or(&[][..], |p| p.body);
    if !head_sent {
        let ctype = body.map(|p| p.content_type);
        match send_head(ctx.tcp, conn, status, None, None, ctype, bytes.len()) {
            Head::Sent => head_sent = true,
            Head::NoRoom => {}
            Head::TooLong => {
                give_up(ctx, i);
                return;
            }
        }
    }
    while head_sent && sent < bytes.len() {
        let rest = bytes.get(sent..).unwrap_or_default();
        let r = ctx.tcp.send_more(conn, rest.len(), |buf| {
            crate::copy::copy(buf, rest);
            buf.len().min(rest.len())
        });
        match r {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    let done = head_sent && sent >= bytes.len();
    let now = ctx.tcp.now();
    if let Some(s) = ctx.slots.get_mut(i) {
        if done {
            s.owed = Owed::Nothing;
            s.state = ClientState::Closing;
            s.since = now;
        } else if let Owed::Response {
            head_sent: h,
            sent: n,
            ..
        } = &mut s.owed
        {
            // Only the progress changed: the status and body stay where they are.
            (*h, *n) = (head_sent, sent);
        }
    }
    if done {
        ctx.tcp.close(conn);
    }
}

impl<H: Handler, const C: usize> TcpHandler for Glue<'_, H, C> {
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
        let Some(i) = self.slot_of(conn) else {
            // A connection refused with 503, or a client already gone: discarded.
            self.core.stats.rx_discarded += data.len() as u64;
            return data.len();
        };
        let n = match (self.core.rx.get(i), self.core.slots.get(i)) {
            // The usual case first: a connected client's frames. The handshake and the
            // discards are out of line (`data_before_frames`), so this path does not
            // save and restore the registers they use.
            // (A 101 is owed only before frames begin: `finish_upgrade` installs the
            // receiver once it is out.)
            (Some(RxState::Frames(_)), Some(slot)) if !slot.close_received => {
                self.receive(tcp, i, data, false)
            }
            _ => self.data_before_frames(tcp, i, data),
        };
        self.finish_if_done(tcp, i);
        n
    }

    fn on_event(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, event: TcpEvent) {
        if event == TcpEvent::Connected {
            self.connected(tcp, conn);
            return;
        }
        // Every other event is about a client's connection: found once, here.
        let Some(i) = self.slot_of(conn) else {
            if event == TcpEvent::PeerClosed {
                // A connection refused with 503, or a client already gone.
                tcp.close(conn);
            }
            return;
        };
        // Tested one by one: a jump table over the events took more room.
        if event == TcpEvent::Writable {
            self.pay(tcp, i);
            let (mut ctx, _, _) = Self::ctx(self.core, tcp);
            // A connected client owes nothing (`Ctx::open`).
            if ctx.state(ClientId(i as u8)) == ClientState::Connected {
                emit(self.handler, &mut ctx, ClientId(i as u8), Event::Writable);
            }
        } else if event == TcpEvent::PeerClosed {
            // What the receiver holds back (a Close waiting for room to be echoed) goes
            // first: it came before the FIN.
            self.offer_held(tcp, i);
            let now = tcp.now();
            self.peer_closed(tcp, i, conn, now);
            self.finish_if_done_out_of_line(tcp, i);
        } else {
            // Closed, reset or timed out (`Connected` was taken above).
            let error = match event {
                TcpEvent::Reset => Some(ErrorKind::Reset),
                TcpEvent::TimedOut => Some(ErrorKind::TcpTimeout),
                _ => None,
            };
            self.release(tcp, i, error);
        }
    }
}

impl<H: Handler, const C: usize> Glue<'_, H, C> {
    /// The client closed its side of TCP: nothing more comes from it. What is owed still
    /// goes out (a page's body, our Close), then TCP closes.
    fn peer_closed(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, conn: ConnId, now: Instant) {
        let (mut ctx, _, _) = Self::ctx(self.core, tcp);
        let Some(slot) = ctx.slots.get_mut(i) else {
            return;
        };
        if matches!(slot.owed, Owed::Response { .. }) {
            return; // `pay_response` closes once the body is out
        }
        debug_assert!(slot.owed != Owed::Upgrade || slot.state == ClientState::Connecting);
        if slot.state == ClientState::Connecting {
            // No WebSocket yet (a request cut short, or a 101 still owed, which only a
            // client still connecting can be owed): just close.
            slot.owed = Owed::Nothing;
            slot.state = ClientState::Closing;
            slot.since = now;
            ctx.tcp.close(conn);
            return;
        }
        // (A connected client has not sent its Close: that moves it to `Closing`.)
        debug_assert!(slot.state != ClientState::Connected || !slot.close_received);
        let abnormal = slot.state == ClientState::Connected;
        slot.close_received = true;
        if slot.owed == Owed::Nothing {
            slot.close_sent = true; // nothing left to say: `finish_if_done` closes TCP
        }
        slot.state = ClientState::Closing;
        slot.since = now;
        if abnormal {
            // TCP closed without a Close frame: 1006 for the application (§7.1.5).
            let client = ClientId(i as u8);
            emit(
                self.handler,
                &mut ctx,
                client,
                Event::Error(ErrorKind::Abnormal),
            );
            emit(self.handler, &mut ctx, client, Event::Closing);
        }
    }

    /// Frees the slot of the oldest client that has sent nothing at all for
    /// `PREEMPT_IDLE_MS` since it connected (browsers open spare connections they may
    /// never use; with 2 slots, those would turn the page's WebSocket away with 503).
    fn preempt_idle(
        &mut self,
        tcp: &mut TcpApi<'_, '_>,
        served: usize,
        now: Instant,
    ) -> Option<usize> {
        // The oldest candidate (the last of equals); one plain pass, rare enough not to be
        // worth an iterator chain's code.
        let mut oldest: Option<(usize, u32)> = None;
        for (i, (s, r)) in self.core.slots.iter().zip(self.core.rx.iter()).enumerate() {
            let age = now.since(s.since);
            if i < served
                && s.state == ClientState::Connecting
                && s.owed == Owed::Nothing
                && age >= PREEMPT_IDLE_MS
                && matches!(r, RxState::Handshake(p) if p.bytes_seen() == 0)
                && oldest.is_none_or(|(_, a)| age >= a)
            {
                oldest = Some((i, age));
            }
        }
        let (i, _) = oldest?;
        let conn = self.core.slots.get(i)?.conn?;
        tcp.close(conn);
        self.core.stats.idle_handshakes_preempted += 1;
        self.release(tcp, i, Some(ErrorKind::Preempted));
        Some(i)
    }

    /// The client's connection is gone (or given up): its error event, if any, then
    /// its slot freed and `Closed`. Out of line: once per connection, from four places,
    /// `finish_if_done` among them (itself inlined into two), which had copies.
    #[inline(never)]
    fn release(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, error: Option<ErrorKind>) {
        let (mut ctx, rx, _) = Self::ctx(self.core, tcp);
        let client = ClientId(i as u8);
        if let Some(kind) = error {
            emit(self.handler, &mut ctx, client, Event::Error(kind));
        }
        if let (Some(s), Some(r)) = (ctx.slots.get_mut(i), rx.get_mut(i)) {
            *s = Slot::new();
            *r = RxState::Idle;
        }
        emit(self.handler, &mut ctx, client, Event::Closed);
    }

    /// A TCP connection opened: a free slot, or 503.
    fn connected(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId) {
        let now = tcp.now();
        let served = self.core.config.clients as usize;
        let free = if self.core.stopping {
            None
        } else {
            self.core
                .slots
                .iter()
                .take(served)
                .position(|s| s.state == ClientState::Closed)
                .or_else(|| self.preempt_idle(tcp, served, now))
        };
        let Some(i) = free else {
            // Every slot taken: 503 and close (§4.2.1: the server may refuse).
            self.core.stats.refused_full += 1;
            let head = send_head(tcp, conn, Status::ServiceUnavailable, None, None, None, 0);
            if !matches!(head, Head::Sent) {
                self.core.stats.refused_unsent += 1;
            }
            tcp.close(conn);
            return;
        };
        let remote = tcp.remote(conn).unwrap_or_default();
        let (mut ctx, rx, _) = Self::ctx(self.core, tcp);
        if let (Some(s), Some(r)) = (ctx.slots.get_mut(i), rx.get_mut(i)) {
            // The slot is CLOSED, and a CLOSED slot is `Slot::new()` (`release` and the
            // initial table make the only ones): just the connection's own fields are
            // set, not the whole slot rebuilt.
            debug_assert!(*s == Slot::new());
            s.state = ClientState::Connecting;
            s.conn = Some(conn);
            s.since = now;
            s.last_rx = now;
            *r = RxState::Handshake(RequestParser::new());
        }
        emit(
            self.handler,
            &mut ctx,
            ClientId(i as u8),
            Event::Connecting(remote.0, remote.1),
        );
    }

    /// Frames: the receiver, in place.
    fn frames(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, data: &mut [u8]) -> usize {
        let after_close = self.core.slots.get(i).is_some_and(|s| s.close_received);
        self.receive(tcp, i, data, after_close)
    }

    /// What `frames` does, told whether the client's Close is in by a caller that has
    /// the client's slot at hand.
    fn receive(
        &mut self,
        tcp: &mut TcpApi<'_, '_>,
        i: usize,
        data: &mut [u8],
        after_close: bool,
    ) -> usize {
        let (ctx, rx, _) = Self::ctx(self.core, tcp);
        let Some(RxState::Frames(receiver)) = rx.get_mut(i) else {
            return data.len();
        };
        let mut sink = Sink {
            ctx,
            handler: self.handler,
            client: ClientId(i as u8),
            after_close,
        };
        match receiver.process(data, &mut sink) {
            Ok(n) => {
                let ctx = sink.ctx;
                if n > 0 {
                    // The client made progress: it is not idle. Bytes offered again and
                    // still not taken do not count, so a client that stalls its own echo
                    // by not reading is timed out like a silent one.
                    let now = ctx.now();
                    if let Some(s) = ctx.slots.get_mut(i) {
                        s.last_rx = now;
                        s.pinged = false;
                    }
                }
                n
            }
            Err(code) => {
                self.fail(tcp, i, code);
                data.len()
            }
        }
    }

    /// Data from client `i` that `on_data` does not hand to the frame receiver: the
    /// opening handshake (and frames right behind it), frames waiting for the 101
    /// response, or bytes that are discarded.
    #[inline(never)]
    fn data_before_frames(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize, data: &mut [u8]) -> usize {
        let Some(&slot) = self.core.slots.get(i) else {
            return data.len();
        };
        match (self.core.rx.get(i), slot.owed) {
            (_, Owed::Upgrade) => 0, // frames wait until the 101 response is out
            (Some(RxState::Handshake(_)), _) if slot.state == ClientState::Connecting => {
                let used = self.handshake(tcp, i, data);
                if used < data.len()
                    && matches!(self.core.rx.get(i), Some(RxState::Frames(_)))
                    && self
                        .core
                        .slots
                        .get(i)
                        .is_some_and(|s| s.owed == Owed::Nothing)
                {
                    // Frames right behind the request (in the same segment).
                    let rest = data.get_mut(used..).unwrap_or_default();
                    used + self.frames(tcp, i, rest)
                } else {
                    used
                }
            }
            // After a refusal or a page, after the client's Close (nothing after it
            // counts, §5.5.1), or a handshake the application closed: discarded.
            _ => {
                self.core.stats.rx_discarded += data.len() as u64;
                data.len()
            }
        }
    }

    /// Sends what a client owes (101 response, HTTP response, Close frame).
    fn pay(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize) {
        let (mut ctx, rx, config) = Self::ctx(self.core, tcp);
        let Some(&slot) = ctx.slots.get(i) else {
            return;
        };
        // Tested one by one: a jump table over what is owed took more room.
        if let Owed::Close(code) = slot.owed {
            if let (Some(conn), Some(s)) = (slot.conn, ctx.slots.get_mut(i)) {
                send_close(ctx.tcp, conn, s, code, &[]);
            }
        } else if let Owed::Response { .. } = slot.owed {
            pay_response(&mut ctx, i);
        } else if slot.owed == Owed::Upgrade {
            let _ = (rx, config);
            self.finish_upgrade(tcp, i);
        }
        // A control frame (a Ping to answer, a Close to echo) or a message boundary the
        // receiver could not hand over for want of room: its bytes were consumed, so no
        // new input may come to carry it; offer it again now.
        self.offer_held(tcp, i);
        self.finish_if_done_out_of_line(tcp, i);
    }

    /// Offers the receiver again what it holds back (`Receiver::has_pending`), if
    /// anything. Out of line: `pay` and the FIN had a copy each.
    #[inline(never)]
    fn offer_held(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize) {
        if matches!(self.core.rx.get(i), Some(RxState::Frames(r)) if r.has_pending()) {
            self.frames(tcp, i, &mut []);
        }
    }

    /// Once both Close frames are through (or ours after a failure), the server closes
    /// TCP first (§7.1.1) and the client is gone: its slot is free at once, while TCP
    /// finishes the close on its own. Inlined after every segment's data, where the
    /// client's slot is at hand; the other callers share `finish_if_done_out_of_line`.
    #[inline(always)]
    fn finish_if_done(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize) {
        let Some(&slot) = self.core.slots.get(i) else {
            return;
        };
        let Some(conn) = slot.conn else { return };
        // Our Close out leaves nothing owed: `send_close` clears what was owed when it
        // sends it, and the FIN sets `close_sent` only when nothing is owed.
        debug_assert!(!slot.close_sent || slot.owed == Owed::Nothing);
        if !(slot.close_sent && slot.close_received) {
            return;
        }
        tcp.close(conn);
        self.release(tcp, i, None);
    }

    /// `finish_if_done` for the callers off the data path (a FIN, `pay`): one copy
    /// for them both, where each had its own.
    #[inline(never)]
    fn finish_if_done_out_of_line(&mut self, tcp: &mut TcpApi<'_, '_>, i: usize) {
        self.finish_if_done(tcp, i);
    }
}

/// The server: the network stack, the client table and the application.
/// `N` TCP connection slots (at least `C + 1`, so that a full table can still answer
/// 503), `C` clients (1..=8; 2 unless given, as Harmony's `SYS_WSS_MAX_NUM_CLIENTS`).
pub struct Server<'m, H: Handler, const N: usize, const C: usize = 2> {
    net: Interface<'m, N>,
    core: WsCore<C>,
    handler: Option<H>,
}

impl<'m, H: Handler, const N: usize, const C: usize> Server<'m, H, N, C> {
    /// Starts serving on the stack's TCP port (Harmony's `SYS_WSS_Initialize`).
    pub fn initialize(net: Interface<'m, N>, config: WssConfig, handler: Option<H>) -> Self {
        Server {
            net,
            core: WsCore::new(config),
            handler,
        }
    }

    /// Registers (or replaces) the application callback (`SYS_WSS_register_callback`).
    pub fn register_callback(&mut self, handler: H) {
        self.handler = Some(handler);
    }

    /// The registered application.
    pub fn handler(&self) -> Option<&H> {
        self.handler.as_ref()
    }

    /// The registered application, mutably.
    pub fn handler_mut(&mut self) -> Option<&mut H> {
        self.handler.as_mut()
    }

    /// Begins shutting down (`SYS_WSS_Deinitialize`): every client is closed with 1001
    /// (going away), new connections are refused, and once all are gone (or after the
    /// close timeout) the MAC is stopped. Keep polling until [`Server::is_stopped`].
    pub fn deinitialize(&mut self, now: Instant) {
        self.core.stopping = true;
        self.core.since_stop = now;
        self.with_ctx(now, |ctx, _| {
            for i in 0..ctx.slots.len() {
                let client = ClientId(i as u8);
                match ctx.state(client) {
                    ClientState::Connected => {
                        let _ = ctx.close_connection(client, code::GOING_AWAY, b"");
                    }
                    ClientState::Connecting => {
                        let _ = ctx.close_connection(client, code::GOING_AWAY, b"");
                    }
                    _ => {}
                }
            }
        });
    }

    /// Whether [`Server::deinitialize`] has finished and the hardware is quiet.
    pub fn is_stopped(&self) -> bool {
        self.core.stopped
    }

    fn with_ctx<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Ctx<'_, '_, '_>, &mut Option<H>) -> R,
    ) -> R {
        let mut tcp = self.net.tcp(now);
        let WsCore {
            rx: _,
            slots,
            stats,
            ..
        } = &mut self.core;
        let mut ctx = Ctx {
            tcp: &mut tcp,
            slots,
            stats,
        };
        let r = f(&mut ctx, &mut self.handler);
        // Frames are corked into full segments; out they go now.
        tcp.flush();
        r
    }

    /// The Ethernet interrupt (vector 165): frames are handled as they arrive.
    pub fn on_interrupt(&mut self, now: Instant) {
        let mut glue = Glue {
            core: &mut self.core,
            handler: &mut self.handler,
        };
        self.net.on_interrupt(now, &mut glue);
    }

    /// One pass of the superloop (`SYS_WSS_Task`): link, frames the interrupt left,
    /// TCP timers, and the service's timers.
    pub fn poll(&mut self, now: Instant) {
        let mut glue = Glue {
            core: &mut self.core,
            handler: &mut self.handler,
        };
        self.net.poll(now, &mut glue);
        self.timers(now);
    }

    /// Handshake, idle and closing timeouts; owed responses and frames; shutdown.
    fn timers(&mut self, now: Instant) {
        let config = self.core.config;
        let mut tcp = self.net.tcp(now);
        let mut glue = Glue {
            core: &mut self.core,
            handler: &mut self.handler,
        };
        for i in 0..C {
            glue.pay(&mut tcp, i);
            // What the timeouts read of the slot, not a copy of all of it.
            let Some(&Slot {
                conn: Some(conn),
                state,
                since,
                last_rx,
                pinged,
                ..
            }) = glue.core.slots.get(i)
            else {
                continue;
            };
            let client = ClientId(i as u8);
            let stats = &mut glue.core.stats;
            let age = now.since(since);
            let expired = match state {
                ClientState::Connecting if age >= config.handshake_timeout_ms => {
                    Some((&mut stats.handshake_timeouts, ErrorKind::HandshakeTimeout))
                }
                ClientState::Connected if config.idle_timeout_ms > 0 => {
                    let idle = now.since(last_rx);
                    let (mut ctx, _, _) = Glue::<H, C>::ctx(glue.core, &mut tcp);
                    if idle >= config.idle_timeout_ms {
                        ctx.stats.idle_timeouts += 1;
                        emit(glue.handler, &mut ctx, client, Event::Timeout);
                        let _ = ctx.close_connection(client, code::NORMAL, b"idle");
                        emit(glue.handler, &mut ctx, client, Event::Closing);
                    } else if config.ping_before_timeout
                        && !pinged
                        && idle >= config.idle_timeout_ms / 2
                        && ctx.ping_client(client, b"").is_ok()
                        && let Some(s) = ctx.slots.get_mut(i)
                    {
                        s.pinged = true;
                    }
                    None
                }
                ClientState::Closing if age >= config.close_timeout_ms => {
                    Some((&mut stats.close_timeouts, ErrorKind::CloseTimeout))
                }
                _ => None,
            };
            // Either handshake given up: the connection is dropped (RST) and the slot freed.
            if let Some((count, kind)) = expired {
                *count += 1;
                tcp.abort(conn);
                glue.release(&mut tcp, i, Some(kind));
            }
        }
        tcp.flush();
        if self.core.stopping && !self.core.stopped {
            let idle = self
                .core
                .slots
                .iter()
                .all(|s| s.state == ClientState::Closed);
            if idle || now.since(self.core.since_stop) >= config.close_timeout_ms + 500 {
                self.net.mac_mut().stop();
                self.core.stopped = true;
            }
        }
    }

    /// Sends (part of) a message to a client (`SYS_WSS_sendMessage`); see
    /// [`Ctx::send_message`].
    pub fn send_message(
        &mut self,
        now: Instant,
        client: ClientId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<usize, SendError> {
        self.with_ctx(now, |ctx, _| ctx.send_message(client, kind, data, fin))
    }

    /// Sends a whole message to every connected client that has room (`clientIndex < 0`
    /// in Harmony); see [`Ctx::broadcast`].
    pub fn broadcast(&mut self, now: Instant, kind: MessageKind, data: &[u8]) -> usize {
        self.with_ctx(now, |ctx, _| ctx.broadcast(kind, data))
    }

    /// Pings a client (`SYS_WSS_PingClient`).
    pub fn ping_client(
        &mut self,
        now: Instant,
        client: ClientId,
        data: &[u8],
    ) -> Result<(), SendError> {
        self.with_ctx(now, |ctx, _| ctx.ping_client(client, data))
    }

    /// Starts the closing handshake (`SYS_WSS_CloseConnection`).
    pub fn close_connection(
        &mut self,
        now: Instant,
        client: ClientId,
        code: u16,
        reason: &[u8],
    ) -> Result<(), SendError> {
        self.with_ctx(now, |ctx, _| ctx.close_connection(client, code, reason))
    }

    /// A client's state.
    pub fn client_state(&self, client: ClientId) -> ClientState {
        self.core
            .slots
            .get(client.index())
            .map_or(ClientState::Closed, |s| s.state)
    }

    /// Every client slot and its state.
    pub fn clients(&self) -> impl Iterator<Item = (ClientId, ClientState)> + '_ {
        self.core
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (ClientId(i as u8), s.state))
    }

    /// The client's TCP peer address.
    pub fn client_remote(&mut self, now: Instant, client: ClientId) -> Option<([u8; 4], u16)> {
        self.with_ctx(now, |ctx, _| ctx.remote(client))
    }

    /// Service counters.
    pub fn stats(&self) -> &WssStats {
        &self.core.stats
    }

    /// The network stack.
    pub fn net(&self) -> &Interface<'m, N> {
        &self.net
    }

    /// The network stack, mutably.
    pub fn net_mut(&mut self) -> &mut Interface<'m, N> {
        &mut self.net
    }

    /// The MAC driver.
    pub fn mac(&self) -> &Mac<'m> {
        self.net.mac()
    }
}
