//! The MAC driver against the simulated controller: bring-up, frames of every size both
//! ways through many ring wrap-arounds, every injected fault recovered without losing
//! later frames, and the counters that account for each frame.

use mzw1_sim::crc::{append_fcs, fcs_ok};
use mzw1_sim::{Board, BoardConfig, Firmware, PhyConfig};
use mzw1_wss::mac::{IrqShared, Mac, MacConfig, MacEvents, MacStats, Speed, TxBuf};
use mzw1_wss::pac::phy::Anar;
use mzw1_wss::time::Instant;

const STATION: [u8; 6] = [0x02, 0x04, 0xA3, 0x12, 0x34, 0x56];
const PEER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
const ETHERTYPE: [u8; 2] = [0x88, 0xB5]; // IEEE 802 local experimental
const RXD: usize = 8;

/// A firmware that only runs the driver: it collects received frames and can be told to
/// use the interrupt or to poll.
struct DriverFw {
    mac: Mac<'static>,
    received: Vec<Vec<u8>>,
    events: MacEvents,
    interrupts: u32,
    receive_in_poll: bool,
}

impl Firmware for DriverFw {
    fn on_interrupt(&mut self, _now: Instant) {
        self.interrupts += 1;
        self.mac.on_interrupt();
    }

    fn poll(&mut self, now: Instant) {
        self.events |= self.mac.poll(now);
        if self.receive_in_poll {
            self.drain();
        }
    }
}

impl DriverFw {
    fn drain(&mut self) {
        while let Some(mut f) = self.mac.rx.receive() {
            self.received.push(f.data().to_vec());
        }
    }

    fn stats(&self) -> MacStats {
        self.mac.stats()
    }

    fn send(&mut self, payload: &[u8]) -> Result<(), &'static str> {
        let b = self.mac.tx.alloc().ok_or("no TX buffer")?;
        let len = write_frame(self.mac.tx.buffer(&b).ok_or("in flight")?, payload);
        self.mac.tx.send(b, len).map_err(|_| "send refused")
    }
}

fn write_frame(buf: &mut [u8], payload: &[u8]) -> usize {
    buf[..6].copy_from_slice(&PEER);
    buf[6..12].copy_from_slice(&STATION);
    buf[12..14].copy_from_slice(&ETHERTYPE);
    buf[14..14 + payload.len()].copy_from_slice(payload);
    14 + payload.len()
}

/// A frame for the board (with FCS) of `len` bytes before the FCS, tagged with `seq`.
fn frame_to_board(len: usize, seq: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(len + 4);
    f.extend_from_slice(&STATION);
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() as u32).wrapping_mul(31).wrapping_add(seq) as u8);
    }
    f.truncate(len);
    append_fcs(&mut f);
    f
}

struct Rig {
    board: Board,
    fw: DriverFw,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_board(BoardConfig::default())
    }

    fn with_board(config: BoardConfig) -> Rig {
        let mut board = Board::new(config);
        let (dma, window) = board.alloc_dma::<RXD, 12, 8>();
        let shared: &'static IrqShared = Box::leak(Box::new(IrqShared::new()));
        let config = MacConfig {
            mac_address: STATION,
            ..MacConfig::default()
        };
        let mac = Mac::new(
            board.peripherals(),
            dma,
            window,
            shared,
            config,
            board.now(),
        );
        let fw = DriverFw {
            mac,
            received: Vec::new(),
            events: MacEvents::empty(),
            interrupts: 0,
            receive_in_poll: true,
        };
        let mut rig = Rig { board, fw };
        rig.run_until(|r| r.fw.mac.link().is_some(), 1_000);
        rig
    }

    /// Steps the board 1 ms at a time until `done`, at most `limit_ms`.
    fn run_until(&mut self, done: impl Fn(&Rig) -> bool, limit_ms: u32) {
        for _ in 0..limit_ms {
            if done(self) {
                return;
            }
            self.board.advance_ns(1_000_000);
            self.board.step(&mut self.fw);
        }
        assert!(
            done(self),
            "condition not reached within {limit_ms} ms of board time"
        );
    }

    /// Runs `ms` milliseconds of board time (the driver samples the controller's 16-bit
    /// statistics registers every 100 ms).
    fn run_ms(&mut self, ms: u32) {
        for _ in 0..ms {
            self.board.advance_ns(1_000_000);
            self.board.step(&mut self.fw);
        }
    }

    fn step(&mut self) {
        self.board.advance_ns(10_000);
        self.board.step(&mut self.fw);
    }

    fn transmitted(&mut self) -> Vec<Vec<u8>> {
        self.board.take_transmitted()
    }
}

