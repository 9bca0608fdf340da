//! The PIC32MZW1 Ethernet MAC driver: descriptor rings, interrupt, PHY and link.
//!
//! [`Mac::new`] brings the controller up in Microchip's documented order
//! (pic32mzw1-eth-facts.md §1.4; Harmony `DRV_ETHMAC_LibInit` / `LibMACOpen`):
//!
//! 0. enable the module (PMD3.ETH1MD = 0, behind SYSKEY and CFGCON0.PMDLOCK);
//! 1. clear ON, TXRTS and RXEN and wait for ETHBUSY = 0;
//! 2. set ON;
//! 3. write BUFCDEC until BUFCNT = 0;
//! 4. clear ETHIRQ and ETHIEN, zero ETHTXST/ETHRXST;
//! 5. pulse EMAC1CFG1.SOFTRESET and EMAC1MCFG.RESETMGMT, set the MDC divider and MAXF;
//! 6. reset the PHY (the rest of its bring-up runs from [`Mac::poll`], without blocking);
//! 7. RX filters;
//! 8. station address, descriptor rings, RX buffer size, interrupts, RXEN;
//! 9. once the link is negotiated: EMAC1CFG1/CFG2, IPGT/IPGR/CLRT, then pulse
//!    EMAC1SUPP.RESETRMII and set SPEEDRMII.
//!
//! Received frames are lent in place ([`RxRing::receive`]); frames to send are written
//! straight into DMA buffers ([`TxRing::alloc`], [`TxRing::send`]), which the stack may
//! keep for retransmission ([`TxRing::send_retained`]). The rings are public fields so
//! the stack can hold a received frame and write a reply at the same time.

pub mod dma;
pub mod irq;
pub mod phy;
pub mod rx;
pub mod tx;

pub use dma::{DmaMemory, DmaWindow, FRAME_OFFSET, MAX_FRAME, MAX_TX_FRAME};
pub use irq::{IrqCounts, IrqShared, interrupt};
pub use phy::{Link, LinkStats, Speed};
pub use rx::{RxBuf, RxFrame, RxRing, RxStats};
pub use tx::{TxBuf, TxError, TxRing, TxStats};

use crate::time::Instant;
use bitflags::bitflags;
use mzw1_pac::cfg::{Cfgcon0, Pmd3, SYSKEY_LOCK, SYSKEY_UNLOCK};
use mzw1_pac::eth::{
    Cfg1, Cfg2, Con1, Irq, Mcfg, RxFilter, Stat, Supp, con2_rx_buffer_size, mcfg_clksel,
    station_address,
};
use mzw1_pac::evic::{ETH_IFS_MASK, ETH_IPC_MASK, ipc_field};
use mzw1_pac::{EthRegisters, EvicRegisters, cfg::CfgRegisters};
use phy::{LinkChange, Miim, PhyState};

/// Register reads before a wait for the controller is abandoned (and counted).
const BUSY_SPIN_LIMIT: u32 = 100_000;
/// Period of the hardware statistics sampling (the counters are 16 bits wide).
const COUNTER_SAMPLE_MS: u32 = 100;

/// The register blocks the driver uses.
#[derive(Clone, Copy)]
pub struct Peripherals<'a> {
    /// The ETH/EMAC block.
    pub eth: &'a EthRegisters,
    /// The interrupt controller.
    pub evic: &'a EvicRegisters,
    /// The configuration block (module enable).
    pub cfg: &'a CfgRegisters,
}

impl Peripherals<'static> {
    /// The PIC32MZW1's own blocks.
    ///
    /// # Safety
    /// Only on the target, and only once: the driver assumes it is the blocks' only user.
    pub unsafe fn pic32mzw1() -> Self {
        // SAFETY: upheld by the caller.
        unsafe {
            Peripherals {
                eth: EthRegisters::pic32mzw1(),
                evic: EvicRegisters::pic32mzw1(),
                cfg: CfgRegisters::pic32mzw1(),
            }
        }
    }
}

