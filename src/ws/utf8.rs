//! Streaming UTF-8 validation of text messages (RFC 6455 §5.6, §8.1), ASCII a word at a
//! time.
//!
//! RFC 6455 §5.6: the payload of a text message is UTF-8; a message may be fragmented
//! (§5.4) and a character may be split between fragments, so only the whole message has
//! to be valid. §8.1: when an endpoint finds a text message that is not valid UTF-8 it
//! MUST _Fail the WebSocket Connection_ (close code 1007, §7.4.1). A server need not wait
//! for the end of the message for that: [`Utf8Validator`] is fed the payload in whatever
//! pieces it arrives (fragments, and TCP segments within them) and reports the error at
//! the first byte that no valid message could contain, which is what the Autobahn
//! testsuite's cases 6.4.x check ("fail fast").
//!
//! Validity is exactly that of `core::str::from_utf8`: the well-formed byte sequences of
//! RFC 3629 §4 (the Unicode Standard's table 3-7 "Well-Formed UTF-8 Byte Sequences"):
//!
//! | code points        | byte 1 | byte 2 | byte 3 | byte 4 |
//! |--------------------|--------|--------|--------|--------|
//! | U+0000..U+007F     | 00..7F |        |        |        |
//! | U+0080..U+07FF     | C2..DF | 80..BF |        |        |
//! | U+0800..U+0FFF     | E0     | A0..BF | 80..BF |        |
//! | U+1000..U+CFFF     | E1..EC | 80..BF | 80..BF |        |
//! | U+D000..U+D7FF     | ED     | 80..9F | 80..BF |        |
//! | U+E000..U+FFFF     | EE..EF | 80..BF | 80..BF |        |
//! | U+10000..U+3FFFF   | F0     | 90..BF | 80..BF | 80..BF |
//! | U+40000..U+FFFFF   | F1..F3 | 80..BF | 80..BF | 80..BF |
//! | U+100000..U+10FFFF | F4     | 80..8F | 80..BF | 80..BF |
//!
//! The restricted second-byte ranges are what exclude overlong forms (C0, C1, E0 80..9F,
//! F0 80..8F), the surrogates U+D800..U+DFFF (ED A0..BF) and code points above U+10FFFF
//! (F4 90..BF, F5..FF). So the state carried between pieces is the number of continuation
//! bytes still expected and the range the next one must fall in; every later one is
//! 80..BF. A sequence may be split at any byte.
//!
//! Between characters the validator reads 4 bytes at a time, at any alignment (`lwl`/`lwr`
//! on MIPS32). A lead byte at the front of the word starts a sequence of at most 4 bytes,
//! so it lies whole in the word: one table entry gives the top bits each of its bytes
//! must have, and its length, and the word is checked with an XOR and an AND. A word of
//! ASCII (no bit of `0x80808080` set) is skipped; eight in a row hand over to a scan of
//! aligned words, eight (32 bytes) per loop iteration. On little-endian MIPS32 that word
//! loop is written in assembly (10 instructions an ASCII word, 17 a sequence), the same
//! steps as the Rust loop the other targets use, its table at an address aligned to its
//! size. Only the last 3 bytes of a piece, a sequence cut by its end, an invalid one, or
//! one the table does not cover (F0 A0..BF) go through the byte-by-byte state machine,
//! which carries the sequence over or finds the offending byte.

/// Where a message stopped being valid UTF-8.
///
/// Mirrors `core::str::Utf8Error` for a message fed in pieces: the message's valid prefix
/// ends [`prefix_len`](Utf8Error::prefix_len) bytes before
/// [`offset`](Utf8Error::offset) in the piece that failed (those bytes, the start of the
/// rejected sequence, may lie in earlier pieces), so the `valid_up_to()` of the whole
/// message is `piece_start + offset - prefix_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error {
    /// Offset within the piece of the first byte no valid message could contain; 0 from
    /// `finish`.
    offset: usize,
    /// Bytes of the rejected sequence before `offset` (0..=3).
    prefix: u8,
    /// The message ended inside a sequence (reported by `finish`).
    truncated: bool,
}

impl Utf8Error {
    /// The error every call reports once the message has been found invalid.
    const AFTER_FAILURE: Utf8Error = Utf8Error {
        offset: 0,
        prefix: 0,
        truncated: false,
    };

    /// The offset, within the `data` of the [`feed`](Utf8Validator::feed) that failed,
    /// of the first byte that cannot occur at its place in valid UTF-8 (an impossible
    /// lead byte, or a byte outside the range its sequence allows next). 0 for an error
    /// from [`finish`](Utf8Validator::finish) or after an earlier error.
    #[inline(always)]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// How many bytes of the rejected sequence (its lead byte and the continuation bytes
    /// accepted so far) come before [`offset`](Utf8Error::offset): 0..=3. They may belong
    /// to earlier pieces.
    #[inline(always)]
    pub const fn prefix_len(&self) -> usize {
        self.prefix as usize
    }

