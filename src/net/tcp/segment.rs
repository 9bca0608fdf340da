//! TCP segments (RFC 9293 §3.1): a checked view of a received segment and the emitter of
//! the segments this server sends. Options read: MSS (kind 2), SACK-permitted (kind 4) and
//! SACK blocks (kind 5, RFC 2018); others are skipped by their length, as §3.1 requires.
//! Options sent: MSS and SACK-permitted, on the SYN-ACK only.

use crate::net::checksum::pseudo_header;
use crate::net::ipv4::PROTO_TCP;
use bitflags::bitflags;

/// Bytes of a TCP header without options.
pub const HEADER_LEN: usize = 20;

bitflags! {
    /// TCP control bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Flags: u8 {
        /// No more data from sender.
        const FIN = 0x01;
        /// Synchronize sequence numbers.
        const SYN = 0x02;
        /// Reset the connection.
        const RST = 0x04;
        /// Push.
        const PSH = 0x08;
        /// Acknowledgment field significant.
        const ACK = 0x10;
        /// Urgent pointer field significant.
        const URG = 0x20;
    }
}

/// Why a segment was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// Shorter than its header.
    Truncated,
    /// Data offset below 5 words or beyond the segment.
    BadDataOffset,
    /// Checksum mismatch.
    BadChecksum,
    /// A malformed option (length 0/1 or running past the header).
    BadOption,
}

/// The fields of a received segment the state machine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Control bits.
    pub flags: Flags,
    /// Window.
    pub window: u16,
    /// MSS option, if present.
    pub mss: Option<u16>,
    /// SACK-permitted option present (meaningful on a SYN).
    pub sack_permitted: bool,
    /// Offset in the segment of the SACK option's first block (see
    /// [`sack`](SegmentInfo::sack)).
    pub sack_at: u8,
    /// SACK blocks in the option (at most 4, RFC 2018 §3), 0 without one.
    pub sack_blocks: u8,
    /// Offset of the payload in the segment.
    pub payload_offset: usize,
    /// Payload length.
    pub payload_len: usize,
}

impl SegmentInfo {
    /// The SACK blocks (left edge, right edge), read from `header`, the segment's header
    /// this was parsed from. Left there rather than copied out: most segments carry none,
    /// and a parse that copies 32 bytes of blocks costs every segment a `memset` and two
    /// `memcpy`s of the result.
    pub fn sack<'h>(&self, header: &'h [u8]) -> impl Iterator<Item = (u32, u32)> + 'h {
        let blocks = header.get(self.sack_at as usize..).unwrap_or_default();
        blocks
            .as_chunks::<8>()
            .0
            .iter()
            .take(self.sack_blocks as usize)
            .map(|b| {
                let [l0, l1, l2, l3, r0, r1, r2, r3] = *b;
                (
                    u32::from_be_bytes([l0, l1, l2, l3]),
                    u32::from_be_bytes([r0, r1, r2, r3]),
                )
            })
    }

    /// Sequence space the segment occupies: data plus one for SYN and for FIN.
    pub fn seg_len(&self) -> u32 {
        self.payload_len as u32
            + self.flags.contains(Flags::SYN) as u32
            + self.flags.contains(Flags::FIN) as u32
    }
}

/// Checks a segment (the IPv4 payload) and its checksum against the pseudo-header.
pub fn parse(seg: &[u8], src_ip: [u8; 4], dst_ip: [u8; 4]) -> Result<SegmentInfo, TcpError> {
    let (h, _) = seg
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(TcpError::Truncated)?;
    let offset = ((h[12] >> 4) as usize) * 4;
    if offset < HEADER_LEN || offset > seg.len() {
        return Err(TcpError::BadDataOffset);
    }
    let mut c = pseudo_header(src_ip, dst_ip, PROTO_TCP, seg.len() as u16);
    c.add(seg);
    if c.finish() != 0 {
        return Err(TcpError::BadChecksum);
    }
    let options = seg.get(HEADER_LEN..offset).ok_or(TcpError::BadDataOffset)?;
    let opts = parse_options(options)?;
    // The header's first four 32-bit words, big-endian (RFC 9293 §3.1), each one
    // unaligned load (`lwl`/`lwr` on MIPS32): the ports; the sequence number; the
    // acknowledgment number; data offset, flags and window.
    let ([ports, seq, ack, control, _], []) = h.as_chunks::<4>() else {
        return Err(TcpError::Truncated);
    };
    let (ports, control) = (u32::from_be_bytes(*ports), u32::from_be_bytes(*control));
    Ok(SegmentInfo {
        src_port: (ports >> 16) as u16,
        dst_port: ports as u16,
        seq: u32::from_be_bytes(*seq),
        ack: u32::from_be_bytes(*ack),
        flags: Flags::from_bits_truncate((control >> 16) as u8),
        window: control as u16,
        mss: opts.mss,
        sack_permitted: opts.sack_permitted,
        sack_at: opts.sack_at,
        sack_blocks: opts.sack_blocks,
        payload_offset: offset,
        payload_len: seg.len() - offset,
    })
}

