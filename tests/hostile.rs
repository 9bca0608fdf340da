//! Hostile clients against the reference firmware, each with the answer RFC 6455, HTTP
//! and TCP require, and each while well-behaved tungstenite clients keep echoing (the
//! proof that nobody else is affected): a handshake sent a byte a second, oversized
//! headers, garbage before the request, 10,000 connection attempts at once, a SYN flood,
//! clients that never read, clients that never answer a Close, spoofed RST, SYN and ACK
//! segments (RFC 5961), a frame declaring 2^63-1 bytes, and 1,000 connect/close cycles.
//!
//! The peer is the smoltcp host inside [`Snoop`], which also sees what the board sends,
//! injects spoofed segments, and carries a swarm of hand-made TCP clients.

#[path = "common/snoop.rs"]
mod snoop;
#[path = "common/ws_peer.rs"]
mod ws_peer;

use mzw1_reference::{Config, RXB, RXD, TXB};
use mzw1_sim::peer::TcpState;
use mzw1_sim::wire::Rng;
use mzw1_sim::{Board, BoardConfig, End, PeerHost, Reference, Testbed, Wire, WireConfig};
use mzw1_wss::service::{ClientId, ClientState};
use snoop::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tungstenite::Message;
use ws_peer::*;

type Bed<R = NoRaw> = Testbed<Reference, Snoop<R>>;

const BOARD_MAC: [u8; 6] = [0x02, 0x04, 0xA3, 0x00, 0x00, 0x01];
const MS: u64 = 1_000_000;

fn bed_with<R: RawHost>(config: Config, raw: R) -> Bed<R> {
    let mut board = Board::new(BoardConfig::default());
    let fw = Reference::boot(&mut board, config);
    let peer = Snoop::new(PeerHost::new(PEER_MAC, PEER_IP, 24), raw);
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), peer);
    tb.run_for(3 * SECOND);
    tb
}

fn bed(clients: u8) -> Bed {
    let mut config = Config::default();
    config.wss.clients = clients;
    bed_with(config, NoRaw)
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

/// A well-behaved tungstenite client that echoes one message after another and records
/// the longest wait for an echo.
struct Good {
    ws: WsClient,
    seed: u64,
    outstanding: Option<Vec<u8>>,
    echoed: u64,
    last_ns: u64,
    max_gap_ns: u64,
}

impl Good {
    fn open<R: RawHost>(tb: &mut Bed<R>) -> Good {
        let mut ws = WsClient::connect_on(&mut tb.peer.host, "/good");
        let ok = tb.run_until(
            |tb| {
                ws.pump(&mut tb.peer.host);
                ws.is_open()
            },
            10 * SECOND,
        );
        assert!(ok, "good client opens: {:?} {:?}", ws.refused(), ws.over());
        let now = tb.now_ns();
        Good {
            ws,
            seed: now,
            outstanding: None,
            echoed: 0,
            last_ns: now,
            max_gap_ns: 0,
        }
    }

    fn tick(&mut self, host: &mut PeerHost, now: u64) {
        self.ws.pump(host);
        for m in self.ws.take_data() {
            let want = self.outstanding.take().expect("an echo of what was sent");
            assert_eq!(m, Message::binary(want), "good client: echo");
            self.echoed += 1;
            self.max_gap_ns = self.max_gap_ns.max(now - self.last_ns);
            self.last_ns = now;
        }
        self.ws.received.clear();
        assert!(
            self.ws.is_open(),
            "good client lost its connection: {:?} {:?}",
            self.ws.over(),
            self.ws.close
        );
        if self.outstanding.is_none() {
            self.seed += 1;
            let m = pattern(1 + (self.seed % 3000) as usize, self.seed);
            self.ws.send(Message::binary(m.clone()));
            self.outstanding = Some(m);
        }
    }

    /// Starts a new measurement window.
    fn reset(&mut self, now: u64) {
        self.max_gap_ns = 0;
        self.last_ns = now;
        self.echoed = 0;
    }

    /// The longest wait for an echo in the window, now included.
    fn gap(&self, now: u64) -> u64 {
        self.max_gap_ns.max(now - self.last_ns)
    }
}

/// Runs until `cond` (or `limit_ns`), the good clients echoing all along.
fn run<R: RawHost>(
    tb: &mut Bed<R>,
    goods: &mut [&mut Good],
    limit_ns: u64,
    mut cond: impl FnMut(&mut Bed<R>) -> bool,
) -> bool {
    tb.run_until(
        |tb| {
            let now = tb.now_ns();
            for g in goods.iter_mut() {
                g.tick(&mut tb.peer.host, now);
            }
            cond(tb)
        },
        limit_ns,
    )
}

/// The good clients echoed throughout the last window (no wait over `max_gap_ms`) and
/// go on echoing for another second.
fn assert_unaffected<R: RawHost>(tb: &mut Bed<R>, goods: &mut [&mut Good], max_gap_ms: u64) {
    let now = tb.now_ns();
    for (k, g) in goods.iter().enumerate() {
        assert!(
            g.gap(now) <= max_gap_ms * MS && g.echoed > 0,
            "good client {k}: {} echoes, longest wait {:.3} s",
            g.echoed,
            g.gap(now) as f64 / 1e9
        );
    }
    let before: Vec<u64> = goods.iter().map(|g| g.echoed).collect();
    run(tb, goods, SECOND, |_| false);
    for (k, (g, b)) in goods.iter().zip(before).enumerate() {
        assert!(g.echoed > b + 10, "good client {k} echoes afterwards");
    }
}

/// Nothing leaked: TCP slots (but the good clients'), client slots, TX and RX buffers.
fn assert_no_leak<R: RawHost>(tb: &mut Bed<R>, goods: &mut [&mut Good]) {
    let n = goods.len();
    let quiet = run(tb, goods, 30 * SECOND, |tb| {
        tb.fw.0.net().slots_in_use() == n && tb.fw.0.mac().rx.spare_buffers() as usize >= RXB - RXD
    });
    let server = tb.fw.0.server();
    let states: Vec<_> = server.clients().map(|c| c.1).collect();
    assert!(
        quiet,
        "TCP slots in use {} (expected {n}), spare RX buffers {}; clients {states:?}",
        tb.fw.0.net().slots_in_use(),
        tb.fw.0.mac().rx.spare_buffers()
    );
    let connected = states
        .iter()
        .filter(|s| **s == ClientState::Connected)
        .count();
    let closed = states.iter().filter(|s| **s == ClientState::Closed).count();
    assert_eq!((connected, closed), (n, states.len() - n), "{states:?}");
    // Every TX buffer comes back once the good clients' last segments are acknowledged.
    let freed = run(tb, goods, SECOND, |tb| {
        let m = tb.fw.0.mac();
        m.tx.free_buffers() as usize == TXB && m.rx.spare_buffers() as usize == RXB - RXD
    });
    // Between two echoes of the good clients the buffers are all free; sample at such a
    // moment (stop the good clients, let their last echo complete).
    let settled = tb.run_until(
        |tb| {
            for g in goods.iter_mut() {
                g.ws.pump(&mut tb.peer.host);
                for m in g.ws.take_data() {
                    assert_eq!(Some(m), g.outstanding.take().map(Message::binary));
                }
            }
            let m = tb.fw.0.mac();
            goods.iter().all(|g| g.outstanding.is_none())
                && m.tx.free_buffers() as usize == TXB
                && m.tx.queued() == 0
                && m.rx.spare_buffers() as usize == RXB - RXD
        },
        5 * SECOND,
    );
    let m = tb.fw.0.mac();
    assert!(
        freed || settled,
        "TX buffers free {} of {TXB}, queued {}, spare RX {} of {}",
        m.tx.free_buffers(),
        m.tx.queued(),
        m.rx.spare_buffers(),
        RXB - RXD
    );
}

/// A clean closing handshake from the client: the server answers with the same code,
/// closes TCP and frees the slot.
fn close_ws<R: RawHost>(tb: &mut Bed<R>, goods: &mut [&mut Good], ws: &mut WsClient) {
    let port = tb
        .peer
        .host
        .tcp_socket(ws.h)
        .local_endpoint()
        .map(|e| e.port);
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: 4321.into(),
        reason: "done".into(),
    }));
    let h = ws.h;
    let ok = run(tb, goods, 10 * SECOND, |tb| {
        ws.pump(&mut tb.peer.host);
        if tb.peer.host.tcp_state(h) == TcpState::CloseWait {
            tb.peer.host.tcp_close(h);
        }
        tb.peer.host.tcp_state(h) == TcpState::Closed
    });
    assert!(
        ok,
        "closing handshake and TCP close: {:?}",
        tb.peer.host.tcp_state(h)
    );
    let code = ws.close.clone().flatten().map(|f| u16::from(f.code));
    assert_eq!(code, Some(4321), "the server echoes the code");
    let now = tb.board.now();
    let server = tb.fw.0.server_mut();
    for i in 0..8 {
        let id = ClientId::from_index(i);
        assert_ne!(
            server.client_remote(now, id).map(|r| r.1),
            port,
            "slot freed"
        );
    }
    tb.peer.host.tcp_remove(h);
}