/// Driver configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacConfig {
    /// The station (MAC) address. The W1 has no confirmed factory address in EMAC1SAx
    /// (facts §6), so it is always set.
    pub mac_address: [u8; 6],
    /// MIIM address of the PHY (0 on Microchip's boards).
    pub phy_address: u8,
    /// EMAC1MCFG.CLKSEL: 8 divides the 100 MHz host clock by 40 for a 2.5 MHz MDC, the
    /// LAN87x0 maximum (facts §1.3).
    pub mdc_clksel: u8,
    /// EVIC priority of the Ethernet interrupt, 1..=7 (Harmony's demo uses 1).
    pub interrupt_priority: u8,
}

impl Default for MacConfig {
    fn default() -> Self {
        MacConfig {
            mac_address: [0x02, 0x04, 0xA3, 0x00, 0x00, 0x01],
            phy_address: mzw1_pac::phy::PHY_ADDRESS,
            mdc_clksel: 8,
            interrupt_priority: 1,
        }
    }
}

bitflags! {
    /// What [`Mac::poll`] observed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MacEvents: u8 {
        /// The link came up (see [`Mac::link`]).
        const LINK_UP = 1 << 0;
        /// The link went down.
        const LINK_DOWN = 1 << 1;
        /// A DMA bus error was recovered from; frames in flight were lost.
        const DMA_RECOVERED = 1 << 2;
    }
}

/// The controller's own 16-bit statistics registers, accumulated into 32 bits (sampled
/// often enough that each can wrap at most once between samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwCounts {
    /// ETHRXOVFLOW: frames the RX filter accepted and then dropped (no descriptor, FIFO
    /// overflow).
    pub rx_dropped_overflow: u32,
    /// ETHFRMRXOK: frames received OK.
    pub rx_ok: u32,
    /// ETHFCSERR: frames with a bad FCS (rejected by the CRCOKEN filter).
    pub rx_fcs_errors: u32,
    /// ETHALGNERR: frames with an alignment error.
    pub rx_alignment_errors: u32,
    /// ETHFRMTXOK: frames transmitted OK.
    pub tx_ok: u32,
    /// ETHSCOLFRM: frames sent after one collision.
    pub tx_single_collisions: u32,
    /// ETHMCOLFRM: frames sent after several collisions.
    pub tx_multiple_collisions: u32,
}

/// Driver-level counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlStats {
    /// DMA recoveries after bus errors.
    pub dma_recoveries: u32,
    /// Waits on the controller (ETHBUSY, RXBUSY/TXBUSY) that timed out.
    pub busy_timeouts: u32,
}

/// Every counter of the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacStats {
    /// Receive ring.
    pub rx: RxStats,
    /// Transmit ring.
    pub tx: TxStats,
    /// Interrupt events.
    pub irq: IrqCounts,
    /// Link and PHY.
    pub link: LinkStats,
    /// The controller's statistics registers.
    pub hw: HwCounts,
    /// Driver control.
    pub control: ControlStats,
}

/// The Ethernet MAC driver.
pub struct Mac<'a> {
    /// Receive ring.
    pub rx: RxRing<'a>,
    /// Transmit ring.
    pub tx: TxRing<'a>,
    eth: &'a EthRegisters,
    evic: &'a EvicRegisters,
    shared: &'a IrqShared,
    phy: PhyState,
    phy_address: u8,
    /// The totals of [`HwCounts`], in its field order: an array, so that sampling is one
    /// loop (seven copies of it, and the reads at start-up, were 300 bytes of flash).
    hw: [u32; 7],
    hw_last: [u16; 7],
    next_sample: Instant,
    control: ControlStats,
    stopped: bool,
}

// SAFETY: the rings hold raw pointers to DMA buffers they own exclusively (through the
// `&'a mut DmaMemory` the driver was built from); moving the driver to another context
// (an interrupt handler's `Mutex`) moves that exclusive ownership with it.
unsafe impl Send for Mac<'_> {}

