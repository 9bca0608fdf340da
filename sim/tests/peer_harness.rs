//! The peer side of the wire, proved without the firmware's own TCP/IP stack: two smoltcp
//! hosts moving a megabyte each way byte-exact in virtual time, clean and through every
//! impairment; ICMP echo; the NIC behaviour (padding, FCS); the testbed running the
//! MAC driver at line rate; and the Linux kernel as a peer through a TAP device
//! in a network namespace (skipped, with the reason, where that cannot be set up).

use mzw1_sim::crc::{append_fcs, fcs_ok};
use mzw1_sim::peer::{PeerHost, TcpState, from_wire, to_wire};
use mzw1_sim::tap::{NetNs, TapPort};
use mzw1_sim::wire::WireStats;
use mzw1_sim::{
    Board, BoardConfig, End, Firmware, Impairments, Link, Station, Testbed, Wire, WireConfig,
};
use mzw1_wss::mac::{IrqShared, Mac, MacConfig};
use mzw1_wss::time::Instant;
use std::time::{Duration, Instant as WallClock};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0A];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0B];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];
const PORT: u16 = 5001;
const SECOND: u64 = 1_000_000_000;

/// Deterministic, position-dependent bytes, so a misplaced byte is noticed.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ salt)
        .collect()
}

fn two_hosts(config: WireConfig) -> Link<PeerHost, PeerHost> {
    let a = PeerHost::new(MAC_A, IP_A, 24).on_end(End::Board);
    let b = PeerHost::new(MAC_B, IP_B, 24);
    Link::new(a, b, Wire::new(config))
}

/// What a bidirectional transfer came to.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Virtual time when both sides had everything.
    done_ns: u64,
    wire: WireStats,
    steps: u64,
}

/// B connects to A; each sends `len` bytes to the other at once; both check what they
/// got byte for byte, then both close.
fn duplex_transfer(config: WireConfig, len: usize, limit_ns: u64) -> Outcome {
    let mut link = two_hosts(config);
    let server = link.a.tcp_listen(PORT, 64 * 1024, 64 * 1024);
    let client = link.b.tcp_connect((IP_A, PORT), 64 * 1024, 64 * 1024);
    let to_a = pattern(len, 0x00);
    let to_b = pattern(len, 0x5A);
    let (mut sent_a, mut sent_b) = (0, 0);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let wall = WallClock::now();
    let done = link.run_until(
        |l| {
            // The condition runs before every step: it is the two applications.
            sent_b += l.b.tcp_send(client, &to_a[sent_b..]);
            sent_a += l.a.tcp_send(server, &to_b[sent_a..]);
            l.a.tcp_recv(server, &mut got_a);
            l.b.tcp_recv(client, &mut got_b);
            got_a.len() >= len && got_b.len() >= len
        },
        limit_ns,
    );
    let done_ns = link.now_ns();
    assert!(
        done,
        "transfer incomplete after {} s virtual: A got {} of {len}, B got {} of {len}; \
         states A {:?} B {:?}; wire {:?}",
        done_ns / SECOND,
        got_a.len(),
        got_b.len(),
        link.a.tcp_state(server),
        link.b.tcp_state(client),
        link.wire.stats
    );
    assert!(got_a == to_a, "A's bytes differ from what B sent");
    assert!(got_b == to_b, "B's bytes differ from what A sent");
    // An orderly close: both FINs acknowledged.
    link.b.tcp_close(client);
    link.a.tcp_close(server);
    let closed = link.run_until(
        |l| {
            let closed = |s: TcpState| matches!(s, TcpState::Closed | TcpState::TimeWait);
            closed(l.a.tcp_state(server)) && closed(l.b.tcp_state(client))
        },
        120 * SECOND,
    );
    assert!(
        closed,
        "close did not finish: A {:?}, B {:?}",
        link.a.tcp_state(server),
        link.b.tcp_state(client)
    );
    eprintln!(
        "{} bytes each way: {:.3} s virtual, {:.3} s real, {} steps, wire {:?}, A {:?}, B {:?}",
        len,
        done_ns as f64 / 1e9,
        wall.elapsed().as_secs_f64(),
        link.steps(),
        link.wire.stats,
        link.a.stats(),
        link.b.stats()
    );
    Outcome {
        done_ns,
        wire: link.wire.stats,
        steps: link.steps(),
    }
}

