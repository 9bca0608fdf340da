//! WebSocket clients on the simulated wire: tungstenite (not ours) speaking over smoltcp
//! TCP sockets (not ours either) in the testbed's virtual time, and a raw HTTP client for
//! the requests tungstenite would never send.
#![allow(dead_code)]

use mzw1_sim::peer::{SocketHandle, TcpState};
use mzw1_sim::{Board, BoardConfig, Firmware, PeerHost, Testbed, Wire, WireConfig};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use tungstenite::handshake::MidHandshake;
use tungstenite::handshake::client::{ClientHandshake, Request, Response};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{ClientRequestBuilder, HandshakeError, Message, WebSocket};

pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0x00, 0x53, 0x10];
pub const PEER_IP: [u8; 4] = [192, 168, 7, 1];
pub const BOARD_IP: [u8; 4] = mzw1_reference::DEFAULT_IP.address;
pub const SECOND: u64 = 1_000_000_000;

/// A testbed with the firmware `boot` builds and a smoltcp host as the peer.
pub fn testbed<F: Firmware>(boot: impl FnOnce(&mut Board) -> F) -> Testbed<F> {
    let mut board = Board::new(BoardConfig::default());
    let fw = boot(&mut board);
    let peer = PeerHost::new(PEER_MAC, PEER_IP, 24);
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), peer);
    // Link up (auto-negotiation) before the first client.
    tb.run_for(3 * SECOND);
    tb
}

/// Bytes between a smoltcp socket and tungstenite.
#[derive(Default)]
struct Pipe {
    inbox: VecDeque<u8>,
    outbox: Vec<u8>,
    eof: bool,
}

/// tungstenite's stream: non-blocking, fed by [`WsClient::pump`].
#[derive(Clone, Default)]
pub struct PipeStream(Rc<RefCell<Pipe>>);

