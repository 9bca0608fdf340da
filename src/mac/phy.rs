//! MIIM access and the PHY's link state machine (LAN8720A / LAN8740 at MIIM address 0).
//!
//! MIIM cycles follow Harmony's sequence (pic32mzw1-eth-facts.md §1.3, behaviour §6.4):
//! a write is MADR then MWTD (which starts the cycle); a read is MADR, MCMD.READ, wait
//! while MIIMBUSY, clear MCMD, read MRDD. BUSY rises a few clocks after the command, so
//! the driver waits a little before sampling it. One cycle is 64 MDC periods, about
//! 26 µs at 2.5 MHz; every wait is bounded and a PHY that never answers is counted, never
//! waited on forever.
//!
//! The link state machine never blocks: it resets the PHY (BMCR.RESET, up to 500 ms as in
//! Harmony's LAN87x0 configuration), advertises 10/100 half/full, restarts
//! auto-negotiation and polls BMSR (LINK_STATUS latches low, so it is read twice). The
//! negotiated mode is the best one both sides advertise (ANAR & ANLPAR), which works for
//! any IEEE 802.3 clause-22 PHY.

use crate::time::Instant;
use mzw1_pac::EthRegisters;
use mzw1_pac::eth::{Mcmd, Mind, madr};
use mzw1_pac::phy::{ANAR, ANLPAR, Anar, BMCR, BMSR, Bmcr, Bmsr};

/// Reads of MIND before giving up on a cycle (≈ 100 µs or more on the target).
const MIIM_SPIN_LIMIT: u32 = 20_000;
/// A PHY reset that has not cleared by then is retried.
const PHY_RESET_TIMEOUT_MS: u32 = 500;
/// Auto-negotiation that has not completed by then is restarted.
const AUTONEG_TIMEOUT_MS: u32 = 4_000;
/// Link polling period.
const LINK_POLL_MS: u32 = 50;

/// Link speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 10 Mb/s.
    Mbps10,
    /// 100 Mb/s.
    Mbps100,
}

/// The link as negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Speed.
    pub speed: Speed,
    /// Full duplex.
    pub full_duplex: bool,
}

/// The MIIM cycle did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiimTimeout;

/// MIIM access to one PHY.
pub(crate) struct Miim<'a> {
    pub(crate) regs: &'a EthRegisters,
    pub(crate) phy: u8,
}

impl Miim<'_> {
    fn wait_idle(&self) -> Result<(), MiimTimeout> {
        for _ in 0..MIIM_SPIN_LIMIT {
            if !self.regs.mind.read().contains(Mind::MIIMBUSY) {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(MiimTimeout)
    }

    /// BUSY rises about 2–4 host clocks after the command (Harmony adds NOPs here).
    #[inline(always)]
    fn settle() {
        for _ in 0..4 {
            core::hint::spin_loop();
        }
    }

    /// Reads a PHY register.
    pub(crate) fn read(&self, reg: u8) -> Result<u16, MiimTimeout> {
        self.wait_idle()?;
        self.regs.madr.write(madr(self.phy, reg));
        self.regs.mcmd.write(Mcmd::READ);
        Self::settle();
        let r = self.wait_idle();
        self.regs.mcmd.write(Mcmd::empty());
        r?;
        Ok(self.regs.mrdd.read() as u16)
    }

    /// Writes a PHY register.
    pub(crate) fn write(&self, reg: u8, value: u16) -> Result<(), MiimTimeout> {
        self.wait_idle()?;
        self.regs.madr.write(madr(self.phy, reg));
        self.regs.mwtd.write(value as u32);
        Self::settle();
        self.wait_idle()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// BMCR.RESET written at `since`; waiting for it to self-clear.
    Resetting { since: Instant },
    /// Auto-negotiation restarted at `since`; waiting for link.
    Negotiating { since: Instant },
    /// Link up; polled every LINK_POLL_MS.
    Up(Link),
}

/// What the state machine reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkChange {
    None,
    Up(Link),
    Down,
}

/// Link counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Link-up transitions.
    pub ups: u32,
    /// Link-down transitions.
    pub downs: u32,
    /// PHY resets issued (first one included).
    pub phy_resets: u32,
    /// Auto-negotiation restarts after a timeout.
    pub autoneg_restarts: u32,
    /// MIIM cycles that did not complete.
    pub miim_timeouts: u32,
}

pub(crate) struct PhyState {
    phase: Phase,
    next_poll: Instant,
    pub(crate) stats: LinkStats,
}

impl PhyState {
    /// Starts with a PHY reset.
    pub(crate) fn start(miim: &Miim<'_>, now: Instant) -> PhyState {
        let mut s = PhyState {
            phase: Phase::Resetting { since: now },
            next_poll: now,
            stats: LinkStats::default(),
        };
        s.reset(miim, now);
        s
    }