impl<'a> Mac<'a> {
    /// Brings the controller up (see the module documentation for the order) and starts
    /// the PHY; the link comes up later, from [`Mac::poll`].
    pub fn new<const RXD: usize, const RXB: usize, const TXB: usize>(
        p: Peripherals<'a>,
        dma: &'a mut DmaMemory<RXD, RXB, TXB>,
        window: DmaWindow,
        shared: &'a IrqShared,
        config: MacConfig,
        now: Instant,
    ) -> Mac<'a> {
        let eth = p.eth;
        let mut control = ControlStats::default();
        enable_module(p.cfg);

        // 1–2. Stop everything, wait for the controller to go idle, switch it on.
        eth.con1.clear(Con1::ON | Con1::TXRTS | Con1::RXEN);
        if !wait_until(|| !eth.stat.read().contains(Stat::BUSY)) {
            control.busy_timeouts += 1;
        }
        eth.con1.set(Con1::ON);
        // 3. Software owns nothing yet: bring BUFCNT to 0.
        drain_bufcnt(eth);
        // 4. No stale events, no stale list pointers.
        eth.ien.write(Irq::empty());
        eth.irq.clear(Irq::all());
        eth.txst.clear_all();
        eth.rxst.clear_all();
        // 5. MAC out of soft reset (POR holds it there, behaviour §6.2) with the receiver
        // off until the link is known; MIIM reset and clock; frame size.
        eth.cfg1.write(Cfg1::SOFTRESET);
        eth.cfg1.write(Cfg1::empty());
        eth.mcfg.write(Mcfg::RESETMGMT);
        eth.mcfg.write(mcfg_clksel(config.mdc_clksel as u32));
        eth.maxf.write(MAX_FRAME as u32);
        // 6. PHY reset; negotiation continues in `poll`.
        let phy = PhyState::start(
            &Miim {
                regs: eth,
                phy: config.phy_address,
            },
            now,
        );
        // 7. Accept unicast to us and broadcast (ARP); let the MAC reject bad CRCs, which
        // ETHFCSERR counts. Runts are accepted and dropped (and counted) by the ring.
        eth.rxfc
            .write(RxFilter::UCEN | RxFilter::BCEN | RxFilter::CRCOKEN);
        // 8. Address, rings, interrupts, receive.
        let [sa0, sa1, sa2] = station_address(config.mac_address);
        eth.sa0.write(sa0);
        eth.sa1.write(sa1);
        eth.sa2.write(sa2);
        eth.con2.write(con2_rx_buffer_size(dma::RX_DMA_SIZE as u32));
        let DmaMemory {
            rx_desc,
            tx_desc,
            rx_buf,
            tx_buf,
        } = dma;
        let mut rx = RxRing::new(eth, rx_desc, rx_buf, window);
        let mut tx = TxRing::new(eth, tx_desc, tx_buf, window);
        let rx_start = rx.arm_all();
        let tx_start = tx.reset();
        // SAFETY: both lists are rings of descriptors in the DMA region, whose buffers the
        // rings own for as long as the driver lives ('a).
        unsafe {
            eth.rxst.write(rx_start);
            eth.txst.write(tx_start);
        }
        eth.ien.write(irq::ENABLED);
        let ipc = p.evic.eth_ipc();
        ipc.clear(ETH_IPC_MASK);
        ipc.set(ipc_field(config.interrupt_priority.clamp(1, 7) as u32, 0));
        p.evic.eth_ifs().clear(ETH_IFS_MASK);
        p.evic.eth_iec().set(ETH_IFS_MASK);
        eth.con1.set(Con1::RXEN);