fn status_of(got: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(got.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

// ------------------------------------------------------------------ handshakes

#[test]
fn a_handshake_sent_a_byte_a_second_is_dropped_after_5_s() {
    let mut tb = bed(4);
    let mut good = Good::open(&mut tb);
    let request = upgrade_request("/slow", "User-Agent: slowloris\r\n");
    // Three slow clients, a second apart.
    let mut slow: Vec<(RawClient, usize, Option<u64>, Option<u64>)> = Vec::new();
    let start = tb.now_ns();
    good.reset(start);
    let done = run(&mut tb, &mut [&mut good], 20 * SECOND, |tb| {
        let now = tb.now_ns();
        if slow.len() < 3 && now >= start + slow.len() as u64 * SECOND {
            slow.push((RawClient::connect_on(&mut tb.peer.host), 0, None, None));
        }
        for (raw, at, opened, closed) in slow.iter_mut().filter(|s| s.3.is_none()) {
            let state = tb.peer.host.tcp_state(raw.h);
            if opened.is_none() && state == TcpState::Established {
                *opened = Some(now);
            }
            if let Some(t0) = *opened {
                // One more byte each second.
                let due = ((now - t0) / SECOND + 1) as usize;
                while *at < due.min(request.len()) {
                    raw.send(&request[*at..*at + 1]);
                    *at += 1;
                }
            }
            raw.pump(&mut tb.peer.host);
            if closed.is_none() && opened.is_some() && state == TcpState::Closed {
                *closed = Some(now);
            }
        }
        slow.len() == 3 && slow.iter().all(|s| s.3.is_some())
    });
    assert!(done, "every slow client is dropped");
    for (k, (raw, at, opened, closed)) in slow.iter().enumerate() {
        let after = (closed.unwrap() - opened.unwrap()) as f64 / 1e9;
        assert!(
            (4.99..5.1).contains(&after),
            "slow client {k}: dropped after {after:.4} s"
        );
        assert!(*at <= 6, "slow client {k} sent {at} bytes");
        assert!(raw.got.is_empty(), "no response to half a request");
        let port = tb.peer.host.tcp_socket(raw.h).local_endpoint();
        assert!(port.is_none(), "smoltcp saw the RST: socket reset");
    }
    let stats = *tb.fw.0.server().stats();
    assert_eq!(stats.handshake_timeouts, 3, "{stats:?}");
    for (raw, ..) in slow {
        tb.peer.host.tcp_remove(raw.h);
    }
    assert_unaffected(&mut tb, &mut [&mut good], 500);
    assert_no_leak(&mut tb, &mut [&mut good]);
}

/// Sends a request on a fresh connection; returns the response and whether the server
/// closed the connection, the good clients echoing meanwhile.
fn exchange<R: RawHost>(tb: &mut Bed<R>, good: &mut Good, request: &[u8]) -> (Vec<u8>, bool) {
    let mut raw = RawClient::connect_on(&mut tb.peer.host);
    raw.send(request);
    let closed = run(tb, &mut [good], 10 * SECOND, |tb| {
        raw.pump(&mut tb.peer.host);
        raw.server_closed(&tb.peer.host) && raw.out.is_empty()
    });
    raw.pump(&mut tb.peer.host);
    tb.peer.host.tcp_close(raw.h);
    (raw.got, closed)
}

fn assert_refused(got: &[u8], closed: bool, status: u16, what: &str) {
    let text = String::from_utf8_lossy(got);
    assert!(closed, "{what}: the server closes the connection: {text:?}");
    assert_eq!(status_of(got), Some(status), "{what}: {text:?}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{what}: {text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "{what}: nothing after the head: {text}"
    );
}

#[test]
fn oversized_headers_get_431() {
    let mut tb = bed(2);
    let mut good = Good::open(&mut tb);
    let one_huge = format!("X-Huge: {}\r\n", "h".repeat(4000));
    let many: String = (0..150)
        .map(|i| format!("X-Header-{i}: value\r\n"))
        .collect();
    let long_cookie = format!("Cookie: {}\r\n", "c=1; ".repeat(500));
    let cases = [
        ("one huge header", one_huge),
        ("150 headers", many),
        ("cookie", long_cookie),
    ];
    good.reset(tb.now_ns());
    for (what, extra) in &cases {
        let (got, closed) = exchange(&mut tb, &mut good, &upgrade_request("/", extra));
        assert_refused(&got, closed, 431, what);
    }
    // Just under the limit (2048 bytes) is fine.
    let base = upgrade_request("/", "").len();
    let filler = format!("X-Fill: {}\r\n", "f".repeat(2048 - base - 10));
    let request = upgrade_request("/", &filler);
    assert_eq!(request.len(), 2048);
    let (got, _) = exchange(&mut tb, &mut good, &request);
    assert_eq!(
        status_of(&got),
        Some(101),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let stats = *tb.fw.0.server().stats();
    assert_eq!(stats.refused, 3, "{stats:?}");
    assert_unaffected(&mut tb, &mut [&mut good], 500);
    assert_no_leak(&mut tb, &mut [&mut good]);
}

#[test]
fn garbage_before_the_request_gets_400() {
    let mut tb = bed(2);
    let mut good = Good::open(&mut tb);
    let request = upgrade_request("/", "");
    let with = |prefix: &[u8]| [prefix, &request[..]].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary junk", with(b"\x00\x01\x02\xff\xfe")),
        ("a line of text", with(b"HELLO BOARD\r\n")),
        (
            "TLS ClientHello",
            with(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        ),
        ("a NUL in the method", with(b"G\x00")),
        ("a second request line", with(b"GET / HTTP/1.1 extra\r\n")),
        ("SSH banner", with(b"SSH-2.0-OpenSSH_9.6\r\n")),
    ];
    good.reset(tb.now_ns());
    for (what, bytes) in &cases {
        let (got, closed) = exchange(&mut tb, &mut good, bytes);
        assert_refused(&got, closed, 400, what);
    }
    let stats = *tb.fw.0.server().stats();
    assert_eq!((stats.refused, stats.upgrades), (6, 1), "{stats:?}");
    assert_unaffected(&mut tb, &mut [&mut good], 500);
    assert_no_leak(&mut tb, &mut [&mut good]);
}

// ------------------------------------------------------------------ 10,000 at once

const SWARM_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0x00, 0x53, 0x77];
const SWARM_IP: [u8; 4] = [192, 168, 7, 77];
const SWARM_PORT: u16 = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// 101, then a clean closing handshake.
    Upgraded,
    /// An HTTP status other than 101.
    Status(u16),
    /// A RST.
    Reset,
    /// A FIN before any response: the server closed without saying why.
    BareFin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AState {
    Idle,
    SynSent,
    /// The request is out (with the handshake's ACK).
    Requested,
    /// Our FIN (and Close frame, after a 101) is out.
    Closing,
    Done,
}

/// One hand-made TCP client: SYN, then the upgrade request with the handshake's ACK,
/// then a Close frame and FIN after a 101 (FIN only after a refusal). Retransmits with
/// back-off (1 s doubling, at most 8 s between tries) as a kernel would.
#[derive(Clone, Debug)]
struct Attempt {
    state: AState,
    iss: u32,
    rcv_nxt: u32,
    /// Acknowledged by the board, relative to iss.
    acked: u32,
    /// Sent, relative to iss (SYN included).
    sent: u32,
    got: Vec<u8>,
    server_fin: bool,
    outcome: Option<Outcome>,
    first_answer_ns: Option<u64>,
    deadline: u64,
    rto: u64,
    tries: u32,
    /// What to send again on a timeout: payload and flags (relative seq `sent` before it).
    last: (u32, Vec<u8>, u8),
}

struct Swarm {
    rng: Rng,
    attempts: Vec<Attempt>,
    start_ns: u64,
    started: bool,
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    request: Vec<u8>,
    close: Vec<u8>,
    frames_in: u64,
    frames_out: u64,
}

impl Swarm {
    fn new(n: usize, start_ns: u64) -> Swarm {
        let mut rng = Rng::new(77);
        Swarm {
            rng: Rng::new(78),
            attempts: (0..n)
                .map(|_| Attempt {
                    state: AState::Idle,
                    iss: rng.next_u64() as u32,
                    rcv_nxt: 0,
                    acked: 0,
                    sent: 0,
                    got: Vec::new(),
                    server_fin: false,
                    outcome: None,
                    first_answer_ns: None,
                    deadline: 0,
                    rto: SECOND,
                    tries: 0,
                    last: (0, Vec::new(), 0),
                })
                .collect(),
            start_ns,
            started: false,
            timers: BinaryHeap::new(),
            request: upgrade_request("/swarm", ""),
            close: client_frame(true, 0x8, &1000u16.to_be_bytes(), [7, 7, 7, 7]),
            frames_in: 0,
            frames_out: 0,
        }
    }

    fn segment(&mut self, i: usize, rel_seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
        let a = &self.attempts[i];
        let ack = if flags & ACK != 0 { a.rcv_nxt } else { 0 };
        let mut s = Segment::new(
            SWARM_PORT + i as u16,
            80,
            a.iss.wrapping_add(rel_seq),
            ack,
            flags,
        )
        .data(payload);
        if flags & SYN != 0 {
            s = s.mss(1460);
        }
        self.frames_out += 1;
        s.frame(SWARM_MAC, BOARD_MAC, SWARM_IP, BOARD_IP)
    }

    /// Sends `payload` with `flags` as the next data of attempt `i`, arming its timer.
    fn send_next(
        &mut self,
        i: usize,
        now: u64,
        payload: Vec<u8>,
        flags: u8,
        out: &mut Vec<Vec<u8>>,
    ) {
        let rel = self.attempts[i].sent;
        out.push(self.segment(i, rel, &payload, flags));
        let a = &mut self.attempts[i];
        a.sent += payload.len() as u32 + (flags & (SYN | FIN) != 0) as u32;
        a.last = (rel, payload, flags);
        a.rto = SECOND;
        a.tries = 0;
        a.deadline = now + a.rto * 3 / 4 + self.rng.below(a.rto / 2);
        self.timers.push(Reverse((a.deadline, i)));
    }

    fn ack(&mut self, i: usize, out: &mut Vec<Vec<u8>>) {
        let rel = self.attempts[i].sent;
        out.push(self.segment(i, rel, &[], ACK));
    }

    /// Attempts by outcome: 101, 503, RST, bare FIN, anything else or none.
    fn counts(&self) -> [usize; 5] {
        let mut c = [0; 5];
        for a in &self.attempts {
            c[match a.outcome {
                Some(Outcome::Upgraded) => 0,
                Some(Outcome::Status(503)) => 1,
                Some(Outcome::Reset) => 2,
                Some(Outcome::BareFin) => 3,
                _ => 4,
            }] += 1;
        }
        c
    }
}

impl RawHost for Swarm {
    fn mac(&self) -> [u8; 6] {
        SWARM_MAC
    }

    fn receive(&mut self, now: u64, frame: &[u8], out: &mut Vec<Vec<u8>>) {
        self.frames_in += 1;
        let Some((_, dst, t)) = tcp_of(frame) else {
            return;
        };
        let i = t.dst_port.wrapping_sub(SWARM_PORT) as usize;
        if dst != SWARM_IP || i >= self.attempts.len() {
            return;
        }
        let payload = tcp_payload(frame).to_vec();
        let a = &mut self.attempts[i];
        if std::env::var("SWARM_TRACE").is_ok_and(|v| v.split(',').any(|x| x == i.to_string())) {
            eprintln!(
                "[{:.6}] #{i} {:?} in: flags {:#04x} seq {} ack {} len {} ({:?}) rcv_nxt {} acked {} sent {}",
                now as f64 / 1e9,
                a.state,
                t.flags,
                t.seq.wrapping_sub(a.rcv_nxt),
                t.ack.wrapping_sub(a.iss),
                payload.len(),
                String::from_utf8_lossy(&payload[..payload.len().min(20)]),
                a.rcv_nxt,
                a.acked,
                a.sent
            );
        }
        if a.state == AState::Idle || a.state == AState::Done {
            return;
        }
        a.first_answer_ns.get_or_insert(now);
        if t.flags & RST != 0 {
            a.outcome.get_or_insert(Outcome::Reset);
            a.state = AState::Done;
            return;
        }
        if t.flags & ACK != 0 {
            let rel = t.ack.wrapping_sub(a.iss);
            if rel <= a.sent && rel > a.acked {
                a.acked = rel;
            }
        }
        if t.flags & SYN != 0 {
            if a.state == AState::SynSent && t.ack == a.iss.wrapping_add(1) {
                a.rcv_nxt = t.seq.wrapping_add(1);
                let request = self.request.clone();
                self.send_next(i, now, request, ACK | PSH, out);
                self.attempts[i].state = AState::Requested;
            } else {
                // A retransmitted SYN-ACK: our ACK was lost; the request carries it.
                self.ack(i, out);
            }
            return;
        }
        let mut advanced = false;
        if (!payload.is_empty() || t.flags & FIN != 0) && t.seq == a.rcv_nxt {
            a.got.extend_from_slice(&payload);
            a.rcv_nxt = a.rcv_nxt.wrapping_add(payload.len() as u32);
            if t.flags & FIN != 0 {
                a.rcv_nxt = a.rcv_nxt.wrapping_add(1);
                a.server_fin = true;
            }
            advanced = true;
        }
        if a.outcome.is_none() && a.got.windows(4).any(|w| w == b"\r\n\r\n") {
            let status = status_of(&a.got).unwrap_or(0);
            if status == 101 {
                a.outcome = Some(Outcome::Upgraded);
                let close = self.close.clone();
                self.send_next(i, now, close, ACK | PSH | FIN, out);
            } else {
                a.outcome = Some(Outcome::Status(status));
                self.send_next(i, now, Vec::new(), ACK | FIN, out);
            }
            self.attempts[i].state = AState::Closing;
            return;
        }
        if a.outcome.is_none() && a.server_fin {
            a.outcome = Some(Outcome::BareFin);
            self.send_next(i, now, Vec::new(), ACK | FIN, out);
            self.attempts[i].state = AState::Closing;
            return;
        }
        if advanced || !payload.is_empty() || t.flags & FIN != 0 {
            self.ack(i, out);
        }
        let a = &mut self.attempts[i];
        if a.state == AState::Closing && a.server_fin && a.acked == a.sent {
            a.state = AState::Done;
        }
    }

    fn poll(&mut self, now: u64, out: &mut Vec<Vec<u8>>) {
        if !self.started && now >= self.start_ns {
            self.started = true;
            for i in 0..self.attempts.len() {
                self.attempts[i].state = AState::SynSent;
                self.send_next(i, now, Vec::new(), SYN, out);
            }
        }
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let a = &self.attempts[i];
            if a.deadline != t || a.state == AState::Done || a.acked == a.sent {
                continue;
            }
            let (rel, payload, flags) = a.last.clone();
            out.push(self.segment(i, rel, &payload, flags));
            let a = &mut self.attempts[i];
            a.tries += 1;
            a.rto = (a.rto * 2).min(8 * SECOND);
            // A quarter of jitter either way, so that the burst does not stay in step.
            a.deadline = now + a.rto * 3 / 4 + self.rng.below(a.rto / 2);
            self.timers.push(Reverse((a.deadline, i)));
        }
    }

    fn poll_at(&self) -> Option<u64> {
        if !self.started {
            return Some(self.start_ns);
        }
        self.timers.peek().map(|Reverse((t, _))| *t)
    }
}

#[test]
fn ten_thousand_connection_attempts_at_once() {
    let mut config = Config::default();
    config.wss.clients = 8;
    let n = 10_000;
    let mut tb = bed_with(config, Swarm::new(n, u64::MAX));
    let mut good = Good::open(&mut tb);
    run(&mut tb, &mut [&mut good], SECOND, |_| false);
    let start = tb.now_ns();
    tb.peer.raw.start_ns = start;
    good.reset(start);
    let done = run(&mut tb, &mut [&mut good], 600 * SECOND, |tb| {
        tb.peer.raw.attempts.iter().all(|a| a.state == AState::Done)
    });
    let took = (tb.now_ns() - start) as f64 / 1e9;
    let swarm = &tb.peer.raw;
    let [up, s503, rst, bare, other] = swarm.counts();
    let tcp = *tb.fw.0.net().tcp_stats();
    let stats = *tb.fw.0.server().stats();
    let mut first: Vec<u64> = swarm
        .attempts
        .iter()
        .filter_map(|a| a.first_answer_ns.map(|t| t - start))
        .collect();
    first.sort_unstable();
    let pct = |p: usize| first.get(first.len() * p / 100).copied().unwrap_or(0) as f64 / 1e9;
    println!(
        "{n} attempts settled in {took:.1} s: {up} upgraded, {s503} got 503, {rst} reset, \
         {bare} closed without a response, {other} other; first answers: median {:.3} s, 90% {:.3} s, max {:.3} s; \
         good client: {} echoes, longest wait {:.3} s",
        pct(50),
        pct(90),
        first.last().copied().unwrap_or(0) as f64 / 1e9,
        good.echoed,
        good.gap(tb.now_ns()) as f64 / 1e9
    );
    println!("  tcp {tcp:?}\n  service {stats:?}");
    let unfinished: Vec<_> = swarm
        .attempts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.state != AState::Done)
        .take(5)
        .map(|(i, a)| {
            (
                i,
                a.state,
                a.outcome,
                a.tries,
                a.acked,
                a.sent,
                a.server_fin,
                String::from_utf8_lossy(&a.got).into_owned(),
            )
        })
        .collect();
    assert!(done, "every attempt answered within 600 s: {unfinished:?}");
    let odd: Vec<_> = swarm
        .attempts
        .iter()
        .filter_map(|a| match a.outcome {
            Some(Outcome::Upgraded | Outcome::Status(503) | Outcome::Reset | Outcome::BareFin) => {
                None
            }
            o => Some(o),
        })
        .take(5)
        .collect();
    assert!(odd.is_empty(), "only 101, 503 or RST: {odd:?}");
    // Handshake-completing ACKs that find no TX buffer are dropped (and counted), so
    // the burst is paced by the buffers: every attempt is served or refused in words.
    assert!(up > 0, "some were served");
    assert_eq!(rst, 0, "none reset");
    assert_eq!(stats.upgrades as usize, up + 1);
    assert_eq!(stats.refused_full as usize, s503 + bare);
    assert!(
        good.gap(tb.now_ns()) < 2 * SECOND,
        "the good client kept echoing"
    );
    assert_unaffected(&mut tb, &mut [&mut good], 2000);
    assert_no_leak(&mut tb, &mut [&mut good]);
    // Defect D1 (fixed): a 503 refusal that found no TX room was dropped, and the
    // connection closed with a bare FIN.
    assert_eq!(
        bare, 0,
        "{bare} of {} refusals (503) arrived as a bare FIN, no status line",
        stats.refused_full
    );
}

