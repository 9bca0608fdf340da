//! The Ethernet frame check sequence: CRC-32 (IEEE 802.3, reflected polynomial
//! 0xEDB88320, initial value and final XOR 0xFFFFFFFF), sent least significant byte first.

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Appends the FCS to a frame.
pub fn append_fcs(frame: &mut Vec<u8>) {
    let c = crc32(frame);
    frame.extend_from_slice(&c.to_le_bytes());
}

/// Whether the last four bytes are the FCS of the rest.
pub fn fcs_ok(frame_with_fcs: &[u8]) -> bool {
    let Some(n) = frame_with_fcs.len().checked_sub(4) else {
        return false;
    };
    crc32(&frame_with_fcs[..n]).to_le_bytes() == frame_with_fcs[n..]
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The standard CRC-32 check value.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        let mut f = b"hello".to_vec();
        super::append_fcs(&mut f);
        assert!(super::fcs_ok(&f));
        f[0] ^= 1;
        assert!(!super::fcs_ok(&f));
    }
}
