//! The simulated board: the chip's register blocks and DMA memory in host memory, the
//! Ethernet controller model behind them, a virtual clock, and interrupt delivery.
//!
//! The firmware gets `&'static` register blocks and a DMA region from the board and runs
//! unchanged. Each register access it makes reaches the board as a bus cycle (through the
//! hook in `mzw1_pac::reg::bus`), so the model reacts at the exact access, as silicon does.
//! The Ethernet interrupt is delivered between firmware calls, when IFS5.ETHIF and
//! IEC5.ETHIE are set and IPC41 gives it a non-zero priority, by calling the firmware's
//! handler: the board stands in for the CPU taking vector 165.

use crate::eth::{EthModel, Faults, ModelStats};
use crate::mem::{Block, Bus, leak_zeroed};
use crate::phy::PhyConfig;
use mzw1_pac::cfg::{CfgRegisters, Cfgcon0, Pmd3, SYSKEY_UNLOCK};
use mzw1_pac::evic::{
    ETH_IFS_INDEX, ETH_IFS_MASK, ETH_IPC_INDEX, ETH_IPC_PRIORITY_SHIFT, EvicRegisters,
};
use mzw1_pac::reg::bus::{Access, install};
use mzw1_pac::{EthRegisters, evic};
use mzw1_wss::mac::{DmaMemory, DmaWindow, Peripherals};
use mzw1_wss::time::Instant;
use std::cell::{RefCell, RefMut};
use std::mem::{offset_of, size_of};
use std::rc::{Rc, Weak};
use std::sync::Once;

/// What runs on the board.
pub trait Firmware {
    /// The Ethernet interrupt (vector 165) fired.
    fn on_interrupt(&mut self, now: Instant);
    /// One pass of the superloop.
    fn poll(&mut self, now: Instant);
}

/// Board set-up.
#[derive(Clone, Copy, Debug)]
pub struct BoardConfig {
    /// The PHY and its link partner.
    pub phy: PhyConfig,
    /// Consecutive interrupt entries after which delivery is declared an interrupt storm.
    pub storm_limit: u32,
}

impl Default for BoardConfig {
    fn default() -> Self {
        BoardConfig {
            phy: PhyConfig::default(),
            storm_limit: 64,
        }
    }
}

/// Physical address where the first DMA region is placed (KSEG0/KSEG1 data RAM starts at
/// physical 0; an offset keeps address 0 invalid, so a null pointer is a bus error).
const FIRST_DMA_PHYS: u32 = 0x0000_1000;

/// PMD3 at reset: every implemented bit set, so every module is off until enabled
/// [I]: the EDC gives PMD3's POR value as unknown (startup facts §1).
const PMD3_RESET: u32 = 0x1903_1317;
/// CFGCON0 at reset: the copy of DEVCFG0 that Harmony's configuration words produce
/// (0x20800001; PMDLOCK = 0).
const CFGCON0_RESET: u32 = 0x2080_0001;

struct Core {
    eth_block: Block,
    evic: Block,
    cfg: Block,
    eth: EthModel,
    bus: Bus,
    now_ns: u64,
    syskey_step: u8,
    unlocked: bool,
    cfgcon0: u32,
    pmd3: u32,
    interrupts_delivered: u64,
    storms: u64,
}

thread_local! {
    static BOARDS: RefCell<Vec<Weak<RefCell<Core>>>> = const { RefCell::new(Vec::new()) };
}

static HOOK: Once = Once::new();

/// The bus-cycle hook: finds the board whose register blocks hold `addr`.
fn on_bus_cycle(addr: usize, access: Access) {
    BOARDS.with(|boards| {
        let boards = boards.borrow();
        for core in boards.iter().filter_map(Weak::upgrade) {
            let mut core = core
                .try_borrow_mut()
                .expect("register access re-entered the board model");
            if core.owns(addr) {
                core.on_access(addr, access);
                return;
            }
        }
    });
}

impl Core {
    fn owns(&self, addr: usize) -> bool {
        self.eth_block.contains(addr) || self.evic.contains(addr) || self.cfg.contains(addr)
    }

    fn on_access(&mut self, addr: usize, access: Access) {
        if self.eth_block.contains(addr) {
            let off = self.eth_block.offset_of(addr);
            match access {
                Access::Read => self.eth.on_read(off),
                Access::Write => self.eth.on_write(off, &self.bus, self.now_ns),
            }
        } else if self.evic.contains(addr) {
            if access == Access::Write {
                self.evic_write(self.evic.offset_of(addr));
            }
        } else if self.cfg.contains(addr) && access == Access::Write {
            self.cfg_write(self.cfg.offset_of(addr));
        }
        self.latch_interrupt();
    }