    /// As `core::str::Utf8Error::error_len`: the length of the invalid sequence at the
    /// end of the valid prefix (1..=3), or `None` when the message ended inside a
    /// sequence that could still have been completed.
    #[inline(always)]
    pub const fn error_len(&self) -> Option<usize> {
        if self.truncated {
            None
        } else if self.prefix == 0 {
            Some(1)
        } else {
            Some(self.prefix as usize)
        }
    }
}

/// A UTF-8 validator for one message, fed in pieces.
///
/// Call [`feed`](Utf8Validator::feed) with each piece of the payload in order, then
/// [`finish`](Utf8Validator::finish) at the end of the message (the frame with FIN set),
/// then [`reset`](Utf8Validator::reset) for the next message. Once an error has been
/// reported, every later `feed` and `finish` reports one too (with offset 0) until
/// `reset`: a caller that carries on regardless cannot have a bad message accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Continuation bytes still expected (0 between characters).
    need: u8,
    /// Bytes of the current sequence seen so far (for the error's `prefix_len`).
    seen: u8,
    /// The range the next byte must fall in, when `need > 0`: from `lo`...
    lo: u8,
    /// ... to `lo + span`.
    span: u8,
    /// An error has been reported.
    failed: bool,
}

/// Top bit of every byte of a word: a byte is ASCII iff its top bit is clear.
pub(crate) const HIGH: u32 = 0x8080_8080;

/// For a lead byte (not ASCII): the number of continuation bytes and the range of the
/// first one (RFC 3629 §4); `None` for a byte that cannot start a sequence. The
/// definition; the validator uses it as the table [`SEQUENCES`].
const fn lead(b: u8) -> Option<(u8, u8, u8)> {
    match b {
        0xC2..=0xDF => Some((1, 0x80, 0xBF)),
        // Overlong below U+0800.
        0xE0 => Some((2, 0xA0, 0xBF)),
        0xE1..=0xEC | 0xEE..=0xEF => Some((2, 0x80, 0xBF)),
        // Surrogates U+D800..U+DFFF.
        0xED => Some((2, 0x80, 0x9F)),
        // Overlong below U+10000.
        0xF0 => Some((3, 0x90, 0xBF)),
        0xF1..=0xF3 => Some((3, 0x80, 0xBF)),
        // Above U+10FFFF.
        0xF4 => Some((3, 0x80, 0x8F)),
        // Continuation bytes 80..BF, overlong leads C0 C1, and F5..FF (RFC 3629 §1: these
        // never appear).
        _ => None,
    }
}

/// What the word loop checks for a sequence whose lead byte is the first byte of a word
/// `w` (read little-endian, the lead byte lowest): for the lead byte `b`, at index
/// `b & 0x3F`, a pair `[x, m]` such that the sequence is well formed when
/// `(w ^ x) & m == 0`, 512 bytes. Byte 0 of `m` is `0xFF` and byte 0 of `x` the lead byte
/// itself, so a byte that cannot start a sequence (80..BF, which share the index of
/// C0..FF, and C0, C1, F5..FF, whose `x` is 0) never passes. Bytes 1 to 3 of `m` and `x`
/// give the top bits each byte of the sequence must have, as [`lead`] allows it: 80..BF
/// is `10xxxxxx`; E0's A0..BF is `101xxxxx`, ED's 80..9F `100xxxxx`, F4's 80..8F
/// `1000xxxx`. F0's 90..BF is not one such pattern: the table takes its part 90..9F
/// (U+10000..U+1FFFF, where the emoji are), and the rest, F0 A0..BF, goes byte by byte.
/// The bits of `x` that `m` leaves out hold the sequence's length (bits 24..27), which
/// every valid `m` leaves free (at most `0xC0` in byte 3).
// Its own section: the PIC32 linker script places it where the alignment costs nothing
// (EBASE + 0x200, `linker/pic32mzw1.ld`).
#[unsafe(link_section = ".rodata.mzw1_utf8_sequences")]
static SEQUENCES: Sequences = Sequences({
    let mut t = [[0u32, 0xFF]; 64];
    let mut i = 0;
    while i < 64 {
        let b = 0xC0 | i as u8;
        if let Some((n, lo, hi)) = lead(b) {
            // The second byte: `lo..=hi` as top bits fixed, low bits free. F0's range
            // 90..BF is cut to 90..9F (see above).
            let hi = if b == 0xF0 { 0x9F } else { hi };
            // Checked when the table is built: the range is an aligned block whose size
            // is a power of two, so a mask of top bits says it.
            assert!(lo & (hi - lo) == 0 && (hi - lo) & (hi - lo).wrapping_add(1) == 0);
            let second = !(hi - lo);
            let mut m = 0xFF | (second as u32) << 8;
            let mut x = b as u32 | (lo as u32) << 8 | (n as u32 + 1) << 24;
            // The third and fourth bytes, when the sequence has them: 10xxxxxx.
            let mut k = 2;
            while k <= n as u32 {
                m |= 0xC0 << (8 * k);
                x |= 0x80 << (8 * k);
                k += 1;
            }
            t[i] = [x, m];
        }
        i += 1;
    }
    t
});

