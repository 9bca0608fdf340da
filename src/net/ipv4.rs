//! IPv4 (RFC 791): validating received packets and emitting headers.
//!
//! Received packets are checked for version, header length, total length against the
//! frame, header checksum and destination; options are skipped; fragments are dropped
//! (the stack never needs reassembly: TCP segments fit the MTU and peers set DF).

use super::checksum::{Checksum, checksum};

/// Bytes of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// Protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// Protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Time to live of packets we send.
pub const DEFAULT_TTL: u8 = 64;

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    /// Shorter than its header or its total length.
    Truncated,
    /// Version ≠ 4.
    BadVersion,
    /// Header length below 20 bytes or beyond the total length.
    BadHeaderLength,
    /// Total length below the header length.
    BadTotalLength,
    /// Header checksum mismatch.
    BadChecksum,
    /// A fragment (MF set or non-zero offset).
    Fragment,
}

/// A validated IPv4 packet.
pub struct Ipv4Packet<'a> {
    header: &'a [u8; HEADER_LEN],
    header_len: usize,
    payload: &'a mut [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Validates the packet at the start of `buf` (the Ethernet payload, possibly
    /// padded); the payload is trimmed to the total length.
    pub fn new_checked(buf: &'a mut [u8]) -> Result<Ipv4Packet<'a>, Ipv4Error> {
        let frame_len = buf.len();
        let header = buf
            .first_chunk::<HEADER_LEN>()
            .ok_or(Ipv4Error::Truncated)?;
        // The first two 32-bit words, big-endian, one unaligned load each (RFC 791 §3.1):
        // version, IHL, TOS and total length; identification, flags and fragment offset.
        let ([first, second, ..], _) = header.as_chunks::<4>() else {
            return Err(Ipv4Error::Truncated);
        };
        let (first, second) = (u32::from_be_bytes(*first), u32::from_be_bytes(*second));
        if first >> 28 != 4 {
            return Err(Ipv4Error::BadVersion);
        }
        let ihl = ((first >> 24) & 0x0F) as usize * 4;
        let total = first as u16 as usize;
        if ihl < HEADER_LEN {
            return Err(Ipv4Error::BadHeaderLength);
        }
        if total < ihl {
            return Err(if total < HEADER_LEN {
                Ipv4Error::BadTotalLength
            } else {
                Ipv4Error::BadHeaderLength
            });
        }
        if total > frame_len {
            return Err(Ipv4Error::Truncated);
        }
        let flags_frag = second as u16;
        // RFC 791 §3.1: the checksum covers the header with its options, which follow
        // it: one sum over both (options are rare, an empty second piece costs a call).
        if checksum(buf.get(..ihl).ok_or(Ipv4Error::Truncated)?) != 0 {
            return Err(Ipv4Error::BadChecksum);
        }
        if flags_frag & 0x3FFF != 0 {
            return Err(Ipv4Error::Fragment);
        }
        let (header, rest) = buf
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(Ipv4Error::Truncated)?;
        let payload = rest
            .get_mut(ihl - HEADER_LEN..total - HEADER_LEN)
            .ok_or(Ipv4Error::Truncated)?;
        Ok(Ipv4Packet {
            header,
            header_len: ihl,
            payload,
        })
    }

    /// Protocol.
    pub fn protocol(&self) -> u8 {
        self.header[9]
    }
    /// Source address.
    pub fn src(&self) -> [u8; 4] {
        [
            self.header[12],
            self.header[13],
            self.header[14],
            self.header[15],
        ]
    }
    /// Destination address.
    pub fn dst(&self) -> [u8; 4] {
        [
            self.header[16],
            self.header[17],
            self.header[18],
            self.header[19],
        ]
    }
    /// Header length, options included.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.header[8]
    }
    /// The payload (total length minus header).
    pub fn into_payload(self) -> &'a mut [u8] {
        self.payload
    }
}

