//! The peer's WebSocket echo server: smoltcp 0.14 for TCP/IP and embedded-websocket
//! 0.9.5 (no_std, `default-features = false`) for the opening handshake and the framing,
//! on the mzw1-wss MAC driver ([`MacDevice`]). No allocation: every buffer is static.
//!
//! embedded-websocket is used as its server example (`examples/server.rs`) and its
//! `Framer` use it. The `Framer` itself cannot run here (it blocks on a stream until a
//! whole frame is in), so its steps are done on smoltcp's socket buffers, as an
//! interrupt-driven smoltcp firmware would:
//! - the request head is parsed with `httparse` (16 headers, as the example) straight in
//!   the socket's receive buffer and handed to `read_http_header`; `server_accept`
//!   writes the 101 response into the write buffer (`Framer::accept`), queued with
//!   `send_slice`;
//! - `WebSocket::read` reads frames from the socket's receive buffer in place (`recv`
//!   lends it) into the connection's frame buffer, unmasking on the way; a whole text
//!   message is checked as UTF-8 with `core::str::from_utf8`, as `Framer::read` does;
//!   the message is echoed by `WebSocket::write` straight into the socket's send buffer
//!   (`send` lends it; through the write buffer when its free space wraps around);
//! - a Ping is answered with a Pong, a Close with a Close reply and the TCP close, as
//!   `Framer::read` does; messages longer than the frame buffer are refused (1009).
//!
//! Unlike `mzw1_wss::ws`, embedded-websocket checks only `Upgrade: websocket` and reads
//! the `Sec-WebSocket-Key` (not the method, version, `Host`, `Connection`, nor the key's
//! length), and sends no frame before the whole message is in.

use crate::device::MacDevice;
use embedded_websocket::{
    self as ews, WebSocketCloseStatusCode as CloseCode, WebSocketReceiveMessageType as RxKind,
    WebSocketSendMessageType as TxKind, WebSocketServer,
};
use mzw1_wss::mac::Mac;
use mzw1_wss::time::Instant;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

/// The listening port.
pub const PORT: u16 = 80;
/// TCP sockets, each listening for a client: as many clients as the reference serves
/// (2), and one more listening meanwhile.
pub const SOCKETS: usize = 3;
/// Bytes of each socket's receive and send buffer.
pub const SOCKET_BUFFER: usize = 4096;
/// Bytes of a connection's frame buffer: the longest message (a message must be whole
/// before it is echoed, as with `Framer::read`).
pub const FRAME_BUFFER: usize = 2048;
/// The write buffer: a whole message and the longest frame header.
const WRITE_BUFFER: usize = FRAME_BUFFER + 14;
/// The random seed smoltcp draws its ISNs and ephemeral ports from.
const RANDOM_SEED: u64 = 0x6D7A_7731;

/// The sockets' slots, for a `static` of their own (not all zero bytes, so in `.data`).
pub type Sockets = [SocketStorage<'static>; SOCKETS];

/// The sockets' slots, empty.
pub const SOCKETS_EMPTY: Sockets = [SocketStorage::EMPTY; SOCKETS];

/// The server's buffers (all zero: `.bss`, no flash copy).
pub struct Buffers {
    rx: [[u8; SOCKET_BUFFER]; SOCKETS],
    tx: [[u8; SOCKET_BUFFER]; SOCKETS],
    frames: [[u8; FRAME_BUFFER]; SOCKETS],
    write: [u8; WRITE_BUFFER],
}

impl Buffers {
    /// Zeroed buffers, for a `static`.
    pub const fn new() -> Buffers {
        Buffers {
            rx: [[0; SOCKET_BUFFER]; SOCKETS],
            tx: [[0; SOCKET_BUFFER]; SOCKETS],
            frames: [[0; FRAME_BUFFER]; SOCKETS],
            write: [0; WRITE_BUFFER],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the upgrade request.
    Http,
    /// WebSocket open.
    Open,
    /// Closing: nothing more is read.
    Closing,
}

/// A connection's WebSocket state.
struct Conn {
    phase: Phase,
    ws: WebSocketServer,
    /// Bytes of the current message in the frame buffer.
    len: usize,
    /// Whether the current message is text.
    text: bool,
    /// The message in the frame buffer is whole and waits for room to be echoed.
    owed: bool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            phase: Phase::Http,
            ws: WebSocketServer::new_server(),
            len: 0,
            text: false,
            owed: false,
        }
    }
}

/// What the peer counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Upgrades answered with 101.
    pub upgrades: u32,
    /// Messages echoed.
    pub echoed: u32,
    /// Connections failed (bad request, protocol error, bad UTF-8, too long).
    pub failed: u32,
}

