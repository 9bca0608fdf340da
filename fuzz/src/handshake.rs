//! The opening-handshake parser (`RequestParser::feed`, `verdict`) and the response
//! writer (`write_response`).
//!
//! Input: byte 0 picks the configuration and the response's content type and length,
//! byte 1 seeds the cut points, the rest is the request. The request is fed whole, byte
//! by byte, and in pieces; the three runs must end the same way (same progress, same
//! bytes seen, same parsed request, same verdict). A complete request is checked against
//! its bytes by independent means, and the response for its verdict is written into
//! every buffer size up to the one that fits.

use super::bytes::{Rng, cuts, pieces};
use mzw1_wss::ws::base64::decode_key;
use mzw1_wss::ws::handshake::{
    HandshakeConfig, MAX_PATH, Progress, Request, RequestParser, Status, accept_key, write_response,
};

/// The configurations the input chooses from.
pub const CONFIGS: [HandshakeConfig; 4] = [
    HandshakeConfig {
        max_request_bytes: 2048,
        allowed_origins: &[],
        subprotocols: &[],
    },
    HandshakeConfig {
        max_request_bytes: 2048,
        allowed_origins: &["http://example.com", "https://Board.local:8443"],
        subprotocols: &["chat", "superchat", "v2.json"],
    },
    HandshakeConfig {
        max_request_bytes: 160,
        allowed_origins: &["null"],
        subprotocols: &["chat"],
    },
    HandshakeConfig {
        max_request_bytes: u16::MAX,
        allowed_origins: &[],
        subprotocols: &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"],
    },
];

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("text/html; charset=utf-8"),
    Some("application/octet-stream"),
    Some(""),
];

const CONTENT_LENGTHS: [usize; 8] = [
    0,
    1,
    9,
    10,
    1234,
    u32::MAX as usize,
    usize::MAX - 1,
    usize::MAX,
];

/// A known difference, reported (`fuzz/artifacts-found/handshake/`): a request that
/// passes `max_request_bytes` inside a header name that turns out malformed is refused
/// with 400 when the name arrives in one piece (the name is scanned to its end before
/// the size is checked) and with 431 when it is cut (the size check comes first). Set to
/// false once the parser gives one answer, so that the fuzzer checks it again.
const KNOWN_400_OR_431: bool = false;

/// How a run of the parser ended.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    /// `Complete` carries the request's length in the whole input (not per piece).
    end: End,
    seen: usize,
    request: Request,
    is_get: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    NeedMore,
    Complete(usize),
    Refused(Status),
}

/// Feeds `input` in `parts` (which cover it in order).
fn parse(parts: &[&[u8]], config: &HandshakeConfig) -> Outcome {
    let mut p = RequestParser::new();
    let mut offset = 0;
    let mut end = End::NeedMore;
    for part in parts {
        match p.feed(part, config) {
            Progress::NeedMore => {
                offset += part.len();
                assert_eq!(p.bytes_seen(), offset.min(p.bytes_seen()));
            }
            Progress::Complete(n) => {
                assert!(
                    n >= 1 && n <= part.len(),
                    "Complete({n}) for a piece of {} bytes",
                    part.len()
                );
                end = End::Complete(offset + n);
                break;
            }
            Progress::Refused(s) => {
                end = End::Refused(s);
                break;
            }
        }
    }
    Outcome {
        end,
        seen: p.bytes_seen(),
        request: p.request().clone(),
        is_get: p.is_get(),
    }
}

/// The verdict of a parser that has been fed exactly the first `end` bytes (a fresh
/// parser fed them in one piece; its verdict is what the other runs would give).
fn verdict(input: &[u8], end: usize, config: &HandshakeConfig) -> Status {
    let mut p = RequestParser::new();
    assert_eq!(p.feed(&input[..end], config), Progress::Complete(end));
    // Nothing more is read once the request is complete.
    if end < input.len() {
        assert_eq!(p.feed(&input[end..], config), Progress::Complete(0));
    }
    p.verdict()
}

