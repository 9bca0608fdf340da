//! The WebSocket service against tungstenite (over smoltcp on the simulated wire, in
//! virtual time): the opening handshake and its refusals, messages both ways and
//! fragmented, many clients, timeouts, the closing handshake, and the API. Requests and
//! frames tungstenite would never send are written by hand (`RawClient`).

#[path = "common/ws_peer.rs"]
mod ws_peer;

use mzw1_reference::Config;
use mzw1_sim::{Reference, Service, Testbed};
use mzw1_wss::service::{ClientId, ClientState, Ctx, DataInfo, Event, Handler, Page, SendError};
use mzw1_wss::ws::frame::MessageKind;
use mzw1_wss::ws::handshake::HandshakeConfig;
use std::cell::RefCell;
use std::rc::Rc;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use ws_peer::*;

fn reference(config: Config) -> Testbed<Reference> {
    testbed(|board| Reference::boot(board, config))
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn data_bytes(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => &[],
    }
}

fn open_all<F: mzw1_sim::Firmware>(tb: &mut Testbed<F>, clients: &mut [WsClient]) {
    let open = run_clients(
        tb,
        &mut clients.iter_mut().collect::<Vec<_>>(),
        |_, cs| cs.iter().all(|c| c.is_open()),
        10 * ws_peer::SECOND,
    );
    let why: Vec<_> = clients
        .iter()
        .map(|c| c.over().map(str::to_owned))
        .collect();
    assert!(open, "every upgrade completes: {why:?}");
}

/// Echoes `messages` on each client (one list per client) and checks every byte.
fn echo_round<F: mzw1_sim::Firmware>(
    tb: &mut Testbed<F>,
    clients: &mut [WsClient],
    messages: &[Vec<Message>],
    limit_s: u64,
) {
    for (c, ms) in clients.iter_mut().zip(messages) {
        for m in ms {
            c.send(m.clone());
        }
    }
    let mut got: Vec<Vec<Message>> = vec![Vec::new(); clients.len()];
    let done = run_clients(
        tb,
        &mut clients.iter_mut().collect::<Vec<_>>(),
        |_, cs| {
            for (c, g) in cs.iter_mut().zip(got.iter_mut()) {
                g.extend(c.take_data());
            }
            got.iter().zip(messages).all(|(g, m)| g.len() >= m.len())
        },
        limit_s * SECOND,
    );
    let counts: Vec<_> = got.iter().map(Vec::len).collect();
    assert!(done, "every message echoed within {limit_s} s: {counts:?}");
    for (k, (g, want)) in got.iter().zip(messages).enumerate() {
        for (j, (a, b)) in g.iter().zip(want).enumerate() {
            assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "client {k} message {j}: kind"
            );
            let (a, b) = (data_bytes(a), data_bytes(b));
            assert_eq!(a.len(), b.len(), "client {k} message {j}: length");
            if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
                panic!("client {k} message {j}: first difference at byte {i}");
            }
        }
    }
}

// ------------------------------------------------------------------ a recording app

/// What the application saw, in order: `"client: event"`.
type Log = Rc<RefCell<Vec<String>>>;

/// An application that logs every callback and echoes data (streaming, as the
/// reference app does); it refuses `/private` and serves a multi-segment page at `/big`.
struct Recorder {
    log: Log,
    big: &'static [u8],
}

impl Recorder {
    fn new() -> (Recorder, Log) {
        let log = Log::default();
        let big: &'static [u8] = Box::leak(pattern(5000, 9).into_boxed_slice());
        (
            Recorder {
                log: log.clone(),
                big,
            },
            log,
        )
    }
}

impl Handler for Recorder {
    fn on_data(
        &mut self,
        ctx: &mut Ctx<'_, '_, '_>,
        client: ClientId,
        data: &mut [u8],
        info: DataInfo,
    ) -> Option<usize> {
        match ctx.send_message(client, info.kind, data, info.last) {
            Ok(n) => Some(n),
            Err(SendError::WouldBlock) => None,
            Err(_) => Some(data.len()),
        }
    }

