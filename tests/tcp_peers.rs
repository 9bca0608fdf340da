//! The firmware's TCP/IP stack against smoltcp, a stack nobody here wrote, over the
//! simulated board's wire: 10 MB echoed byte-exact on a clean wire and on a wire that
//! loses, duplicates, reorders and corrupts frames both ways; and a SYN flood while
//! established connections keep echoing.

use mzw1_reference::{Config, DEFAULT_IP};
use mzw1_sim::crc::append_fcs;
use mzw1_sim::peer::{SocketHandle, TcpState};
use mzw1_sim::wire::Rng;
use mzw1_sim::{
    Board, BoardConfig, End, Impairments, PeerHost, TcpEcho, Testbed, Wire, WireConfig,
};

const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const PEER_IP: [u8; 4] = [192, 168, 7, 1];
const BOARD_IP: [u8; 4] = DEFAULT_IP.address;
const MB: usize = 1_000_000;

fn testbed(impair: Impairments) -> Testbed<TcpEcho> {
    let mut board = Board::new(BoardConfig::default());
    let fw = TcpEcho::boot(&mut board, Config::default());
    let wire = Wire::new(WireConfig {
        impair,
        ..WireConfig::default()
    });
    let peer = PeerHost::new(PEER_MAC, PEER_IP, 24);
    Testbed::new(board, fw, wire, peer)
}

/// A byte pattern that is not periodic at any segment size.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

/// Streams `data` to the echo server on one or more connections and collects the echo.
struct Stream {
    h: SocketHandle,
    data: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
}

impl Stream {
    fn open(tb: &mut Testbed<TcpEcho>, data: Vec<u8>) -> Stream {
        let h = tb.peer.tcp_connect((BOARD_IP, 80), 256 * 1024, 256 * 1024);
        let got = Vec::with_capacity(data.len());
        Stream {
            h,
            data,
            sent: 0,
            got,
        }
    }

    fn pump(&mut self, peer: &mut PeerHost) {
        if self.sent < self.data.len() {
            let end = (self.sent + 64 * 1024).min(self.data.len());
            self.sent += peer.tcp_send(self.h, &self.data[self.sent..end]);
        }
        peer.tcp_recv(self.h, &mut self.got);
    }

    fn done(&self) -> bool {
        self.got.len() >= self.data.len()
    }

    fn check(&self, what: &str) {
        assert_eq!(self.got.len(), self.data.len(), "{what}: echoed length");
        if let Some(i) = self.got.iter().zip(&self.data).position(|(a, b)| a != b) {
            panic!(
                "{what}: first difference at byte {i} of {}",
                self.data.len()
            );
        }
    }
}

fn echo_10_mb(impair: Impairments, limit_s: u64) -> Testbed<TcpEcho> {
    let mut tb = testbed(impair);
    let mut s = Stream::open(&mut tb, pattern(10 * MB, impair.seed));
    let ok = tb.run_until(
        |tb| {
            s.pump(&mut tb.peer);
            s.done()
        },
        limit_s * 1_000_000_000,
    );
    let tcp = *tb.fw.net.tcp_stats();
    assert!(
        ok,
        "10 MB echoed within {limit_s} s of board time: got {} bytes; {tcp:?}",
        s.got.len()
    );
    s.check("10 MB echo");
    assert_eq!(tb.peer.tcp_state(s.h), TcpState::Established);
    // Close from the client; the server closes too and the slot is given back.
    tb.peer.tcp_close(s.h);
    let closed = tb.run_until(|tb| tb.fw.net.slots_in_use() == 0, 30_000_000_000);
    assert!(
        closed,
        "server slot freed after the close (TIME-WAIT included)"
    );
    tb
}

#[test]
fn smoltcp_echoes_10_mb_on_a_clean_wire() {
    let tb = echo_10_mb(
        Impairments {
            seed: 1,
            ..Impairments::default()
        },
        120,
    );
    let tcp = tb.fw.net.tcp_stats();
    eprintln!(
        "clean: {:.2} s of board time, {tcp:?}",
        tb.now_ns() as f64 / 1e9
    );
    assert_eq!(
        tcp.retransmits_timeout, 0,
        "a clean wire needs no retransmission"
    );
    assert_eq!(tcp.rx_bad_checksum, 0);
    assert_eq!(tcp.tx_bytes as usize, 10 * MB);
}

