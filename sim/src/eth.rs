//! A behavioural model of the PIC32 Ethernet controller (ETH DMA + EMAC + MIIM).
//!
//! It works on the same register block and the same descriptors as the silicon: the
//! firmware's register accesses reach [`EthModel::on_write`] / [`EthModel::on_read`] as bus
//! cycles, and the model reads and writes descriptors and buffers in host memory by
//! physical address through the [`Bus`]. Behaviour follows
//! `shared/reference/pic32-eth-behaviour.md`; where that document marks a point as open,
//! the choice made here is tagged `[I]` with the question number.
//!
//! Registers: the model keeps the value of every register slot and republishes it to the
//! block after each change; a write to a CLR/SET/INV companion is applied to the value and
//! the companion reads back 0. While PMD3.ETH1MD disables the module, writes are ignored
//! and registers read 0.

use crate::crc::{crc32, fcs_ok};
use crate::mem::{Block, Bus};
use crate::phy::{PhyConfig, PhyModel};
use mzw1_pac::desc::{DescHeader, RxStatusHi, RxStatusLo, TxStatusHi};
use mzw1_pac::eth::{Cfg1, Cfg2, Con1, EthRegisters, Irq, Mcmd, Mind, RxFilter, Stat};
use std::mem::{offset_of, size_of};

const SLOTS: usize = size_of::<EthRegisters>() / 16;

macro_rules! slot {
    ($f:ident) => {
        offset_of!(EthRegisters, $f) / 16
    };
}

const CON1: usize = slot!(con1);
const CON2: usize = slot!(con2);
const TXST: usize = slot!(txst);
const RXST: usize = slot!(rxst);
const RXFC: usize = slot!(rxfc);
const RXWM: usize = slot!(rxwm);
const IEN: usize = slot!(ien);
const IRQ: usize = slot!(irq);
const STAT: usize = slot!(stat);
const RXOVFLOW: usize = slot!(rxovflow);
const FRMTXOK: usize = slot!(frmtxok);
const FRMRXOK: usize = slot!(frmrxok);
const FCSERR: usize = slot!(fcserr);
const CFG1: usize = slot!(cfg1);
const CFG2: usize = slot!(cfg2);
const MAXF: usize = slot!(maxf);
const MCFG: usize = slot!(mcfg);
const MCMD: usize = slot!(mcmd);
const MADR: usize = slot!(madr);
const MWTD: usize = slot!(mwtd);
const MRDD: usize = slot!(mrdd);
const MIND: usize = slot!(mind);
const SA0: usize = slot!(sa0);
const SA1: usize = slot!(sa1);
const SA2: usize = slot!(sa2);

/// Reads of EMAC1MIND that show MIIMBUSY after a MIIM command.
const MIIM_BUSY_READS: u32 = 3;
/// Guard against a descriptor list that loops without ever releasing a descriptor.
const MAX_DESCRIPTORS_PER_RUN: usize = 4096;
/// Bytes of an Ethernet FCS.
const FCS: usize = 4;
/// Smallest frame on the wire, FCS included.
const MIN_FRAME: usize = 64;

/// Faults injected into the controller, each applied to the next frames or accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The next N received frames find no available descriptor (as if the ring were
    /// full): RXBUFNA, the frame is dropped and the RX DMA stalls until BUFCDEC.
    pub rx_no_descriptor: u32,
    /// The next N received frames overflow the RX FIFO: RXOVFLW, frame dropped.
    pub rx_fifo_overflow: u32,
    /// The next N RX DMA transfers get a bus error: RXBUSE, and the RX DMA halts until
    /// re-initialised (RXEN cleared and set, or ETHRXST rewritten).
    pub rx_bus_error: u32,
    /// The next N TX DMA transfers get a bus error: TXBUSE, and the TX DMA halts until
    /// ETHTXST is rewritten.
    pub tx_bus_error: u32,
    /// The next N received frames arrive damaged on the wire (their FCS does not match):
    /// ETHFCSERR counts them and the CRCOKEN filter drops them.
    pub rx_crc_error: u32,
}

