//! The TCP state machine against a scripted peer (RFC 9293 §3.10, RFC 5961, RFC 6298,
//! RFC 6528): every transition of the server side, sequence wrap-around, RST and SYN
//! validation, window edge cases.

#[path = "common/scripted.rs"]
mod scripted;

use mzw1_wss::net::tcp::{ConnId, SendError, State, TcpConfig, TcpEvent};
use scripted::*;

const P: u16 = 40000;

#[test]
fn handshake_announces_and_honours_mss() {
    let mut rig = Rig::new();
    let r = rig.send(Seg::new(P, 1000, 0, SYN).mss(1200).window(8000));
    assert_eq!(r.len(), 1);
    let sa = &r[0];
    assert!(sa.has(SYN | ACK) && !sa.has(FIN | RST));
    assert_eq!(sa.ack, 1001);
    assert_eq!(sa.mss_option(), Some(1460), "SYN-ACK carries our MSS");
    assert!(sa.window > 0);
    assert_eq!(rig.fw.iface.slots_in_use(), 1);
    assert!(
        rig.events().is_empty(),
        "not connected before the final ACK"
    );
    rig.send(Seg::new(P, 1001, sa.seq.wrapping_add(1), ACK));
    assert_eq!(rig.events(), vec![TcpEvent::Connected]);
    let id = rig.conn();
    assert_eq!(rig.tcp().state(id), Some(State::Established));
    // Peer MSS 1200: a 3000-byte send becomes segments of at most 1200 bytes.
    let data: Vec<u8> = (0..3000).map(|i| i as u8).collect();
    let sent = rig.app_send(&data);
    assert_eq!(sent, 3000);
    let segs = rig.take_out();
    assert_eq!(
        segs.iter().map(|s| s.payload.len()).collect::<Vec<_>>(),
        vec![1200, 1200, 600]
    );
    assert!(segs.iter().all(|s| s.has(ACK) && s.ack == 1001));
}

#[test]
fn missing_mss_option_means_536() {
    let mut rig = Rig::new();
    let r = rig.send(Seg::new(P, 5, 0, SYN));
    let iss = r[0].seq;
    rig.send(Seg::new(P, 6, iss + 1, ACK));
    rig.app_send(&[7u8; 1000]);
    let segs = rig.take_out();
    assert_eq!(segs[0].payload.len(), 536);
}

#[test]
fn in_order_data_is_delivered_and_acked() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK | PSH).data(b"hello"));
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ACK));
    assert_eq!(r[0].ack, 106);
    assert_eq!(rig.fw.rec.data, b"hello");
}

#[test]
fn echo_reply_carries_the_ack() {
    let mut rig = Rig::with(tcp_config(), Mode::Echo);
    let iss = rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK | PSH).data(b"ping"));
    assert_eq!(r.len(), 1, "the echo piggybacks the ACK: {r:?}");
    assert_eq!(r[0].payload, b"ping");
    assert_eq!(r[0].ack, 105);
    assert_eq!(r[0].seq, iss + 1);
}

#[test]
fn out_of_order_segment_is_acked_and_dropped() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 111, iss + 1, ACK).data(b"world"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].ack, 101, "duplicate ACK for the gap");
    assert!(rig.fw.rec.data.is_empty());
    assert_eq!(rig.fw.iface.tcp_stats().rx_out_of_order, 1);
    rig.send(Seg::new(P, 101, iss + 1, ACK).data(b"0123456789"));
    rig.send(Seg::new(P, 111, iss + 1, ACK).data(b"world"));
    assert_eq!(rig.fw.rec.data, b"0123456789world");
}