/// The table's storage: one copy (a `static`, which every reader shares), aligned to its
/// size so that the MIPS word scan forms an entry's address from the table's with one
/// `ins` of the lead byte's index.
#[repr(C, align(512))]
struct Sequences([[u32; 2]; 64]);

/// The [`SEQUENCES`] entry of a lead byte. `& 0x3F` keeps the index in the table: no
/// bounds check, no panic path.
#[inline(always)]
fn sequence(b: u8) -> [u32; 2] {
    SEQUENCES.0[(b & 0x3F) as usize]
}

/// For a byte that is not ASCII: the number of continuation bytes and the range of the
/// first one as (`lo`, `span`); `None` if it cannot start a sequence. What the
/// byte-by-byte path reads of [`SEQUENCES`], with F0's second byte given its whole range.
#[inline(always)]
fn classify(b: u8) -> Option<(u8, u8, u8)> {
    let [x, m] = sequence(b);
    // A continuation byte shares its entry with a lead (C0..FF): byte 0 of `x` tells.
    let len = (x >> 24) as u8 & 7;
    let span = if b == 0xF0 { 0x2F } else { !(m >> 8) as u8 };
    (x as u8 == b && len != 0).then(|| (len - 1, (x >> 8) as u8, span))
}

/// `b` is in `lo..=lo + span` (one compare: below `lo` wraps around to above `span`).
#[inline(always)]
const fn within(b: u8, lo: u8, span: u8) -> bool {
    (b as u32).wrapping_sub(lo as u32) <= span as u32
}

/// The position, in memory order, of the first non-ASCII byte of a word that has one.
#[inline(always)]
fn first_high(w: u32) -> usize {
    let h = w & HIGH;
    // The byte at the lowest address is the least significant on a little-endian CPU.
    let bits = if cfg!(target_endian = "little") {
        h.trailing_zeros()
    } else {
        h.leading_zeros()
    };
    (bits / 8) as usize
}

/// The length of the ASCII prefix of `s`, or of its part up to the last aligned word of
/// `s` when the prefix goes on into the 0 to 3 bytes after it (at least 1 when `s` holds 4
/// bytes or more and starts with ASCII: `feed`'s word loop and its byte-by-byte path go on
/// from there). Out of line: `feed` calls it only for long runs, and it is smaller than
/// the registers it would take from the word loop.
#[inline(never)]
fn ascii_len(s: &[u8]) -> usize {
    // SAFETY: every bit pattern is a valid u32; `align_to` only reinterprets the aligned
    // middle of the slice, the head stays bytes (and the tail, left to the caller).
    let (head, words, _) = unsafe { s.align_to::<u32>() };
    if let Some(i) = head.iter().position(|&b| b >= 0x80) {
        return i;
    }
    // The hot loop: 8 words (32 bytes) per iteration, spelled out because `opt-level =
    // "s"` does not unroll. On MIPS32 it is 8 loads, 7 ORs, an AND, a branch on the
    // result and the loop's own 4 (end test, a delay slot, offset and address): 21
    // instructions per 32 bytes. The position is only worked out once a block has a
    // non-ASCII byte, by the word loop after the blocks.
    let (blocks, mut rest) = words.as_chunks::<8>();
    for block in blocks {
        let [a, b, c, d, e, f, g, h] = *block;
        if (a | b | c | d | e | f | g | h) & HIGH != 0 {
            rest = block;
            break;
        }
    }
    // The words after the blocks, or the block with a non-ASCII byte: one loop finds that
    // byte and ends a piece's last words. Their offset in `s` is where they lie.
    let mut n = (rest.as_ptr() as usize).wrapping_sub(s.as_ptr() as usize);
    for &w in rest {
        if w & HIGH != 0 {
            return n + first_high(w);
        }
        n += 4;
    }
    n
}

/// How many ASCII words in a row [`scan_words`] passes before it hands the run to
/// [`ascii_len`].
const ASCII_RUN: u32 = 8;