/// Defect D1 (fixed by deferring the handshake's last ACK while no TX buffer is free),
/// minimal: six connection attempts at once on a board that serves one client
/// (taken). The first five refusals each hold a TX buffer until acknowledged (the 503
/// is retained for retransmission), leaving the two buffers of the control reserve; the
/// sixth 503 finds no room, and the service closes the connection anyway
/// (`Glue::connected` ignores `send_all`'s result): that client gets a FIN with no status
/// line, which a browser reports as a network error, not as "busy".
#[test]
fn every_refusal_gets_a_503_even_when_tx_buffers_are_short() {
    let mut config = Config::default();
    config.wss.clients = 1;
    let mut tb = bed_with(config, Swarm::new(6, u64::MAX));
    let mut good = Good::open(&mut tb);
    let start = tb.now_ns();
    tb.peer.raw.start_ns = start;
    let done = run(&mut tb, &mut [&mut good], 30 * SECOND, |tb| {
        tb.peer.raw.attempts.iter().all(|a| a.state == AState::Done)
    });
    assert!(done);
    let outcomes: Vec<_> = tb.peer.raw.attempts.iter().map(|a| a.outcome).collect();
    let refused = tb.fw.0.server().stats().refused_full;
    assert_eq!(refused, 6, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Some(Outcome::Status(503) | Outcome::Reset))),
        "each refusal is a 503 (or a RST): {outcomes:?}"
    );
}

