//! The Ethernet controller's side, played in software between measured regions.
//!
//! The register blocks (`EthRegisters`, `EvicRegisters`, `CfgRegisters`) are plain RAM:
//! a write to a CLR/SET/INV companion lands in that companion's word and changes nothing
//! else, so the register values the driver reads are the ones the driver wrote with
//! `write` or the ones set here. Before an interrupt the stand-in writes a received frame
//! into the next RX descriptor exactly as the controller does (frame, padding and FCS in
//! the buffer; status vector; header with SOP | EOP and the byte count, EOWN cleared
//! last), raises BUFCNT and PKTPEND and sets IFS5.ETHIF. After it, it checks that the
//! driver acknowledged the interrupt and gave the descriptor back, and completes every TX
//! descriptor handed over (status vector with DONE, EOWN cleared), keeping a copy of the
//! frame for the client to check.
//!
//! The MIIM registers read idle (EMAC1MIND = 0) and every PHY register reads
//! [`PHY_ANSWER`]: BMCR without RESET, BMSR with link and auto-negotiation complete, and
//! ANAR & ANLPAR with 100BASE-TX full duplex, so the driver's PHY state machine brings
//! the link up from `Mac::poll` with no change to the driver.

use crate::BenchError;
use core::cell::UnsafeCell;
use mzw1_pac::cfg::CfgRegisters;
use mzw1_pac::desc::{DescHeader, RxStatusHi, RxStatusLo, TxStatusHi};
use mzw1_pac::eth::{Irq, Stat};
use mzw1_pac::evic::ETH_IFS_MASK;
use mzw1_pac::phy::{Anar, Bmsr};
use mzw1_pac::reg::Reg;
use mzw1_pac::{Descriptor, EthRegisters, EvicRegisters};
use mzw1_wss::mac::{DmaWindow, Peripherals};

/// What every PHY register reads: no BMCR.RESET; BMSR link up and auto-negotiation done;
/// ANAR and ANLPAR both 100BASE-TX full duplex (0x0124).
pub const PHY_ANSWER: u32 =
    (Bmsr::LINK_STATUS.bits() | Bmsr::AN_COMPLETE.bits() | Anar::TX100_FDX.bits()) as u32;

/// Where the CPU sees physical address 0: KSEG0 (Malta RAM is cached KSEG0 from
/// 0x80000000; QEMU models no caches, so the CPU and the "DMA" always agree).
#[cfg(target_os = "none")]
const KSEG0: usize = 0x8000_0000;

/// The DMA window for buffers in KSEG0: physical = virtual & 0x1FFFFFFF.
#[cfg(target_os = "none")]
pub const WINDOW: DmaWindow = {
    // SAFETY: the stand-in controller reaches CPU address v at physical v - 0x80000000,
    // the KSEG0 mapping, for the whole RAM.
    unsafe { DmaWindow::new(KSEG0, 0) }
};

/// The CPU address of a physical address in RAM.
#[cfg(target_os = "none")]
#[inline]
fn virt(phys: u32) -> usize {
    phys as usize | KSEG0
}

/// Where the host's DMA region starts (see [`host_window`]); 0 until it is set.
#[cfg(not(target_os = "none"))]
static HOST_VIRT_BASE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The physical address the host's DMA region starts at: not 0, so that a null descriptor
/// or buffer address still points nowhere, as on the silicon.
#[cfg(not(target_os = "none"))]
const HOST_PHYS_BASE: u32 = 0x1000;

