//! The receive ring: frames are lent in place inside the DMA buffers.
//!
//! `RXD` linked descriptors (NPV = 1, the last pointing back to the first) each carry one
//! of `RXB` buffers. The controller fills a descriptor and clears EOWN, releasing the SOP
//! descriptor of a frame last (pic32-eth-behaviour.md §3.2); it then adds the number of
//! descriptors used to BUFCNT (§3.3). [`RxRing::receive`] lends the frame as `&mut [u8]`;
//! when the [`RxFrame`] goes, the descriptor is re-armed (EOWN = 1, written last) and BUFCNT
//! is decremented once per descriptor with BUFCDEC, which also makes a controller that
//! stalled on this descriptor (RXBUFNA) fetch it again (§3.5).
//!
//! [`RxFrame::keep`] swaps the frame's buffer for a spare one, so the stack can hold
//! received bytes in place, with no copy, while the ring keeps receiving.

use super::dma::{Buffer, DmaWindow, FRAME_OFFSET, RX_DMA_SIZE, first_bits, link_ring};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};
use mzw1_pac::desc::{DescHeader, RxStatusHi, RxStatusLo};
use mzw1_pac::eth::{Con1, Irq};
use mzw1_pac::{Descriptor, EthRegisters};

/// Smallest frame on the wire, FCS included (IEEE 802.3 minimum frame size).
const MIN_FRAME_WITH_FCS: u16 = 64;
/// Bytes of the frame check sequence that the controller stores after each frame.
const FCS_LEN: u16 = 4;

/// Receive counters. Every frame the controller hands over is either delivered or counted
/// in exactly one `dropped_*` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Frames lent to the stack.
    pub frames: u32,
    /// Bytes of those frames (without FCS).
    pub bytes: u32,
    /// Frames the status vector marks as not received OK (CRC, code violation, length).
    pub dropped_status: u32,
    /// Runt frames (shorter than 64 bytes with FCS).
    pub dropped_runt: u32,
    /// Frames spread over several descriptors: longer than the 1518-byte maximum.
    pub dropped_oversize: u32,
    /// Descriptors found without SOP where a frame should start (never expected).
    pub dropped_stray: u32,
    /// `keep` calls refused because no spare buffer was free.
    pub keep_refused: u32,
}

/// A buffer the stack kept with [`RxFrame::keep`]: its bytes stay in place until
/// [`RxRing::release`].
#[derive(Debug, PartialEq, Eq)]
pub struct RxBuf {
    index: u8,
}

/// The receive half of the MAC.
pub struct RxRing<'a> {
    regs: &'a EthRegisters,
    desc: &'a [Descriptor],
    bufs: NonNull<Buffer>,
    buf_count: u8,
    window: DmaWindow,
    /// Next descriptor the controller will complete.
    next: u8,
    /// Buffer index attached to each descriptor.
    attached: [u8; 32],
    /// Bit i: buffer i is spare (neither attached nor kept).
    spare: u32,
    /// How many bits of `spare` are set, counted as buffers come and go: TCP asks it
    /// for every frame (its receive window), and MIPS32 has no popcount instruction (a
    /// count of the mask is 17 instructions).
    spare_count: u8,
    pub(crate) stats: RxStats,
    _bufs: PhantomData<&'a mut [Buffer]>,
}

impl<'a> RxRing<'a> {
    /// A ring over `desc` and `buf_count` buffers at `bufs`; the first `desc.len()` buffers
    /// are attached, the rest are spare. Nothing is handed to the controller yet.
    pub(crate) fn new(
        regs: &'a EthRegisters,
        desc: &'a [Descriptor],
        bufs: &'a mut [Buffer],
        window: DmaWindow,
    ) -> Self {
        let mut attached = [0u8; 32];
        for (i, a) in attached.iter_mut().enumerate().take(desc.len()) {
            *a = i as u8;
        }
        let buf_count = bufs.len() as u8;
        let spare = first_bits(bufs.len()) & !first_bits(desc.len());
        RxRing {
            regs,
            desc,
            bufs: NonNull::from(bufs).cast(),
            buf_count,
            window,
            next: 0,
            attached,
            spare,
            spare_count: spare.count_ones() as u8,
            stats: RxStats::default(),
            _bufs: PhantomData,
        }
    }