// ------------------------------------------------------------------ SYN flood

fn spoofed_syn(src_ip: [u8; 4], src_port: u16, seq: u32) -> Vec<u8> {
    let mac = [
        0x02,
        0xEE,
        src_ip[2],
        src_ip[3],
        (src_port >> 8) as u8,
        src_port as u8,
    ];
    Segment::new(src_port, 80, seq, 0, SYN)
        .mss(1460)
        .frame(mac, BOARD_MAC, src_ip, BOARD_IP)
}

#[test]
fn a_syn_flood_is_answered_with_cookies_and_clients_keep_echoing() {
    let mut tb = bed(4);
    let mut a = Good::open(&mut tb);
    let mut b = Good::open(&mut tb);
    run(&mut tb, &mut [&mut a, &mut b], SECOND, |_| false);
    // 20,000 SYNs a second for a second, from spoofed addresses and ports.
    let mut rng = Rng::new(5);
    let start = tb.now_ns();
    a.reset(start);
    b.reset(start);
    let mut sent = 0u64;
    let mut late: Option<WsClient> = None;
    let mut late_echoed = false;
    let ok = run(&mut tb, &mut [&mut a, &mut b], 30 * SECOND, |tb| {
        let now = tb.now_ns();
        while sent < 20_000 && start + sent * 50_000 <= now {
            let ip = [192, 168, 7, 10 + rng.below(200) as u8];
            let frame = spoofed_syn(ip, 1024 + rng.below(60_000) as u16, rng.next_u64() as u32);
            let mut f = frame;
            f.resize(f.len().max(60), 0);
            mzw1_sim::crc::append_fcs(&mut f);
            tb.wire.send(End::Peer, now, f);
            sent += 1;
        }
        // Halfway through, a new client connects, and must be served.
        if sent >= 10_000 && late.is_none() {
            let mut c = WsClient::connect_on(&mut tb.peer.host, "/late");
            c.send(Message::text("made it through the flood"));
            late = Some(c);
        }
        if let Some(c) = late.as_mut() {
            c.pump(&mut tb.peer.host);
            late_echoed |= c
                .take_data()
                .contains(&Message::text("made it through the flood"));
        }
        sent == 20_000 && late_echoed
    });
    let tcp = *tb.fw.0.net().tcp_stats();
    println!(
        "flood: {:?}; good clients {} and {} echoes, longest waits {:.3} / {:.3} s",
        tcp,
        a.echoed,
        b.echoed,
        a.gap(tb.now_ns()) as f64 / 1e9,
        b.gap(tb.now_ns()) as f64 / 1e9
    );
    assert!(ok, "the flood ran and the late client was served");
    assert!(
        tcp.syn_cookies_sent >= 19_000,
        "answered statelessly: {tcp:?}"
    );
    // Only the late client completed a handshake (through a cookie: the half-open table
    // was full of the flood's SYNs).
    assert_eq!((tcp.accepted, tcp.syn_cookies_accepted), (3, 1), "{tcp:?}");
    assert_unaffected(&mut tb, &mut [&mut a, &mut b], 500);
    let mut late = late.unwrap();
    close_ws(&mut tb, &mut [&mut a, &mut b], &mut late);
    assert_no_leak(&mut tb, &mut [&mut a, &mut b]);
}