/// The DMA window on the host (`cargo bench --bench host`), where there is no fixed
/// mapping to lean on: the region is a static anywhere in a 64-bit address space, so the
/// window puts its first byte at physical [`HOST_PHYS_BASE`], and the stand-in
/// controller undoes the same mapping. One region per process: a later call moves the
/// mapping.
#[cfg(not(target_os = "none"))]
pub fn host_window<T>(region: *const T) -> DmaWindow {
    let base = region as usize;
    HOST_VIRT_BASE.store(base, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: the stand-in controller reaches CPU address v at physical
    // v - base + HOST_PHYS_BASE (`virt` below), for the whole region, which the driver
    // only ever hands it addresses in.
    unsafe { DmaWindow::new(base, HOST_PHYS_BASE) }
}

/// The CPU address of a physical address in the host's DMA region.
#[cfg(not(target_os = "none"))]
#[inline]
fn virt(phys: u32) -> usize {
    HOST_VIRT_BASE
        .load(core::sync::atomic::Ordering::Relaxed)
        .wrapping_add(phys.wrapping_sub(HOST_PHYS_BASE) as usize)
}

/// A register block's storage: words in RAM, as aligned as the silicon's.
#[repr(C, align(16))]
struct Block<const N: usize>(UnsafeCell<[u32; N]>);

// SAFETY: the words are only accessed through the register types' volatile accessors
// (and the companion reads below), one context at a time.
unsafe impl<const N: usize> Sync for Block<N> {}

const ETH_WORDS: usize = core::mem::size_of::<EthRegisters>() / 4;
const EVIC_WORDS: usize = core::mem::size_of::<EvicRegisters>() / 4;
const CFG_WORDS: usize = core::mem::size_of::<CfgRegisters>() / 4;

static ETH: Block<ETH_WORDS> = Block(UnsafeCell::new([0; ETH_WORDS]));
static EVIC: Block<EVIC_WORDS> = Block(UnsafeCell::new([0; EVIC_WORDS]));
static CFG: Block<CFG_WORDS> = Block(UnsafeCell::new([0; CFG_WORDS]));

fn eth() -> &'static EthRegisters {
    // SAFETY: ETH is as large and as aligned as the register block, whose every field is
    // a volatile cell for which zero is a valid value.
    unsafe { &*(ETH.0.get() as *const EthRegisters) }
}

fn evic() -> &'static EvicRegisters {
    // SAFETY: as for `eth`.
    unsafe { &*(EVIC.0.get() as *const EvicRegisters) }
}

fn cfg() -> &'static CfgRegisters {
    // SAFETY: as for `eth`.
    unsafe { &*(CFG.0.get() as *const CfgRegisters) }
}

/// A companion word of a register slot (CLR at +4; SET and INV follow).
#[derive(Clone, Copy)]
enum Companion {
    Clr = 1,
}

/// Reads a companion word of a register slot (what the driver last wrote there).
fn companion<T: mzw1_pac::reg::RegValue>(r: &Reg<T>, which: Companion) -> u32 {
    let p = r as *const Reg<T> as *const u32;
    // SAFETY: a `Reg` is four words; the companions are words 1..=3.
    unsafe { core::ptr::read_volatile(p.add(which as usize)) }
}

/// Zeroes the companion words of a register slot.
fn clear_companions<T: mzw1_pac::reg::RegValue>(r: &Reg<T>) {
    let p = r as *const Reg<T> as *mut u32;
    for i in 1..4 {
        // SAFETY: as above; the words are RAM cells of a static.
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
    }
}

/// A descriptor at a physical address.
fn descriptor(phys: u32) -> &'static Descriptor {
    // SAFETY: the driver only hands the controller addresses of descriptors in its DMA
    // region (a static in RAM), and descriptors are volatile cells.
    unsafe { &*(virt(phys) as *const Descriptor) }
}

/// The largest frame kept per capture slot (the MAC's maximum without FCS is 1514).
pub const CAPTURE_FRAME: usize = 1536;
/// Frames one capture holds.
pub const CAPTURE_FRAMES: usize = 4;

/// Frames the firmware sent since the capture was last cleared.
pub struct Capture {
    frames: [[u8; CAPTURE_FRAME]; CAPTURE_FRAMES],
    lens: [usize; CAPTURE_FRAMES],
    n: usize,
}

impl Capture {
    /// An empty capture, for a `static`.
    pub const fn new() -> Capture {
        Capture {
            frames: [[0; CAPTURE_FRAME]; CAPTURE_FRAMES],
            lens: [0; CAPTURE_FRAMES],
            n: 0,
        }
    }

    /// Forgets the frames.
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Frames captured.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no frame was captured.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Frame `i`.
    pub fn frame(&self, i: usize) -> Option<&[u8]> {
        if i >= self.n {
            return None;
        }
        let len = *self.lens.get(i)?;
        self.frames.get(i)?.get(..len)
    }

