//! ICMP echo (RFC 792): the reply to an echo request carries the same identifier,
//! sequence number and data, at any size up to the MTU.

use super::checksum::{adjust, checksum};

/// Type of an echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Type of an echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Bytes of the ICMP echo header.
pub const HEADER_LEN: usize = 8;

/// Why an ICMP message was dropped or ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Shorter than 8 bytes.
    Truncated,
    /// Checksum mismatch.
    BadChecksum,
    /// Not an echo request (only echo is served).
    NotEchoRequest,
}

/// Checks an echo request in `msg` (the IPv4 payload).
pub fn check_echo_request(msg: &[u8]) -> Result<(), IcmpError> {
    let (h, _) = msg
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(IcmpError::Truncated)?;
    if checksum(msg) != 0 {
        return Err(IcmpError::BadChecksum);
    }
    if h[0] != ECHO_REQUEST || h[1] != 0 {
        return Err(IcmpError::NotEchoRequest);
    }
    Ok(())
}

/// Turns a copy of a valid echo request, in place, into its reply: type 0, checksum
/// adjusted for the changed word (RFC 1624) rather than recomputed over the data.
pub fn make_echo_reply(msg: &mut [u8]) -> Option<()> {
    let (h, _) = msg.split_first_chunk_mut::<HEADER_LEN>()?;
    let (first, _) = h.split_first_chunk_mut::<4>()?;
    // Type, code and checksum: one 32-bit word, read and written whole.
    let word = u32::from_be_bytes(*first);
    let new = u16::from(ECHO_REPLY) << 8;
    let c = adjust(word as u16, (word >> 16) as u16, new);
    *first = (u32::from(new) << 16 | u32::from(c)).to_be_bytes();
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_an_all_zero_request_verifies() {
        // Type 8, everything else zero: the request's checksum is !0x0800 = 0xF7FF; the
        // reply's words are all zero, so its checksum must be 0xFFFF, not 0x0000.
        let mut msg = [8, 0, 0xF7, 0xFF, 0, 0, 0, 0];
        assert_eq!(check_echo_request(&msg), Ok(()));
        make_echo_reply(&mut msg).unwrap();
        assert_eq!(msg, [0, 0, 0xFF, 0xFF, 0, 0, 0, 0]);
        assert_eq!(checksum(&msg), 0);
    }
}