// ------------------------------------------------------------------ clients that do not play

/// Opens a WebSocket by hand; returns it with the 101 read and consumed.
fn raw_upgrade<R: RawHost>(tb: &mut Bed<R>, goods: &mut [&mut Good], rx_buf: usize) -> RawClient {
    let h = tb.peer.host.tcp_connect((BOARD_IP, 80), rx_buf, 1 << 20);
    let mut raw = RawClient {
        h,
        got: Vec::new(),
        out: Vec::new(),
    };
    raw.send(&upgrade_request("/", ""));
    let ok = run(tb, goods, 5 * SECOND, |tb| {
        raw.pump(&mut tb.peer.host);
        raw.got.windows(4).any(|w| w == b"\r\n\r\n")
    });
    assert!(
        ok && status_of(&raw.got) == Some(101),
        "{:?}",
        String::from_utf8_lossy(&raw.got)
    );
    raw.got.clear();
    raw
}

fn port_of<R: RawHost>(tb: &mut Bed<R>, h: mzw1_sim::peer::SocketHandle) -> u16 {
    tb.peer
        .host
        .tcp_socket(h)
        .local_endpoint()
        .expect("connected")
        .port
}

/// The service's client slot serving the TCP connection from `port`.
fn slot_of<R: RawHost>(tb: &mut Bed<R>, port: u16) -> Option<ClientId> {
    let now = tb.board.now();
    let server = tb.fw.0.server_mut();
    (0..8)
        .map(ClientId::from_index)
        .find(|&id| server.client_remote(now, id).map(|r| r.1) == Some(port))
}