/// Writes a 20-byte IPv4 header (DF set, TTL 64) for `payload_len` bytes; returns the
/// payload area.
///
/// Inline in its two callers (TCP's frame builder and the ICMP echo reply): a leaf of a
/// few dozen instructions, whose call cost TCP 27 more per segment, for 40 bytes of
/// flash.
#[inline(always)]
pub fn emit(
    buf: &mut [u8],
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    payload_len: usize,
    id: u16,
) -> Option<&mut [u8]> {
    let (h, payload) = buf.split_first_chunk_mut::<HEADER_LEN>()?;
    let total = (HEADER_LEN + payload_len) as u16;
    // RFC 791 §3.1 as five 32-bit big-endian words, one unaligned store each (`swl`/`swr`
    // on MIPS32; the header is at 2 mod 4 in the frame): version 4, IHL 5, TOS 0 and
    // the total length; the identification, DF and fragment offset 0; TTL, protocol and
    // the checksum; the addresses.
    let ([first, second, third, from, to], []) = h.as_chunks_mut::<4>() else {
        return None;
    };
    let w0 = 0x4500_0000 | u32::from(total);
    let w1 = u32::from(id) << 16 | 0x4000;
    let w2 = u32::from(DEFAULT_TTL) << 24 | u32::from(protocol) << 16;
    let (w3, w4) = (u32::from_be_bytes(src), u32::from_be_bytes(dst));
    // The header checksum (RFC 791 §3.1, RFC 1071) summed from the words while they are
    // in registers, the checksum field counted as 0: the constant halves fold at compile
    // time, and the header is not read back through a call to the general sum. Written
    // out, not a loop over the words: at opt-level "s" a loop stays a loop through the
    // stack.
    let mut c = Checksum::new();
    c.add_u32(w0);
    c.add_u32(w1);
    c.add_u32(w2);
    c.add_u32(w3);
    c.add_u32(w4);
    *first = w0.to_be_bytes();
    *second = w1.to_be_bytes();
    *third = (w2 | u32::from(c.finish())).to_be_bytes();
    *from = w3.to_be_bytes();
    *to = w4.to_be_bytes();
    Some(payload)
}

/// Static address configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    /// Our address.
    pub address: [u8; 4],
    /// Netmask.
    pub netmask: [u8; 4],
    /// Default gateway.
    pub gateway: [u8; 4],
}

impl Ipv4Config {
    fn mask(&self) -> u32 {
        u32::from_be_bytes(self.netmask)
    }

    /// Whether `ip` is on our subnet.
    pub fn on_link(&self, ip: [u8; 4]) -> bool {
        (u32::from_be_bytes(ip) ^ u32::from_be_bytes(self.address)) & self.mask() == 0
    }

    /// Our subnet's broadcast address (host bits all ones), as a number: on our subnet
    /// and with every bit outside the mask set is one value, one comparison.
    fn subnet_broadcast(&self) -> u32 {
        u32::from_be_bytes(self.address) | !self.mask()
    }

    /// Whether a packet to `dst` is for us: our address, the limited broadcast or the
    /// subnet broadcast.
    pub fn accepts(&self, dst: [u8; 4]) -> bool {
        let d = u32::from_be_bytes(dst);
        dst == self.address || d == u32::MAX || d == self.subnet_broadcast()
    }

    /// Whether `src` may be the source of a packet we answer (RFC 1122 §3.2.1.3, RFC 9293
    /// MUST-63): not 0.0.0.0 (this host, only valid in a few bootstrap protocols), not a
    /// broadcast (limited or our subnet's), not multicast (224/4), not loopback (127/8),
    /// not the reserved 240/4, and not our own address.
    pub fn valid_source(&self, src: [u8; 4]) -> bool {
        let s = u32::from_be_bytes(src);
        let directed_broadcast = s == self.subnet_broadcast();
        !(s == 0 || src[0] == 127 || src[0] >= 224 || directed_broadcast || src == self.address)
    }

    /// The next hop towards `dst`.
    pub fn next_hop(&self, dst: [u8; 4]) -> [u8; 4] {
        if self.on_link(dst) { dst } else { self.gateway }
    }
}