#[test]
fn bring_up_enables_the_module_and_negotiates_the_link() {
    let mut board = Board::new(BoardConfig::default());
    assert!(!board.ethernet_enabled(), "PMD3 starts with the module off");
    let (dma, window) = board.alloc_dma::<4, 4, 4>();
    let shared: &'static IrqShared = Box::leak(Box::new(IrqShared::new()));
    let config = MacConfig {
        mac_address: STATION,
        ..MacConfig::default()
    };
    let mut mac = Mac::new(
        board.peripherals(),
        dma,
        window,
        shared,
        config,
        board.now(),
    );
    assert!(
        board.ethernet_enabled(),
        "the driver cleared PMD3.ETH1MD behind SYSKEY"
    );
    assert_eq!(board.station_address(), STATION);
    assert!(mac.link().is_none());
    let mut up_at = None;
    for ms in 0..200 {
        board.advance_ns(1_000_000);
        if mac.poll(board.now()).contains(MacEvents::LINK_UP) {
            up_at = Some(ms);
            break;
        }
    }
    let up_at = up_at.expect("link up within 200 ms");
    assert!(
        up_at >= 19,
        "not before the PHY finished negotiating (20 ms), got {up_at}"
    );
    let link = mac.link().expect("link");
    assert_eq!(link.speed, Speed::Mbps100);
    assert!(link.full_duplex);
    let p = board.peripherals();
    use mzw1_wss::pac::eth::{Cfg1, Cfg2, Supp};
    assert!(p.eth.cfg1.read().contains(Cfg1::RXENABLE));
    assert!(!p.eth.cfg1.read().contains(Cfg1::SOFTRESET));
    assert!(
        p.eth
            .cfg2
            .read()
            .contains(Cfg2::FULLDPLX | Cfg2::PADENABLE | Cfg2::CRCENABLE)
    );
    assert_eq!(p.eth.ipgt.read(), 0x15);
    assert_eq!(p.eth.supp.read(), Supp::SPEEDRMII);
    assert_eq!(mac.stats().link.ups, 1);
    assert_eq!(mac.stats().link.miim_timeouts, 0);
    assert_eq!(mac.stats().control.busy_timeouts, 0);
}

#[test]
fn half_duplex_10_mbps_partner() {
    let phy = PhyConfig {
        partner: Anar::SELECTOR_802_3 | Anar::T10,
        ..PhyConfig::default()
    };
    let rig = Rig::with_board(BoardConfig {
        phy,
        ..BoardConfig::default()
    });
    let link = rig.fw.mac.link().expect("link");
    assert_eq!(link.speed, Speed::Mbps10);
    assert!(!link.full_duplex);
    let p = rig.board.peripherals();
    assert_eq!(p.eth.ipgt.read(), 0x12);
    assert!(p.eth.supp.read().is_empty());
}

