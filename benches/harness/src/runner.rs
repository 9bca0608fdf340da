//! The TCP and WebSocket benchmarks, run the same way against every stack: the TCP echo
//! and the reference app's WebSocket service on `mzw1-wss`, and the peers.
//!
//! Each measured region is one frame: the stand-in controller writes it into an RX
//! descriptor and raises the interrupt, then vector 165 runs under the brackets, from
//! entry to `eret`. By then the reply must be in a TX descriptor with EOWN set: the
//! stand-in completes it afterwards and the client checks it. Every case runs twice,
//! and the second run is the figure (the first is reported with `.warmup`).
//!
//! To add a benchmark: open a connection with [`TcpBench::connect`] (or
//! [`TcpBench::ws_connect`]), then call [`TcpBench::exchange`] with the request bytes and
//! the region's name, and check the reply it returns; list the name in
//! `xtask/src/bench.rs`.
//!
//! On the host (`cargo bench --bench host`, instructions counted by callgrind) the same
//! steps run with the stack's interrupt handler called directly and nothing measured
//! here: a host benchmark sets the connection up with these steps, then takes one step
//! apart (the `send_*` half, the interrupt, [`TcpBench::after_interrupt`] and the
//! check half), so that callgrind counts the interrupt alone.
use crate::board::{Board, Capture};
use crate::client::{Endpoint, TcpClient, arp_request, parse_arp_reply};
#[cfg(target_os = "none")]
use crate::rt::{self, report, vector_165, vector_165_quiet};
use crate::ws::{self, TEXT, UpgradeKey};
use crate::{BenchError, advance};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// The stack under test, as the harness drives it outside the interrupt.
#[derive(Clone, Copy)]
pub struct Stack {
    /// One pass of the superloop (link, timers, TX completions).
    pub poll: fn(),
    /// Whether the MAC reports the link up.
    pub link_up: fn() -> bool,
    /// What vector 165 calls (the firmware's `mzw1_eth_interrupt`). Only on the host:
    /// on the target the harness enters the vector itself, which calls it by name.
    #[cfg(not(target_os = "none"))]
    pub interrupt: fn(),
}

/// The client's station.
pub const CLIENT: Endpoint = Endpoint {
    mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x0A],
    ip: [192, 168, 7, 10],
};

/// The server's port.
pub const PORT: u16 = 80;

/// The longest text message [`TcpBench::ws_echo`] sends (one frame in one segment).
pub const MAX_TEXT: usize = 1400;

/// A WebSocket client of [`TcpBench::run_ws`]: its port, initial sequence number and
/// upgrade key.
#[derive(Clone, Copy, Debug)]
pub struct WsClient {
    /// The client's port.
    pub port: u16,
    /// Its initial sequence number.
    pub isn: u32,
    /// Its `Sec-WebSocket-Key`.
    pub key: UpgradeKey,
}

/// The clients [`TcpBench::run_ws`] opens, in order: the first handshake is the warm-up
/// (its connection stays open), the second is measured, and the echoes run on its
/// connection.
pub const WS_CLIENTS: [WsClient; 2] = [
    WsClient {
        port: 40010,
        isn: 0x3000_0000,
        key: ws::KEYS[0],
    },
    WsClient {
        port: 40011,
        isn: 0x4000_0000,
        key: ws::KEYS[1],
    },
];

/// The echoes [`TcpBench::run_ws`] measures, in order: payload bytes and region name.
pub const WS_ECHOES: [(usize, &str); 2] = [(16, "echo16"), (1400, "echo1400")];

/// Buffers too large for the stack.
struct Scratch {
    capture: Capture,
    after: Capture,
    frame: [u8; 1536],
    /// The data a step's reply carried (its segments' payloads, in order).
    reply: [u8; 2048],
}

struct Shared(UnsafeCell<Scratch>);
// SAFETY: taken once (`TAKEN`), by the only thread.
unsafe impl Sync for Shared {}