pub fn run(data: &[u8]) {
    let [sel, seed, input @ ..] = data else {
        return;
    };
    let (sel, seed) = (*sel, *seed);
    let config = &CONFIGS[(sel & 3) as usize];
    let mut rng = Rng::new(&[seed, input.len() as u8]);

    let whole = parse(&[input], config);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let by_byte = parse(&bytes, config);
    let cut = cuts(input.len(), &mut rng);
    let cut_parts = pieces(input, &cut);
    let in_pieces = parse(&cut_parts, config);
    if let End::Refused(_) = whole.end {
        // After a refusal only the status counts (how far the parser got, and what it
        // had noted, depend on where the input was cut).
        let same = |a: End, b: End| {
            a == b
                || (KNOWN_400_OR_431 && input.len() > config.max_request_bytes as usize && {
                    let both = [a, b];
                    both.contains(&End::Refused(Status::BadRequest))
                        && both.contains(&End::Refused(Status::HeadersTooLarge))
                })
        };
        assert!(
            same(whole.end, by_byte.end),
            "whole vs byte by byte: {:?} vs {:?}",
            whole.end,
            by_byte.end
        );
        assert!(
            same(whole.end, in_pieces.end),
            "whole vs pieces at {cut:?}: {:?} vs {:?}",
            whole.end,
            in_pieces.end
        );
    } else {
        assert_eq!(whole, by_byte, "whole vs byte by byte");
        assert_eq!(whole, in_pieces, "whole vs pieces at {cut:?}");
    }

    let max = config.max_request_bytes as usize;
    match whole.end {
        End::NeedMore => {
            assert_eq!(whole.seen, input.len().min(u16::MAX as usize));
            assert!(whole.seen <= max);
        }
        End::Refused(s) => {
            assert!(
                matches!(
                    s,
                    Status::BadRequest | Status::UriTooLong | Status::HeadersTooLarge
                ),
                "the parser refuses only for syntax and size: {s:?}"
            );
            // Bytes seen are those taken before the refusal.
            assert!(whole.seen <= input.len());
            // Only bytes within the limit are ever taken; 431 means more were offered.
            assert!(whole.seen <= max);
            if s == Status::HeadersTooLarge {
                assert!(input.len() > max);
            }
            if s == Status::UriTooLong {
                assert_eq!(whole.request.path.len(), MAX_PATH);
            }
            check_response(s, None, None, sel, input.len());
        }
        End::Complete(end) => {
            assert_eq!(whole.seen, end);
            assert!(end <= input.len() && end <= max);
            let v = verdict(input, end, config);
            check_complete(&input[..end], &whole.request, whole.is_get, v, config);
            let accept = whole.request.key.as_ref().map(accept_key);
            let proto = whole
                .request
                .subprotocol
                .map(|i| config.subprotocols[i as usize]);
            check_response(v, accept.as_ref(), proto, sel, input.len());
            // Statuses the service sends after the parser's verdict.
            let other =
                [Status::NotFound, Status::ServiceUnavailable, Status::Ok][seed as usize % 3];
            check_response(other, None, None, sel, input.len());
        }
    }
}