/// The WebSocket echo server.
pub struct WsServer {
    iface: Interface,
    sockets: SocketSet<'static>,
    /// The device (the MAC driver in it).
    pub dev: MacDevice,
    handles: [SocketHandle; SOCKETS],
    conns: [Conn; SOCKETS],
    frames: &'static mut [[u8; FRAME_BUFFER]; SOCKETS],
    write: &'static mut [u8; WRITE_BUFFER],
    /// Counters.
    pub stats: Stats,
}

fn smol(now: Instant) -> SmolInstant {
    SmolInstant::from_millis(now.millis() as i64)
}

impl WsServer {
    /// The server on `mac` (station address `mac_address`), at `ip`/24, listening on
    /// [`PORT`].
    pub fn new(
        mac: Mac<'static>,
        mac_address: [u8; 6],
        ip: [u8; 4],
        storage: &'static mut Sockets,
        buffers: &'static mut Buffers,
        now: Instant,
    ) -> Self {
        let mut dev = MacDevice::new(mac);
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac_address)));
        cfg.random_seed = RANDOM_SEED;
        let mut iface = Interface::new(cfg, &mut dev, smol(now));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24));
        });
        let Buffers {
            rx,
            tx,
            frames,
            write,
        } = buffers;
        let mut sockets = SocketSet::new(&mut storage[..]);
        let mut handles = [SocketHandle::default(); SOCKETS];
        for ((h, rx), tx) in handles.iter_mut().zip(rx.iter_mut()).zip(tx.iter_mut()) {
            let mut s = tcp::Socket::new(
                tcp::SocketBuffer::new(&mut rx[..]),
                tcp::SocketBuffer::new(&mut tx[..]),
            );
            let _ = s.listen(PORT);
            *h = sockets.add(s);
        }
        WsServer {
            iface,
            sockets,
            dev,
            handles,
            conns: core::array::from_fn(|_| Conn::new()),
            frames,
            write,
            stats: Stats::default(),
        }
    }

    /// One wake-up (the interrupt, or a pass of the superloop): smoltcp's ingress and
    /// egress, the WebSocket work of every connection, and egress again if it queued
    /// anything.
    pub fn service(&mut self, now: Instant) {
        let ts = smol(now);
        self.iface.poll(ts, &mut self.dev, &mut self.sockets);
        let mut queued = false;
        for ((&h, conn), frame) in self
            .handles
            .iter()
            .zip(self.conns.iter_mut())
            .zip(self.frames.iter_mut())
        {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            queued |= serve(s, conn, frame, &mut self.write[..], &mut self.stats);
        }
        if queued {
            self.iface.poll_egress(ts, &mut self.dev, &mut self.sockets);
        }
    }
}

/// One connection's work; true if anything was queued to send.
fn serve(
    s: &mut tcp::Socket<'_>,
    c: &mut Conn,
    frame: &mut [u8; FRAME_BUFFER],
    write: &mut [u8],
    stats: &mut Stats,
) -> bool {
    if !s.is_open() {
        // Closed: a fresh WebSocket, and listen again.
        *c = Conn::new();
        let _ = s.listen(PORT);
        return false;
    }
    if s.state() == tcp::State::CloseWait {
        // The client closed TCP: close our side too.
        s.close();
        c.phase = Phase::Closing;
        return false;
    }
    let mut queued = false;
    if c.phase == Phase::Http {
        queued |= handshake(s, c, write, stats);
    }
    if c.phase == Phase::Open {
        queued |= frames(s, c, frame, write, stats);
    }
    queued
}