#[test]
fn tcp_one_megabyte_each_way_byte_exact() {
    let out = duplex_transfer(WireConfig::default(), 1 << 20, 60 * SECOND);
    // 2 × 1 MiB over a full-duplex 100 Mb/s wire takes at least 84 ms each way.
    assert!(out.done_ns > 84_000_000, "faster than the line rate");
    assert!(out.done_ns < 2 * SECOND, "slow on a clean wire: {out:?}");
    assert_eq!(out.wire.lost, [0, 0]);
}

#[test]
fn tcp_one_megabyte_each_way_through_impairments() {
    let impaired = WireConfig {
        impair: Impairments {
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.1,
            corrupt: 0.01,
            seed: 7,
            ..Impairments::default()
        },
        ..WireConfig::default()
    };
    let first = duplex_transfer(impaired, 1 << 20, 1_200 * SECOND);
    let w = first.wire;
    for dir in 0..2 {
        assert!(
            w.lost[dir] > 0 && w.duplicated[dir] > 0,
            "impairments ran: {w:?}"
        );
        assert!(
            w.reordered[dir] > 0 && w.corrupted[dir] > 0,
            "impairments ran: {w:?}"
        );
    }
    // Seeded: the same run again is the same run.
    let again = duplex_transfer(impaired, 1 << 20, 1_200 * SECOND);
    assert_eq!(first, again, "an impaired run is reproducible");
}

#[test]
fn icmp_echo_between_two_hosts() {
    let mut link = two_hosts(WireConfig::default());
    for seq in 0..10u16 {
        let payload = pattern(8 + 100 * seq as usize, seq as u8);
        assert!(link.b.ping(IP_A, 0x1234, seq, &payload));
        let sent_at = link.now_ns();
        let mut replies = Vec::new();
        let got = link.run_until(
            |l| {
                replies.extend(l.b.take_ping_replies());
                !replies.is_empty()
            },
            SECOND,
        );
        assert!(got, "no reply to echo {seq}");
        let r = &replies[0];
        assert_eq!((r.from, r.ident, r.seq), (IP_A, 0x1234, seq));
        assert_eq!(r.payload, payload);
        let rtt = r.at_ns - sent_at;
        // Two wire latencies at least; the first also waits for ARP, one more round trip.
        assert!(rtt >= 20_000, "rtt {rtt} ns");
        assert!(rtt < 2_000_000, "rtt {rtt} ns");
    }
    // Echo requests under the minimum frame were padded on the wire.
    assert!(link.b.stats().tx_padded > 0 && link.a.stats().tx_padded > 0);
    assert_eq!(link.a.stats().rx_bad_fcs + link.b.stats().rx_bad_fcs, 0);
}

#[test]
fn the_peer_is_a_nic_pads_appends_and_checks_the_fcs() {
    let mut wire = Wire::new(WireConfig::default());
    let mut host = PeerHost::new(MAC_B, IP_B, 24);
    // A ping to an unknown neighbour starts with an ARP request: 42 bytes before padding.
    assert!(host.ping(IP_A, 1, 1, b"x"));
    host.poll(0, &mut wire);
    let frame = wire
        .receive(End::Board, SECOND)
        .expect("the ARP request is on the wire");
    assert_eq!(frame.len(), 64, "padded to 60, plus the FCS");
    assert!(fcs_ok(&frame));
    assert_eq!(&frame[12..14], &[0x08, 0x06], "ARP");
    assert!(frame[42..60].iter().all(|&b| b == 0), "zero padding");
    assert_eq!(from_wire(frame.clone()).map(|f| f.len()), Some(60));
    assert_eq!(to_wire(frame[..60].to_vec()), frame);

    // An ARP reply for it, once with a broken FCS (dropped and counted), once intact.
    let mut reply = Vec::new();
    reply.extend_from_slice(&MAC_B);
    reply.extend_from_slice(&MAC_A);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    reply.extend_from_slice(&MAC_A);
    reply.extend_from_slice(&IP_A);
    reply.extend_from_slice(&MAC_B);
    reply.extend_from_slice(&IP_B);
    let good = to_wire(reply);
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x80;
    wire.send(End::Board, 1_000_000, bad);
    wire.send(End::Board, 1_000_000, good);
    host.poll(2_000_000, &mut wire);
    assert_eq!(host.stats().rx_bad_fcs, 1);
    assert_eq!(host.stats().rx_frames, 1);
    // With the neighbour known, the queued echo request leaves.
    let echo = wire
        .receive(End::Board, 3 * SECOND)
        .expect("the echo request follows the ARP reply");
    assert_eq!(&echo[..6], &MAC_A);
    assert_eq!(&echo[12..14], &[0x08, 0x00], "IPv4");

    // Raw frames go out as they are, padded, with an FCS.
    host.inject_frame(&[0xFF; 14]);
    assert_eq!(
        host.poll_at(3 * SECOND),
        Some(3 * SECOND + 1_000),
        "injection wants a poll (in the next microsecond)"
    );
    host.poll(3 * SECOND, &mut wire);
    let raw = wire
        .receive(End::Board, 4 * SECOND)
        .expect("injected frame");
    assert_eq!(raw.len(), 64);
    assert_eq!(&raw[..14], &[0xFF; 14]);
}