        let mut mac = Mac {
            rx,
            tx,
            eth,
            evic: p.evic,
            shared,
            phy,
            phy_address: config.phy_address,
            hw: [0; 7],
            hw_last: [0; 7],
            next_sample: now.plus(COUNTER_SAMPLE_MS),
            control,
            stopped: false,
        };
        // The counts so far are not ours: only what they count from here on.
        mac.sample_hw_counters();
        mac.hw = [0; 7];
        mac
    }

    /// The interrupt handler for applications that own the driver inside the vector
    /// (a `Mutex<RefCell<Mac>>`); the others call [`interrupt`] with the register blocks.
    pub fn on_interrupt(&mut self) -> Irq {
        interrupt(self.eth, self.evic, self.shared)
    }

    /// Everything but moving frames: events left by the interrupt (or pending ones when
    /// the interrupt is not used), TX completions, DMA recovery, the link, statistics.
    pub fn poll(&mut self, now: Instant) -> MacEvents {
        let mut out = MacEvents::empty();
        if self.stopped {
            return out;
        }
        irq::acknowledge(self.eth, self.shared, false);
        let events = self.shared.take_events();
        if events.intersects(Irq::RXBUSE | Irq::TXBUSE) {
            self.recover_dma();
            out |= MacEvents::DMA_RECOVERED;
        }
        if events.contains(Irq::RXBUFNA) && self.eth.stat.read().bufcnt() == 0 {
            // The RX DMA waits on a descriptor it found not armed until BUFCDEC is
            // written (behaviour §3.5). Software consumes a frame with a BUFCDEC, so a
            // ring with frames in it restarts by itself; an empty one (BUFCNT = 0, where
            // BUFCDEC cannot miscount) needs this write.
            self.eth.con1.set(Con1::BUFCDEC);
        }
        self.tx.reap();
        match self.phy.poll(
            &Miim {
                regs: self.eth,
                phy: self.phy_address,
            },
            now,
        ) {
            LinkChange::Up(link) => {
                self.configure_for_link(link);
                out |= MacEvents::LINK_UP;
            }
            LinkChange::Down => out |= MacEvents::LINK_DOWN,
            LinkChange::None => {}
        }
        if now.reached(self.next_sample) || events.intersects(Irq::RXBUFNA | Irq::RXOVFLW) {
            self.next_sample = now.plus(COUNTER_SAMPLE_MS);
            self.sample_hw_counters();
        }
        out
    }

    /// Leaves the controller quiet, for deinitialization: the interrupt masked at the
    /// EVIC and in ETHIEN, receiver and transmitter stopped (waiting for the engines to go
    /// idle), the MAC held in soft reset and the module switched off (ON = 0), pending
    /// events cleared. Frames still in the rings are dropped; [`Mac::poll`] does nothing
    /// afterwards.
    pub fn stop(&mut self) {
        let eth = self.eth;
        self.evic.eth_iec().clear(ETH_IFS_MASK);
        eth.ien.write(Irq::empty());
        self.stop_dma();
        eth.cfg1.write(Cfg1::SOFTRESET);
        eth.con1.clear(Con1::ON);
        eth.irq.clear(Irq::all());
        self.evic.eth_ifs().clear(ETH_IFS_MASK);
        self.stopped = true;
    }

    /// Whether [`Mac::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The negotiated link, if up.
    pub fn link(&self) -> Option<Link> {
        self.phy.link()
    }

    /// All counters.
    pub fn stats(&self) -> MacStats {
        MacStats {
            rx: self.rx.stats,
            tx: self.tx.stats,
            irq: self.shared.counts(),
            link: self.phy.stats,
            hw: {
                let [
                    rx_dropped_overflow,
                    rx_ok,
                    rx_fcs_errors,
                    rx_alignment_errors,
                    tx_ok,
                    tx_single_collisions,
                    tx_multiple_collisions,
                ] = self.hw;
                HwCounts {
                    rx_dropped_overflow,
                    rx_ok,
                    rx_fcs_errors,
                    rx_alignment_errors,
                    tx_ok,
                    tx_single_collisions,
                    tx_multiple_collisions,
                }
            },
            control: self.control,
        }
    }

    /// Step 9: MAC settings that depend on the negotiated link (Harmony `LibMACOpen`).
    fn configure_for_link(&mut self, link: Link) {
        let eth = self.eth;
        let mut cfg1 = Cfg1::RXENABLE;
        let mut cfg2 =
            Cfg2::EXCESSDFR | Cfg2::AUTOPAD | Cfg2::PADENABLE | Cfg2::CRCENABLE | Cfg2::LENGTHCK;
        if link.full_duplex {
            cfg1 |= Cfg1::RXPAUSE | Cfg1::TXPAUSE;
            cfg2 |= Cfg2::FULLDPLX;
        }
        eth.cfg1.write(cfg1);
        eth.cfg2.write(cfg2);
        // Back-to-back gap 0x15 full duplex / 0x12 half; IPGR1 0x0C, IPGR2 0x12; collision
        // window 0x37, 15 retries (facts §1.3).
        eth.ipgt.write(if link.full_duplex { 0x15 } else { 0x12 });
        eth.ipgr.write(0x0C12);
        eth.clrt.write(0x370F);
        eth.supp.write(Supp::RESETRMII);
        eth.supp.write(if link.speed == Speed::Mbps100 {
            Supp::SPEEDRMII
        } else {
            Supp::empty()
        });
    }

    /// Stops the receiver and the transmitter and waits for both DMA engines to go idle
    /// (for `stop` and `recover_dma`).
    #[inline(never)]
    fn stop_dma(&mut self) {
        let eth = self.eth;
        eth.con1.clear(Con1::RXEN | Con1::TXRTS);
        if !wait_until(|| !eth.stat.read().intersects(Stat::RXBUSY | Stat::TXBUSY)) {
            self.control.busy_timeouts += 1;
        }
    }

    /// After a bus error the DMA engines' state is unknown (behaviour §2.6, Q6): stop both,
    /// rebuild both rings and restart. Frames in flight are lost; held buffers stay held,
    /// so TCP retransmits from them.
    fn recover_dma(&mut self) {
        let eth = self.eth;
        self.stop_dma();
        let tx_start = self.tx.reset();
        let rx_start = self.rx.arm_all();
        drain_bufcnt(eth);
        // SAFETY: as in `new`: rings of this driver's DMA region; both engines are stopped.
        unsafe {
            eth.txst.write(tx_start);
            eth.rxst.write(rx_start);
        }
        eth.con1.set(Con1::RXEN);
        self.control.dma_recoveries += 1;
    }

    /// Adds what each statistics register counted since the last sample (16 bits wide:
    /// it wraps at most once between samples) to its 32-bit total, in [`HwCounts`] order.
    fn sample_hw_counters(&mut self) {
        let e = self.eth;
        let registers = [
            &e.rxovflow,
            &e.frmrxok,
            &e.fcserr,
            &e.algnerr,
            &e.frmtxok,
            &e.scolfrm,
            &e.mcolfrm,
        ];
        for ((register, last), total) in registers
            .into_iter()
            .zip(self.hw_last.iter_mut())
            .zip(self.hw.iter_mut())
        {
            let now = register.read() as u16;
            *total += now.wrapping_sub(*last) as u32;
            *last = now;
        }
    }
}

