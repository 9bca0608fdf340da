//! The Ethernet controller (ETH DMA block and EMAC) of the PIC32MZW1.
//!
//! Base address, offsets and bit positions: pic32mzw1-eth-facts.md §1.1–§1.3, taken from the
//! W1 device pack (DFP 1.8.326 `p32mz1025w104132.h`). The W1 block sits at 0xBF843000, not
//! at the PIC32MZ EF address 0xBF882000.

use crate::reg::{DmaReg, Reg};
use bitflags::bitflags;

/// KSEG1 (uncached) address of the ETH register block.
pub const ETH_BASE: usize = 0xBF84_3000;

/// The ETH/EMAC register block, 0x000–0x32F.
#[repr(C)]
pub struct EthRegisters {
    /// 0x000 ETHCON1: control 1.
    pub con1: Reg<Con1>,
    /// 0x010 ETHCON2: RX buffer size (bits 10:4, 16-byte units).
    pub con2: Reg<u32>,
    /// 0x020 ETHTXST: TX descriptor start (physical, 4-byte aligned).
    pub txst: DmaReg,
    /// 0x030 ETHRXST: RX descriptor start (physical, 4-byte aligned).
    pub rxst: DmaReg,
    /// 0x040 ETHHT0: hash table bits 31:0.
    pub ht0: Reg<u32>,
    /// 0x050 ETHHT1: hash table bits 63:32.
    pub ht1: Reg<u32>,
    /// 0x060 ETHPMM0: pattern-match mask, low word.
    pub pmm0: Reg<u32>,
    /// 0x070 ETHPMM1: pattern-match mask, high word.
    pub pmm1: Reg<u32>,
    /// 0x080 ETHPMCS: pattern-match checksum (16 bits).
    pub pmcs: Reg<u32>,
    /// 0x090 ETHPMO: pattern-match offset (16 bits).
    pub pmo: Reg<u32>,
    /// 0x0A0 ETHRXFC: receive filter configuration.
    pub rxfc: Reg<RxFilter>,
    /// 0x0B0 ETHRXWM: receive watermarks.
    pub rxwm: Reg<u32>,
    /// 0x0C0 ETHIEN: interrupt enables.
    pub ien: Reg<Irq>,
    /// 0x0D0 ETHIRQ: interrupt flags.
    pub irq: Reg<Irq>,
    /// 0x0E0 ETHSTAT: status (BUFCNT, busy flags).
    pub stat: Reg<Stat>,
    _reserved0: [u32; 4],
    /// 0x100 ETHRXOVFLOW: RX overflow count (16 bits).
    pub rxovflow: Reg<u32>,
    /// 0x110 ETHFRMTXOK: frames transmitted OK (16 bits).
    pub frmtxok: Reg<u32>,
    /// 0x120 ETHSCOLFRM: single-collision frames (16 bits).
    pub scolfrm: Reg<u32>,
    /// 0x130 ETHMCOLFRM: multiple-collision frames (16 bits).
    pub mcolfrm: Reg<u32>,
    /// 0x140 ETHFRMRXOK: frames received OK (16 bits).
    pub frmrxok: Reg<u32>,
    /// 0x150 ETHFCSERR: frames with FCS errors (16 bits).
    pub fcserr: Reg<u32>,
    /// 0x160 ETHALGNERR: frames with alignment errors (16 bits).
    pub algnerr: Reg<u32>,
    _reserved1: [u32; 36],
    /// 0x200 EMAC1CFG1: MAC configuration 1.
    pub cfg1: Reg<Cfg1>,
    /// 0x210 EMAC1CFG2: MAC configuration 2.
    pub cfg2: Reg<Cfg2>,
    /// 0x220 EMAC1IPGT: back-to-back inter-packet gap (bits 6:0).
    pub ipgt: Reg<u32>,
    /// 0x230 EMAC1IPGR: non-back-to-back inter-packet gap (IPGR1 14:8, IPGR2 6:0).
    pub ipgr: Reg<u32>,
    /// 0x240 EMAC1CLRT: collision window (13:8) and retry limit (3:0).
    pub clrt: Reg<u32>,
    /// 0x250 EMAC1MAXF: maximum frame length (15:0).
    pub maxf: Reg<u32>,
    /// 0x260 EMAC1SUPP: RMII support.
    pub supp: Reg<Supp>,
    /// 0x270 EMAC1TEST: test.
    pub test: Reg<u32>,
    /// 0x280 EMAC1MCFG: MIIM configuration.
    pub mcfg: Reg<Mcfg>,
    /// 0x290 EMAC1MCMD: MIIM command.
    pub mcmd: Reg<Mcmd>,
    /// 0x2A0 EMAC1MADR: MIIM address (PHYADDR 12:8, REGADDR 4:0).
    pub madr: Reg<u32>,
    /// 0x2B0 EMAC1MWTD: MIIM write data; writing starts the write cycle.
    pub mwtd: Reg<u32>,
    /// 0x2C0 EMAC1MRDD: MIIM read data.
    pub mrdd: Reg<u32>,
    /// 0x2D0 EMAC1MIND: MIIM indicators.
    pub mind: Reg<Mind>,
    _reserved2: [u32; 8],
    /// 0x300 EMAC1SA0: station address bytes 4 (7:0) and 5 (15:8).
    pub sa0: Reg<u32>,
    /// 0x310 EMAC1SA1: station address bytes 2 (7:0) and 3 (15:8).
    pub sa1: Reg<u32>,
    /// 0x320 EMAC1SA2: station address bytes 0 (7:0) and 1 (15:8).
    pub sa2: Reg<u32>,
}