    /// Links every descriptor into a ring, arms it (EOWN = 1) and returns the physical
    /// address of the first one, for ETHRXST. The controller must not be receiving.
    pub(crate) fn arm_all(&mut self) -> u32 {
        self.next = 0;
        let first = link_ring(self.desc, &self.window);
        for i in 0..self.desc.len() {
            self.rearm(i);
        }
        first
    }

    /// Hands descriptor `i` back to the controller with its attached buffer. Not inlined
    /// at its six callers: that cost 368 bytes of flash, and the registers it tied up
    /// in `process_rx` cost more instructions than the call (echo16 -30, measured).
    #[inline(never)]
    fn rearm(&self, i: usize) {
        let (Some(d), Some(&b)) = (self.desc.get(i), self.attached.get(i)) else {
            return;
        };
        let buf = self.buffer_ptr(b);
        // SAFETY: the buffer belongs to the DMA region and is attached to this descriptor
        // only; the controller writes at most RX_DMA_SIZE bytes from FRAME_OFFSET.
        unsafe { d.set_buffer(self.window.phys(buf) + FRAME_OFFSET as u32) };
        d.set_status(0, 0);
        // The buffer address must be visible before the controller can own the descriptor.
        fence(Ordering::Release);
        d.set_header(DescHeader::NPV | DescHeader::EOWN);
    }

    /// Re-arms descriptor `i` and tells the controller one descriptor was consumed.
    #[inline]
    fn give_back(&self, i: usize) {
        self.rearm(i);
        fence(Ordering::Release);
        self.regs.con1.set(Con1::BUFCDEC);
    }

    #[inline(always)]
    fn advance(&mut self) {
        let n = self.desc.len() as u8;
        self.next = if self.next + 1 >= n { 0 } else { self.next + 1 };
    }

    #[inline(always)]
    fn buffer_ptr(&self, b: u8) -> *mut Buffer {
        // `b` < buf_count by construction of `attached` and `spare`.
        debug_assert!(b < self.buf_count);
        // SAFETY: in bounds of the buffer array this ring was built over.
        unsafe { self.bufs.as_ptr().add(b as usize) }
    }

    /// The next good frame, lent in place; `None` when the controller has not completed
    /// another descriptor. Bad frames met on the way are returned to the controller and
    /// counted.
    pub fn receive(&mut self) -> Option<RxFrame<'_, 'a>> {
        loop {
            let i = self.next as usize;
            let d = self.desc.get(i)?;
            let h = d.header();
            if h.contains(DescHeader::EOWN) {
                // Ring drained: let the level interrupt PKTPEND fire again (the ISR masks
                // it until software has consumed what BUFCNT counts, §3.3 / §5.2).
                self.regs.ien.set(Irq::PKTPEND);
                return None;
            }
            // Read the status and the data only after seeing EOWN = 0.
            fence(Ordering::Acquire);
            if !h.contains(DescHeader::SOP) {
                self.stats.dropped_stray += 1;
                self.give_back(i);
                self.advance();
                continue;
            }
            if !h.contains(DescHeader::EOP) {
                self.drop_multi_descriptor_frame();
                continue;
            }
            let status = d.rx_status();
            let count = h.byte_count();
            if !status.hi.contains(RxStatusHi::RECEIVED_OK) {
                self.stats.dropped_status += 1;
            } else if status.lo.contains(RxStatusLo::RUNT) || count < MIN_FRAME_WITH_FCS {
                self.stats.dropped_runt += 1;
            } else {
                let len = count - FCS_LEN;
                self.stats.frames += 1;
                self.stats.bytes = self.stats.bytes.wrapping_add(len as u32);
                return Some(RxFrame {
                    ring: self,
                    len,
                    kept: false,
                });
            }
            self.give_back(i);
            self.advance();
        }
    }

    /// Drops a frame that spans descriptors (only frames above the maximum length do,
    /// since RXBUF_SZ covers EMAC1MAXF). The controller releases the SOP descriptor last,
    /// so every descriptor up to EOP is already software-owned.
    fn drop_multi_descriptor_frame(&mut self) {
        self.stats.dropped_oversize += 1;
        for _ in 0..self.desc.len() {
            let i = self.next as usize;
            let Some(d) = self.desc.get(i) else { return };
            let h = d.header();
            if h.contains(DescHeader::EOWN) {
                // Not expected (EOP not yet written): leave the rest for the next call.
                return;
            }
            self.give_back(i);
            self.advance();
            if h.contains(DescHeader::EOP) {
                return;
            }
        }
    }