#[derive(Default)]
struct Options {
    mss: Option<u16>,
    sack_permitted: bool,
    sack_at: u8,
    sack_blocks: u8,
}

/// The options we use among `options`, skipping the others by length.
fn parse_options(mut options: &[u8]) -> Result<Options, TcpError> {
    let mut o = Options::default();
    let all = options.len();
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            0 => break,          // end of option list
            1 => options = rest, // no-operation
            _ => {
                let &len = rest.first().ok_or(TcpError::BadOption)?;
                let len = len as usize;
                if len < 2 || len > options.len() {
                    return Err(TcpError::BadOption);
                }
                let (this, next) = options.split_at(len);
                match (kind, this) {
                    (2, &[_, 4, hi, lo]) => o.mss = Some(u16::from_be_bytes([hi, lo])),
                    (4, &[_, 2]) => o.sack_permitted = true,
                    (5, _) => {
                        // The blocks start after kind and length (RFC 2018 §3); at most
                        // 4 fit in the 40 bytes of options.
                        o.sack_at = (HEADER_LEN + all - options.len() + 2) as u8;
                        o.sack_blocks = ((len - 2) / 8).min(4) as u8;
                    }
                    _ => {}
                }
                options = next;
            }
        }
    }
    Ok(o)
}

/// Header fields of a segment to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Control bits.
    pub flags: Flags,
    /// Window.
    pub window: u16,
    /// MSS option to include (SYN-ACK only).
    pub mss: Option<u16>,
    /// Include SACK-permitted (SYN-ACK only, when the SYN offered it).
    pub sack_permitted: bool,
}

impl SegmentHeader {
    /// Header length with options.
    pub fn len(&self) -> usize {
        HEADER_LEN
            + if self.mss.is_some() { 4 } else { 0 }
            + if self.sack_permitted { 4 } else { 0 }
    }

    /// Whether the header is option-less (never empty: 20 bytes at least).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Writes the header into `seg[..hdr.len()]`, where the payload `seg[hdr.len()..]` is
/// already in place, and fills in the checksum.
pub fn emit(seg: &mut [u8], hdr: &SegmentHeader, src_ip: [u8; 4], dst_ip: [u8; 4]) -> Option<()> {
    let total = seg.len();
    let (h, rest) = seg.split_first_chunk_mut::<HEADER_LEN>()?;
    // RFC 9293 §3.1, as five 32-bit big-endian words (the ports; the sequence number;
    // the acknowledgment number; data offset, flags and window; checksum and urgent
    // pointer 0): one unaligned store each (`swl`/`swr` on MIPS32; the header is at 2 mod
    // 4 in the frame) instead of a byte store per 16-bit field.
    let ([ports, seq, ack, control, check], []) = h.as_chunks_mut::<4>() else {
        return None;
    };
    let w0 = u32::from(hdr.src_port) << 16 | u32::from(hdr.dst_port);
    let w3 =
        ((hdr.len() / 4) as u32) << 28 | u32::from(hdr.flags.bits()) << 16 | u32::from(hdr.window);
    // The checksum (RFC 9293 §3.1: pseudo-header, header, payload; RFC 1071) takes the
    // header from the words while they are in registers, as they are written; only the
    // payload, if any, is read back through the general sum.
    let mut c = pseudo_header(src_ip, dst_ip, PROTO_TCP, total as u16);
    c.add_u32(w0);
    c.add_u32(hdr.seq);
    c.add_u32(hdr.ack);
    c.add_u32(w3);
    *ports = w0.to_be_bytes();
    *seq = hdr.seq.to_be_bytes();
    *ack = hdr.ack.to_be_bytes();
    *control = w3.to_be_bytes();
    let mut payload = rest;
    if let Some(mss) = hdr.mss {
        let (o, more) = payload.split_first_chunk_mut::<4>()?;
        let w = 0x0204_0000 | u32::from(mss); // kind 2, length 4, the MSS
        c.add_u32(w);
        *o = w.to_be_bytes();
        payload = more;
    }
    if hdr.sack_permitted {
        let (o, more) = payload.split_first_chunk_mut::<4>()?;
        let w = 0x0101_0402; // NOP, NOP, SACK-permitted (RFC 2018 §2)
        c.add_u32(w);
        *o = w.to_be_bytes();
        payload = more;
    }
    if !payload.is_empty() {
        c.add(payload);
    }
    *check = (u32::from(c.finish()) << 16).to_be_bytes();
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 4] = [192, 168, 7, 1];
    const DST: [u8; 4] = [192, 168, 7, 2];