/// The word loop, in Rust (every target but little-endian MIPS32, which has it in
/// assembly: the same steps, tested in another order there): from `at`, while a word
/// starts below `limit` (`limit + 3 <= data.len()`), a word that starts with a lead byte
/// is checked whole against its [`SEQUENCES`] entry and skipped, ASCII bytes are
/// skipped. Returns where it stopped: at `limit` or beyond, at a sequence the table does
/// not pass, or after [`ASCII_RUN`] ASCII words in a row (on an ASCII byte below
/// `limit`).
#[cfg(not(all(target_arch = "mips", target_endian = "little")))]
#[inline(always)]
fn scan_words(data: &[u8], mut at: usize, limit: usize) -> usize {
    let limit = limit.min(data.len().saturating_sub(3));
    let mut ascii_words = 0;
    while at < limit {
        // SAFETY: `at + 4 <= data.len()` (`at < limit`, above), and an unaligned read of
        // a `u32` is allowed from any address.
        let w = u32::from_le(unsafe { data.as_ptr().add(at).cast::<u32>().read_unaligned() });
        if w & 0x80 != 0 {
            // A lead byte: a sequence of at most 4 bytes, so it lies whole in the word,
            // and one table entry checks it at once. An invalid lead or sequence (or
            // F0 A0..BF) is left to the byte-by-byte path, which finds the offending byte.
            let [x, m] = sequence(w as u8);
            if (w ^ x) & m != 0 {
                break;
            }
            // The length, 2 to 4.
            at += (x >> 24) as usize & 7;
            ascii_words = 0;
        } else if w & HIGH == 0 {
            at += 4;
            ascii_words += 1;
            if ascii_words == ASCII_RUN {
                break;
            }
        } else {
            // ASCII up to the first byte that is not (1 to 3 bytes on).
            at += first_high(w);
            ascii_words = 0;
        }
    }
    at
}

/// The word loop by hand for little-endian MIPS32 (release 2: `ext`, `ins`, `clz`), where
/// it is the hot loop of every text message: LLVM's version spent 9 of its 17 to 21
/// instructions a word on index arithmetic and unfilled delay slots.
#[cfg(all(target_arch = "mips", target_endian = "little"))]
mod mips {
    // `mzw1_utf8_words(p, limit, table) -> p`: [`scan_words`](super::scan_words) on
    // pointers. `table` is `SEQUENCES`, 512-byte aligned: an entry's address is the
    // table's with the lead byte's low 6 bits inserted at bit 3 (`ins`). Per word: ASCII
    // 10 instructions, a sequence 17, ASCII bytes then a sequence 30 for both (the word
    // from the first non-ASCII byte goes straight to the table). Words are read with
    // `lwl`/`lwr` from `p < limit` only: every byte read is below `limit + 3`. `$t4`
    // counts down the ASCII words of a run (`ASCII_RUN`); `$t5` is `limit - 4` (pointers
    // into RAM, far from wrapping), so that an ASCII word can test for the next one
    // before it advances, in the delay slot. It uses only $a0-$a2, $t0-$t5 and $v0
    // (caller-saved), no stack, and writes no memory.
    mips_function!(
        "mzw1_utf8_words",
        r#"
    lui $t0, 0x8080
    ori $t0, $t0, 0x8080
    addiu $t5, $a1, -4
    sltu $t2, $a0, $a1
    beqz $t2, 9f
    addiu $t4, $zero, {run}
1:
    lwl $t1, 3($a0)
    lwr $t1, 0($a0)
    and $t2, $t1, $t0
    bnez $t2, 3f
    andi $t3, $t1, 0x80
    # Four ASCII bytes: on while the run is short and a word starts below `limit`.
    addiu $t4, $t4, -1
    sltu $t2, $a0, $t5
    movz $t2, $zero, $t4
    bnez $t2, 1b
    addiu $a0, $a0, 4
    jr $ra
    move $v0, $a0
3:
    # Not ASCII: a lead byte first, or ASCII bytes before one.
    beqz $t3, 5f
    ins $a2, $t1, 3, 6
    # The sequence against its entry [x, m]: well formed iff (w ^ x) & m == 0; its
    # length is in bits 24..26 of x.
4:
    lw $t2, 0($a2)
    lw $t3, 4($a2)
    xor $t1, $t1, $t2
    and $t1, $t1, $t3
    bnez $t1, 9f
    ext $t2, $t2, 24, 3
    addu $a0, $a0, $t2
    sltu $t2, $a0, $a1
    bnez $t2, 1b
    addiu $t4, $zero, {run}
    jr $ra
    move $v0, $a0
5:
    # The first non-ASCII byte is at 1, 2 or 3: the lowest bit of w & 0x80808080 is
    # bit 15, 23 or 31, whose `clz` is 16, 8 or 0.
    subu $t3, $zero, $t2
    and $t3, $t3, $t2
    clz $t3, $t3
    srl $t3, $t3, 3
    subu $a0, $a0, $t3
    addiu $a0, $a0, 3
    # The word from there, if one starts below `limit`, begins with that byte: straight
    # to its sequence (a byte that cannot lead fails the entry's test, as above).
    sltu $t2, $a0, $a1
    beqz $t2, 9f
    nop
    lwl $t1, 3($a0)
    lwr $t1, 0($a0)
    b 4b
    ins $a2, $t1, 3, 6
9:
    jr $ra
    move $v0, $a0
"#,
        run = const super::ASCII_RUN,
    );

