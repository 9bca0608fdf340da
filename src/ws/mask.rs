//! Client-to-server masking (RFC 6455 §5.3), undone in place, a 32-bit word at a time.
//!
//! RFC 6455 §5.3: octet `i` of the payload is XORed with octet `i % 4` of the 4-byte
//! masking key, `i` counting from the first payload byte of the frame. A frame's payload
//! reaches the server in as many pieces as TCP cut it into, so [`Unmasker`] carries the
//! key's phase (`i % 4` of the next byte) from one piece to the next. XOR is its own
//! inverse: the same operation masks, should a client ever need it (§5.3 requires masking
//! only from client to server; a server MUST NOT mask, §5.1).
//!
//! The aligned middle of a piece is XORed as native 32-bit words with the key rotated to
//! the phase at that position: the byte at memory address `a` in the word must meet key
//! byte `(phase + a - start) % 4` whatever the CPU's byte order, so the rotated key is
//! kept as a little-endian word (its low byte masks the next byte) and turned into the
//! native word through its memory image (`to_le_bytes` → `from_ne_bytes`), which is the
//! identity on the little-endian PIC32 and a byte swap on a big-endian host. The head
//! before the first aligned word and the tail after the last one (at most 3 bytes each)
//! are XORed byte by byte. The middle runs 32 words (128 bytes) per loop iteration: three
//! instructions per word (load, XOR, store) and three per iteration for the loop itself
//! on MIPS32, 0.77 instructions per byte; the up to 31 words after the last whole block
//! go four, then one, at a time. A piece shorter than 32 bytes (a small message, or the
//! end of a frame cut by a segment) is not split: it goes 4 bytes at a time from where it
//! starts, as unaligned words (`lwl`/`lwr`, `swl`/`swr`: five instructions a word), then
//! its last 0 to 3 bytes one at a time.

use super::utf8::HIGH;

/// Unmasks (or masks) a payload that arrives in pieces: the phase carries over.
///
/// `apply` on pieces `p1, p2, …` gives the same bytes as one `apply` on `p1 ‖ p2 ‖ …`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmasker {
    /// The frame's masking key, in wire order (RFC 6455 §5.2, "Masking-key").
    key: [u8; 4],
    /// Index into `key` of the byte that masks the next payload byte (0..=3).
    phase: u8,
}

impl Unmasker {
    /// An unmasker for a frame whose masking key is `key` (the 4 bytes as they appear in
    /// the frame header), at the first payload byte.
    #[inline(always)]
    pub const fn new(key: [u8; 4]) -> Unmasker {
        Unmasker { key, phase: 0 }
    }

    /// The masking key.
    #[inline(always)]
    pub const fn key(&self) -> [u8; 4] {
        self.key
    }

    /// The index into the key (0..=3) that masks the next byte: the number of payload
    /// bytes unmasked so far, modulo 4.
    #[inline(always)]
    pub const fn phase(&self) -> usize {
        self.phase as usize
    }

    /// XORs `data`, the payload bytes that follow those already unmasked, with the key in
    /// place, and advances the phase by `data.len() % 4`. Returns what [`apply_mask`]
    /// returns: whether `data` is short and all ASCII once unmasked.
    #[inline]
    pub fn apply(&mut self, data: &mut [u8]) -> bool {
        let ascii = apply_mask(self.key, self.phase as usize, data);
        // Wrapping is harmless: 4 divides 2^n, so the low two bits stay right.
        self.phase = (self.phase as usize).wrapping_add(data.len()) as u8 & 3;
        ascii
    }
}

/// XORs `data[i]` with `key[(phase + i) % 4]` for every `i`, in place (RFC 6455 §5.3
/// with the payload starting `phase` bytes after a multiple of 4).
///
/// Returns `true` when `data` is shorter than [`SHORT`] and every byte of it is ASCII
/// once unmasked: the unmasking holds each word in a register anyway, so one OR a word
/// spares a text message's UTF-8 validator a second pass over a short piece. Longer
/// pieces are not checked (`false`); the validator's own word scan is as fast.
#[inline]
pub fn apply_mask(key: [u8; 4], phase: usize, data: &mut [u8]) -> bool {
    // The key as a little-endian word rotated so its low byte is `key[phase % 4]`; each
    // byte rotates it on by one.
    let mut k = u32::from_le_bytes(key).rotate_right(8 * (phase & 3) as u32);
    // Whole words leave the phase unchanged, so one mask word `m` serves every word. Its
    // memory image must be the key bytes from the phase of the word's first byte on,
    // which are the bytes of `k` in little-endian order.
    //
    // `seen`: the unmasked bytes ORed together (short pieces), or a top bit set (long
    // ones, not checked).
    let (tail, mut seen) = if data.len() < SHORT {
        // 4-byte groups from where the piece starts, at any alignment (`lwl`/`lwr` and
        // `swl`/`swr` on MIPS32).
        let m = u32::from_ne_bytes(k.to_le_bytes());
        let (groups, tail) = data.as_chunks_mut::<4>();
        let mut seen = 0;
        for g in groups {
            let w = u32::from_ne_bytes(*g) ^ m;
            seen |= w;
            *g = w.to_ne_bytes();
        }
        (tail, seen)
    } else {
        let (tail, rotated) = xor_aligned(k, data);
        k = rotated;
        (tail, HIGH)
    };
    for b in tail {
        *b ^= k as u8;
        seen |= u32::from(*b);
        k = k.rotate_right(8);
    }
    seen & HIGH == 0
}