    /// EVIC registers below OFF000 are 16-byte slots with CLR/SET/INV companions.
    fn evic_write(&mut self, off: usize) {
        let off_base = offset_of!(EvicRegisters, off);
        if off >= off_base {
            return; // OFFnnn: plain words
        }
        let slot = off & !0xF;
        let alias = off & 0xC;
        if alias == 0 {
            return;
        }
        let v = self.evic.get(off);
        let old = self.evic.get(slot);
        let new = match alias {
            4 => old & !v,
            8 => old | v,
            _ => old ^ v,
        };
        self.evic.put(slot, new);
        self.evic.put(off, 0);
    }

    /// SYSKEY unlock sequence, CFGCON0 (needs the unlock [I]) and PMD3 (needs
    /// PMDLOCK = 0); PMD3.ETH1MD gates the Ethernet module's clock.
    fn cfg_write(&mut self, off: usize) {
        let syskey = offset_of!(CfgRegisters, syskey);
        let cfgcon0 = offset_of!(CfgRegisters, cfgcon0);
        let pmd3 = offset_of!(CfgRegisters, pmd3);
        let v = self.cfg.get(off);
        if off == syskey {
            (self.syskey_step, self.unlocked) = match (self.syskey_step, v) {
                (_, x) if x == SYSKEY_UNLOCK[0] => (1, false),
                (1, x) if x == SYSKEY_UNLOCK[1] => (0, true),
                (_, _) => (0, false),
            };
            self.cfg.put(off, 0);
        } else if off == cfgcon0 {
            if self.unlocked {
                self.cfgcon0 = v;
            }
        } else if off == pmd3 && !Cfgcon0::from_bits_retain(self.cfgcon0).contains(Cfgcon0::PMDLOCK)
        {
            self.pmd3 = v;
            self.eth
                .set_enabled(!Pmd3::from_bits_retain(v).contains(Pmd3::ETH1MD));
        }
        self.publish_cfg();
    }

    /// Writes the modelled configuration registers back (a refused write reads back the
    /// old value).
    fn publish_cfg(&self) {
        self.cfg
            .put(offset_of!(CfgRegisters, cfgcon0), self.cfgcon0);
        self.cfg.put(offset_of!(CfgRegisters, pmd3), self.pmd3);
    }

    /// The EVIC latches the Ethernet request into IFS5.ETHIF while it is asserted.
    fn latch_interrupt(&mut self) {
        if self.eth.interrupt_request() {
            let ifs = offset_of!(EvicRegisters, ifs) + 16 * ETH_IFS_INDEX;
            self.evic.put(ifs, self.evic.get(ifs) | ETH_IFS_MASK);
        }
    }

    fn interrupt_deliverable(&self) -> bool {
        let ifs = self
            .evic
            .get(offset_of!(EvicRegisters, ifs) + 16 * ETH_IFS_INDEX);
        let iec = self
            .evic
            .get(offset_of!(EvicRegisters, iec) + 16 * ETH_IFS_INDEX);
        let ipc = self
            .evic
            .get(offset_of!(EvicRegisters, ipc) + 16 * ETH_IPC_INDEX);
        let priority = (ipc >> ETH_IPC_PRIORITY_SHIFT) & 7;
        ifs & iec & ETH_IFS_MASK != 0 && priority != 0
    }
}

/// The simulated board.
pub struct Board {
    core: Rc<RefCell<Core>>,
    eth: &'static EthRegisters,
    evic: &'static EvicRegisters,
    cfg: &'static CfgRegisters,
    next_phys: u32,
    storm_limit: u32,
}

impl Board {
    /// A board at time 0, every module switched off, cable plugged in.
    pub fn new(config: BoardConfig) -> Board {
        HOOK.call_once(|| install(on_bus_cycle));
        let eth_block = Block::new(size_of::<EthRegisters>());
        let evic = Block::new(size_of::<EvicRegisters>());
        let cfg = Block::new(size_of::<CfgRegisters>());
        let core = Core {
            eth_block,
            evic,
            cfg,
            eth: EthModel::new(eth_block, config.phy),
            bus: Bus::default(),
            now_ns: 0,
            syskey_step: 0,
            unlocked: false,
            cfgcon0: CFGCON0_RESET,
            pmd3: PMD3_RESET,
            interrupts_delivered: 0,
            storms: 0,
        };
        core.publish_cfg();
        let core = Rc::new(RefCell::new(core));
        BOARDS.with(|b| {
            let mut b = b.borrow_mut();
            b.retain(|w| w.strong_count() > 0);
            b.push(Rc::downgrade(&core));
        });
        // SAFETY: the blocks are leaked, zero-initialised and sized for these structs,
        // whose fields are all volatile cells; they live for the rest of the process.
        let (eth, evic, cfg) = unsafe {
            (
                &*(eth_block.base as *const EthRegisters),
                &*(evic.base as *const EvicRegisters),
                &*(cfg.base as *const CfgRegisters),
            )
        };
        Board {
            core,
            eth,
            evic,
            cfg,
            next_phys: FIRST_DMA_PHYS,
            storm_limit: config.storm_limit,
        }
    }

