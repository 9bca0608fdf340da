//! The internet checksum (RFC 1071), the one used by IPv4, ICMP and TCP (with its
//! pseudo-header), computed a 32-bit word at a time.
//!
//! RFC 1071 §2: the ones'-complement sum is independent of byte order and can be computed
//! on any word size, folding the carries at the end. Modulo 0xFFFF, 2^16 ≡ 1, so a byte
//! `b` at memory address `a` adds `b << 8` if `a` is odd and `b` if `a` is even (on a
//! little-endian CPU; the other way round on a big-endian one), wherever it sits in a
//! word: the aligned middle of a buffer is summed as native 32-bit words and the
//! unaligned head and tail bytes are added by address parity. That sum is in "address
//! order"; network order (big-endian pairs from the first byte) is the same sum
//! byte-swapped when the buffer starts at an even address (little-endian), and a piece
//! that starts at an odd position of the data summed so far is swapped once more (RFC 1071
//! §2(B)), so splitting never changes the result. A byte swap of a 16-bit ones'-complement
//! sum is a multiplication by 2^8 modulo 0xFFFF, which is a rotation by 8 of the 32-bit
//! sum before it is folded (2^32 - 1 is a multiple of 0xFFFF): one instruction on MIPS32r2.
//!
//! The word loop is the only hot part. The portable code (the host: simulator and tests)
//! adds each word and counts the carries (`addu`, `sltu`, `addu`, and the load: 4
//! instructions a word on MIPS). On little-endian MIPS32 before release 6 (the target)
//! the whole sum is hand-written (`mips::sum_address_order`): each word is accumulated into
//! the 64-bit HI:LO pair by `maddu word, one` (HI:LO += word × 1), which keeps every carry,
//! so a word costs its load and one `maddu`, 2 instructions (0.5 per byte), in a loop
//! unrolled 16 times (34 instructions per 64 bytes). The DSP ASE's
//! `addsc`/`addwc` cannot do as well: `addwc` adds the carry bit but does not set it, so a
//! carry chain needs `addsc` and `addwc` for every word, 3 instructions with the load; DSP
//! instructions also trap unless Status.MX is set, and DSPControl would have to be saved
//! by every interrupt handler.

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

/// The portable sum (every target but little-endian MIPS32 before release 6).
#[cfg(not(all(target_arch = "mips", target_endian = "little")))]
mod portable {
    /// `a + b` with end-around carry (ones'-complement addition of 32-bit words).
    #[inline(always)]
    const fn add_carry(a: u32, b: u32) -> u32 {
        let (s, c) = a.overflowing_add(b);
        s + c as u32
    }

    /// The shift of a byte at `addr` in a native word, modulo 16 (see the module docs).
    #[inline(always)]
    const fn shift(addr: usize) -> u32 {
        if cfg!(target_endian = "little") {
            8 * (addr & 1) as u32
        } else {
            8 * (!addr & 1) as u32
        }
    }

    /// A native halfword from two bytes, the first at an even address.
    #[inline(always)]
    fn pair(x: u8, y: u8) -> u32 {
        u16::from_ne_bytes([x, y]) as u32
    }

    /// At most 3 bytes from an even address, by address parity.
    #[inline(always)]
    fn even_bytes(bytes: &[u8]) -> u32 {
        let mut e = 0;
        if let [x, y, ..] = *bytes {
            e += pair(x, y);
        }
        if bytes.len() & 1 == 1
            && let Some(&z) = bytes.last()
        {
            e += (z as u32) << shift(0);
        }
        e
    }

    /// The sum of `data` in address order (see the module docs), unfolded: congruent to
    /// it modulo 0xFFFF, zero only if every byte is zero.
    #[inline(always)]
    pub(super) fn sum_address_order(data: &[u8]) -> u32 {
        // SAFETY: every bit pattern is a valid u32; `align_to` only reinterprets the
        // aligned middle of the slice.
        let (head, words, tail) = unsafe { data.align_to::<u32>() };
        // The head (at most 3 bytes; all of `data` if it holds no aligned word) and the
        // tail (at most 3, from an aligned address) by address parity: an odd first byte,
        // then bytes from even addresses. Below 2^18 in all, so no overflow.
        let (first, head) = match head.split_first() {
            Some((&b, rest)) if data.as_ptr() as usize & 1 == 1 => ((b as u32) << shift(1), rest),
            _ => (0, head),
        };
        let mut s = first + even_bytes(head) + even_bytes(tail);
        // Native-order words with end-around carry.
        let mut carry: u32 = 0;
        for &w in words {
            s = s.wrapping_add(w);
            carry += (s < w) as u32;
        }
        add_carry(s, carry)
    }
}