/// A complete request against its own bytes.
fn check_complete(req: &[u8], r: &Request, is_get: bool, v: Status, config: &HandshakeConfig) {
    // It ends with an empty line (CRLF or bare LF).
    assert!(
        req.ends_with(b"\n\n") || req.ends_with(b"\n\r\n"),
        "a complete request ends with an empty line"
    );
    // The request-target follows the method and one space, and is followed by a space.
    let sp = req.iter().position(|&b| b == b' ').expect("method ends");
    let path = &req[sp + 1..];
    assert!(!r.path.is_empty() && r.path.len() <= MAX_PATH);
    assert_eq!(&path[..r.path.len()], &r.path[..]);
    assert_eq!(path[r.path.len()], b' ');
    assert!(r.path.iter().all(|b| b.is_ascii_graphic()));
    assert_eq!(is_get, &req[..sp] == b"GET", "method");
    let lower = req.to_ascii_lowercase();
    let has = |s: &[u8]| lower.windows(s.len()).any(|w| w == s);
    let http = &path[r.path.len() + 1..];
    assert!(http.starts_with(b"HTTP/"));
    let (major, minor) = (http[5], http[7]);
    let old = major == b'0' || (major == b'1' && minor == b'0');
    match v {
        // HTTP/1.0 (or 0.x) is a 400 before anything else (RFC 6455 §4.2.1, §4.2.2).
        Status::BadRequest if old => {}
        Status::MethodNotAllowed => assert!(!old && !is_get),
        Status::Ok => assert!(!old && is_get && !r.upgrade_websocket),
        Status::BadRequest | Status::UpgradeRequired | Status::Forbidden => {
            assert!(!old && is_get && r.upgrade_websocket)
        }
        Status::SwitchingProtocols => {
            assert!(!old && is_get);
            assert!(r.upgrade_websocket && r.connection_upgrade && r.host);
            assert!(has(b"\nupgrade:") && has(b"websocket"));
            assert!(has(b"\nconnection:") && has(b"upgrade"));
            assert!(has(b"\nhost:"));
            assert!(has(b"\nsec-websocket-version:") && has(b"13"));
            let key = r.key.expect("101 needs a key");
            assert!(
                req.windows(24).any(|w| w == key),
                "the key is in the request"
            );
            assert!(decode_key(&key).is_some());
            assert_eq!(base64_len(&key), Some(16), "the key is 16 bytes in base64");
            assert_eq!(r.version, Some(true));
            assert_ne!(r.origin, Some(false));
        }
        other => panic!("unexpected verdict {other:?}"),
    }
    // Subprotocols: tokens of every Sec-WebSocket-Protocol line (a bare CR inside a
    // value is ignored, as the parser ignores it).
    let offered: Vec<Vec<u8>> = header_values(req, b"sec-websocket-protocol")
        .iter()
        .flat_map(|v| {
            v.split(|&b| b == b',' || b == b' ' || b == b'\t')
                .filter(|t| !t.is_empty())
                .map(|t| t.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    let first_offered = config
        .subprotocols
        .iter()
        .position(|p| offered.iter().any(|t| t == p.as_bytes()));
    assert_eq!(
        r.subprotocol.map(usize::from),
        first_offered,
        "the server's first choice among the tokens offered"
    );
    // Origin: one header whose value is short enough to be compared whole.
    let origins = header_values(req, b"origin");
    if let [o] = &origins[..] {
        if o.len() <= 64 {
            let value = without_ows(o, false);
            let allowed = config.allowed_origins.is_empty()
                || config
                    .allowed_origins
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(value));
            assert_eq!(
                r.origin,
                Some(allowed),
                "origin {:?}",
                String::from_utf8_lossy(o)
            );
        }
    } else if origins.is_empty() {
        assert_eq!(r.origin, None);
    }
}

/// The values of every header line named `name` (lowercase), bare CRs removed and
/// leading blanks trimmed: header lines are those after the request line, up to the
/// empty line.
fn header_values(req: &[u8], name: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for line in req.split(|&b| b == b'\n').skip(1) {
        let line: Vec<u8> = line.iter().copied().filter(|&b| b != b'\r').collect();
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].eq_ignore_ascii_case(name)
        {
            out.push(without_ows(&line[colon + 1..], true).to_vec());
        }
    }
    out
}

/// `v` without its leading (`start`) or trailing OWS: spaces and tabs only (RFC 9110
/// §5.6.3), not the other ASCII whitespace (a form feed is part of the value).
fn without_ows(v: &[u8], start: bool) -> &[u8] {
    let ows = |b: &&u8| **b == b' ' || **b == b'\t';
    if start {
        &v[v.iter().take_while(ows).count()..]
    } else {
        &v[..v.len() - v.iter().rev().take_while(ows).count()]
    }
}

/// Decoded length of padded base64 (RFC 4648 §4), by the definition.
fn base64_len(s: &[u8]) -> Option<usize> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 || !s[..s.len() - pad].iter().all(|c| A.contains(c)) {
        return None;
    }
    Some(s.len() / 4 * 3 - pad)
}