impl EthRegisters {
    /// The ETH block of the PIC32MZW1.
    ///
    /// # Safety
    /// Only meaningful on the target; the caller must be the block's single owner.
    #[inline(always)]
    pub unsafe fn pic32mzw1() -> &'static EthRegisters {
        // SAFETY: the caller is on the target, where ETH_BASE is the ETH SFR block.
        unsafe { &*(ETH_BASE as *const EthRegisters) }
    }
}

bitflags! {
    /// ETHCON1 (§1.3). PTV, the pause timer value, is bits 31:16 ([`CON1_PTV_SHIFT`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Con1: u32 {
        /// Write 1 to decrement BUFCNT after software consumed an RX descriptor; reads 0.
        const BUFCDEC = 1 << 0;
        /// Manual flow control.
        const MANFC = 1 << 4;
        /// Automatic flow control from the RX watermarks.
        const AUTOFC = 1 << 7;
        /// RX logic enabled.
        const RXEN = 1 << 8;
        /// Transmit request: start the TX DMA; hardware clears it when done.
        const TXRTS = 1 << 9;
        /// Stop in idle mode.
        const SIDL = 1 << 13;
        /// Module on.
        const ON = 1 << 15;
        /// Pause timer value field.
        const PTV = 0xFFFF << 16;
    }
}

/// Shift of the PTV field in ETHCON1.
pub const CON1_PTV_SHIFT: u32 = 16;

/// ETHCON2.RXBUF_SZ is bits 10:4, in 16-byte units; 1..=0x7F (16..=2032 bytes) are valid.
pub const CON2_RXBUF_SZ_MASK: u32 = 0x7F << 4;

/// The ETHCON2 value for an RX buffer of `bytes` (a multiple of 16 in 16..=2032).
pub const fn con2_rx_buffer_size(bytes: u32) -> u32 {
    bytes & CON2_RXBUF_SZ_MASK
}