    unsafe extern "C" {
        /// Defined above, in assembly.
        fn mzw1_utf8_words(
            p: *const u8,
            limit: *const u8,
            table: *const super::Sequences,
        ) -> *const u8;
    }

    /// See [`scan_words`](super::scan_words) for the other targets.
    #[inline(always)]
    pub(super) fn scan_words(data: &[u8], at: usize, limit: usize) -> usize {
        let base = data.as_ptr();
        let limit = limit.min(data.len().saturating_sub(3));
        // SAFETY: `at` and `limit` are at most `data.len()`, so both pointers are within
        // (or one past) `data`; the function reads only below `limit + 3 <= data.len()`
        // (see above), follows the o32 calling convention and writes no memory. Each
        // step advances by at most 4 from below `limit`, so the result is at most
        // `data.len()`.
        let end = unsafe {
            mzw1_utf8_words(
                base.add(at.min(data.len())),
                base.add(limit),
                &super::SEQUENCES,
            )
        };
        (end as usize).wrapping_sub(base as usize)
    }
}

#[cfg(all(target_arch = "mips", target_endian = "little"))]
use mips::scan_words;

impl Utf8Validator {
    /// A validator at the start of a message.
    #[inline(always)]
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            need: 0,
            seen: 0,
            lo: 0,
            span: 0,
            failed: false,
        }
    }

    /// Forgets the message: ready for the next one.
    #[inline(always)]
    pub fn reset(&mut self) {
        *self = Utf8Validator::new();
    }

    /// Validates `data`, the bytes of the message that follow those fed so far.
    ///
    /// A sequence left incomplete at the end of `data` is not an error here: the next
    /// piece may complete it. Reports the first byte that makes the message invalid,
    /// whatever follows it (RFC 6455 §8.1).
    pub fn feed(&mut self, data: &[u8]) -> Result<(), Utf8Error> {
        if self.failed {
            return Err(Utf8Error::AFTER_FAILURE);
        }
        let Utf8Validator {
            mut need,
            mut seen,
            mut lo,
            mut span,
            ..
        } = *self;
        // The offset of the next byte to look at; never beyond `data.len()`.
        let mut at = 0;
        let verdict = 'scan: loop {
            // Inside a sequence: the next byte within [lo, lo + span], the ones after it
            // 80..BF.
            while need != 0 {
                let Some(&b) = data.get(at) else {
                    break 'scan Ok(());
                };
                if !within(b, lo, span) {
                    break 'scan Err(Utf8Error {
                        offset: at,
                        prefix: seen,
                        truncated: false,
                    });
                }
                at += 1;
                need -= 1;
                seen += 1;
                lo = 0x80;
                span = 0x3F;
            }
            // Between characters, while a word is left: 4 bytes at a time, wherever they
            // start. The scan hands back a run of 8 ASCII words, which goes on in the
            // aligned scan (it costs more to set up than the word loop spends on a short
            // run between two characters), and stops at the last 3 bytes or at a
            // sequence the table does not pass.
            // Words start below `limit`: the 4 bytes from there are within `data`.
            let limit = data.len().saturating_sub(3);
            loop {
                at = scan_words(data, at, limit);
                match data.get(at..) {
                    Some(rest @ [b, ..]) if at < limit && *b < 0x80 => at += ascii_len(rest),
                    _ => break,
                }
            }
            // One byte: one of the last 3, or a sequence the word loop found invalid.
            let Some(&b) = data.get(at) else {
                break 'scan Ok(());
            };
            if b >= 0x80 {
                let Some((n, l, w)) = classify(b) else {
                    break 'scan Err(Utf8Error {
                        offset: at,
                        prefix: 0,
                        truncated: false,
                    });
                };
                (need, seen, lo, span) = (n, 1, l, w);
            }
            at += 1;
        };
        *self = Utf8Validator {
            need,
            seen,
            lo,
            span,
            failed: verdict.is_err(),
        };
        verdict
    }

    /// Ends the message: an error if it stops inside a sequence (a truncated character,
    /// [`error_len`](Utf8Error::error_len) `None`) or an error was reported before.
    #[inline]
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.failed {
            Err(Utf8Error::AFTER_FAILURE)
        } else if self.need != 0 {
            Err(Utf8Error {
                offset: 0,
                prefix: self.seen,
                truncated: true,
            })
        } else {
            Ok(())
        }
    }

    /// No sequence is in progress: the bytes fed so far are valid UTF-8 on their own.
    #[inline(always)]
    pub const fn is_boundary(&self) -> bool {
        // One test of both, not a branch for each.
        self.need | self.failed as u8 == 0
    }
}