/// What the model saw, for tests (the controller's own counters are in its registers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Frames offered from the wire.
    pub rx_offered: u64,
    /// Frames written into descriptors.
    pub rx_delivered: u64,
    /// Frames dropped because the receiver was off (ON, RXEN, CFG1.RXENABLE, reset, link).
    pub rx_receiver_off: u64,
    /// Frames rejected by ETHRXFC.
    pub rx_filtered: u64,
    /// Frames dropped for want of a descriptor (RXBUFNA).
    pub rx_no_descriptor: u64,
    /// Frames dropped by an injected FIFO overflow.
    pub rx_fifo_overflow: u64,
    /// Frames dropped because the RX DMA was halted by a bus error.
    pub rx_dma_halted: u64,
    /// Frames sent to the wire.
    pub tx_sent: u64,
    /// Frames aborted (giant, underrun).
    pub tx_aborted: u64,
    /// Frames dropped because the link was down.
    pub tx_link_down: u64,
    /// Writes ignored because the module was disabled in PMD3.
    pub writes_while_disabled: u64,
    /// Writes to ETHTXST/ETHRXST while that DMA was active (the data sheet forbids it).
    pub start_address_writes_while_active: u64,
}

/// The Ethernet controller model.
pub struct EthModel {
    block: Block,
    vals: [u32; SLOTS],
    enabled: bool,
    /// Physical address of the next TX descriptor; 0 = start from ETHTXST.
    tx_ptr: u32,
    /// Physical address of the next RX descriptor; 0 = start from ETHRXST.
    rx_ptr: u32,
    /// RXBUFNA: the RX DMA waits on `rx_ptr` until software writes BUFCDEC (§3.5).
    rx_stalled: bool,
    rx_halted: bool,
    tx_halted: bool,
    miim_busy_reads: u32,
    /// The PHY on the MIIM bus.
    pub phy: PhyModel,
    /// Pending injected faults.
    pub faults: Faults,
    /// Model counters.
    pub stats: ModelStats,
    /// Frames transmitted (with FCS), for the board to put on the wire.
    pub(crate) tx_out: Vec<Vec<u8>>,
}

/// Reset values (EDC POR, behaviour §8.1).
fn por_values() -> [u32; SLOTS] {
    let mut v = [0u32; SLOTS];
    v[CFG1] = 0x800D;
    v[CFG2] = 0x40B4;
    v[slot!(ipgt)] = 0x12;
    v[slot!(ipgr)] = 0x0C12;
    v[slot!(clrt)] = 0x370F;
    v[MAXF] = 0x05EE;
    v[MCFG] = 0x0020;
    v[MADR] = 0x0100;
    v
}

impl EthModel {
    pub(crate) fn new(block: Block, phy: PhyConfig) -> EthModel {
        let mut m = EthModel {
            block,
            vals: por_values(),
            enabled: false,
            tx_ptr: 0,
            rx_ptr: 0,
            rx_stalled: false,
            rx_halted: false,
            tx_halted: false,
            miim_busy_reads: 0,
            phy: PhyModel::new(phy),
            faults: Faults::default(),
            stats: ModelStats::default(),
            tx_out: Vec::new(),
        };
        m.publish();
        m
    }