    fn on_event(&mut self, _ctx: &mut Ctx<'_, '_, '_>, client: ClientId, event: Event<'_>) {
        let text = match event {
            Event::Connecting(..) => "connecting".to_owned(),
            Event::Connected { path, subprotocol } => format!(
                "connected {} {subprotocol:?}",
                String::from_utf8_lossy(path)
            ),
            Event::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
            Event::Pong(p) => format!("pong {}", String::from_utf8_lossy(p)),
            Event::CloseReceived { code, reason } => {
                format!("close {code:?} {}", String::from_utf8_lossy(reason))
            }
            Event::Writable => return,
            other => format!("{other:?}").to_lowercase(),
        };
        self.log
            .borrow_mut()
            .push(format!("{}: {text}", client.index()));
    }

    fn accept(&mut self, path: &[u8]) -> bool {
        path != b"/private"
    }

    fn page(&mut self, path: &[u8]) -> Option<&'static Page> {
        let body = self.big;
        (path == b"/big").then(|| {
            &*Box::leak(Box::new(Page {
                content_type: "application/octet-stream",
                body,
            }))
        })
    }
}

fn recorder(config: Config) -> (Testbed<Service<Recorder>>, Log) {
    let (app, log) = Recorder::new();
    (testbed(|board| Service::boot(board, config, app)), log)
}

fn log_has(log: &Log, entry: &str) -> bool {
    log.borrow().iter().any(|e| e == entry)
}

// ------------------------------------------------------------------ opening handshake

#[test]
fn handshake_variations_are_upgraded() {
    let mut config = Config::default();
    config.wss.handshake = HandshakeConfig {
        subprotocols: &["chat.v2", "chat"],
        ..HandshakeConfig::default()
    };
    let (mut tb, log) = recorder(config);

    // tungstenite offering two subprotocols: the server's preference wins.
    let uri: tungstenite::http::Uri = "ws://192.168.7.2/room?x=1".parse().unwrap();
    let request = tungstenite::ClientRequestBuilder::new(uri)
        .with_sub_protocol("chat")
        .with_sub_protocol("chat.v2");
    let mut c = WsClient::connect_request(&mut tb, request);
    open_all(&mut tb, std::slice::from_mut(&mut c));
    let r = c.response.as_ref().expect("101 response");
    assert_eq!(r.headers()["sec-websocket-protocol"], "chat.v2");
    assert!(
        log_has(&log, "0: connected /room?x=1 Some(\"chat.v2\")"),
        "{:?}",
        log.borrow()
    );
    echo_round(
        &mut tb,
        std::slice::from_mut(&mut c),
        &[vec![Message::text("hi")]],
        5,
    );

    // Firefox's `Connection: keep-alive, Upgrade`, odd header case and spacing, and the
    // request arriving one byte per segment.
    let request = b"GET /ff HTTP/1.1\r\nhOsT: board\r\nuser-agent: Mozilla/5.0\r\n\
        upgrade:   WebSocket  \r\nconnection: keep-alive, Upgrade\r\n\
        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n";
    let mut raw = RawClient::connect(&mut tb);
    let mut at = 0;
    let ok = tb.run_until(
        |tb| {
            if at < request.len() && tb.peer.tcp_send_queue(raw.h) == 0 {
                raw.send(&request[at..at + 1]);
                at += 1;
            }
            raw.pump(&mut tb.peer);
            raw.got.windows(4).any(|w| w == b"\r\n\r\n")
        },
        20 * SECOND,
    );
    let text = String::from_utf8_lossy(&raw.got).into_owned();
    assert!(ok, "a response: {text:?}");
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    // RFC 6455 §1.3's example key and accept value.
    assert!(
        text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{text}"
    );
    assert!(
        !text.contains("Sec-WebSocket-Protocol"),
        "none offered, none chosen"
    );
}

