//! Copying bytes, and `memcpy` and `memset` for the MIPS firmware.
//!
//! Every copy goes through `memcpy`: [`copy`] (a frame's payload from the RX buffer it was
//! unmasked in into a TX buffer, a page body, bytes appended behind kept data, an ICMP
//! echo's data), `copy_from_slice` on header fields, and the moves the compiler makes of
//! structures (a connection set up, SHA-1's block). On the firmware, `memcpy` and
//! `memset` are the assembly below, in place of compiler-builtins' portable code: that
//! moves a word in 6 instructions when both sides are aligned alike, shifts and merges
//! two loads per word when they are not, and goes byte by byte below 16 bytes, so the
//! small copies and clears of a handshake cost 3 instructions a byte.
//!
//! MIPS32 reads a word at any address with `lwl`/`lwr`. So `memcpy` aligns the
//! destination, then stores aligned words read from wherever the source is: blocks of 8
//! words, 28 instructions a block (0.9 a byte), or 20 (0.6 a byte) when the source is
//! aligned too. That is always so for an echo: the frame header loses the 4-byte mask
//! key on the way back (6 or 8 bytes in, 2 or 4 out, RFC 6455 §5.2), so the payload
//! keeps its offset mod 4 (the TCP header is a multiple of 4 bytes either way). `memset`
//! stores blocks of 8 words (11 instructions a block).

/// Copies `src` into the start of `dst`; copies `dst.len().min(src.len())` bytes.
#[inline(always)]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if n == 0 {
        // Often: a frame's payload given as one part and an empty one. No call.
        return;
    }
    if let (Some(dst), Some(src)) = (dst.get_mut(..n), src.get(..n)) {
        dst.copy_from_slice(src);
    }
}

#[cfg(all(target_arch = "mips", target_endian = "little", target_os = "none"))]
mod mips {
    // `memcpy(dst = $a0, src = $a1, n = $a2) -> dst`. Under 4 bytes, byte by byte; else
    // the destination's head up to a word boundary, then blocks of 8 words (two loops: an
    // aligned source, or any), the words left (`lwl`/`lwr`, which read aligned words
    // too), then the bytes left. The head and the tail (1 to 3 bytes each, when there
    // are any) take one unaligned load and one partial store each, not a loop: on a
    // little-endian CPU `swr` at an address stores a register's low-order bytes from
    // there up to the word boundary, and `swl` its high-order bytes from the word
    // boundary up to the address (MIPS32 Vol. II, SWL and SWR). The head is the source's
    // first word stored by `swr` at the destination, the tail its last word stored by
    // `swl` at the destination's last byte; with `n` ≥ 4 both words lie inside the
    // source. The 16-byte payload of an echo at 2 mod 4 costs 47 instructions, not 63.
    mips_function!(
        "memcpy",
        r#"
    # `op reg, offset` for each of a block's eight words, in $t0, $t1, $t3..$t8.
    .macro mzw1_each_word op
    \op $t0, 0
    \op $t1, 4
    \op $t3, 8
    \op $t4, 12
    \op $t5, 16
    \op $t6, 20
    \op $t7, 24
    \op $t8, 28
    .endm
    .macro mzw1_load_aligned reg, off
    lw \reg, \off($a1)
    .endm
    .macro mzw1_load_any reg, off
    lwl \reg, \off+3($a1)
    lwr \reg, \off($a1)
    .endm
    .macro mzw1_store reg, off
    sw \reg, \off($a0)
    .endm
    # `count` bytes (at least one) one at a time, `count` down to 0.
    .macro mzw1_copy_bytes count
.Lmzw1_copy_bytes\@:
    lbu $t0, 0($a1)
    addiu \count, \count, -1
    addiu $a1, $a1, 1
    sb $t0, 0($a0)
    bnez \count, .Lmzw1_copy_bytes\@
    addiu $a0, $a0, 1
    .endm
    # A block loaded by `load`, stored, then on to the next, back to `loop` while $t2
    # counts blocks.
    .macro mzw1_copy_block load, loop
    mzw1_each_word \load
    mzw1_each_word mzw1_store
    addiu $t2, $t2, -1
    addiu $a1, $a1, 32
    bnez $t2, \loop
    addiu $a0, $a0, 32
    .endm
    move $v0, $a0
    sltiu $t0, $a2, 4
    bnez $t0, 8f
    negu $t1, $a0
    # Head: the source's first word, its low-order bytes up to the destination's word
    # boundary.
    andi $t1, $t1, 3
    beqz $t1, 2f
    subu $a2, $a2, $t1
    lwl $t0, 3($a1)
    lwr $t0, 0($a1)
    swr $t0, 0($a0)
    addu $a0, $a0, $t1
    addu $a1, $a1, $t1
2:  srl $t2, $a2, 5
    beqz $t2, 5f
    andi $t0, $a1, 3
    bnez $t0, 4f
    nop
3:  mzw1_copy_block mzw1_load_aligned, 3b
    b 5f
    nop
4:  mzw1_copy_block mzw1_load_any, 4b
5:  andi $a2, $a2, 31
    srl $t2, $a2, 2
    beqz $t2, 7f
    andi $a2, $a2, 3
6:  lwl $t0, 3($a1)
    lwr $t0, 0($a1)
    addiu $t2, $t2, -1
    addiu $a1, $a1, 4
    sw $t0, 0($a0)
    bnez $t2, 6b
    addiu $a0, $a0, 4
    # Tail: the source's last word, its high-order bytes from the destination's last
    # word boundary to its end.
7:  beqz $a2, 9f
    addu $t3, $a1, $a2
    lwl $t0, -1($t3)
    lwr $t0, -4($t3)
    addu $t4, $a0, $a2
    jr $ra
    swl $t0, -1($t4)
8:  beqz $a2, 9f
    nop
    mzw1_copy_bytes $a2
9:  jr $ra
    nop
    .purgem mzw1_each_word
    .purgem mzw1_load_aligned
    .purgem mzw1_load_any
    .purgem mzw1_store
    .purgem mzw1_copy_block
    .purgem mzw1_copy_bytes
"#
    );