static SCRATCH: Shared = Shared(UnsafeCell::new(Scratch {
    capture: Capture::new(),
    after: Capture::new(),
    frame: [0; 1536],
    reply: [0; 2048],
}));
static TAKEN: AtomicBool = AtomicBool::new(false);

/// A benchmark session against one stack. One session exists at a time; another can be
/// opened once it is dropped (on another stack instance, say).
pub struct TcpBench {
    stack: Stack,
    board: Board,
    prefix: &'static str,
    server: Endpoint,
    s: &'static mut Scratch,
}

impl Drop for TcpBench {
    fn drop(&mut self) {
        // The scratch buffers are free again (`s` goes with the session).
        TAKEN.store(false, Ordering::Release);
    }
}

impl TcpBench {
    /// A session on the board the stack was started on; `prefix` is put before every
    /// region name (`peer_` for the peers). `None` if a session already exists.
    pub fn new(stack: Stack, board: Board, prefix: &'static str, server: Endpoint) -> Option<Self> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the only reference ever made (guarded by TAKEN).
        let s = unsafe { &mut *SCRATCH.0.get() };
        Some(TcpBench {
            stack,
            board,
            prefix,
            server,
            s,
        })
    }

    /// What is put before every region name (`peer_` for the peers).
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The frames the last step sent from the interrupt.
    pub fn capture(&self) -> &Capture {
        &self.s.capture
    }

    /// The superloop pass after a step, its frames completed into `after`.
    fn poll(&mut self) -> Result<(), BenchError> {
        (self.stack.poll)();
        self.s.after.clear();
        self.board.settle(&mut self.s.after)
    }

    /// Delivers the first `len` bytes of the frame buffer: the frame is in an RX
    /// descriptor and the interrupt raised, not taken yet.
    fn deliver(&mut self, len: usize) -> Result<(), BenchError> {
        advance(1);
        self.s.capture.clear();
        self.board.deliver(self.s.frame.get(..len).unwrap_or(&[]))
    }

    /// After the interrupt: the frames it sent, completed into [`Self::capture`], then
    /// the superloop pass.
    pub fn after_interrupt(&mut self) -> Result<(), BenchError> {
        self.board.settle(&mut self.s.capture)?;
        self.poll()
    }

    /// Takes the interrupt a delivery raised, then [`Self::after_interrupt`]; under the
    /// brackets as region `name` + `suffix` when `region` is given (`bytes` is the
    /// payload for the per-byte figure, 0: none), unmeasured otherwise.
    fn step(&mut self, region: Option<(&str, &str, usize)>) -> Result<(), BenchError> {
        #[cfg(target_os = "none")]
        {
            let Some((name, suffix, bytes)) = region else {
                vector_165_quiet();
                return self.after_interrupt();
            };
            let count = vector_165();
            self.board.settle(&mut self.s.capture)?;
            report(
                self.prefix,
                name,
                suffix,
                count,
                bytes,
                Some(self.s.capture.len()),
            );
            self.poll()
        }
        // Nothing is measured here on the host (see the module's documentation).
        #[cfg(not(target_os = "none"))]
        {
            let _ = region;
            (self.stack.interrupt)();
            self.after_interrupt()
        }
    }

    /// Delivers the first `len` bytes of the frame buffer and runs the interrupt
    /// unmeasured.
    pub fn quiet(&mut self, len: usize) -> Result<(), BenchError> {
        self.deliver(len)?;
        self.step(None)
    }

    /// Delivers the first `len` bytes of the frame buffer and runs the interrupt under
    /// the brackets, as region `name` + `suffix`; `bytes` is the payload for the
    /// per-byte figure (0: none).
    pub fn measured(
        &mut self,
        len: usize,
        name: &str,
        suffix: &str,
        bytes: usize,
    ) -> Result<(), BenchError> {
        self.deliver(len)?;
        self.step(Some((name, suffix, bytes)))
    }

