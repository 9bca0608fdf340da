//! ARP, IPv4, ICMP and TCP input against a scripted peer: answers where answers are due,
//! and every malformed frame dropped and counted in the counter for its reason.

#[path = "common/scripted.rs"]
mod scripted;

use mzw1_sim::crc::append_fcs;
use mzw1_wss::net::NetStats;
use mzw1_wss::net::tcp::{TcpEvent, TcpStats};
use scripted::*;

fn eth(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BOARD_MAC);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    append_fcs(&mut f);
    f
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&PEER_MAC);
    a.extend_from_slice(&PEER_IP);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    let mut f = Vec::new();
    f.extend_from_slice(&[0xFF; 6]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&a);
    f.resize(60, 0);
    append_fcs(&mut f);
    f
}

fn echo_request(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = !fold(sum(&m));
    m[2] = (c >> 8) as u8;
    m[3] = c as u8;
    m
}

#[test]
fn arp_requests_for_us_are_answered_and_others_learned() {
    let mut rig = Rig::new();
    let out = rig.send_frame(&arp_request(BOARD_IP));
    assert_eq!(out.len(), 1);
    let Out::Arp { dst_mac, body } = &out[0] else {
        panic!("ARP reply expected: {out:?}")
    };
    assert_eq!(dst_mac, &PEER_MAC);
    assert_eq!(&body[6..8], &[0, 2], "reply");
    assert_eq!(&body[8..14], &BOARD_MAC);
    assert_eq!(&body[14..18], &BOARD_IP);
    assert_eq!(&body[18..24], &PEER_MAC);
    assert_eq!(&body[24..28], &PEER_IP);
    assert_eq!(rig.fw.iface.arp_cache().lookup(PEER_IP), Some(PEER_MAC));
    // For someone else: learned, not answered.
    let out = rig.send_frame(&arp_request([10, 0, 0, 77]));
    assert!(out.is_empty());
    let s = rig.fw.iface.stats();
    assert_eq!((s.arp_replies, s.arp_not_for_us), (1, 1));
}

#[test]
fn link_up_sends_an_announcement() {
    // The rig consumed the link-up traffic; make a new link-up by pulling the cable.
    let mut rig = Rig::new();
    assert_eq!(rig.fw.iface.stats().arp_announcements, 1);
    rig.board.set_cable(false);
    rig.wait_ms(200);
    rig.board.set_cable(true);
    rig.wait_ms(200);
    assert_eq!(rig.fw.iface.stats().arp_announcements, 2);
}

#[test]
fn echo_requests_of_every_size_up_to_the_mtu_are_answered() {
    let mut rig = Rig::new();
    for size in (0..=1472).step_by(7).chain([1471, 1472]) {
        let data: Vec<u8> = (0..size).map(|i| (i * 13 + size) as u8).collect();
        let req = echo_request(0x4242, size as u16, &data);
        let out = rig.send_frame(&ipv4_frame(PEER_IP, BOARD_IP, 1, &req));
        assert_eq!(out.len(), 1, "size {size}");
        let Out::Icmp { dst_ip, body } = &out[0] else {
            panic!("ICMP expected")
        };
        assert_eq!(dst_ip, &PEER_IP);
        assert_eq!(body[0], 0, "echo reply");
        assert_eq!(&body[4..8], &req[4..8], "identifier and sequence");
        assert_eq!(&body[8..], &data[..], "size {size}");
    }
    assert_eq!(rig.fw.iface.stats().icmp_echo_replies, 213);
}