#[test]
fn every_refusal_is_well_formed_http_and_closes_the_connection() {
    let mut config = Config::default();
    config.wss.handshake = HandshakeConfig {
        allowed_origins: &["http://good.example"],
        ..HandshakeConfig::default()
    };
    let (mut tb, _log) = recorder(config);
    let long_path = format!("/{}", "p".repeat(200));
    let huge_header = format!("X-Filler: {}\r\n", "f".repeat(3000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "POST",
            b"POST /echo HTTP/1.1\r\nHost: b\r\n\r\n".to_vec(),
            "405",
        ),
        (
            "HTTP/1.0",
            upgrade_request("/echo", "").replace_version(),
            "400",
        ),
        (
            "no Host",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            "no Connection: upgrade",
            b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            "key of 15 bytes",
            b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            "version 8",
            b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
                .to_vec(),
            "426",
        ),
        (
            "bad origin",
            upgrade_request("/echo", "Origin: http://evil.example\r\n"),
            "403",
        ),
        (
            "refused path",
            upgrade_request("/private", "Origin: http://good.example\r\n"),
            "404",
        ),
        (
            "no page",
            b"GET /nothing HTTP/1.1\r\nHost: b\r\n\r\n".to_vec(),
            "404",
        ),
        ("long path", upgrade_request(&long_path, ""), "414"),
        (
            "huge headers",
            upgrade_request("/echo", &huge_header),
            "431",
        ),
        (
            "garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "Sec-WebSocket-Key twice",
            upgrade_request("/echo", "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"),
            "400",
        ),
    ];
    for (what, request, status) in cases {
        let (got, closed) = RawClient::exchange(&mut tb, &request, 10 * SECOND);
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(closed, "{what}: the server closes the connection: {text:?}");
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: status {status}: {text:?}"
        );
        let head_end = text.find("\r\n\r\n").expect("complete head");
        let head = &text[..head_end];
        assert!(head.contains("\r\nConnection: close"), "{what}: {head}");
        assert!(head.contains("\r\nContent-Length: 0"), "{what}: {head}");
        assert_eq!(text.len(), head_end + 4, "{what}: nothing after the head");
        if status == "426" {
            assert!(head.contains("\r\nSec-WebSocket-Version: 13"), "{head}");
        }
        if status == "405" {
            assert!(head.contains("\r\nAllow: GET"), "{head}");
        }
        tb.run_for(SECOND / 10);
    }
    let stats = *tb.fw.0.stats();
    assert_eq!(stats.refused, 13, "{stats:?}");
    assert_eq!(stats.upgrades, 0);
}

trait ReplaceVersion {
    fn replace_version(self) -> Vec<u8>;
}

impl ReplaceVersion for Vec<u8> {
    fn replace_version(self) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replacen("HTTP/1.1", "HTTP/1.0", 1)
            .into_bytes()
    }
}

#[test]
fn pages_are_served_whole_across_segments() {
    let (mut tb, _log) = recorder(Config::default());
    let (got, closed) = RawClient::exchange(
        &mut tb,
        b"GET /big HTTP/1.1\r\nHost: b\r\n\r\n",
        10 * SECOND,
    );
    assert!(closed);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 5000\r\n"), "{head}");
    assert_eq!(
        &got[head_end..],
        &pattern(5000, 9)[..],
        "the body, byte for byte"
    );

    // The reference app's chat page.
    let mut tb = reference(Config::default());
    let (got, _) = RawClient::exchange(&mut tb, b"GET / HTTP/1.1\r\nHost: b\r\n\r\n", 10 * SECOND);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"),
        "{text}"
    );
    assert!(text.contains("new WebSocket("), "{text}");
}

#[test]
fn an_unfinished_handshake_is_dropped_after_5_s() {
    let (mut tb, log) = recorder(Config::default());
    let mut raw = RawClient::connect(&mut tb);
    raw.send(b"GET / HTTP/1.1\r\nHost: b\r\n");
    let start = tb.now_ns();
    let closed = tb.run_until(
        |tb| {
            raw.pump(&mut tb.peer);
            !matches!(
                tb.peer.tcp_state(raw.h),
                mzw1_sim::peer::TcpState::Established | mzw1_sim::peer::TcpState::SynSent
            )
        },
        10 * SECOND,
    );
    let after = (tb.now_ns() - start) as f64 / 1e9;
    assert!(
        closed && (4.9..6.0).contains(&after),
        "dropped after {after:.2} s"
    );
    assert!(raw.got.is_empty(), "no response to half a request");
    assert!(
        log_has(&log, "0: error(handshaketimeout)"),
        "{:?}",
        log.borrow()
    );
    assert!(log_has(&log, "0: closed"));
    assert_eq!(tb.fw.0.stats().handshake_timeouts, 1);
    assert_eq!(
        tb.fw.0.client_state(ClientId::from_index(0)),
        ClientState::Closed
    );
}