/// What the request head said.
enum Head {
    /// Not all in yet.
    Partial,
    /// An upgrade request, with its key.
    Upgrade(ews::WebSocketKey),
    /// Not an upgrade request, or not HTTP.
    Refused,
}

/// The opening handshake; true if the response was queued.
fn handshake(s: &mut tcp::Socket<'_>, c: &mut Conn, write: &mut [u8], stats: &mut Stats) -> bool {
    let head = s.recv(|buf| {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers = request.headers.iter().map(|h| (h.name, h.value));
                match ews::read_http_header(headers) {
                    Ok(Some(context)) => (n, Head::Upgrade(context.sec_websocket_key)),
                    _ => (n, Head::Refused),
                }
            }
            Ok(httparse::Status::Partial) => (0, Head::Partial),
            Err(_) => (buf.len(), Head::Refused),
        }
    });
    match head {
        Ok(Head::Upgrade(key)) => match c.ws.server_accept(&key, None, write) {
            Ok(n) if send_all(s, write.get(..n).unwrap_or_default()) => {
                stats.upgrades += 1;
                c.phase = Phase::Open;
                true
            }
            _ => fail(s, c, stats),
        },
        Ok(Head::Refused) => {
            stats.failed += 1;
            let _ = s.send_slice(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            s.close();
            c.phase = Phase::Closing;
            true
        }
        // A head split by the end of the ring, or larger than the buffer: not served.
        Ok(Head::Partial) if s.recv_queue() >= s.recv_capacity() => fail(s, c, stats),
        Ok(Head::Partial) | Err(_) => false,
    }
}

/// Resets a connection that cannot go on.
fn fail(s: &mut tcp::Socket<'_>, c: &mut Conn, stats: &mut Stats) -> bool {
    stats.failed += 1;
    s.abort();
    c.phase = Phase::Closing;
    true
}

/// Queues `bytes` whole, or nothing.
fn send_all(s: &mut tcp::Socket<'_>, bytes: &[u8]) -> bool {
    s.send_capacity() - s.send_queue() >= bytes.len() && s.send_slice(bytes) == Ok(bytes.len())
}

/// What one `WebSocket::read` on the receive buffer gave.
enum Step {
    /// Nothing to read.
    Wait,
    /// A frame's header is not all in the lent slice, which holds this many bytes.
    Incomplete(usize),
    /// Payload (or a control frame) read.
    Read(ews::WebSocketReadResult),
    /// A protocol error.
    Fail,
}

