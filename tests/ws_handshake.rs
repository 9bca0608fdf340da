//! The opening handshake (RFC 6455 §4.2): requests as browsers send them, split at every
//! byte, and every refusal with its status.

use mzw1_wss::ws::handshake::{
    HandshakeConfig, Progress, RequestParser, Status, accept_key, write_response,
};

const CHROME: &str = "GET /chat?room=1 HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn parse(req: &str, cfg: &HandshakeConfig) -> (RequestParser, Progress) {
    let mut p = RequestParser::new();
    let r = p.feed(req.as_bytes(), cfg);
    (p, r)
}

fn verdict(req: &str, cfg: &HandshakeConfig) -> Status {
    match parse(req, cfg) {
        (p, Progress::Complete(_)) => p.verdict(),
        (_, Progress::Refused(s)) => s,
        (_, Progress::NeedMore) => panic!("incomplete: {req:?}"),
    }
}

/// Feeds `req` in two pieces, cut at every byte: the first asks for more, the second
/// completes the request; then `check` looks at the parser.
fn at_every_cut(req: &str, cfg: &HandshakeConfig, check: impl Fn(usize, &RequestParser)) {
    let bytes = req.as_bytes();
    for cut in 0..bytes.len() {
        let mut p = RequestParser::new();
        assert_eq!(p.feed(&bytes[..cut], cfg), Progress::NeedMore, "cut {cut}");
        assert_eq!(
            p.feed(&bytes[cut..], cfg),
            Progress::Complete(bytes.len() - cut),
            "cut {cut}"
        );
        check(cut, &p);
    }
}