    fn push(&mut self, data: &[u8]) -> Result<(), BenchError> {
        let (Some(slot), Some(len)) = (self.frames.get_mut(self.n), self.lens.get_mut(self.n))
        else {
            return Err(BenchError::TxOverflow);
        };
        let dst = slot.get_mut(..data.len()).ok_or(BenchError::TxMalformed)?;
        dst.copy_from_slice(data);
        *len = data.len();
        self.n += 1;
        Ok(())
    }
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new()
    }
}

/// Counters of the stand-in controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardStats {
    /// Frames written into RX descriptors.
    pub rx_frames: u32,
    /// TX descriptors completed.
    pub tx_frames: u32,
}

/// The stand-in controller.
pub struct Board {
    /// Physical address of the RX descriptor the next frame goes into.
    rx_next: u32,
    /// Physical address of the next TX descriptor to complete.
    tx_next: u32,
    /// RX descriptors filled and not yet given back.
    rx_lent: [u32; 32],
    rx_lent_n: usize,
    /// Counters.
    pub stats: BoardStats,
}

impl Board {
    /// The register blocks in RAM, made to look like a board whose PHY has a link:
    /// Ethernet module enabled, MIIM idle, PHY answering [`PHY_ANSWER`]. Call once,
    /// before the driver starts.
    pub fn peripherals() -> Peripherals<'static> {
        let e = eth();
        e.mind.write(mzw1_pac::eth::Mind::empty());
        e.mrdd.write(PHY_ANSWER);
        cfg().pmd3.write(mzw1_pac::cfg::Pmd3::empty());
        Peripherals {
            eth: e,
            evic: evic(),
            cfg: cfg(),
        }
    }

    /// Takes over the descriptor lists the driver wrote into ETHRXST and ETHTXST.
    pub fn attach() -> Board {
        let e = eth();
        Board {
            rx_next: e.rxst.read(),
            tx_next: e.txst.read(),
            rx_lent: [0; 32],
            rx_lent_n: 0,
            stats: BoardStats::default(),
        }
    }

    /// Receives `frame` (without FCS) as the controller would, and raises the interrupt.
    pub fn deliver(&mut self, frame: &[u8]) -> Result<(), BenchError> {
        let d = descriptor(self.rx_next);
        let h = d.header();
        if !h.contains(DescHeader::EOWN) || self.rx_lent_n >= self.rx_lent.len() {
            return Err(BenchError::RxNoDescriptor);
        }
        // The wire pads to 60 bytes; the controller stores the FCS after the frame.
        let padded = frame.len().max(60);
        let total = padded + 4;
        if total > mzw1_wss::mac::MAX_FRAME {
            return Err(BenchError::RxNoDescriptor);
        }
        let dst = virt(d.buffer()) as *mut u8;
        // SAFETY: the descriptor is controller-owned (EOWN = 1), so its buffer, RXBUF_SZ
        // (1536) bytes from the address the driver wrote, is ours to write; `total` is
        // at most 1518.
        let buf = unsafe { core::slice::from_raw_parts_mut(dst, total) };
        let (body, fcs) = buf.split_at_mut(padded);
        let (data, pad) = body.split_at_mut(frame.len());
        data.copy_from_slice(frame);
        pad.fill(0);
        fcs.copy_from_slice(&crate::client::crc32(body).to_le_bytes());

        let broadcast = frame.get(..6) == Some(&[0xFF; 6][..]);
        let lo = if broadcast {
            RxStatusLo::BROADCAST_MATCH
        } else {
            RxStatusLo::UNICAST_MATCH
        };
        let mut hi = RxStatusHi::RECEIVED_OK | RxStatusHi::from_bits_retain(total as u32);
        if broadcast {
            hi |= RxStatusHi::BROADCAST;
        }
        d.set_status(lo.bits(), hi.bits());
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        // EOWN cleared last, with SOP, EOP and the byte count (FCS included).
        let keep = DescHeader::from_bits_retain(h.bits() & !DescHeader::HW_WRITTEN.bits());
        d.set_header((keep | DescHeader::SOP | DescHeader::EOP).with_byte_count(total as u16));
        if let Some(slot) = self.rx_lent.get_mut(self.rx_lent_n) {
            *slot = self.rx_next;
            self.rx_lent_n += 1;
        }
        self.rx_next = d.next();
        self.stats.rx_frames += 1;

        let e = eth();
        let bufcnt = e.stat.read().bufcnt() as u32 + 1;
        e.stat.write(Stat::from_bits_retain(bufcnt << 16));
        e.irq.write(e.irq.read() | Irq::PKTPEND);
        let ifs = evic().eth_ifs();
        ifs.write(ifs.read() | ETH_IFS_MASK);
        Ok(())
    }

    /// After the interrupt (or a poll): checks the interrupt was acknowledged, takes back
    /// the RX descriptors the driver re-armed, and sends every TX frame handed over,
    /// copying it into `out`.
    pub fn settle(&mut self, out: &mut Capture) -> Result<(), BenchError> {
        let e = eth();
        let ifs = evic().eth_ifs();
        let flagged = ifs.read() & ETH_IFS_MASK != 0;
        let acked = companion(ifs, Companion::Clr) & ETH_IFS_MASK != 0;
        clear_companions(ifs);
        if flagged {
            if !acked {
                return Err(BenchError::IrqNotAcknowledged);
            }
            ifs.write(ifs.read() & !ETH_IFS_MASK);
        }

        // Sticky ETHIRQ flags the driver cleared through ETHIRQCLR.
        let cleared = Irq::from_bits_retain(companion(&e.irq, Companion::Clr)) & Irq::STICKY;
        e.irq.write(e.irq.read() - cleared);
        clear_companions(&e.irq);
        clear_companions(&e.ien);

        // RX: a lent descriptor the driver re-armed (EOWN = 1) came with one BUFCDEC.
        let mut bufcnt = e.stat.read().bufcnt() as u32;
        let mut i = 0;
        while i < self.rx_lent_n {
            let phys = self.rx_lent.get(i).copied().unwrap_or(0);
            if descriptor(phys).header().contains(DescHeader::EOWN) {
                bufcnt = bufcnt.saturating_sub(1);
                let last = self.rx_lent_n - 1;
                self.rx_lent.swap(i, last);
                self.rx_lent_n = last;
            } else {
                i += 1;
            }
        }
        e.stat.write(Stat::from_bits_retain(bufcnt << 16));
        if bufcnt == 0 {
            e.irq.write(e.irq.read() - Irq::PKTPEND);
        }

        // TX: the DMA walks the list from where it stopped while descriptors are owned.
        let mut sent = false;
        for _ in 0..32 {
            let d = descriptor(self.tx_next);
            let h = d.header();
            if !h.contains(DescHeader::EOWN) {
                break;
            }
            let len = h.byte_count() as usize;
            if !h.contains(DescHeader::SOP | DescHeader::EOP) || len > CAPTURE_FRAME {
                return Err(BenchError::TxMalformed);
            }
            // SAFETY: the driver handed the buffer over with the descriptor; it holds
            // `len` frame bytes from the address in the descriptor.
            let data = unsafe { core::slice::from_raw_parts(virt(d.buffer()) as *const u8, len) };
            out.push(data)?;
            let wire = len.max(60) + 4;
            d.set_status(
                wire as u32,
                (TxStatusHi::DONE | TxStatusHi::from_bits_retain(len as u32)).bits(),
            );
            core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
            d.set_header(h - DescHeader::EOWN);
            self.tx_next = d.next();
            self.stats.tx_frames += 1;
            sent = true;
        }
        // Frames sent: TXDONE (sticky, enabled in ETHIEN). The interrupt it would raise is
        // not run; the next poll or interrupt acknowledges the flag. The TX DMA ran out of
        // owned descriptors and stopped (TXRTS, written through the SET companion, reads 0
        // again); BUFCDEC writes were accounted for above.
        if sent {
            e.irq.write(e.irq.read() | Irq::TXDONE);
        }
        clear_companions(&e.con1);
        Ok(())
    }
}