/// Reads and echoes frames; true if anything was queued.
fn frames(
    s: &mut tcp::Socket<'_>,
    c: &mut Conn,
    frame: &mut [u8; FRAME_BUFFER],
    write: &mut [u8],
    stats: &mut Stats,
) -> bool {
    let mut queued = false;
    loop {
        if c.owed {
            let kind = if c.text { TxKind::Text } else { TxKind::Binary };
            if !send_frame(
                s,
                &mut c.ws,
                kind,
                frame.get(..c.len).unwrap_or_default(),
                write,
            ) {
                return queued; // no room: nothing more is read (backpressure)
            }
            stats.echoed += 1;
            queued = true;
            c.owed = false;
            c.len = 0;
        }
        if c.len >= FRAME_BUFFER {
            return close(s, c, CloseCode::MessageTooBig, write, stats);
        }
        let (ws, len) = (&mut c.ws, c.len);
        let to = frame.get_mut(len..).unwrap_or_default();
        let step = s.recv(|buf| {
            if buf.is_empty() {
                return (0, Step::Wait);
            }
            match ws.read(buf, to) {
                Ok(r) => (r.len_from, Step::Read(r)),
                Err(ews::Error::ReadFrameIncomplete) => (0, Step::Incomplete(buf.len())),
                Err(_) => (0, Step::Fail),
            }
        });
        let r = match step {
            Ok(Step::Read(r)) => r,
            Ok(Step::Incomplete(lent)) if lent < s.recv_queue() => {
                // The header runs past the end of the ring: read it from a copy, then
                // drop what was read.
                let mut head = [0u8; 14];
                let n = s.peek_slice(&mut head).unwrap_or(0);
                let to = frame.get_mut(len..).unwrap_or_default();
                match c.ws.read(head.get(..n).unwrap_or_default(), to) {
                    Ok(r) => {
                        let _ = s.recv_slice(head.get_mut(..r.len_from).unwrap_or_default());
                        r
                    }
                    Err(ews::Error::ReadFrameIncomplete) => return queued,
                    Err(_) => return close(s, c, CloseCode::ProtocolError, write, stats),
                }
            }
            Ok(Step::Fail) => return close(s, c, CloseCode::ProtocolError, write, stats),
            Ok(Step::Wait | Step::Incomplete(_)) | Err(_) => return queued,
        };
        match r.message_type {
            RxKind::Text | RxKind::Binary => {
                c.len += r.len_to;
                c.text = r.message_type == RxKind::Text;
                if r.end_of_message {
                    let whole = frame.get(..c.len).unwrap_or_default();
                    if c.text && core::str::from_utf8(whole).is_err() {
                        return close(s, c, CloseCode::InvalidPayloadData, write, stats);
                    }
                    c.owed = true;
                }
            }
            RxKind::Ping => {
                let payload = frame.get(len..len + r.len_to).unwrap_or_default();
                queued |= send_control(s, &mut c.ws, TxKind::Pong, payload, write);
            }
            RxKind::Pong => {}
            RxKind::CloseMustReply => {
                let payload = frame.get(len..len + r.len_to).unwrap_or_default();
                send_control(s, &mut c.ws, TxKind::CloseReply, payload, write);
                s.close();
                c.phase = Phase::Closing;
                return true;
            }
            RxKind::CloseCompleted => {
                s.close();
                c.phase = Phase::Closing;
                return true;
            }
        }
    }
}

/// The frame header's length for a payload of `len` bytes.
fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFE => 4,
        _ => 10,
    }
}

/// Writes a data frame with `payload` straight into the socket's send buffer (through
/// the write buffer when the free space wraps around the ring); false if the socket has
/// no room for the whole frame.
fn send_frame(
    s: &mut tcp::Socket<'_>,
    ws: &mut WebSocketServer,
    kind: TxKind,
    payload: &[u8],
    write: &mut [u8],
) -> bool {
    if s.send_capacity() - s.send_queue() < header_len(payload.len()) + payload.len() {
        return false;
    }
    let direct = s.send(|buf| match ws.write(kind, true, payload, buf) {
        Ok(n) => (n, true),
        Err(_) => (0, false),
    });
    match direct {
        Ok(true) => true,
        Ok(false) => send_control(s, ws, kind, payload, write),
        Err(_) => false,
    }
}

/// Writes a frame into the write buffer and queues it whole; false if there was no room.
fn send_control(
    s: &mut tcp::Socket<'_>,
    ws: &mut WebSocketServer,
    kind: TxKind,
    payload: &[u8],
    write: &mut [u8],
) -> bool {
    if s.send_capacity() - s.send_queue() < header_len(payload.len()) + payload.len() {
        return false;
    }
    match ws.write(kind, true, payload, write) {
        Ok(n) => send_all(s, write.get(..n).unwrap_or_default()),
        Err(_) => false,
    }
}

/// Fails the connection with a Close frame, then closes TCP.
fn close(
    s: &mut tcp::Socket<'_>,
    c: &mut Conn,
    code: CloseCode,
    write: &mut [u8],
    stats: &mut Stats,
) -> bool {
    stats.failed += 1;
    if let Ok(n) = c.ws.close(code, None, write) {
        send_all(s, write.get(..n).unwrap_or_default());
    }
    s.close();
    c.phase = Phase::Closing;
    true
}