/// RFC 791 §3.1: the header checksum covers the options too. An echo request with 8
/// bytes of options (IHL 7) is answered; the same with an option byte changed after the
/// checksum was set is dropped and counted as a bad checksum.
#[test]
fn ip_options_are_covered_by_the_header_checksum() {
    let mut rig = Rig::new();
    let data = *b"options!";
    let req = echo_request(0x0707, 7, &data);
    let mut ip = ip_header(28 + req.len() as u16, 7, 1, 0, true);
    ip.extend_from_slice(&req);
    let out = rig.send_frame(&eth(0x0800, &ip));
    assert_eq!(out.len(), 1, "answered: {out:?}");
    let Out::Icmp { body, .. } = &out[0] else {
        panic!("ICMP expected")
    };
    assert_eq!((body[0], &body[8..]), (0, &data[..]), "echo reply");
    ip[25] ^= 0x40;
    expect_dropped(&mut rig, eth(0x0800, &ip), "option byte changed", |n, _| {
        n.ip_bad_checksum
    });
}

fn stats(rig: &Rig) -> (NetStats, TcpStats) {
    (*rig.fw.iface.stats(), *rig.fw.iface.tcp_stats())
}

/// A malformed frame: nothing sent back, and exactly `counter` went up by one.
fn expect_dropped(
    rig: &mut Rig,
    frame: Vec<u8>,
    what: &str,
    counter: impl Fn(&NetStats, &TcpStats) -> u32,
) {
    let (n0, t0) = stats(rig);
    let before = counter(&n0, &t0);
    let out = rig.send_frame(&frame);
    assert!(out.is_empty(), "{what}: nothing answers, got {out:?}");
    let (n1, t1) = stats(rig);
    assert_eq!(counter(&n1, &t1), before + 1, "{what}: counted");
}

fn ip_header(total: u16, ihl: u8, proto: u8, flags_frag: u16, fix_checksum: bool) -> Vec<u8> {
    let mut ip = vec![0x40 | ihl, 0, (total >> 8) as u8, total as u8, 0, 1];
    ip.extend_from_slice(&flags_frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&PEER_IP);
    ip.extend_from_slice(&BOARD_IP);
    ip.resize(ihl as usize * 4, 1); // options: NOPs
    if fix_checksum {
        let c = !fold(sum(&ip));
        ip[10] = (c >> 8) as u8;
        ip[11] = c as u8;
    }
    ip
}

