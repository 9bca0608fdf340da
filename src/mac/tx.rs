//! The transmit ring: frames are written straight into a DMA buffer and handed over.
//!
//! `TXB` buffers and `TXB` linked descriptors (a ring). A buffer is *held* while the stack
//! owns it (allocated, being written, or retained for retransmission) and *in flight*
//! while a descriptor carries it to the controller. A buffer is in at most one descriptor
//! at a time, so with as many descriptors as buffers the descriptor ring can never
//! overflow. Hand-over: buffer address and cleared status first, then the header with
//! EOWN = 1 after a release fence, then ETHCON1.TXRTS (pic32-eth-behaviour.md §2.1, §2.3).
//! The controller clears EOWN on the SOP descriptor last, after writing the status vector
//! there (§2.4).

use super::dma::{Buffer, DmaWindow, FRAME_OFFSET, MAX_TX_FRAME, first_bits, link_ring};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};
use mzw1_pac::desc::{DescHeader, TxStatusHi};
use mzw1_pac::eth::Con1;
use mzw1_pac::{Descriptor, EthRegisters};

/// Shortest frame the stack may hand over: an Ethernet header. The MAC pads to 60 bytes
/// (EMAC1CFG2.PADENABLE) and appends the FCS (CRCENABLE).
pub const MIN_TX_FRAME: usize = 14;

/// Transmit counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Frames the controller reported sent.
    pub frames: u32,
    /// Bytes of those frames (as handed over, without padding and FCS).
    pub bytes: u32,
    /// Frames the controller reported not sent (abort: underrun, giant, collisions); the
    /// status vector's reason bits are counted in `aborted_*` below.
    pub aborted: u32,
    /// Of those, underruns.
    pub aborted_underrun: u32,
    /// Of those, giants (longer than EMAC1MAXF).
    pub aborted_giant: u32,
    /// Of those, excessive or late collisions, or excessive deferral.
    pub aborted_collision: u32,
    /// `alloc` calls that found no free buffer.
    pub alloc_failed: u32,
    /// Frames cancelled before the controller sent them (DMA recovery after a bus error).
    pub cancelled: u32,
    /// Times the driver restarted a TX DMA that had stopped with frames still owned.
    pub restarts: u32,
}

/// Why a frame was not handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// The buffer is still in flight from an earlier hand-over.
    InFlight,
    /// The length is outside 14..=1514 bytes.
    BadLength,
}

/// A TX buffer held by the stack. Not `Copy`: the handle is the ownership.
#[derive(Debug, PartialEq, Eq)]
pub struct TxBuf {
    index: u8,
}

impl TxBuf {
    /// The buffer's index in the pool (stable while held).
    pub fn index(&self) -> u8 {
        self.index
    }
}

/// The transmit half of the MAC.
pub struct TxRing<'a> {
    regs: &'a EthRegisters,
    desc: &'a [Descriptor],
    bufs: NonNull<Buffer>,
    window: DmaWindow,
    /// Bit i: buffer i is held by the stack. The bits above the last buffer are set for
    /// good (there is no buffer there to be free), so a free mask needs no masking.
    held: u32,
    /// Bit i: buffer i is carried by a descriptor the controller has not completed.
    in_flight: u32,
    /// Buffer index carried by each descriptor.
    carried: [u8; 32],
    /// Next descriptor to fill.
    head: u8,
    /// Oldest descriptor not yet completed.
    tail: u8,
    /// Descriptors between tail and head.
    queued: u8,
    pub(crate) stats: TxStats,
    _bufs: PhantomData<&'a mut [Buffer]>,
}

impl<'a> TxRing<'a> {
    pub(crate) fn new(
        regs: &'a EthRegisters,
        desc: &'a [Descriptor],
        bufs: &'a mut [Buffer],
        window: DmaWindow,
    ) -> Self {
        debug_assert_eq!(desc.len(), bufs.len());
        TxRing {
            regs,
            desc,
            bufs: NonNull::from(bufs).cast(),
            window,
            held: !first_bits(desc.len()),
            in_flight: 0,
            carried: [0; 32],
            head: 0,
            tail: 0,
            queued: 0,
            stats: TxStats::default(),
            _bufs: PhantomData,
        }
    }

    #[inline(always)]
    fn count(&self) -> u8 {
        self.desc.len() as u8
    }

    /// Links the descriptors into a ring, all software-owned, and returns the physical
    /// address of the first one, for ETHTXST. The controller must not be transmitting.
    /// Frames still queued are cancelled; held buffers stay held.
    pub(crate) fn reset(&mut self) -> u32 {
        for d in self.desc {
            d.set_header(DescHeader::NPV);
        }
        let first = link_ring(self.desc, &self.window);
        self.stats.cancelled += self.queued as u32;
        self.in_flight = 0;
        self.head = 0;
        self.tail = 0;
        self.queued = 0;
        first
    }

    /// A free buffer, or `None` when every buffer is held or in flight.
    pub fn alloc(&mut self) -> Option<TxBuf> {
        let free = !(self.held | self.in_flight);
        if free == 0 {
            self.stats.alloc_failed += 1;
            return None;
        }
        let index = free.trailing_zeros() as u8;
        self.held |= 1 << index;
        Some(TxBuf { index })
    }

    /// Free buffers.
    pub fn free_buffers(&self) -> u32 {
        (!(self.held | self.in_flight)).count_ones()
    }

    /// Whether more than `n` buffers are free: the free mask with its lowest `n` bits
    /// cleared is not empty. For the small `n` of the callers' reserves this is a few
    /// instructions, where a count is a software popcount (MIPS32 has none).
    #[inline]
    pub fn free_more_than(&self, n: u32) -> bool {
        let mut free = !(self.held | self.in_flight);
        for _ in 0..n {
            free &= free.wrapping_sub(1);
        }
        free != 0
    }

