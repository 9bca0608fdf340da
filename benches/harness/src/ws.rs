//! The WebSocket client side of the benchmarks: a browser's upgrade request, the check of
//! the 101 response, masked client frames, and the check of the server's echo.
//!
//! Like [`crate::client`], written independently of the servers under test: the expected
//! `Sec-WebSocket-Accept` values are constants computed outside this project (Python's
//! `hashlib.sha1` and `base64`, RFC 6455 §4.2.2 step 5.4), and a host test recomputes
//! them with `sha1_smol`.

/// A `Sec-WebSocket-Key` and the `Sec-WebSocket-Accept` the server must answer with.
#[derive(Clone, Copy, Debug)]
pub struct UpgradeKey {
    /// The key: 16 random bytes in base64.
    pub key: &'static str,
    /// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
    pub accept: &'static str,
}

/// Two keys (one per connection the benchmark opens), as a browser would make them:
/// 16 random bytes (9f3a51c8e20b7d4466a1f05b3c927e18, 04d2b6e17f9a38c5510e2cf4a96b8d73).
pub const KEYS: [UpgradeKey; 2] = [
    UpgradeKey {
        key: "nzpRyOILfURmofBbPJJ+GA==",
        accept: "kgkSmCcOO9MIMs3OelgUKDGYZOM=",
    },
    UpgradeKey {
        key: "BNK24X+aOMVRDiz0qWuNcw==",
        accept: "OrBeuAb8yaFd1mLgY0BtFt8buwE=",
    },
];

/// The request a Chromium browser sends for `new WebSocket("ws://192.168.7.2/echo")`
/// (its headers, in its order; without the `Pragma` and `Cache-Control` lines), with
/// `key`: 432 bytes.
const REQUEST: [&str; 3] = [
    "GET /echo HTTP/1.1\r\n\
     Host: 192.168.7.2\r\n\
     Connection: Upgrade\r\n\
     User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36\r\n\
     Upgrade: websocket\r\n\
     Origin: http://192.168.7.2\r\n\
     Sec-WebSocket-Version: 13\r\n\
     Accept-Encoding: gzip, deflate\r\n\
     Accept-Language: en-US,en;q=0.9\r\n\
     Sec-WebSocket-Key: ",
    // the key
    "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    "\r\n",
];

/// Writes the upgrade request with `key` into `out`; returns its length.
pub fn upgrade_request(key: &str, out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for part in [REQUEST[0], key, REQUEST[1], REQUEST[2]] {
        out.get_mut(n..n + part.len())?
            .copy_from_slice(part.as_bytes());
        n += part.len();
    }
    Some(n)
}

/// Whether `response` is a whole `101 Switching Protocols` response (the head ends with
/// an empty line and nothing follows it) with `Upgrade: websocket`, `Connection: Upgrade`
/// and `Sec-WebSocket-Accept: accept`.
pub fn upgrade_accepted(response: &[u8], accept: &str) -> bool {
    let Ok(text) = core::str::from_utf8(response) else {
        return false;
    };
    let Some(head) = text.strip_suffix("\r\n\r\n") else {
        return false;
    };
    let mut lines = head.split("\r\n");
    let status_ok = lines.next().is_some_and(|l| l.starts_with("HTTP/1.1 101 "));
    let (mut upgrade, mut connection, mut accepted) = (false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value.eq_ignore_ascii_case("upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepted = value == accept;
        }
    }
    status_ok && upgrade && connection && accepted
}

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;

