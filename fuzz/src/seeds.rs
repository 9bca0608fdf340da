//! The seed corpus: a few valid and invalid inputs per target, small (each under 2 KB).
//! Written to `fuzz/corpus/<target>/<name>` by `tests/fuzz_corpus.rs` when
//! `MZW1_WRITE_CORPUS=1` is set; replayed by the same test otherwise.

use super::stack::{
    ACK, FIN, PARTIAL_REQUEST, PORT_A, PORT_B, PSH, RST, SYN, SYN_OPTIONS, arp_request, eth, ipv4,
    ping, record, tcp, wait, ws_frame,
};

/// Fuzz targets, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 3] = ["handshake", "frame_receiver", "net_stack"];

/// The harness for a target.
pub fn harness(target: &str) -> fn(&[u8]) {
    match target {
        "handshake" => super::handshake::run,
        "frame_receiver" => super::frames::run,
        "net_stack" => super::stack::run,
        t => panic!("no fuzz target {t}"),
    }
}

/// (name, input) pairs for `target`.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let list = match target {
        "handshake" => handshake(),
        "frame_receiver" => frames(),
        "net_stack" => stack(),
        t => panic!("no fuzz target {t}"),
    };
    for (name, data) in &list {
        assert!(
            data.len() < 2048,
            "seed {target}/{name} is {} bytes",
            data.len()
        );
    }
    list
}

fn named(v: Vec<(&str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    v.into_iter().map(|(n, d)| (n.to_string(), d)).collect()
}

// ------------------------------------------------------------ handshake

/// Byte 0: configuration (bits 0-1), content type (2-3), content length (4-6); byte 1:
/// cut seed.
fn hs(sel: u8, seed: u8, request: &str) -> Vec<u8> {
    let mut v = vec![sel, seed];
    v.extend_from_slice(request.as_bytes());
    v
}

const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn handshake() -> Vec<(String, Vec<u8>)> {
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(80));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "f".repeat(200)
    );
    let mut with_frame = UPGRADE.as_bytes().to_vec();
    with_frame.extend_from_slice(&ws_frame(true, 1, b"hi", [1, 2, 3, 4]));
    let mut with_frame_seed = vec![0, 7];
    with_frame_seed.extend_from_slice(&with_frame);
    named(vec![
        ("rfc6455-upgrade", hs(0, 1, UPGRADE)),
        (
            "origin-and-protocols",
            hs(
                1,
                2,
                "GET /chat?x=1 HTTP/1.1\r\nHost: board.local\r\nUpgrade: WebSocket\r\n\
                 Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\
                 Origin: http://example.com\r\nSec-WebSocket-Protocol: superchat, chat\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
            ),
        ),
        (
            "origin-forbidden",
            hs(
                1,
                3,
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://evil.example\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
            ),
        ),
        (
            "bare-lf",
            hs(
                3,
                4,
                "GET /a HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: upgrade\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\
                 Sec-WebSocket-Protocol: c, b\n\n",
            ),
        ),
        (
            "plain-get",
            hs(0x14, 5, "GET / HTTP/1.1\r\nHost: board\r\n\r\n"),
        ),
        (
            "post-405",
            hs(0x24, 6, "POST /form HTTP/1.1\r\nHost: b\r\n\r\n"),
        ),
        ("http10-505", hs(0, 7, "GET / HTTP/1.0\r\n\r\n")),
        (
            "no-key-400",
            hs(
                0x30,
                8,
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n",
            ),
        ),
        (
            "version-8-426",
            hs(
                0x40,
                9,
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            ),
        ),
        (
            "two-keys",
            hs(
                0,
                10,
                "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            ),
        ),
        ("uri-414", hs(0, 11, &long_path)),
        ("headers-431", hs(2, 12, &big)),
        (
            "folding-400",
            hs(0, 13, "GET / HTTP/1.1\r\nHost: h\r\n continued\r\n\r\n"),
        ),
        ("incomplete", hs(0, 14, "GET /chat HTTP/1.1\r\nHost: serv")),
        ("followed-by-a-frame", with_frame_seed),
        ("garbage", vec![0, 0, 0xFF, b' ', b'\r', b'\n', 0, b':']),
    ])
}

// ------------------------------------------------------------ frame receiver

fn fr(seed: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![seed, seed ^ 0x5A, 3, 4, 5];
    for f in frames {
        v.extend_from_slice(f);
    }
    v
}