#[cfg(not(all(target_arch = "mips", target_endian = "little")))]
use portable::sum_address_order;

/// The hand-written sum for little-endian MIPS32 before release 6 (which dropped `maddu`).
#[cfg(all(target_arch = "mips", target_endian = "little"))]
mod mips {
    // `sum_address_order(data, len)`: the sum of `data` in address order (see the module
    // docs), unfolded: congruent to it modulo 0xFFFF, zero only if every byte is zero.
    //
    // HI:LO = 0, then HI:LO += x × 1 for each x: an odd first byte `b << 8` (the address
    // is odd) and, at an address 2 modulo 4, a halfword (its native value is in address
    // order); the aligned words, 16 a loop pass, two at a time (`mzw1_sum_pair`: each
    // load two instructions ahead of its `maddu`), then 8, 4, 2 and 1 for the rest; the
    // tail, a halfword and an even byte `b`. Every load is inside `data`. HI:LO ≡ HI + LO modulo 0xFFFF (2^32 ≡ 1), and HI
    // (a count of carries) is far below 2^32; the result is LO + HI with end-around carry.
    //
    // A function of its own, in assembly, with the o32 calling convention: HI and LO are
    // not preserved across a call in that convention, so no caller keeps a value in them
    // and the sum needs no save and restore of them (which inline asm would, since Rust
    // cannot name HI and LO as clobbers). It uses only $a0-$a1, $t0-$t6 and $v0-$v1, all
    // caller-saved, and no stack. One copy serves every caller: inlined at each of its 8
    // call sites it cost 3 KB of flash.
    mips_function!(
        "mzw1_sum_address_order",
        r#"
    # Two words at `off` from $a0: each load two instructions ahead of its `maddu`.
    .macro mzw1_sum_pair off
    lw $t5, \off($a0)
    lw $t6, \off+4($a0)
    maddu $t5, $t0
    maddu $t6, $t0
    .endm
    # The halfword at $a0, then past it (the head's at 2 mod 4, and the tail's).
    .macro mzw1_sum_half
    lhu $t5, 0($a0)
    addiu $a0, $a0, 2
    maddu $t5, $t0
    .endm
    # HI:LO = 0 × 0: one instruction for both halves.
    mult $zero, $zero
    addiu $t0, $zero, 1
    andi $t4, $a0, 3
    beqz $t4, 2f
    addu $t1, $a0, $a1
    # Head. An odd first byte: `b << 8`.
    andi $t4, $a0, 1
    beqz $t4, 1f
    nop
    beq $a0, $t1, 9f
    nop
    lbu $t5, 0($a0)
    addiu $a0, $a0, 1
    sll $t5, $t5, 8
    maddu $t5, $t0
    # Then, at an address 2 mod 4, a halfword if two bytes are left, else the tail.
1:
    andi $t4, $a0, 2
    beqz $t4, 2f
    subu $t4, $t1, $a0
    sltiu $t4, $t4, 2
    bnez $t4, 8f
    nop
    mzw1_sum_half
    # Aligned: the words, 16 a pass, the last `maddu` in the delay slot. The bytes left
    # ($a1, free since $t1 holds the end) also give the tail: their last two bits,
    # unchanged as whole words are taken.
2:
    subu $a1, $t1, $a0
    srl $t2, $a1, 2
    srl $t3, $t2, 4
    beqz $t3, 4f
    sll $t3, $t3, 6
    addu $t3, $t3, $a0
3:
    .irp off, 0, 8, 16, 24, 32, 40, 48
    mzw1_sum_pair \off
    .endr
    lw $t5, 56($a0)
    lw $t6, 60($a0)
    maddu $t5, $t0
    addiu $a0, $a0, 64
    bne $a0, $t3, 3b
    maddu $t6, $t0
    # The rest, 0 to 15 words: 8, 4, 2, 1, each test's `andi` in the delay slot of the
    # branch before it (the last, the tail's halfword test).
4:
    andi $t4, $t2, 8
    beqz $t4, 20f
    andi $t4, $t2, 4
    .irp off, 0, 8, 16, 24
    mzw1_sum_pair \off
    .endr
    addiu $a0, $a0, 32
20:
    beqz $t4, 21f
    andi $t4, $t2, 2
    mzw1_sum_pair 0
    mzw1_sum_pair 8
    addiu $a0, $a0, 16
21:
    beqz $t4, 22f
    andi $t4, $t2, 1
    mzw1_sum_pair 0
    addiu $a0, $a0, 8
22:
    beqz $t4, 23f
    andi $t4, $a1, 2
    lw $t5, 0($a0)
    addiu $a0, $a0, 4
    maddu $t5, $t0
23:
    # Tail, 0 to 3 bytes from an aligned address: a halfword, then an even byte `b`.
    beqz $t4, 8f
    nop
    mzw1_sum_half
8:
    beq $a0, $t1, 9f
    nop
    lbu $t5, 0($a0)
    maddu $t5, $t0
9:
    mfhi $v1
    mflo $v0
    addu $v0, $v0, $v1
    sltu $v1, $v0, $v1
    jr $ra
    addu $v0, $v0, $v1
    .purgem mzw1_sum_pair
    .purgem mzw1_sum_half
"#
    );

