//! The Ethernet interrupt (vector 165) and what it leaves for the poll loop.
//!
//! [`interrupt`] is the whole ISR-side driver: it needs only the register blocks and an
//! [`IrqShared`], so an application can call it from the vector without owning the
//! [`Mac`](super::Mac). It follows Microchip's order (pic32-eth-behaviour.md §5.2): read
//! ETHIRQ & ETHIEN, mask the level source PKTPEND until software has drained the ring,
//! clear the sticky flags through ETHIRQCLR, record what happened, and clear IFS5.ETHIF
//! last, because the EVIC re-latches a request that is still asserted (§5.1).
//!
//! The poll loop takes the recorded events and counts from the same [`IrqShared`] inside a
//! `critical_section`, so nothing the ISR saw is lost or counted twice.

use core::cell::Cell;
use critical_section::Mutex;
use mzw1_pac::eth::Irq;
use mzw1_pac::evic::ETH_IFS_MASK;
use mzw1_pac::{EthRegisters, EvicRegisters};

/// The interrupt sources the driver enables in ETHIEN.
pub const ENABLED: Irq = Irq::PKTPEND
    .union(Irq::TXDONE)
    .union(Irq::TXABORT)
    .union(Irq::RXBUFNA)
    .union(Irq::RXOVFLW)
    .union(Irq::RXBUSE)
    .union(Irq::TXBUSE);

/// Interrupt-side counts, each event counted once by whoever acknowledged it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqCounts {
    /// Times the vector ran.
    pub interrupts: u32,
    /// RXBUFNA: a frame found no armed descriptor and was dropped (the exact number of
    /// frames lost is in `MacStats::rx_dropped_overflow`).
    pub rx_no_descriptor: u32,
    /// RXOVFLW: the RX FIFO overflowed and frames were dropped.
    pub rx_fifo_overflow: u32,
    /// TXABORT events.
    pub tx_abort: u32,
    /// RX DMA bus errors (each one triggers a DMA recovery).
    pub rx_bus_error: u32,
    /// TX DMA bus errors (each one triggers a DMA recovery).
    pub tx_bus_error: u32,
}

/// The events and counts, a cell each: every interrupt updates the events and its own
/// count, the error counts only when an error is pending (one `Cell` of the whole log was
/// read and written back whole, 7 words each way, on every interrupt).
struct Log {
    events: Cell<u32>,
    interrupts: Cell<u32>,
    /// The counts of [`IrqCounts`] but `interrupts`, in its order: one per source of
    /// [`ERROR_SOURCES`], so that counting is one loop (written out, the five additions
    /// were some 20 bytes more).
    errors: [Cell<u32>; 5],
}

/// The sources counted in [`IrqCounts`] besides the interrupts themselves, in its order,
/// as bit numbers of [`Irq`] (a byte each in flash, where a table of masks is a word).
const ERROR_SOURCES: [u8; 5] = [
    Irq::RXBUFNA.bits().trailing_zeros() as u8,
    Irq::RXOVFLW.bits().trailing_zeros() as u8,
    Irq::TXABORT.bits().trailing_zeros() as u8,
    Irq::RXBUSE.bits().trailing_zeros() as u8,
    Irq::TXBUSE.bits().trailing_zeros() as u8,
];

/// The same sources as one mask.
const COUNTED: Irq = Irq::RXBUFNA
    .union(Irq::RXOVFLW)
    .union(Irq::TXABORT)
    .union(Irq::RXBUSE)
    .union(Irq::TXBUSE);

/// State shared between the interrupt and the poll loop.
pub struct IrqShared {
    log: Mutex<Log>,
}

impl IrqShared {
    /// An empty log, for a `static`.
    pub const fn new() -> Self {
        IrqShared {
            log: Mutex::new(Log {
                events: Cell::new(0),
                interrupts: Cell::new(0),
                errors: [const { Cell::new(0) }; 5],
            }),
        }
    }

    fn record(&self, pending: Irq, from_vector: bool) {
        critical_section::with(|cs| {
            let log = self.log.borrow(cs);
            log.events.set(log.events.get() | pending.bits());
            log.interrupts
                .set(log.interrupts.get() + from_vector as u32);
            if pending.intersects(COUNTED) {
                for (count, source) in log.errors.iter().zip(&ERROR_SOURCES) {
                    count.set(count.get() + (pending.bits() >> source & 1));
                }
            }
        });
    }

    /// Takes the events recorded since the last call.
    pub(crate) fn take_events(&self) -> Irq {
        critical_section::with(|cs| Irq::from_bits_retain(self.log.borrow(cs).events.replace(0)))
    }

    /// The counts so far.
    pub fn counts(&self) -> IrqCounts {
        critical_section::with(|cs| {
            let log = self.log.borrow(cs);
            let [
                rx_no_descriptor,
                rx_fifo_overflow,
                tx_abort,
                rx_bus_error,
                tx_bus_error,
            ] = log.errors.each_ref().map(Cell::get);
            IrqCounts {
                interrupts: log.interrupts.get(),
                rx_no_descriptor,
                rx_fifo_overflow,
                tx_abort,
                rx_bus_error,
                tx_bus_error,
            }
        })
    }
}

impl Default for IrqShared {
    fn default() -> Self {
        Self::new()
    }
}

/// Acknowledges the controller's pending events and records them. Used by the vector and
/// by the poll loop (so a superloop without interrupts sees the same events).
pub(crate) fn acknowledge(eth: &EthRegisters, shared: &IrqShared, from_vector: bool) -> Irq {
    let pending = eth.irq.read() & eth.ien.read();
    if pending.contains(Irq::PKTPEND) {
        // A level: it stays up while BUFCNT ≠ 0, so it is masked until the ring is
        // drained (RxRing::receive re-enables it).
        eth.ien.clear(Irq::PKTPEND);
    }
    let sticky = pending & Irq::STICKY;
    if !sticky.is_empty() {
        eth.irq.clear(sticky);
    }
    if from_vector || !pending.is_empty() {
        shared.record(pending, from_vector);
    }
    pending
}

/// The Ethernet interrupt handler (vector 165): call it from the vector.
///
/// Returns the events it acknowledged, for applications that process frames right in the
/// interrupt.
pub fn interrupt(eth: &EthRegisters, evic: &EvicRegisters, shared: &IrqShared) -> Irq {
    let pending = acknowledge(eth, shared, true);
    // Last: the EVIC re-latches while (ETHIRQ & ETHIEN) ≠ 0.
    evic.eth_ifs().clear(ETH_IFS_MASK);
    pending
}
