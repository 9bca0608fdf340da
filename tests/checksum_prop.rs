//! The internet checksum (RFC 1071) against a straightforward one, as a property over
//! random data, any start alignment and random splits into pieces (segments arrive in
//! pieces of any length, at any address).

use mzw1_wss::net::checksum::{Checksum, checksum};
use proptest::prelude::*;

/// The definition: big-endian 16-bit words, an odd last byte padded with zero, summed
/// with end-around carry, complemented.
fn straightforward(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for pair in data.chunks(2) {
        s += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn checksum_in_pieces_agrees_with_the_definition(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        offset in 0usize..8,
        mut cuts in prop::collection::vec(0usize..3000, 0..6),
    ) {
        // The data at every start address modulo 8.
        let mut buf = vec![0u8; data.len() + offset];
        buf[offset..].copy_from_slice(&data);
        let data = &buf[offset..];
        let want = straightforward(data);
        prop_assert_eq!(checksum(data), want);
        cuts.iter_mut().for_each(|c| *c %= data.len() + 1);
        cuts.sort_unstable();
        let mut c = Checksum::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([data.len()].iter()) {
            c.add(&data[at..cut]);
            at = cut;
        }
        prop_assert_eq!(c.finish(), want);
    }
}