#[test]
fn receives_every_size_from_60_to_1514_across_ring_wraps() {
    let mut rig = Rig::new();
    let mut expected = Vec::new();
    let mut seq = 0;
    // Every frame size (without FCS) 60..=1514, i.e. 64..=1518 on the wire, twice over,
    // with the ring drained after every 1..=RXD frames.
    for round in 0..2 {
        let mut len = 60;
        while len <= 1514 {
            let batch = 1 + (seq as usize + round) % RXD;
            for _ in 0..batch {
                if len > 1514 {
                    break;
                }
                let f = frame_to_board(len, seq);
                expected.push(f[..f.len() - 4].to_vec());
                rig.board.receive(&f);
                seq += 1;
                len += 1;
            }
            rig.step();
        }
    }
    rig.run_ms(200);
    assert_eq!(rig.fw.received.len(), expected.len());
    for (i, (got, want)) in rig.fw.received.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "frame {i}");
    }
    let s = rig.fw.stats();
    assert_eq!(s.rx.frames as usize, expected.len());
    assert_eq!(
        s.rx.bytes as usize,
        expected.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(
        s.rx.dropped_status + s.rx.dropped_runt + s.rx.dropped_oversize,
        0
    );
    assert_eq!(s.hw.rx_ok as usize, expected.len());
    assert_eq!(s.hw.rx_dropped_overflow, 0);
    assert_eq!(rig.board.model_stats().rx_no_descriptor, 0);
}

#[test]
fn transmits_every_size_from_14_to_1514_padded_with_fcs() {
    let mut rig = Rig::new();
    let mut sent = 0;
    let mut wire = Vec::new();
    for payload_len in 0..=1500 {
        let payload: Vec<u8> = (0..payload_len)
            .map(|i| (i * 7 + payload_len) as u8)
            .collect();
        while rig.fw.send(&payload).is_err() {
            rig.step();
            wire.extend(rig.transmitted());
        }
        sent += 1;
        if payload_len % 5 == 0 {
            rig.step();
            wire.extend(rig.transmitted());
        }
    }
    rig.step();
    rig.step();
    wire.extend(rig.transmitted());
    assert_eq!(wire.len(), sent);
    for (payload_len, f) in wire.iter().enumerate() {
        assert!(fcs_ok(f), "frame {payload_len} has a valid FCS");
        let len = 14 + payload_len;
        assert_eq!(
            f.len(),
            len.max(60) + 4,
            "frame {payload_len}: padded to 60 + FCS"
        );
        assert_eq!(&f[..6], &PEER);
        assert_eq!(&f[6..12], &STATION);
        let payload: Vec<u8> = (0..payload_len)
            .map(|i| (i * 7 + payload_len) as u8)
            .collect();
        assert_eq!(&f[14..len], &payload[..]);
        assert!(f[len..f.len() - 4].iter().all(|&b| b == 0), "zero padding");
    }
    let s = rig.fw.stats();
    assert_eq!(s.tx.frames as usize, sent);
    assert_eq!(s.tx.aborted, 0);
    assert_eq!(rig.fw.mac.tx.queued(), 0);
    assert_eq!(rig.fw.mac.tx.free_buffers(), 8);
}

#[test]
fn thousands_of_frames_both_ways_interleaved() {
    let mut rig = Rig::new();
    let mut rng = mzw1_sim::wire::Rng::new(7);
    let (mut rx_expected, mut tx_sent, mut wire) = (Vec::new(), 0usize, Vec::new());
    for seq in 0..6000u32 {
        let len = 60 + rng.below(1455) as usize;
        let f = frame_to_board(len, seq);
        rx_expected.push(f[..f.len() - 4].to_vec());
        rig.board.receive(&f);
        let payload = seq.to_be_bytes().repeat(1 + rng.below(300) as usize);
        if rig.fw.send(&payload).is_ok() {
            tx_sent += 1;
        }
        if rng.below(4) == 0 || seq % RXD as u32 == RXD as u32 - 1 {
            rig.step();
            wire.extend(rig.transmitted());
        }
    }
    rig.step();
    wire.extend(rig.transmitted());
    assert_eq!(rig.fw.received, rx_expected);
    assert_eq!(wire.len(), tx_sent);
    assert!(tx_sent > 5000, "most sends found a buffer ({tx_sent})");
    assert!(wire.iter().all(|f| fcs_ok(f)));
    let s = rig.fw.stats();
    assert_eq!(s.rx.frames, 6000);
    assert_eq!(s.tx.frames as usize, tx_sent);
}