#[test]
fn a_browser_request_is_upgraded_with_the_rfc_accept_key() {
    let cfg = HandshakeConfig::default();
    let (p, r) = parse(CHROME, &cfg);
    assert_eq!(r, Progress::Complete(CHROME.len()));
    assert_eq!(p.verdict(), Status::SwitchingProtocols);
    assert_eq!(&p.request().path[..], b"/chat?room=1");
    let key = p.request().key.expect("key");
    assert_eq!(&accept_key(&key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn split_at_every_byte_gives_the_same_answer() {
    let cfg = HandshakeConfig::default();
    at_every_cut(CHROME, &cfg, |_, p| {
        assert_eq!(p.verdict(), Status::SwitchingProtocols)
    });
    let bytes = CHROME.as_bytes();
    // One byte at a time.
    let mut p = RequestParser::new();
    for (i, b) in bytes.iter().enumerate() {
        let r = p.feed(std::slice::from_ref(b), &cfg);
        if i + 1 < bytes.len() {
            assert_eq!(r, Progress::NeedMore);
        } else {
            assert_eq!(r, Progress::Complete(1));
        }
    }
    assert_eq!(p.verdict(), Status::SwitchingProtocols);
}

#[test]
fn bytes_after_the_request_are_left_for_the_frames() {
    let cfg = HandshakeConfig::default();
    let mut with_frames = CHROME.as_bytes().to_vec();
    with_frames.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    let mut p = RequestParser::new();
    assert_eq!(p.feed(&with_frames, &cfg), Progress::Complete(CHROME.len()));
}

#[test]
fn firefox_connection_list_and_header_spelling_variants() {
    let cfg = HandshakeConfig::default();
    let ff = CHROME.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    assert_eq!(verdict(&ff, &cfg), Status::SwitchingProtocols);
    let lf_only = CHROME.replace("\r\n", "\n");
    assert_eq!(
        verdict(&lf_only, &cfg),
        Status::SwitchingProtocols,
        "bare LF line ends"
    );
    let tight = CHROME
        .replace("Upgrade: websocket", "upgrade:WebSocket")
        .replace("Host: ", "HOST:");
    assert_eq!(
        verdict(&tight, &cfg),
        Status::SwitchingProtocols,
        "case and spacing"
    );
    let list = CHROME.replace("Upgrade: websocket", "Upgrade: h2c, websocket");
    assert_eq!(verdict(&list, &cfg), Status::SwitchingProtocols);
    let http2 = CHROME.replace("HTTP/1.1\r\n", "HTTP/2.0\r\n");
    assert_eq!(
        verdict(&http2, &cfg),
        Status::SwitchingProtocols,
        "a later HTTP version"
    );
}

#[test]
fn refusals_and_their_statuses() {
    let cfg = HandshakeConfig::default();
    let cases: &[(&str, String, Status)] = &[
        (
            "no Host",
            CHROME.replace("Host: 127.0.0.1:8080\r\n", ""),
            Status::BadRequest,
        ),
        (
            "no Connection: upgrade",
            CHROME.replace("Connection: Upgrade", "Connection: keep-alive"),
            Status::BadRequest,
        ),
        (
            "no key",
            CHROME.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            Status::BadRequest,
        ),
        (
            "short key",
            CHROME.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            Status::BadRequest,
        ),
        (
            "key not base64",
            CHROME.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZ!=="),
            Status::BadRequest,
        ),
        (
            "version 8",
            CHROME.replace("Version: 13", "Version: 8"),
            Status::UpgradeRequired,
        ),
        (
            "no version",
            CHROME.replace("Sec-WebSocket-Version: 13\r\n", ""),
            Status::UpgradeRequired,
        ),
        (
            "POST",
            CHROME.replace("GET ", "POST "),
            Status::MethodNotAllowed,
        ),
        (
            "lowercase get",
            CHROME.replace("GET ", "get "),
            Status::MethodNotAllowed,
        ),
        (
            "HTTP/1.0",
            CHROME.replace("HTTP/1.1\r\n", "HTTP/1.0\r\n"),
            Status::BadRequest,
        ),
        (
            "garbage",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03\r\n\r\n".to_string(),
            Status::BadRequest,
        ),
        (
            "folded header",
            CHROME.replace("Pragma: no-cache\r\n", "Pragma: no-cache\r\n  folded\r\n"),
            Status::BadRequest,
        ),
        (
            "space in a name",
            CHROME.replace("Pragma:", "Pra gma:"),
            Status::BadRequest,
        ),
        (
            "long path",
            CHROME.replace("/chat?room=1", &format!("/{}", "a".repeat(100))),
            Status::UriTooLong,
        ),
        (
            "headers too large",
            CHROME.replace("Pragma: no-cache", &format!("X-Big: {}", "x".repeat(3000))),
            Status::HeadersTooLarge,
        ),
    ];
    for (what, req, want) in cases {
        assert_eq!(verdict(req, &cfg), *want, "{what}");
    }
    // A plain GET without Upgrade is for the page hook.
    let page = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(verdict(page, &cfg), Status::Ok);
}

#[test]
fn origin_allow_list() {
    let cfg = HandshakeConfig {
        allowed_origins: &["http://board.local", "http://127.0.0.1:8080"],
        ..Default::default()
    };
    assert_eq!(verdict(CHROME, &cfg), Status::SwitchingProtocols);
    let evil = CHROME.replace(
        "Origin: http://127.0.0.1:8080",
        "Origin: http://evil.example",
    );
    assert_eq!(verdict(&evil, &cfg), Status::Forbidden);
    let upper = CHROME.replace(
        "Origin: http://127.0.0.1:8080",
        "Origin: HTTP://BOARD.LOCAL",
    );
    assert_eq!(
        verdict(&upper, &cfg),
        Status::SwitchingProtocols,
        "origins compare case-insensitively"
    );
    let none = CHROME.replace("Origin: http://127.0.0.1:8080\r\n", "");
    assert_eq!(
        verdict(&none, &cfg),
        Status::SwitchingProtocols,
        "non-browser clients send no Origin"
    );
}

#[test]
fn subprotocol_is_chosen_by_server_preference() {
    let cfg = HandshakeConfig {
        subprotocols: &["chat.v2", "chat"],
        ..Default::default()
    };
    let req = CHROME.replace(
        "Pragma: no-cache",
        "Sec-WebSocket-Protocol: chat, chat.v2, other",
    );
    let (p, _) = parse(&req, &cfg);
    assert_eq!(p.request().subprotocol, Some(0));
    let req = CHROME.replace("Pragma: no-cache", "Sec-WebSocket-Protocol: other, chat");
    let (p, _) = parse(&req, &cfg);
    assert_eq!(p.request().subprotocol, Some(1));
    let req = CHROME.replace("Pragma: no-cache", "Sec-WebSocket-Protocol: soap");
    let (p, _) = parse(&req, &cfg);
    assert_eq!(p.request().subprotocol, None);
    assert_eq!(
        p.verdict(),
        Status::SwitchingProtocols,
        "no common subprotocol: accepted without one"
    );
}

#[test]
fn responses_are_well_formed_http() {
    let mut out = [0u8; 512];
    let accept = *b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    let n = write_response(
        &mut out,
        Status::SwitchingProtocols,
        Some(&accept),
        Some("chat"),
        None,
        0,
    )
    .unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert_eq!(
        text,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    let n = write_response(&mut out, Status::UpgradeRequired, None, None, None, 0).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[..n]).unwrap(),
        "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let n = write_response(&mut out, Status::Ok, None, None, Some("text/html"), 1234).unwrap();
    assert!(
        std::str::from_utf8(&out[..n])
            .unwrap()
            .contains("Content-Type: text/html\r\nContent-Length: 1234\r\n")
    );
    // Too small a buffer: the length it needs, never a panic.
    let n = write_response(&mut out, Status::ServiceUnavailable, None, None, None, 0).unwrap();
    assert_eq!(
        write_response(
            &mut out[..20],
            Status::ServiceUnavailable,
            None,
            None,
            None,
            0
        ),
        Err(n)
    );
}

/// RFC 9112 §2.2: a bare CR in a field value makes the request invalid (found by the
/// handshake fuzz target: CRs dropped from a key let "AQID\rBAUG..." pass as one key).
/// The answer is the same wherever the request is cut.
#[test]
fn a_bare_cr_in_a_header_value_is_refused_with_400() {
    let cfg = HandshakeConfig::default();
    for (from, to) in [
        ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZ\rSBub25jZQ=="),
        ("Upgrade: websocket", "Upgrade: web\rsocket"),
        ("Pragma: no-cache", "Pragma: no-cache\r\r"),
        ("Host: 127.0.0.1:8080", "Host: \r127.0.0.1:8080"),
    ] {
        let req = CHROME.replacen(from, to, 1);
        let bytes = req.as_bytes();
        for cut in 0..bytes.len() {
            let mut p = RequestParser::new();
            let r = match p.feed(&bytes[..cut], &cfg) {
                Progress::NeedMore => p.feed(&bytes[cut..], &cfg),
                r => r,
            };
            assert_eq!(r, Progress::Refused(Status::BadRequest), "{to:?} cut {cut}");
        }
    }
}

/// RFC 9112 §3.2: a request with more than one Host line, or a Host value with a blank
/// inside, gets 400 (found by the malformed-input table).
#[test]
fn two_hosts_or_a_blank_inside_the_host_get_400() {
    let cfg = HandshakeConfig::default();
    let two = CHROME.replacen("Host: 127.0.0.1:8080\r\n", "Host: a\r\nHost: b\r\n", 1);
    let blank = CHROME.replacen("Host: 127.0.0.1:8080", "Host: 127.0.0.1 :8080", 1);
    let trailing = CHROME.replacen("Host: 127.0.0.1:8080", "Host:  127.0.0.1:8080 \t", 1);
    assert_eq!(verdict(&two, &cfg), Status::BadRequest);
    assert_eq!(verdict(&blank, &cfg), Status::BadRequest);
    assert_eq!(verdict(&trailing, &cfg), Status::SwitchingProtocols);
}

#[test]
fn values_lose_spaces_and_tabs_around_them_and_nothing_else() {
    // RFC 9110 §5.5: OWS (spaces and tabs, §5.6.3) around a value is not part of it.
    let cfg = HandshakeConfig {
        subprotocols: &["chat"],
        ..Default::default()
    };
    let blanks = CHROME
        .replace("Upgrade: websocket", "Upgrade: \t websocket \t")
        .replace("Connection: Upgrade", "Connection:\tkeep-alive,\tUpgrade\t")
        .replace(
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Key: \tdGhlIHNhbXBsZSBub25jZQ== \t",
        )
        .replace("Pragma: no-cache", "Sec-WebSocket-Protocol:  chat\t,x");
    at_every_cut(&blanks, &cfg, |cut, p| {
        assert_eq!(p.verdict(), Status::SwitchingProtocols, "cut {cut}");
        assert_eq!(p.request().subprotocol, Some(0), "cut {cut}");
        let key = p.request().key.expect("key");
        assert_eq!(&accept_key(&key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    });
    // A value longer than the parser keeps (64 bytes) is refused however it arrives,
    // even when what passes the limit is trailing blanks.
    let long = CHROME.replace("Bub25jZQ==", &format!("Bub25jZQ=={}", " ".repeat(50)));
    at_every_cut(&long, &cfg, |cut, p| {
        assert_eq!(p.verdict(), Status::BadRequest, "cut {cut}")
    });
    // A form feed is not OWS: it stays in the value (and spoils it).
    let ff = CHROME.replace("Pragma: no-cache", "Sec-WebSocket-Protocol: \x0cchat");
    let (p, _) = parse(&ff, &cfg);
    assert_eq!(p.request().subprotocol, None);
    let ff = CHROME.replace("Key: dGhl", "Key: \x0cdGhl");
    assert_eq!(verdict(&ff, &cfg), Status::BadRequest);
}
