//! ARP for IPv4 over Ethernet (RFC 826): answering requests for our address, a small
//! neighbour cache learned from traffic, and the announcement sent when the link comes up
//! (an ARP request for our own address, RFC 5227 §2.3).

use crate::time::Instant;

/// Bytes of an IPv4-over-Ethernet ARP packet.
pub const PACKET_LEN: usize = 28;
/// Operation: request.
pub const OP_REQUEST: u16 = 1;
/// Operation: reply.
pub const OP_REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet.
pub struct ArpPacket<'a> {
    p: &'a [u8; PACKET_LEN],
}

/// Why an ARP packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpError {
    /// Shorter than 28 bytes.
    Truncated,
    /// Not Ethernet (1) / IPv4 (0x0800) with 6- and 4-byte addresses.
    Unsupported,
}

impl<'a> ArpPacket<'a> {
    /// The packet at the start of `buf` (trailing padding is ignored).
    pub fn new_checked(buf: &'a [u8]) -> Result<ArpPacket<'a>, ArpError> {
        let (p, _) = buf
            .split_first_chunk::<PACKET_LEN>()
            .ok_or(ArpError::Truncated)?;
        if p[..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return Err(ArpError::Unsupported);
        }
        Ok(ArpPacket { p })
    }

    /// Operation (1 request, 2 reply).
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.p[6], self.p[7]])
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> [u8; 6] {
        let p = self.p;
        [p[8], p[9], p[10], p[11], p[12], p[13]]
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> [u8; 4] {
        [self.p[14], self.p[15], self.p[16], self.p[17]]
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> [u8; 4] {
        [self.p[24], self.p[25], self.p[26], self.p[27]]
    }
}

/// Writes an ARP packet into `buf` (at least 28 bytes).
pub fn emit(
    buf: &mut [u8],
    op: u16,
    sender_mac: [u8; 6],
    sender_ip: [u8; 4],
    target_mac: [u8; 6],
    target_ip: [u8; 4],
) -> Option<usize> {
    let (p, _) = buf.split_first_chunk_mut::<PACKET_LEN>()?;
    p[..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    p[6..8].copy_from_slice(&op.to_be_bytes());
    p[8..14].copy_from_slice(&sender_mac);
    p[14..18].copy_from_slice(&sender_ip);
    p[18..24].copy_from_slice(&target_mac);
    p[24..28].copy_from_slice(&target_ip);
    Some(PACKET_LEN)
}

/// Entries in the neighbour cache.
pub const CACHE_SIZE: usize = 4;

/// One neighbour: IPv4 address, Ethernet address, last refreshed.
type Neighbour = ([u8; 4], [u8; 6], Instant);

/// A fixed neighbour cache: IPv4 address to Ethernet address, least recently refreshed
/// entry replaced first.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArpCache {
    entries: [Option<Neighbour>; CACHE_SIZE],
}

impl ArpCache {
    /// An empty cache.
    pub const fn new() -> ArpCache {
        ArpCache {
            entries: [None; CACHE_SIZE],
        }
    }

    /// RFC 826 "merge": refreshes the entry of `ip` if there is one, else learns
    /// `ip` → `mac` if `add`. Returns whether `ip` now maps to an address it did not
    /// before (learned, or changed), for the caller to pass on. One search of the
    /// table serves the lookup and the update.
    pub fn merge(&mut self, ip: [u8; 4], mac: [u8; 6], now: Instant, add: bool) -> bool {
        if let Some(e) = self.entries.iter_mut().flatten().find(|e| e.0 == ip) {
            let changed = e.1 != mac;
            e.1 = mac;
            e.2 = now;
            return changed;
        }
        if !add {
            return false;
        }
        let slot = match self.entries.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                // Replace the entry refreshed longest ago.
                let mut oldest = 0;
                let mut age = 0;
                for (i, e) in self.entries.iter().enumerate() {
                    if let Some((_, _, t)) = e {
                        let a = now.since(*t);
                        if a >= age {
                            age = a;
                            oldest = i;
                        }
                    }
                }
                oldest
            }
        };
        if let Some(e) = self.entries.get_mut(slot) {
            *e = Some((ip, mac, now));
        }
        true
    }

    /// The Ethernet address of `ip`, if known.
    pub fn lookup(&self, ip: [u8; 4]) -> Option<[u8; 6]> {
        self.get(ip).copied()
    }

    /// The Ethernet address of `ip`, if known, where the cache holds it: a reference
    /// costs no copy of the address through a temporary (an `Option<[u8; 6]>` is moved
    /// byte by byte).
    pub fn get(&self, ip: [u8; 4]) -> Option<&[u8; 6]> {
        self.entries
            .iter()
            .flatten()
            .find(|e| e.0 == ip)
            .map(|e| &e.1)
    }
}