// ------------------------------------------------------------------ clients

#[test]
fn eight_clients_at_once_and_the_ninth_gets_503() {
    let mut config = Config::default();
    config.wss.clients = 8;
    let mut tb = reference(config);
    let mut clients: Vec<WsClient> = (0..8)
        .map(|_| WsClient::connect(&mut tb, "/echo"))
        .collect();
    open_all(&mut tb, &mut clients);
    let mut ninth = WsClient::connect(&mut tb, "/echo");
    let refused = run_clients(
        &mut tb,
        &mut [&mut ninth],
        |_, cs| cs[0].refused().is_some() || cs[0].over().is_some(),
        10 * SECOND,
    );
    assert!(refused);
    assert_eq!(ninth.refused(), Some(503), "{:?}", ninth.over());
    assert_eq!(tb.fw.0.server().stats().refused_full, 1);
    // The eight are unaffected: a megabyte each, all at once.
    let messages: Vec<Vec<Message>> = (0..8)
        .map(|k| {
            pattern(1 << 20, k + 1)
                .chunks(64 * 1024)
                .map(|c| Message::binary(c.to_vec()))
                .collect()
        })
        .collect();
    echo_round(&mut tb, &mut clients, &messages, 120);
    let tcp = tb.fw.0.net().tcp_stats();
    eprintln!(
        "8 × 1 MiB concurrently: {:.2} s of board time; retransmits {} (timeout), {} (fast), {} segments not offered for want of a spare",
        tb.now_ns() as f64 / 1e9,
        tcp.retransmits_timeout,
        tcp.retransmits_fast,
        tcp.rx_no_spare
    );
}

#[test]
fn megabyte_messages_through_a_two_client_configuration() {
    let mut tb = reference(Config::default()); // 2 clients, as Harmony's default
    let mut clients = vec![
        WsClient::connect(&mut tb, "/"),
        WsClient::connect(&mut tb, "/"),
    ];
    open_all(&mut tb, &mut clients);
    // Text of 1 MiB with 1-, 2-, 3- and 4-byte characters (a character may straddle any
    // frame and segment boundary), and 1 MiB of binary.
    let unit = "aé€😀";
    let text: String = unit.repeat((1 << 20) / unit.len());
    let messages = vec![
        vec![
            Message::text(text.clone()),
            Message::binary(pattern(1 << 20, 5)),
        ],
        vec![Message::binary(pattern(1 << 20, 6)), Message::text(text)],
    ];
    echo_round(&mut tb, &mut clients, &messages, 60);
    // A third is refused with 503.
    let mut third = WsClient::connect(&mut tb, "/");
    run_clients(
        &mut tb,
        &mut [&mut third],
        |_, cs| cs[0].refused().is_some(),
        10 * SECOND,
    );
    assert_eq!(third.refused(), Some(503));
}

// ------------------------------------------------------------------ messages