#[test]
fn duplicates_and_overlaps_are_not_delivered_twice() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    rig.send(Seg::new(P, 101, iss + 1, ACK).data(b"abcdef"));
    // Exact duplicate: ACKed, not delivered.
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK).data(b"abcdef"));
    assert_eq!(r[0].ack, 107);
    // Overlap: "def" old, "ghi" new.
    rig.send(Seg::new(P, 104, iss + 1, ACK).data(b"defghi"));
    assert_eq!(rig.fw.rec.data, b"abcdefghi");
    assert_eq!(rig.fw.iface.tcp_stats().rx_duplicate, 1);
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut rig = Rig::with(tcp_config(), Mode::Echo);
    let isn = 0xFFFF_FFF0u32;
    let iss = rig.connect(P, isn);
    let mut seq = isn.wrapping_add(1);
    let mut all = Vec::new();
    for k in 0..8u8 {
        let chunk = [k; 7];
        let r = rig.send(
            Seg::new(
                P,
                seq,
                iss.wrapping_add(1).wrapping_add(all.len() as u32),
                ACK,
            )
            .data(&chunk),
        );
        seq = seq.wrapping_add(7);
        all.extend_from_slice(&chunk);
        assert_eq!(r.last().unwrap().ack, seq, "ACK across the wrap");
    }
    assert!(seq < 100, "crossed 2^32");
    assert_eq!(rig.fw.rec.data, all);
}

#[test]
fn our_sequence_numbers_wrap_too() {
    // ISS = 250 x ms + hash (RFC 6528's 4 us clock): move board time so that this peer's
    // ISS lands just below 2^32.
    let mut rig = Rig::with(tcp_config(), Mode::Echo);
    let port = 1234;
    let iss0 = rig.send(Seg::new(port, 1, 0, SYN))[0].seq;
    rig.send(Seg::new(port, 2, 0, RST));
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    let dt_ms = 0xFFFF_8000u32.wrapping_sub(iss0) / 250;
    rig.board.advance_ns(dt_ms as u64 * 1_000_000);
    let r = rig.send(Seg::new(port, 1, 0, SYN));
    let iss = r[0].seq;
    assert!(iss >= 0xFFFF_0000, "ISS near the wrap: {iss:#x}");
    rig.send(Seg::new(port, 2, iss.wrapping_add(1), ACK));
    let mut ours = iss.wrapping_add(1);
    let mut theirs = 2u32;
    let mut echoed = 0usize;
    for _ in 0..60 {
        let r = rig.send(Seg::new(port, theirs, ours, ACK).data(&[0xAB; 1400]));
        theirs = theirs.wrapping_add(1400);
        for s in r.iter().filter(|s| !s.payload.is_empty()) {
            assert_eq!(s.seq, ours);
            ours = ours.wrapping_add(s.payload.len() as u32);
            echoed += s.payload.len();
        }
        // Acknowledge what came back.
        rig.send(Seg::new(port, theirs, ours, ACK));
    }
    assert!(ours < iss, "our sequence crossed 2^32");
    assert_eq!(echoed, 60 * 1400);
}

#[test]
fn rst_exactly_at_rcv_nxt_resets_others_get_challenge_ack() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    // In window but not exact: challenge ACK, connection stays (RFC 5961 §3.2).
    let r = rig.send(Seg::new(P, 150, 0, RST));
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ACK) && !r[0].has(RST));
    assert_eq!(r[0].ack, 101);
    let id = rig.conn();
    assert_eq!(rig.tcp().state(id), Some(State::Established));
    // Out of window: ignored.
    let r = rig.send(Seg::new(P, 100 + 1_000_000, 0, RST));
    assert!(r.is_empty());
    // Exact: reset.
    let r = rig.send(Seg::new(P, 101, 0, RST));
    assert!(r.is_empty());
    assert_eq!(rig.events(), vec![TcpEvent::Connected, TcpEvent::Reset]);
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.fw.iface.tcp_stats().challenge_acks, 1);
    let _ = iss;
}

#[test]
fn syn_on_an_established_connection_gets_a_challenge_ack() {
    let mut rig = Rig::new();
    rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 5000, 0, SYN));
    assert_eq!(r.len(), 1);
    assert!(r[0].has(ACK) && !r[0].has(SYN) && !r[0].has(RST));
    assert_eq!(r[0].ack, 101);
    let id = rig.conn();
    assert_eq!(rig.tcp().state(id), Some(State::Established));
}