    /// Polls until the link is up.
    pub fn link(&mut self) -> Result<(), BenchError> {
        for _ in 0..50 {
            advance(1);
            self.poll()?;
            if (self.stack.link_up)() {
                return Ok(());
            }
        }
        Err(BenchError::NoLink)
    }

    /// The client asks for the server's address; the reply must come from the
    /// interrupt.
    pub fn arp(&mut self) -> Result<(), BenchError> {
        let n = arp_request(&CLIENT, self.server.ip, &mut self.s.frame)
            .ok_or(BenchError::NoArpReply)?;
        self.quiet(n)?;
        let server = self.server;
        let c = &self.s.capture;
        let found = (0..c.len())
            .filter_map(|i| c.frame(i))
            .any(|f| parse_arp_reply(f, &CLIENT, server.ip) == Some(server.mac));
        if found {
            Ok(())
        } else {
            Err(BenchError::NoArpReply)
        }
    }

    /// Sends a SYN from `port` and takes the SYN-ACK in; the SYN is region `name` +
    /// `suffix` when `region` is given, unmeasured otherwise. The handshake's ACK is
    /// left to the caller (alone, or with data).
    pub fn open(
        &mut self,
        port: u16,
        isn: u32,
        region: Option<(&str, &str)>,
    ) -> Result<TcpClient, BenchError> {
        let mut c = self.send_syn(port, isn)?;
        self.step(region.map(|(name, suffix)| (name, suffix, 0)))?;
        self.syn_acked(&mut c)?;
        Ok(c)
    }

    /// The first half of [`Self::open`]: a client on `port` delivers its SYN.
    pub fn send_syn(&mut self, port: u16, isn: u32) -> Result<TcpClient, BenchError> {
        let mut c = TcpClient::new(CLIENT, self.server, port, PORT, isn);
        let n = c.syn(&mut self.s.frame).ok_or(BenchError::NoSynAck)?;
        self.deliver(n)?;
        Ok(c)
    }

    /// The second half of [`Self::open`]: the interrupt must have sent the SYN-ACK.
    pub fn syn_acked(&self, c: &mut TcpClient) -> Result<(), BenchError> {
        let cap = &self.s.capture;
        let ok = (0..cap.len())
            .filter_map(|i| cap.frame(i))
            .any(|f| c.accept_syn_ack(f));
        if ok {
            Ok(())
        } else {
            Err(BenchError::NoSynAck)
        }
    }

    /// Opens a connection from `port`; the SYN is region `tcp_handshake` + `suffix`
    /// when `suffix` is given, unmeasured otherwise. The ACK completing the handshake
    /// is unmeasured.
    pub fn connect(
        &mut self,
        port: u16,
        isn: u32,
        suffix: Option<&str>,
    ) -> Result<TcpClient, BenchError> {
        let mut c = self.open(port, isn, suffix.map(|s| ("tcp_handshake", s)))?;
        let n = c.ack(&mut self.s.frame).ok_or(BenchError::NoSynAck)?;
        self.quiet(n)?;
        Ok(c)
    }

    /// Sends `request` on `c` (the segment also acknowledges everything received) as
    /// region `name` + `suffix`, `bytes` counting for the per-byte figure; returns the
    /// data the interrupt sent back on `c` (the payloads of its data segments, in
    /// order). This is the step every request/response benchmark is made of (a
    /// WebSocket upgrade, a frame echo).
    pub fn exchange(
        &mut self,
        c: &mut TcpClient,
        request: &[u8],
        name: &str,
        suffix: &str,
        bytes: usize,
    ) -> Result<&[u8], BenchError> {
        self.send(c, request)?;
        self.step(Some((name, suffix, bytes)))?;
        self.reply(c)
    }