    /// The writable frame area of a held buffer (1514 bytes); `None` while it is in
    /// flight, since the controller may be reading it.
    pub fn buffer(&mut self, b: &TxBuf) -> Option<&mut [u8]> {
        if self.in_flight & (1 << b.index) != 0 {
            return None;
        }
        let p = self.buffer_ptr(b.index);
        // SAFETY: a held buffer that is not in flight is reached only through this borrow.
        Some(unsafe { Buffer::frame(p, MAX_TX_FRAME) })
    }

    /// Whether the controller still has the buffer.
    pub fn is_in_flight(&self, b: &TxBuf) -> bool {
        self.in_flight & (1 << b.index) != 0
    }

    /// Sends the first `len` bytes of the buffer and gives it up: it returns to the pool
    /// once sent.
    pub fn send(&mut self, b: TxBuf, len: usize) -> Result<(), TxError> {
        self.queue(b.index, len)?;
        self.held &= !(1 << b.index);
        self.kick();
        Ok(())
    }

    /// Sends the first `len` bytes of the buffer and keeps holding it, so it can be sent
    /// again (a TCP retransmission) without a copy.
    pub fn send_retained(&mut self, b: &TxBuf, len: usize) -> Result<(), TxError> {
        self.queue(b.index, len)?;
        self.kick();
        Ok(())
    }

    /// Gives a held buffer back; if it is in flight it returns to the pool once sent.
    pub fn release(&mut self, b: TxBuf) {
        self.held &= !(1 << b.index);
    }

    #[inline(always)]
    fn buffer_ptr(&self, i: u8) -> *mut Buffer {
        debug_assert!(i < self.count());
        // SAFETY: `i` < the number of buffers this ring was built over.
        unsafe { self.bufs.as_ptr().add(i as usize) }
    }

    fn queue(&mut self, index: u8, len: usize) -> Result<(), TxError> {
        let bit = 1u32 << index;
        if self.in_flight & bit != 0 {
            return Err(TxError::InFlight);
        }
        if !(MIN_TX_FRAME..=MAX_TX_FRAME).contains(&len) {
            return Err(TxError::BadLength);
        }
        let h = self.head as usize;
        // The descriptor at head is software-owned: queued < count because each queued
        // descriptor carries a distinct in-flight buffer.
        let Some(d) = self.desc.get(h) else {
            return Err(TxError::InFlight);
        };
        let buf = self.buffer_ptr(index);
        // SAFETY: the buffer is in the DMA window, and from here until the controller
        // completes the descriptor it is only read (`buffer` refuses in-flight buffers).
        unsafe { d.set_buffer(self.window.phys(buf) + FRAME_OFFSET as u32) };
        d.set_status(0, 0);
        fence(Ordering::Release);
        d.set_header(
            (DescHeader::SOP | DescHeader::EOP | DescHeader::NPV | DescHeader::EOWN)
                .with_byte_count(len as u16),
        );
        if let Some(c) = self.carried.get_mut(h) {
            *c = index;
        }
        self.in_flight |= bit;
        // From `h`, not `self.head`: read again after the store to `carried`, which the
        // compiler cannot tell apart from it.
        let next = h as u8 + 1;
        self.head = if next >= self.count() { 0 } else { next };
        self.queued += 1;
        Ok(())
    }

    /// Starts the TX DMA (TXRTS). Setting it while already set does nothing (§2.3).
    #[inline(always)]
    fn kick(&self) {
        // The descriptor writes must reach memory before the controller looks.
        fence(Ordering::Release);
        self.regs.con1.set(Con1::TXRTS);
    }

    /// Collects completed descriptors: counts them and frees buffers nobody holds. If
    /// the controller stopped (TXRTS = 0) with frames still owned, restarts it, which
    /// covers the race where EOWN was set just as the DMA finished (§2.3).
    pub fn reap(&mut self) {
        while self.queued > 0 {
            let t = self.tail as usize;
            let Some(d) = self.desc.get(t) else { break };
            if d.header().contains(DescHeader::EOWN) {
                break;
            }
            fence(Ordering::Acquire);
            let status = d.tx_status();
            if status.done() {
                self.stats.frames += 1;
                self.stats.bytes = self.stats.bytes.wrapping_add(status.byte_count() as u32);
            } else {
                self.stats.aborted += 1;
                let hi = status.hi;
                if hi.contains(TxStatusHi::UNDERRUN) {
                    self.stats.aborted_underrun += 1;
                }
                if hi.contains(TxStatusHi::GIANT) {
                    self.stats.aborted_giant += 1;
                }
                if hi.intersects(
                    TxStatusHi::MAX_COLLISIONS
                        | TxStatusHi::LATE_COLLISION
                        | TxStatusHi::EXCESSIVE_DEFER,
                ) {
                    self.stats.aborted_collision += 1;
                }
            }
            let index = self.carried.get(t).copied().unwrap_or(0);
            self.in_flight &= !(1 << index);
            self.tail = if self.tail + 1 >= self.count() {
                0
            } else {
                self.tail + 1
            };
            self.queued -= 1;
        }
        if self.queued > 0 && !self.regs.con1.read().contains(Con1::TXRTS) {
            self.stats.restarts += 1;
            self.kick();
        }
    }

    /// Frames handed over and not yet completed.
    pub fn queued(&self) -> u32 {
        self.queued as u32
    }

    /// Counters.
    pub fn stats(&self) -> &TxStats {
        &self.stats
    }
}