#[test]
fn malformed_arp_ipv4_icmp_and_tcp_are_dropped_and_counted() {
    let mut rig = Rig::with(tcp_config(), Mode::Echo);
    let iss = rig.connect(40000, 100);

    // Ethernet.
    let mut short = vec![0u8; 10];
    append_fcs(&mut short);
    // A frame under 14 bytes never gets past the MAC (runt), so build one just over it.
    expect_dropped(&mut rig, eth(0x86DD, &[0; 40]), "IPv6", |n, _| {
        n.rx_unknown_ethertype
    });

    // ARP.
    expect_dropped(
        &mut rig,
        eth(0x0806, &[0, 1, 8, 0, 6, 6, 0, 1]),
        "ARP with 6-byte protocol addresses",
        |n, _| n.arp_malformed,
    );
    let mut a = arp_request(BOARD_IP);
    a[14 + 1] = 6; // hardware type 6 (IEEE 802)
    let n = a.len() - 4;
    a.truncate(n);
    append_fcs(&mut a);
    expect_dropped(&mut rig, a, "ARP for another hardware type", |n, _| {
        n.arp_malformed
    });

    // IPv4.
    let body = [0u8; 20];
    let mut bad_version = ip_header(40, 5, 6, 0, true);
    bad_version[0] = 0x65;
    bad_version.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &bad_version),
        "IPv6 version in IPv4",
        |n, _| n.ip_malformed,
    );
    let mut ihl4 = ip_header(40, 5, 6, 0, true);
    ihl4[0] = 0x44;
    ihl4.extend_from_slice(&body);
    expect_dropped(&mut rig, eth(0x0800, &ihl4), "IHL 4", |n, _| n.ip_malformed);
    let mut long = ip_header(1000, 5, 6, 0, true);
    long.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &long),
        "total length beyond the frame",
        |n, _| n.ip_malformed,
    );
    let mut short_total = ip_header(12, 5, 6, 0, true);
    short_total.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &short_total),
        "total length below the header",
        |n, _| n.ip_malformed,
    );
    let mut ihl_beyond = ip_header(24, 15, 6, 0, true);
    ihl_beyond.truncate(24);
    expect_dropped(
        &mut rig,
        eth(0x0800, &ihl_beyond),
        "IHL beyond total length",
        |n, _| n.ip_malformed,
    );
    let mut bad_sum = ip_header(40, 5, 6, 0, false);
    bad_sum[10] = 0xDE;
    bad_sum.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &bad_sum),
        "header checksum",
        |n, _| n.ip_bad_checksum,
    );
    let mut frag = ip_header(40, 5, 6, 0x2000, true);
    frag.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &frag),
        "first fragment (MF)",
        |n, _| n.ip_fragments,
    );
    let mut frag2 = ip_header(40, 5, 6, 0x0010, true);
    frag2.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &frag2),
        "later fragment (offset)",
        |n, _| n.ip_fragments,
    );
    let mut other = ip_header(40, 5, 6, 0, true);
    other[16..20].copy_from_slice(&[10, 0, 0, 9]);
    let c = !fold(sum(&{
        let mut h = other.clone();
        h[10] = 0;
        h[11] = 0;
        h
    }));
    other[10] = (c >> 8) as u8;
    other[11] = c as u8;
    other.extend_from_slice(&body);
    expect_dropped(
        &mut rig,
        eth(0x0800, &other),
        "another destination",
        |n, _| n.ip_not_for_us,
    );
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 17, &[0; 8]),
        "UDP",
        |n, _| n.ip_unknown_protocol,
    );

    // ICMP.
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 1, &[8, 0, 0]),
        "truncated ICMP",
        |n, _| n.icmp_malformed,
    );
    let mut req = echo_request(1, 1, b"abc");
    req[2] ^= 0xFF;
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 1, &req),
        "ICMP checksum",
        |n, _| n.icmp_bad_checksum,
    );
    let mut reply = echo_request(1, 1, b"abc");
    reply[0] = 0;
    let c = !fold(sum(&{
        let mut m = reply.clone();
        m[2] = 0;
        m[3] = 0;
        m
    }));
    reply[2] = (c >> 8) as u8;
    reply[3] = c as u8;
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 1, &reply),
        "echo reply",
        |n, _| n.icmp_ignored,
    );
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, [10, 0, 0, 255], 1, &echo_request(1, 1, b"bcast")),
        "broadcast ping",
        |n, _| n.icmp_ignored,
    );

    // TCP.
    let good = Seg::new(40000, 101, iss + 1, ACK)
        .data(b"x")
        .bytes(PEER_IP, BOARD_IP);
    let mut t = good.clone();
    t[17] ^= 0x55;
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 6, &t),
        "TCP checksum",
        |_, t| t.rx_bad_checksum,
    );
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 6, &good[..12]),
        "truncated TCP",
        |_, t| t.rx_malformed,
    );
    let mut off = Seg::new(40000, 101, iss + 1, ACK).data(b"x");
    off.options = vec![];
    let mut t = off.bytes(PEER_IP, BOARD_IP);
    t[12] = 0x40; // data offset 4 words
    fix_tcp_sum(&mut t);
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 6, &t),
        "data offset 4",
        |_, t| t.rx_malformed,
    );
    let mut t = off.bytes(PEER_IP, BOARD_IP);
    t[12] = 0xF0; // data offset 60 bytes, segment is 21
    fix_tcp_sum(&mut t);
    expect_dropped(
        &mut rig,
        ipv4_frame(PEER_IP, BOARD_IP, 6, &t),
        "data offset beyond",
        |_, t| t.rx_malformed,
    );
    let mut bad_opt = Seg::new(40000, 101, iss + 1, ACK);
    bad_opt.options = vec![2, 0, 0, 0]; // option length 0
    expect_dropped(&mut rig, bad_opt.frame(), "option length 0", |_, t| {
        t.rx_malformed
    });
    let mut bad_opt = Seg::new(40000, 101, iss + 1, ACK);
    bad_opt.options = vec![1, 1, 8, 10]; // timestamps claiming 10 bytes in 2
    expect_dropped(
        &mut rig,
        bad_opt.frame(),
        "option past the header",
        |_, t| t.rx_malformed,
    );

    // After all that, the connection still works.
    let r = rig.send(Seg::new(40000, 101, iss + 1, ACK | PSH).data(b"still here"));
    assert_eq!(r[0].payload, b"still here");
}