#[test]
fn acks_for_unsent_or_ancient_data_are_dropped() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    // ACK beyond SND.NXT: ACK and drop (data not delivered).
    let r = rig.send(Seg::new(P, 101, iss + 1000, ACK).data(b"x"));
    assert_eq!(r.len(), 1);
    assert!(rig.fw.rec.data.is_empty());
    // ACK far behind SND.UNA (RFC 5961 §5): challenge ACK, dropped.
    let r = rig.send(Seg::new(P, 101, iss.wrapping_sub(100_000), ACK).data(b"y"));
    assert_eq!(r.len(), 1);
    assert!(rig.fw.rec.data.is_empty());
    assert_eq!(rig.fw.iface.tcp_stats().rx_bad_ack, 2);
    rig.send(Seg::new(P, 101, iss + 1, ACK).data(b"z"));
    assert_eq!(rig.fw.rec.data, b"z");
}

#[test]
fn segment_without_ack_flag_is_dropped() {
    let mut rig = Rig::new();
    rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 101, 0, PSH).data(b"q"));
    assert!(r.is_empty());
    assert!(rig.fw.rec.data.is_empty());
    assert_eq!(rig.fw.iface.tcp_stats().rx_no_ack, 1);
}

#[test]
fn peer_closes_first_close_wait_last_ack_closed() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK | FIN).data(b"bye"));
    assert_eq!(r[0].ack, 105, "data and FIN acknowledged");
    assert_eq!(
        rig.events(),
        vec![TcpEvent::Connected, TcpEvent::PeerClosed]
    );
    let id = rig.conn();
    assert_eq!(rig.tcp().state(id), Some(State::CloseWait));
    // We can still send in CLOSE-WAIT.
    rig.app_send(b"last words");
    let segs = rig.take_out();
    assert_eq!(segs[0].payload, b"last words");
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    let segs = rig.take_out();
    let fin = segs.iter().find(|s| s.has(FIN)).expect("our FIN");
    assert_eq!(fin.seq, iss + 1 + 10);
    assert_eq!(rig.tcp().state(id), Some(State::LastAck));
    rig.send(Seg::new(P, 105, iss + 1 + 11, ACK));
    assert_eq!(rig.events().last(), Some(&TcpEvent::Closed));
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
}

#[test]
fn we_close_first_fin_wait_1_2_time_wait() {
    let mut cfg = tcp_config();
    cfg.time_wait_ms = 500;
    let mut rig = Rig::with(cfg, Mode::Sink);
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    let fin = rig
        .take_out()
        .into_iter()
        .find(|s| s.has(FIN))
        .expect("FIN");
    assert_eq!(fin.seq, iss + 1);
    assert_eq!(rig.tcp().state(id), Some(State::FinWait1));
    rig.send(Seg::new(P, 101, iss + 2, ACK));
    assert_eq!(rig.tcp().state(id), Some(State::FinWait2));
    // Data still arrives in FIN-WAIT-2.
    rig.send(Seg::new(P, 101, iss + 2, ACK).data(b"more"));
    assert_eq!(rig.fw.rec.data, b"more");
    let r = rig.send(Seg::new(P, 105, iss + 2, ACK | FIN));
    assert_eq!(r[0].ack, 106);
    assert_eq!(rig.tcp().state(id), Some(State::TimeWait));
    assert!(
        rig.events()
            .ends_with(&[TcpEvent::PeerClosed, TcpEvent::Closed])
    );
    // A retransmitted FIN in TIME-WAIT is ACKed again.
    let r = rig.send(Seg::new(P, 105, iss + 2, ACK | FIN));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].ack, 106);
    rig.wait_ms(600);
    assert_eq!(rig.fw.iface.slots_in_use(), 0, "TIME-WAIT expired");
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    rig.take_out();
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK | FIN));
    assert_eq!(r[0].ack, 102);
    assert_eq!(rig.tcp().state(id), Some(State::Closing));
    rig.send(Seg::new(P, 102, iss + 2, ACK));
    assert_eq!(rig.tcp().state(id), Some(State::TimeWait));
}