/// Masks `payload` with `mask`, from mask phase `at`.
fn masked(payload: &[u8], mask: [u8; 4], at: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[(at + i) % 4])
        .collect()
}

#[test]
fn clients_that_never_read_are_timed_out_while_others_echo() {
    let mut tb = bed(4);
    let mut a = Good::open(&mut tb);
    let mut b = Good::open(&mut tb);
    // Two clients send 300 kB to the echo and never read: their receive windows (4 kB)
    // close, the echo stops, and what they sent stays in the board's RX buffers.
    let mut stuck = Vec::new();
    for k in 0..2 {
        let h = tb.peer.host.tcp_connect((BOARD_IP, 80), 4096, 1 << 20);
        let mut out = upgrade_request("/", "");
        out.extend(client_frame(true, 0x2, &pattern(300_000, k), [1, 2, 3, 4]));
        stuck.push((h, out, None::<u64>, 0usize));
    }
    let start = tb.now_ns();
    a.reset(start);
    b.reset(start);
    let done = run(&mut tb, &mut [&mut a, &mut b], 60 * SECOND, |tb| {
        let now = tb.now_ns();
        for (h, out, reset_at, unsent) in stuck.iter_mut() {
            let n = tb.peer.host.tcp_send(*h, out);
            out.drain(..n);
            if reset_at.is_none() {
                if tb.peer.host.tcp_state(*h) == TcpState::Closed {
                    *reset_at = Some(now);
                } else if now - start < 29 * SECOND {
                    // Just before the idle timeout (30 s).
                    *unsent = out.len() + tb.peer.host.tcp_send_queue(*h);
                }
            }
        }
        stuck.iter().all(|s| s.2.is_some())
    });
    let stats = *tb.fw.0.server().stats();
    let tcp = *tb.fw.0.net().tcp_stats();
    println!(
        "stuck clients reset after {:?} s; good clients {} / {} echoes, longest waits {:.3} / \
         {:.3} s\n  {stats:?}\n  {tcp:?}",
        stuck
            .iter()
            .map(|s| s.2.map(|t| (t - start) as f64 / 1e9))
            .collect::<Vec<_>>(),
        a.echoed,
        b.echoed,
        a.gap(tb.now_ns()) as f64 / 1e9,
        b.gap(tb.now_ns()) as f64 / 1e9,
    );
    assert!(done, "both stuck clients were dropped");
    for (h, _, reset_at, unsent) in &stuck {
        // The board's window closed: 29 s in, most of the 300 kB had not left the client.
        assert!(
            *unsent > 200_000,
            "the stuck client could not send everything: {unsent} bytes left"
        );
        let after = (reset_at.unwrap() - start) as f64 / 1e9;
        // Idle (no progress) for 30 s, then the Close cannot be sent (zero window) and
        // the closing handshake times out 2 s later: RST.
        assert!((31.0..34.0).contains(&after), "dropped after {after:.2} s");
        tb.peer.host.tcp_remove(*h);
    }
    assert_eq!(
        (stats.idle_timeouts, stats.close_timeouts),
        (2, 2),
        "{stats:?}"
    );
    assert!(tcp.window_probes > 0, "the board probed the zero windows");
    assert_unaffected(&mut tb, &mut [&mut a, &mut b], 500);
    assert_no_leak(&mut tb, &mut [&mut a, &mut b]);
}

#[test]
fn a_client_that_never_answers_a_close_is_reset_after_the_close_timeout() {
    let mut tb = bed(4);
    let mut good = Good::open(&mut tb);
    // Closed by the server for being idle (30 s), and by the application (the API);
    // neither client answers the Close.
    for by_api in [false, true] {
        let mut raw = raw_upgrade(&mut tb, &mut [&mut good], 64 * 1024);
        let port = port_of(&mut tb, raw.h);
        let opened = tb.now_ns();
        good.reset(opened);
        if by_api {
            run(&mut tb, &mut [&mut good], SECOND, |tb| {
                raw.pump(&mut tb.peer.host);
                false
            });
            let id = slot_of(&mut tb, port).expect("a slot");
            let now = tb.board.now();
            let r = tb
                .fw
                .0
                .server_mut()
                .close_connection(now, id, 4001, b"go away");
            assert_eq!(r, Ok(()));
        }
        let mut close_at = None;
        let done = run(&mut tb, &mut [&mut good], 40 * SECOND, |tb| {
            raw.pump(&mut tb.peer.host);
            if close_at.is_none() && server_frames(&raw.got).iter().any(|f| f.1 == 0x8) {
                close_at = Some(tb.now_ns());
            }
            tb.peer.host.tcp_state(raw.h) == TcpState::Closed
        });
        assert!(done, "the server gave up on the client");
        let reset_at = tb.now_ns();
        let frames = server_frames(&raw.got);
        let (want, after) = if by_api {
            ((4001u16, &b"go away"[..]), 1.0)
        } else {
            ((1000, &b"idle"[..]), 30.0)
        };
        assert_eq!(frames.len(), 1, "{frames:?}");
        let (fin, op, body) = &frames[0];
        assert!(*fin && *op == 0x8);
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), want.0);
        assert_eq!(&body[2..], want.1);
        let close_after = (close_at.unwrap() - opened) as f64 / 1e9;
        assert!(
            (after..after + 0.1).contains(&close_after),
            "Close after {close_after:.3} s"
        );
        let reset_after = (reset_at - close_at.unwrap()) as f64 / 1e9;
        assert!(
            (1.99..2.1).contains(&reset_after),
            "RST {reset_after:.3} s after the Close (close timeout 2 s)"
        );
        assert_eq!(slot_of(&mut tb, port), None, "slot free");
        tb.peer.host.tcp_remove(raw.h);
        assert_unaffected(&mut tb, &mut [&mut good], 500);
    }
    let stats = *tb.fw.0.server().stats();
    assert_eq!(
        (stats.idle_timeouts, stats.close_timeouts),
        (1, 2),
        "{stats:?}"
    );
    assert_no_leak(&mut tb, &mut [&mut good]);
}

// ------------------------------------------------------------------ RFC 5961

