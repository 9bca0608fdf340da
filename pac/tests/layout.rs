//! Every register's offset in its block, checked against the address table of
//! `shared/reference/pic32mzw1-eth-facts.md` (§1.2 ETH, §2 descriptor, §3 EVIC) and the
//! W1 DFP header for the configuration block. A padding mistake cannot pass.

use core::mem::{offset_of, size_of};
use mzw1_pac::cfg::{CFG_BASE, CfgRegisters};
use mzw1_pac::desc::Descriptor;
use mzw1_pac::eth::{ETH_BASE, EthRegisters};
use mzw1_pac::evic::{self, EVIC_BASE, EvicRegisters};

/// (name, absolute KSEG1 address) from the fact sheet's §1.2 table.
const ETH_TABLE: &[(&str, usize)] = &[
    ("ETHCON1", 0xBF843000),
    ("ETHCON2", 0xBF843010),
    ("ETHTXST", 0xBF843020),
    ("ETHRXST", 0xBF843030),
    ("ETHHT0", 0xBF843040),
    ("ETHHT1", 0xBF843050),
    ("ETHPMM0", 0xBF843060),
    ("ETHPMM1", 0xBF843070),
    ("ETHPMCS", 0xBF843080),
    ("ETHPMO", 0xBF843090),
    ("ETHRXFC", 0xBF8430A0),
    ("ETHRXWM", 0xBF8430B0),
    ("ETHIEN", 0xBF8430C0),
    ("ETHIRQ", 0xBF8430D0),
    ("ETHSTAT", 0xBF8430E0),
    ("ETHRXOVFLOW", 0xBF843100),
    ("ETHFRMTXOK", 0xBF843110),
    ("ETHSCOLFRM", 0xBF843120),
    ("ETHMCOLFRM", 0xBF843130),
    ("ETHFRMRXOK", 0xBF843140),
    ("ETHFCSERR", 0xBF843150),
    ("ETHALGNERR", 0xBF843160),
    ("EMAC1CFG1", 0xBF843200),
    ("EMAC1CFG2", 0xBF843210),
    ("EMAC1IPGT", 0xBF843220),
    ("EMAC1IPGR", 0xBF843230),
    ("EMAC1CLRT", 0xBF843240),
    ("EMAC1MAXF", 0xBF843250),
    ("EMAC1SUPP", 0xBF843260),
    ("EMAC1TEST", 0xBF843270),
    ("EMAC1MCFG", 0xBF843280),
    ("EMAC1MCMD", 0xBF843290),
    ("EMAC1MADR", 0xBF8432A0),
    ("EMAC1MWTD", 0xBF8432B0),
    ("EMAC1MRDD", 0xBF8432C0),
    ("EMAC1MIND", 0xBF8432D0),
    ("EMAC1SA0", 0xBF843300),
    ("EMAC1SA1", 0xBF843310),
    ("EMAC1SA2", 0xBF843320),
];

