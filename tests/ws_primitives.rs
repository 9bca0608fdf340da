//! Property tests of the RFC 6455 primitives against straightforward references:
//! streaming UTF-8 validation against `core::str::from_utf8`, unmasking against the
//! byte-by-byte definition, the key decoder against a plain encoder. Inputs are cut into
//! pieces at random points, as TCP segments and WebSocket fragments cut them.

use mzw1_wss::ws::base64::{decode_key, encode_20};
use mzw1_wss::ws::mask::{Unmasker, apply_mask};
use mzw1_wss::ws::utf8::{Utf8Validator, validate};
use proptest::prelude::*;

/// Cuts `0..len` at the given points (taken modulo `len + 1`, sorted): 1 to
/// `cuts.len() + 1` pieces, some possibly empty.
fn pieces(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in at {
        out.push((start, c));
        start = c;
    }
    out.push((start, len));
    out
}

/// Mostly-valid UTF-8: a random string (ASCII-heavy or anything), a few bytes
/// overwritten, perhaps truncated.
fn text() -> impl Strategy<Value = Vec<u8>> {
    let string = prop_oneof![
        "[ -~]{0,300}",
        "[ -~äöüß€κόσμε日本語😀]{0,120}",
        any::<String>(),
    ];
    (
        string,
        prop::collection::vec((any::<prop::sample::Index>(), byte()), 0..3),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(s, flips, cut)| {
            let mut b = s.into_bytes();
            if !b.is_empty() {
                for (i, v) in flips {
                    let i = i.index(b.len());
                    b[i] = v;
                }
            }
            if let Some(c) = cut {
                let c = c.index(b.len() + 1);
                b.truncate(c);
            }
            b
        })
}

/// Any byte, or often one at an edge of the RFC 3629 §4 table: the leads whose second
/// byte is restricted, the ends of the continuation ranges, impossible bytes.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![
            0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF,
            0xF0, 0xF4, 0xF5, 0xFF,
        ]),
    ]
}

/// A byte that can start a multi-byte sequence (RFC 3629 §4).
fn is_lead(b: u8) -> bool {
    (0xC2..=0xF4).contains(&b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn utf8_streaming_agrees_with_core(
        bytes in text(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let want = core::str::from_utf8(&bytes);
        let mut v = Utf8Validator::new();
        let mut failed = None;
        for (start, end) in pieces(bytes.len(), &cuts) {
            if let Err(e) = v.feed(&bytes[start..end]) {
                failed = Some((start, end, e));
                break;
            }
        }
        match (want, failed) {
            (Ok(_), None) => {
                prop_assert_eq!(v.finish(), Ok(()));
                prop_assert!(v.is_boundary());
            }
            (Ok(_), Some((s, _, e))) => {
                prop_assert!(false, "valid input rejected at {} + {:?}", s, e);
            }
            (Err(c), None) => {
                // Only a message that ends inside a character gets through every piece.
                prop_assert_eq!(c.error_len(), None, "invalid byte not reported: {:?}", c);
                let e = v.finish().unwrap_err();
                prop_assert_eq!(e.error_len(), None);
                prop_assert_eq!(bytes.len() - e.prefix_len(), c.valid_up_to());
            }
            (Err(c), Some((start, end, e))) => {
                let len = c.error_len();
                prop_assert!(len.is_some(), "truncation reported before the end: {:?}", e);
                prop_assert_eq!(e.error_len(), len);
                prop_assert_eq!(start + e.offset() - e.prefix_len(), c.valid_up_to());
                // Fail fast: in the piece holding the offending byte, at that byte.
                let up_to = c.valid_up_to();
                let offending = if is_lead(bytes[up_to]) {
                    up_to + len.unwrap_or(0)
                } else {
                    up_to
                };
                prop_assert!(start <= offending && offending < end);
                prop_assert_eq!(start + e.offset(), offending);
                // One piece agrees.
                prop_assert_eq!(validate(&bytes).map_err(|e| e.error_len()), Err(len));
            }
        }
    }

    #[test]
    fn unmask_in_pieces_agrees_with_definition(
        data in prop::collection::vec(any::<u8>(), 0..700),
        key in any::<[u8; 4]>(),
        offset in 0usize..8,
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // RFC 6455 §5.3, byte by byte.
        let want: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        // Place the payload `offset` bytes into the buffer to vary its alignment.
        let mut buf = vec![0u8; offset + data.len()];
        buf[offset..].copy_from_slice(&data);
        let payload = &mut buf[offset..];
        let mut u = Unmasker::new(key);
        for (start, end) in pieces(payload.len(), &cuts) {
            prop_assert_eq!(u.phase(), start % 4);
            u.apply(&mut payload[start..end]);
        }
        prop_assert_eq!(u.phase(), data.len() % 4);
        prop_assert_eq!(&buf[offset..], &want[..]);
        prop_assert!(buf[..offset].iter().all(|&b| b == 0));
        // And back: XOR is its own inverse.
        apply_mask(key, 0, &mut buf[offset..]);
        prop_assert_eq!(&buf[offset..], &data[..]);
    }

    #[test]
    fn key_decoder_round_trips(nonce in any::<[u8; 16]>()) {
        let enc = encode(&nonce);
        prop_assert_eq!(enc.len(), 24);
        prop_assert_eq!(decode_key(enc.as_bytes()), Some(nonce));
    }

    #[test]
    fn key_decoder_accepts_only_canonical(key in prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(ALPHABET.to_vec()),
            1 => Just(b'='),
            1 => any::<u8>(),
        ],
        20..28,
    )) {
        match decode_key(&key) {
            // What it accepts is exactly the encoding of what it returns.
            Some(k) => prop_assert_eq!(encode(&k), String::from_utf8_lossy(&key)),
            None => {
                // Whatever the encoding of 16 bytes would be, `key` is not it.
                let canonical = key.len() == 24
                    && key[22..] == *b"=="
                    && key[..22].iter().all(|c| ALPHABET.contains(c))
                    && ALPHABET.iter().position(|&a| a == key[21]).unwrap() & 0x0F == 0;
                prop_assert!(!canonical, "canonical key rejected: {:?}", String::from_utf8_lossy(&key));
            }
        }
    }

    #[test]
    fn accept_value_is_base64(digest in any::<[u8; 20]>()) {
        let want = encode(&digest);
        prop_assert_eq!(&encode_20(&digest)[..], want.as_bytes());
    }
}

#[test]
fn reference_encoder_matches_rfc4648_vectors() {
    // RFC 4648 §10: what the properties above trust.
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(encode(plain.as_bytes()), enc);
    }
}

#[test]
fn key_and_accept_value_extremes() {
    for d in [[0u8; 20], [0xFF; 20], [0x80; 20]] {
        assert_eq!(&encode_20(&d)[..], encode(&d).as_bytes());
    }
    assert_eq!(decode_key(b"AAAAAAAAAAAAAAAAAAAAAA=="), Some([0; 16]));
    assert_eq!(decode_key(b"/////////////////////w=="), Some([0xFF; 16]));
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 4648 §4 base64 with padding, a bit at a time.
fn encode(data: &[u8]) -> String {
    let bits: Vec<bool> = data
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .collect();
    let mut s: String = bits
        .chunks(6)
        .map(|c| {
            let v = (0..6).fold(0, |v, i| v << 1 | *c.get(i).unwrap_or(&false) as usize);
            ALPHABET[v] as char
        })
        .collect();
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}