#[test]
fn a_full_ring_drops_with_rxbufna_and_recovers() {
    let mut rig = Rig::new();
    // 3 more frames than descriptors arrive before the firmware runs.
    for seq in 0..RXD as u32 + 3 {
        rig.board.receive(&frame_to_board(100, seq));
    }
    rig.step();
    assert_eq!(rig.fw.received.len(), RXD);
    // Later frames all arrive.
    for seq in 100..200 {
        rig.board.receive(&frame_to_board(100, seq));
        rig.step();
    }
    assert_eq!(rig.fw.received.len(), RXD + 100);
    rig.run_ms(200);
    let s = rig.fw.stats();
    assert!(s.irq.rx_no_descriptor >= 1, "RXBUFNA seen: {:?}", s.irq);
    assert_eq!(
        s.hw.rx_dropped_overflow, 3,
        "ETHRXOVFLOW counts each lost frame"
    );
    assert_eq!(rig.board.model_stats().rx_no_descriptor, 3);
}

#[test]
fn injected_no_descriptor_on_an_empty_ring_is_restarted() {
    let mut rig = Rig::new();
    rig.board.faults().rx_no_descriptor = 1;
    rig.board.receive(&frame_to_board(200, 1)); // dropped: RXBUFNA, DMA stalls
    rig.step(); // driver sees RXBUFNA with BUFCNT = 0 and writes BUFCDEC
    for seq in 2..50 {
        rig.board.receive(&frame_to_board(200, seq));
        rig.step();
    }
    assert_eq!(
        rig.fw.received.len(),
        48,
        "every frame after the fault arrives"
    );
    rig.run_ms(200);
    let s = rig.fw.stats();
    assert_eq!(s.irq.rx_no_descriptor, 1);
    assert_eq!(s.hw.rx_dropped_overflow, 1);
}

#[test]
fn fifo_overflow_loses_one_frame_only() {
    let mut rig = Rig::new();
    rig.board.faults().rx_fifo_overflow = 2;
    for seq in 0..20 {
        rig.board.receive(&frame_to_board(300, seq));
        rig.step();
    }
    assert_eq!(rig.fw.received.len(), 18);
    rig.run_ms(200);
    let s = rig.fw.stats();
    assert_eq!(s.irq.rx_fifo_overflow, 2);
    assert_eq!(s.hw.rx_dropped_overflow, 2);
}

#[test]
fn crc_errors_runts_and_giants_are_dropped_and_counted() {
    let mut rig = Rig::new();
    let mut good = 0;
    for seq in 0..30u32 {
        match seq % 4 {
            0 => {
                let mut f = frame_to_board(500, seq);
                f[40] ^= 0x10; // damaged on the wire: FCS no longer matches
                rig.board.receive(&f);
            }
            1 => rig.board.receive(&frame_to_board(40, seq)), // runt: 44 bytes with FCS
            2 => rig.board.receive(&frame_to_board(1600, seq)), // giant: spans 2 buffers
            _ => {
                rig.board.receive(&frame_to_board(700, seq));
                good += 1;
            }
        }
        rig.step();
    }
    assert_eq!(rig.fw.received.len(), good);
    assert!(rig.fw.received.iter().all(|f| f.len() == 700));
    rig.run_ms(200);
    let s = rig.fw.stats();
    assert_eq!(
        s.hw.rx_fcs_errors, 8,
        "CRC errors: rejected by CRCOKEN, counted by ETHFCSERR"
    );
    assert_eq!(s.rx.dropped_runt, 8);
    assert_eq!(s.rx.dropped_oversize, 7);
    assert_eq!(s.rx.frames as usize, good);
}

