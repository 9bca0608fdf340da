//! A LAN8720A-like PHY on the MIIM bus: clause-22 registers, software reset,
//! auto-negotiation against a configurable link partner, and a cable that can be pulled.
//!
//! Register semantics are the IEEE 802.3 clause-22 ones the driver relies on
//! (pic32mzw1-eth-facts.md §5): BMCR.RESET and AN_RESTART self-clear, BMSR.LINK_STATUS
//! latches low until read, ANLPAR holds the partner's abilities once negotiated, and the
//! LAN87x0 register 31 reports the resolved speed and duplex.

use mzw1_pac::phy::{
    ANAR, ANER, ANLPAR, Anar, BMCR, BMSR, Bmcr, Bmsr, PHYID1, PHYID2, PSCSR, Pscsr,
};

/// PHY identifier of a LAN8720A (OUI 00:80:0F, model 0x0F) as reported in PHYID1/PHYID2.
pub const LAN8720A_ID: (u16, u16) = (0x0007, 0xC0F1);

/// BMSR abilities of a LAN87x0: 10/100 half/full, auto-negotiation, extended registers,
/// preamble suppression.
const ABILITIES: Bmsr = Bmsr::TX100_FDX
    .union(Bmsr::TX100_HDX)
    .union(Bmsr::T10_FDX)
    .union(Bmsr::T10_HDX)
    .union(Bmsr::PREAMBLE_SUPPRESS)
    .union(Bmsr::AN_ABLE)
    .union(Bmsr::EXTENDED);

/// Reads of BMCR during which a software reset is still in progress.
const RESET_READS: u32 = 2;

/// How the PHY's link behaves.
#[derive(Clone, Copy, Debug)]
pub struct PhyConfig {
    /// MIIM address it answers on.
    pub address: u8,
    /// What the link partner advertises.
    pub partner: Anar,
    /// Time from AN restart to link up, in nanoseconds of board time.
    pub autoneg_ns: u64,
    /// Whether a cable (and partner) is connected.
    pub cable: bool,
}

impl Default for PhyConfig {
    fn default() -> Self {
        PhyConfig {
            address: 0,
            partner: Anar::SELECTOR_802_3
                | Anar::T10
                | Anar::T10_FDX
                | Anar::TX100
                | Anar::TX100_FDX,
            autoneg_ns: 20_000_000,
            cable: true,
        }
    }
}

/// The PHY model.
pub struct PhyModel {
    pub(crate) config: PhyConfig,
    regs: [u16; 32],
    reset_reads_left: u32,
    an_started_ns: Option<u64>,
    link: bool,
    link_latched_low: bool,
    /// MIIM cycles addressed to another PHY address (nothing answers; reads give 0xFFFF).
    pub unanswered: u64,
}

impl PhyModel {
    pub(crate) fn new(config: PhyConfig) -> PhyModel {
        let mut p = PhyModel {
            config,
            regs: [0; 32],
            reset_reads_left: 0,
            an_started_ns: None,
            link: false,
            link_latched_low: true,
            unanswered: 0,
        };
        p.power_on_values(0);
        p
    }

    /// Register values after power-on or reset: auto-negotiation enabled and running,
    /// as the LAN87x0 strap default.
    fn power_on_values(&mut self, now: u64) {
        self.regs = [0; 32];
        self.regs[BMCR as usize] = (Bmcr::AN_ENABLE | Bmcr::SPEED100 | Bmcr::DUPLEX).bits();
        self.regs[PHYID1 as usize] = LAN8720A_ID.0;
        self.regs[PHYID2 as usize] = LAN8720A_ID.1;
        self.regs[ANAR as usize] =
            (Anar::SELECTOR_802_3 | Anar::T10 | Anar::T10_FDX | Anar::TX100 | Anar::TX100_FDX)
                .bits();
        self.set_link(false);
        self.an_started_ns = Some(now);
    }

    fn set_link(&mut self, up: bool) {
        if self.link && !up {
            self.link_latched_low = true;
        }
        self.link = up;
    }

    /// Whether frames pass: link negotiated and cable in.
    pub fn link_up(&self) -> bool {
        self.link
    }

