//! Malformed input, table by table, each row with the answer the RFCs require: opening
//! handshakes (RFC 6455 §4.2.1, RFC 9110/9112), frames after the upgrade (RFC 6455 §5),
//! Close payloads (§5.5.1, §7.4), IPv4 headers (RFC 791/1122) and TCP segments (RFC 9293,
//! RFC 5961). Every row runs against the reference firmware on the simulated board while
//! a well-behaved tungstenite client stays connected, and after every row that client
//! still echoes.
//!
//! The peer is the smoltcp host inside [`Snoop`], which also sees what the board sends
//! and injects the hand-made frames. For the IPv4 and TCP rows the tungstenite client is
//! idle while the frame goes in, so the board's counters (`NetStats`, `TcpStats`) and
//! the frames it sends can be compared exactly: a dropped frame moves its one counter and
//! nothing else, and the board sends nothing.
//!
//! Rows that found firmware defects (fixed since) are in `rows_that_found_defects`.

#[path = "common/snoop.rs"]
mod snoop;
#[path = "common/ws_peer.rs"]
mod ws_peer;

use mzw1_reference::Config;
use mzw1_sim::{Board, BoardConfig, PeerHost, Reference, Testbed, Wire, WireConfig};
use snoop::*;
use std::collections::BTreeMap;
use tungstenite::Message;
use ws_peer::*;

type Bed = Testbed<Reference, Snoop>;

const BOARD_MAC: [u8; 6] = [0x02, 0x04, 0xA3, 0x00, 0x00, 0x01];
const MS: u64 = 1_000_000;
const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// A host on the board's subnet that only this test speaks for (smoltcp ignores frames
/// to its address, so the board's answers go nowhere but into the snoop's log).
const SPOOF_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0x00, 0x53, 0x66];
const SPOOF_IP: [u8; 4] = [192, 168, 7, 66];

fn bed() -> Bed {
    let mut config = Config::default();
    config.wss.clients = 4;
    let mut board = Board::new(BoardConfig::default());
    let fw = Reference::boot(&mut board, config);
    let peer = Snoop::new(PeerHost::new(PEER_MAC, PEER_IP, 24), NoRaw);
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), peer);
    tb.run_for(3 * SECOND);
    tb
}

// ------------------------------------------------------------------ the good client

/// A well-behaved tungstenite client, connected throughout.
struct Good {
    ws: WsClient,
    sent: u32,
}

impl Good {
    fn open(tb: &mut Bed) -> Good {
        let mut ws = WsClient::connect_on(&mut tb.peer.host, "/good");
        let ok = tb.run_until(
            |tb| {
                ws.pump(&mut tb.peer.host);
                ws.is_open()
            },
            10 * SECOND,
        );
        assert!(ok, "good client opens: {:?} {:?}", ws.refused(), ws.over());
        Good { ws, sent: 0 }
    }

    /// Moves the client's bytes (call it while a case runs).
    fn pump(&mut self, tb: &mut Bed) {
        self.ws.pump(&mut tb.peer.host);
    }

    /// One message goes out and comes back, byte for byte, within a second; then the
    /// connection settles (the last ACKs exchanged).
    fn echoes(&mut self, tb: &mut Bed, after: &str) {
        self.sent += 1;
        let m = Message::text(format!("still here after {after} (#{})", self.sent));
        self.ws.send(m.clone());
        let mut got = Vec::new();
        let ok = tb.run_until(
            |tb| {
                self.ws.pump(&mut tb.peer.host);
                got.extend(self.ws.take_data());
                !got.is_empty() || !self.ws.is_open()
            },
            SECOND,
        );
        assert!(
            ok && self.ws.is_open() && got == vec![m],
            "after {after}: the good client's echo: {got:?}, {:?} {:?}",
            self.ws.over(),
            self.ws.close
        );
        self.ws.received.clear();
        self.settle(tb);
    }

    fn settle(&mut self, tb: &mut Bed) {
        tb.run_until(
            |tb| {
                self.ws.pump(&mut tb.peer.host);
                false
            },
            20 * MS,
        );
    }
}

// ------------------------------------------------------------------ HTTP helpers