#[test]
fn fin_ack_together_in_fin_wait_1_goes_to_time_wait() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    rig.take_out();
    rig.send(Seg::new(P, 101, iss + 2, ACK | FIN));
    assert_eq!(rig.tcp().state(id), Some(State::TimeWait));
}

#[test]
fn fin_wait_2_without_peer_fin_times_out() {
    let mut cfg = tcp_config();
    cfg.fin_wait2_timeout_ms = 300;
    let mut rig = Rig::with(cfg, Mode::Sink);
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    rig.send(Seg::new(P, 101, iss + 2, ACK));
    assert_eq!(rig.tcp().state(id), Some(State::FinWait2));
    rig.wait_ms(400);
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.events().last(), Some(&TcpEvent::Closed));
}

#[test]
fn unacknowledged_data_is_retransmitted_with_backoff_then_aborted() {
    let mut cfg = tcp_config();
    cfg.max_retries = 3;
    cfg.rto.min_ms = 200;
    let mut rig = Rig::with(cfg, Mode::Sink);
    rig.connect(P, 100);
    rig.app_send(b"are you there?");
    let first = rig.take_out();
    assert_eq!(first.len(), 1);
    // Initial RTO 1 s, then 2 s, then 4 s; after 3 retries, RST.
    let mut times = vec![];
    let mut t = 0;
    let mut rst = None;
    while t < 20_000 && rst.is_none() {
        let segs = rig.wait_ms(50);
        t += 50;
        for s in segs {
            if s.has(RST) {
                rst = Some(t);
            } else if s.payload == b"are you there?" {
                times.push(t);
            }
        }
    }
    assert_eq!(times.len(), 3, "three retransmissions: {times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        (950..=1100).contains(&times[0]),
        "first after ~1 s: {times:?}"
    );
    assert!(
        (1900..=2100).contains(&gaps[0]) && (3900..=4100).contains(&gaps[1]),
        "doubling: {gaps:?}"
    );
    assert!(rst.is_some(), "aborted with RST");
    assert_eq!(rig.events().last(), Some(&TcpEvent::TimedOut));
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.fw.iface.tcp_stats().timeouts, 1);
}

#[test]
fn rtt_samples_shorten_the_rto_and_karn_ignores_retransmissions() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    // Acknowledge each segment after 10 ms: the RTO converges towards the 200 ms floor.
    let mut una = iss + 1;
    for _ in 0..10 {
        rig.app_send(b"data");
        rig.wait_ms(10);
        una += 4;
        rig.send(Seg::new(P, 101, una, ACK));
    }
    rig.app_send(b"lost");
    rig.take_out();
    let before = rig.board.now();
    let mut retransmitted_at = None;
    for ms in 0..1000 {
        if rig.wait_ms(1).iter().any(|s| s.payload == b"lost") {
            retransmitted_at = Some(ms);
            break;
        }
    }
    let at = retransmitted_at.expect("retransmitted within 1 s");
    assert!(
        (190..=260).contains(&at),
        "RTO near the 200 ms floor after fast samples, got {at}"
    );
    let _ = before;
}

#[test]
fn three_duplicate_acks_trigger_fast_retransmit() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    rig.app_send(&[1u8; 4000]);
    let segs = rig.take_out();
    assert_eq!(segs.len(), 3);
    // The first segment is "lost": three duplicate ACKs for iss+1.
    let mut fast = vec![];
    for _ in 0..3 {
        fast.extend(rig.send(Seg::new(P, 101, iss + 1, ACK)));
    }
    assert_eq!(
        fast.len(),
        1,
        "retransmitted at the third duplicate: {fast:?}"
    );
    assert_eq!(fast[0].seq, iss + 1);
    assert_eq!(fast[0].payload.len(), 1460);
    // A partial ACK (first segment now received) retransmits the next at once (NewReno).
    let r = rig.send(Seg::new(P, 101, iss + 1 + 1460, ACK));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].seq, iss + 1 + 1460);
    assert!(rig.fw.iface.tcp_stats().retransmits_fast >= 2);
}