    /// A segment with `options` (a multiple of 4 bytes) and a 3-byte payload, checksummed.
    fn segment(options: &[u8]) -> heapless::Vec<u8, 80> {
        let mut seg = heapless::Vec::<u8, 80>::new();
        let hlen = HEADER_LEN + options.len();
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&5000u16.to_be_bytes());
        h[2..4].copy_from_slice(&80u16.to_be_bytes());
        h[4..8].copy_from_slice(&7u32.to_be_bytes());
        h[8..12].copy_from_slice(&9u32.to_be_bytes());
        h[12] = ((hlen / 4) as u8) << 4;
        h[13] = Flags::ACK.bits();
        h[14..16].copy_from_slice(&1000u16.to_be_bytes());
        seg.extend_from_slice(&h).unwrap();
        seg.extend_from_slice(options).unwrap();
        seg.extend_from_slice(b"abc").unwrap();
        let mut c = pseudo_header(SRC, DST, PROTO_TCP, seg.len() as u16);
        c.add(&seg);
        let sum = c.finish();
        seg[16..18].copy_from_slice(&sum.to_be_bytes());
        seg
    }

    #[test]
    fn sack_blocks_are_read_from_the_header() {
        // NOP, NOP, SACK with two blocks (RFC 2018 §3), then NOP, NOP, timestamps.
        let mut o = heapless::Vec::<u8, 40>::new();
        o.extend_from_slice(&[1, 1, 5, 18]).unwrap();
        for v in [100u32, 200, 300, 400] {
            o.extend_from_slice(&v.to_be_bytes()).unwrap();
        }
        o.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
            .unwrap();
        let seg = segment(&o);
        let info = parse(&seg, SRC, DST).unwrap();
        assert_eq!(info.sack_blocks, 2);
        assert_eq!(info.payload_len, 3);
        let header = &seg[..info.payload_offset];
        let blocks: heapless::Vec<(u32, u32), 4> = info.sack(header).collect();
        assert_eq!(&blocks[..], &[(100, 200), (300, 400)]);
    }

    #[test]
    fn a_sack_option_with_a_partial_block_yields_the_whole_ones() {
        // Length 12: one block and 2 stray bytes, then padding.
        let mut o = [0u8; 12];
        o[..2].copy_from_slice(&[5, 12]);
        o[2..6].copy_from_slice(&1u32.to_be_bytes());
        o[6..10].copy_from_slice(&2u32.to_be_bytes());
        let seg = segment(&o);
        let info = parse(&seg, SRC, DST).unwrap();
        let blocks: heapless::Vec<(u32, u32), 4> = info.sack(&seg[..info.payload_offset]).collect();
        assert_eq!(&blocks[..], &[(1, 2)]);
    }

    #[test]
    fn no_sack_option_no_blocks() {
        let seg = segment(&[]);
        let info = parse(&seg, SRC, DST).unwrap();
        assert_eq!(info.sack_blocks, 0);
        assert_eq!(info.sack(&seg[..info.payload_offset]).count(), 0);
    }
}