    /// The first half of [`Self::exchange`]: `request` on `c` is delivered.
    pub fn send(&mut self, c: &mut TcpClient, request: &[u8]) -> Result<(), BenchError> {
        let n = c
            .data(request, &mut self.s.frame)
            .ok_or(BenchError::NoReply)?;
        self.deliver(n)
    }

    /// The second half of [`Self::exchange`]: the data the interrupt sent back on `c`.
    pub fn reply(&mut self, c: &mut TcpClient) -> Result<&[u8], BenchError> {
        let Scratch { capture, reply, .. } = &mut *self.s;
        let mut len = 0;
        for f in (0..capture.len()).filter_map(|i| capture.frame(i)) {
            if let Some(p) = c.accept_data(f) {
                let dst = reply
                    .get_mut(len..len + p.len())
                    .ok_or(BenchError::NoReply)?;
                dst.copy_from_slice(p);
                len += p.len();
            }
        }
        match reply.get(..len) {
            Some(r) if len > 0 => Ok(r),
            _ => Err(BenchError::NoReply),
        }
    }

    /// Sends `len` bytes on `c` as region `name` + `suffix`; the same bytes must come
    /// back from the interrupt.
    pub fn echo(
        &mut self,
        c: &mut TcpClient,
        len: usize,
        name: &str,
        suffix: &str,
    ) -> Result<(), BenchError> {
        let mut buf = [0u8; 1460];
        let payload = buf.get_mut(..len).ok_or(BenchError::NoEcho)?;
        let seed = c.snd_nxt as u8;
        for (i, b) in payload.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        let reply = self.exchange(c, payload, name, suffix, len)?;
        if reply == payload {
            Ok(())
        } else {
            Err(BenchError::NoEcho)
        }
    }

    /// The TCP benchmarks: link, ARP, a handshake measured twice, then a 16-byte and
    /// a 1400-byte echo, each measured twice, on one established connection.
    pub fn run_tcp(&mut self) -> Result<(), BenchError> {
        self.link()?;
        self.arp()?;
        let mut a = self.connect(40000, 0x1000_0000, Some(".warmup"))?;
        let _b = self.connect(40001, 0x2000_0000, Some(""))?;
        for (len, name) in [(16, "tcp_echo16"), (1400, "tcp_echo1400")] {
            self.echo(&mut a, len, name, ".warmup")?;
            self.echo(&mut a, len, name, "")?;
        }
        // Acknowledge the last echo so nothing is left to retransmit.
        let n = a.ack(&mut self.s.frame).ok_or(BenchError::NoEcho)?;
        self.quiet(n)
    }
}

impl TcpBench {
    /// Opens a WebSocket for `client` as a browser does, in two measured regions: the SYN
    /// (`handshake_syn` + `suffix`, up to the SYN-ACK), then the ACK completing the TCP
    /// handshake carrying the upgrade request with its key (`handshake_upgrade` +
    /// `suffix`, up to the 101 response). The response must be a right 101 with the
    /// right `Sec-WebSocket-Accept`.
    pub fn ws_connect(&mut self, client: &WsClient, suffix: &str) -> Result<TcpClient, BenchError> {
        let mut c = self.open(client.port, client.isn, Some(("handshake_syn", suffix)))?;
        self.send_upgrade(&mut c, &client.key)?;
        self.step(Some(("handshake_upgrade", suffix, 0)))?;
        self.upgraded(&mut c, &client.key)?;
        Ok(c)
    }

    /// The upgrade request with `key` on `c` (which also completes the TCP handshake) is
    /// delivered.
    pub fn send_upgrade(&mut self, c: &mut TcpClient, key: &UpgradeKey) -> Result<(), BenchError> {
        let mut request = [0u8; 512];
        let n = ws::upgrade_request(key.key, &mut request).ok_or(BenchError::NoUpgrade)?;
        let req = request.get(..n).ok_or(BenchError::NoUpgrade)?;
        self.send(c, req)
    }