fn code(s: Status) -> &'static str {
    match s {
        Status::SwitchingProtocols => "101",
        Status::Ok => "200",
        Status::BadRequest => "400",
        Status::Forbidden => "403",
        Status::NotFound => "404",
        Status::MethodNotAllowed => "405",
        Status::UriTooLong => "414",
        Status::UpgradeRequired => "426",
        Status::HeadersTooLarge => "431",
        Status::ServiceUnavailable => "503",
        Status::VersionNotSupported => "505",
    }
}

/// Writes the response for `status` into a large buffer and into every smaller one:
/// too small gives `None` (never a partial head), exactly the size gives the same bytes.
/// The head is parsed back here.
fn check_response(
    status: Status,
    accept: Option<&[u8; 28]>,
    proto: Option<&str>,
    sel: u8,
    salt: usize,
) {
    let content_type = CONTENT_TYPES[(sel >> 2 & 3) as usize];
    let content_length = CONTENT_LENGTHS[((sel >> 4) as usize ^ salt) & 7];
    let mut big = [0u8; 1024];
    let got = write_response(
        &mut big,
        status,
        accept,
        proto,
        content_type,
        content_length,
    );
    if status == Status::SwitchingProtocols && accept.is_none() {
        assert_eq!(got, Err(usize::MAX), "101 without an accept key");
        return;
    }
    let n = got.expect("a response head fits in 1 KiB");
    let head = &big[..n];
    for size in 0..n {
        let mut small = vec![0u8; size];
        assert_eq!(
            write_response(
                &mut small,
                status,
                accept,
                proto,
                content_type,
                content_length
            ),
            Err(n),
            "{size} bytes cannot hold {n}, and say so"
        );
    }
    let mut exact = vec![0u8; n];
    assert_eq!(
        write_response(
            &mut exact,
            status,
            accept,
            proto,
            content_type,
            content_length
        ),
        Ok(n)
    );
    assert_eq!(&exact[..], head);

    // Parse it back.
    let text = std::str::from_utf8(head).expect("ASCII head");
    let body = text
        .strip_suffix("\r\n\r\n")
        .expect("ends with an empty line");
    let mut lines = body.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "));
    assert_eq!(&status_line[9..12], code(status));
    assert_eq!(status_line.as_bytes()[12], b' ');
    let headers: Vec<(&str, &str)> = lines
        .map(|l| l.split_once(": ").expect("name: value"))
        .collect();
    let get = |n: &str| {
        let v: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| *v)
            .collect();
        assert!(v.len() <= 1, "{n} repeated");
        v.first().copied()
    };
    for (k, _) in &headers {
        assert!(!k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
    if status == Status::SwitchingProtocols {
        assert_eq!(get("Upgrade"), Some("websocket"));
        assert_eq!(get("Connection"), Some("Upgrade"));
        let a = get("Sec-WebSocket-Accept").expect("accept");
        assert_eq!(a.as_bytes(), &accept.unwrap()[..]);
        assert_eq!(base64_len(a.as_bytes()), Some(20), "SHA-1 in base64");
        assert_eq!(get("Sec-WebSocket-Protocol"), proto);
        assert_eq!(get("Content-Length"), None);
    } else {
        assert_eq!(get("Connection"), Some("close"));
        assert_eq!(
            get("Content-Length"),
            Some(content_length.to_string().as_str())
        );
        assert_eq!(get("Content-Type"), content_type);
        assert_eq!(
            get("Sec-WebSocket-Version"),
            (status == Status::UpgradeRequired).then_some("13")
        );
        assert_eq!(
            get("Allow"),
            (status == Status::MethodNotAllowed).then_some("GET")
        );
        assert_eq!(get("Sec-WebSocket-Accept"), None);
    }
}