#[test]
fn tcp_reset_and_refused_connection() {
    let mut link = two_hosts(WireConfig::default());
    // Nobody listens on A's port: the connection is refused with a RST.
    let c = link.b.tcp_connect((IP_A, PORT), 4096, 4096);
    let refused = link.run_until(|l| l.b.tcp_state(c) == TcpState::Closed, SECOND);
    assert!(refused, "state {:?}", link.b.tcp_state(c));
    link.b.tcp_remove(c);
    // An established connection aborted by one side is closed on the other.
    let s = link.a.tcp_listen(PORT, 4096, 4096);
    let c = link.b.tcp_connect((IP_A, PORT), 4096, 4096);
    let est = link.run_until(|l| l.a.tcp_state(s) == TcpState::Established, SECOND);
    assert!(est);
    link.b.tcp_abort(c);
    let gone = link.run_until(|l| l.a.tcp_state(s) == TcpState::Closed, SECOND);
    assert!(gone, "A still {:?}", link.a.tcp_state(s));
}

/// A hand-written host that only answers ARP requests and ICMP echo requests for its
/// address, on the board's end of the wire (the firmware's stack will take its place).
struct Responder {
    mac: [u8; 6],
    ip: [u8; 4],
    arp_replies: u64,
    echo_replies: u64,
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

impl Responder {
    fn new(mac: [u8; 6], ip: [u8; 4]) -> Responder {
        Responder {
            mac,
            ip,
            arp_replies: 0,
            echo_replies: 0,
        }
    }

    fn answer(&mut self, f: &[u8]) -> Option<Vec<u8>> {
        let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
        match ethertype {
            0x0806 if f.len() >= 42 && f[20..22] == [0, 1] && f[38..42] == self.ip => {
                let mut r = Vec::with_capacity(42);
                r.extend_from_slice(&f[6..12]);
                r.extend_from_slice(&self.mac);
                r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
                r.extend_from_slice(&self.mac);
                r.extend_from_slice(&self.ip);
                r.extend_from_slice(&f[22..32]); // the asker's MAC and IP
                self.arp_replies += 1;
                Some(r)
            }
            0x0800 if f.len() >= 34 => {
                let ihl = (f[14] & 0x0F) as usize * 4;
                let total = u16::from_be_bytes([f[16], f[17]]) as usize;
                let ip = f.get(14..14 + total)?;
                let icmp = ip.get(ihl..)?;
                let for_us = ip[16..20] == self.ip && ip[9] == 1;
                if !for_us || icmp.len() < 8 || icmp[0] != 8 || checksum(&ip[..ihl]) != 0 {
                    return None;
                }
                if checksum(icmp) != 0 {
                    return None;
                }
                let mut r = Vec::with_capacity(14 + total);
                r.extend_from_slice(&f[6..12]);
                r.extend_from_slice(&self.mac);
                r.extend_from_slice(&[0x08, 0x00]);
                let mut hdr = ip[..ihl].to_vec();
                hdr[8] = 64; // TTL
                hdr[12..16].copy_from_slice(&self.ip);
                hdr[16..20].copy_from_slice(&ip[12..16]);
                hdr[10..12].fill(0);
                let c = checksum(&hdr);
                hdr[10..12].copy_from_slice(&c.to_be_bytes());
                r.extend_from_slice(&hdr);
                let mut reply = icmp.to_vec();
                reply[0] = 0; // echo reply
                reply[2..4].fill(0);
                let c = checksum(&reply);
                reply[2..4].copy_from_slice(&c.to_be_bytes());
                r.extend_from_slice(&reply);
                self.echo_replies += 1;
                Some(r)
            }
            _ => None,
        }
    }
}

impl Station for Responder {
    fn end(&self) -> End {
        End::Board
    }
    fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        while let Some(frame) = wire.receive(End::Board, now_ns) {
            if let Some(reply) = from_wire(frame).and_then(|f| self.answer(&f)) {
                wire.send(End::Board, now_ns, to_wire(reply));
            }
        }
    }
    fn poll_at(&mut self, _now_ns: u64) -> Option<u64> {
        None
    }
}

