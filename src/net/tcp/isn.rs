//! Unpredictable initial sequence numbers (RFC 6528) and SYN cookies.
//!
//! ISN = M + F(local address, local port, remote address, remote port, secret), with M a
//! 4 µs clock (RFC 6528 §3) and F a keyed pseudo-random function: SipHash-2-4 keyed with
//! the 128-bit secret over the 4-tuple, as Linux does (RFC 6528 suggests MD5; SipHash is
//! a PRF made for short inputs and costs a few hundred instructions where a SHA-1 block
//! costs thousands).
//!
//! When the half-open table is full, a SYN is answered statelessly: the SYN-ACK's sequence
//! number is a cookie that encodes a 64-second time slot (5 bits), the peer's MSS (2 bits,
//! an index into [`COOKIE_MSS`]) and 25 bits of the keyed hash over both and the 4-tuple.
//! The handshake's final ACK (ack = cookie + 1) then proves the peer saw our SYN-ACK.

/// MSS values a cookie can carry (the largest one not above the peer's offer is used).
pub const COOKIE_MSS: [u16; 4] = [536, 1200, 1440, 1460];

/// The keyed hash F: SipHash-2-4 of the 4-tuple and `extra`, folded to 32 bits.
pub fn keyed_hash(secret: &[u8; 16], four_tuple: &[u8; 12], extra: u32) -> u32 {
    let mut msg = [0u8; 16];
    msg[..12].copy_from_slice(four_tuple);
    msg[12..].copy_from_slice(&extra.to_be_bytes());
    let h = siphash24(secret, &msg);
    (h ^ (h >> 32)) as u32
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of a 16-byte message: two compression
/// rounds per 8-byte word, then the length block, then four finalization rounds.
pub fn siphash24(key: &[u8; 16], msg: &[u8; 16]) -> u64 {
    let le = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        if let Some(s) = b.get(at..at + 8) {
            w.copy_from_slice(s);
        }
        u64::from_le_bytes(w)
    };
    let (k0, k1) = (le(key, 0), le(key, 8));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = rotl::<13>(v[1]) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = rotl::<16>(v[3]) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = rotl::<21>(v[3]) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = rotl::<17>(v[1]) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    // The message's two words, then the final block (its length, 16, in the top byte),
    // then two empty passes: each word XORed into v3, two rounds, XORed into v0; v2 ^=
    // 0xFF before the 4th pass starts the four finalization rounds. A loop of passes, so
    // that the round (some 44 instructions of 64-bit arithmetic on MIPS32) is in flash
    // twice, not ten times; `inline(always)`, as called out of line it keeps `v` in memory,
    // and written out twice, as an inner loop of two cost 4 instructions a round.
    let words = [le(msg, 0), le(msg, 8), 16u64 << 56, 0, 0];
    for (pass, &word) in words.iter().enumerate() {
        if pass == 3 {
            v[2] ^= 0xFF;
        }
        v[3] ^= word;
        round(&mut v);
        round(&mut v);
        v[0] ^= word;
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// `x` rotated left by `N` bits, 0 < `N` < 32.
#[cfg(not(all(target_arch = "mips", target_endian = "little")))]
fn rotl<const N: u32>(x: u64) -> u64 {
    x.rotate_left(N)
}

/// `x` rotated left by `N` bits, 0 < `N` < 32, on MIPS32r2: each 32-bit half is the other
/// half's top `N` bits shifted down (`srl`) with its own low `32 - N` bits inserted above
/// them (`ins`), four instructions where LLVM's shift-shift-or makes six (it does not
/// form `ins` from an `or` of shifts); a SipRound has four such rotations.
#[cfg(all(target_arch = "mips", target_endian = "little"))]
#[inline(always)]
fn rotl<const N: u32>(x: u64) -> u64 {
    let (hi, lo) = ((x >> 32) as u32, x as u32);
    let (new_hi, new_lo): (u32, u32);
    // SAFETY: register arithmetic only; `out` registers are distinct from the inputs.
    unsafe {
        core::arch::asm!(
            "srl {h}, {lo}, {s}",
            "ins {h}, {hi}, {n}, {s}",
            "srl {l}, {hi}, {s}",
            "ins {l}, {lo}, {n}, {s}",
            h = out(reg) new_hi,
            l = out(reg) new_lo,
            hi = in(reg) hi,
            lo = in(reg) lo,
            n = const N,
            s = const 32 - N,
            options(pure, nomem, nostack),
        );
    }
    (u64::from(new_hi) << 32) | u64::from(new_lo)
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
    fn siphash_matches_the_reference_vector() {
        // The paper's test vector table (vectors.h): key 00..0f, message 00..0f (16
        // bytes) gives 0x3f2acc7f57c29bdb, little-endian bytes db 9b c2 57 7f cc 2a 3f.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(siphash24(&key, &msg), 0x3f2a_cc7f_57c2_9bdb);
        // Three more, from a plain SipHash-2-4 (the bench firmware checks the same four on
        // MIPS, where the rotations are assembly).
        let high: [u8; 16] = core::array::from_fn(|i| 0x80 + i as u8);
        assert_eq!(siphash24(&[0xFF; 16], &[0xFF; 16]), 0x1a27_dd85_9ed2_9a2e);
        assert_eq!(siphash24(&high, &[0xA5; 16]), 0x26de_2564_2ac8_f41e);
        assert_eq!(siphash24(&[0; 16], &[0; 16]), 0x32ca_ecc2_8017_2976);
    }

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
