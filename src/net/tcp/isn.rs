//! Unpredictable initial sequence numbers (RFC 6528) and SYN cookies.
//!
//! ISN = M + F(local address, local port, remote address, remote port, secret), with M a
//! 4 µs clock (RFC 6528 §3) and F a keyed hash: the first 32 bits of SHA-1 over the secret
//! and the 4-tuple (RFC 6528 suggests MD5; SHA-1 is already in the firmware for the
//! WebSocket handshake).
//!
//! When the half-open table is full, a SYN is answered statelessly: the SYN-ACK's sequence
//! number is a cookie that encodes a 64-second time slot (5 bits), the peer's MSS (2 bits,
//! an index into [`COOKIE_MSS`]) and 25 bits of the keyed hash over both and the 4-tuple.
//! The handshake's final ACK (ack = cookie + 1) then proves the peer saw our SYN-ACK.

use sha1_smol::Sha1;

/// MSS values a cookie can carry (the largest one not above the peer's offer is used).
pub const COOKIE_MSS: [u16; 4] = [536, 1200, 1440, 1460];

/// The keyed hash F.
pub fn keyed_hash(secret: &[u8; 16], four_tuple: &[u8; 12], extra: u32) -> u32 {
    // One fixed-size message hashed in one call: the hasher's buffering then works on
    // constants, so no bounds check of it survives optimisation (`cargo xtask size`
    // checks that no panic path is linked).
    let mut msg = [0u8; 32];
    msg[..16].copy_from_slice(secret);
    msg[16..28].copy_from_slice(four_tuple);
    msg[28..].copy_from_slice(&extra.to_be_bytes());
    let d = Sha1::from(msg).digest().bytes();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The 4-tuple as hashed: local address and port, remote address and port.
pub fn four_tuple(local: [u8; 4], local_port: u16, remote: [u8; 4], remote_port: u16) -> [u8; 12] {
    let mut t = [0u8; 12];
    t[..4].copy_from_slice(&local);
    t[4..6].copy_from_slice(&local_port.to_be_bytes());
    t[6..10].copy_from_slice(&remote);
    t[10..12].copy_from_slice(&remote_port.to_be_bytes());
    t
}

/// RFC 6528 ISN at `now_ms` (M ticks every 4 µs: 250 per millisecond).
pub fn isn(secret: &[u8; 16], tuple: &[u8; 12], now_ms: u32) -> u32 {
    now_ms
        .wrapping_mul(250)
        .wrapping_add(keyed_hash(secret, tuple, 0))
}

fn slot(now_ms: u32) -> u32 {
    (now_ms >> 16) & 0x1F // 65.5 s slots
}

/// The cookie for a SYN at `now_ms` whose peer offered `mss`.
pub fn cookie(secret: &[u8; 16], tuple: &[u8; 12], now_ms: u32, mss: u16) -> u32 {
    let t = slot(now_ms);
    let m = COOKIE_MSS.iter().rposition(|&v| v <= mss).unwrap_or(0) as u32;
    let meta = (t << 2) | m;
    (meta << 25) | (keyed_hash(secret, tuple, meta | 0x8000_0000) & 0x01FF_FFFF)
}

/// If `cookie` is one we issued for this 4-tuple in the current or the previous time slot,
/// the MSS it carries.
pub fn check_cookie(secret: &[u8; 16], tuple: &[u8; 12], now_ms: u32, cookie: u32) -> Option<u16> {
    let meta = cookie >> 25;
    let t = meta >> 2;
    let age = slot(now_ms).wrapping_sub(t) & 0x1F;
    if age > 1 {
        return None;
    }
    if keyed_hash(secret, tuple, meta | 0x8000_0000) & 0x01FF_FFFF != cookie & 0x01FF_FFFF {
        return None;
    }
    COOKIE_MSS.get((meta & 3) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isn_depends_on_secret_tuple_and_time() {
        let s = [7u8; 16];
        let t = four_tuple([10, 0, 0, 2], 80, [10, 0, 0, 1], 40000);
        let t2 = four_tuple([10, 0, 0, 2], 80, [10, 0, 0, 1], 40001);
        assert_ne!(isn(&s, &t, 0), isn(&s, &t2, 0));
        assert_ne!(isn(&s, &t, 0), isn(&[8u8; 16], &t, 0));
        assert_eq!(isn(&s, &t, 4).wrapping_sub(isn(&s, &t, 0)), 1000);
    }

    #[test]
    fn cookies_validate_only_for_their_tuple_and_slot() {
        let s = [1u8; 16];
        let t = four_tuple([10, 0, 0, 2], 80, [10, 0, 0, 1], 40000);
        let other = four_tuple([10, 0, 0, 2], 80, [10, 0, 0, 1], 40002);
        let now = 1_000_000;
        let c = cookie(&s, &t, now, 1460);
        assert_eq!(check_cookie(&s, &t, now, c), Some(1460));
        assert_eq!(
            check_cookie(&s, &t, now + 65_536, c),
            Some(1460),
            "previous slot"
        );
        assert_eq!(check_cookie(&s, &t, now + 2 * 65_536, c), None, "expired");
        assert_eq!(check_cookie(&s, &other, now, c), None);
        assert_eq!(check_cookie(&s, &t, now, c ^ 1), None);
        let c = cookie(&s, &t, now, 1000);
        assert_eq!(check_cookie(&s, &t, now, c), Some(536));
    }
}