#[test]
fn the_hand_written_responder_answers_smoltcp() {
    // The responder the TAP test uses, checked first against smoltcp in virtual time.
    let responder = Responder::new(MAC_A, IP_A);
    let mut link = Link::new(
        responder,
        PeerHost::new(MAC_B, IP_B, 24),
        Wire::new(WireConfig::default()),
    );
    for seq in 0..5 {
        assert!(link.b.ping(IP_A, 7, seq, &pattern(56, seq as u8)));
    }
    let mut replies = Vec::new();
    link.run_until(
        |l| {
            replies.extend(l.b.take_ping_replies());
            replies.len() == 5
        },
        SECOND,
    );
    assert_eq!(replies.len(), 5);
    assert_eq!(link.a.arp_replies, 1);
    assert_eq!(link.a.echo_replies, 5);
}

/// A firmware with nothing but the MAC driver: it counts the frames it receives (the
/// real stack will take its place), so these tests depend on the driver alone.
struct Counter {
    mac: Mac<'static>,
    frames: u32,
}

impl Counter {
    fn drain(&mut self) {
        while let Some(frame) = self.mac.rx.receive() {
            self.frames += 1;
            drop(frame);
        }
        self.mac.tx.reap();
    }
}

impl Firmware for Counter {
    fn on_interrupt(&mut self, _now: Instant) {
        self.mac.on_interrupt();
        self.drain();
    }
    fn poll(&mut self, now: Instant) {
        self.mac.poll(now);
        self.drain();
    }
}

/// A board running [`Counter`] with the default station address, and its firmware.
fn counting_board() -> (Board, Counter) {
    let mut board = Board::new(BoardConfig::default());
    let (dma, window) = board.alloc_dma::<8, 12, 8>();
    let shared: &'static IrqShared = Box::leak(Box::new(IrqShared::new()));
    let mac = Mac::new(
        board.peripherals(),
        dma,
        window,
        shared,
        MacConfig::default(),
        board.now(),
    );
    (board, Counter { mac, frames: 0 })
}

#[test]
fn testbed_runs_the_firmware_in_virtual_time() {
    let (board, fw) = counting_board();
    let peer = PeerHost::new(MAC_B, IP_B, 24);
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), peer);
    let wall = WallClock::now();
    let up = tb.run_until(|tb| tb.fw.mac.link().is_some(), SECOND);
    assert!(up, "the link came up");
    // Idle virtual time is cheap: ten seconds of superloop ticks.
    let t0 = tb.now_ns();
    tb.run_for(10 * SECOND);
    assert!(tb.now_ns() >= t0 + 10 * SECOND);
    assert!(tb.steps() >= 10_000, "a pass every millisecond");
    let idle = wall.elapsed();

    // The peer's ARP requests (it pings the board, which does not answer yet) reach the
    // firmware.
    let seen = tb.fw.frames;
    assert!(tb.peer.ping([10, 0, 0, 1], 1, 1, b"hello"));
    let arrived = tb.run_until(|tb| tb.fw.frames > seen, 10_000_000);
    assert!(arrived, "a broadcast from the peer reached the firmware");

    // 10 MB of raw frames to the board's station address, at line rate.
    let station = tb.board.station_address();
    let frames: u32 = 10_000_000 / 1500;
    let before = tb.fw.frames;
    let t0 = tb.now_ns();
    let wall_10mb = WallClock::now();
    for i in 0..frames {
        let mut f = Vec::with_capacity(1514);
        f.extend_from_slice(&station);
        f.extend_from_slice(&MAC_B);
        f.extend_from_slice(&[0x88, 0xB5]);
        f.extend_from_slice(&i.to_be_bytes());
        f.resize(1514, i as u8);
        tb.peer.inject_frame(&f);
    }
    let all = tb.run_until(|tb| tb.fw.frames - before >= frames, 5 * SECOND);
    let took = tb.now_ns() - t0;
    assert!(
        all,
        "firmware saw {} of {frames} frames; model {:?}",
        tb.fw.frames - before,
        tb.board.model_stats()
    );
    // 6666 × (1518 + 20) bytes at 100 Mb/s is 0.82 s.
    assert!((800_000_000..900_000_000).contains(&took), "took {took} ns");
    eprintln!(
        "testbed: 10 s idle in {:.3} s real; 10 MB at line rate ({:.3} s virtual) in {:.3} s real, {} steps in all",
        idle.as_secs_f64(),
        took as f64 / 1e9,
        wall_10mb.elapsed().as_secs_f64(),
        tb.steps()
    );
}