    /// The module clock is gated by PMD3.ETH1MD.
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        self.publish();
    }

    fn con1(&self) -> Con1 {
        Con1::from_bits_retain(self.vals[CON1])
    }

    fn irq(&self) -> Irq {
        Irq::from_bits_retain(self.vals[IRQ])
    }

    fn bufcnt(&self) -> u8 {
        Stat::from_bits_retain(self.vals[STAT]).bufcnt()
    }

    fn set_bufcnt(&mut self, n: u8) {
        self.vals[STAT] = (self.vals[STAT] & !Stat::BUFCNT.bits()) | ((n as u32) << 16);
    }

    fn raise(&mut self, flags: Irq) {
        self.vals[IRQ] |= flags.bits();
    }

    fn bump(&mut self, counter: usize) {
        // 16-bit counters; [I] Q21: they wrap.
        self.vals[counter] = (self.vals[counter] + 1) & 0xFFFF;
    }

    /// Level flags derived from BUFCNT (§3.3, §4) [I] Q15: EWMARK is a pure level.
    fn update_levels(&mut self) {
        let n = self.bufcnt() as u32;
        let full = (self.vals[RXWM] >> 16) & 0xFF;
        let empty = self.vals[RXWM] & 0xFF;
        let mut irq = self.irq() - (Irq::PKTPEND | Irq::FWMARK | Irq::EWMARK);
        if n != 0 {
            irq |= Irq::PKTPEND;
        }
        if full != 0 && n >= full {
            irq |= Irq::FWMARK;
        }
        if n <= empty {
            irq |= Irq::EWMARK;
        }
        self.vals[IRQ] = irq.bits();
    }

    /// Writes every register value to the block (0 while the module is disabled) and
    /// clears the write-only companions.
    fn publish(&mut self) {
        self.update_levels();
        let busy = self.con1().contains(Con1::ON);
        let mut stat =
            Stat::from_bits_retain(self.vals[STAT]) - (Stat::BUSY | Stat::TXBUSY | Stat::RXBUSY);
        if busy {
            stat |= Stat::BUSY;
        }
        self.vals[STAT] = stat.bits();
        for (i, &v) in self.vals.iter().enumerate() {
            self.block.put(i * 16, if self.enabled { v } else { 0 });
        }
    }

    /// Whether the controller requests an interrupt: ETHIRQ & ETHIEN ≠ 0 (§5.1 [I]).
    pub(crate) fn interrupt_request(&self) -> bool {
        self.enabled && self.vals[IRQ] & self.vals[IEN] != 0
    }

    /// A bus read by the firmware at byte offset `off`.
    pub(crate) fn on_read(&mut self, off: usize) {
        if off / 16 == MIND && self.miim_busy_reads > 0 {
            self.miim_busy_reads -= 1;
            if self.miim_busy_reads == 0 {
                self.vals[MIND] &= !Mind::MIIMBUSY.bits();
                self.publish();
            }
        }
    }

    /// A bus write by the firmware at byte offset `off` (value already in the block).
    pub(crate) fn on_write(&mut self, off: usize, bus: &Bus, now_ns: u64) {
        let slot = off / 16;
        if slot >= SLOTS {
            return;
        }
        let written = self.block.get(off & !3);
        if !self.enabled {
            self.stats.writes_while_disabled += 1;
            self.publish();
            return;
        }
        let old = self.vals[slot];
        let new = match off & 0xC {
            0x0 => written,
            0x4 => old & !written,
            0x8 => old | written,
            _ => old ^ written,
        };
        self.write_register(slot, old, new, bus, now_ns);
        self.publish();
    }

    fn write_register(&mut self, slot: usize, old: u32, new: u32, bus: &Bus, now_ns: u64) {
        match slot {
            CON1 => {
                let old = Con1::from_bits_retain(old);
                let mut new = Con1::from_bits_retain(new);
                if new.contains(Con1::BUFCDEC) {
                    // Decrement, never below 0; BUFCDEC reads 0 (§3.3). A stalled RX DMA
                    // re-fetches its descriptor (§3.5).
                    new.remove(Con1::BUFCDEC);
                    let n = self.bufcnt();
                    self.set_bufcnt(n.saturating_sub(1));
                    self.rx_stalled = false;
                }
                if !new.contains(Con1::ON) {
                    new.remove(Con1::TXRTS);
                }
                if old.contains(Con1::RXEN) && !new.contains(Con1::RXEN) {
                    // Turning the receiver off resets the RX DMA, which restarts from
                    // ETHRXST [I] Q18.
                    self.rx_ptr = 0;
                    self.rx_stalled = false;
                    self.rx_halted = false;
                }
                self.vals[CON1] = new.bits();
                if new.contains(Con1::ON | Con1::TXRTS) && !old.contains(Con1::TXRTS) {
                    self.run_tx(bus);
                }
            }
            TXST | RXST => {
                let active = if slot == TXST {
                    self.con1().contains(Con1::TXRTS)
                } else {
                    self.con1().contains(Con1::RXEN)
                };
                if active {
                    self.stats.start_address_writes_while_active += 1;
                }
                self.vals[slot] = new & !3;
                if slot == TXST {
                    self.tx_ptr = 0;
                    self.tx_halted = false;
                } else {
                    self.rx_ptr = 0;
                    self.rx_stalled = false;
                    self.rx_halted = false;
                }
            }
            IRQ => {
                // Sticky flags are cleared by software; the level flags are read-only.
                let sticky = Irq::STICKY.bits();
                self.vals[IRQ] = (old & !sticky) | (new & sticky);
            }
            STAT => {} // [I] Q23: BUFCNT is treated as read-only.
            MCMD => {
                self.vals[MCMD] = new;
                if new & Mcmd::READ.bits() != 0 && old & Mcmd::READ.bits() == 0 {
                    let (phy, reg) = self.miim_target();
                    self.vals[MRDD] = self.phy.read(phy, reg, now_ns) as u32;
                    self.miim_busy();
                }
            }
            MWTD => {
                self.vals[MWTD] = new & 0xFFFF;
                let (phy, reg) = self.miim_target();
                self.phy.write(phy, reg, new as u16, now_ns);
                self.miim_busy();
            }
            MIND => {} // read-only indicators
            _ => self.vals[slot] = new,
        }
    }

    fn miim_target(&self) -> (u8, u8) {
        let madr = self.vals[MADR];
        (((madr >> 8) & 0x1F) as u8, (madr & 0x1F) as u8)
    }

    fn miim_busy(&mut self) {
        self.vals[MIND] |= Mind::MIIMBUSY.bits();
        self.miim_busy_reads = MIIM_BUSY_READS;
    }

    /// Advances time-dependent state (PHY negotiation).
    pub(crate) fn tick(&mut self, now_ns: u64) {
        self.phy.tick(now_ns);
    }

    fn station_address(&self) -> [u8; 6] {
        let sa2 = self.vals[SA2];
        let sa1 = self.vals[SA1];
        let sa0 = self.vals[SA0];
        [
            sa2 as u8,
            (sa2 >> 8) as u8,
            sa1 as u8,
            (sa1 >> 8) as u8,
            sa0 as u8,
            (sa0 >> 8) as u8,
        ]
    }

    fn receiver_on(&self) -> bool {
        let cfg1 = Cfg1::from_bits_retain(self.vals[CFG1]);
        self.enabled
            && self.con1().contains(Con1::ON | Con1::RXEN)
            && cfg1.contains(Cfg1::RXENABLE)
            && !cfg1.intersects(Cfg1::SOFTRESET | Cfg1::RESETRFUN | Cfg1::RESETRMCS)
            && self.phy.link_up()
    }

    /// A frame (with FCS) arrives from the wire.
    pub(crate) fn receive(&mut self, frame: &[u8], bus: &Bus) {
        self.stats.rx_offered += 1;
        if !self.receiver_on() || frame.len() < 14 + FCS {
            self.stats.rx_receiver_off += 1;
            return;
        }
        let mut crc_good = fcs_ok(frame);
        if self.faults.rx_crc_error > 0 {
            self.faults.rx_crc_error -= 1;
            crc_good = false;
        }
        if !crc_good {
            self.bump(FCSERR);
        }
        let runt = frame.len() < MIN_FRAME;
        let da: [u8; 6] = frame[..6].try_into().expect("length checked");
        let broadcast = da == [0xFF; 6];
        let multicast = !broadcast && da[0] & 1 != 0;
        let to_me = da == self.station_address();
        let hash_match = multicast && self.hash_match(&da);
        if !self.filter_accepts(crc_good, runt, broadcast, multicast, to_me, hash_match) {
            self.stats.rx_filtered += 1;
            self.publish();
            return;
        }
        if self.faults.rx_fifo_overflow > 0 {
            self.faults.rx_fifo_overflow -= 1;
            self.stats.rx_fifo_overflow += 1;
            self.bump(RXOVFLOW);
            self.raise(Irq::RXOVFLW);
            self.publish();
            return;
        }
        if self.rx_halted {
            self.stats.rx_dma_halted += 1;
            self.bump(RXOVFLOW);
            self.publish();
            return;
        }
        if crc_good {
            // Counted as received, even if then dropped for want of a descriptor (ISS14).
            self.bump(FRMRXOK);
        }
        let buf_size = (self.vals[CON2] & 0x7F0) as usize;
        if buf_size == 0 {
            // RXBUF_SZ = 0 is invalid (§3.1): nothing can be stored.
            self.no_descriptor();
            return;
        }
        if self.rx_stalled || self.faults.rx_no_descriptor > 0 {
            if !self.rx_stalled {
                self.faults.rx_no_descriptor -= 1;
            }
            self.no_descriptor();
            return;
        }
        // [I] Q9: the frame is stored only if enough armed descriptors are available for
        // all of it; otherwise nothing is consumed and the DMA stalls on the first one.
        let needed = frame.len().div_ceil(buf_size);
        let mut eds = Vec::with_capacity(needed);
        let mut ptr = self.current_rx();
        for _ in 0..needed {
            let Some(h) = bus.read_u32(ptr) else {
                return self.rx_bus_error();
            };
            let h = DescHeader::from_bits_retain(h);
            if !h.contains(DescHeader::EOWN) {
                self.no_descriptor();
                return;
            }
            eds.push((ptr, h));
            match self.next_descriptor(ptr, h, bus) {
                Some(n) => ptr = n,
                None => return self.rx_bus_error(),
            }
        }
        if self.faults.rx_bus_error > 0 {
            self.faults.rx_bus_error -= 1;
            return self.rx_bus_error();
        }
        let max_frame = (self.vals[MAXF] & 0xFFFF) as usize;
        let huge = Cfg2::from_bits_retain(self.vals[CFG2]).contains(Cfg2::HUGEFRM);
        let giant = frame.len() > max_frame && !huge;
        let mut lo = RxStatusLo::empty();
        let mut hi = RxStatusHi::from_bits_retain(frame.len() as u32 & 0xFFFF);
        lo.set(RxStatusLo::RUNT, runt);
        lo.set(RxStatusLo::BROADCAST_MATCH, broadcast);
        lo.set(RxStatusLo::MULTICAST_MATCH, multicast);
        lo.set(RxStatusLo::UNICAST_MATCH, to_me);
        lo.set(RxStatusLo::NOT_ME, !to_me && !broadcast && !multicast);
        lo.set(RxStatusLo::HASH_MATCH, hash_match);
        hi.set(RxStatusHi::RECEIVED_OK, crc_good && !giant);
        hi.set(RxStatusHi::CRC_ERROR, !crc_good);
        hi.set(RxStatusHi::LONG_DROP_EVENT, giant); // [I] how a giant is reported
        hi.set(RxStatusHi::BROADCAST, broadcast);
        hi.set(RxStatusHi::MULTICAST, multicast);
        // Data first; each descriptor gets its byte count, and the status vector [I] Q8.
        let mut headers = Vec::with_capacity(needed);
        for (i, ((ed, h), chunk)) in eds.iter().zip(frame.chunks(buf_size)).enumerate() {
            let Some(buf) = bus.read_u32(ed + 4) else {
                return self.rx_bus_error();
            };
            if bus.write(buf, chunk).is_none() {
                return self.rx_bus_error();
            }
            bus.write_u32(ed + 8, lo.bits());
            bus.write_u32(ed + 12, hi.bits());
            let mut nh = (*h - DescHeader::HW_WRITTEN).with_byte_count(chunk.len() as u16);
            nh.set(DescHeader::SOP, i == 0);
            nh.set(DescHeader::EOP, i + 1 == needed);
            headers.push((*ed, nh));
        }
        // Release later descriptors first and the SOP descriptor last (§3.2).
        for &(ed, nh) in headers.iter().rev() {
            bus.write_u32(ed, nh.bits());
        }
        self.rx_ptr = ptr;
        self.vals[RXST] = ptr;
        let n = self.bufcnt() as usize;
        self.set_bufcnt((n + needed).min(0xFF) as u8);
        self.raise(Irq::RXDONE | Irq::RXACT);
        self.stats.rx_delivered += 1;
        self.publish();
    }

    fn current_rx(&self) -> u32 {
        if self.rx_ptr != 0 {
            self.rx_ptr
        } else {
            self.vals[RXST]
        }
    }

    fn current_tx(&self) -> u32 {
        if self.tx_ptr != 0 {
            self.tx_ptr
        } else {
            self.vals[TXST]
        }
    }

    /// The next descriptor: word 4 when NPV = 1, else the next 4-word descriptor [I] Q1.
    fn next_descriptor(&self, ptr: u32, h: DescHeader, bus: &Bus) -> Option<u32> {
        if h.contains(DescHeader::NPV) {
            bus.read_u32(ptr + 16)
        } else {
            Some(ptr + 16)
        }
    }

    fn no_descriptor(&mut self) {
        // RXBUFNA; the frame is lost and counted in ETHRXOVFLOW, which also raises
        // RXOVFLW (§3.5, §3.6, ISS14).
        self.rx_stalled = true;
        self.stats.rx_no_descriptor += 1;
        self.bump(RXOVFLOW);
        self.raise(Irq::RXBUFNA | Irq::RXOVFLW);
        self.publish();
    }

    fn rx_bus_error(&mut self) {
        self.rx_halted = true;
        self.stats.rx_dma_halted += 1;
        self.raise(Irq::RXBUSE);
        self.publish();
    }

    /// ETHRXFC in Harmony's priority order (§3.7): the first filter that decides wins; a
    /// frame no filter accepts is rejected.
    fn filter_accepts(
        &self,
        crc_good: bool,
        runt: bool,
        broadcast: bool,
        multicast: bool,
        to_me: bool,
        hash_match: bool,
    ) -> bool {
        let f = RxFilter::from_bits_retain(self.vals[RXFC]);
        if f.contains(RxFilter::CRCERREN) {
            return !crc_good;
        }
        if f.contains(RxFilter::RUNTERREN) {
            return runt;
        }
        if f.contains(RxFilter::CRCOKEN) && !crc_good {
            return false;
        }
        if f.contains(RxFilter::RUNTEN) && runt {
            return false;
        }
        let unicast_filter = if to_me {
            RxFilter::UCEN
        } else {
            RxFilter::NOTMEEN
        };
        let unicast = !broadcast && !multicast;
        (unicast && f.contains(unicast_filter))
            || (f.contains(RxFilter::MCEN) && multicast)
            || (f.contains(RxFilter::BCEN) && broadcast)
            || (f.contains(RxFilter::HTEN) && hash_match)
    }

    /// Hash filter: bit ((CRC-32 of DA) >> 23) & 0x3F of {ETHHT1:ETHHT0} (§3.7). The CRC
    /// here is the non-inverted register value, as the references describe.
    fn hash_match(&self, da: &[u8; 6]) -> bool {
        let k = ((!crc32(da)) >> 23) & 0x3F;
        let ht = ((self.vals[slot!(ht1)] as u64) << 32) | self.vals[slot!(ht0)] as u64;
        ht >> k & 1 != 0
    }

    /// The TX DMA: sends owned frames from the current descriptor until it meets one it
    /// does not own at a frame boundary, then clears TXRTS (§2.3, §2.4).
    fn run_tx(&mut self, bus: &Bus) {
        if self.tx_halted {
            return;
        }
        let mut budget = MAX_DESCRIPTORS_PER_RUN;
        loop {
            let sop = self.current_tx();
            let Some(h) = bus.read_u32(sop) else {
                return self.tx_bus_error();
            };
            let h = DescHeader::from_bits_retain(h);
            if !h.contains(DescHeader::EOWN) || budget == 0 {
                break;
            }
            if self.faults.tx_bus_error > 0 {
                self.faults.tx_bus_error -= 1;
                return self.tx_bus_error();
            }
            // Gather the frame from SOP to EOP.
            let mut eds = Vec::new();
            let mut frame = Vec::new();
            let mut ptr = sop;
            let mut hdr = h;
            let mut underrun = false;
            loop {
                budget = budget.saturating_sub(1);
                let n = hdr.byte_count() as usize;
                let Some(buf) = bus.read_u32(ptr + 4) else {
                    return self.tx_bus_error();
                };
                let start = frame.len();
                frame.resize(start + n, 0);
                if bus.read(buf, &mut frame[start..]).is_none() {
                    return self.tx_bus_error();
                }
                eds.push((ptr, hdr));
                let Some(next) = self.next_descriptor(ptr, hdr, bus) else {
                    return self.tx_bus_error();
                };
                ptr = next;
                if hdr.contains(DescHeader::EOP) || budget == 0 {
                    break;
                }
                let Some(nh) = bus.read_u32(ptr) else {
                    return self.tx_bus_error();
                };
                hdr = DescHeader::from_bits_retain(nh);
                if !hdr.contains(DescHeader::EOWN) {
                    // [I] Q3: a frame whose next descriptor is not owned underruns.
                    underrun = true;
                    break;
                }
            }
            self.tx_ptr = ptr;
            self.vals[TXST] = ptr;
            self.finish_tx_frame(frame, &eds, underrun, bus);
        }
        self.vals[CON1] &= !Con1::TXRTS.bits();
    }

    fn finish_tx_frame(
        &mut self,
        mut frame: Vec<u8>,
        eds: &[(u32, DescHeader)],
        underrun: bool,
        bus: &Bus,
    ) {
        let cfg2 = Cfg2::from_bits_retain(self.vals[CFG2]);
        let max_frame = (self.vals[MAXF] & 0xFFFF) as usize;
        let broadcast = frame.len() >= 6 && frame[..6] == [0xFF; 6];
        let multicast = !broadcast && frame.first().is_some_and(|b| b & 1 != 0);
        let mut hi = TxStatusHi::empty();
        hi.set(TxStatusHi::BROADCAST, broadcast);
        hi.set(TxStatusHi::MULTICAST, multicast);
        let giant = frame.len() + FCS > max_frame && !cfg2.contains(Cfg2::HUGEFRM);
        if underrun || giant {
            hi.set(TxStatusHi::UNDERRUN, underrun);
            hi.set(TxStatusHi::GIANT, giant);
            self.raise(Irq::TXABORT);
            self.stats.tx_aborted += 1;
        } else {
            if cfg2.contains(Cfg2::PADENABLE) && frame.len() < MIN_FRAME - FCS {
                let pad_to = if cfg2.contains(Cfg2::VLANPAD) {
                    MIN_FRAME
                } else {
                    MIN_FRAME - FCS
                };
                frame.resize(pad_to, 0);
            }
            if cfg2.contains(Cfg2::CRCENABLE) {
                crate::crc::append_fcs(&mut frame);
            }
            hi |= TxStatusHi::DONE;
            hi |= TxStatusHi::from_bits_retain(frame.len() as u32 & 0xFFFF);
            self.bump(FRMTXOK);
            if self.phy.link_up() {
                self.stats.tx_sent += 1;
                self.tx_out.push(frame.clone());
            } else {
                self.stats.tx_link_down += 1;
            }
        }
        let wire_bytes = if hi.contains(TxStatusHi::DONE) {
            frame.len() as u32
        } else {
            0
        };
        // The status vector goes into the SOP descriptor; later descriptors are released
        // first and the SOP descriptor last (§1.4, §2.4).
        if let Some(&(sop, _)) = eds.first() {
            bus.write_u32(sop + 8, wire_bytes & 0xFFFF);
            bus.write_u32(sop + 12, hi.bits());
        }
        for &(ed, h) in eds.iter().rev() {
            bus.write_u32(ed, (h - DescHeader::EOWN).bits());
        }
        self.raise(Irq::TXDONE);
    }

    fn tx_bus_error(&mut self) {
        self.tx_halted = true;
        self.raise(Irq::TXBUSE);
        self.vals[CON1] &= !Con1::TXRTS.bits();
        self.publish();
    }
}