/// Validates a complete message held in one piece (a close frame's reason, RFC 6455
/// §5.5.1, or an unfragmented text message).
#[inline]
pub fn validate(data: &[u8]) -> Result<(), Utf8Error> {
    let mut v = Utf8Validator::new();
    v.feed(data)?;
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` and turns the result into `from_utf8`'s terms: the end of the
    /// valid prefix and the error length. Also checks that the error is reported in the
    /// piece that holds the offending byte, at that byte.
    fn run(pieces: &[&[u8]]) -> Result<(), (usize, Option<usize>)> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for p in pieces {
            if let Err(e) = v.feed(p) {
                assert!(e.offset() < p.len(), "offset {e:?} outside the piece");
                assert!(!v.is_boundary());
                assert_eq!(v.finish(), Err(Utf8Error::AFTER_FAILURE), "sticky");
                return Err((start + e.offset() - e.prefix_len(), e.error_len()));
            }
            start += p.len();
        }
        match v.finish() {
            Ok(()) => {
                assert!(v.is_boundary());
                Ok(())
            }
            Err(e) => {
                assert_eq!(e.error_len(), None);
                assert!(e.prefix_len() > 0);
                Err((start - e.prefix_len(), None))
            }
        }
    }

    /// `core::str::from_utf8` in the same terms.
    fn core(bytes: &[u8]) -> Result<(), (usize, Option<usize>)> {
        core::str::from_utf8(bytes)
            .map(|_| ())
            .map_err(|e| (e.valid_up_to(), e.error_len()))
    }

    /// The byte at which a fail-fast validator must stop, for an error `from_utf8`
    /// reports as (`valid_up_to`, `Some(len)`): the lead itself if it can start no
    /// sequence, otherwise the byte after the accepted prefix.
    fn offending(bytes: &[u8], valid_up_to: usize, len: usize) -> usize {
        if lead(bytes[valid_up_to]).is_some() {
            valid_up_to + len
        } else {
            valid_up_to
        }
    }

    /// Whole, byte by byte, and split at every point: all agree with `from_utf8`.
    fn check(bytes: &[u8]) {
        let want = core(bytes);
        assert_eq!(run(&[bytes]), want, "{bytes:02x?} whole");
        let singles: [&[u8]; 4] = core::array::from_fn(|i| bytes.get(i..=i).unwrap_or(&[]));
        if bytes.len() <= 4 {
            assert_eq!(run(&singles[..bytes.len()]), want, "{bytes:02x?} bytewise");
        }
        for cut in 1..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(run(&[a, b]), want, "{bytes:02x?} cut at {cut}");
        }
    }

    /// Cheaper than `check` for the big loops: whole and byte by byte.
    fn check_fast(bytes: &[u8]) {
        let want = core(bytes);
        assert_eq!(run(&[bytes]), want, "{bytes:02x?} whole");
        let mut v = Utf8Validator::new();
        let mut got = Ok(());
        for (i, b) in bytes.iter().enumerate() {
            if let Err(e) = v.feed(core::slice::from_ref(b)) {
                got = Err((i - e.prefix_len(), e.error_len()));
                break;
            }
        }
        if got.is_ok() {
            got = v.finish().map_err(|e| (bytes.len() - e.prefix_len(), None));
        }
        assert_eq!(got, want, "{bytes:02x?} bytewise");
    }

    #[test]
    fn every_one_and_two_byte_sequence() {
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
    }

    #[test]
    fn every_three_byte_sequence() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    check_fast(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    fn four_byte_sequences() {
        // Every first and second byte; the third and fourth from the edges of every
        // range in the table and just outside them.
        const EDGES: [u8; 12] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF,
        ];
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in EDGES {
                    for d in EDGES {
                        check_fast(&[a, b, c, d]);
                    }
                }
            }
        }
        // Every F0..F4 sequence whose second byte is a continuation byte.
        for a in 0xF0..=0xF4u8 {
            for b in 0x80..=0xBFu8 {
                for c in 0..=255u8 {
                    for d in 0..=255u8 {
                        check_fast(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn autobahn_section_6_cases() {
        // Valid: 6.2 "κόσμε", 6.3 first possible sequences, 6.4 last possible, 6.5
        // boundaries (U+D7FF, U+E000, U+FFFD, U+10FFFF), noncharacters (6.22/6.23 are
        // valid UTF-8).
        let valid: &[&[u8]] = &[
            b"",
            "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes(),
            b"\x00",
            b"\xc2\x80",
            b"\xe0\xa0\x80",
            b"\xf0\x90\x80\x80",
            b"\x7f",
            b"\xdf\xbf",
            b"\xef\xbf\xbf",
            b"\xf4\x8f\xbf\xbf",
            b"\xed\x9f\xbf",
            b"\xee\x80\x80",
            b"\xef\xbf\xbd",
            b"\xef\xbf\xbe",
            b"\xf0\x9f\xbf\xbf",
        ];
        for v in valid {
            check(v);
            assert_eq!(validate(v), Ok(()), "{v:02x?}");
        }
        // Invalid, with (valid_up_to, error_len) as core reports them.
        let invalid: &[(&[u8], usize, Option<usize>)] = &[
            // 6.4.1..6.4.4: κόσμε then out of range, then more text: fail at the byte.
            (
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64",
                11,
                Some(1),
            ),
            (
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64",
                11,
                Some(1),
            ),
            // 6.6: truncated κόσμε.
            (b"\xce", 0, None),
            (b"\xce\xba\xe1", 2, None),
            (b"\xce\xba\xe1\xbd", 2, None),
            // 6.7 / 6.8: five- and six-byte forms (F8, FC) and beyond U+10FFFF.
            (b"\xf8\x88\x80\x80\x80", 0, Some(1)),
            (b"\xfc\x84\x80\x80\x80\x80", 0, Some(1)),
            (b"\xf4\x90\x80\x80", 0, Some(1)),
            (b"\xf7\xbf\xbf\xbf", 0, Some(1)),
            // 6.9 / 6.10: unexpected continuation bytes.
            (b"\x80", 0, Some(1)),
            (b"\xbf", 0, Some(1)),
            (b"\x80\xbf", 0, Some(1)),
            (b"a\x80\xbf\x80", 1, Some(1)),
            // 6.12 / 6.13: lonely start characters followed by a space.
            (b"\xc0 ", 0, Some(1)),
            (b"\xdf ", 0, Some(1)),
            (b"\xe0 ", 0, Some(1)),
            (b"\xef ", 0, Some(1)),
            (b"\xf0 ", 0, Some(1)),
            (b"\xf7 ", 0, Some(1)),
            // 6.14 / 6.15: sequences with the last byte missing, alone and concatenated.
            (b"\xc0", 0, Some(1)),
            (b"\xe0\x80", 0, Some(1)),
            (b"\xdf", 0, None),
            (b"\xef\xbf", 0, None),
            (b"\xf4\x8f\xbf", 0, None),
            (b"\xe1\x80\xe2\xf0\x91\x92\xf1\xbf\x41", 0, Some(2)),
            // 6.16: impossible bytes.
            (b"\xfe", 0, Some(1)),
            (b"\xff", 0, Some(1)),
            (b"\xfe\xfe\xff\xff", 0, Some(1)),
            // 6.17 / 6.18: overlong ASCII and maximum overlongs.
            (b"\xc0\xaf", 0, Some(1)),
            (b"\xe0\x80\xaf", 0, Some(1)),
            (b"\xf0\x80\x80\xaf", 0, Some(1)),
            (b"\xc1\xbf", 0, Some(1)),
            (b"\xe0\x9f\xbf", 0, Some(1)),
            (b"\xf0\x8f\xbf\xbf", 0, Some(1)),
            // 6.19: overlong NUL.
            (b"\xc0\x80", 0, Some(1)),
            (b"\xe0\x80\x80", 0, Some(1)),
            (b"\xf0\x80\x80\x80", 0, Some(1)),
            // 6.20 / 6.21: single and paired UTF-16 surrogates.
            (b"\xed\xa0\x80", 0, Some(1)),
            (b"\xed\xad\xbf", 0, Some(1)),
            (b"\xed\xbf\xbf", 0, Some(1)),
            (b"\xed\xa0\x80\xed\xb0\x80", 0, Some(1)),
            // A good sequence cut short by ASCII.
            (b"\xf0\x90\x80A", 0, Some(3)),
        ];
        for &(bytes, up_to, len) in invalid {
            assert_eq!(core(bytes), Err((up_to, len)), "core on {bytes:02x?}");
            check(bytes);
            let e = validate(bytes).unwrap_err();
            assert_eq!(e.error_len(), len, "{bytes:02x?}");
            if let Some(len) = len {
                assert_eq!(e.offset(), offending(bytes, up_to, len), "{bytes:02x?}");
            }
        }
    }

    #[test]
    fn fails_fast_inside_a_piece() {
        // Autobahn 6.4.1 sent in three pieces: the error is in the second piece, at the
        // byte 0x90, though the message and even the piece go on.
        let mut v = Utf8Validator::new();
        assert_eq!(
            v.feed("\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}".as_bytes()),
            Ok(())
        );
        let e = v.feed(b"\xf4\x90\x80\x80").unwrap_err();
        assert_eq!((e.offset(), e.prefix_len(), e.error_len()), (1, 1, Some(1)));
        assert_eq!(v.feed(b"edited"), Err(Utf8Error::AFTER_FAILURE));
        v.reset();
        assert_eq!(v.feed(b"edited"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
        // The sequence split F4 | 90: the error is at offset 0 of the second piece, its
        // lead byte in the piece before.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ab\xf4"), Ok(()));
        let e = v.feed(b"\x90\x80\x80").unwrap_err();
        assert_eq!((e.offset(), e.prefix_len()), (0, 1));
    }

    /// A 4-aligned buffer, so that start offsets 0..=3 are the four alignments.
    #[repr(C, align(4))]
    struct Buf([u8; 200]);

    #[test]
    fn ascii_fast_path_finds_every_position() {
        // One non-ASCII byte (bad, or the lead of a good sequence) at every position of
        // an ASCII run, for every alignment and run length around the block sizes.
        for start in 0..4 {
            for len in [0usize, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 150] {
                for at in 0..len {
                    for (bad, fix) in [(0x80u8, None), (0xFF, None), (0xC3, Some(0xA9u8))] {
                        let mut b = Buf([b'x'; 200]);
                        b.0[start + at] = bad;
                        let mut n = len;
                        if let Some(f) = fix {
                            b.0[start + at + 1] = f;
                            n = len.max(at + 2);
                        }
                        let s = &b.0[start..start + n];
                        assert_eq!(run(&[s]), core(s), "start {start} len {len} at {at}");
                        if fix.is_none() {
                            assert_eq!(validate(s).unwrap_err().offset(), at);
                        }
                    }
                }
                let b = Buf([b'x'; 200]);
                assert_eq!(validate(&b.0[start..start + len]), Ok(()));
            }
        }
    }

    #[test]
    fn mixed_text_in_pieces() {
        let text = "Grüße, κόσμε, 日本語, 😀 and plain ASCII long enough for words: ".repeat(5);
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(run(&[a, b]), Ok(()), "cut {cut}");
            // Truncating anywhere inside a character fails at `finish`, nowhere else.
            let want = core(a);
            assert_eq!(run(&[a]), want, "truncated at {cut}");
        }
    }

    #[test]
    fn classify_matches_definition() {
        for b in 0x80..=0xFFu8 {
            let want = lead(b).map(|(n, lo, hi)| (n, lo, hi - lo));
            assert_eq!(classify(b), want, "{b:#04x}");
        }
    }

    #[test]
    fn sequence_table_matches_definition() {
        // Every lead byte and second byte, the third and fourth continuation bytes or
        // not: the word check passes exactly for the sequences `lead` allows (F0 only
        // with a second byte 90..9F), and then gives their length.
        for b in 0x80..=0xFFu8 {
            for second in 0..=255u8 {
                for later in [0x41u8, 0x80, 0xBF, 0xC0] {
                    let w = u32::from_le_bytes([b, second, later, later]);
                    let [x, m] = sequence(b);
                    let want = lead(b).and_then(|(n, lo, hi)| {
                        let hi = if b == 0xF0 { 0x9F } else { hi };
                        let rest = (0x80..=0xBF).contains(&later) || n == 1;
                        ((lo..=hi).contains(&second) && rest).then_some(n as usize + 1)
                    });
                    let got = ((w ^ x) & m == 0).then_some((x >> 24) as usize & 7);
                    assert_eq!(got, want, "{w:08x}");
                }
            }
        }
    }

    #[test]
    fn error_accessors() {
        let e = validate(b"ok\xe2\x82").unwrap_err();
        assert_eq!((e.offset(), e.prefix_len(), e.error_len()), (0, 2, None));
        let e = validate(b"ok\xc0").unwrap_err();
        assert_eq!((e.offset(), e.prefix_len(), e.error_len()), (2, 0, Some(1)));
        let e = validate(b"ok\xe2\x82z").unwrap_err();
        assert_eq!((e.offset(), e.prefix_len(), e.error_len()), (4, 2, Some(2)));
        assert!(Utf8Validator::default().is_boundary());
    }
}