#[test]
fn wire_fcs_helpers_round_trip() {
    let mut f = vec![1u8; 10];
    append_fcs(&mut f);
    assert_eq!(from_wire(f), None, "10 bytes hold no Ethernet header");
    let f = to_wire(vec![7u8; 100]);
    assert_eq!(f.len(), 104);
    assert_eq!(from_wire(f), Some(vec![7u8; 100]));
}

// ------------------------------------------------------------------------------------
// The Linux kernel as the peer, through a TAP device in a namespace of our own.

const NS_ADDR: [u8; 4] = [10, 200, 0, 1];
const BOARD_ADDR: [u8; 4] = [10, 200, 0, 2];

/// A namespace for a TAP test, or `None` (with the reason printed) where there cannot be
/// one.
fn netns_or_skip(test: &str) -> Option<NetNs> {
    if let Err(why) = NetNs::available() {
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    Some(NetNs::create("tap0", NS_ADDR, 24).expect("create the test namespace"))
}

#[test]
fn tap_kernel_pings_the_responder() {
    let Some(ns) = netns_or_skip("tap_kernel_pings_the_responder") else {
        return;
    };
    let port = TapPort::new(ns.open_tap().expect("open tap0 in the namespace"));
    let mut link = Link::new(
        port,
        Responder::new(MAC_A, BOARD_ADDR),
        Wire::new(WireConfig::default()),
    );
    let wall = WallClock::now();
    let ping = ns.spawn_ping(
        BOARD_ADDR,
        5,
        Duration::from_millis(20),
        Duration::from_secs(2),
    );
    link.run_until(|_| ping.is_finished(), 15 * SECOND);
    let rtts = ping.join().expect("kernel ping");
    eprintln!(
        "kernel ping through TAP: {rtts:?} in {:.3} s; port {:?}",
        wall.elapsed().as_secs_f64(),
        link.a.stats
    );
    assert!(
        rtts.iter().all(Option::is_some),
        "every echo answered: {rtts:?}"
    );
    assert_eq!(link.b.echo_replies, 5);
    assert!(link.b.arp_replies >= 1, "the kernel asked ARP first");
}

/// The kernel, as a TCP client in the namespace, sends `len` bytes to a smoltcp host on
/// the board's end of the wire and reads them back (the host echoes); returns the wall
/// time it took.
fn kernel_tcp_echo(test: &str, impair: Impairments, len: usize) -> Option<Duration> {
    let ns = netns_or_skip(test)?;
    let port = TapPort::new(ns.open_tap().expect("open tap0 in the namespace"));
    let board = PeerHost::new(MAC_A, BOARD_ADDR, 24).on_end(End::Board);
    let config = WireConfig {
        impair,
        ..WireConfig::default()
    };
    let mut link = Link::new(port, board, Wire::new(config));
    let server = link.b.tcp_listen(7, 64 * 1024, 64 * 1024);
    let client = ns.spawn(move || {
        use std::io::{Read, Write};
        let addr = std::net::SocketAddr::from((BOARD_ADDR, 7));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut w = s.try_clone()?;
        let writer = std::thread::spawn(move || w.write_all(&pattern(len, 0x33)));
        let mut back = vec![0u8; len];
        s.read_exact(&mut back)?;
        writer
            .join()
            .map_err(|_| std::io::Error::other("writer panicked"))??;
        Ok(back)
    });
    let wall = WallClock::now();
    let mut echoed = 0usize;
    let mut pending = Vec::new();
    link.run_until(
        |l| {
            // The smoltcp side echoes what it gets.
            l.b.tcp_recv(server, &mut pending);
            let n = l.b.tcp_send(server, &pending);
            pending.drain(..n);
            echoed += n;
            client.is_finished()
        },
        18 * SECOND,
    );
    let took = wall.elapsed();
    let back = client.join().expect("the kernel's TCP client");
    eprintln!(
        "kernel TCP echo through TAP: {len} bytes in {:.3} s; wire {:?}; port {:?}",
        took.as_secs_f64(),
        link.wire.stats,
        link.a.stats
    );
    assert_eq!(echoed, len);
    assert!(back == pattern(len, 0x33), "the echo is byte-exact");
    Some(took)
}

#[test]
fn tap_kernel_tcp_client_against_smoltcp() {
    kernel_tcp_echo(
        "tap_kernel_tcp_client_against_smoltcp",
        Impairments::default(),
        1 << 20,
    );
}

#[test]
fn tap_kernel_tcp_client_against_smoltcp_through_impairments() {
    // Small: smoltcp's 1 s minimum RTO makes each of its lost segments cost a second of
    // real time here.
    let impair = Impairments {
        loss: 0.02,
        duplicate: 0.02,
        reorder: 0.05,
        corrupt: 0.01,
        seed: 3,
        ..Impairments::default()
    };
    kernel_tcp_echo(
        "tap_kernel_tcp_client_against_smoltcp_through_impairments",
        impair,
        64 * 1024,
    );
}

#[test]
fn tap_testbed_kernel_frames_reach_the_firmware() {
    // The testbed follows the wall clock when its peer is the kernel.
    let Some(ns) = netns_or_skip("tap_testbed_kernel_frames_reach_the_firmware") else {
        return;
    };
    let port = TapPort::new(ns.open_tap().expect("open tap0 in the namespace"));
    let (board, fw) = counting_board();
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), port);
    let wall = WallClock::now();
    assert!(tb.run_until(|tb| tb.fw.mac.link().is_some(), SECOND));
    // The board does not answer yet: the kernel's ARP requests are what arrives.
    let ping = ns.spawn_ping(BOARD_ADDR, 1, Duration::ZERO, Duration::from_millis(300));
    let seen = tb.run_until(|tb| tb.fw.frames > 0, 5 * SECOND);
    tb.run_until(|_| ping.is_finished(), 5 * SECOND);
    let rtts = ping.join().expect("kernel ping");
    let elapsed = wall.elapsed().as_secs_f64();
    let virt = tb.now_ns() as f64 / 1e9;
    eprintln!(
        "testbed on the kernel's wall clock: {virt:.3} s board time in {elapsed:.3} s; port {:?}; model {:?}",
        tb.peer.stats,
        tb.board.model_stats()
    );
    assert!(seen, "a frame from the kernel reached the firmware");
    assert_eq!(rtts, vec![None], "nobody answers the ping yet");
    assert!(
        (virt - elapsed).abs() < 0.2,
        "board time follows the wall clock"
    );
}

