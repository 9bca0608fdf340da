//! The inputs of the kernel micro-benchmarks, one copy for the target's
//! (`mzw1-bench-firmware`, under QEMU) and the host's (`cargo bench --bench host`, under
//! callgrind), so that both count the same work.

/// Bytes of each kernel input: 4 KiB.
pub const KERNEL_BYTES: usize = 4096;

/// A word-aligned buffer of [`KERNEL_BYTES`], as payloads are in the DMA buffers (the
/// kernels take a faster path on aligned words).
#[repr(C, align(4))]
pub struct Aligned(pub [u8; KERNEL_BYTES]);

impl Aligned {
    /// All zeros.
    pub const fn new() -> Aligned {
        Aligned([0; KERNEL_BYTES])
    }
}

impl Default for Aligned {
    fn default() -> Self {
        Aligned::new()
    }
}

/// The masking key of `unmask4k`.
pub const MASK_KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// What `unmask4k` unmasks: a byte pattern that repeats only every 256 bytes.
pub fn unmask_input(out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(13).wrapping_add(7);
    }
}

/// What `utf8_ascii4k` validates: English text, all ASCII.
pub fn ascii_text(out: &mut [u8]) {
    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog. ";
    for (i, b) in out.iter_mut().enumerate() {
        *b = TEXT.get(i % TEXT.len()).copied().unwrap_or(b' ');
    }
}

/// What `utf8_mixed4k` validates, and the first 1460 bytes of which `checksum1460`
/// sums: two-, three- and four-byte sequences only, whole characters, ASCII padding at
/// the very end (at most 3 bytes).
pub fn mixed_text(out: &mut [u8]) {
    repeat_text(out, "é€😀ü中𝄞ß語🎉");
}

/// Fills `out` with `text` over and over, whole characters only, padded with `.` at the
/// very end (at most 3 bytes).
pub fn repeat_text(out: &mut [u8], text: &str) {
    let mut at = 0;
    'fill: loop {
        for ch in text.chars() {
            let n = ch.len_utf8();
            let Some(dst) = out.get_mut(at..at + n) else {
                break 'fill;
            };
            ch.encode_utf8(dst);
            at += n;
        }
    }
    if let Some(rest) = out.get_mut(at..) {
        rest.fill(b'.');
    }
}

/// Bytes `checksum1460` sums: a full TCP segment.
pub const SEGMENT_BYTES: usize = 1460;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_what_they_say() {
        let mut buf = Aligned::new();
        ascii_text(&mut buf.0);
        assert!(buf.0.is_ascii());
        mixed_text(&mut buf.0);
        let s = core::str::from_utf8(&buf.0).unwrap();
        assert!(s.trim_end_matches('.').chars().all(|c| c.len_utf8() > 1));
        assert!(s.len() - s.trim_end_matches('.').len() <= 3);
    }
}
