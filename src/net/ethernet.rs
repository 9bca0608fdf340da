//! Ethernet II frames (IEEE 802.3 with an EtherType).

/// Bytes of the Ethernet header.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xFF; 6];

/// A received frame: a view over its header, and its payload.
pub struct EthernetFrame<'a> {
    header: &'a [u8; HEADER_LEN],
    payload: &'a mut [u8],
}

impl<'a> EthernetFrame<'a> {
    /// The frame in `buf`, if it holds at least a header.
    #[inline]
    pub fn new_checked(buf: &'a mut [u8]) -> Option<EthernetFrame<'a>> {
        let (header, payload) = buf.split_first_chunk_mut::<HEADER_LEN>()?;
        Some(EthernetFrame { header, payload })
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        let h = self.header;
        [h[0], h[1], h[2], h[3], h[4], h[5]]
    }

    /// Source address, in place in the header (the header stays borrowed while the
    /// payload is worked on, so the address need not be copied out for a frame that never
    /// uses it).
    #[inline]
    pub fn src(&self) -> &'a [u8; 6] {
        let [_, _, _, _, _, _, src @ .., _, _] = self.header;
        src
    }

    /// EtherType.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.header[12], self.header[13]])
    }

    /// The payload, after the header.
    #[inline]
    pub fn into_payload(self) -> &'a mut [u8] {
        self.payload
    }
}

/// Writes an Ethernet header at the start of `buf`; returns the payload area.
#[inline]
pub fn emit(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Option<&mut [u8]> {
    let (h, payload) = buf.split_first_chunk_mut::<HEADER_LEN>()?;
    h[..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..].copy_from_slice(&ethertype.to_be_bytes());
    Some(payload)
}