#[test]
fn spoofed_rst_syn_and_ack_are_answered_with_challenge_acks_and_the_connection_survives() {
    let mut tb = bed(4);
    let mut good = Good::open(&mut tb);
    let mut victim = Good::open(&mut tb);
    let port = port_of(&mut tb, victim.ws.h);
    run(&mut tb, &mut [&mut good, &mut victim], SECOND, |_| false);
    // The victim stops sending; its last echo completes.
    let settled = run(&mut tb, &mut [&mut good], 2 * SECOND, |tb| {
        victim.ws.pump(&mut tb.peer.host);
        for m in victim.ws.take_data() {
            assert_eq!(Some(m), victim.outstanding.take().map(Message::binary));
        }
        victim.outstanding.is_none()
    });
    assert!(settled);
    run(&mut tb, &mut [&mut good], SECOND / 10, |tb| {
        victim.ws.pump(&mut tb.peer.host);
        false
    });
    let last = tb.peer.port(port).last;
    // The board's next sequence number and the next one it expects from the victim.
    let snd_nxt = last.seq.wrapping_add(last.payload as u32);
    let rcv_nxt = last.ack;
    let spoof = |seq: u32, ack: u32, flags: u8, data: &[u8]| {
        Segment::new(port, 80, seq, ack, flags)
            .data(data)
            .frame(PEER_MAC, BOARD_MAC, PEER_IP, BOARD_IP)
    };
    // (what, segment, challenge ACKs expected, other ACKs expected, counter and increment)
    type Counter = fn(&mzw1_wss::net::tcp::TcpStats) -> u32;
    let cases: Vec<(&str, Vec<u8>, u32, u32, Counter)> = vec![
        (
            "RST in the window, not at rcv_nxt",
            spoof(rcv_nxt.wrapping_add(100), 0, RST, b""),
            1,
            0,
            |t| t.challenge_acks,
        ),
        (
            "RST|ACK in the window, not at rcv_nxt",
            spoof(rcv_nxt.wrapping_add(1), snd_nxt, RST | ACK, b""),
            1,
            0,
            |t| t.challenge_acks,
        ),
        (
            "RST outside the window",
            spoof(rcv_nxt.wrapping_add(1 << 30), 0, RST, b""),
            0,
            0,
            |t| t.resets_received,
        ),
        (
            "RST just before the window",
            spoof(rcv_nxt.wrapping_sub(1), 0, RST, b""),
            0,
            0,
            |t| t.resets_received,
        ),
        (
            "SYN in the window",
            spoof(rcv_nxt.wrapping_add(100), 0, SYN, b""),
            1,
            0,
            |t| t.challenge_acks,
        ),
        ("SYN at rcv_nxt", spoof(rcv_nxt, 0, SYN, b""), 1, 0, |t| {
            t.challenge_acks
        }),
        (
            "SYN outside the window",
            spoof(rcv_nxt.wrapping_add(1 << 30), 0, SYN, b""),
            0,
            1,
            |t| t.rx_out_of_window,
        ),
        (
            "data acknowledging what was never sent",
            spoof(
                rcv_nxt,
                snd_nxt.wrapping_add(1 << 20),
                ACK | PSH,
                b"INJECTED",
            ),
            0,
            1,
            |t| t.rx_bad_ack,
        ),
        (
            "data with an ACK older than the window allows (RFC 5961 §5)",
            spoof(
                rcv_nxt,
                snd_nxt.wrapping_sub(1 << 20),
                ACK | PSH,
                b"INJECTED",
            ),
            1,
            0,
            |t| t.rx_bad_ack,
        ),
        (
            "data outside the receive window",
            spoof(
                rcv_nxt.wrapping_add(1 << 30),
                snd_nxt,
                ACK | PSH,
                b"INJECTED",
            ),
            0,
            1,
            |t| t.rx_out_of_window,
        ),
    ];
    good.reset(tb.now_ns());
    for (what, frame, challenges, acks, counter) in cases {
        let t0 = *tb.fw.0.net().tcp_stats();
        let p0 = tb.peer.port(port);
        tb.peer.inject(frame);
        run(&mut tb, &mut [&mut good], SECOND / 20, |tb| {
            victim.ws.pump(&mut tb.peer.host);
            false
        });
        let t1 = *tb.fw.0.net().tcp_stats();
        let p1 = tb.peer.port(port);
        assert_eq!(
            t1.challenge_acks - t0.challenge_acks,
            challenges,
            "{what}: challenge ACKs"
        );
        assert_eq!(
            p1.pure_acks - p0.pure_acks,
            (challenges + acks) as u64,
            "{what}: ACKs to the victim"
        );
        assert_eq!(
            p1.segments - p0.segments,
            p1.pure_acks - p0.pure_acks,
            "{what}"
        );
        if challenges + acks > 0 {
            assert_eq!(
                (p1.last.seq, p1.last.ack),
                (snd_nxt, rcv_nxt),
                "{what}: the ACK"
            );
        }
        if !what.starts_with("RST outside") && !what.starts_with("RST just") {
            assert!(counter(&t1) > counter(&t0), "{what}: counted");
        }
        assert_eq!(t1.resets_received, 0, "{what}: no reset");
        assert!(
            victim.ws.is_open(),
            "{what}: the victim's connection is open"
        );
    }
    // The victim's stream was not touched: it goes on echoing, byte for byte.
    victim.reset(tb.now_ns());
    run(&mut tb, &mut [&mut good, &mut victim], SECOND, |_| false);
    assert_unaffected(&mut tb, &mut [&mut good, &mut victim], 500);
    let stats = *tb.fw.0.server().stats();
    assert_eq!(stats.protocol_errors, 0, "nothing injected into a stream");
    close_ws(&mut tb, &mut [&mut good], &mut victim.ws);
    assert_no_leak(&mut tb, &mut [&mut good]);
}

// ------------------------------------------------------------------ huge frames

