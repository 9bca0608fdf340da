//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): `a < b` means `b` lies less
//! than 2^31 ahead of `a`.

/// Whether `a` precedes `b`.
#[inline(always)]
pub const fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Whether `a` precedes or equals `b`.
#[inline(always)]
pub const fn le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// Whether `x` lies in `[start, start + len)`.
#[inline(always)]
pub const fn in_window(x: u32, start: u32, len: u32) -> bool {
    x.wrapping_sub(start) < len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(lt(0xFFFF_FFF0, 0x10));
        assert!(!lt(0x10, 0xFFFF_FFF0));
        assert!(le(5, 5) && !lt(5, 5));
        assert!(lt(0x7FFF_FFFF, 0x8000_0000));
        assert!(in_window(2, 0xFFFF_FFFF, 4));
        assert!(!in_window(3, 0xFFFF_FFFF, 4));
        assert!(!in_window(5, 5, 0));
    }
}