impl Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        if p.inbox.is_empty() {
            return if p.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(p.inbox.len());
        for (d, s) in buf.iter_mut().zip(p.inbox.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

impl Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().outbox.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Moves bytes between a smoltcp socket and a pipe; returns whether any moved.
fn move_bytes(peer: &mut PeerHost, h: SocketHandle, pipe: &PipeStream) -> bool {
    let mut p = pipe.0.borrow_mut();
    let mut moved = false;
    if !p.outbox.is_empty() {
        let n = peer.tcp_send(h, &p.outbox);
        p.outbox.drain(..n);
        moved |= n > 0;
    }
    let mut got = Vec::new();
    if peer.tcp_recv(h, &mut got) > 0 {
        p.inbox.extend(got);
        moved = true;
    }
    let state = peer.tcp_state(h);
    if matches!(
        state,
        TcpState::Closed | TcpState::CloseWait | TcpState::LastAck | TcpState::TimeWait
    ) {
        p.eof = true;
    }
    moved
}

enum Phase {
    Handshake(Option<MidHandshake<ClientHandshake<PipeStream>>>),
    Open(Box<WebSocket<PipeStream>>),
    /// The server answered the upgrade with something other than 101.
    Refused(tungstenite::http::Response<Option<Vec<u8>>>),
    /// The connection ended; why.
    Over(String),
}

/// A tungstenite client on a smoltcp socket.
pub struct WsClient {
    pub h: SocketHandle,
    pipe: PipeStream,
    phase: Phase,
    /// Messages to write (kept while tungstenite's buffer is full).
    outgoing: VecDeque<Message>,
    /// Messages received (pings and pongs included; the close frame separately).
    pub received: Vec<Message>,
    /// The server's Close frame, once it came (`Some(None)`: an empty one).
    pub close: Option<Option<CloseFrame>>,
    /// The 101 response.
    pub response: Option<Response>,
}

impl WsClient {
    /// Opens a WebSocket to the board's `path`.
    pub fn connect<F: Firmware>(tb: &mut Testbed<F>, path: &str) -> WsClient {
        let uri: tungstenite::http::Uri = format!("ws://192.168.7.2{path}").parse().unwrap();
        WsClient::connect_request(tb, ClientRequestBuilder::new(uri))
    }

    /// Opens a WebSocket with a request of the caller's making (headers, subprotocols).
    pub fn connect_request<F: Firmware>(
        tb: &mut Testbed<F>,
        request: impl tungstenite::client::IntoClientRequest,
    ) -> WsClient {
        WsClient::connect_request_on(&mut tb.peer, request)
    }

    /// Opens a WebSocket to the board's `path` from `peer`, a smoltcp host that may sit
    /// inside another station (a testbed whose peer wraps it).
    pub fn connect_on(peer: &mut PeerHost, path: &str) -> WsClient {
        let uri: tungstenite::http::Uri = format!("ws://192.168.7.2{path}").parse().unwrap();
        WsClient::connect_request_on(peer, ClientRequestBuilder::new(uri))
    }

    /// [`WsClient::connect_request`] from `peer`.
    pub fn connect_request_on(
        peer: &mut PeerHost,
        request: impl tungstenite::client::IntoClientRequest,
    ) -> WsClient {
        let request: Request = request.into_client_request().expect("request");
        let h = peer.tcp_connect((BOARD_IP, 80), 256 * 1024, 256 * 1024);
        let pipe = PipeStream::default();
        let config = WebSocketConfig::default().max_write_buffer_size(64 << 20);
        let phase =
            match tungstenite::client::client_with_config(request, pipe.clone(), Some(config)) {
                Ok((ws, r)) => {
                    let mut c = WsClient::empty(h, pipe.clone());
                    c.response = Some(r);
                    c.phase = Phase::Open(Box::new(ws));
                    return c;
                }
                Err(HandshakeError::Interrupted(mid)) => Phase::Handshake(Some(mid)),
                Err(HandshakeError::Failure(e)) => Phase::Over(format!("handshake: {e}")),
            };
        let mut c = WsClient::empty(h, pipe);
        c.phase = phase;
        c
    }

    fn empty(h: SocketHandle, pipe: PipeStream) -> WsClient {
        WsClient {
            h,
            pipe,
            phase: Phase::Over(String::new()),
            outgoing: VecDeque::new(),
            received: Vec::new(),
            close: None,
            response: None,
        }
    }

    /// Moves bytes and drives tungstenite; call it from the testbed's loop.
    pub fn pump(&mut self, peer: &mut PeerHost) {
        for _ in 0..64 {
            let moved = move_bytes(peer, self.h, &self.pipe);
            let progressed = self.drive();
            if !moved && !progressed {
                break;
            }
        }
    }

    fn drive(&mut self) -> bool {
        let mut progressed = false;
        if let Phase::Handshake(mid) = &mut self.phase {
            let Some(m) = mid.take() else { return false };
            self.phase = match m.handshake() {
                Ok((ws, r)) => {
                    self.response = Some(r);
                    progressed = true;
                    Phase::Open(Box::new(ws))
                }
                Err(HandshakeError::Interrupted(m)) => Phase::Handshake(Some(m)),
                Err(HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                    progressed = true;
                    Phase::Refused(*r)
                }
                Err(HandshakeError::Failure(e)) => Phase::Over(format!("handshake: {e}")),
            };
        }
        let Phase::Open(ws) = &mut self.phase else {
            return progressed;
        };
        while let Some(m) = self.outgoing.pop_front() {
            match ws.write(m) {
                Ok(()) => progressed = true,
                Err(tungstenite::Error::WriteBufferFull(m)) => {
                    self.outgoing.push_front(*m);
                    break;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    progressed = true
                }
                Err(e) => {
                    self.phase = Phase::Over(format!("write: {e}"));
                    return true;
                }
            }
        }
        let _ = ws.flush();
        loop {
            match ws.read() {
                Ok(Message::Close(f)) => {
                    self.close = Some(f);
                    progressed = true;
                }
                Ok(m) => {
                    self.received.push(m);
                    progressed = true;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.phase = Phase::Over(format!("{e}"));
                    return true;
                }
            }
        }
        let _ = ws.flush();
        progressed
    }

    /// Queues a message.
    pub fn send(&mut self, m: Message) {
        self.outgoing.push_back(m);
    }

    /// Starts the closing handshake.
    pub fn close(&mut self, frame: Option<CloseFrame>) {
        if let Phase::Open(ws) = &mut self.phase {
            let _ = ws.close(frame);
            let _ = ws.flush();
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_)) && self.close.is_none()
    }

    pub fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Handshake(_))
    }

    /// The refusal's status, if the upgrade was refused.
    pub fn refused(&self) -> Option<u16> {
        match &self.phase {
            Phase::Refused(r) => Some(r.status().as_u16()),
            _ => None,
        }
    }

    /// Why the connection is over, if it is.
    pub fn over(&self) -> Option<&str> {
        match &self.phase {
            Phase::Over(why) => Some(why),
            _ => None,
        }
    }

    /// The data messages received so far, and forgets them.
    pub fn take_data(&mut self) -> Vec<Message> {
        let (data, other): (Vec<_>, Vec<_>) = self
            .received
            .drain(..)
            .partition(|m| matches!(m, Message::Text(_) | Message::Binary(_)));
        self.received = other;
        data
    }

    /// The TCP socket's state.
    pub fn tcp_state(&self, peer: &PeerHost) -> TcpState {
        peer.tcp_state(self.h)
    }
}