#[test]
fn fragmented_messages_both_ways_with_control_frames_between_fragments() {
    let (mut tb, log) = recorder(Config::default());
    let mut c = WsClient::connect(&mut tb, "/frag");
    open_all(&mut tb, std::slice::from_mut(&mut c));
    // Client → server: a text message in three fragments (a 4-byte character split
    // across two of them), a ping between fragments.
    let text = "fragmented 😀 message";
    let bytes = text.as_bytes();
    let split = bytes.iter().position(|&b| b == 0xF0).unwrap() + 2;
    c.send(Message::Frame(Frame::message(
        bytes[..5].to_vec(),
        OpCode::Data(Data::Text),
        false,
    )));
    c.send(Message::Frame(Frame::message(
        bytes[5..split].to_vec(),
        OpCode::Data(Data::Continue),
        false,
    )));
    c.send(Message::Ping("between".into()));
    c.send(Message::Frame(Frame::message(
        bytes[split..].to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )));
    let got = run_clients(
        &mut tb,
        &mut [&mut c],
        |_, cs| cs[0].received.iter().any(|m| matches!(m, Message::Text(_))),
        5 * SECOND,
    );
    assert!(got);
    assert!(
        c.received.contains(&Message::Pong("between".into())),
        "{:?}",
        c.received
    );
    assert!(
        c.received.contains(&Message::text(text)),
        "{:?}",
        c.received
    );
    assert!(log_has(&log, "0: ping between"));

    // Server → client: the API sends a message in three parts; tungstenite sees one.
    let now = tb.board.now();
    let client = ClientId::from_index(0);
    let srv = &mut tb.fw.0;
    assert_eq!(
        srv.send_message(now, client, MessageKind::Binary, b"one,", false),
        Ok(4)
    );
    assert_eq!(
        srv.send_message(now, client, MessageKind::Binary, b"two,", false),
        Ok(4)
    );
    assert_eq!(
        srv.send_message(now, client, MessageKind::Binary, b"three", true),
        Ok(5)
    );
    let got = run_clients(
        &mut tb,
        &mut [&mut c],
        |_, cs| {
            cs[0]
                .received
                .iter()
                .any(|m| matches!(m, Message::Binary(_)))
        },
        5 * SECOND,
    );
    assert!(got);
    assert!(
        c.received
            .contains(&Message::binary(b"one,two,three".to_vec()))
    );
}

#[test]
fn a_long_message_is_streamed_in_bounded_memory() {
    // 16 MiB in one frame: far more than the board's RAM. The echo streams it through.
    let mut tb = reference(Config::default());
    let mut c = WsClient::connect(&mut tb, "/");
    open_all(&mut tb, std::slice::from_mut(&mut c));
    let data = pattern(16 << 20, 7);
    echo_round(
        &mut tb,
        std::slice::from_mut(&mut c),
        &[vec![Message::binary(data)]],
        120,
    );
}

// ------------------------------------------------------------------ timeouts

#[test]
fn an_idle_client_is_closed_after_30_s() {
    let (mut tb, log) = recorder(Config::default());
    let mut c = WsClient::connect(&mut tb, "/");
    open_all(&mut tb, std::slice::from_mut(&mut c));
    let opened = tb.now_ns();
    echo_round(
        &mut tb,
        std::slice::from_mut(&mut c),
        &[vec![Message::text("x")]],
        5,
    );
    let active = tb.now_ns();
    let still = run_clients(
        &mut tb,
        &mut [&mut c],
        |_, cs| cs[0].close.is_some(),
        29 * SECOND,
    );
    assert!(!still, "no close within 29 s of the last message");
    let closed = run_clients(
        &mut tb,
        &mut [&mut c],
        |_, cs| cs[0].close.is_some(),
        2 * SECOND,
    );
    assert!(closed, "closed by 31 s");
    let after = (tb.now_ns() - active) as f64 / 1e9;
    assert!(
        (30.0..31.0).contains(&after),
        "after {after:.2} s (opened {:.2} s before)",
        (active - opened) as f64 / 1e9
    );
    let frame = c.close.clone().flatten().expect("a close code");
    assert_eq!(frame.code, CloseCode::Normal);
    assert_eq!(frame.reason.as_str(), "idle");
    // tungstenite answers the Close; the server closes TCP; the slot is free again.
    let gone = run_clients(
        &mut tb,
        &mut [&mut c],
        |tb, _| tb.fw.0.client_state(ClientId::from_index(0)) == ClientState::Closed,
        5 * SECOND,
    );
    assert!(gone);
    let l = log.borrow();
    let i = l
        .iter()
        .position(|e| e == "0: timeout")
        .expect("timeout event");
    assert_eq!(l[i + 1], "0: closing");
    assert!(
        l[i..].contains(&"0: close Some(1000) idle".to_owned()),
        "{l:?}"
    );
    assert_eq!(l.last().unwrap(), "0: closed");
}