    /// The register blocks, as the firmware sees them.
    pub fn peripherals(&self) -> Peripherals<'static> {
        Peripherals {
            eth: self.eth,
            evic: self.evic,
            cfg: self.cfg,
        }
    }

    /// A DMA region for the firmware, mapped on the board's bus, and its address window.
    pub fn alloc_dma<const RXD: usize, const RXB: usize, const TXB: usize>(
        &mut self,
    ) -> (&'static mut DmaMemory<RXD, RXB, TXB>, DmaWindow) {
        let len = size_of::<DmaMemory<RXD, RXB, TXB>>();
        let host = leak_zeroed(len);
        let phys = self.next_phys;
        self.next_phys = (phys + len as u32 + 0xFFF) & !0xFFF;
        self.core.borrow_mut().bus.map(phys, len, host);
        // SAFETY: a fresh, zeroed, 16-byte-aligned leaked allocation of the right size;
        // DmaMemory is plain words and bytes.
        let mem = unsafe { &mut *(host as *mut DmaMemory<RXD, RXB, TXB>) };
        // SAFETY: the bus maps `phys` onto `host` for the whole region.
        let window = unsafe { DmaWindow::new(host as usize, phys) };
        (mem, window)
    }

    /// Board time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.core.borrow().now_ns
    }

    /// Board time as the firmware's millisecond clock.
    pub fn now(&self) -> Instant {
        Instant::from_millis((self.now_ns() / 1_000_000) as u32)
    }

    /// Sets board time (it never goes backwards).
    pub fn set_now_ns(&self, t: u64) {
        let mut c = self.core.borrow_mut();
        c.now_ns = c.now_ns.max(t);
        let now = c.now_ns;
        c.eth.tick(now);
    }

    /// Advances board time.
    pub fn advance_ns(&self, dt: u64) {
        let t = self.now_ns() + dt;
        self.set_now_ns(t);
    }

    /// A frame (with its FCS) arrives on the RMII interface from the wire.
    pub fn receive(&self, frame: &[u8]) {
        let mut guard = self.core.borrow_mut();
        let core = &mut *guard;
        core.eth.receive(frame, &core.bus);
        core.latch_interrupt();
    }

    /// Frames (with FCS) the controller has put on the wire since the last call.
    pub fn take_transmitted(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.core.borrow_mut().eth.tx_out)
    }

    /// Whether the CPU would now take vector 165.
    pub fn interrupt_pending(&self) -> bool {
        self.core.borrow().interrupt_deliverable()
    }

    /// Runs the firmware's handler while the interrupt is pending; returns how many
    /// times it ran. More than `storm_limit` consecutive entries count as a storm and
    /// stop delivery for this call.
    pub fn service_interrupts(&self, fw: &mut impl Firmware) -> u32 {
        let mut n = 0;
        while self.interrupt_pending() {
            if n >= self.storm_limit {
                self.core.borrow_mut().storms += 1;
                break;
            }
            let now = self.now();
            fw.on_interrupt(now);
            n += 1;
        }
        self.core.borrow_mut().interrupts_delivered += n as u64;
        n
    }

    /// One pass of the firmware: pending interrupts, the superloop, and the interrupts
    /// that pass raised.
    pub fn step(&self, fw: &mut impl Firmware) {
        self.service_interrupts(fw);
        fw.poll(self.now());
        self.service_interrupts(fw);
    }

    /// Faults to inject.
    pub fn faults(&self) -> RefMut<'_, Faults> {
        RefMut::map(self.core.borrow_mut(), |c| &mut c.eth.faults)
    }

    /// The model's counters.
    pub fn model_stats(&self) -> ModelStats {
        self.core.borrow().eth.stats
    }

    /// Interrupt handler entries so far, and interrupt storms detected.
    pub fn interrupt_counts(&self) -> (u64, u64) {
        let c = self.core.borrow();
        (c.interrupts_delivered, c.storms)
    }

    /// Plugs or pulls the Ethernet cable.
    pub fn set_cable(&self, connected: bool) {
        let mut c = self.core.borrow_mut();
        let now = c.now_ns;
        c.eth.phy.set_cable(connected, now);
    }

    /// Whether the PHY reports link.
    pub fn phy_link_up(&self) -> bool {
        self.core.borrow().eth.phy.link_up()
    }

    /// The station address the firmware programmed (EMAC1SA0–2).
    pub fn station_address(&self) -> [u8; 6] {
        let r = |x: u32| [x as u8, (x >> 8) as u8];
        let [a, b] = r(self.eth.sa2.read());
        let [c, d] = r(self.eth.sa1.read());
        let [e, f] = r(self.eth.sa0.read());
        [a, b, c, d, e, f]
    }

    /// Whether the Ethernet module's clock is on (PMD3.ETH1MD = 0).
    pub fn ethernet_enabled(&self) -> bool {
        !Pmd3::from_bits_retain(self.core.borrow().pmd3).contains(Pmd3::ETH1MD)
    }

    /// The EVIC's vector-offset register for the Ethernet vector (OFF165).
    pub fn eth_vector_offset(&self) -> u32 {
        self.evic.off[evic::ETH_VECTOR].read()
    }
}