#[test]
fn tap_nft_drops_in_the_kernel_path() {
    let nft = std::process::Command::new("nft").arg("--version").output();
    if !nft.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED tap_nft_drops_in_the_kernel_path: no nft (apt-get install nftables)");
        return;
    }
    let Some(ns) = netns_or_skip("tap_nft_drops_in_the_kernel_path") else {
        return;
    };
    // Every other echo reply is dropped in the kernel's input hook; a counter, not a
    // random draw, so the pattern is exact.
    ns.nft(
        "table inet imp {\n\
           chain out {\n\
             type filter hook input priority 0;\n\
             ip saddr 10.200.0.2 icmp type echo-reply numgen inc mod 2 == 0 drop\n\
           }\n\
         }\n",
    )
    .expect("load the nftables rules");
    let port = TapPort::new(ns.open_tap().expect("open tap0 in the namespace"));
    let mut link = Link::new(
        port,
        Responder::new(MAC_A, BOARD_ADDR),
        Wire::new(WireConfig::default()),
    );
    // Each reply waited for up to 2 s, as the other TAP tests do: a dropped reply never
    // comes, however long the wait, while a loaded machine (CI) once took over 300 ms to
    // relay one that was not dropped.
    let ping = ns.spawn_ping(BOARD_ADDR, 4, Duration::ZERO, Duration::from_secs(2));
    link.run_until(|_| ping.is_finished(), 15 * SECOND);
    let rtts = ping.join().expect("kernel ping");
    let answered: Vec<bool> = rtts.iter().map(Option::is_some).collect();
    assert_eq!(answered, [false, true, false, true], "{rtts:?}");
    assert_eq!(
        link.b.echo_replies, 4,
        "the responder answered every request"
    );
}