/// Clears PMD3.ETH1MD if set: SYSKEY unlock, CFGCON0.PMDLOCK = 0, PMD3, restore the lock
/// and relock (Harmony `CLK_Initialize`). The unlock sequence must not be interrupted.
fn enable_module(cfg: &CfgRegisters) {
    if !cfg.pmd3.read().contains(Pmd3::ETH1MD) {
        return;
    }
    critical_section::with(|_| {
        cfg.syskey.write(0);
        cfg.syskey.write(SYSKEY_UNLOCK[0]);
        cfg.syskey.write(SYSKEY_UNLOCK[1]);
        let con0 = cfg.cfgcon0.read();
        cfg.cfgcon0.write(con0 - Cfgcon0::PMDLOCK);
        cfg.pmd3.write(cfg.pmd3.read() - Pmd3::ETH1MD);
        cfg.cfgcon0.write(con0);
        cfg.syskey.write(SYSKEY_LOCK);
    });
}

/// Writes BUFCDEC until BUFCNT reads 0 (at most 256 times: BUFCNT is 8 bits).
fn drain_bufcnt(eth: &EthRegisters) {
    for _ in 0..=255 {
        if eth.stat.read().bufcnt() == 0 {
            return;
        }
        eth.con1.set(Con1::BUFCDEC);
    }
}

/// Spins until `done` or the limit; false on timeout.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..BUSY_SPIN_LIMIT {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}