/// XORs a piece of [`SHORT`] bytes or more but its last 0 to 3 bytes with `k` as in
/// [`apply_mask`]: its head a byte at a time, then its aligned middle a word at a time.
/// Returns those last bytes and the key rotated to them.
///
/// Out of line: its constants and loops stay out of the code that calls `apply_mask`
/// for a short piece (a small message's whole payload).
#[inline(never)]
fn xor_aligned(mut k: u32, data: &mut [u8]) -> (&mut [u8], u32) {
    // SAFETY: every bit pattern is a valid u32 and a valid u8; `align_to_mut` only
    // reinterprets the aligned middle of the slice, head and tail stay bytes.
    let (head, words, tail) = unsafe { data.align_to_mut::<u32>() };
    for b in head {
        *b ^= k as u8;
        k = k.rotate_right(8);
    }
    let m = u32::from_ne_bytes(k.to_le_bytes());
    let (blocks, words) = words.as_chunks_mut::<32>();
    for block in blocks {
        xor_block(block, m);
    }
    // Up to 31 words are left: four at a time, then one at a time.
    let (quads, words) = words.as_chunks_mut::<4>();
    for [a, b, c, d] in quads {
        *a ^= m;
        *b ^= m;
        *c ^= m;
        *d ^= m;
    }
    for w in words {
        *w ^= m;
    }
    (tail, k)
}

/// Below this many bytes a piece is XORed four bytes at a time from where it starts, at
/// any alignment: the split into an aligned middle and a head and tail done byte by byte
/// costs more than it saves. A 16-byte payload takes about 40 instructions that way
/// against 85.
const SHORT: usize = 32;

/// XORs 32 words with `m`, spelled out so that the loop around it (the only loop over
/// the bulk of a payload) carries its overhead once per 128 bytes even at `opt-level =
/// "s"`, which does not unroll loops.
#[inline(always)]
fn xor_block(block: &mut [u32; 32], m: u32) {
    /// Destructures the block into its words and XORs each: straight-line code.
    macro_rules! xor_words {
        ($($w:ident)*) => {
            let [$($w),*] = block;
            $(*$w ^= m;)*
        };
    }
    xor_words!(
        w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15
        w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in RFC 6455 §5.3, byte by byte.
    fn reference(key: [u8; 4], phase: usize, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(phase + i) % 4];
        }
    }

    /// A 4-aligned buffer, so that offsets 0..=3 into it are the four alignments.
    #[repr(C, align(4))]
    struct Buf([u8; 320]);

    fn fill(seed: u32) -> Buf {
        let mut b = Buf([0; 320]);
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        for v in b.0.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *v = x as u8;
        }
        b
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn rfc6455_example() {
        // RFC 6455 §5.7: a masked "Hello", key 37 fa 21 3d.
        let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        Unmasker::new(KEY).apply(&mut p);
        assert_eq!(&p, b"Hello");
    }

    #[test]
    fn every_length_alignment_phase() {
        let src = fill(7);
        for len in 0..=300 {
            for start in 0..4 {
                for phase in 0..4 {
                    let mut got = Buf(src.0);
                    let mut want = Buf(src.0);
                    apply_mask(KEY, phase, &mut got.0[start..start + len]);
                    reference(KEY, phase, &mut want.0[start..start + len]);
                    assert!(
                        got.0 == want.0,
                        "len {len} start {start} phase {phase}: bytes outside or inside differ"
                    );
                }
            }
        }
    }

    #[test]
    fn short_pieces_say_whether_they_are_ascii() {
        for len in 0..=SHORT + 4 {
            // Each position in turn holds the one byte that is not ASCII (`len`: none).
            for odd in 0..=len {
                for start in 0..4 {
                    for phase in 0..4 {
                        let mut b = Buf([0; 320]);
                        let piece = &mut b.0[start..start + len];
                        for (i, v) in piece.iter_mut().enumerate() {
                            *v = if i == odd {
                                0x80 | i as u8
                            } else {
                                b' ' + i as u8
                            };
                        }
                        let mut plain = [0u8; SHORT + 4];
                        plain[..len].copy_from_slice(piece);
                        reference(KEY, phase, piece);
                        let ascii = apply_mask(KEY, phase, piece);
                        assert_eq!(piece, &plain[..len]);
                        assert_eq!(
                            ascii,
                            len < SHORT && odd == len,
                            "len {len} odd {odd} start {start} phase {phase}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pieces_carry_the_phase() {
        let src = fill(11);
        let mut x: u32 = 0x1234_5678;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize % n
        };
        for round in 0..2000 {
            let start = round % 4;
            let len = next(301);
            let key = [next(256) as u8, next(256) as u8, next(256) as u8, 0xA5];
            let mut want = Buf(src.0);
            reference(key, 0, &mut want.0[start..start + len]);
            let mut got = Buf(src.0);
            let mut u = Unmasker::new(key);
            let mut at = start;
            let end = start + len;
            while at < end {
                let n = 1 + next(end - at);
                u.apply(&mut got.0[at..at + n]);
                at += n;
            }
            assert_eq!(u.phase(), len % 4);
            assert!(got.0 == want.0, "round {round} len {len}");
        }
    }

    #[test]
    fn empty_piece_keeps_phase() {
        let mut u = Unmasker::new(KEY);
        let mut one = [0u8; 3];
        u.apply(&mut one);
        u.apply(&mut []);
        assert_eq!(u.phase(), 3);
        assert_eq!(u.key(), KEY);
        let mut b = [0u8; 1];
        u.apply(&mut b);
        assert_eq!(b, [KEY[3]]);
        assert_eq!(u.phase(), 0);
    }

    #[test]
    fn twice_is_identity() {
        let src = fill(3);
        let mut b = Buf(src.0);
        apply_mask(KEY, 1, &mut b.0[1..299]);
        apply_mask(KEY, 1, &mut b.0[1..299]);
        assert!(b.0 == src.0);
    }
}