fn status_of(got: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(got.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// Sends `request` on a fresh connection and runs until the server closes it; returns
/// what the server sent and whether it closed.
fn exchange(tb: &mut Bed, good: &mut Good, request: &[u8]) -> (Vec<u8>, bool) {
    let mut raw = RawClient::connect_on(&mut tb.peer.host);
    raw.send(request);
    let closed = tb.run_until(
        |tb| {
            good.pump(tb);
            raw.pump(&mut tb.peer.host);
            raw.server_closed(&tb.peer.host) && raw.out.is_empty()
        },
        5 * SECOND,
    );
    raw.pump(&mut tb.peer.host);
    tb.peer.host.tcp_close(raw.h);
    (raw.got, closed)
}

/// A valid upgrade request with `line` (a header line, or several) replaced by `with`.
fn request_with(line: &str, with: &str) -> Vec<u8> {
    let r = String::from_utf8(upgrade_request("/ws", "")).unwrap();
    assert!(r.contains(line), "{line:?} in the request");
    r.replacen(line, with, 1).into_bytes()
}

const KEY_LINE: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
const VERSION_LINE: &str = "Sec-WebSocket-Version: 13\r\n";
const HOST_LINE: &str = "Host: 192.168.7.2\r\n";
const UPGRADE_LINE: &str = "Upgrade: websocket\r\n";
const CONNECTION_LINE: &str = "Connection: Upgrade\r\n";

/// A handshake row: the request, the status the RFCs require, and header lines the
/// response must carry.
struct HttpCase {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
    must_carry: &'static [&'static str],
}

fn http(name: &'static str, request: Vec<u8>, status: u16) -> HttpCase {
    HttpCase {
        name,
        request,
        status,
        must_carry: &[],
    }
}

/// Runs handshake rows; returns the rows that did not get their answer.
fn run_http_cases(tb: &mut Bed, good: &mut Good, cases: &[HttpCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let (got, closed) = exchange(tb, good, &c.request);
        let text = String::from_utf8_lossy(&got).into_owned();
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut wrong = Vec::new();
        if status_of(&got) != Some(c.status) {
            wrong.push(format!("status {} wanted", c.status));
        }
        if !closed {
            wrong.push("the server did not close the connection".into());
        }
        if !head.contains("\r\nConnection: close") {
            wrong.push("no `Connection: close`".into());
        }
        for h in c.must_carry {
            if !head.contains(&format!("\r\n{h}")) {
                wrong.push(format!("no `{h}`"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {} — got {text:?}", c.name, wrong.join(", ")));
        }
        good.echoes(tb, c.name);
    }
    failures
}

fn handshake_cases() -> Vec<HttpCase> {
    let huge = format!("X-Filler: {}\r\n", "f".repeat(2100));
    let many: String = (0..150)
        .map(|i| format!("X-Header-{i}: value\r\n"))
        .collect();
    let long_path = format!("/{}", "p".repeat(64));
    vec![
        // RFC 6455 §4.2.1 item 1: a GET; RFC 9110 §15.5.6: 405 carries Allow.
        HttpCase {
            name: "POST",
            request: String::from_utf8(upgrade_request("/ws", ""))
                .unwrap()
                .replacen("GET", "POST", 1)
                .into_bytes(),
            status: 405,
            must_carry: &["Allow: GET"],
        },
        HttpCase {
            name: "PUT with a body",
            request: b"PUT /ws HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
            status: 405,
            must_carry: &["Allow: GET"],
        },
        // §4.2.1 item 2: Host.
        http("no Host", request_with(HOST_LINE, ""), 400),
        // §4.2.1 item 3: Upgrade listing `websocket`. Without it the request is a plain
        // GET, and the reference app has no page at /ws.
        http("no Upgrade", request_with(UPGRADE_LINE, ""), 404),
        http(
            "Upgrade: h2c",
            request_with(UPGRADE_LINE, "Upgrade: h2c\r\n"),
            404,
        ),
        http(
            "Upgrade: websockets",
            request_with(UPGRADE_LINE, "Upgrade: websockets\r\n"),
            404,
        ),
        // §4.2.1 item 4: Connection listing `upgrade`.
        http("no Connection", request_with(CONNECTION_LINE, ""), 400),
        http(
            "Connection: keep-alive without upgrade",
            request_with(CONNECTION_LINE, "Connection: keep-alive\r\n"),
            400,
        ),
        http(
            "Connection: upgraded (not the token)",
            request_with(CONNECTION_LINE, "Connection: upgraded, close\r\n"),
            400,
        ),
        // §4.2.1 item 5: a key that decodes to 16 bytes, once.
        http("no key", request_with(KEY_LINE, ""), 400),
        http(
            "key of 12 bytes (16 characters)",
            request_with(KEY_LINE, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAA\r\n"),
            400,
        ),
        http(
            "key of 24 characters decoding to 18 bytes",
            request_with(KEY_LINE, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n"),
            400,
        ),
        http(
            "key with characters outside base64",
            request_with(KEY_LINE, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n"),
            400,
        ),
        http(
            "key of 17 bytes (28 characters)",
            request_with(
                KEY_LINE,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSEhIQ==\r\n",
            ),
            400,
        ),
        http(
            "key repeated (§11.3.1)",
            request_with(
                KEY_LINE,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
            ),
            400,
        ),
        // §4.2.1 item 6 and §4.4: any version but 13 gets 426 naming 13.
        HttpCase {
            name: "version 12",
            request: request_with(VERSION_LINE, "Sec-WebSocket-Version: 12\r\n"),
            status: 426,
            must_carry: &["Sec-WebSocket-Version: 13"],
        },
        HttpCase {
            name: "version 8",
            request: request_with(VERSION_LINE, "Sec-WebSocket-Version: 8\r\n"),
            status: 426,
            must_carry: &["Sec-WebSocket-Version: 13"],
        },
        HttpCase {
            name: "no version",
            request: request_with(VERSION_LINE, ""),
            status: 426,
            must_carry: &["Sec-WebSocket-Version: 13"],
        },
        HttpCase {
            name: "versions 13 and 8",
            request: request_with(
                VERSION_LINE,
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n",
            ),
            status: 426,
            must_carry: &["Sec-WebSocket-Version: 13"],
        },
        // RFC 9110 §15.5.20 / RFC 6585 §5: header section over the limit (2048 bytes).
        http(
            "one header of 2100 bytes",
            upgrade_request("/ws", &huge),
            431,
        ),
        http("150 small headers", upgrade_request("/ws", &many), 431),
        // RFC 9112 §3: request-line grammar.
        http(
            "garbage request line",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
        http(
            "request line without a version",
            b"GET /ws\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        http(
            "empty request-target",
            b"GET  HTTP/1.1\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        http(
            "version HTTP/x.y",
            b"GET /ws HTTP/x.y\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        http(
            "request-target of 65 bytes",
            upgrade_request(&long_path, ""),
            414,
        ),
        // RFC 9112 §5.1: whitespace before the colon MUST get 400; §5.2: obsolete line
        // folding may be refused with 400.
        http(
            "space before a header's colon",
            request_with(HOST_LINE, "Host : 192.168.7.2\r\n"),
            400,
        ),
        http(
            "obsolete line folding",
            request_with(CONNECTION_LINE, "Connection: keep-alive,\r\n Upgrade\r\n"),
            400,
        ),
        http(
            "header line without a colon",
            request_with(HOST_LINE, "Host 192.168.7.2\r\n"),
            400,
        ),
        // RFC 9112 §2.2: a bare CR makes the element invalid (or is replaced by SP);
        // either way `web\rsocket` is not the token `websocket`, and the key is not a key.
        http(
            "bare CR inside the Upgrade token",
            request_with(UPGRADE_LINE, "Upgrade: web\rsocket\r\n"),
            400,
        ),
        http(
            "bare CR inside the key",
            request_with(
                KEY_LINE,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\rZQ==\r\n",
            ),
            400,
        ),
        // The page hook: a plain GET of a path the reference app has no page for.
        http(
            "plain GET of an unknown page",
            b"GET /nothing-here HTTP/1.1\r\nHost: b\r\n\r\n".to_vec(),
            404,
        ),
    ]
}

#[test]
fn malformed_handshakes_get_the_required_status() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    let cases = handshake_cases();
    let refused0 = tb.fw.0.server().stats().refused;
    let failures = run_http_cases(&mut tb, &mut good, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stats = *tb.fw.0.server().stats();
    assert_eq!(
        (stats.refused - refused0, stats.upgrades),
        (cases.len() as u32, 1),
        "every row refused, none upgraded: {stats:?}"
    );
    println!("handshake rows: {}", cases.len());
}

// ------------------------------------------------------------------ frames

/// Opens a WebSocket by hand; returns it with the 101 read and consumed.
fn upgraded(tb: &mut Bed, good: &mut Good) -> RawClient {
    let mut raw = RawClient::connect_on(&mut tb.peer.host);
    raw.send(&upgrade_request("/raw", ""));
    let ok = tb.run_until(
        |tb| {
            good.pump(tb);
            raw.pump(&mut tb.peer.host);
            raw.got.windows(4).any(|w| w == b"\r\n\r\n")
        },
        5 * SECOND,
    );
    assert!(
        ok && status_of(&raw.got) == Some(101),
        "{:?}",
        String::from_utf8_lossy(&raw.got)
    );
    raw.got.clear();
    raw
}

/// What the server must answer a frame row with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// A Close frame with this code (and no reason), then TCP closes.
    Code(u16),
    /// An empty Close frame, then TCP closes.
    Empty,
}

struct WsCase {
    name: &'static str,
    bytes: Vec<u8>,
    answer: Close,
}

fn ws(name: &'static str, bytes: Vec<u8>, code: u16) -> WsCase {
    WsCase {
        name,
        bytes,
        answer: Close::Code(code),
    }
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(fin, opcode, payload, MASK)
}

/// A header with the length in the given form (2, 4 or 10 bytes before the mask), then
/// the masked payload.
fn frame_with_length(opcode: u8, len_bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    f.extend_from_slice(len_bytes);
    f[1] |= 0x80;
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(reason);
    b
}

/// Runs frame rows, each on its own WebSocket; returns the rows that did not get their
/// answer.
fn run_ws_cases(tb: &mut Bed, good: &mut Good, cases: &[WsCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let mut raw = upgraded(tb, good);
        raw.send(&c.bytes);
        let closed = tb.run_until(
            |tb| {
                good.pump(tb);
                raw.pump(&mut tb.peer.host);
                raw.server_closed(&tb.peer.host)
            },
            5 * SECOND,
        );
        raw.pump(&mut tb.peer.host);
        tb.peer.host.tcp_close(raw.h);
        let frames = server_frames(&raw.got);
        let want = match c.answer {
            Close::Code(code) => code.to_be_bytes().to_vec(),
            Close::Empty => Vec::new(),
        };
        let closes: Vec<_> = frames.iter().filter(|f| f.1 == 0x8).collect();
        let ok = closed
            && closes.len() == 1
            && frames.last() == Some(&(true, 0x8, want.clone()))
            && frames.iter().all(|f| f.1 == 0x8 || f.1 <= 0x2);
        if !ok {
            failures.push(format!(
                "{}: wanted Close {:?} then TCP closed; got frames {frames:?}, closed {closed}",
                c.name, c.answer
            ));
        }
        good.echoes(tb, c.name);
    }
    failures
}

fn frame_cases() -> Vec<WsCase> {
    let rsv = |bit: u8| {
        let mut f = frame(true, 0x1, b"rsv");
        f[0] |= bit;
        f
    };
    let mut cases = vec![
        // §5.2: RSV1-3 must be 0 without a negotiated extension.
        ws("RSV1 set", rsv(0x40), 1002),
        ws("RSV2 set", rsv(0x20), 1002),
        ws("RSV3 set", rsv(0x10), 1002),
        ws(
            "RSV1 on a ping",
            {
                let mut f = frame(true, 0x9, b"p");
                f[0] |= 0x40;
                f
            },
            1002,
        ),
    ];
    // §5.2: reserved opcodes fail the connection.
    const RESERVED: [(&str, u8); 10] = [
        ("reserved opcode 0x3", 0x3),
        ("reserved opcode 0x4", 0x4),
        ("reserved opcode 0x5", 0x5),
        ("reserved opcode 0x6", 0x6),
        ("reserved opcode 0x7", 0x7),
        ("reserved opcode 0xB", 0xB),
        ("reserved opcode 0xC", 0xC),
        ("reserved opcode 0xD", 0xD),
        ("reserved opcode 0xE", 0xE),
        ("reserved opcode 0xF", 0xF),
    ];
    for (name, op) in RESERVED {
        cases.push(ws(name, frame(true, op, b"x"), 1002));
    }
    let mut inside = frame(false, 0x1, b"first ");
    inside.extend(frame(true, 0x2, b"second"));
    let mut text_in_text = frame(false, 0x1, b"first ");
    text_in_text.extend(frame(false, 0x1, b"again"));
    let mut split_utf8 = frame(false, 0x1, b"caf\xc3");
    split_utf8.extend(frame(true, 0x0, b"\x28"));
    let mut cut_utf8 = frame(false, 0x1, b"\xf0\x9f");
    cut_utf8.extend(frame(true, 0x0, b"\x98"));
    cases.extend([
        // §5.1: client frames must be masked.
        ws("unmasked text frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ws("unmasked close frame", vec![0x88, 0x02, 0x03, 0xE8], 1002),
        // §5.5: control frames carry at most 125 bytes and are not fragmented.
        ws("ping of 126 bytes", frame(true, 0x9, &[0x55; 126]), 1002),
        ws("pong of 126 bytes", frame(true, 0xA, &[0x55; 126]), 1002),
        ws(
            "close of 126 bytes",
            frame(true, 0x8, &close_body(1000, &[b'r'; 124])),
            1002,
        ),
        ws(
            "ping with a 16-bit length of 5",
            frame_with_length(0x9, &[126, 0, 5], b"hello"),
            1002,
        ),
        ws("fragmented ping", frame(false, 0x9, b"p"), 1002),
        ws(
            "fragmented close",
            frame(false, 0x8, &close_body(1000, b"")),
            1002,
        ),
        // §5.4: continuation and message order.
        ws("continuation without a start", frame(true, 0x0, b"x"), 1002),
        ws(
            "non-final continuation without a start",
            frame(false, 0x0, b"x"),
            1002,
        ),
        ws("binary frame inside a fragmented text", inside, 1002),
        ws("text frame inside a fragmented text", text_in_text, 1002),
        // §8.1: text must be UTF-8 (1007, §7.4.1).
        ws(
            "invalid UTF-8 in a text frame",
            frame(true, 0x1, b"ok \xc3\x28"),
            1007,
        ),
        ws("invalid UTF-8 across fragments", split_utf8, 1007),
        ws("UTF-8 cut at the end of a message", cut_utf8, 1007),
        ws("overlong encoding", frame(true, 0x1, b"\xc0\xaf"), 1007),
        ws("UTF-16 surrogate", frame(true, 0x1, b"\xed\xa0\x80"), 1007),
        ws(
            "code point above U+10FFFF",
            frame(true, 0x1, b"\xf4\x90\x80\x80"),
            1007,
        ),
        // §5.2: the minimal number of bytes MUST be used for the length.
        ws(
            "length 5 in the 16-bit form",
            frame_with_length(0x2, &[126, 0, 5], b"12345"),
            1002,
        ),
        ws(
            "length 125 in the 16-bit form",
            frame_with_length(0x2, &[126, 0, 125], &[7; 125]),
            1002,
        ),
        ws(
            "length 200 in the 64-bit form",
            frame_with_length(0x2, &[127, 0, 0, 0, 0, 0, 0, 0, 200], &[7; 200]),
            1002,
        ),
        ws(
            "length 65535 in the 64-bit form",
            frame_with_length(0x2, &[127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], &[]),
            1002,
        ),
        // §5.2: the most significant bit of the 64-bit length MUST be 0.
        ws(
            "64-bit length with its most significant bit set",
            frame_with_length(0x2, &[127, 0x80, 0, 0, 0, 0, 0, 0, 1], b"never"),
            1002,
        ),
    ]);
    cases
}

#[test]
fn malformed_frames_fail_the_connection_with_the_required_code() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    let cases = frame_cases();
    let failures = run_ws_cases(&mut tb, &mut good, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stats = *tb.fw.0.server().stats();
    assert_eq!(
        stats.protocol_errors,
        cases.len() as u32,
        "each row failed its connection, the good client's never: {stats:?}"
    );
    println!("frame rows: {}", cases.len());
}

fn close_cases() -> Vec<WsCase> {
    let mut cases = vec![
        // §5.5.1: a body, if any, starts with a 2-byte code.
        ws("close body of 1 byte", frame(true, 0x8, &[0x03]), 1002),
    ];
    // §7.4.1-7.4.2: codes never valid on the wire: below 1000, 1004-1006 and 1015
    // (reserved), unassigned 1016-2999, and 5000 and up.
    const INVALID: [(&str, u16); 10] = [
        ("close code 0", 0),
        ("close code 999", 999),
        ("close code 1004", 1004),
        ("close code 1005", 1005),
        ("close code 1006", 1006),
        ("close code 1015", 1015),
        ("close code 1016", 1016),
        ("close code 2999", 2999),
        ("close code 5000", 5000),
        ("close code 65535", 65535),
    ];
    for (name, code) in INVALID {
        cases.push(ws(name, frame(true, 0x8, &close_body(code, b"")), 1002));
    }
    cases.extend([
        // §5.5.1: the reason is UTF-8 (1007 otherwise, §8.1).
        ws(
            "close reason not UTF-8",
            frame(true, 0x8, &close_body(1000, b"bye \xff")),
            1007,
        ),
        ws(
            "close reason with a cut sequence",
            frame(true, 0x8, &close_body(1000, b"bye \xe2\x82")),
            1007,
        ),
    ]);
    // §5.5.1: a valid Close is answered with a Close, echoing the code.
    const VALID: [(&str, u16); 6] = [
        ("close code 1000", 1000),
        ("close code 1001", 1001),
        ("close code 1003", 1003),
        ("close code 1011", 1011),
        ("close code 3000", 3000),
        ("close code 4999", 4999),
    ];
    for (name, code) in VALID {
        cases.push(ws(name, frame(true, 0x8, &close_body(code, b"ok")), code));
    }
    cases.push(WsCase {
        name: "empty close",
        bytes: frame(true, 0x8, b""),
        answer: Close::Empty,
    });
    cases
}

#[test]
fn close_payloads_are_validated_and_valid_codes_echoed() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    let cases = close_cases();
    let failures = run_ws_cases(&mut tb, &mut good, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stats = *tb.fw.0.server().stats();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.answer, Close::Code(1002 | 1007)))
        .count();
    assert_eq!(stats.protocol_errors, errors as u32, "{stats:?}");
    println!("close rows: {}", cases.len());
}

// ------------------------------------------------------------------ counters

/// Every counter of the stack, by name ("net.*" and "tcp.*"), read from their Debug
/// form so that no counter can be forgotten.
fn counters(tb: &Bed) -> BTreeMap<String, u64> {
    let net = tb.fw.0.net();
    let mut m = BTreeMap::new();
    for (prefix, text) in [
        ("net", format!("{:?}", net.stats())),
        ("tcp", format!("{:?}", net.tcp_stats())),
    ] {
        let inner = text
            .split_once('{')
            .and_then(|(_, r)| r.rsplit_once('}'))
            .map(|(i, _)| i)
            .unwrap_or_default();
        for kv in inner.split(',') {
            if let Some((k, v)) = kv.split_once(':') {
                let v: u64 = v.trim().parse().expect("a number");
                m.insert(format!("{prefix}.{}", k.trim()), v);
            }
        }
    }
    m
}

/// The counters that moved, and by how much.
fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let b = before.get(k).copied().unwrap_or(0);
            (*v != b).then(|| (k.clone(), v.wrapping_sub(b)))
        })
        .collect()
}

/// Frames the board put on the wire so far.
fn board_frames(tb: &Bed) -> u64 {
    tb.wire.stats.sent[0]
}

/// What the board must send back for an injected frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// Nothing at all.
    Nothing,
    /// One RST (or RST|ACK) from `from` to `port` with these flags, sequence and
    /// acknowledgment.
    Rst {
        from: u16,
        port: u16,
        flags: u8,
        seq: u32,
        ack: u32,
    },
    /// One pure ACK to `port` (the connection's current numbers).
    Ack { port: u16 },
}

/// An injected-frame row: the frame, the reply, and the counters that must move by one
/// (every other counter must stay as it was).
struct NetCase {
    name: &'static str,
    frame: Vec<u8>,
    reply: Reply,
    counters: &'static [&'static str],
    /// Whether `counters` are the only ones that may move (false: a drop the stack has
    /// no counter for yet; only the reply is checked).
    exact: bool,
}

fn dropped(name: &'static str, frame: Vec<u8>, counters: &'static [&'static str]) -> NetCase {
    NetCase {
        name,
        frame,
        reply: Reply::Nothing,
        counters,
        exact: true,
    }
}

/// Injects one row's frame with every connection idle; returns what went wrong.
fn run_net_case(
    tb: &mut Bed,
    good: &mut Good,
    c: &NetCase,
    numbers: Option<(u32, u32)>,
) -> Option<String> {
    good.settle(tb);
    let before = counters(tb);
    let frames0 = board_frames(tb);
    let logs0 = tb.peer.board.clone();
    tb.peer.inject(c.frame.clone());
    tb.run_for(50 * MS);
    let after = counters(tb);
    let sent = board_frames(tb) - frames0;
    let got = moved(&before, &after);
    let want: BTreeMap<String, u64> = ["net.rx_frames", "net.ip_rx"]
        .iter()
        .chain(c.counters)
        .map(|k| (k.to_string(), 1))
        .collect();
    let mut wrong = Vec::new();
    if c.exact && got != want {
        wrong.push(format!("counters moved {got:?}, wanted {want:?}"));
    }
    let new: Vec<(u16, PortLog)> = tb
        .peer
        .board
        .iter()
        .filter(|(p, l)| logs0.get(p) != Some(l))
        .map(|(p, l)| (*p, *l))
        .collect();
    match c.reply {
        Reply::Nothing => {
            if sent != 0 {
                wrong.push(format!("{sent} frames sent back: {new:?}"));
            }
        }
        Reply::Rst {
            from,
            port,
            flags,
            seq,
            ack,
        } => {
            let l = tb.peer.port(port);
            let before = logs0.get(&port).copied().unwrap_or_default();
            let ok = sent == 1
                && l.rsts == before.rsts + 1
                && (l.last.flags, l.last.seq, l.last.ack, l.last.src_port)
                    == (flags, seq, ack, from)
                && l.last.payload == 0;
            if !ok {
                wrong.push(format!(
                    "wanted one RST flags {flags:#04x} seq {seq} ack {ack}; {sent} frames, {new:?}"
                ));
            }
        }
        Reply::Ack { port } => {
            let l = tb.peer.port(port);
            let before = logs0.get(&port).copied().unwrap_or_default();
            let (snd_nxt, rcv_nxt) = numbers.expect("connection numbers");
            let ok = sent == 1
                && l.pure_acks == before.pure_acks + 1
                && (l.last.flags, l.last.seq, l.last.ack) == (ACK, snd_nxt, rcv_nxt);
            if !ok {
                wrong.push(format!(
                    "wanted one ACK seq {snd_nxt} ack {rcv_nxt}; {sent} frames, {new:?}"
                ));
            }
        }
    }
    (!wrong.is_empty()).then(|| format!("{}: {}", c.name, wrong.join("; ")))
}

// ------------------------------------------------------------------ IPv4

/// The Internet checksum of `b` (0 over a correct header).
fn sum(b: &[u8]) -> u16 {
    checksum(&[b])
}

/// An IPv4 packet from `src` to `dst` in an Ethernet frame to the board; `edit` changes
/// the 20-byte header before its checksum is computed.
fn ip_frame(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    body: &[u8],
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let total = ((20 + body.len()) as u16).to_be_bytes();
    let mut ip = vec![
        0x45, 0, total[0], total[1], 0x4D, 0x57, 0x40, 0, 64, proto, 0, 0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    edit(&mut ip);
    ip[10] = 0;
    ip[11] = 0;
    let c = sum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&BOARD_MAC);
    f.extend_from_slice(&SPOOF_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(body);
    f
}

/// A SYN to the board's port 80 from the spoofed host (answered with a SYN-ACK if it
/// ever got through), checksummed for `src` → `dst`.
fn syn_bytes(port: u16, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    Segment::new(port, 80, 0x1000_0000 + port as u32, 0, SYN)
        .mss(1460)
        .bytes(src, dst)
}

fn echo_request(data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend_from_slice(data);
    let c = sum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn ipv4_cases() -> Vec<NetCase> {
    let me = BOARD_IP;
    let syn = |port| syn_bytes(port, SPOOF_IP, me);
    let mut bad_sum = ip_frame(SPOOF_IP, me, 6, &syn(41001), |_| {});
    bad_sum[14 + 10] ^= 0x5A;
    let mut icmp_bad = echo_request(b"ping");
    icmp_bad[2] ^= 0xFF;
    vec![
        // RFC 791 / RFC 1122 §3.2.1.2: a bad header checksum is silently discarded.
        dropped("header checksum wrong", bad_sum, &["net.ip_bad_checksum"]),
        // RFC 1122 §3.2.1.1: version other than 4 is silently discarded.
        dropped(
            "version 6",
            ip_frame(SPOOF_IP, me, 6, &syn(41002), |h| h[0] = 0x65),
            &["net.ip_malformed"],
        ),
        dropped(
            "version 5",
            ip_frame(SPOOF_IP, me, 6, &syn(41003), |h| h[0] = 0x55),
            &["net.ip_malformed"],
        ),
        // RFC 791: IHL is at least 5, and the header fits in the total length.
        dropped(
            "IHL 4",
            ip_frame(SPOOF_IP, me, 6, &syn(41004), |h| h[0] = 0x44),
            &["net.ip_malformed"],
        ),
        dropped(
            "IHL 0",
            ip_frame(SPOOF_IP, me, 6, &syn(41005), |h| h[0] = 0x40),
            &["net.ip_malformed"],
        ),
        dropped(
            "IHL 15 beyond the total length",
            ip_frame(SPOOF_IP, me, 6, &[0u8; 16], |h| {
                h[0] = 0x4F;
                h[2..4].copy_from_slice(&36u16.to_be_bytes());
            }),
            &["net.ip_malformed"],
        ),
        dropped(
            "total length beyond the frame",
            ip_frame(SPOOF_IP, me, 6, &syn(41006), |h| {
                h[2..4].copy_from_slice(&1000u16.to_be_bytes())
            }),
            &["net.ip_malformed"],
        ),
        dropped(
            "total length below the header",
            ip_frame(SPOOF_IP, me, 6, &syn(41007), |h| {
                h[2..4].copy_from_slice(&16u16.to_be_bytes())
            }),
            &["net.ip_malformed"],
        ),
        // No reassembly: fragments are dropped (a TCP stack whose peers set DF).
        dropped(
            "first fragment (MF)",
            ip_frame(SPOOF_IP, me, 6, &syn(41008), |h| h[6] = 0x20),
            &["net.ip_fragments"],
        ),
        dropped(
            "later fragment (offset 8)",
            ip_frame(SPOOF_IP, me, 6, &syn(41009), |h| {
                h[6..8].copy_from_slice(&1u16.to_be_bytes())
            }),
            &["net.ip_fragments"],
        ),
        dropped(
            "middle fragment (MF and offset)",
            ip_frame(SPOOF_IP, me, 6, &syn(41010), |h| {
                h[6..8].copy_from_slice(&0x2010u16.to_be_bytes())
            }),
            &["net.ip_fragments"],
        ),
        // RFC 1122 §3.2.1.3: a host silently discards a datagram not addressed to it.
        dropped(
            "for another host on the subnet",
            ip_frame(
                SPOOF_IP,
                [192, 168, 7, 99],
                6,
                &syn_bytes(41011, SPOOF_IP, [192, 168, 7, 99]),
                |_| {},
            ),
            &["net.ip_not_for_us"],
        ),
        dropped(
            "for another network",
            ip_frame(
                SPOOF_IP,
                [10, 1, 2, 3],
                6,
                &syn_bytes(41012, SPOOF_IP, [10, 1, 2, 3]),
                |_| {},
            ),
            &["net.ip_not_for_us"],
        ),
        // RFC 9293 MUST-57: a SYN to a multicast address is silently discarded.
        dropped(
            "SYN to a multicast address",
            ip_frame(
                SPOOF_IP,
                [224, 0, 0, 1],
                6,
                &syn_bytes(41013, SPOOF_IP, [224, 0, 0, 1]),
                |_| {},
            ),
            &["net.ip_not_for_us"],
        ),
        // No UDP: dropped (RFC 1122 §3.2.2.1 makes Protocol Unreachable a SHOULD).
        dropped(
            "UDP datagram",
            ip_frame(
                SPOOF_IP,
                me,
                17,
                &[0x30, 0x39, 0, 7, 0, 12, 0, 0, 1, 2, 3, 4],
                |_| {},
            ),
            &["net.ip_unknown_protocol"],
        ),
        // ICMP (RFC 792, RFC 1122 §3.2.2.6).
        dropped(
            "ICMP echo request with a bad checksum",
            ip_frame(SPOOF_IP, me, 1, &icmp_bad, |_| {}),
            &["net.icmp_bad_checksum"],
        ),
        dropped(
            "ICMP message of 4 bytes",
            ip_frame(SPOOF_IP, me, 1, &[8, 0, 0xF7, 0xFF], |_| {}),
            &["net.icmp_malformed"],
        ),
        dropped(
            "ICMP echo request to the subnet broadcast",
            ip_frame(
                SPOOF_IP,
                [192, 168, 7, 255],
                1,
                &echo_request(b"smurf"),
                |_| {},
            ),
            &["net.icmp_ignored"],
        ),
    ]
}

#[test]
fn malformed_ipv4_is_dropped_counted_and_unanswered() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    let cases = ipv4_cases();
    let mut failures = Vec::new();
    for c in &cases {
        failures.extend(run_net_case(&mut tb, &mut good, c, None));
        good.echoes(&mut tb, c.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(tb.fw.0.net().slots_in_use(), 1, "no connection was opened");
    println!("IPv4 rows: {}", cases.len());
}

// ------------------------------------------------------------------ TCP

/// A segment from the spoofed host, with its checksum fixed after `edit` changed the
/// bytes.
fn spoofed(seg: Segment, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    tcp_frame(SPOOF_IP, seg, edit)
}

fn tcp_frame(src: [u8; 4], seg: Segment, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut t = seg.bytes(src, BOARD_IP);
    edit(&mut t);
    fix_tcp_sum(&mut t, src, BOARD_IP);
    ip_frame(src, BOARD_IP, 6, &t, |_| {})
}

fn fix_tcp_sum(t: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
    t[16] = 0;
    t[17] = 0;
    let len = (t.len() as u16).to_be_bytes();
    let c = checksum(&[&src, &dst, &[0, 6], &len, t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Rows against the listening port and closed ports, from the spoofed host (RFC 9293
/// §3.10.7.1-2).
fn listener_cases() -> Vec<NetCase> {
    const SEQ: u32 = 0x2000_0000;
    const ACKN: u32 = 0x7777_0000;
    let s = |port: u16, flags: u8| {
        Segment::new(
            port,
            80,
            SEQ,
            if flags & ACK != 0 { ACKN } else { 0 },
            flags,
        )
    };
    let to = |port: u16, dport: u16, flags: u8| {
        Segment::new(
            port,
            dport,
            SEQ,
            if flags & ACK != 0 { ACKN } else { 0 },
            flags,
        )
    };
    let mut bad_sum = spoofed(s(42001, SYN).mss(1460), |_| {});
    let at = bad_sum.len() - 1;
    bad_sum[at] ^= 0x01; // the last option byte, the checksum left as it was
    let mut short = s(42002, SYN).bytes(SPOOF_IP, BOARD_IP);
    short.truncate(12);
    let mut bad_opt = s(42005, SYN);
    bad_opt.options = vec![2, 0, 0, 0]; // option length 0
    let mut past = s(42006, SYN);
    past.options = vec![1, 1, 8, 10]; // timestamps claiming 10 bytes in 2
    vec![
        // RFC 9293 §3.1 / MUST-2: a bad checksum is discarded.
        dropped("checksum wrong", bad_sum, &["tcp.rx_bad_checksum"]),
        dropped(
            "header of 12 bytes",
            ip_frame(SPOOF_IP, BOARD_IP, 6, &short, |_| {}),
            &["tcp.rx_malformed"],
        ),
        dropped(
            "data offset 4",
            spoofed(s(42003, SYN), |t| t[12] = 0x40),
            &["tcp.rx_malformed"],
        ),
        dropped(
            "data offset beyond the segment",
            spoofed(s(42004, SYN).data(b"x"), |t| t[12] = 0xF0),
            &["tcp.rx_malformed"],
        ),
        dropped(
            "option of length 0",
            spoofed(bad_opt, |_| {}),
            &["tcp.rx_malformed"],
        ),
        dropped(
            "option running past the header",
            spoofed(past, |_| {}),
            &["tcp.rx_malformed"],
        ),
        // §3.10.7.1: CLOSED. Without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
        NetCase {
            name: "SYN to a closed port",
            frame: spoofed(to(42007, 81, SYN).mss(1460), |_| {}),
            reply: Reply::Rst {
                from: 81,
                port: 42007,
                flags: RST | ACK,
                seq: 0,
                ack: SEQ + 1,
            },
            counters: &["tcp.rx_segments", "tcp.rx_closed_port", "tcp.rst_sent"],
            exact: true,
        },
        NetCase {
            name: "data and FIN to a closed port",
            frame: spoofed(to(42008, 8080, PSH | FIN).data(b"hello"), |_| {}),
            reply: Reply::Rst {
                from: 8080,
                port: 42008,
                flags: RST | ACK,
                seq: 0,
                ack: SEQ + 6,
            },
            counters: &["tcp.rx_segments", "tcp.rx_closed_port", "tcp.rst_sent"],
            exact: true,
        },
        // With ACK: <SEQ=SEG.ACK><CTL=RST>.
        NetCase {
            name: "ACK to a closed port",
            frame: spoofed(to(42009, 443, ACK), |_| {}),
            reply: Reply::Rst {
                from: 443,
                port: 42009,
                flags: RST,
                seq: ACKN,
                ack: 0,
            },
            counters: &["tcp.rx_segments", "tcp.rx_closed_port", "tcp.rst_sent"],
            exact: true,
        },
        // An RST is never answered.
        dropped(
            "RST to a closed port",
            spoofed(to(42010, 81, RST), |_| {}),
            &["tcp.rx_segments", "tcp.rx_closed_port"],
        ),
        // §3.10.7.2: LISTEN. Any ACK: <SEQ=SEG.ACK><CTL=RST> (no SYN cookie matches).
        NetCase {
            name: "ACK to the listener without a valid cookie",
            frame: spoofed(s(42011, ACK), |_| {}),
            reply: Reply::Rst {
                from: 80,
                port: 42011,
                flags: RST,
                seq: ACKN,
                ack: 0,
            },
            counters: &[
                "tcp.rx_segments",
                "tcp.syn_cookies_rejected",
                "tcp.rst_sent",
            ],
            exact: true,
        },
        NetCase {
            name: "data with ACK to the listener",
            frame: spoofed(s(42012, ACK | PSH).data(b"GET / HTTP/1.1\r\n\r\n"), |_| {}),
            reply: Reply::Rst {
                from: 80,
                port: 42012,
                flags: RST,
                seq: ACKN,
                ack: 0,
            },
            counters: &[
                "tcp.rx_segments",
                "tcp.syn_cookies_rejected",
                "tcp.rst_sent",
            ],
            exact: true,
        },
        NetCase {
            name: "SYN-ACK to the listener",
            frame: spoofed(s(42013, SYN | ACK), |_| {}),
            reply: Reply::Rst {
                from: 80,
                port: 42013,
                flags: RST,
                seq: ACKN,
                ack: 0,
            },
            counters: &[
                "tcp.rx_segments",
                "tcp.syn_cookies_rejected",
                "tcp.rst_sent",
            ],
            exact: true,
        },
        // An RST to the listener is ignored; a segment with neither SYN nor ACK is
        // dropped ("fourth, other text or control").
        dropped(
            "RST to the listener",
            spoofed(s(42014, RST), |_| {}),
            &["tcp.rx_segments"],
        ),
        dropped(
            "FIN to the listener",
            spoofed(s(42015, FIN).data(b"bye"), |_| {}),
            &["tcp.rx_segments"],
        ),
        dropped(
            "bare segment, no flags",
            spoofed(s(42016, 0).data(b"?"), |_| {}),
            &["tcp.rx_segments"],
        ),
        // SYN+FIN: an invalid combination, dropped (as Linux and the BSDs do) and
        // leaves no half-open state behind (`slots_in_use` is checked at the end).
        dropped(
            "SYN+FIN to the listener",
            spoofed(s(42017, SYN | FIN).mss(1460), |_| {}),
            &["tcp.rx_segments"],
        ),
        // MUST-57: a SYN to a broadcast address is silently discarded.
        dropped(
            "SYN to the subnet broadcast",
            {
                let t = to(42018, 80, SYN)
                    .mss(1460)
                    .bytes(SPOOF_IP, [192, 168, 7, 255]);
                ip_frame(SPOOF_IP, [192, 168, 7, 255], 6, &t, |_| {})
            },
            &["tcp.rx_segments", "tcp.rx_malformed"],
        ),
        dropped(
            "SYN to the limited broadcast",
            {
                let t = to(42019, 80, SYN).mss(1460).bytes(SPOOF_IP, [255; 4]);
                ip_frame(SPOOF_IP, [255; 4], 6, &t, |_| {})
            },
            &["tcp.rx_segments", "tcp.rx_malformed"],
        ),
    ]
}

/// Rows on an established connection (RFC 9293 §3.10.7.4, RFC 5961), given its port and
/// the board's snd_nxt and rcv_nxt on it.
fn connection_cases(port: u16, snd_nxt: u32, rcv_nxt: u32) -> Vec<NetCase> {
    let seg = |seq: u32, ack: u32, flags: u8, data: &[u8]| {
        Segment::new(port, 80, seq, ack, flags).data(data)
    };
    let from_peer = |s: Segment, edit: fn(&mut Vec<u8>)| tcp_frame(PEER_IP, s, edit);
    let ack_case =
        |name: &'static str, frame: Vec<u8>, counters: &'static [&'static str]| NetCase {
            name,
            frame,
            reply: Reply::Ack { port },
            counters,
            exact: true,
        };
    let mut bad_sum = from_peer(seg(rcv_nxt, snd_nxt, ACK | PSH, b"INJECTED"), |_| {});
    let at = bad_sum.len() - 1;
    bad_sum[at] ^= 0x20;
    vec![
        // Fifth: "if the ACK bit is off, drop the segment and return".
        dropped(
            "data without ACK at rcv_nxt",
            from_peer(seg(rcv_nxt, 0, PSH, b"INJECTED"), |_| {}),
            &["tcp.rx_segments", "tcp.rx_no_ack"],
        ),
        dropped(
            "data with a bad checksum",
            bad_sum,
            &["tcp.rx_bad_checksum"],
        ),
        dropped(
            "data with data offset 4",
            from_peer(seg(rcv_nxt, snd_nxt, ACK | PSH, b"INJECTED"), |t| {
                t[12] = 0x40
            }),
            &["tcp.rx_malformed"],
        ),
        // First: an unacceptable segment is answered with an ACK (unless RST).
        ack_case(
            "data far outside the receive window",
            from_peer(
                seg(
                    rcv_nxt.wrapping_add(1 << 30),
                    snd_nxt,
                    ACK | PSH,
                    b"INJECTED",
                ),
                |_| {},
            ),
            &["tcp.rx_segments", "tcp.rx_out_of_window"],
        ),
        ack_case(
            "an old duplicate",
            from_peer(
                seg(rcv_nxt.wrapping_sub(100), snd_nxt, ACK | PSH, b"OLD DATA"),
                |_| {},
            ),
            &["tcp.rx_segments", "tcp.rx_duplicate"],
        ),
        // ... and an unacceptable RST is dropped without one.
        dropped(
            "RST outside the window",
            from_peer(seg(rcv_nxt.wrapping_add(1 << 30), 0, RST, b""), |_| {}),
            &["tcp.rx_segments"],
        ),
        // Data beyond rcv_nxt inside the window: an immediate duplicate ACK (RFC 5681
        // §4.2), the data dropped (holding it is a SHOULD the stack does not take).
        ack_case(
            "data beyond rcv_nxt in the window",
            from_peer(
                seg(rcv_nxt.wrapping_add(100), snd_nxt, ACK | PSH, b"LATER"),
                |_| {},
            ),
            &["tcp.rx_segments", "tcp.rx_out_of_order"],
        ),
        // Fifth: an ACK of something not yet sent is answered with an ACK and dropped.
        ack_case(
            "ACK of data never sent",
            from_peer(
                seg(
                    rcv_nxt,
                    snd_nxt.wrapping_add(1 << 20),
                    ACK | PSH,
                    b"INJECTED",
                ),
                |_| {},
            ),
            &["tcp.rx_segments", "tcp.rx_bad_ack"],
        ),
        // RFC 5961 §5.2: an ACK older than the window allows: challenge ACK.
        ack_case(
            "ACK older than SND.UNA - MAX.SND.WND",
            from_peer(
                seg(
                    rcv_nxt,
                    snd_nxt.wrapping_sub(1 << 20),
                    ACK | PSH,
                    b"INJECTED",
                ),
                |_| {},
            ),
            &["tcp.rx_segments", "tcp.rx_bad_ack", "tcp.challenge_acks"],
        ),
        // RFC 5961 §3.2 / §4.2: RST not at rcv_nxt, SYN in a synchronized state.
        ack_case(
            "RST in the window, not at rcv_nxt",
            from_peer(seg(rcv_nxt.wrapping_add(10), 0, RST, b""), |_| {}),
            &["tcp.rx_segments", "tcp.challenge_acks"],
        ),
        ack_case(
            "SYN on the connection",
            from_peer(seg(rcv_nxt, 0, SYN, b""), |_| {}),
            &["tcp.rx_segments", "tcp.challenge_acks"],
        ),
        ack_case(
            "SYN+FIN on the connection",
            from_peer(seg(rcv_nxt, snd_nxt, SYN | FIN | ACK, b""), |_| {}),
            &["tcp.rx_segments", "tcp.challenge_acks"],
        ),
    ]
}

#[test]
fn malformed_tcp_is_answered_as_rfc_9293_requires_or_dropped_and_counted() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    // A second WebSocket, opened by hand, whose sequence numbers the rows spoof.
    let mut victim = upgraded(&mut tb, &mut good);
    let port = tb
        .peer
        .host
        .tcp_socket(victim.h)
        .local_endpoint()
        .expect("connected")
        .port;
    good.echoes(&mut tb, "the victim's upgrade");
    let last = tb.peer.port(port).last;
    let (snd_nxt, rcv_nxt) = (last.seq.wrapping_add(last.payload as u32), last.ack);

    let listener = listener_cases();
    let connection = connection_cases(port, snd_nxt, rcv_nxt);
    let mut failures = Vec::new();
    for c in listener.iter().chain(&connection) {
        failures.extend(run_net_case(
            &mut tb,
            &mut good,
            c,
            Some((snd_nxt, rcv_nxt)),
        ));
        good.echoes(&mut tb, c.name);
        victim.pump(&mut tb.peer.host);
        if !victim.got.is_empty() || victim.server_closed(&tb.peer.host) {
            failures.push(format!(
                "{}: the victim connection was disturbed: {:?}",
                c.name,
                String::from_utf8_lossy(&victim.got)
            ));
            victim.got.clear();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was injected into the victim's stream: it still echoes, byte for byte.
    victim.send(&frame(true, 0x1, b"the victim's own message"));
    let ok = tb.run_until(
        |tb| {
            victim.pump(&mut tb.peer.host);
            !server_frames(&victim.got).is_empty()
        },
        SECOND,
    );
    assert!(ok);
    assert_eq!(
        server_frames(&victim.got),
        vec![(true, 0x1, b"the victim's own message".to_vec())]
    );
    let stats = *tb.fw.0.server().stats();
    assert_eq!(stats.protocol_errors, 0, "{stats:?}");
    // Only the two WebSockets hold a TCP slot: no row left state behind.
    tb.run_for(100 * MS);
    assert_eq!(tb.fw.0.net().slots_in_use(), 2);
    println!(
        "TCP rows: {} ({} listener, {} connection)",
        listener.len() + connection.len(),
        listener.len(),
        connection.len()
    );
}

// ------------------------------------------------------------------ defects

/// Rows the firmware first answered wrongly (found by this table, fixed since): invalid
/// source addresses (now dropped and counted in `ip_bad_source`), repeated or invalid
/// Host headers and HTTP/1.0 upgrades (now 400). The test lists every row that fails.
#[test]
fn rows_that_found_defects() {
    let mut tb = bed();
    let mut good = Good::open(&mut tb);
    let http_rows = vec![
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to
        // any HTTP/1.1 request message that lacks a Host header field and to any request
        // message that contains more than one Host header field line or a Host header
        // field with an invalid field value."
        http(
            "two Host headers",
            request_with(HOST_LINE, "Host: 192.168.7.2\r\nHost: evil.example\r\n"),
            400,
        ),
        http(
            "Host value with a space inside",
            request_with(HOST_LINE, "Host: 192.168.7.2 evil\r\n"),
            400,
        ),
        // RFC 9110 §15.6.6: 505 is for a major version the server refuses; HTTP/1.0 is
        // major version 1, which it speaks. RFC 6455 §4.2.1 item 1 needs HTTP/1.1 or
        // later: 400 (RFC 6455 §4.2.2's "such as 400 Bad Request").
        http(
            "HTTP/1.0 upgrade request",
            String::from_utf8(upgrade_request("/ws", ""))
                .unwrap()
                .replacen("HTTP/1.1", "HTTP/1.0", 1)
                .into_bytes(),
            400,
        ),
    ];
    let mut failures = run_http_cases(&mut tb, &mut good, &http_rows);
    let syn_from = |src: [u8; 4], port: u16| {
        let t = syn_bytes(port, src, BOARD_IP);
        ip_frame(src, BOARD_IP, 6, &t, |_| {})
    };
    let ping_from =
        |src: [u8; 4]| ip_frame(src, BOARD_IP, 1, &echo_request(b"from nowhere"), |_| {});
    let net_rows = vec![
        // RFC 9293 MUST-63 (RFC 1122 §3.2.1.3): "An incoming SYN with an invalid source
        // address MUST be ignored either by TCP or by the IP layer."
        dropped(
            "SYN from the limited broadcast address",
            syn_from([255; 4], 43001),
            &["net.ip_bad_source"],
        ),
        dropped(
            "SYN from the subnet broadcast address",
            syn_from([192, 168, 7, 255], 43002),
            &["net.ip_bad_source"],
        ),
        dropped(
            "SYN from a multicast address",
            syn_from([224, 0, 0, 9], 43003),
            &["net.ip_bad_source"],
        ),
        dropped(
            "SYN from 0.0.0.0",
            syn_from([0; 4], 43004),
            &["net.ip_bad_source"],
        ),
        dropped(
            "SYN from a loopback address",
            syn_from([127, 0, 0, 1], 43005),
            &["net.ip_bad_source"],
        ),
        // RFC 1122 §3.2.1.3: "A host MUST silently discard an incoming datagram
        // containing an IP source address that is invalid by the rules of this section."
        dropped(
            "echo request from the limited broadcast address",
            ping_from([255; 4]),
            &["net.ip_bad_source"],
        ),
        dropped(
            "echo request from a multicast address",
            ping_from([224, 0, 0, 9]),
            &["net.ip_bad_source"],
        ),
        dropped(
            "echo request from a loopback address",
            ping_from([127, 0, 0, 1]),
            &["net.ip_bad_source"],
        ),
    ];
    for c in &net_rows {
        failures.extend(run_net_case(&mut tb, &mut good, c, None));
        good.echoes(&mut tb, c.name);
    }
    assert!(
        failures.is_empty(),
        "{} rows still fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