// ------------------------------------------------------------------ closing and errors

/// Opens a raw WebSocket (upgrade by hand) and returns it with the 101 consumed.
fn raw_ws<F: mzw1_sim::Firmware>(tb: &mut Testbed<F>) -> RawClient {
    let mut raw = RawClient::connect(tb);
    raw.send(&upgrade_request("/", ""));
    let ok = tb.run_until(
        |tb| {
            raw.pump(&mut tb.peer);
            raw.got.windows(4).any(|w| w == b"\r\n\r\n")
        },
        5 * SECOND,
    );
    assert!(ok && raw.got.starts_with(b"HTTP/1.1 101 "));
    raw.got.clear();
    raw
}

/// Sends `bytes` on `raw`, runs until the server closes TCP; returns its frames.
fn until_closed<F: mzw1_sim::Firmware>(
    tb: &mut Testbed<F>,
    raw: &mut RawClient,
    bytes: &[u8],
) -> Vec<(bool, u8, Vec<u8>)> {
    raw.send(bytes);
    let closed = tb.run_until(
        |tb| {
            raw.pump(&mut tb.peer);
            raw.server_closed(&tb.peer)
        },
        5 * SECOND,
    );
    assert!(closed, "the server closes TCP after the close frame");
    tb.peer.tcp_close(raw.h);
    server_frames(&raw.got)
}

#[test]
fn close_codes_are_validated_and_echoed() {
    let mut tb = reference(Config::default());
    // (code sent, code expected back): valid codes are echoed, the rest fail with 1002.
    let table: &[(u16, u16)] = &[
        (1000, 1000),
        (1001, 1001),
        (1002, 1002),
        (1003, 1003),
        (1004, 1002),
        (1005, 1002),
        (1006, 1002),
        (1007, 1007),
        (1008, 1008),
        (1009, 1009),
        (1010, 1010),
        (1011, 1011),
        (1012, 1002),
        (1013, 1002),
        (1014, 1002),
        (1015, 1002),
        (1016, 1002),
        (0, 1002),
        (999, 1002),
        (2000, 1002),
        (2999, 1002),
        (3000, 3000),
        (3999, 3999),
        (4000, 4000),
        (4999, 4999),
        (5000, 1002),
        (65535, 1002),
    ];
    for &(sent, want) in table {
        let mut raw = raw_ws(&mut tb);
        let mut body = sent.to_be_bytes().to_vec();
        body.extend_from_slice(b"bye");
        let frames = until_closed(
            &mut tb,
            &mut raw,
            &client_frame(true, 0x8, &body, [1, 2, 3, 4]),
        );
        assert_eq!(frames.len(), 1, "code {sent}: one frame back: {frames:?}");
        let (fin, op, payload) = &frames[0];
        assert!(*fin && *op == 0x8, "code {sent}: a close frame");
        assert_eq!(
            u16::from_be_bytes([payload[0], payload[1]]),
            want,
            "code {sent}"
        );
        tb.run_for(SECOND / 10);
    }
    // An empty close is answered with an empty one; a 1-byte body and a reason that is
    // not UTF-8 fail the connection.
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"\x03", b"\x03\xea"),
        (b"\x03\xe8\xff\xfe", b"\x03\xef"),
    ];
    for (body, want) in cases {
        let mut raw = raw_ws(&mut tb);
        let frames = until_closed(
            &mut tb,
            &mut raw,
            &client_frame(true, 0x8, body, [9, 9, 9, 9]),
        );
        assert_eq!(frames, vec![(true, 0x8, want.to_vec())], "body {body:?}");
        tb.run_for(SECOND / 10);
    }
}

