//! Decisions taken from the fuzz input: a small deterministic generator seeded from input
//! bytes, so that a saved input replays exactly.

/// xorshift64*: deterministic, cheap, good enough to pick cut points and sink answers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from up to 8 bytes (any seed, zero included, works).
    pub fn new(seed: &[u8]) -> Rng {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed.iter().take(8) {
            s = (s ^ b as u64).wrapping_mul(0x0100_0000_01B3);
        }
        Rng(s | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() >> 16) as usize % n
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
}

/// Cut points for `len` bytes: sorted, each in `0..=len`, empty pieces allowed. Pieces
/// are mostly short (1 to 16 bytes), sometimes long, so headers get cut everywhere.
pub fn cuts(len: usize, rng: &mut Rng) -> Vec<usize> {
    let mut at = Vec::new();
    let mut pos = 0;
    while pos < len {
        let step = match rng.below(8) {
            0 => 0,
            1..=5 => 1 + rng.below(16),
            _ => 1 + rng.below(len),
        };
        pos = (pos + step).min(len);
        at.push(pos);
    }
    at
}

/// Cuts `data` at `cuts` (as [`cuts`] makes them) into pieces covering it in order.
pub fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &c in cuts {
        let c = c.clamp(start, data.len());
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}