    /// The resolved mode, when up: (100 Mb/s, full duplex).
    pub fn resolved(&self) -> Option<(bool, bool)> {
        self.link.then(|| {
            let common = Anar::from_bits_retain(self.regs[ANAR as usize]) & self.config.partner;
            if common.contains(Anar::TX100_FDX) {
                (true, true)
            } else if common.contains(Anar::TX100) {
                (true, false)
            } else if common.contains(Anar::T10_FDX) {
                (false, true)
            } else {
                (false, false)
            }
        })
    }

    /// Plugs or pulls the cable; plugging restarts negotiation.
    pub(crate) fn set_cable(&mut self, connected: bool, now: u64) {
        self.config.cable = connected;
        if connected {
            self.an_started_ns = Some(now);
        } else {
            self.set_link(false);
            self.an_started_ns = None;
        }
    }

    /// Advances negotiation to `now`.
    pub(crate) fn tick(&mut self, now: u64) {
        if self.reset_reads_left > 0 || !self.config.cable {
            return;
        }
        let an_enabled = Bmcr::from_bits_retain(self.regs[BMCR as usize]).contains(Bmcr::AN_ENABLE);
        if let Some(start) = self.an_started_ns
            && an_enabled
            && now.saturating_sub(start) >= self.config.autoneg_ns
        {
            self.an_started_ns = None;
            // The partner's abilities, with the acknowledge bit (0x4000).
            self.regs[ANLPAR as usize] = self.config.partner.bits() | 0x4000;
            self.regs[ANER as usize] = 0x0001; // link partner auto-negotiation able
            self.set_link(true);
        }
    }

    /// A MIIM read cycle.
    pub(crate) fn read(&mut self, phy: u8, reg: u8, now: u64) -> u16 {
        if phy != self.config.address {
            self.unanswered += 1;
            return 0xFFFF;
        }
        self.tick(now);
        let reg = reg & 0x1F;
        match reg {
            BMCR => {
                if self.reset_reads_left > 0 {
                    self.reset_reads_left -= 1;
                    if self.reset_reads_left == 0 {
                        self.power_on_values(now);
                    } else {
                        return self.regs[BMCR as usize] | Bmcr::RESET.bits();
                    }
                }
                self.regs[BMCR as usize]
            }
            BMSR => {
                let mut v = ABILITIES;
                if self.link && !self.link_latched_low {
                    v |= Bmsr::LINK_STATUS;
                }
                self.link_latched_low = false;
                if self.link {
                    v |= Bmsr::AN_COMPLETE;
                }
                v.bits()
            }
            PSCSR => {
                let mut v = Pscsr::empty();
                if let Some((fast, full)) = self.resolved() {
                    v |= Pscsr::AUTODONE;
                    v |= if fast {
                        Pscsr::SPEED_100
                    } else {
                        Pscsr::SPEED_10
                    };
                    if full {
                        v |= Pscsr::FULL_DUPLEX;
                    }
                }
                v.bits()
            }
            _ => self.regs[reg as usize],
        }
    }

    /// A MIIM write cycle.
    pub(crate) fn write(&mut self, phy: u8, reg: u8, value: u16, now: u64) {
        if phy != self.config.address {
            self.unanswered += 1;
            return;
        }
        let reg = reg & 0x1F;
        match reg {
            BMCR => {
                let v = Bmcr::from_bits_retain(value);
                if v.contains(Bmcr::RESET) {
                    self.reset_reads_left = RESET_READS;
                    self.set_link(false);
                    self.an_started_ns = None;
                    return;
                }
                self.regs[BMCR as usize] = (v - Bmcr::AN_RESTART).bits();
                if v.contains(Bmcr::AN_RESTART) && v.contains(Bmcr::AN_ENABLE) {
                    self.set_link(false);
                    self.regs[ANLPAR as usize] = 0;
                    self.an_started_ns = self.config.cable.then_some(now);
                }
            }
            ANAR => self.regs[ANAR as usize] = value,
            BMSR | PHYID1 | PHYID2 | ANLPAR | ANER | PSCSR => {}
            _ => self.regs[reg as usize] = value,
        }
    }
}