bitflags! {
    /// ETHRXFC receive filters (§1.3; priority order in pic32-eth-behaviour.md §3.7).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RxFilter: u32 {
        /// Accept broadcast.
        const BCEN = 1 << 0;
        /// Accept multicast.
        const MCEN = 1 << 1;
        /// Accept unicast not addressed to the station address.
        const NOTMEEN = 1 << 2;
        /// Accept unicast addressed to the station address.
        const UCEN = 1 << 3;
        /// Reject runts.
        const RUNTEN = 1 << 4;
        /// Accept only runts.
        const RUNTERREN = 1 << 5;
        /// Reject frames with a bad CRC.
        const CRCOKEN = 1 << 6;
        /// Accept only frames with a bad CRC.
        const CRCERREN = 1 << 7;
        /// Pattern-match mode field (bits 11:8).
        const PMMODE = 0xF << 8;
        /// Invert the pattern-match comparison.
        const NOTPM = 1 << 12;
        /// Accept magic packets.
        const MPEN = 1 << 14;
        /// Accept on hash-table match.
        const HTEN = 1 << 15;
    }
}

/// ETHRXWM: empty watermark bits 7:0, full watermark bits 23:16.
pub const fn rxwm(full: u8, empty: u8) -> u32 {
    ((full as u32) << 16) | empty as u32
}

bitflags! {
    /// ETHIRQ flags and ETHIEN enables (same positions, §1.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Irq: u32 {
        /// RX FIFO overflow (sticky).
        const RXOVFLW = 1 << 0;
        /// RX descriptor not available (sticky).
        const RXBUFNA = 1 << 1;
        /// TX abort (sticky).
        const TXABORT = 1 << 2;
        /// TX done (sticky).
        const TXDONE = 1 << 3;
        /// RX activity (sticky).
        const RXACT = 1 << 5;
        /// Packet pending: a level, set while BUFCNT ≠ 0; read-only.
        const PKTPEND = 1 << 6;
        /// RX done (sticky).
        const RXDONE = 1 << 7;
        /// Full watermark reached (level, read-only).
        const FWMARK = 1 << 8;
        /// Empty watermark reached (level, read-only).
        const EWMARK = 1 << 9;
        /// RX bus error (sticky).
        const RXBUSE = 1 << 13;
        /// TX bus error (sticky).
        const TXBUSE = 1 << 14;
    }
}

impl Irq {
    /// The flags that hardware sets and software clears through ETHIRQCLR.
    pub const STICKY: Irq = Irq::RXOVFLW
        .union(Irq::RXBUFNA)
        .union(Irq::TXABORT)
        .union(Irq::TXDONE)
        .union(Irq::RXACT)
        .union(Irq::RXDONE)
        .union(Irq::RXBUSE)
        .union(Irq::TXBUSE);
}

bitflags! {
    /// ETHSTAT (§1.3). BUFCNT is bits 23:16 ([`Stat::bufcnt`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Stat: u32 {
        /// RX logic is receiving data.
        const RXBUSY = 1 << 5;
        /// TX logic is sending data.
        const TXBUSY = 1 << 6;
        /// The module is on or completing a transaction (ETHBUSY).
        const BUSY = 1 << 7;
        /// Count of received descriptors not yet released with BUFCDEC.
        const BUFCNT = 0xFF << 16;
    }
}

impl Stat {
    /// BUFCNT: received descriptors not yet acknowledged with BUFCDEC.
    #[inline(always)]
    pub const fn bufcnt(self) -> u8 {
        (self.bits() >> 16) as u8
    }
}

bitflags! {
    /// EMAC1CFG1 (§1.3). POR value 0x800D (behaviour §6.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Cfg1: u32 {
        /// MAC receive enable.
        const RXENABLE = 1 << 0;
        /// Pass all received frames, control frames included.
        const PASSALL = 1 << 1;
        /// Act on received PAUSE frames.
        const RXPAUSE = 1 << 2;
        /// Allow sending PAUSE frames.
        const TXPAUSE = 1 << 3;
        /// Loop MAC TX back to MAC RX.
        const LOOPBACK = 1 << 4;
        /// Reset the TX function.
        const RESETTFUN = 1 << 8;
        /// Reset the TX MAC control sublayer.
        const RESETTMCS = 1 << 9;
        /// Reset the RX function.
        const RESETRFUN = 1 << 10;
        /// Reset the RX MAC control sublayer.
        const RESETRMCS = 1 << 11;
        /// Reset the TX random-number generator.
        const SIMRESET = 1 << 14;
        /// Hold the MAC in soft reset.
        const SOFTRESET = 1 << 15;
    }
}