#[test]
fn peer_window_is_respected_and_zero_window_is_probed() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    // The peer advertises 100 bytes.
    rig.send(Seg::new(P, 101, iss + 1, ACK).window(100));
    let sent = rig.app_send(&[9u8; 500]);
    assert_eq!(sent, 100, "only the window");
    assert_eq!(rig.take_out()[0].payload.len(), 100);
    // Acknowledged with a zero window: nothing more may go out.
    rig.send(Seg::new(P, 101, iss + 101, ACK).window(0));
    assert_eq!(
        rig.tcp().send(id, 10, |b| {
            b[..10].fill(1);
            10
        }),
        Err(SendError::WouldBlock)
    );
    // Persist: probes one byte before SND.UNA, backing off.
    let probes: Vec<_> = rig
        .wait_ms(3500)
        .into_iter()
        .filter(|s| s.payload.is_empty() && s.has(ACK))
        .collect();
    assert!(probes.len() >= 2, "zero-window probes: {probes:?}");
    assert!(probes.iter().all(|p| p.seq == iss + 100));
    // The window opens: the layer above hears it may write.
    rig.send(Seg::new(P, 101, iss + 101, ACK).window(1000));
    assert_eq!(rig.events().last(), Some(&TcpEvent::Writable));
    assert_eq!(rig.app_send(&[2u8; 300]), 300);
}

#[test]
fn receive_window_follows_what_can_be_kept() {
    let mut cfg = tcp_config();
    cfg.rx_segments = 2;
    let mut rig = Rig::with(cfg, Mode::Limit(0));
    let r = rig.send(Seg::new(P, 100, 0, SYN));
    assert_eq!(r[0].window, 2 * 1460, "room for two kept segments");
    let iss = r[0].seq;
    rig.send(Seg::new(P, 101, iss + 1, ACK));
    // Nothing is consumed: two segments are kept, then the window is closed.
    let r = rig.send(Seg::new(P, 101, iss + 1, ACK).data(&[1u8; 1000]));
    assert_eq!(r[0].ack, 1101);
    let r = rig.send(Seg::new(P, 1101, iss + 1, ACK).data(&[2u8; 1000]));
    assert_eq!(r[0].ack, 2101);
    assert_eq!(
        r[0].window, 920,
        "never retracts the edge promised (101 + 2920)"
    );
    let r = rig.send(Seg::new(P, 2101, iss + 1, ACK).data(&[3u8; 920]));
    assert_eq!(r[0].ack, 2101, "no room to keep a third: not acknowledged");
    assert_eq!(r[0].window, 920);
    // The layer above starts consuming: kept data is offered again, in order, and the
    // window reopens.
    rig.fw.rec.mode = Mode::Sink;
    let r = rig.wait_ms(2);
    let upd = r.iter().find(|s| s.has(ACK)).expect("window update");
    assert!(upd.window >= 1460, "window reopened: {}", upd.window);
    assert_eq!(rig.fw.rec.data.len(), 2000);
    assert!(
        rig.fw.rec.data[..1000].iter().all(|&b| b == 1)
            && rig.fw.rec.data[1000..].iter().all(|&b| b == 2)
    );
    rig.send(Seg::new(P, 2101, iss + 1, ACK).data(&[3u8; 920]));
    assert_eq!(rig.fw.rec.data.len(), 2920);
}

