//! The ETH DMA descriptor (pic32mzw1-eth-facts.md §2; pic32-eth-behaviour.md §1).
//!
//! Five little-endian words, identical for TX and RX in linked mode (NPV = 1):
//! header, buffer physical address, status low, status high, next-descriptor physical
//! address. The controller owns a descriptor while EOWN = 1.

use bitflags::bitflags;
use volatile_register::RW;

bitflags! {
    /// Descriptor header word (word 0). BYTE_COUNT is bits 26:16.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DescHeader: u32 {
        /// Owned by the Ethernet controller.
        const EOWN = 1 << 7;
        /// Word 4 holds the next descriptor's address.
        const NPV = 1 << 8;
        /// Byte count field.
        const BYTE_COUNT = 0x7FF << 16;
        /// Last buffer of a frame.
        const EOP = 1 << 30;
        /// First buffer of a frame.
        const SOP = 1 << 31;
    }
}

impl DescHeader {
    /// The bits hardware writes back; a model must keep every other bit as software left
    /// it (Harmony keeps software flags in bits 9–15, behaviour §1.3).
    pub const HW_WRITTEN: DescHeader = DescHeader::EOWN
        .union(DescHeader::BYTE_COUNT)
        .union(DescHeader::EOP)
        .union(DescHeader::SOP);

    /// The 11-bit byte count (0..=2047).
    #[inline(always)]
    pub const fn byte_count(self) -> u16 {
        ((self.bits() >> 16) & 0x7FF) as u16
    }

    /// This header with the byte count replaced (values above 2047 are truncated).
    #[inline(always)]
    pub const fn with_byte_count(self, n: u16) -> DescHeader {
        DescHeader::from_bits_retain(
            (self.bits() & !DescHeader::BYTE_COUNT.bits()) | (((n as u32) & 0x7FF) << 16),
        )
    }
}

/// One linked DMA descriptor, 20 bytes.
#[repr(C)]
pub struct Descriptor {
    header: RW<u32>,
    buffer: RW<u32>,
    status_lo: RW<u32>,
    status_hi: RW<u32>,
    next: RW<u32>,
}

// SAFETY: descriptor words are shared with a DMA engine and accessed only with volatile
// single-word loads and stores, like registers.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// A descriptor with every word zero (EOWN = 0: owned by software).
    pub const fn new() -> Descriptor {
        // SAFETY: RW<u32> is a transparent cell around a u32; all-zero is a valid value.
        unsafe { core::mem::zeroed() }
    }

    /// Reads the header.
    #[inline(always)]
    pub fn header(&self) -> DescHeader {
        DescHeader::from_bits_retain(self.header.read())
    }

    /// Writes the header. Setting EOWN hands the descriptor to the controller, so the other
    /// words must already be complete and visible (see the driver's fences).
    #[inline(always)]
    pub fn set_header(&self, h: DescHeader) {
        // SAFETY: a volatile store into the descriptor; the addresses the controller will
        // use were set through the `unsafe` setters below.
        unsafe { self.header.write(h.bits()) }
    }

    /// The buffer's physical address.
    #[inline(always)]
    pub fn buffer(&self) -> u32 {
        self.buffer.read()
    }

    /// Sets the buffer's physical address.
    ///
    /// # Safety
    /// `phys` must address memory the controller may access (read for TX, write for RX)
    /// whenever this descriptor is owned by it.
    #[inline(always)]
    pub unsafe fn set_buffer(&self, phys: u32) {
        // SAFETY: upheld by the caller.
        unsafe { self.buffer.write(phys) }
    }

    /// The next descriptor's physical address (used when NPV = 1).
    #[inline(always)]
    pub fn next(&self) -> u32 {
        self.next.read()
    }

    /// Sets the next descriptor's physical address.
    ///
    /// # Safety
    /// `phys` must address a valid, 4-byte-aligned descriptor.
    #[inline(always)]
    pub unsafe fn set_next(&self, phys: u32) {
        // SAFETY: upheld by the caller.
        unsafe { self.next.write(phys) }
    }

    /// The two status words (low, high), as the controller wrote them.
    #[inline(always)]
    pub fn status(&self) -> (u32, u32) {
        (self.status_lo.read(), self.status_hi.read())
    }

    /// The status words as a receive status vector.
    #[inline(always)]
    pub fn rx_status(&self) -> RxStatus {
        let (lo, hi) = self.status();
        RxStatus {
            lo: RxStatusLo::from_bits_retain(lo),
            hi: RxStatusHi::from_bits_retain(hi),
        }
    }

    /// The status words as a transmit status vector.
    #[inline(always)]
    pub fn tx_status(&self) -> TxStatus {
        let (lo, hi) = self.status();
        TxStatus {
            lo: TxStatusLo::from_bits_retain(lo),
            hi: TxStatusHi::from_bits_retain(hi),
        }
    }

    /// Writes both status words (software clears them before a hand-over; the simulated
    /// controller writes them on completion).
    #[inline(always)]
    pub fn set_status(&self, lo: u32, hi: u32) {
        // SAFETY: volatile stores of plain data.
        unsafe {
            self.status_lo.write(lo);
            self.status_hi.write(hi);
        }
    }
}

impl Default for Descriptor {
    fn default() -> Self {
        Descriptor::new()
    }
}