fn eth_struct_offsets() -> Vec<(&'static str, usize)> {
    vec![
        ("ETHCON1", offset_of!(EthRegisters, con1)),
        ("ETHCON2", offset_of!(EthRegisters, con2)),
        ("ETHTXST", offset_of!(EthRegisters, txst)),
        ("ETHRXST", offset_of!(EthRegisters, rxst)),
        ("ETHHT0", offset_of!(EthRegisters, ht0)),
        ("ETHHT1", offset_of!(EthRegisters, ht1)),
        ("ETHPMM0", offset_of!(EthRegisters, pmm0)),
        ("ETHPMM1", offset_of!(EthRegisters, pmm1)),
        ("ETHPMCS", offset_of!(EthRegisters, pmcs)),
        ("ETHPMO", offset_of!(EthRegisters, pmo)),
        ("ETHRXFC", offset_of!(EthRegisters, rxfc)),
        ("ETHRXWM", offset_of!(EthRegisters, rxwm)),
        ("ETHIEN", offset_of!(EthRegisters, ien)),
        ("ETHIRQ", offset_of!(EthRegisters, irq)),
        ("ETHSTAT", offset_of!(EthRegisters, stat)),
        ("ETHRXOVFLOW", offset_of!(EthRegisters, rxovflow)),
        ("ETHFRMTXOK", offset_of!(EthRegisters, frmtxok)),
        ("ETHSCOLFRM", offset_of!(EthRegisters, scolfrm)),
        ("ETHMCOLFRM", offset_of!(EthRegisters, mcolfrm)),
        ("ETHFRMRXOK", offset_of!(EthRegisters, frmrxok)),
        ("ETHFCSERR", offset_of!(EthRegisters, fcserr)),
        ("ETHALGNERR", offset_of!(EthRegisters, algnerr)),
        ("EMAC1CFG1", offset_of!(EthRegisters, cfg1)),
        ("EMAC1CFG2", offset_of!(EthRegisters, cfg2)),
        ("EMAC1IPGT", offset_of!(EthRegisters, ipgt)),
        ("EMAC1IPGR", offset_of!(EthRegisters, ipgr)),
        ("EMAC1CLRT", offset_of!(EthRegisters, clrt)),
        ("EMAC1MAXF", offset_of!(EthRegisters, maxf)),
        ("EMAC1SUPP", offset_of!(EthRegisters, supp)),
        ("EMAC1TEST", offset_of!(EthRegisters, test)),
        ("EMAC1MCFG", offset_of!(EthRegisters, mcfg)),
        ("EMAC1MCMD", offset_of!(EthRegisters, mcmd)),
        ("EMAC1MADR", offset_of!(EthRegisters, madr)),
        ("EMAC1MWTD", offset_of!(EthRegisters, mwtd)),
        ("EMAC1MRDD", offset_of!(EthRegisters, mrdd)),
        ("EMAC1MIND", offset_of!(EthRegisters, mind)),
        ("EMAC1SA0", offset_of!(EthRegisters, sa0)),
        ("EMAC1SA1", offset_of!(EthRegisters, sa1)),
        ("EMAC1SA2", offset_of!(EthRegisters, sa2)),
    ]
}

#[test]
fn eth_block_matches_the_fact_sheet() {
    assert_eq!(ETH_BASE, 0xBF843000, "W1 ETH base (not the EF 0xBF882000)");
    let offsets = eth_struct_offsets();
    assert_eq!(offsets.len(), ETH_TABLE.len());
    for ((name, off), (tname, addr)) in offsets.iter().zip(ETH_TABLE) {
        assert_eq!(name, tname);
        assert_eq!(ETH_BASE + off, *addr, "{name}");
    }
    // The block ends after EMAC1SA2's 16-byte slot.
    assert_eq!(size_of::<EthRegisters>(), 0x330);
}

#[test]
fn every_register_has_clr_set_inv_companions_16_bytes_apart() {
    // The examples in §1.1: ETHCON1CLR 0xBF843004, ETHCON1SET 0xBF843008,
    // ETHCON1INV 0xBF84300C, ETHIRQCLR 0xBF8430D4.
    assert_eq!(size_of::<mzw1_pac::reg::Reg>(), 16);
    let irq = ETH_BASE + offset_of!(EthRegisters, irq);
    assert_eq!(irq + 4, 0xBF8430D4);
    let con1 = ETH_BASE + offset_of!(EthRegisters, con1);
    assert_eq!(
        (con1 + 4, con1 + 8, con1 + 12),
        (0xBF843004, 0xBF843008, 0xBF84300C)
    );
}

#[test]
fn descriptor_is_five_words() {
    assert_eq!(size_of::<Descriptor>(), 20);
    assert_eq!(core::mem::align_of::<Descriptor>(), 4);
}

#[test]
fn evic_matches_the_fact_sheet() {
    assert_eq!(EVIC_BASE, 0xBF810000);
    assert_eq!(EVIC_BASE + offset_of!(EvicRegisters, intcon), 0xBF810000);
    assert_eq!(EVIC_BASE + offset_of!(EvicRegisters, priss), 0xBF810010);
    assert_eq!(EVIC_BASE + offset_of!(EvicRegisters, intstat), 0xBF810020);
    assert_eq!(EVIC_BASE + offset_of!(EvicRegisters, iptmr), 0xBF810030);
    // IFS5 at 0xBF810090, IEC5 at 0xBF810110, IPC41 at 0xBF8103D0, OFF165 at 0xBF8107D4.
    let base = EVIC_BASE + offset_of!(EvicRegisters, ifs);
    assert_eq!(base + 16 * evic::ETH_IFS_INDEX, 0xBF810090);
    let base = EVIC_BASE + offset_of!(EvicRegisters, iec);
    assert_eq!(base + 16 * evic::ETH_IFS_INDEX, 0xBF810110);
    let base = EVIC_BASE + offset_of!(EvicRegisters, ipc);
    assert_eq!(base + 16 * evic::ETH_IPC_INDEX, 0xBF8103D0);
    let base = EVIC_BASE + offset_of!(EvicRegisters, off);
    assert_eq!(base, 0xBF810540);
    assert_eq!(base + 4 * evic::ETH_VECTOR, 0xBF8107D4);
    // OFF168, the last vector, at 0xBF8107E0.
    assert_eq!(EVIC_BASE + size_of::<EvicRegisters>() - 4, 0xBF8107E0);
    assert_eq!(evic::ETH_VECTOR, 165);
    assert_eq!(evic::ETH_IFS_MASK, 0x20);
    assert_eq!(evic::ETH_IPC_MASK, 0x1C00 | 0x300);
    assert_eq!(mzw1_pac::evic::Intcon::MVEC.bits(), 1 << 12);
}