#[test]
fn closed_port_and_stray_segments_get_rst() {
    let mut rig = Rig::new();
    // SYN to another port: RST+ACK, ack = seq + 1.
    let r = rig.send(Seg::new(P, 77, 0, SYN).to(81));
    assert_eq!(r.len(), 1);
    assert!(r[0].has(RST | ACK));
    assert_eq!(r[0].ack, 78);
    assert_eq!(r[0].src_port, 81);
    // ACK to the listener with no connection and no valid cookie: RST, seq = its ack.
    let r = rig.send(Seg::new(P, 500, 12345, ACK));
    assert_eq!(r.len(), 1);
    assert!(r[0].has(RST));
    assert_eq!(r[0].seq, 12345);
    // An RST is never answered.
    assert!(rig.send(Seg::new(P, 500, 0, RST)).is_empty());
    assert!(rig.send(Seg::new(P, 500, 0, RST).to(81)).is_empty());
    assert_eq!(rig.fw.iface.tcp_stats().rx_closed_port, 2);
}

#[test]
fn syn_received_retransmits_syn_ack_then_gives_up() {
    let mut cfg = tcp_config();
    cfg.syn_retries = 2;
    let mut rig = Rig::with(cfg, Mode::Sink);
    let r = rig.send(Seg::new(P, 100, 0, SYN));
    let iss = r[0].seq;
    // The peer retransmits its SYN: same SYN-ACK.
    let r = rig.send(Seg::new(P, 100, 0, SYN));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].seq, iss);
    // No final ACK: SYN-ACK after 1 s and 2 s more, then the slot is freed.
    // Retries at 1 s and 1 + 2 s; at 1 + 2 + 4 s the slot is given up.
    let resent: Vec<_> = rig
        .wait_ms(7100)
        .into_iter()
        .filter(|s| s.has(SYN | ACK))
        .collect();
    assert_eq!(resent.len(), 2);
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.fw.iface.tcp_stats().syn_timeouts, 1);
}

#[test]
fn half_open_bound_switches_to_cookies_and_cookies_complete() {
    let mut cfg = tcp_config();
    cfg.max_half_open = 1;
    let mut rig = Rig::with(cfg, Mode::Sink);
    rig.send(Seg::new(P, 100, 0, SYN));
    // The second SYN is answered with a cookie: no slot.
    let r = rig.send(Seg::new(P + 1, 7000, 0, SYN).mss(1460));
    let cookie = r[0].seq;
    assert!(r[0].has(SYN | ACK));
    assert_eq!(r[0].mss_option(), Some(1460));
    assert_eq!(rig.fw.iface.slots_in_use(), 1);
    assert_eq!(rig.fw.iface.tcp_stats().syn_cookies_sent, 1);
    // A forged cookie is refused.
    let r = rig.send(Seg::new(P + 2, 9001, cookie.wrapping_add(1), ACK));
    assert!(r[0].has(RST));
    // The real final ACK opens the connection, with its data.
    let r = rig.send(Seg::new(P + 1, 7001, cookie.wrapping_add(1), ACK | PSH).data(b"via cookie"));
    assert_eq!(rig.fw.iface.slots_in_use(), 2);
    assert_eq!(rig.fw.rec.data, b"via cookie");
    assert_eq!(r.last().unwrap().ack, 7001 + 10);
    assert_eq!(rig.fw.iface.tcp_stats().syn_cookies_accepted, 1);
    assert_eq!(rig.fw.iface.tcp_stats().syn_cookies_rejected, 1);
}

#[test]
fn time_wait_slots_are_reused_under_pressure() {
    let mut cfg = tcp_config();
    cfg.time_wait_ms = 60_000;
    cfg.max_half_open = 4;
    let mut rig = Rig::with(cfg, Mode::Sink);
    // Four connections (the table size) closed by us into TIME-WAIT.
    for k in 0..4u16 {
        let iss = rig.connect(P + k, 100);
        let id = rig
            .fw
            .rec
            .events
            .iter()
            .rev()
            .find(|e| e.1 == TcpEvent::Connected)
            .unwrap()
            .0;
        rig.tcp().close(id);
        rig.board.step(&mut rig.fw);
        rig.send(Seg::new(P + k, 101, iss + 2, ACK | FIN));
        assert_eq!(rig.tcp().state(id), Some(State::TimeWait));
    }
    assert_eq!(rig.fw.iface.slots_in_use(), 4);
    // A new SYN takes the oldest TIME-WAIT slot.
    let r = rig.send(Seg::new(P + 10, 100, 0, SYN));
    assert!(r[0].has(SYN | ACK));
    assert_eq!(rig.fw.iface.tcp_stats().time_wait_reused, 1);
}