    fn reset(&mut self, miim: &Miim<'_>, now: Instant) {
        self.stats.phy_resets += 1;
        self.write(miim, BMCR, Bmcr::RESET.bits());
        self.phase = Phase::Resetting { since: now };
    }

    /// Reads a PHY register; a cycle that does not complete is counted. Out of line:
    /// the count is then written once, not at each of the eight reads.
    #[inline(never)]
    fn read(&mut self, miim: &Miim<'_>, reg: u8) -> Option<u16> {
        let r = miim.read(reg);
        if r.is_err() {
            self.stats.miim_timeouts += 1;
        }
        r.ok()
    }

    /// Writes a PHY register; a cycle that does not complete is counted.
    #[inline(never)]
    fn write(&mut self, miim: &Miim<'_>, reg: u8, value: u16) {
        if miim.write(reg, value).is_err() {
            self.stats.miim_timeouts += 1;
        }
    }

    fn restart_autoneg(&mut self, miim: &Miim<'_>, now: Instant) {
        let advertise =
            Anar::SELECTOR_802_3 | Anar::T10 | Anar::T10_FDX | Anar::TX100 | Anar::TX100_FDX;
        self.write(miim, ANAR, advertise.bits());
        self.write(miim, BMCR, (Bmcr::AN_ENABLE | Bmcr::AN_RESTART).bits());
        self.phase = Phase::Negotiating { since: now };
    }

    /// The current link, if up.
    pub(crate) fn link(&self) -> Option<Link> {
        match self.phase {
            Phase::Up(l) => Some(l),
            _ => None,
        }
    }

    /// Advances the state machine; at most a few MIIM cycles per call.
    pub(crate) fn poll(&mut self, miim: &Miim<'_>, now: Instant) -> LinkChange {
        if !now.reached(self.next_poll) {
            return LinkChange::None;
        }
        match self.phase {
            Phase::Resetting { since } => {
                self.next_poll = now.plus(1);
                match self.read(miim, BMCR) {
                    Some(b) if !Bmcr::from_bits_retain(b).contains(Bmcr::RESET) => {}
                    _ => {
                        if now.since(since) >= PHY_RESET_TIMEOUT_MS {
                            self.reset(miim, now);
                        }
                        return LinkChange::None;
                    }
                }
            }
            Phase::Negotiating { since } => {
                self.next_poll = now.plus(LINK_POLL_MS / 5);
                if let Some(link) = self.read_link(miim) {
                    self.stats.ups += 1;
                    self.phase = Phase::Up(link);
                    self.next_poll = now.plus(LINK_POLL_MS);
                    return LinkChange::Up(link);
                }
                if now.since(since) < AUTONEG_TIMEOUT_MS {
                    return LinkChange::None;
                }
                self.stats.autoneg_restarts += 1;
            }
            Phase::Up(_) => {
                self.next_poll = now.plus(LINK_POLL_MS);
                // A failed read is not evidence of a link loss.
                return match self.read(miim, BMSR) {
                    Some(s) if !Bmsr::from_bits_retain(s).contains(Bmsr::LINK_STATUS) => {
                        // The latch says the link dropped since the last read; the next
                        // read tells whether it is down now.
                        match self.read(miim, BMSR) {
                            Some(s) if Bmsr::from_bits_retain(s).contains(Bmsr::LINK_STATUS) => {
                                LinkChange::None
                            }
                            Some(_) => {
                                self.stats.downs += 1;
                                self.phase = Phase::Negotiating { since: now };
                                LinkChange::Down
                            }
                            None => LinkChange::None,
                        }
                    }
                    _ => LinkChange::None,
                };
            }
        }
        // The reset has cleared, or negotiation timed out: (re)start auto-negotiation,
        // from this one place.
        self.restart_autoneg(miim, now);
        LinkChange::None
    }

    /// The link if BMSR says up and negotiated, with the best common mode.
    fn read_link(&mut self, miim: &Miim<'_>) -> Option<Link> {
        // First read clears a stale latched-low LINK_STATUS.
        self.read(miim, BMSR)?;
        let bmsr = Bmsr::from_bits_retain(self.read(miim, BMSR)?);
        if !bmsr.contains(Bmsr::LINK_STATUS | Bmsr::AN_COMPLETE) {
            return None;
        }
        let ours = Anar::from_bits_retain(self.read(miim, ANAR)?);
        let theirs = Anar::from_bits_retain(self.read(miim, ANLPAR)?);
        let common = ours & theirs;
        // 100 Mb/s if both can, then full duplex if both can at that speed.
        let (speed, full_duplex) = if common.intersects(Anar::TX100 | Anar::TX100_FDX) {
            (Speed::Mbps100, common.contains(Anar::TX100_FDX))
        } else {
            (Speed::Mbps10, common.contains(Anar::T10_FDX))
        };
        Some(Link { speed, full_duplex })
    }
}
