//! Faults injected into the simulated ETH controller while WebSocket traffic flows: RX
//! FIFO overflows, no RX descriptor available, RX and TX DMA bus errors, and frames with
//! CRC errors, plus frames damaged with a good FCS (as by a store-and-forward switch). The MAC driver must
//! recover from each (restart the halted DMA, re-arm the ring) and TCP must repair what
//! was lost, so that every message comes back byte-exact; the counters must show that
//! every kind of fault happened and was seen.

#[path = "common/ws_peer.rs"]
mod ws_peer;

use mzw1_reference::Config;
use mzw1_sim::eth::Faults;
use mzw1_sim::{Board, BoardConfig, Impairments, PeerHost, Reference, Testbed, Wire, WireConfig};
use tungstenite::Message;
use ws_peer::*;

/// Echo rounds per client, each a few messages of up to 24 KiB.
const ROUNDS: usize = 40;
/// Frames received between two injected faults (one at a time: a fault is injected only
/// once the previous one has struck, so the link is impaired, never dead).
const FAULT_EVERY_FRAMES: u64 = 25;

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn driver_recovers_from_every_injected_fault_and_tcp_repairs_the_loss() {
    let mut board = Board::new(BoardConfig::default());
    let fw = Reference::boot(&mut board, Config::default());
    let peer = PeerHost::new(PEER_MAC, PEER_IP, 24);
    let wire = Wire::new(WireConfig {
        // Besides the injected faults, 1 % of frames damaged in a switch (FCS good, so
        // the IPv4/TCP checksums must catch them).
        impair: Impairments {
            corrupt: 0.01,
            seed: 0xFA17,
            ..Impairments::default()
        },
        ..WireConfig::default()
    });
    let mut tb = Testbed::new(board, fw, wire, peer);
    tb.run_for(3 * SECOND);

    let mut clients = [
        WsClient::connect(&mut tb, "/"),
        WsClient::connect(&mut tb, "/"),
    ];
    assert!(
        run_clients(
            &mut tb,
            &mut clients.iter_mut().collect::<Vec<_>>(),
            |_, cs| cs.iter().all(|c| c.is_open()),
            10 * SECOND,
        ),
        "both upgrades complete"
    );

    let mut injected = [0u32; 5];
    let mut next_fault = FAULT_EVERY_FRAMES;
    let mut k = 0usize;
    let mut echoed = 0usize;
    for round in 0..ROUNDS {
        let mut want: Vec<Vec<Message>> = Vec::new();
        for (c, client) in clients.iter_mut().enumerate() {
            let seed = (round * 2 + c) as u64;
            let ms = vec![
                Message::binary(pattern(1 + (seed as usize * 7919) % 24_576, seed)),
                Message::text("é".repeat(1 + (seed as usize * 104_729) % 4_000)),
                Message::binary(pattern(16, seed + 1000)),
            ];
            for m in &ms {
                client.send(m.clone());
            }
            want.push(ms);
        }
        let mut got: Vec<Vec<Message>> = vec![Vec::new(); clients.len()];
        let done = run_clients(
            &mut tb,
            &mut clients.iter_mut().collect::<Vec<_>>(),
            |tb, cs| {
                // One fault of each kind in turn, every few milliseconds of traffic.
                let delivered = tb.board.model_stats().rx_delivered;
                if delivered >= next_fault && *tb.board.faults() == Faults::default() {
                    next_fault = delivered + FAULT_EVERY_FRAMES;
                    let mut f = tb.board.faults();
                    match k % 5 {
                        0 => f.rx_fifo_overflow += 1,
                        1 => f.rx_no_descriptor += 1,
                        2 => f.rx_bus_error += 1,
                        3 => f.tx_bus_error += 1,
                        _ => f.rx_crc_error += 1,
                    }
                    injected[k % 5] += 1;
                    k += 1;
                }
                for (c, g) in cs.iter_mut().zip(got.iter_mut()) {
                    g.extend(c.take_data());
                }
                got.iter().zip(&want).all(|(g, w)| g.len() >= w.len())
            },
            60 * SECOND,
        );
        let counts: Vec<_> = got.iter().map(Vec::len).collect();
        if !done {
            let mac = tb.fw.0.server().mac().stats();
            eprintln!(
                "irq {:?}\ncontrol {:?}\ntx {:?}",
                mac.irq, mac.control, mac.tx
            );
            eprintln!("tcp {:?}", tb.fw.0.server().net().tcp_stats());
            eprintln!("model {:?}", tb.board.model_stats());
        }
        assert!(done, "round {round}: every message echoed: {counts:?}");
        for (c, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "round {round}, client {c}: echoed byte-exact");
            echoed += w.len();
        }
    }
    assert!(clients.iter().all(|c| c.is_open()), "no client lost");
    // The driver samples the controller's 16-bit counters every 100 ms.
    run_clients(
        &mut tb,
        &mut clients.iter_mut().collect::<Vec<_>>(),
        |_, _| false,
        2 * SECOND,
    );

    let mac = tb.fw.0.server().mac().stats();
    let tcp = *tb.fw.0.server().net().tcp_stats();
    let model = tb.board.model_stats();
    let wss = *tb.fw.0.server().stats();
    println!("echoed {echoed} messages; injected {injected:?}");
    println!("model {model:?}");
    println!("irq {:?}", mac.irq);
    println!("hw {:?} control {:?}", mac.hw, mac.control);
    println!(
        "retransmits: timeout {} fast {} sack {}",
        tcp.retransmits_timeout, tcp.retransmits_fast, tcp.retransmits_sack
    );
    assert!(
        injected.iter().all(|&n| n >= 10),
        "every fault injected: {injected:?}"
    );
    // Each fault reached the driver through its interrupt flag and was counted.
    assert!(mac.irq.rx_fifo_overflow > 0, "RXOVFLW seen");
    assert!(mac.irq.rx_no_descriptor > 0, "RXBUFNA seen");
    assert!(mac.irq.rx_bus_error > 0, "RXBUSE seen");
    assert!(mac.irq.tx_bus_error > 0, "TXBUSE seen");
    assert!(mac.control.dma_recoveries > 0, "halted DMA restarted");
    // Frames with a bad FCS were dropped by the controller's filter and counted by it.
    // So is a frame the switch damaged in its destination address (no longer ours): the
    // filter may count up to that many more.
    let damaged_toward_board = tb.wire.stats.corrupted[1]; // [board, peer]: sent by the peer
    assert!(
        (injected[4] as u64..=injected[4] as u64 + damaged_toward_board)
            .contains(&model.rx_filtered),
        "CRC errors filtered: {} filtered, {} injected, {damaged_toward_board} damaged",
        model.rx_filtered,
        injected[4]
    );
    assert_eq!(mac.hw.rx_fcs_errors, injected[4], "FCS errors counted");
    // Frames damaged with a good FCS were caught by the IP and TCP checksums.
    let net = *tb.fw.0.server().net().stats();
    println!("net {net:?}");
    assert!(
        net.ip_bad_checksum + net.ip_malformed + tcp.rx_bad_checksum + tcp.rx_malformed > 0,
        "damaged frames caught by checksums"
    );
    // The loss was repaired by TCP, not by luck.
    assert!(
        tcp.retransmits_timeout + tcp.retransmits_fast + tcp.retransmits_sack > 0,
        "TCP retransmitted"
    );
    assert_eq!(wss.protocol_errors, 0, "no frame damaged");
}