#[test]
fn isns_are_unpredictable_across_ports_and_time() {
    let mut rig = Rig::new();
    let mut seen = std::collections::HashSet::new();
    for port in 2000..2050 {
        let r = rig.send(Seg::new(port, 1, 0, SYN));
        seen.insert(r[0].seq);
        rig.send(Seg::new(port, 2, 0, RST));
    }
    assert_eq!(seen.len(), 50);
    // With another secret, another sequence.
    let mut cfg = TcpConfig {
        port: PORT,
        secret: *b"another secret!!",
        ..TcpConfig::default()
    };
    cfg.max_half_open = 2;
    let mut other = Rig::with(cfg, Mode::Sink);
    let a = other.send(Seg::new(2000, 1, 0, SYN))[0].seq;
    assert!(!seen.contains(&a));
}

#[test]
fn abort_sends_rst_and_frees_the_slot() {
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    assert!(rig.tcp().abort(id));
    let segs = rig.take_out();
    assert!(segs[0].has(RST));
    assert_eq!(segs[0].seq, iss + 1);
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.tcp().state(id), None, "stale handle");
}

/// Aborts connection `id` of `rig`, which is in `state`, and checks that nothing was sent
/// and the slot is free.
fn abort_silently(mut rig: Rig, id: ConnId, state: State) {
    assert_eq!(rig.tcp().state(id), Some(state));
    let rst_before = rig.fw.iface.tcp_stats().rst_sent;
    assert!(rig.tcp().abort(id));
    rig.board.step(&mut rig.fw);
    assert!(rig.take_out().is_empty(), "no RST from {state:?}");
    assert_eq!(rig.fw.iface.tcp_stats().rst_sent, rst_before);
    assert_eq!(rig.fw.iface.slots_in_use(), 0);
    assert_eq!(rig.tcp().state(id), None, "stale handle");
}

/// A connection we closed first: its FIN is sent (FIN-WAIT-1).
fn closed_by_us(cfg: TcpConfig) -> (Rig, ConnId, u32) {
    let mut rig = Rig::with(cfg, Mode::Sink);
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    rig.take_out();
    (rig, id, iss)
}

#[test]
fn abort_after_both_fins_frees_the_slot_without_rst() {
    // RFC 9293 §3.10.5: ABORT in CLOSING, LAST-ACK or TIME-WAIT deletes the TCB and
    // sends nothing.
    let mut cfg = tcp_config();
    cfg.time_wait_ms = 60_000;
    // TIME-WAIT: the peer acknowledged our FIN and sent its own.
    let (mut rig, id, iss) = closed_by_us(cfg);
    rig.send(Seg::new(P, 101, iss + 2, ACK | FIN));
    abort_silently(rig, id, State::TimeWait);

    // CLOSING: the FINs crossed.
    let (mut rig, id, iss) = closed_by_us(tcp_config());
    rig.send(Seg::new(P, 101, iss + 1, ACK | FIN));
    abort_silently(rig, id, State::Closing);

    // LAST-ACK: the peer closed first, then we did.
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.send(Seg::new(P, 101, iss + 1, ACK | FIN));
    rig.tcp().close(id);
    rig.board.step(&mut rig.fw);
    rig.take_out();
    abort_silently(rig, id, State::LastAck);

    // CLOSE-WAIT still has a peer waiting for data: it gets its reset.
    let mut rig = Rig::new();
    let iss = rig.connect(P, 100);
    let id = rig.conn();
    rig.send(Seg::new(P, 101, iss + 1, ACK | FIN));
    assert_eq!(rig.tcp().state(id), Some(State::CloseWait));
    assert!(rig.tcp().abort(id));
    let segs = rig.take_out();
    assert!(segs.iter().any(|s| s.has(RST)), "RST from CLOSE-WAIT");
}