/// Writes a client frame (FIN set, masked with `mask`) carrying `payload`; returns its
/// length.
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut [u8]) -> Option<usize> {
    let len = payload.len();
    let head = match len {
        0..=125 => {
            let h = out.get_mut(..2)?;
            h.copy_from_slice(&[0x80 | opcode, 0x80 | len as u8]);
            2
        }
        126..=0xFFFF => {
            let h = out.get_mut(..4)?;
            h[..2].copy_from_slice(&[0x80 | opcode, 0x80 | 126]);
            h[2..].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => return None,
    };
    out.get_mut(head..head + 4)?.copy_from_slice(&mask);
    let body = out.get_mut(head + 4..head + 4 + len)?;
    for (i, (d, s)) in body.iter_mut().zip(payload).enumerate() {
        *d = s ^ mask[i % 4];
    }
    Some(head + 4 + len)
}

/// Whether `reply` is exactly one unmasked server frame, FIN set, with `opcode` and
/// `payload`.
pub fn is_echo_frame(reply: &[u8], opcode: u8, payload: &[u8]) -> bool {
    let len = payload.len();
    let body = match (reply.first(), reply.get(1)) {
        (Some(&b0), Some(&b1)) if b0 == 0x80 | opcode => match b1 {
            0..=125 if b1 as usize == len => reply.get(2..),
            126 if len >= 126 && reply.get(2..4) == Some(&(len as u16).to_be_bytes()[..]) => {
                reply.get(4..)
            }
            _ => None,
        },
        _ => None,
    };
    body == Some(payload)
}

/// Fills `out` with UTF-8 text: ASCII words and two-, three- and four-byte characters
/// ("WebSocket echo: grüße, 世界, 🎉! " over and over), whole characters only, padded
/// with ASCII at the very end. 16 bytes are "WebSocket echo: " (all ASCII); 1400 bytes
/// are 900 ASCII bytes and 179 multibyte characters (500 bytes).
pub fn text(out: &mut [u8]) {
    crate::inputs::repeat_text(out, "WebSocket echo: grüße, 世界, 🎉! ");
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn accept_of(key: &str) -> std::string::String {
        let mut h = sha1_smol::Sha1::new();
        h.update(key.as_bytes());
        h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        let d = h.digest().bytes();
        // base64, standard alphabet, with padding.
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = std::string::String::new();
        for c in d.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn accept_constants_are_right() {
        // RFC 6455 §1.3's example first.
        assert_eq!(
            accept_of("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        for k in KEYS {
            assert_eq!(accept_of(k.key), k.accept);
        }
    }

    #[test]
    fn request_is_browser_sized_and_parses_back() {
        let mut buf = [0u8; 600];
        let n = upgrade_request(KEYS[0].key, &mut buf).unwrap();
        assert_eq!(n, 432);
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 192.168.7.2\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Key: nzpRyOILfURmofBbPJJ+GA==\r\n"));
        assert!(text.ends_with("client_max_window_bits\r\n\r\n"));
        assert_eq!(text.matches("\r\n").count(), 12);
    }

    #[test]
    fn response_check() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Accept: kgkSmCcOO9MIMs3OelgUKDGYZOM=\r\n\r\n";
        assert!(upgrade_accepted(ok.as_bytes(), KEYS[0].accept));
        assert!(!upgrade_accepted(ok.as_bytes(), KEYS[1].accept));
        assert!(!upgrade_accepted(
            &ok.as_bytes()[..ok.len() - 2],
            KEYS[0].accept
        ));
        let not101 = ok.replace("101 Switching Protocols", "400 Bad Request");
        assert!(!upgrade_accepted(not101.as_bytes(), KEYS[0].accept));
    }

    #[test]
    fn frames_round_trip() {
        let mut payload = [0u8; 1400];
        text(&mut payload);
        let s = core::str::from_utf8(&payload).unwrap();
        assert_eq!(s.chars().filter(|c| c.len_utf8() > 1).count(), 179);
        let mut small = [0u8; 16];
        text(&mut small);
        assert_eq!(&small, b"WebSocket echo: ");

        let mut buf = [0u8; 1500];
        let mask = [0x11, 0x22, 0x33, 0x44];
        let n = masked_frame(TEXT, &payload, mask, &mut buf).unwrap();
        assert_eq!(n, 4 + 4 + 1400);
        assert_eq!(&buf[..4], &[0x81, 0xFE, 0x05, 0x78]);
        // The server's unmasked echo of it.
        let mut reply = [0u8; 1404];
        reply[..4].copy_from_slice(&[0x81, 126, 0x05, 0x78]);
        for (i, b) in buf[8..n].iter().enumerate() {
            reply[4 + i] = b ^ mask[i % 4];
        }
        assert!(is_echo_frame(&reply, TEXT, &payload));
        assert!(!is_echo_frame(&reply[..1403], TEXT, &payload));

        let n = masked_frame(TEXT, &small, mask, &mut buf).unwrap();
        assert_eq!(n, 2 + 4 + 16);
        assert_eq!(&buf[..2], &[0x81, 0x90]);
        let mut reply = [0u8; 18];
        reply[..2].copy_from_slice(&[0x81, 16]);
        reply[2..].copy_from_slice(&small);
        assert!(is_echo_frame(&reply, TEXT, &small));
        reply[1] = 0x90; // masked: not a server frame
        assert!(!is_echo_frame(&reply, TEXT, &small));
    }
}