#[test]
fn protocol_errors_fail_only_their_own_connection() {
    let mut config = Config::default();
    config.wss.clients = 3;
    let mut tb = reference(config);
    // A well-behaved tungstenite client streams throughout.
    let mut good = WsClient::connect(&mut tb, "/");
    open_all(&mut tb, std::slice::from_mut(&mut good));
    let m = [1u8, 2, 3, 4];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", vec![0x82, 0x02, b'h', b'i'], 1002),
        (
            "RSV1 without an extension",
            {
                let mut f = client_frame(true, 0x2, b"x", m);
                f[0] |= 0x40;
                f
            },
            1002,
        ),
        ("reserved opcode 3", client_frame(true, 0x3, b"x", m), 1002),
        (
            "reserved control opcode 0xB",
            client_frame(true, 0xB, b"", m),
            1002,
        ),
        (
            "ping of 126 bytes",
            client_frame(true, 0x9, &[0u8; 126], m),
            1002,
        ),
        ("fragmented ping", client_frame(false, 0x9, b"p", m), 1002),
        (
            "continuation with nothing to continue",
            client_frame(true, 0x0, b"x", m),
            1002,
        ),
        (
            "new message inside a fragmented one",
            {
                let mut f = client_frame(false, 0x1, b"a", m);
                f.extend(client_frame(true, 0x2, b"b", m));
                f
            },
            1002,
        ),
        (
            "invalid UTF-8",
            client_frame(true, 0x1, b"ok \xc3\x28", m),
            1007,
        ),
        (
            "UTF-8 cut at the end of a message",
            client_frame(true, 0x1, b"\xe2\x82", m),
            1007,
        ),
        (
            "surrogate in UTF-8",
            client_frame(true, 0x1, b"\xed\xa0\x80", m),
            1007,
        ),
        (
            "length 5 in the 16-bit form",
            vec![0x82, 0x80 | 126, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5],
            1002,
        ),
        (
            "length 200 in the 64-bit form",
            {
                let mut f = vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0];
                f.extend([0u8; 200]);
                f
            },
            1002,
        ),
    ];
    for (what, bytes, code) in cases {
        let mut raw = raw_ws(&mut tb);
        let frames = until_closed(&mut tb, &mut raw, &bytes);
        let close = frames
            .iter()
            .find(|f| f.1 == 0x8)
            .unwrap_or_else(|| panic!("{what}: {frames:?}"));
        assert_eq!(u16::from_be_bytes([close.2[0], close.2[1]]), code, "{what}");
        echo_round(
            &mut tb,
            std::slice::from_mut(&mut good),
            &[vec![Message::text(what)]],
            5,
        );
    }
    assert_eq!(tb.fw.0.server().stats().protocol_errors, 13);
}

#[test]
fn a_chat_message_over_the_limit_gets_1009_and_the_room_goes_on() {
    let mut config = Config::default();
    config.wss.clients = 3;
    let mut tb = reference(config);
    let mut a = WsClient::connect(&mut tb, "/chat");
    let mut b = WsClient::connect(&mut tb, "/chat");
    let mut clients = [a, b];
    open_all(&mut tb, &mut clients);
    [a, b] = clients;
    a.send(Message::text("hello room"));
    let ok = run_clients(
        &mut tb,
        &mut [&mut a, &mut b],
        |_, cs| {
            cs.iter()
                .all(|c| c.received.contains(&Message::text("hello room")))
        },
        5 * SECOND,
    );
    assert!(ok, "both (the sender too) get the message");
    b.send(Message::text("x".repeat(300)));
    let ok = run_clients(
        &mut tb,
        &mut [&mut a, &mut b],
        |_, cs| cs[1].close.is_some(),
        5 * SECOND,
    );
    assert!(ok);
    assert_eq!(
        b.close.clone().flatten().map(|f| f.code),
        Some(CloseCode::Size)
    );
    a.send(Message::text("still here"));
    let ok = run_clients(
        &mut tb,
        &mut [&mut a],
        |_, cs| cs[0].received.contains(&Message::text("still here")),
        5 * SECOND,
    );
    assert!(ok);
    let app = tb.fw.0.server().handler().unwrap();
    assert_eq!(app.chat_too_big(), 1);
    assert_eq!(app.stats.chat_messages, 2);
}