bitflags! {
    /// EMAC1CFG2 (§1.3). POR value 0x40B4 (behaviour §8.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Cfg2: u32 {
        /// Full duplex.
        const FULLDPLX = 1 << 0;
        /// Check frame lengths against the length/type field.
        const LENGTHCK = 1 << 1;
        /// Allow frames of any length.
        const HUGEFRM = 1 << 2;
        /// 4 bytes of proprietary header before the frame.
        const DELAYCRC = 1 << 3;
        /// Append a CRC to every transmitted frame.
        const CRCENABLE = 1 << 4;
        /// Pad short frames.
        const PADENABLE = 1 << 5;
        /// Pad short frames to 64 bytes.
        const VLANPAD = 1 << 6;
        /// Detect VLAN frames for padding.
        const AUTOPAD = 1 << 7;
        /// Check the preamble.
        const PUREPRE = 1 << 8;
        /// Allow long preambles.
        const LONGPRE = 1 << 9;
        /// No backoff after a collision.
        const NOBKOFF = 1 << 12;
        /// No backoff during backpressure.
        const BPNOBKOFF = 1 << 13;
        /// Defer to carrier indefinitely.
        const EXCESSDFR = 1 << 14;
    }
}

bitflags! {
    /// EMAC1SUPP: only SPEEDRMII and RESETRMII exist on W1 (§1.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Supp: u32 {
        /// 1 = 100 Mb/s, 0 = 10 Mb/s.
        const SPEEDRMII = 1 << 8;
        /// Hold the RMII logic in reset.
        const RESETRMII = 1 << 11;
    }
}

bitflags! {
    /// EMAC1MCFG. CLKSEL (bits 5:2) selects the MDC divisor ([`mcfg_clksel`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Mcfg: u32 {
        /// Scan increments the PHY address.
        const SCANINC = 1 << 0;
        /// Suppress the MII preamble.
        const NOPRE = 1 << 1;
        /// Clock-select field.
        const CLKSEL = 0xF << 2;
        /// Hold the MIIM block in reset.
        const RESETMGMT = 1 << 15;
    }
}

/// EMAC1MCFG.CLKSEL for a field value (8 = host clock / 40, §1.3).
pub const fn mcfg_clksel(value: u32) -> Mcfg {
    Mcfg::from_bits_retain((value & 0xF) << 2)
}

/// EMAC1MADR for a PHY address and register number.
pub const fn madr(phy: u8, reg: u8) -> u32 {
    (((phy as u32) & 0x1F) << 8) | ((reg as u32) & 0x1F)
}

bitflags! {
    /// EMAC1MCMD.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Mcmd: u32 {
        /// One read cycle; the data appears in EMAC1MRDD.
        const READ = 1 << 0;
        /// Continuous read cycles.
        const SCAN = 1 << 1;
    }
}

bitflags! {
    /// EMAC1MIND.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Mind: u32 {
        /// A MII management cycle is in progress.
        const MIIMBUSY = 1 << 0;
        /// A scan is in progress.
        const SCAN = 1 << 1;
        /// Read data not yet valid.
        const NOTVALID = 1 << 2;
        /// Link failure.
        const LINKFAIL = 1 << 3;
    }
}

crate::reg_value_flags!(
    Con1, RxFilter, Irq, Stat, Cfg1, Cfg2, Supp, Mcfg, Mcmd, Mind
);

/// Station address register values (SA0, SA1, SA2) for a MAC address: byte 0 goes to
/// SA2 bits 7:0 and byte 5 to SA0 bits 15:8 (§1.3, Harmony `DRV_ETH_MACSetAddress`).
pub const fn station_address(mac: [u8; 6]) -> [u32; 3] {
    [
        (mac[4] as u32) | (mac[5] as u32) << 8,
        (mac[2] as u32) | (mac[3] as u32) << 8,
        (mac[0] as u32) | (mac[1] as u32) << 8,
    ]
}
