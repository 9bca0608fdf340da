//! Base64 (RFC 4648 §4, standard alphabet, with padding) for the two values of the
//! opening handshake, both of fixed size, so neither needs a buffer or a length.
//!
//! - `Sec-WebSocket-Key` (RFC 6455 §4.1 item 7, §4.2.1 item 5): a nonce of 16 random
//!   bytes, base64-encoded: always 24 characters, the last two `==`. [`decode_key`]
//!   checks it.
//! - `Sec-WebSocket-Accept` (RFC 6455 §4.2.2 item 5.4): the base64 of the 20-byte SHA-1
//!   of the key as received and the GUID: always 28 characters, the last one `=`.
//!   [`encode_20`] writes it.
//!
//! The decoder is strict. RFC 6455 §4.2.1 asks only that the key decode to 16 bytes, but
//! a conforming client encodes 16 bytes with an RFC 4648 encoder, which can produce
//! exactly one string for them: 22 alphabet characters, `==`, and the 4 bits the 22nd
//! character carries beyond the 128 data bits set to zero (RFC 4648 §3.5: decoders MAY
//! reject an encoding whose pad bits are not zero). So anything else (other lengths,
//! missing or misplaced padding, characters outside the alphabet, including the URL-safe
//! `-` and `_` of §5 and whitespace, non-zero pad bits) is rejected and the handshake
//! answered with 400. Leniency would gain nothing: the accept value is computed over the
//! key's characters as received, not over the decoded bytes. Leading and trailing
//! whitespace around the header value (RFC 9110 §5.5 OWS) is the header parser's to
//! strip, not part of the key.

/// The RFC 4648 §4 alphabet: value → character.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The character for the low 6 bits of `v`.
#[inline(always)]
fn symbol(v: u32) -> u8 {
    // `& 63` keeps the index in the table: no bounds check, no panic path.
    ALPHABET[(v & 63) as usize]
}

/// The 6-bit value of an alphabet character; `None` for any other byte (`=` included).
#[inline(always)]
const fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The base64 of a 20-byte SHA-1 digest: the `Sec-WebSocket-Accept` value (RFC 6455
/// §4.2.2 item 5.4).
///
/// RFC 4648 §4: each 3 bytes become 4 characters; the last 2 bytes (20 = 6·3 + 2) become
/// 3 characters, the last carrying 2 zero bits, and one `=`.
pub fn encode_20(digest: &[u8; 20]) -> [u8; 28] {
    let mut out = [b'='; 28];
    let (groups, rest) = digest.as_chunks::<3>();
    let (quads, _) = out.as_chunks_mut::<4>();
    let mut quads = quads.iter_mut();
    for (&[a, b, c], q) in groups.iter().zip(&mut quads) {
        let n = u32::from_be_bytes([0, a, b, c]);
        *q = [symbol(n >> 18), symbol(n >> 12), symbol(n >> 6), symbol(n)];
    }
    if let (&[a, b], Some(q)) = (rest, quads.next()) {
        let n = u32::from_be_bytes([0, a, b, 0]);
        *q = [symbol(n >> 18), symbol(n >> 12), symbol(n >> 6), b'='];
    }
    out
}

/// Decodes a `Sec-WebSocket-Key` value (RFC 6455 §4.2.1 item 5): the 16 bytes it
/// encodes, or `None` unless `key` is exactly the canonical RFC 4648 §4 encoding of 16
/// bytes (24 characters: 22 from the alphabet, the last with its 4 low (pad) bits zero,
/// then `==`).
pub fn decode_key(key: &[u8]) -> Option<[u8; 16]> {
    let (chars, pad) = <&[u8; 24]>::try_from(key).ok()?.split_last_chunk::<2>()?;
    if pad != b"==" {
        return None;
    }
    // RFC 4648 §4: each 4 characters carry 3 bytes, 24 bits gathered in a `u32`; the 22
    // characters, 5 groups and 2 more, carry 15 bytes and 12 bits: the 16th byte and
    // the 4 pad bits.
    let mut out = [0u8; 16];
    let mut bits = 0u32;
    for (k, &c) in chars.iter().enumerate() {
        bits = bits << 6 | u32::from(value(c)?);
        if k % 4 == 3
            && let Some(triple) = out.get_mut(k / 4 * 3..k / 4 * 3 + 3)
        {
            triple.copy_from_slice(&bits.to_be_bytes()[1..]);
        }
    }
    if bits & 0x0F != 0 {
        return None; // pad bits set
    }
    if let Some(last) = out.last_mut() {
        *last = (bits >> 4) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    // The encoder and decoder against a reference encoder: `tests/ws_primitives.rs`.
    use super::*;

    #[test]
    fn rfc6455_handshake_example() {
        // RFC 6455 §1.3: the key "dGhlIHNhbXBsZSBub25jZQ==" is "the sample nonce";
        // SHA-1 of the key and the GUID, base64-encoded, is the accept value.
        let key = b"dGhlIHNhbXBsZSBub25jZQ==";
        assert_eq!(decode_key(key), Some(*b"the sample nonce"));
        let mut input = [0u8; 60];
        input[..24].copy_from_slice(key);
        input[24..].copy_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        let digest = sha1_smol::Sha1::from(input).digest().bytes();
        assert_eq!(&encode_20(&digest), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn decode_rejects() {
        let good = *b"dGhlIHNhbXBsZSBub25jZQ==";
        assert!(decode_key(&good).is_some());
        // Wrong lengths: empty, short, the 20-byte accept value, with OWS, unpadded.
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"dGhlIHNhbXBsZSBub25jZQ",
            b" dGhlIHNhbXBsZSBub25jZQ==",
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            b"dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
        ] {
            assert_eq!(decode_key(bad), None, "{bad:?}");
        }
        // Padding missing or misplaced at the right length: 24 characters that are 18
        // bytes, or 17 bytes.
        assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZQAA"), None);
        assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZQA="), None);
        assert_eq!(decode_key(b"dGhlIHNhbXBsZSBub25jZ=A="), None);
        // Non-zero pad bits: "Q" is 16 (0b010000), "R" 17 leaves a pad bit set.
        for c in 0..64u8 {
            let mut k = good;
            k[21] = ALPHABET[c as usize];
            assert_eq!(
                decode_key(&k).is_some(),
                c & 0x0F == 0,
                "last char {}",
                c as char
            );
        }
        // Every byte outside the alphabet, at every position of the 22.
        for pos in 0..22 {
            for b in 0..=255u8 {
                let mut k = good;
                k[pos] = b;
                let ok = value(b).is_some() && (pos != 21 || value(b).unwrap() & 0x0F == 0);
                assert_eq!(decode_key(&k).is_some(), ok, "byte {b:#04x} at {pos}");
            }
        }
    }

    #[test]
    fn value_inverts_alphabet() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(value(c), Some(i as u8));
        }
        assert_eq!((0..=255u8).filter(|&b| value(b).is_some()).count(), 64);
    }
}