    /// The bytes of a kept buffer (the whole buffer after the frame offset; the frame is
    /// at its start, as it was received).
    pub fn kept(&mut self, b: &RxBuf) -> &mut [u8] {
        let p = self.buffer_ptr(b.index);
        // SAFETY: a kept buffer is detached from every descriptor, so only this borrow
        // (tied to `&mut self`) reaches it.
        unsafe { Buffer::frame(p, RX_DMA_SIZE) }
    }

    /// Returns a kept buffer to the spare pool. Not inlined: its callers are many and
    /// none is on a path where the call costs (measured: the same instruction counts,
    /// 284 bytes less flash).
    #[inline(never)]
    pub fn release(&mut self, b: RxBuf) {
        let bit = 1u32.checked_shl(u32::from(b.index)).unwrap_or(0);
        if self.spare & bit == 0 && bit != 0 {
            self.spare |= bit;
            self.spare_count += 1;
        }
    }

    /// Spare buffers available for [`RxFrame::keep`].
    pub fn spare_buffers(&self) -> u32 {
        debug_assert_eq!(u32::from(self.spare_count), self.spare.count_ones());
        u32::from(self.spare_count)
    }

    /// Counters.
    pub fn stats(&self) -> &RxStats {
        &self.stats
    }
}

/// A received frame, lent in place (without its FCS). Dropping it gives the descriptor
/// back to the controller.
pub struct RxFrame<'r, 'a> {
    ring: &'r mut RxRing<'a>,
    len: u16,
    kept: bool,
}

impl RxFrame<'_, '_> {
    /// The frame bytes, from the destination MAC address to the end of the payload.
    #[inline]
    pub fn data(&mut self) -> &mut [u8] {
        let i = self.ring.next as usize;
        let b = self.ring.attached.get(i).copied().unwrap_or(0);
        let p = self.ring.buffer_ptr(b);
        // SAFETY: the descriptor is software-owned until this frame is dropped.
        unsafe { Buffer::frame(p, self.len as usize) }
    }

    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame is empty (never: frames are at least 60 bytes).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `len` frame bytes from `from` into kept buffer `to` at `at` (to coalesce a
    /// small segment behind data already kept). False if out of range.
    pub fn append_to_kept(&mut self, from: usize, len: usize, to: &RxBuf, at: usize) -> bool {
        let i = self.ring.next as usize;
        let Some(&src) = self.ring.attached.get(i) else {
            return false;
        };
        if src == to.index {
            return false;
        }
        let (sp, dp) = (self.ring.buffer_ptr(src), self.ring.buffer_ptr(to.index));
        // SAFETY: two different buffers: the lent frame's and a kept one, both reachable
        // only through this ring, which this frame borrows mutably.
        let (s, d) = unsafe {
            (
                Buffer::frame(sp, self.len as usize),
                Buffer::frame(dp, RX_DMA_SIZE),
            )
        };
        match (s.get(from..from + len), d.get_mut(at..at + len)) {
            (Some(s), Some(d)) => {
                crate::copy::copy(d, s);
                true
            }
            _ => false,
        }
    }

    /// Keeps the frame's buffer for the stack: the descriptor is re-armed with a spare
    /// buffer when the frame is dropped. `None` (the frame is then given back as usual)
    /// when no spare is free. By reference, not by value: the caller drops the frame in
    /// one place whatever happened to it.
    pub fn keep(&mut self) -> Option<RxBuf> {
        let ring = &mut *self.ring;
        if ring.spare == 0 {
            ring.stats.keep_refused += 1;
            return None;
        }
        let spare = ring.spare.trailing_zeros() as u8;
        let i = ring.next as usize;
        let slot = ring.attached.get_mut(i)?;
        let kept = core::mem::replace(slot, spare);
        ring.spare &= !(1 << spare);
        ring.spare_count -= 1;
        self.kept = true;
        Some(RxBuf { index: kept })
    }
}

impl Drop for RxFrame<'_, '_> {
    fn drop(&mut self) {
        // Kept or not, the descriptor goes back (with a spare buffer when kept).
        let _ = self.kept;
        let i = self.ring.next as usize;
        self.ring.give_back(i);
        self.ring.advance();
    }
}
