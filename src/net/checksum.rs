//! The internet checksum (RFC 1071), the one used by IPv4, ICMP and TCP (with its
//! pseudo-header), computed a 32-bit word at a time.
//!
//! RFC 1071 §2: the ones'-complement sum is independent of byte order and can be computed
//! on any word size, folding the carries at the end. So the aligned middle of a buffer is
//! summed as native 32-bit words with an end-around carry, folded to 16 bits, and swapped
//! into network order (on a little-endian CPU); the unaligned head and tail bytes are
//! added as big-endian pairs. Data may be added in pieces of any length: a piece that
//! starts at an odd byte position is summed as if even and then byte-swapped (RFC 1071
//! §2(B)), so splitting never changes the result.

/// A running ones'-complement sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Sum of 16-bit big-endian words, carries not yet folded.
    acc: u32,
    /// The bytes added so far have odd length.
    odd: bool,
}

/// Folds a 32-bit sum to 16 bits with end-around carry.
#[inline(always)]
const fn fold(mut s: u32) -> u16 {
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    s as u16
}

/// Sum of `data` as big-endian 16-bit words starting at an even position, folded.
#[inline]
fn sum_even(data: &[u8]) -> u16 {
    // SAFETY: every bit pattern is a valid u32; `align_to` only reinterprets the aligned
    // middle of the slice.
    let (head, words, tail) = unsafe { data.align_to::<u32>() };
    // Native-order words with end-around carry.
    let mut s: u32 = 0;
    let mut carry: u32 = 0;
    for &w in words {
        s = s.wrapping_add(w);
        carry += (s < w) as u32;
    }
    let mut mid = fold(s) as u32 + carry;
    mid = fold(mid) as u32;
    // On a little-endian CPU the native sum pairs bytes as (b1 b0): swap to network
    // order. The middle starts `head.len()` bytes in; an odd start flips the pairing.
    let mut mid = mid as u16;
    if cfg!(target_endian = "little") {
        mid = mid.swap_bytes();
    }
    if head.len() & 1 == 1 {
        mid = mid.swap_bytes();
    }
    let mut total = mid as u32 + sum_bytes(head, false) as u32;
    total += sum_bytes(tail, (head.len() + words.len() * 4) & 1 == 1) as u32;
    fold(total)
}

/// Sum of a few bytes as big-endian pairs; `odd` = the first byte is a low byte.
#[inline]
fn sum_bytes(bytes: &[u8], odd: bool) -> u16 {
    let mut s: u32 = 0;
    let mut low = odd;
    for &b in bytes {
        s += if low { b as u32 } else { (b as u32) << 8 };
        low = !low;
    }
    fold(s)
}

impl Checksum {
    /// An empty sum.
    #[inline(always)]
    pub const fn new() -> Checksum {
        Checksum { acc: 0, odd: false }
    }

    /// Adds bytes that follow everything added so far.
    #[inline]
    pub fn add(&mut self, data: &[u8]) {
        let mut s = sum_even(data);
        if self.odd {
            s = s.swap_bytes();
        }
        self.acc += s as u32;
        self.odd ^= data.len() & 1 == 1;
    }

    /// Adds a 16-bit big-endian word at an even position.
    #[inline(always)]
    pub fn add_u16(&mut self, v: u16) {
        self.acc += v as u32;
    }

    /// Adds a 32-bit big-endian value (two words) at an even position.
    #[inline(always)]
    pub fn add_u32(&mut self, v: u32) {
        self.acc += (v >> 16) + (v & 0xFFFF);
    }

    /// Adds another sum computed over bytes that follow (at an even position).
    #[inline(always)]
    pub fn combine(&mut self, other: Checksum) {
        self.acc += fold(other.acc) as u32;
    }

    /// The folded (not complemented) sum.
    #[inline(always)]
    pub const fn sum(self) -> u16 {
        fold(self.acc)
    }

    /// The checksum field value: the complement of the sum.
    #[inline(always)]
    pub const fn finish(self) -> u16 {
        !fold(self.acc)
    }
}

/// The checksum of `data` (the value to put in a checksum field, or 0 when verifying
/// data that includes its own correct checksum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add(data);
    c.finish()
}

/// The TCP/UDP pseudo-header sum (RFC 9293 §3.1): source, destination, zero + protocol,
/// and the TCP length.
#[inline]
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(u32::from_be_bytes(src));
    c.add_u32(u32::from_be_bytes(dst));
    c.add_u16(protocol as u16);
    c.add_u16(length);
    c
}

/// Updates a checksum field for a 16-bit field that changed from `old` to `new`
/// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
#[inline(always)]
pub const fn adjust(field: u16, old: u16, new: u16) -> u16 {
    let s = (!field) as u32 + (!old) as u32 + new as u32;
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward definition: big-endian pairs, odd byte padded with zero.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u64 = 0;
        for pair in data.chunks(2) {
            s += ((pair[0] as u64) << 8) | pair.get(1).copied().unwrap_or(0) as u64;
        }
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        !(s as u16)
    }

    fn bytes(n: usize, seed: u32) -> [u8; 300] {
        let mut b = [0u8; 300];
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        for v in b.iter_mut().take(n) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *v = x as u8;
        }
        b
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(!checksum(&d), 0xddf2);
    }

    #[test]
    fn any_alignment_any_length_any_split() {
        for seed in 0..8 {
            let buf = bytes(300, seed);
            for start in 0..4 {
                for len in [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 255, 291] {
                    let data = &buf[start..start + len];
                    assert_eq!(checksum(data), reference(data), "start {start} len {len}");
                    for split in [0, 1, 2, 3, 5, len / 2, len.saturating_sub(1), len] {
                        if split > len {
                            continue;
                        }
                        let mut c = Checksum::new();
                        c.add(&data[..split]);
                        c.add(&data[split..]);
                        assert_eq!(c.finish(), reference(data), "split {split}");
                    }
                }
            }
        }
    }

    #[test]
    fn all_ones_and_carries() {
        let d = [0xFFu8; 257];
        assert_eq!(checksum(&d), reference(&d));
        let d = [0x80u8; 64];
        assert_eq!(checksum(&d), reference(&d));
    }

    #[test]
    fn incremental_adjust_matches_recompute() {
        let mut d = bytes(40, 3);
        d[10] = 0;
        d[11] = 0;
        let c = checksum(&d[..40]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&d[..40]), 0);
        // Change a 16-bit field and adjust.
        let old = u16::from_be_bytes([d[4], d[5]]);
        d[4..6].copy_from_slice(&0xBEEFu16.to_be_bytes());
        let adjusted = adjust(c, old, 0xBEEF);
        d[10..12].copy_from_slice(&adjusted.to_be_bytes());
        assert_eq!(checksum(&d[..40]), 0);
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let mut c = pseudo_header([10, 0, 0, 1], [10, 0, 0, 2], 6, 20);
        c.add(&[0u8; 0]);
        let bytes = [10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20];
        assert_eq!(c.finish(), reference(&bytes));
    }
}