    unsafe extern "C" {
        /// Defined above, in assembly.
        fn mzw1_sum_address_order(data: *const u8, len: usize) -> u32;
    }

    /// The sum of `data` in address order (see the module docs), unfolded.
    #[inline(always)]
    pub(super) fn sum_address_order(data: &[u8]) -> u32 {
        // SAFETY: the function reads only bytes inside `data` (see above), follows the
        // o32 calling convention, and writes no memory.
        unsafe { mzw1_sum_address_order(data.as_ptr(), data.len()) }
    }
}

#[cfg(all(target_arch = "mips", target_endian = "little"))]
use mips::sum_address_order;

/// The sum of `data` in network order, unfolded, for data that starts at an odd (`odd`)
/// or even position of the bytes summed before it.
#[inline(always)]
fn network_order_sum(data: &[u8], odd: bool) -> u32 {
    let s = sum_address_order(data);
    // Swapped (rotated by 8 before folding) if the data starts at an even address
    // (little-endian), and once more if it starts at an odd position.
    let even = data.as_ptr() as usize & 1 == 0;
    let swap = (even == cfg!(target_endian = "little")) != odd;
    s.rotate_right(8 * swap as u32)
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
        let s = network_order_sum(data, self.odd);
        // One step of the fold is enough here: it leaves at most 0x1FFFE, so the pieces of
        // a packet cannot overflow `acc`, and `finish` folds the rest once for all.
        self.acc += (s & 0xFFFF) + (s >> 16);
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
    // Folded straight from the sum (as a `Checksum` of one piece would be, with a step
    // of the fold more).
    !fold(network_order_sum(data, false))
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
///
/// Eqn. 3 cannot tell a sum of +0 (every other word zero) from -0, and gives 0x0000
/// for both; only 0xFFFF is right for +0 (an all-zero echo request's reply, found by
/// the `net_stack` fuzz target), and 0xFFFF is equally right for -0, so 0x0000 is
/// never returned.
#[inline(always)]
pub const fn adjust(field: u16, old: u16, new: u16) -> u16 {
    adjust_all(field, [(old, new)])
}

/// [`adjust`] for several 16-bit fields that changed at once, `(old, new)` each, with one
/// fold for all: the same result as adjusting for them one by one (ones'-complement
/// addition is associative, and either way a sum of zero comes out as 0xFFFF).
#[inline(always)]
pub const fn adjust_all<const N: usize>(field: u16, changes: [(u16, u16); N]) -> u16 {
    let mut s = (!field) as u32;
    let mut i = 0;
    while i < N {
        let (old, new) = changes[i];
        // At most 0x1FFFE per change: no overflow below 32,000 changes.
        s += (!old) as u32 + new as u32;
        i += 1;
    }
    match !fold(s) {
        0 => 0xFFFF,
        c => c,
    }
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
    fn adjusting_fields_at_once_is_adjusting_them_one_by_one() {
        // Edge values (zero sums, all ones) and a spread of others.
        let values = [0x0000, 0x0001, 0x7FFF, 0x8000, 0xBEEF, 0xFFFE, 0xFFFF];
        for &field in &values {
            for &a in &values {
                for &b in &values {
                    for &c in &values {
                        let changes = [(a, b), (b, c), (c, a)];
                        let one_by_one = changes
                            .iter()
                            .fold(field, |f, &(old, new)| adjust(f, old, new));
                        assert_eq!(adjust_all(field, changes), one_by_one);
                    }
                }
            }
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let mut c = pseudo_header([10, 0, 0, 1], [10, 0, 0, 2], 6, 20);
        c.add(&[0u8; 0]);
        let bytes = [10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20];
        assert_eq!(c.finish(), reference(&bytes));
    }
}
