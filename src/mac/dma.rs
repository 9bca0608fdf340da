//! The DMA region: descriptors and packet buffers in one block of memory, and the single
//! place where CPU addresses become the physical addresses the controller uses.
//!
//! On the target the region is a `static` linked into KSEG1 (uncached, `.dma` section of
//! `linker/pic32mzw1.ld`), so the CPU and the DMA engines always agree on its contents
//! without cache maintenance (pic32mzw1-eth-facts.md §7, "safe rule"). On the host the
//! simulated board allocates it anywhere and tells the driver which physical addresses it
//! stands for.

use mzw1_pac::Descriptor;

/// Bytes of a packet buffer. 1552 = 16-byte multiple ≥ [`FRAME_OFFSET`] + [`RX_DMA_SIZE`].
pub const BUFFER_SIZE: usize = 1552;

/// Offset of the first frame byte in every buffer. Two bytes put the IPv4 header (after
/// the 14-byte Ethernet header) on a 4-byte boundary, so checksums, unmasking and header
/// fields work a word at a time. Harmony hands the controller such 2-mod-4 buffer
/// addresses for the same reason (pic32-eth-behaviour.md §1.1).
pub const FRAME_OFFSET: usize = 2;

/// RX bytes the controller may write into one buffer: ETHCON2.RXBUF_SZ, a multiple of 16.
/// It covers the largest frame the MAC accepts (EMAC1MAXF = 1518, FCS included), so every
/// good frame lands in one buffer.
pub const RX_DMA_SIZE: usize = 1536;

/// The largest frame the MAC accepts or sends, FCS included (EMAC1MAXF).
pub const MAX_FRAME: usize = 1518;

/// The largest frame software hands the MAC, without the FCS it appends.
pub const MAX_TX_FRAME: usize = MAX_FRAME - 4;

/// The bit of each of the first `count` buffers (or descriptors), as the rings keep them
/// in `u32` masks: bit i for buffer i.
pub(crate) const fn first_bits(count: usize) -> u32 {
    if count >= 32 {
        u32::MAX
    } else {
        (1u32 << count) - 1
    }
}

/// One packet buffer, 16-byte aligned (the PIC32MZ cache-line size Harmony aligns to).
#[repr(C, align(16))]
pub struct Buffer(pub [u8; BUFFER_SIZE]);

impl Buffer {
    /// The first `len` frame bytes of the buffer at `p` (from [`FRAME_OFFSET`]; `len` is
    /// capped at the buffer's end).
    ///
    /// # Safety
    /// `p` must point to a live buffer that nothing else (the controller included) reads
    /// or writes for `'b`.
    #[inline(always)]
    pub(crate) unsafe fn frame<'b>(p: *mut Buffer, len: usize) -> &'b mut [u8] {
        let len = len.min(BUFFER_SIZE - FRAME_OFFSET);
        // SAFETY: in bounds of the buffer; exclusivity is upheld by the caller.
        unsafe { core::slice::from_raw_parts_mut((p as *mut u8).add(FRAME_OFFSET), len) }
    }
}

/// Every descriptor and buffer the controller touches.
///
/// `RXD` RX descriptors form the receive ring; `RXB` ≥ `RXD` RX buffers back it, the
/// spare ones let the stack keep a received frame in place while its descriptor goes back
/// to the controller with a fresh buffer. `TXB` TX buffers each have a TX descriptor.
#[repr(C, align(16))]
pub struct DmaMemory<const RXD: usize, const RXB: usize, const TXB: usize> {
    pub(crate) rx_desc: [Descriptor; RXD],
    pub(crate) tx_desc: [Descriptor; TXB],
    pub(crate) rx_buf: [Buffer; RXB],
    pub(crate) tx_buf: [Buffer; TXB],
}

impl<const RXD: usize, const RXB: usize, const TXB: usize> DmaMemory<RXD, RXB, TXB> {
    /// Compile-time checks of the ring sizes.
    const VALID: () = {
        assert!(RXD >= 2 && RXD <= 32, "2..=32 RX descriptors");
        assert!(RXB >= RXD && RXB <= 32, "RXD..=32 RX buffers");
        assert!(TXB >= 1 && TXB <= 32, "1..=32 TX buffers");
    };

    /// A zeroed region, for a `static`.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        // SAFETY: descriptors and buffers are plain words and bytes; zero is valid.
        unsafe { core::mem::zeroed() }
    }

    /// Bytes of descriptors (control structures shared with the controller).
    pub const DESCRIPTOR_BYTES: usize = (RXD + TXB) * core::mem::size_of::<Descriptor>();
    /// Bytes of packet buffers.
    pub const BUFFER_BYTES: usize = (RXB + TXB) * BUFFER_SIZE;
}

impl<const RXD: usize, const RXB: usize, const TXB: usize> Default for DmaMemory<RXD, RXB, TXB> {
    fn default() -> Self {
        Self::new()
    }
}

/// CPU-to-physical address translation for the DMA region: `phys = virt - virt_base +
/// phys_base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaWindow {
    virt_base: usize,
    phys_base: u32,
}

impl DmaWindow {
    /// The PIC32 fixed mapping: KSEG0 and KSEG1 addresses are physical + 0x80000000 or
    /// + 0xA0000000, so the physical address is the low 29 bits (§7).
    pub const PIC32_KSEG1: DmaWindow = DmaWindow {
        virt_base: 0xA000_0000,
        phys_base: 0,
    };

    /// A window where CPU address `virt_base` stands for physical address `phys_base`.
    ///
    /// # Safety
    /// The controller must reach CPU address `v` at physical `v - virt_base + phys_base`
    /// for the whole DMA region.
    pub const unsafe fn new(virt_base: usize, phys_base: u32) -> DmaWindow {
        DmaWindow {
            virt_base,
            phys_base,
        }
    }

    /// The physical address of a CPU address in the DMA region.
    #[inline(always)]
    pub fn phys<T>(&self, p: *const T) -> u32 {
        ((p as usize).wrapping_sub(self.virt_base) as u32).wrapping_add(self.phys_base)
    }
}

/// Links descriptors into a ring, each one's next pointer to the one after it and the
/// last one's to the first, and returns the physical address of the first (for ETHTXST
/// or ETHRXST). The controller must not be using them. Shared by both rings, from the
/// last descriptor back, so that no index is taken modulo the ring's length.
#[inline(never)]
pub(crate) fn link_ring(desc: &[Descriptor], window: &DmaWindow) -> u32 {
    let first = desc.first().map_or(0, |d| window.phys(d));
    let mut next = first;
    for d in desc.iter().rev() {
        // SAFETY: `next` is a descriptor of this ring, inside the DMA window.
        unsafe { d.set_next(next) };
        next = window.phys(d);
    }
    first
}
