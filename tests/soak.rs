//! Soak: eight tungstenite clients (over smoltcp) against the reference firmware for an
//! hour of virtual time, on a wire that loses, duplicates, reorders and corrupts frames
//! both ways (seeded). Each client sends text (UTF-8 with 1- to 4-byte characters) and
//! binary messages of 0 to 64 KiB, whole or fragmented (continuation frames, sometimes a
//! Ping between fragments), pings, and now and then closes the connection and opens a
//! new one. Every message must come back byte-exact and in order, every Ping its Pong,
//! every Close its Close (the client's code echoed), TCP must close and the server's
//! slot must be free at once; at the end no TCP slot, client slot, TX buffer or RX spare
//! buffer may be left taken.
//!
//! Virtual duration: 60 minutes (about two minutes of wall time in a debug build, one in
//! release); `SOAK_MINUTES=N` overrides it. `cargo test --release --test soak --
//! --nocapture` prints the totals.

#[path = "common/ws_peer.rs"]
mod ws_peer;

use mzw1_reference::{Config, RXB, RXD, TXB};
use mzw1_sim::peer::TcpState;
use mzw1_sim::wire::Rng;
use mzw1_sim::{Board, BoardConfig, Impairments, PeerHost, Reference, Testbed, Wire, WireConfig};
use mzw1_wss::service::{ClientId, ClientState};
use std::collections::VecDeque;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use ws_peer::*;

const CLIENTS: usize = 8;
const SEED: u64 = 0x50A4_2026;
/// Messages (and Pings) a client has in flight at most.
const MAX_OUTSTANDING: usize = 3;
/// Longest pause between two actions of a client, virtual nanoseconds.
const MAX_THINK_NS: u64 = 1_200_000_000;
/// Any one wait (an upgrade, an echo, a closing handshake) longer than this fails the
/// test: with the impairments below, smoltcp's RTO back-off stays far below it.
const STALL_NS: u64 = 90 * SECOND;

fn impairments() -> Impairments {
    Impairments {
        loss: 0.01,
        duplicate: 0.01,
        reorder: 0.02,
        corrupt: 0.005,
        delay_ns: 0,
        seed: SEED,
    }
}

fn minutes() -> u64 {
    match std::env::var("SOAK_MINUTES") {
        Ok(v) => v.parse().expect("SOAK_MINUTES is a number of minutes"),
        Err(_) => 60,
    }
}

/// Characters of 1, 2, 3 and 4 bytes in UTF-8.
const CHARS: &[char] = &['a', 'Z', ' ', '~', 'é', 'ß', 'Ж', '€', '中', '✓', '😀', '𝄞'];

/// The phases of one client's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No connection; a new one opens at `next_action`.
    Away,
    /// Upgrade requested.
    Connecting,
    /// Messages and pings flow.
    Open,
    /// No new messages: waiting for every echo and pong, then Close.
    Draining,
    /// Close sent: waiting for the server's Close, then for TCP to close.
    Closing,
}

#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    connects: u64,
    closes: u64,
    messages: u64,
    text: u64,
    fragmented: u64,
    fragments: u64,
    bytes: u64,
    largest: usize,
    empty: u64,
    pings: u64,
    pings_between_fragments: u64,
}

struct Client {
    k: usize,
    rng: Rng,
    ws: Option<WsClient>,
    port: u16,
    phase: Phase,
    since: u64,
    next_action: u64,
    /// Messages sent and not yet echoed: (when, text, bytes).
    sent: VecDeque<(u64, bool, Vec<u8>)>,
    /// Pings not yet answered: (when, payload).
    pings: VecDeque<(u64, Vec<u8>)>,
    close_code: u16,
    /// Set when the server's Close came back.
    close_answered: bool,
    serial: u64,
}