#[test]
fn smoltcp_echoes_10_mb_through_loss_duplication_reordering_and_corruption() {
    let impair = Impairments {
        loss: 0.1,
        duplicate: 0.05,
        reorder: 0.1,
        corrupt: 0.01,
        seed: 7,
        ..Default::default()
    };
    let tb = echo_10_mb(impair, 20_000);
    let tcp = tb.fw.net.tcp_stats();
    let net = tb.fw.net.stats();
    let w = tb.wire.stats;
    eprintln!(
        "impaired: {:.1} s of board time\n  wire {w:?}\n  tcp {tcp:?}\n  net {net:?}",
        tb.now_ns() as f64 / 1e9
    );
    // The impairments happened, and the stack saw and survived each kind.
    assert!(w.lost[1] > 500 && w.lost[0] > 500);
    assert!(w.corrupted[1] > 50 && w.corrupted[0] > 50);
    assert!(
        tcp.rx_bad_checksum + net.ip_bad_checksum > 0,
        "corruption caught by checksums"
    );
    assert!(tcp.rx_duplicate > 0 && tcp.rx_out_of_order > 0);
    assert!(tcp.retransmits_timeout + tcp.retransmits_fast > 0);
}

/// A raw TCP SYN from a spoofed address and port (own encoder, own checksums).
fn spoofed_syn(src_ip: [u8; 4], src_port: u16, seq: u32, board_mac: [u8; 6]) -> Vec<u8> {
    let sum = |d: &[u8]| -> u32 {
        d.chunks(2)
            .map(|p| ((p[0] as u32) << 8) | *p.get(1).unwrap_or(&0) as u32)
            .sum()
    };
    let fold = |mut s: u32| {
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        !(s as u16)
    };
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&src_port.to_be_bytes());
    tcp.extend_from_slice(&80u16.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&[
        0, 0, 0, 0, 0x60, 0x02, 0xFF, 0xFF, 0, 0, 0, 0, 2, 4, 0x05, 0xB4,
    ]);
    let mut pseudo = src_ip.to_vec();
    pseudo.extend_from_slice(&BOARD_IP);
    pseudo.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
    let c = fold(sum(&pseudo) + sum(&tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![
        0x45,
        0,
        0,
        (20 + tcp.len()) as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ];
    ip.extend_from_slice(&src_ip);
    ip.extend_from_slice(&BOARD_IP);
    let c = fold(sum(&ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = board_mac.to_vec();
    f.extend_from_slice(&[
        0x02,
        0xEE,
        src_ip[2],
        src_ip[3],
        (src_port >> 8) as u8,
        src_port as u8,
    ]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f.resize(60.max(f.len()), 0);
    append_fcs(&mut f);
    f
}

#[test]
fn syn_flood_does_not_disturb_established_connections_or_lock_out_new_ones() {
    let mut tb = testbed(Impairments::default());
    let board_mac = Config::default().mac.mac_address;
    let mut a = Stream::open(&mut tb, pattern(2 * MB, 11));
    let mut b = Stream::open(&mut tb, pattern(2 * MB, 12));
    // Let both connections get going before the flood.
    tb.run_until(
        |tb| {
            a.pump(&mut tb.peer);
            b.pump(&mut tb.peer);
            a.got.len() > 100_000 && b.got.len() > 100_000
        },
        10_000_000_000,
    );
    // 10,000 SYNs from spoofed addresses and ports, one every 50 µs (20,000 per second),
    // interleaved with the echo traffic.
    let mut rng = Rng::new(5);
    let mut sent = 0;
    let flood_start = tb.now_ns();
    let mut late = None;
    let ok = tb.run_until(
        |tb| {
            let now = tb.now_ns();
            while sent < 10_000 && flood_start + (sent as u64) * 50_000 <= now {
                let ip = [192, 168, 7, 10 + (rng.below(200) as u8)];
                let frame = spoofed_syn(
                    ip,
                    1024 + rng.below(60_000) as u16,
                    rng.next_u64() as u32,
                    board_mac,
                );
                tb.wire.send(End::Peer, now, frame);
                sent += 1;
            }
            // Halfway through the flood a legitimate client connects.
            if sent >= 5_000 && late.is_none() {
                late = Some(Stream::open(tb, pattern(100_000, 13)));
            }
            a.pump(&mut tb.peer);
            b.pump(&mut tb.peer);
            if let Some(l) = late.as_mut() {
                l.pump(&mut tb.peer);
            }
            sent == 10_000 && a.done() && b.done() && late.as_ref().is_some_and(Stream::done)
        },
        60_000_000_000,
    );
    let tcp = *tb.fw.net.tcp_stats();
    assert!(
        ok,
        "echo completed during the flood: a {} b {} ; {tcp:?}",
        a.got.len(),
        b.got.len()
    );
    a.check("connection A");
    b.check("connection B");
    late.expect("late client")
        .check("client that connected during the flood");
    eprintln!("flood: {tcp:?}");
    assert!(
        tcp.syn_cookies_sent >= 9_000,
        "the flood was answered statelessly: {}",
        tcp.syn_cookies_sent
    );
    assert_eq!(tcp.resets_received, 0);
    assert_eq!(tcp.timeouts, 0);
    // Half-open entries of the flood expire.
    let drained = tb.run_until(|tb| tb.fw.net.slots_in_use() <= 3, 30_000_000_000);
    assert!(drained, "flood's half-open slots timed out");
}