/// A frame with any header bits, masked with a fixed key.
fn raw(b0: u8, b1: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xFA, 0x21, 0x3D];
    let mut f = vec![b0, b1];
    f.extend_from_slice(ext);
    if b1 & 0x80 != 0 {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

fn frames() -> Vec<(String, Vec<u8>)> {
    let k = [1, 2, 3, 4];
    let bin: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
    let mut close = vec![0x03, 0xE8];
    close.extend_from_slice("bye ☃".as_bytes());
    named(vec![
        (
            "rfc-hello",
            fr(
                0,
                &[vec![
                    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
                ]],
            ),
        ),
        (
            "fragmented-with-ping",
            fr(
                1,
                &[
                    ws_frame(false, 1, b"Hel", k),
                    ws_frame(true, 9, b"ping", [9, 8, 7, 6]),
                    ws_frame(true, 0, b"lo", [5, 6, 7, 8]),
                ],
            ),
        ),
        ("binary-126", fr(2, &[ws_frame(true, 2, &bin, k)])),
        (
            "length-127-truncated",
            fr(3, &[raw(0x82, 0xFF, &[0, 0, 0, 0, 0, 1, 0, 0], b"abc")]),
        ),
        (
            "close-1000-reason",
            fr(
                4,
                &[ws_frame(true, 8, &close, k), ws_frame(true, 1, b"after", k)],
            ),
        ),
        ("close-empty", fr(5, &[ws_frame(true, 8, b"", k)])),
        ("close-one-byte", fr(6, &[ws_frame(true, 8, b"\x03", k)])),
        (
            "close-bad-code",
            fr(7, &[ws_frame(true, 8, b"\x03\xED", k)]),
        ),
        (
            "close-bad-reason",
            fr(8, &[ws_frame(true, 8, b"\x03\xE8\xC0\xAF", k)]),
        ),
        (
            "utf8-split-across-fragments",
            fr(
                9,
                &[
                    ws_frame(false, 1, "κό".as_bytes(), k),
                    ws_frame(false, 0, &"σμε😀".as_bytes()[..5], k),
                    ws_frame(true, 0, &"σμε😀".as_bytes()[5..], k),
                ],
            ),
        ),
        (
            "utf8-invalid",
            fr(10, &[ws_frame(true, 1, b"abc\xED\xA0\x80def", k)]),
        ),
        (
            "utf8-truncated-at-end",
            fr(11, &[ws_frame(true, 1, b"abc\xE2\x82", k)]),
        ),
        (
            "empty-messages",
            fr(
                12,
                &[
                    ws_frame(true, 1, b"", k),
                    ws_frame(false, 2, b"", k),
                    ws_frame(false, 0, b"x", k),
                    ws_frame(true, 0, b"", k),
                ],
            ),
        ),
        ("unmasked", fr(13, &[raw(0x81, 0x05, &[], b"Hello")])),
        ("rsv1", fr(14, &[raw(0xC1, 0x81, &[], b"a")])),
        ("reserved-opcode", fr(15, &[raw(0x83, 0x80, &[], b"")])),
        ("fragmented-ping", fr(16, &[raw(0x09, 0x80, &[], b"")])),
        ("ping-126", fr(17, &[raw(0x89, 0xFE, &[0, 126], &[0; 126])])),
        ("continuation-first", fr(18, &[ws_frame(true, 0, b"x", k)])),
        (
            "text-inside-text",
            fr(
                19,
                &[ws_frame(false, 1, b"a", k), ws_frame(true, 1, b"b", k)],
            ),
        ),
        (
            "non-minimal-126",
            fr(20, &[raw(0x82, 0xFE, &[0, 5], b"12345")]),
        ),
        (
            "non-minimal-127",
            fr(21, &[raw(0x82, 0xFF, &[0, 0, 0, 0, 0, 0, 0, 5], b"12345")]),
        ),
        (
            "length-msb",
            fr(22, &[raw(0x82, 0xFF, &[0x80, 0, 0, 0, 0, 1, 0, 0], b"")]),
        ),
        (
            "pong-and-text",
            fr(
                23,
                &[
                    ws_frame(true, 10, b"", k),
                    ws_frame(true, 1, "Grüße".as_bytes(), k),
                ],
            ),
        ),
    ])
}

// ------------------------------------------------------------ the stack

/// Record flags (see `stack.rs`): fix checksums, sync to A/B, raw FCS, batch.
const FIX: u8 = 0x08;
const SYNC: u8 = 0x10;
const RAW: u8 = 0x20;
const BATCH: u8 = 0x40;

/// A segment on A or B, relative to what the board expects when it arrives (offsets 0:
/// the next byte in order, acknowledging everything the board sent).
fn rel(port: u16, seq_off: i16, ack_off: i16, flags: u8, payload: &[u8]) -> Vec<u8> {
    record(
        &tcp(
            port,
            seq_off as u16 as u32,
            ack_off as u16 as u32,
            flags,
            &[],
            payload,
        ),
        SYNC | FIX,
    )
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn stack() -> Vec<(String, Vec<u8>)> {
    let k = [0x11, 0x22, 0x33, 0x44];
    let text = ws_frame(true, 1, b"fuzz me", k);
    let two = ws_frame(false, 2, &[0xAB; 300], k);
    let rest_b = b"ade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    // B's request, from where `PARTIAL_REQUEST` stopped.
    assert!(PARTIAL_REQUEST.ends_with(b"Upgr"));
    let mut bad_ip = ipv4(6, &[0; 20]);
    bad_ip[14] = 0x65;
    let mut options_ip = ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1]);
    options_ip[14] = 0x46;
    options_ip.splice(34..34, [1, 1, 1, 0]);
    options_ip[17] += 4; // total length
    let mut fragment = ping(1, 2, b"frag");
    fragment[20] = 0x20; // more fragments
    let mut bad_fcs = ping(3, 4, b"fcs");
    bad_fcs.resize(60, 0);
    bad_fcs.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let syn = |port: u16| record(&tcp(port, 777, 0, SYN, &SYN_OPTIONS, &[]), 0);
    named(vec![
        ("nothing", vec![]),
        (
            "arp-and-ping",
            cat(&[
                record(&arp_request(), 0),
                record(&ping(0x4242, 1, &[0x55; 64]), 0),
            ]),
        ),
        ("text-on-a", rel(PORT_A, 0, 0, ACK | PSH, &text)),
        (
            "message-in-two-segments",
            cat(&[
                rel(PORT_A, 0, 0, ACK, &two[..150]),
                rel(PORT_A, 0, 0, ACK | PSH, &two[150..]),
                rel(PORT_A, 0, 0, ACK | PSH, &ws_frame(true, 0, b"end", k)),
            ]),
        ),
        (
            "out-of-order",
            cat(&[
                rel(PORT_A, 4, 0, ACK | PSH, &text[4..]),
                rel(PORT_A, 0, 0, ACK | PSH, &text[..4]),
                wait(300),
            ]),
        ),
        (
            "b-upgrades-then-chats",
            cat(&[
                rel(PORT_B, 0, 0, ACK | PSH, rest_b),
                rel(PORT_B, 0, 0, ACK | PSH, &ws_frame(true, 1, b"hi all", k)),
            ]),
        ),
        (
            "ping-and-close-on-a",
            cat(&[
                rel(PORT_A, 0, 0, ACK | PSH, &ws_frame(true, 9, b"p", k)),
                rel(PORT_A, 0, 0, ACK | PSH, &ws_frame(true, 8, b"\x03\xE8", k)),
                wait(50),
                rel(PORT_A, 0, 0, ACK | FIN, &[]),
                wait(2000),
            ]),
        ),
        ("rst-on-b", rel(PORT_B, 0, 0, RST, &[])),
        (
            "fin-on-b",
            cat(&[rel(PORT_B, 0, 0, ACK | FIN, &[]), wait(100)]),
        ),
        (
            "syn-flood",
            cat(&[
                syn(5000),
                syn(5001),
                syn(5002),
                syn(5003),
                syn(5004),
                wait(1000),
            ]),
        ),
        ("handshake-timeout", wait(6000)),
        ("idle-timeout", cat(&[wait(16000), wait(16000)])),
        (
            "malformed",
            cat(&[
                record(&bad_ip, FIX),
                record(&options_ip, FIX),
                record(&fragment, FIX),
                record(&eth([0xFF; 6], 0x86DD, &[0; 40]), 0),
                record(&ipv4(6, &[0; 8]), 0),
                record(&ipv4(17, &[0; 8]), 0),
                record(&bad_fcs, RAW),
            ]),
        ),
        (
            "batched",
            cat(&[
                record(&ping(9, 1, b"a"), BATCH),
                record(&ping(9, 2, b"b"), BATCH),
                record(&arp_request(), BATCH),
                rel(PORT_A, 0, 0, ACK | PSH, &text[..3]),
                record(&ping(9, 3, b"c"), 0),
            ]),
        ),
        (
            "window-probe-and-dupacks",
            cat(&[
                rel(PORT_A, 0, -1, ACK, &[]),
                rel(PORT_A, 0, -1, ACK, &[]),
                rel(PORT_A, 0, -1, ACK, &[]),
                rel(PORT_A, 0, 0, ACK | PSH, &text),
                wait(1500),
            ]),
        ),
    ])
}