impl Client {
    fn new(k: usize) -> Client {
        Client {
            k,
            rng: Rng::new(SEED ^ ((k as u64 + 1) * 0x1_0001)),
            ws: None,
            port: 0,
            phase: Phase::Away,
            since: 0,
            next_action: 0,
            sent: VecDeque::new(),
            pings: VecDeque::new(),
            close_code: 0,
            close_answered: false,
            serial: 0,
        }
    }

    fn ws(&mut self) -> &mut WsClient {
        self.ws.as_mut().expect("a connection")
    }

    fn set_phase(&mut self, phase: Phase, now: u64) {
        self.phase = phase;
        self.since = now;
    }

    fn think(&mut self, now: u64) {
        self.next_action = now + self.rng.below(MAX_THINK_NS);
    }

    fn size(&mut self) -> usize {
        match self.rng.below(10) {
            0..=2 => self.rng.below(126) as usize,
            3..=5 => self.rng.below(4097) as usize,
            _ => self.rng.below(65_537) as usize,
        }
    }

    fn text(&mut self, len: usize) -> Vec<u8> {
        let mut s = String::with_capacity(len + 4);
        while s.len() < len {
            s.push(CHARS[self.rng.below(CHARS.len() as u64) as usize]);
        }
        s.into_bytes()
    }

    fn binary(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }

    fn ping_payload(&mut self) -> Vec<u8> {
        self.serial += 1;
        let mut p = format!("{}:{}:", self.k, self.serial).into_bytes();
        let extra = self.rng.below(126 - p.len() as u64) as usize;
        p.extend(self.binary(extra));
        p
    }

    /// How long the oldest message, Ping or phase change has waited.
    fn waiting(&self, now: u64) -> u64 {
        let oldest = match self.phase {
            Phase::Open => [
                self.sent.front().map(|m| m.0),
                self.pings.front().map(|p| p.0),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now),
            _ => self.since,
        };
        now - oldest
    }

    fn ping(&mut self, now: u64, t: &mut Totals) {
        let p = self.ping_payload();
        self.ws().send(Message::Ping(p.clone().into()));
        self.pings.push_back((now, p));
        t.pings += 1;
    }

    /// Sends a random message, whole or in fragments.
    fn send_message(&mut self, now: u64, t: &mut Totals) {
        let len = self.size();
        let text = self.rng.below(2) == 0;
        let bytes = if text {
            self.text(len)
        } else {
            self.binary(len)
        };
        t.messages += 1;
        t.text += text as u64;
        t.bytes += bytes.len() as u64;
        t.largest = t.largest.max(bytes.len());
        t.empty += bytes.is_empty() as u64;
        if self.rng.below(3) == 0 {
            // Fragmented, split anywhere (inside a UTF-8 character too); empty fragments
            // allowed.
            let parts = 2 + self.rng.below(5) as usize;
            let mut cuts: Vec<usize> = (1..parts)
                .map(|_| self.rng.below(bytes.len() as u64 + 1) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.insert(0, 0);
            cuts.push(bytes.len());
            t.fragmented += 1;
            t.fragments += parts as u64;
            for j in 0..parts {
                let chunk = bytes[cuts[j]..cuts[j + 1]].to_vec();
                let op = match (j, text) {
                    (0, true) => Data::Text,
                    (0, false) => Data::Binary,
                    _ => Data::Continue,
                };
                let fin = j + 1 == parts;
                self.ws()
                    .send(Message::Frame(Frame::message(chunk, OpCode::Data(op), fin)));
                if !fin && self.pings.len() < MAX_OUTSTANDING && self.rng.below(5) == 0 {
                    self.ping(now, t);
                    t.pings_between_fragments += 1;
                }
            }
        } else if text {
            let s = String::from_utf8(bytes.clone()).expect("valid UTF-8");
            self.ws().send(Message::text(s));
        } else {
            self.ws().send(Message::binary(bytes.clone()));
        }
        self.sent.push_back((now, text, bytes));
    }

    /// Checks what came back: echoes in order, pongs in order.
    fn check_received(&mut self, now: u64) {
        let k = self.k;
        let ws = self.ws.as_mut().expect("a connection");
        for m in ws.take_data() {
            let (_, text, want) = self
                .sent
                .pop_front()
                .unwrap_or_else(|| panic!("client {k}: an echo nobody sent: {m:?}"));
            let got: &[u8] = match &m {
                Message::Text(s) => {
                    assert!(text, "client {k}: binary message echoed as text");
                    s.as_bytes()
                }
                Message::Binary(b) => {
                    assert!(!text, "client {k}: text message echoed as binary");
                    b
                }
                _ => unreachable!(),
            };
            assert_eq!(got.len(), want.len(), "client {k}: echoed length");
            if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                panic!(
                    "client {k}: echo differs at byte {i} of {} (t = {:.3} s)",
                    want.len(),
                    now as f64 / 1e9
                );
            }
        }
        for m in ws.received.drain(..) {
            match m {
                Message::Pong(p) => {
                    let (_, want) = self
                        .pings
                        .pop_front()
                        .unwrap_or_else(|| panic!("client {k}: a Pong nobody asked for"));
                    assert_eq!(&p[..], &want[..], "client {k}: Pong payload");
                }
                other => panic!("client {k}: unexpected {other:?}"),
            }
        }
    }
}