    // `memset(dst = $a0, c = $a1, n = $a2) -> dst`: under 8 bytes, byte by byte; else the
    // head byte by byte, blocks of 8 words, the words left and the bytes left, with the
    // byte repeated in each of a word's four.
    mips_function!(
        "memset",
        r#"
    move $v0, $a0
    sltiu $t0, $a2, 8
    bnez $t0, 5f
    andi $a1, $a1, 0xff
    sll $t0, $a1, 8
    or $a1, $a1, $t0
    sll $t0, $a1, 16
    or $a1, $a1, $t0
    negu $t1, $a0
    andi $t1, $t1, 3
    beqz $t1, 2f
    subu $a2, $a2, $t1
1:  addiu $t1, $t1, -1
    sb $a1, 0($a0)
    bnez $t1, 1b
    addiu $a0, $a0, 1
2:  srl $t2, $a2, 5
    beqz $t2, 4f
    andi $a2, $a2, 31
3:  sw $a1, 0($a0)
    sw $a1, 4($a0)
    sw $a1, 8($a0)
    sw $a1, 12($a0)
    sw $a1, 16($a0)
    sw $a1, 20($a0)
    sw $a1, 24($a0)
    sw $a1, 28($a0)
    addiu $t2, $t2, -1
    bnez $t2, 3b
    addiu $a0, $a0, 32
4:  srl $t2, $a2, 2
    beqz $t2, 5f
    andi $a2, $a2, 3
41: addiu $t2, $t2, -1
    sw $a1, 0($a0)
    bnez $t2, 41b
    addiu $a0, $a0, 4
5:  beqz $a2, 7f
    nop
6:  addiu $a2, $a2, -1
    sb $a1, 0($a0)
    bnez $a2, 6b
    addiu $a0, $a0, 1
7:  jr $ra
    nop
"#
    );
}

#[cfg(test)]
mod tests {
    use super::copy;

    #[test]
    fn every_alignment_and_length() {
        let src: [u8; 80] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(1));
        for so in 0..4 {
            for d_off in 0..4 {
                for len in 0..70 {
                    let mut dst = [0u8; 80];
                    copy(&mut dst[d_off..d_off + len], &src[so..so + len]);
                    assert_eq!(&dst[d_off..d_off + len], &src[so..so + len]);
                    assert!(dst[..d_off].iter().all(|&b| b == 0));
                    assert!(dst[d_off + len..].iter().all(|&b| b == 0));
                }
            }
        }
    }

    #[test]
    fn copies_the_shorter_length() {
        let mut dst = [0u8; 8];
        copy(&mut dst, &[1, 2, 3]);
        assert_eq!(dst, [1, 2, 3, 0, 0, 0, 0, 0]);
        let mut dst = [0u8; 2];
        copy(&mut dst, &[1, 2, 3]);
        assert_eq!(dst, [1, 2]);
    }
}