#[test]
fn rx_bus_error_recovers_the_dma() {
    let mut rig = Rig::new();
    for seq in 0..5 {
        rig.board.receive(&frame_to_board(100, seq));
    }
    rig.step();
    rig.board.faults().rx_bus_error = 1;
    rig.board.receive(&frame_to_board(100, 99)); // bus error: RX DMA halts
    rig.step(); // driver recovers
    for seq in 5..40 {
        rig.board.receive(&frame_to_board(100, seq));
        rig.step();
    }
    assert_eq!(rig.fw.received.len(), 40);
    assert!(rig.fw.events.contains(MacEvents::DMA_RECOVERED));
    let s = rig.fw.stats();
    assert_eq!(s.irq.rx_bus_error, 1);
    assert_eq!(s.control.dma_recoveries, 1);
}

#[test]
fn tx_bus_error_recovers_and_retained_buffers_survive() {
    let mut rig = Rig::new();
    rig.fw.send(b"before").unwrap();
    rig.step();
    assert_eq!(rig.transmitted().len(), 1);
    // A retained frame hits a bus error: it is cancelled, but the stack still holds it.
    let b = rig.fw.mac.tx.alloc().unwrap();
    let len = write_frame(rig.fw.mac.tx.buffer(&b).unwrap(), b"retained");
    rig.board.faults().tx_bus_error = 1;
    rig.fw.mac.tx.send_retained(&b, len).unwrap();
    rig.step();
    assert!(rig.transmitted().is_empty());
    assert!(rig.fw.events.contains(MacEvents::DMA_RECOVERED));
    assert!(!rig.fw.mac.tx.is_in_flight(&b), "cancelled by the recovery");
    // Retransmit from the same buffer without rewriting it.
    rig.fw.mac.tx.send_retained(&b, len).unwrap();
    rig.step();
    let out = rig.transmitted();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][14..22], b"retained");
    rig.fw.mac.tx.release(b);
    for i in 0..50u32 {
        rig.fw.send(&i.to_be_bytes()).unwrap();
        rig.step();
    }
    assert_eq!(rig.transmitted().len(), 50);
    let s = rig.fw.stats();
    assert_eq!(s.irq.tx_bus_error, 1);
    assert_eq!(s.tx.cancelled, 1);
    assert_eq!(rig.fw.mac.tx.free_buffers(), 8);
}

#[test]
fn retained_tx_buffer_is_locked_while_in_flight() {
    let mut rig = Rig::new();
    let b: TxBuf = rig.fw.mac.tx.alloc().unwrap();
    let len = write_frame(rig.fw.mac.tx.buffer(&b).unwrap(), b"segment");
    // Hold the interrupt-driven completion back by not stepping: the descriptor is
    // completed synchronously by the model, but the driver has not reaped it yet.
    rig.fw.mac.tx.send_retained(&b, len).unwrap();
    assert!(rig.fw.mac.tx.is_in_flight(&b));
    assert!(
        rig.fw.mac.tx.buffer(&b).is_none(),
        "no writes while the DMA may read it"
    );
    assert_eq!(
        rig.fw.mac.tx.send_retained(&b, len),
        Err(mzw1_wss::mac::TxError::InFlight)
    );
    rig.step();
    assert!(!rig.fw.mac.tx.is_in_flight(&b));
    assert!(rig.fw.mac.tx.buffer(&b).is_some());
    rig.fw.mac.tx.send_retained(&b, len).unwrap();
    rig.step();
    assert_eq!(rig.transmitted().len(), 2);
    assert_eq!(rig.fw.mac.tx.free_buffers(), 7, "still held");
    // `free_more_than` agrees with the count on every threshold, held buffers or not.
    for n in 0..=8 {
        assert_eq!(
            rig.fw.mac.tx.free_more_than(n),
            7 > n,
            "7 free, more than {n}?"
        );
    }
    let held: Vec<_> = (0..6).map(|_| rig.fw.mac.tx.alloc().unwrap()).collect();
    for n in 0..=8 {
        assert_eq!(
            rig.fw.mac.tx.free_more_than(n),
            1 > n,
            "1 free, more than {n}?"
        );
    }
    for h in held {
        rig.fw.mac.tx.release(h);
    }
    rig.fw.mac.tx.release(b);
    assert_eq!(rig.fw.mac.tx.free_buffers(), 8);
    // Lengths outside 14..=1514 are refused.
    let b = rig.fw.mac.tx.alloc().unwrap();
    assert_eq!(
        rig.fw.mac.tx.send_retained(&b, 13),
        Err(mzw1_wss::mac::TxError::BadLength)
    );
    assert_eq!(
        rig.fw.mac.tx.send_retained(&b, 1515),
        Err(mzw1_wss::mac::TxError::BadLength)
    );
    rig.fw.mac.tx.release(b);
}