bitflags! {
    /// RX status vector, low word (word 2): bits 15:0 are the packet checksum.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RxStatusLo: u32 {
        /// Packet checksum field.
        const CHECKSUM = 0xFFFF;
        /// Runt frame.
        const RUNT = 1 << 24;
        /// Unicast, not matching the station address.
        const NOT_ME = 1 << 25;
        /// Hash-table match.
        const HASH_MATCH = 1 << 26;
        /// Magic-packet match.
        const MAGIC_MATCH = 1 << 27;
        /// Pattern match.
        const PATTERN_MATCH = 1 << 28;
        /// Unicast match.
        const UNICAST_MATCH = 1 << 29;
        /// Broadcast match.
        const BROADCAST_MATCH = 1 << 30;
        /// Multicast match.
        const MULTICAST_MATCH = 1 << 31;
    }
}

bitflags! {
    /// RX status vector, high word (word 3): bits 15:0 are the received byte count, FCS
    /// included.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RxStatusHi: u32 {
        /// Received byte count field.
        const BYTE_COUNT = 0xFFFF;
        /// Long event / previously dropped packet.
        const LONG_DROP_EVENT = 1 << 16;
        /// RXDV event previously seen.
        const RXDV_SEEN = 1 << 17;
        /// Carrier event previously seen.
        const CARRIER_SEEN = 1 << 18;
        /// Code violation.
        const CODE_VIOLATION = 1 << 19;
        /// CRC error.
        const CRC_ERROR = 1 << 20;
        /// Length-check error.
        const LENGTH_CHECK_ERROR = 1 << 21;
        /// Length out of range.
        const LENGTH_OUT_OF_RANGE = 1 << 22;
        /// Received OK: valid CRC, no symbol errors.
        const RECEIVED_OK = 1 << 23;
        /// Multicast frame.
        const MULTICAST = 1 << 24;
        /// Broadcast frame.
        const BROADCAST = 1 << 25;
        /// Dribble nibble.
        const DRIBBLE_NIBBLE = 1 << 26;
        /// Control frame.
        const CONTROL_FRAME = 1 << 27;
        /// PAUSE control frame.
        const PAUSE_FRAME = 1 << 28;
        /// Unknown control opcode.
        const UNKNOWN_OPCODE = 1 << 29;
        /// VLAN-tagged frame.
        const VLAN = 1 << 30;
    }
}

/// A receive status vector (behaviour §1.5), as found in the SOP descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxStatus {
    /// Word 2.
    pub lo: RxStatusLo,
    /// Word 3.
    pub hi: RxStatusHi,
}

impl RxStatus {
    /// Received byte count, FCS included.
    #[inline(always)]
    pub const fn byte_count(&self) -> u16 {
        self.hi.bits() as u16
    }

    /// The hardware packet checksum field (not used: its coverage is undocumented, §3.8).
    #[inline(always)]
    pub const fn checksum(&self) -> u16 {
        self.lo.bits() as u16
    }
}

bitflags! {
    /// TX status vector, low word (word 2): bits 15:0 are the bytes put on the wire,
    /// collided attempts included.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TxStatusLo: u32 {
        /// Total bytes on the wire field.
        const WIRE_BYTES = 0xFFFF;
        /// Control frame sent.
        const CONTROL_FRAME = 1 << 16;
        /// PAUSE frame sent.
        const PAUSE_FRAME = 1 << 17;
        /// Backpressure applied.
        const BACKPRESSURE = 1 << 18;
        /// VLAN-tagged frame.
        const VLAN = 1 << 19;
    }
}

bitflags! {
    /// TX status vector, high word (word 3): bits 15:0 are the frame byte count, bits
    /// 19:16 the collision count.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TxStatusHi: u32 {
        /// Frame byte count field.
        const BYTE_COUNT = 0xFFFF;
        /// Collision count field.
        const COLLISIONS = 0xF << 16;
        /// Attached CRC did not match.
        const CRC_ERROR = 1 << 20;
        /// Length-check error.
        const LENGTH_CHECK_ERROR = 1 << 21;
        /// Length out of range.
        const LENGTH_OUT_OF_RANGE = 1 << 22;
        /// Sent successfully.
        const DONE = 1 << 23;
        /// Multicast.
        const MULTICAST = 1 << 24;
        /// Broadcast.
        const BROADCAST = 1 << 25;
        /// Deferred.
        const DEFERRED = 1 << 26;
        /// Excessive deferral.
        const EXCESSIVE_DEFER = 1 << 27;
        /// Maximum collisions.
        const MAX_COLLISIONS = 1 << 28;
        /// Late collision.
        const LATE_COLLISION = 1 << 29;
        /// Giant: longer than EMAC1MAXF with HUGEFRM = 0.
        const GIANT = 1 << 30;
        /// Underrun.
        const UNDERRUN = 1 << 31;
    }
}

/// A transmit status vector (behaviour §1.4), as found in the SOP descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxStatus {
    /// Word 2.
    pub lo: TxStatusLo,
    /// Word 3.
    pub hi: TxStatusHi,
}

impl TxStatus {
    /// Frame byte count.
    #[inline(always)]
    pub const fn byte_count(&self) -> u16 {
        self.hi.bits() as u16
    }

    /// Whether the frame was sent.
    #[inline(always)]
    pub const fn done(&self) -> bool {
        self.hi.contains(TxStatusHi::DONE)
    }
}