/// The server's client slots, with the remote port of each taken one.
fn server_ports(tb: &mut Testbed<Reference>) -> Vec<(ClientState, Option<u16>)> {
    let now = tb.board.now();
    let server = tb.fw.0.server_mut();
    (0..CLIENTS as u8)
        .map(|i| {
            let id = ClientId::from_index(i);
            (
                server.client_state(id),
                server.client_remote(now, id).map(|r| r.1),
            )
        })
        .collect()
}

#[test]
fn eight_clients_for_an_hour_on_an_impaired_wire() {
    let minutes = minutes();
    let wall = std::time::Instant::now();
    let mut config = Config::default();
    config.wss.clients = CLIENTS as u8;
    let mut board = Board::new(BoardConfig::default());
    let fw = Reference::boot(&mut board, config);
    let wire = Wire::new(WireConfig {
        impair: impairments(),
        ..WireConfig::default()
    });
    let peer = PeerHost::new(PEER_MAC, PEER_IP, 24);
    let mut tb = Testbed::new(board, fw, wire, peer);
    tb.run_for(3 * SECOND);
    let spare0 = tb.fw.0.mac().rx.spare_buffers();
    assert_eq!(spare0 as usize, RXB - RXD, "spare RX buffers at start");
    assert_eq!(tb.fw.0.mac().tx.free_buffers() as usize, TXB);

    let start = tb.now_ns();
    let end = start + minutes * 60 * SECOND;
    let mut clients: Vec<Client> = (0..CLIENTS).map(Client::new).collect();
    for c in clients.iter_mut() {
        c.next_action = start + c.rng.below(SECOND);
    }
    let mut t = Totals::default();
    let mut min_tx_free = TXB as u32;
    let mut min_rx_spare = spare0;
    let mut next_report = start + 10 * 60 * SECOND;

    let finished = tb.run_until(
        |tb| {
            let now = tb.now_ns();
            let stopping = now >= end;
            min_tx_free = min_tx_free.min(tb.fw.0.mac().tx.free_buffers());
            min_rx_spare = min_rx_spare.min(tb.fw.0.mac().rx.spare_buffers());
            for c in clients.iter_mut() {
                let k = c.k;
                if let Some(ws) = c.ws.as_mut() {
                    ws.pump(&mut tb.peer);
                }
                if c.phase != Phase::Away {
                    c.check_received(now);
                    assert!(
                        c.waiting(now) < STALL_NS,
                        "client {k} stuck in {:?} for {} s (t = {:.1} s): {} messages, {} pings \
                         outstanding; over: {:?}; server {:?}",
                        c.phase,
                        STALL_NS / SECOND,
                        now as f64 / 1e9,
                        c.sent.len(),
                        c.pings.len(),
                        c.ws.as_ref().and_then(|w| w.over().map(str::to_owned)),
                        tb.fw.0.server().stats()
                    );
                }
                match c.phase {
                    Phase::Away => {
                        if !stopping && now >= c.next_action {
                            c.ws = Some(WsClient::connect_on(&mut tb.peer, "/soak"));
                            c.set_phase(Phase::Connecting, now);
                        }
                    }
                    Phase::Connecting => {
                        let ws = c.ws.as_ref().expect("a connection");
                        if let Some(status) = ws.refused() {
                            panic!("client {k}: upgrade refused with {status}");
                        }
                        if let Some(why) = ws.over() {
                            panic!("client {k}: upgrade failed: {why}");
                        }
                        if ws.is_open() {
                            let h = ws.h;
                            c.port = tb
                                .peer
                                .tcp_socket(h)
                                .local_endpoint()
                                .expect("connected")
                                .port;
                            t.connects += 1;
                            c.set_phase(Phase::Open, now);
                            c.think(now);
                        }
                    }
                    Phase::Open => {
                        if let Some(why) = c.ws().over() {
                            panic!("client {k}: connection lost: {why}");
                        }
                        assert!(c.ws().close.is_none(), "client {k}: closed by the server");
                        if stopping {
                            c.set_phase(Phase::Draining, now);
                        } else if now >= c.next_action {
                            let r = c.rng.below(100);
                            if r < 2 {
                                c.set_phase(Phase::Draining, now);
                            } else if r < 12 && c.pings.len() < MAX_OUTSTANDING {
                                c.ping(now, &mut t);
                            } else if c.sent.len() < MAX_OUTSTANDING {
                                c.send_message(now, &mut t);
                            }
                            c.think(now);
                        }
                    }
                    Phase::Draining => {
                        if c.sent.is_empty() && c.pings.is_empty() {
                            let code = match c.rng.below(4) {
                                0 => 1000,
                                1 => 1001,
                                2 => 3000 + c.rng.below(1000) as u16,
                                _ => 4000 + c.rng.below(1000) as u16,
                            };
                            let reason_len = c.rng.below(40) as usize;
                            let reason = String::from_utf8(c.text(reason_len)).unwrap();
                            c.close_code = code;
                            c.close_answered = false;
                            c.ws().close(Some(CloseFrame {
                                code: CloseCode::from(code),
                                reason: reason.into(),
                            }));
                            c.set_phase(Phase::Closing, now);
                        }
                    }
                    Phase::Closing => {
                        let h = c.ws().h;
                        if !c.close_answered
                            && let Some(answer) = c.ws().close.clone()
                        {
                            let code = answer.map(|f| u16::from(f.code));
                            assert_eq!(
                                code,
                                Some(c.close_code),
                                "client {k}: the server echoes the Close code"
                            );
                            c.close_answered = true;
                            // The closing handshake is complete: the slot is free.
                            let port = c.port;
                            let slots = server_ports(tb);
                            assert!(
                                slots.iter().all(|s| s.1 != Some(port)),
                                "client {k}: slot still taken after the Close: {slots:?}"
                            );
                        }
                        match tb.peer.tcp_state(h) {
                            // The server closes TCP first (RFC 6455 §7.1.1).
                            TcpState::CloseWait if c.close_answered => tb.peer.tcp_close(h),
                            TcpState::Closed if c.close_answered => {
                                tb.peer.tcp_remove(h);
                                c.ws = None;
                                t.closes += 1;
                                c.set_phase(Phase::Away, now);
                                c.next_action = now + c.rng.below(3 * SECOND);
                            }
                            TcpState::Closed | TcpState::TimeWait => {
                                panic!("client {k}: TCP closed before the Close answer")
                            }
                            _ => {}
                        }
                    }
                }
            }
            if now >= next_report {
                next_report += 10 * 60 * SECOND;
                println!(
                    "[{:>5.0} s] {} messages, {} MB, {} closes; wall {:.1} s",
                    (now - start) as f64 / 1e9,
                    t.messages,
                    t.bytes / 1_000_000,
                    t.closes,
                    wall.elapsed().as_secs_f64()
                );
            }
            stopping && clients.iter().all(|c| c.phase == Phase::Away)
        },
        (minutes * 60 + 300) * SECOND,
    );
    assert!(finished, "every client closed after the soak");
    let soak_s = (tb.now_ns() - start) as f64 / 1e9;

    // TIME-WAIT (2 s) ends; nothing may be left taken.
    let quiet = tb.run_until(|tb| tb.fw.0.net().slots_in_use() == 0, 30 * SECOND);
    let server = tb.fw.0.server();
    let stats = *server.stats();
    let tcp = *tb.fw.0.net().tcp_stats();
    let net = *tb.fw.0.net().stats();
    let mac = tb.fw.0.mac().stats();
    let w = tb.wire.stats;
    println!(
        "soak: {minutes} min planned, {soak_s:.0} s of virtual time in {:.1} s of wall time",
        wall.elapsed().as_secs_f64()
    );
    println!("  totals {t:?}");
    println!(
        "  echoed {:.1} MB each way; {} upgrades; {} closes",
        t.bytes as f64 / 1e6,
        stats.upgrades,
        t.closes
    );
    println!(
        "  board TCP: retransmits {} timeout, {} fast, {} SACK; {} segments out of order, \
         {} duplicates, {} bad checksums; {} with no spare RX buffer",
        tcp.retransmits_timeout,
        tcp.retransmits_fast,
        tcp.retransmits_sack,
        tcp.rx_out_of_order,
        tcp.rx_duplicate,
        tcp.rx_bad_checksum,
        tcp.rx_no_spare
    );
    println!("  wire {w:?}");
    println!("  ip bad checksums {}", net.ip_bad_checksum);
    println!("  lowest TX buffers free {min_tx_free}, lowest spare RX buffers {min_rx_spare}");
    println!("  service {stats:?}");
    println!("  mac {mac:?}");

    assert!(quiet, "TCP slots in use: {}", tb.fw.0.net().slots_in_use());
    for (id, state) in tb.fw.0.server().clients() {
        assert_eq!(state, ClientState::Closed, "client slot {}", id.index());
    }
    let m = tb.fw.0.mac();
    assert_eq!(m.tx.free_buffers() as usize, TXB, "TX buffers all free");
    assert_eq!(m.tx.queued(), 0, "nothing queued for transmission");
    assert_eq!(m.rx.spare_buffers(), spare0, "spare RX buffers all back");
    assert_eq!(stats.upgrades as u64, t.connects);
    assert_eq!(t.connects, t.closes);
    assert_eq!(
        (
            stats.protocol_errors,
            stats.idle_timeouts,
            stats.handshake_timeouts,
            stats.close_timeouts,
            stats.refused,
            stats.refused_full
        ),
        (0, 0, 0, 0, 0, 0),
        "nothing failed: {stats:?}"
    );
    assert_eq!(tcp.timeouts, 0, "no connection gave up");
    // The impairments happened, each kind, both ways.
    assert!(w.lost.iter().all(|&n| n > 0) && w.duplicated.iter().all(|&n| n > 0));
    assert!(w.reordered.iter().all(|&n| n > 0) && w.corrupted.iter().all(|&n| n > 0));
    assert!(tcp.retransmits_timeout + tcp.retransmits_fast + tcp.retransmits_sack > 0);
    // Enough traffic to mean something: on average a message a second per client.
    let expected = minutes * 60 * CLIENTS as u64 / 2;
    assert!(
        t.messages >= expected,
        "{} messages, expected at least {expected}",
        t.messages
    );
}