#[test]
fn kept_rx_buffers_stay_intact_while_the_ring_keeps_receiving() {
    let mut rig = Rig::new();
    rig.fw.receive_in_poll = false;
    let mut kept = Vec::new();
    let mut refused = 0;
    for seq in 0..40u32 {
        rig.board.receive(&frame_to_board(64 + seq as usize, seq));
        rig.step();
        while let Some(mut f) = rig.fw.mac.rx.receive() {
            let data = f.data().to_vec();
            match f.keep() {
                Some(b) => kept.push((b, data)),
                None => refused += 1,
            }
        }
    }
    assert_eq!(kept.len(), 4, "12 buffers - 8 descriptors = 4 spares");
    assert_eq!(refused, 36);
    for (b, data) in &kept {
        assert_eq!(&rig.fw.mac.rx.kept(b)[..data.len()], &data[..]);
    }
    for (b, _) in kept {
        rig.fw.mac.rx.release(b);
    }
    assert_eq!(rig.fw.mac.rx.spare_buffers(), 4);
    assert_eq!(rig.fw.stats().rx.keep_refused, 36);
    assert_eq!(rig.fw.stats().rx.frames, 40);
}

#[test]
fn interrupt_driven_reception_masks_and_rearms_pktpend() {
    let mut rig = Rig::new();
    rig.fw.receive_in_poll = false;
    rig.board.receive(&frame_to_board(100, 1));
    assert!(rig.board.interrupt_pending());
    let n = rig.board.service_interrupts(&mut rig.fw);
    assert_eq!(
        n, 1,
        "PKTPEND masked by the handler: no storm while the frame waits"
    );
    assert!(!rig.board.interrupt_pending());
    rig.fw.drain();
    assert_eq!(rig.fw.received.len(), 1);
    // Drained: PKTPENDIE is back, so the next frame interrupts again.
    rig.board.receive(&frame_to_board(100, 2));
    assert!(rig.board.interrupt_pending());
    rig.board.service_interrupts(&mut rig.fw);
    rig.fw.drain();
    assert_eq!(rig.fw.received.len(), 2);
    assert_eq!(rig.board.interrupt_counts().1, 0, "no interrupt storms");
    assert!(rig.fw.interrupts >= 2);
    assert!(rig.fw.stats().irq.interrupts >= 2);
}

#[test]
fn cable_pull_and_replug() {
    let mut rig = Rig::new();
    rig.fw.events = MacEvents::empty();
    rig.board.set_cable(false);
    rig.run_until(|r| r.fw.events.contains(MacEvents::LINK_DOWN), 500);
    rig.board.receive(&frame_to_board(100, 1));
    rig.step();
    assert!(rig.fw.received.is_empty(), "no link, no frames");
    rig.board.set_cable(true);
    rig.run_until(|r| r.fw.events.contains(MacEvents::LINK_UP), 500);
    rig.board.receive(&frame_to_board(100, 2));
    rig.step();
    assert_eq!(rig.fw.received.len(), 1);
    let s = rig.fw.stats();
    assert_eq!((s.link.ups, s.link.downs), (2, 1));
}