/// Pumps every client until `cond` or the limit (virtual nanoseconds).
pub fn run_clients<F: Firmware>(
    tb: &mut Testbed<F>,
    clients: &mut [&mut WsClient],
    mut cond: impl FnMut(&mut Testbed<F>, &mut [&mut WsClient]) -> bool,
    limit_ns: u64,
) -> bool {
    tb.run_until(
        |tb| {
            for c in clients.iter_mut() {
                c.pump(&mut tb.peer);
            }
            cond(tb, clients)
        },
        limit_ns,
    )
}

/// Raw bytes over smoltcp: requests tungstenite would never send.
pub struct RawClient {
    pub h: SocketHandle,
    pub got: Vec<u8>,
    pub out: Vec<u8>,
}

impl RawClient {
    pub fn connect<F: Firmware>(tb: &mut Testbed<F>) -> RawClient {
        RawClient::connect_on(&mut tb.peer)
    }

    /// [`RawClient::connect`] from `peer`, a smoltcp host that may sit inside another
    /// station.
    pub fn connect_on(peer: &mut PeerHost) -> RawClient {
        let h = peer.tcp_connect((BOARD_IP, 80), 64 * 1024, 64 * 1024);
        RawClient {
            h,
            got: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn pump(&mut self, peer: &mut PeerHost) {
        if !self.out.is_empty() {
            let n = peer.tcp_send(self.h, &self.out);
            self.out.drain(..n);
        }
        peer.tcp_recv(self.h, &mut self.got);
    }

    /// Whether the server closed its side (FIN received).
    pub fn server_closed(&self, peer: &PeerHost) -> bool {
        matches!(
            peer.tcp_state(self.h),
            TcpState::CloseWait | TcpState::LastAck | TcpState::Closed | TcpState::TimeWait
        )
    }

    /// Sends `bytes`, then runs until the server closes; returns everything it sent.
    pub fn exchange<F: Firmware>(
        tb: &mut Testbed<F>,
        bytes: &[u8],
        limit_ns: u64,
    ) -> (Vec<u8>, bool) {
        let mut c = RawClient::connect(tb);
        c.send(bytes);
        let closed = tb.run_until(
            |tb| {
                c.pump(&mut tb.peer);
                c.server_closed(&tb.peer) && c.out.is_empty()
            },
            limit_ns,
        );
        c.pump(&mut tb.peer);
        tb.peer.tcp_close(c.h);
        (c.got, closed)
    }
}

/// A masked client frame, built here (independently of the firmware's encoder).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![((fin as u8) << 7) | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A valid upgrade request for `path` with extra header lines.
pub fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 192.168.7.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Server frames parsed out of a byte stream after the 101 response: (fin, opcode,
/// payload). Panics on a masked server frame (RFC 6455 §5.1).
pub fn server_frames(mut b: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    if let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") {
        b = &b[end + 4..];
    }
    let mut out = Vec::new();
    while b.len() >= 2 {
        let fin = b[0] & 0x80 != 0;
        let op = b[0] & 0x0F;
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, at) = match b[1] & 0x7F {
            126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            break;
        }
        out.push((fin, op, b[at..at + len].to_vec()));
        b = &b[at + len..];
    }
    out
}
