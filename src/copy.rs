//! Copying payload between DMA buffers a word at a time, whatever the alignment of either.
//!
//! An echoed payload is copied from the RX buffer it was unmasked in into a TX buffer;
//! other payloads (a page body, bytes appended behind kept data) come from anywhere.
//! `core`'s `copy_from_slice` calls `memcpy`, whose portable code (compiler-builtins)
//! moves a word in 6 instructions on MIPS32 when both sides are aligned alike, and shifts
//! and merges two loads per word when they are not. MIPS32 reads a word at any address
//! with `lwl`/`lwr`, so [`copy`] aligns the destination, then stores aligned words read
//! from wherever the source is: 3 instructions a word in a loop of 8 words, 0.9 per byte.
//! When the source then turns out aligned too, a word is a plain load and a store, 0.6 per
//! byte. That is always so for an echo: the frame header loses the 4-byte mask key on the
//! way back (6 or 8 bytes in, 2 or 4 out, RFC 6455 §5.2), so the payload keeps its offset
//! mod 4 (the TCP header is a multiple of 4 bytes either way).
//!
//! Every copy of payload goes through it (a frame's payload, a page body, bytes appended
//! behind kept data, an ICMP echo's data); header fields use `copy_from_slice`.

/// Copies `src` into the start of `dst`; copies `dst.len().min(src.len())` bytes.
#[inline(never)] // One copy in flash; the call costs less than a third of a 32-byte block.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if n == 0 {
        // Often: a frame's payload given as one part and an empty one.
        return;
    }
    let (Some(dst), Some(src)) = (dst.get_mut(..n), src.get(..n)) else {
        return;
    };
    // SAFETY: every bit pattern is a valid u32; `align_to_mut` only reinterprets the
    // aligned middle of `dst`.
    let (head, words, tail) = unsafe { dst.align_to_mut::<u32>() };
    let (src_head, src) = src.split_at(head.len().min(src.len()));
    for (d, s) in head.iter_mut().zip(src_head) {
        *d = *s;
    }
    let (blocks, words) = words.as_chunks_mut::<8>();
    if blocks.is_empty() {
        // Under 32 bytes: the word loop below.
    }
    // SAFETY: as above; `align_to` only reinterprets the aligned middle of `src`.
    else if let ([], src_words, _) = unsafe { src.align_to::<u32>() }
        && let (src_blocks, _) = src_words.as_chunks::<8>()
        // `align_to` may leave more in its head and tail than it must; only a middle
        // that covers every block is taken (today's `core` always gives one).
        && src_blocks.len() >= blocks.len()
    {
        // The source is aligned as well (see the module docs): plain word loads, 2
        // instructions a word instead of 3.
        for (block, s) in blocks.iter_mut().zip(src_blocks) {
            let [w0, w1, w2, w3, w4, w5, w6, w7] = block;
            let [a, b, c, d, e, f, g, h] = *s;
            *w0 = a;
            *w1 = b;
            *w2 = c;
            *w3 = d;
            *w4 = e;
            *w5 = f;
            *w6 = g;
            *w7 = h;
        }
    } else {
        copy_blocks(blocks, src);
    }
    let src = src.get(blocks.len() * 32..).unwrap_or_default();
    let (src_words, src_tail) = src.as_chunks::<4>();
    for (d, s) in words.iter_mut().zip(src_words) {
        *d = u32::from_ne_bytes(*s);
    }
    for (d, s) in tail.iter_mut().zip(src_tail) {
        *d = *s;
    }
}

/// Blocks of 8 words from a source at any alignment (`lwl`/`lwr` on MIPS32).
#[inline(always)]
fn copy_blocks(blocks: &mut [[u32; 8]], src: &[u8]) {
    for (block, s) in blocks.iter_mut().zip(src.as_chunks::<32>().0) {
        // Eight words spelled out: a store each, so the loop is not turned back into a
        // call to `memcpy`.
        let [a, b, c, d, e, f, g, h] = s.as_chunks::<4>().0 else {
            return;
        };
        let [w0, w1, w2, w3, w4, w5, w6, w7] = block;
        *w0 = u32::from_ne_bytes(*a);
        *w1 = u32::from_ne_bytes(*b);
        *w2 = u32::from_ne_bytes(*c);
        *w3 = u32::from_ne_bytes(*d);
        *w4 = u32::from_ne_bytes(*e);
        *w5 = u32::from_ne_bytes(*f);
        *w6 = u32::from_ne_bytes(*g);
        *w7 = u32::from_ne_bytes(*h);
    }
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
