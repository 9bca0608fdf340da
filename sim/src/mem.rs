//! Host memory standing in for the chip's: register blocks and DMA regions.
//!
//! The firmware reaches this memory through the same `#[repr(C)]` register structs and
//! descriptors it uses on the target. The board reaches it by address, as the silicon
//! does: registers by offset from a block's base, DMA memory by physical address through
//! the [`Bus`]. Blocks are leaked so the firmware can hold `&'static` references, exactly
//! as on the target; one board costs a few tens of KiB.

use std::alloc::{Layout, alloc_zeroed};

/// A zeroed, 16-byte-aligned, leaked block of `len` bytes.
pub(crate) fn leak_zeroed(len: usize) -> *mut u8 {
    let layout = Layout::from_size_align(len.max(16), 16).expect("layout");
    // SAFETY: non-zero size.
    let p = unsafe { alloc_zeroed(layout) };
    assert!(!p.is_null(), "out of memory");
    p
}

/// A register block seen by the board: 32-bit words by byte offset.
#[derive(Clone, Copy)]
pub(crate) struct Block {
    pub(crate) base: *mut u8,
    pub(crate) len: usize,
}

impl Block {
    pub(crate) fn new(len: usize) -> Block {
        Block {
            base: leak_zeroed(len),
            len,
        }
    }

    pub(crate) fn contains(&self, addr: usize) -> bool {
        addr >= self.base as usize && addr < self.base as usize + self.len
    }

    pub(crate) fn offset_of(&self, addr: usize) -> usize {
        addr - self.base as usize
    }

    pub(crate) fn get(&self, off: usize) -> u32 {
        assert!(off + 4 <= self.len && off.is_multiple_of(4));
        // SAFETY: in bounds and aligned; volatile because the firmware shares the word.
        unsafe { std::ptr::read_volatile(self.base.add(off) as *const u32) }
    }

    pub(crate) fn put(&self, off: usize, v: u32) {
        assert!(off + 4 <= self.len && off.is_multiple_of(4));
        // SAFETY: as in `get`.
        unsafe { std::ptr::write_volatile(self.base.add(off) as *mut u32, v) }
    }
}

/// The system bus as the DMA engines see it: physical address ranges mapped onto host
/// memory. An address outside every range is a bus error (RXBUSE/TXBUSE).
#[derive(Default)]
pub struct Bus {
    ranges: Vec<(u32, usize, *mut u8)>,
}

impl Bus {
    pub(crate) fn map(&mut self, phys: u32, len: usize, host: *mut u8) {
        self.ranges.push((phys, len, host));
    }

    /// The host address of `len` bytes at physical `phys`, if mapped.
    pub(crate) fn translate(&self, phys: u32, len: usize) -> Option<*mut u8> {
        self.ranges.iter().find_map(|&(base, size, host)| {
            let off = phys.checked_sub(base)? as usize;
            (off + len <= size).then(|| host.wrapping_add(off))
        })
    }

    pub(crate) fn read_u32(&self, phys: u32) -> Option<u32> {
        let p = self.translate(phys, 4)?;
        // SAFETY: translated inside a mapped range; unaligned-safe read.
        Some(u32::from_le_bytes(unsafe {
            std::ptr::read_volatile(p as *const [u8; 4])
        }))
    }

    pub(crate) fn write_u32(&self, phys: u32, v: u32) -> Option<()> {
        let p = self.translate(phys, 4)?;
        // SAFETY: as in `read_u32`.
        unsafe { std::ptr::write_volatile(p as *mut [u8; 4], v.to_le_bytes()) };
        Some(())
    }

    pub(crate) fn read(&self, phys: u32, out: &mut [u8]) -> Option<()> {
        let p = self.translate(phys, out.len())?;
        // SAFETY: as in `read_u32`.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Some(())
    }

    pub(crate) fn write(&self, phys: u32, data: &[u8]) -> Option<()> {
        let p = self.translate(phys, data.len())?;
        // SAFETY: as in `read_u32`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Some(())
    }
}