    /// The interrupt must have answered the upgrade with a right 101 for `key`.
    pub fn upgraded(&mut self, c: &mut TcpClient, key: &UpgradeKey) -> Result<(), BenchError> {
        let reply = self.reply(c)?;
        if ws::upgrade_accepted(reply, key.accept) {
            Ok(())
        } else {
            Err(BenchError::NoUpgrade)
        }
    }

    /// Sends a text message of `len` bytes (see [`ws::text`]) in one masked frame in one
    /// segment on `c`, as region `name` + `suffix` (`len` bytes for the per-byte
    /// figure); the interrupt must send back the unmasked frame with the same payload.
    pub fn ws_echo(
        &mut self,
        c: &mut TcpClient,
        len: usize,
        name: &str,
        suffix: &str,
    ) -> Result<(), BenchError> {
        self.send_text(c, len)?;
        self.step(Some((name, suffix, len)))?;
        self.text_echoed(c, len)
    }

    /// The first half of [`Self::ws_echo`]: the masked frame with `len` bytes of
    /// [`ws::text`] on `c` is delivered.
    pub fn send_text(&mut self, c: &mut TcpClient, len: usize) -> Result<(), BenchError> {
        let mut buf = [0u8; MAX_TEXT];
        let payload = buf.get_mut(..len).ok_or(BenchError::NoWsEcho)?;
        ws::text(payload);
        // A mask as a client draws it: a different one for every frame.
        let mask = c
            .snd_nxt
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(0x7F4A_7C15)
            .to_le_bytes();
        let mut frame = [0u8; 1460];
        let n = ws::masked_frame(TEXT, payload, mask, &mut frame).ok_or(BenchError::NoWsEcho)?;
        let request = frame.get(..n).ok_or(BenchError::NoWsEcho)?;
        self.send(c, request)
    }

    /// The second half of [`Self::ws_echo`]: the interrupt must have sent back the
    /// unmasked frame with the `len` bytes of text.
    pub fn text_echoed(&mut self, c: &mut TcpClient, len: usize) -> Result<(), BenchError> {
        let mut buf = [0u8; MAX_TEXT];
        let payload = buf.get_mut(..len).ok_or(BenchError::NoWsEcho)?;
        ws::text(payload);
        let reply = self.reply(c)?;
        if ws::is_echo_frame(reply, TEXT, payload) {
            Ok(())
        } else {
            Err(BenchError::NoWsEcho)
        }
    }

    /// The WebSocket benchmarks: link, ARP, an opening handshake measured twice (two
    /// connections, [`WS_CLIENTS`], both left open), then on the second connection a
    /// 16-byte and a 1400-byte text echo ([`WS_ECHOES`]), each measured twice.
    pub fn run_ws(&mut self) -> Result<(), BenchError> {
        let [first, second] = &WS_CLIENTS;
        self.link()?;
        self.arp()?;
        let _a = self.ws_connect(first, ".warmup")?;
        let mut b = self.ws_connect(second, "")?;
        for (len, name) in WS_ECHOES {
            self.ws_echo(&mut b, len, name, ".warmup")?;
            self.ws_echo(&mut b, len, name, "")?;
        }
        // Acknowledge the last echo so nothing is left to retransmit.
        let n = b.ack(&mut self.s.frame).ok_or(BenchError::NoWsEcho)?;
        self.quiet(n)
    }
}

/// The exit code for [`rt::exit`] of a benchmark group's result; a failure is printed
/// as `error WHAT: reason`.
#[cfg(target_os = "none")]
pub fn outcome(what: &str, r: Result<(), BenchError>) -> u32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            crate::say!("error {what}: {}", e.as_str());
            1
        }
    }
}

/// Prints the run's header: which firmware, and the marks.
#[cfg(target_os = "none")]
pub fn header(name: &str) {
    crate::say!("bench-firmware {name}");
    rt::print_marks();
}