fn fix_tcp_sum(t: &mut [u8]) {
    t[16] = 0;
    t[17] = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&PEER_IP);
    pseudo.extend_from_slice(&BOARD_IP);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
    let c = !fold(sum(&pseudo) + sum(t));
    t[16] = (c >> 8) as u8;
    t[17] = c as u8;
}

#[test]
fn random_damage_never_panics_and_never_breaks_the_connection() {
    let mut rig = Rig::with(tcp_config(), Mode::Echo);
    let iss = rig.connect(40000, 100);
    let valid = [
        Seg::new(40000, 101, iss + 1, ACK)
            .data(b"0123456789")
            .frame(),
        arp_request(BOARD_IP),
        ipv4_frame(PEER_IP, BOARD_IP, 1, &echo_request(7, 7, &[0x55; 100])),
        Seg::new(40001, 9, 0, SYN).mss(1460).frame(),
    ];
    let mut rng = mzw1_sim::wire::Rng::new(99);
    for round in 0..20_000 {
        let mut f = valid[round % valid.len()].clone();
        let body = f.len() - 4;
        f.truncate(body);
        match rng.below(3) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let bit = rng.below(body as u64 * 8) as usize;
                    f[bit / 8] ^= 1 << (bit % 8);
                }
            }
            1 => f.truncate(14 + rng.below(body as u64 - 14) as usize),
            _ => {
                let at = 14 + rng.below(body as u64 - 14) as usize;
                f[at] = rng.next_u64() as u8;
            }
        }
        if f.len() < 60 {
            f.resize(60, 0);
        }
        append_fcs(&mut f);
        rig.send_frame(&f);
    }
    // Every frame is accounted for in exactly one place.
    let n = rig.fw.iface.stats();
    let t = rig.fw.iface.tcp_stats();
    assert_eq!(
        n.rx_frames,
        n.rx_truncated + n.rx_unknown_ethertype + n.arp_rx + n.ip_rx
    );
    assert_eq!(n.arp_rx, n.arp_malformed + n.arp_replies + n.arp_not_for_us);
    let icmp = n.icmp_malformed + n.icmp_bad_checksum + n.icmp_ignored + n.icmp_echo_replies;
    let tcp = t.rx_segments + t.rx_malformed + t.rx_bad_checksum;
    let ip_drops = n.ip_malformed
        + n.ip_bad_checksum
        + n.ip_fragments
        + n.ip_not_for_us
        + n.ip_unknown_protocol;
    assert_eq!(n.ip_rx, ip_drops + icmp + tcp);
    assert!(n.ip_bad_checksum > 1000 && t.rx_bad_checksum > 1000 && n.icmp_bad_checksum > 1000);
    // The connection survived the noise, unless a damaged segment that still passed the
    // checksum (two flips can cancel in a ones'-complement sum) legitimately ended it.
    let n = rig.fw.rec.data.len() as u32;
    let r = rig.send(Seg::new(40000, 101 + n, iss + 1 + n, ACK | PSH).data(b"alive?"));
    let echoed = r.iter().any(|s| s.payload.ends_with(b"alive?"));
    let ended = rig
        .events()
        .iter()
        .any(|e| matches!(e, TcpEvent::Reset | TcpEvent::PeerClosed));
    assert!(
        echoed || ended,
        "still echoing, or ended by a checksum-valid damaged segment: {r:?}"
    );
}