#[test]
fn abort_from_on_data_leaves_nothing_behind_for_the_fin() {
    // The layer above aborts the connection while it takes the data of a segment that
    // also carries the FIN: the RST is all that goes out (no ACK of the FIN from the
    // freed slot), and the slot is left free and clean for the next connection.
    for flags in [ACK | FIN, ACK | PSH] {
        let mut rig = Rig::with(tcp_config(), Mode::Abort);
        let iss = rig.connect(P, 100);
        let out = rig.send(Seg::new(P, 101, iss + 1, flags).data(b"bye"));
        assert_eq!(rig.fw.rec.data, b"bye");
        assert_eq!(out.len(), 1, "the RST alone: {out:?}");
        assert!(out[0].has(RST) && out[0].dst_port == P, "{out:?}");
        assert_eq!(rig.fw.iface.slots_in_use(), 0);
        rig.wait_ms(1_000);
        assert!(rig.take_out().is_empty(), "nothing from the freed slot");
        // The slot serves a new connection (its reuse checks it is in its initial state).
        let iss2 = rig.connect(P + 1, 5000);
        let r = rig.send(Seg::new(P + 1, 5001, iss2 + 1, ACK).data(b"hi"));
        assert!(r.iter().all(|s| s.dst_port == P + 1), "{r:?}");
    }
}

#[test]
fn rst_and_challenge_acks_are_rate_limited() {
    let mut cfg = tcp_config();
    cfg.rst_per_second = 5;
    let mut rig = Rig::with(cfg, Mode::Sink);
    let mut rsts = 0;
    for k in 0..20 {
        rsts += rig.send(Seg::new(P, k, 0, SYN).to(81)).len();
    }
    assert_eq!(rsts, 5);
    assert_eq!(rig.fw.iface.tcp_stats().rst_rate_limited, 15);
    rig.wait_ms(1001);
    assert_eq!(
        rig.send(Seg::new(P, 99, 0, SYN).to(81)).len(),
        1,
        "refilled after a second"
    );
}

#[test]
fn sack_permitted_is_accepted_and_sack_blocks_recover_a_hole_at_once() {
    let mut rig = Rig::new();
    let mut syn = Seg::new(P, 100, 0, SYN).mss(1460);
    syn.options.extend_from_slice(&[1, 1, 4, 2]); // NOP NOP SACK-permitted
    let r = rig.send(syn);
    let sa = &r[0];
    assert!(
        sa.options.windows(2).any(|w| w == [4, 2]),
        "SACK-permitted answered: {:?}",
        sa.options
    );
    let iss = sa.seq;
    rig.send(Seg::new(P, 101, iss + 1, ACK));
    // Three segments in flight; the first is lost, the peer SACKs the other two while
    // sending data of its own (so its duplicate ACKs carry data and do not count).
    rig.app_send(&[5u8; 3 * 1460]);
    let segs = rig.take_out();
    assert_eq!(segs.len(), 3);
    let (l, r2) = (iss + 1 + 1460, iss + 1 + 3 * 1460);
    let mut ack = Seg::new(P, 101, iss + 1, ACK | PSH).data(b"peer data");
    ack.options = vec![1, 1, 5, 10];
    ack.options.extend_from_slice(&l.to_be_bytes());
    ack.options.extend_from_slice(&r2.to_be_bytes());
    let r = rig.send(ack);
    let resent: Vec<_> = r.iter().filter(|s| !s.payload.is_empty()).collect();
    assert_eq!(resent.len(), 1, "the hole, resent at once: {r:?}");
    assert_eq!(resent[0].seq, iss + 1);
    assert_eq!(rig.fw.iface.tcp_stats().retransmits_sack, 1);
    // The cumulative ACK covering everything ends recovery; nothing is resent again.
    let r = rig.send(Seg::new(P, 110, iss + 1 + 3 * 1460, ACK));
    assert!(r.iter().all(|s| s.payload.is_empty()));
}