// ------------------------------------------------------------------ the API

#[test]
fn the_api_pings_closes_broadcasts_and_deinitializes() {
    let mut config = Config::default();
    config.wss.clients = 2;
    let (mut tb, log) = recorder(config);
    let mut c0 = WsClient::connect(&mut tb, "/a");
    let mut c1 = WsClient::connect(&mut tb, "/b");
    let mut cs = [c0, c1];
    open_all(&mut tb, &mut cs);
    [c0, c1] = cs;
    let (id0, id1) = (ClientId::from_index(0), ClientId::from_index(1));
    assert_eq!(tb.fw.0.client_state(id0), ClientState::Connected);

    // Ping: tungstenite answers with a Pong carrying the payload.
    let now = tb.board.now();
    assert_eq!(tb.fw.0.ping_client(now, id0, b"are you there"), Ok(()));
    assert_eq!(
        tb.fw.0.ping_client(now, id0, &[0u8; 126]),
        Err(SendError::Invalid)
    );
    let ok = run_clients(
        &mut tb,
        &mut [&mut c0],
        |_, _| log_has(&log, "0: pong are you there"),
        5 * SECOND,
    );
    assert!(ok, "{:?}", log.borrow());

    // Broadcast: both get it.
    let now = tb.board.now();
    assert_eq!(tb.fw.0.broadcast(now, MessageKind::Text, b"to all"), 2);
    let ok = run_clients(
        &mut tb,
        &mut [&mut c0, &mut c1],
        |_, cs| {
            cs.iter()
                .all(|c| c.received.contains(&Message::text("to all")))
        },
        5 * SECOND,
    );
    assert!(ok);

    // Close with a code and reason: tungstenite sees them and answers; TCP closes.
    let now = tb.board.now();
    assert_eq!(
        tb.fw.0.close_connection(now, id1, 1005, b""),
        Err(SendError::Invalid)
    );
    assert_eq!(tb.fw.0.close_connection(now, id1, 4001, b"bye now"), Ok(()));
    assert_eq!(tb.fw.0.client_state(id1), ClientState::Closing);
    let now = tb.board.now();
    assert_eq!(
        tb.fw
            .0
            .send_message(now, id1, MessageKind::Text, b"late", true),
        Err(SendError::NotConnected)
    );
    let ok = run_clients(
        &mut tb,
        &mut [&mut c1],
        |tb, _| tb.fw.0.client_state(id1) == ClientState::Closed,
        5 * SECOND,
    );
    assert!(ok);
    let f = c1.close.clone().flatten().expect("close frame");
    assert_eq!((u16::from(f.code), f.reason.as_str()), (4001, "bye now"));

    // Deinitialize: the remaining client gets 1001, then the MAC goes quiet.
    let now = tb.board.now();
    tb.fw.0.deinitialize(now);
    let ok = run_clients(
        &mut tb,
        &mut [&mut c0],
        |tb, _| tb.fw.0.is_stopped(),
        5 * SECOND,
    );
    assert!(ok, "stopped");
    assert_eq!(
        c0.close.clone().flatten().map(|f| f.code),
        Some(CloseCode::Away)
    );
    assert!(tb.fw.0.mac().is_stopped());
    // Nothing answers any more.
    let mut late = RawClient::connect(&mut tb);
    late.send(&upgrade_request("/", ""));
    tb.run_until(
        |tb| {
            late.pump(&mut tb.peer);
            false
        },
        3 * SECOND,
    );
    assert!(late.got.is_empty());

    let l = log.borrow();
    let of = |k: &str| {
        l.iter()
            .filter(|e| e.starts_with(k))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("0: "),
        [
            "0: connecting",
            "0: connected /a None",
            "0: pong are you there",
            "0: close Some(1001) ",
            "0: closed"
        ],
        "{l:?}"
    );
    assert_eq!(
        of("1: "),
        [
            "1: connecting",
            "1: connected /b None",
            "1: close Some(4001) bye now",
            "1: closed"
        ]
    );
}
