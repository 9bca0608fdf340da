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
        // The first free entry, else the one refreshed longest ago: one pass for both.
        let mut slot = 0;
        let mut age = 0;
        for (i, e) in self.entries.iter().enumerate() {
            let Some((_, _, t)) = e else {
                slot = i;
                break;
            };
            let a = now.since(*t);
            if a >= age {
                age = a;
                slot = i;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> [u8; 4] {
        [192, 168, 7, n]
    }

    fn mac(n: u8) -> [u8; 6] {
        [2, 0, 0, 0, 0, n]
    }

    #[test]
    fn merge_learns_only_when_asked_and_reports_changes() {
        let mut cache = ArpCache::new();
        assert!(!cache.merge(ip(1), mac(1), Instant(0), false));
        assert_eq!(cache.lookup(ip(1)), None);
        assert!(cache.merge(ip(1), mac(1), Instant(0), true));
        assert_eq!(cache.lookup(ip(1)), Some(mac(1)));
        // Known: refreshed whether or not it may be added, changed only if it moved.
        assert!(!cache.merge(ip(1), mac(1), Instant(5), false));
        assert!(cache.merge(ip(1), mac(9), Instant(6), false));
        assert_eq!(cache.lookup(ip(1)), Some(mac(9)));
    }

    #[test]
    fn a_full_cache_replaces_the_entry_refreshed_longest_ago() {
        let mut cache = ArpCache::new();
        for n in 1..=CACHE_SIZE as u8 {
            cache.merge(ip(n), mac(n), Instant(u32::from(n) * 10), true);
        }
        // Entry 1 is the oldest, until it is refreshed; then entry 2 is.
        cache.merge(ip(1), mac(1), Instant(100), false);
        cache.merge(ip(50), mac(50), Instant(110), true);
        assert_eq!(cache.lookup(ip(2)), None);
        for n in [1, 3, 4, 50] {
            assert_eq!(cache.lookup(ip(n)), Some(mac(n)), "entry {n}");
        }
        // Equally old: the last of them goes.
        let mut cache = ArpCache::new();
        for n in 1..=CACHE_SIZE as u8 {
            cache.merge(ip(n), mac(n), Instant(7), true);
        }
        cache.merge(ip(60), mac(60), Instant(8), true);
        assert_eq!(cache.lookup(ip(CACHE_SIZE as u8)), None);
        assert_eq!(cache.lookup(ip(1)), Some(mac(1)));
    }
}