#[test]
fn config_block_matches_the_dfp() {
    assert_eq!(CFG_BASE, 0xBF800000);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, cfgcon0), 0xBF800000);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, cfgcon1), 0xBF800010);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, devid), 0xBF800060);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, syskey), 0xBF800080);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, pmd1), 0xBF800090);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, pmd2), 0xBF8000A0);
    assert_eq!(CFG_BASE + offset_of!(CfgRegisters, pmd3), 0xBF8000B0);
    assert_eq!(mzw1_pac::cfg::Pmd3::ETH1MD.bits(), 0x10);
    assert_eq!(mzw1_pac::cfg::Cfgcon0::PMDLOCK.bits(), 0x1000);
}

#[test]
fn bit_positions_match_the_fact_sheet() {
    use mzw1_pac::desc::DescHeader;
    use mzw1_pac::eth::*;
    // Descriptor header masks (Harmony SDCPT_HDR_*).
    assert_eq!(DescHeader::EOWN.bits(), 0x80);
    assert_eq!(DescHeader::NPV.bits(), 0x100);
    assert_eq!(DescHeader::BYTE_COUNT.bits(), 0x07FF0000);
    assert_eq!(DescHeader::EOP.bits(), 0x40000000);
    assert_eq!(DescHeader::SOP.bits(), 0x80000000);
    assert_eq!(DescHeader::empty().with_byte_count(1518).byte_count(), 1518);
    // ETHCON1.
    assert_eq!(Con1::BUFCDEC.bits(), 1);
    assert_eq!(Con1::RXEN.bits(), 1 << 8);
    assert_eq!(Con1::TXRTS.bits(), 1 << 9);
    assert_eq!(Con1::ON.bits(), 1 << 15);
    // ETHIRQ.
    let irq = [
        (Irq::RXOVFLW, 0),
        (Irq::RXBUFNA, 1),
        (Irq::TXABORT, 2),
        (Irq::TXDONE, 3),
        (Irq::RXACT, 5),
        (Irq::PKTPEND, 6),
        (Irq::RXDONE, 7),
        (Irq::FWMARK, 8),
        (Irq::EWMARK, 9),
        (Irq::RXBUSE, 13),
        (Irq::TXBUSE, 14),
    ];
    for (f, bit) in irq {
        assert_eq!(f.bits(), 1 << bit, "{f:?}");
    }
    // ETHSTAT.
    assert_eq!(Stat::BUSY.bits(), 1 << 7);
    assert_eq!(Stat::from_bits_retain(0x002A_0000).bufcnt(), 0x2A);
    // RX filters.
    assert_eq!(RxFilter::UCEN.bits(), 1 << 3);
    assert_eq!(RxFilter::CRCOKEN.bits(), 1 << 6);
    assert_eq!(RxFilter::HTEN.bits(), 1 << 15);
    // ETHCON2 RXBUF_SZ 10:4: 1536 bytes is 0x60 units.
    assert_eq!(con2_rx_buffer_size(1536) >> 4, 0x60);
    // MIIM: CLKSEL 5:2, PHYADDR 12:8.
    assert_eq!(mcfg_clksel(8).bits(), 8 << 2);
    assert_eq!(madr(0x1F, 0x1F), 0x1F1F);
    assert_eq!(Supp::SPEEDRMII.bits(), 1 << 8);
    assert_eq!(Supp::RESETRMII.bits(), 1 << 11);
    assert_eq!(Cfg1::SOFTRESET.bits(), 1 << 15);
    assert_eq!(Cfg2::EXCESSDFR.bits(), 1 << 14);
    // Station address: byte 0 in SA2 7:0, byte 5 in SA0 15:8.
    assert_eq!(
        station_address([1, 2, 3, 4, 5, 6]),
        [0x0605, 0x0403, 0x0201]
    );
}