#[test]
fn a_frame_of_2_pow_63_minus_1_bytes_is_streamed_and_2_pow_63_is_refused() {
    let mut tb = bed(4);
    let mut good = Good::open(&mut tb);
    let mask = [0x11, 0x22, 0x33, 0x44];
    let data = pattern(3_000_000, 63);
    // Ended by the client's FIN, and by the application's Close.
    for by_api in [false, true] {
        let mut raw = raw_upgrade(&mut tb, &mut [&mut good], 64 * 1024);
        let port = port_of(&mut tb, raw.h);
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        frame.extend_from_slice(&mask);
        frame.extend(masked(&data, mask, 0));
        raw.send(&frame);
        good.reset(tb.now_ns());
        // Echoed as it arrives: a fragmented message that never ends. 3 MB is twelve times
        // the board's RAM: nothing is buffered whole.
        let echoed = run(&mut tb, &mut [&mut good], 60 * SECOND, |tb| {
            raw.pump(&mut tb.peer.host);
            raw.out.is_empty() && raw.got.len() >= data.len()
        });
        run(&mut tb, &mut [&mut good], SECOND / 10, |tb| {
            raw.pump(&mut tb.peer.host);
            false
        });
        assert!(echoed, "echoed {} of {} bytes", raw.got.len(), data.len());
        let frames = server_frames(&raw.got);
        assert_eq!(frames[0].1, 0x2, "binary");
        assert!(frames[1..].iter().all(|f| f.1 == 0x0), "then continuations");
        assert!(frames.iter().all(|f| !f.0), "never final");
        let payload: Vec<u8> = frames.iter().flat_map(|f| f.2.iter().copied()).collect();
        assert_eq!(payload.len(), data.len());
        assert!(payload == data, "byte-exact");
        raw.got.clear();
        if by_api {
            // The application closes mid-frame: Close (1001), the client cannot answer
            // inside its frame, the closing handshake times out: RST.
            let id = slot_of(&mut tb, port).expect("a slot");
            let now = tb.board.now();
            let r = tb.fw.0.server_mut().close_connection(now, id, 1001, b"");
            assert_eq!(r, Ok(()));
            let reset = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
                raw.pump(&mut tb.peer.host);
                tb.peer.host.tcp_state(raw.h) == TcpState::Closed
            });
            assert!(reset);
            let frames = server_frames(&raw.got);
            assert_eq!(frames, vec![(true, 0x8, 1001u16.to_be_bytes().to_vec())]);
        } else {
            // The client gives up: FIN. The server closes too (1006 for the application).
            tb.peer.host.tcp_close(raw.h);
            let closed = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
                raw.pump(&mut tb.peer.host);
                matches!(
                    tb.peer.host.tcp_state(raw.h),
                    TcpState::Closed | TcpState::TimeWait
                )
            });
            assert!(closed, "{:?}", tb.peer.host.tcp_state(raw.h));
            assert!(raw.got.is_empty(), "no Close frame after the peer's FIN");
        }
        assert_eq!(slot_of(&mut tb, port), None, "slot free");
        tb.peer.host.tcp_remove(raw.h);
        assert_unaffected(&mut tb, &mut [&mut good], 500);
    }
    // 2^63: the most significant bit must be 0 (§5.2): 1002, then TCP closes.
    let mut raw = raw_upgrade(&mut tb, &mut [&mut good], 64 * 1024);
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend(masked(b"never read", mask, 0));
    raw.send(&frame);
    let closed = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
        raw.pump(&mut tb.peer.host);
        raw.server_closed(&tb.peer.host)
    });
    assert!(closed);
    assert_eq!(
        server_frames(&raw.got),
        vec![(true, 0x8, 1002u16.to_be_bytes().to_vec())]
    );
    tb.peer.host.tcp_close(raw.h);
    let stats = *tb.fw.0.server().stats();
    assert_eq!(stats.protocol_errors, 1, "{stats:?}");
    assert_eq!(stats.close_timeouts, 1, "{stats:?}");
    assert_unaffected(&mut tb, &mut [&mut good], 500);
    assert_no_leak(&mut tb, &mut [&mut good]);
}

// ------------------------------------------------------------------ churn

#[test]
fn a_thousand_connect_close_cycles_leak_nothing() {
    let mut tb = bed(4);
    let mut good = Good::open(&mut tb);
    let half_request = &upgrade_request("/", "")[..40];
    let mut upgrades = 0;
    good.reset(tb.now_ns());
    for i in 0..1000u32 {
        let how = i % 5;
        if how == 4 {
            // Gone in the middle of the request: FIN or RST.
            let mut raw = RawClient::connect_on(&mut tb.peer.host);
            raw.send(half_request);
            let sent = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
                raw.pump(&mut tb.peer.host);
                raw.out.is_empty() && tb.peer.host.tcp_send_queue(raw.h) == 0
            });
            assert!(sent, "cycle {i}");
            if i % 2 == 0 {
                tb.peer.host.tcp_close(raw.h);
            } else {
                tb.peer.host.tcp_abort(raw.h);
                // Let the RST go out before the socket is removed.
                run(&mut tb, &mut [&mut good], MS, |_| false);
            }
            let gone = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
                raw.pump(&mut tb.peer.host);
                matches!(
                    tb.peer.host.tcp_state(raw.h),
                    TcpState::Closed | TcpState::TimeWait
                )
            });
            assert!(gone, "cycle {i}: {:?}", tb.peer.host.tcp_state(raw.h));
            tb.peer.host.tcp_remove(raw.h);
            continue;
        }
        let mut ws = WsClient::connect_on(&mut tb.peer.host, "/cycle");
        let text = format!("cycle {i}");
        ws.send(Message::text(text.clone()));
        let echoed = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
            ws.pump(&mut tb.peer.host);
            ws.take_data().contains(&Message::text(text.clone()))
        });
        if !echoed {
            let states: Vec<_> = (0..4)
                .map(|k| tb.fw.0.server().client_state(ClientId::from_index(k)))
                .collect();
            eprintln!(
                "states {states:?}\n{:?}\n{:?}",
                tb.fw.0.server().stats(),
                tb.fw.0.net().tcp_stats()
            );
        }
        assert!(echoed, "cycle {i}: {:?} {:?}", ws.refused(), ws.over());
        upgrades += 1;
        match how {
            // The closing handshake.
            0 | 1 => close_ws(&mut tb, &mut [&mut good], &mut ws),
            // FIN without a Close frame.
            2 => {
                tb.peer.host.tcp_close(ws.h);
                let gone = run(&mut tb, &mut [&mut good], 5 * SECOND, |tb| {
                    ws.pump(&mut tb.peer.host);
                    matches!(
                        tb.peer.host.tcp_state(ws.h),
                        TcpState::Closed | TcpState::TimeWait
                    )
                });
                assert!(gone, "cycle {i}");
                tb.peer.host.tcp_remove(ws.h);
            }
            // RST.
            _ => {
                tb.peer.host.tcp_abort(ws.h);
                run(&mut tb, &mut [&mut good], MS, |_| false);
                tb.peer.host.tcp_remove(ws.h);
            }
        }
        assert!(tb.fw.0.net().slots_in_use() <= 10);
    }
    let stats = *tb.fw.0.server().stats();
    let tcp = *tb.fw.0.net().tcp_stats();
    println!(
        "1000 cycles in {:.1} s of virtual time; good client {} echoes, longest wait {:.3} s\n  \
         {stats:?}\n  {tcp:?}",
        tb.now_ns() as f64 / 1e9,
        good.echoed,
        good.gap(tb.now_ns()) as f64 / 1e9
    );
    assert_eq!(stats.upgrades, upgrades + 1);
    assert_eq!(
        stats.protocol_errors + stats.close_timeouts + stats.idle_timeouts,
        0
    );
    assert_eq!(tcp.resets_received, 200 + 100, "{tcp:?}");
    assert_unaffected(&mut tb, &mut [&mut good], 500);
    assert_no_leak(&mut tb, &mut [&mut good]);
}
