//! The TCP/IP stack: Ethernet, ARP, IPv4, ICMP echo and a server-side TCP, zero-copy over
//! the frames the MAC driver lends.
//!
//! [`Interface`] owns the MAC driver and the connection table. Each received frame is
//! parsed in place, layer by layer, with views that check lengths once; TCP data reaches
//! the layer above ([`tcp::TcpHandler`]) as a slice of the DMA buffer. Every frame that is
//! not delivered is counted in [`NetStats`] or [`tcp::TcpStats`].

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;

use crate::mac::{Mac, MacEvents, RxRing, TxRing};
use crate::time::Instant;
use arp::{ArpCache, ArpPacket};
use ethernet::EthernetFrame;
use ipv4::{Ipv4Config, Ipv4Error, Ipv4Packet};
use tcp::{TcpApi, TcpConfig, TcpCore, TcpHandler, TcpStats, Verdict};

/// Our link and network addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Our Ethernet address.
    pub mac: [u8; 6],
    /// Our IPv4 configuration.
    pub ip: Ipv4Config,
}

/// Stack configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Addresses.
    pub link: Link,
    /// TCP.
    pub tcp: TcpConfig,
}

/// Counters below TCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames received.
    pub rx_frames: u32,
    /// Frames shorter than an Ethernet header.
    pub rx_truncated: u32,
    /// Frames of another EtherType (IPv6, LLDP...).
    pub rx_unknown_ethertype: u32,
    /// ARP packets received.
    pub arp_rx: u32,
    /// ARP packets dropped: truncated or not IPv4 over Ethernet.
    pub arp_malformed: u32,
    /// ARP requests for our address answered.
    pub arp_replies: u32,
    /// ARP packets for others (learned from, not answered).
    pub arp_not_for_us: u32,
    /// Announcements sent when the link came up.
    pub arp_announcements: u32,
    /// IPv4 packets received.
    pub ip_rx: u32,
    /// IPv4 packets dropped: truncated, wrong version, header or total length.
    pub ip_malformed: u32,
    /// IPv4 packets dropped: header checksum.
    pub ip_bad_checksum: u32,
    /// IPv4 fragments dropped (no reassembly).
    pub ip_fragments: u32,
    /// IPv4 packets for another address.
    pub ip_not_for_us: u32,
    /// Packets from a source no reply may go to (0.0.0.0, broadcast, multicast,
    /// loopback, ourselves): dropped, RFC 1122 §3.2.1.3.
    pub ip_bad_source: u32,
    /// IPv4 packets of a protocol other than ICMP and TCP.
    pub ip_unknown_protocol: u32,
    /// ICMP messages dropped: truncated.
    pub icmp_malformed: u32,
    /// ICMP messages dropped: checksum.
    pub icmp_bad_checksum: u32,
    /// ICMP messages other than echo request, or echo requests to a broadcast address.
    pub icmp_ignored: u32,
    /// Echo replies sent.
    pub icmp_echo_replies: u32,
    /// Replies (ARP, ICMP) not sent for want of a TX buffer.
    pub tx_no_buffer: u32,
}

/// The network interface: MAC driver, addresses, neighbour cache and TCP connections.
pub struct Interface<'m, const N: usize> {
    mac: Mac<'m>,
    link: Link,
    arp: ArpCache,
    conns: [tcp::conn::Conn; N],
    tcp: TcpCore,
    stats: NetStats,
}

impl<'m, const N: usize> Interface<'m, N> {
    /// A stack over a started MAC driver, with `N` TCP connection slots.
    pub fn new(mac: Mac<'m>, config: NetConfig) -> Self {
        Interface {
            mac,
            link: config.link,
            arp: ArpCache::new(),
            conns: [const { tcp::conn::Conn::new() }; N],
            tcp: TcpCore::new(config.tcp),
            stats: NetStats::default(),
        }
    }

    /// The TCP streams, for sending, closing and inspecting outside of handler calls.
    pub fn tcp(&mut self, now: Instant) -> TcpApi<'_, 'm> {
        TcpApi {
            conns: &mut self.conns,
            core: &mut self.tcp,
            rx_spare: self.mac.rx.spare_buffers(),
            tx: &mut self.mac.tx,
            link: &self.link,
            now,
        }
    }

    /// Counters below TCP.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// TCP counters.
    pub fn tcp_stats(&self) -> &TcpStats {
        &self.tcp.stats
    }

    /// The MAC driver.
    pub fn mac(&self) -> &Mac<'m> {
        &self.mac
    }

    /// The MAC driver, mutably (to stop it).
    pub fn mac_mut(&mut self) -> &mut Mac<'m> {
        &mut self.mac
    }

    /// Our addresses.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The neighbour cache.
    pub fn arp_cache(&self) -> &ArpCache {
        &self.arp
    }

    /// Connection slots in use (any state but CLOSED) and their states, for status
    /// displays and leak checks.
    pub fn slots_in_use(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.state != tcp::State::Closed)
            .count()
    }

    /// The Ethernet interrupt: acknowledge it and handle what arrived.
    pub fn on_interrupt<H: TcpHandler>(&mut self, now: Instant, handler: &mut H) {
        self.mac.on_interrupt();
        self.process_rx(now, handler);
        self.mac.tx.reap();
        self.tcp(now).flush_acks();
    }

    /// One pass of the superloop: driver housekeeping, received frames, kept data, TCP
    /// timers and owed ACKs.
    pub fn poll<H: TcpHandler>(&mut self, now: Instant, handler: &mut H) -> MacEvents {
        let events = self.mac.poll(now);
        if events.contains(MacEvents::LINK_UP) {
            self.announce();
        }
        self.process_rx(now, handler);
        let Interface {
            mac,
            link,
            conns,
            tcp,
            ..
        } = self;
        let mut api = TcpApi {
            conns: &mut conns[..],
            core: tcp,
            rx_spare: mac.rx.spare_buffers(),
            tx: &mut mac.tx,
            link,
            now,
        };
        redeliver_kept(&mut api, &mut mac.rx, handler);
        // One stream view for the kept data and the timers, where each made its own:
        // the spares it counts are brought up to date between them.
        api.rx_spare = mac.rx.spare_buffers();
        api.on_timers(handler);
        api.flush_acks();
        events
    }

    /// When [`poll`](Self::poll) next has timed work (TCP timers); frames and the link
    /// are separate wake-ups.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        self.tcp(now).next_deadline()
    }

    /// Gratuitous ARP when the link comes up: a request for our own address (RFC 5227
    /// §2.3 announcement), so neighbours refresh their caches.
    fn announce(&mut self) {
        let sent = send_arp(
            &mut self.mac.tx,
            &self.link,
            arp::OP_REQUEST,
            ethernet::BROADCAST,
            [0; 6],
            self.link.ip.address,
        );
        self.count_send(sent);
        if sent {
            self.stats.arp_announcements += 1;
        }
    }

    fn count_send(&mut self, sent: bool) {
        if !sent {
            self.stats.tx_no_buffer += 1;
        }
    }

    fn process_rx<H: TcpHandler>(&mut self, now: Instant, handler: &mut H) {
        let Interface {
            mac,
            link,
            arp,
            conns,
            tcp,
            stats,
        } = self;
        loop {
            let rx_spare = mac.rx.spare_buffers();
            let keep_possible = rx_spare > 0;
            let Some(mut frame) = mac.rx.receive() else {
                break;
            };
            stats.rx_frames += 1;
            let mut api = TcpApi {
                conns: &mut conns[..],
                core: tcp,
                rx_spare,
                tx: &mut mac.tx,
                link,
                now,
            };
            let verdict = handle_frame(frame.data(), &mut api, arp, stats, handler, keep_possible);
            // The frame is given back in one place, after what the verdict asks of it
            // (every drop of it is a copy of the descriptor's hand-back); a failure is
            // undone after, once, and a buffer the connection refused goes back to the
            // spares.
            let mut failed = None;
            let mut refused = None;
            match verdict {
                Verdict::Append { conn, offset, len } => {
                    let copied = api.append_kept(conn, len, |buf, at| {
                        frame.append_to_kept(offset, len, buf, at)
                    });
                    if !copied {
                        failed = Some((conn, len));
                    }
                }
                Verdict::Keep { conn, offset, len } => match frame.keep() {
                    Some(buf) => {
                        refused = api.attach_kept(conn, buf, offset, len);
                        if refused.is_some() {
                            failed = Some((conn, len));
                        }
                    }
                    None => failed = Some((conn, len)),
                },
                Verdict::Done => {}
            }
            drop(frame);
            if let Some((conn, len)) = failed {
                api.keep_failed(conn, len);
            }
            if let Some(buf) = refused {
                mac.rx.release(buf);
            }
            while let Some(b) = tcp.rx_to_release.pop() {
                mac.rx.release(b);
            }
        }
    }
}

/// Offers kept data again to the layer above, oldest first.
fn redeliver_kept<H: TcpHandler>(api: &mut TcpApi<'_, '_>, rx: &mut RxRing<'_>, handler: &mut H) {
    for i in 0..api.conns.len() {
        while let Some((id, mut k)) = api.take_kept(i) {
            let start = k.offset as usize;
            let len = k.len as usize;
            let area = rx.kept(&k.buf);
            let consumed = match area.get_mut(start..start + len) {
                Some(data) => handler.on_data(api, id, data).min(len),
                None => len, // cannot happen: offsets come from the frame itself
            };
            if consumed == len {
                rx.release(k.buf);
                api.kept_done(id);
                continue;
            }
            k.offset += consumed as u16;
            k.len -= consumed as u16;
            if let Some(buf) = api.put_back_kept(id, k) {
                rx.release(buf);
            }
            break;
        }
    }
    while let Some(b) = api.core.rx_to_release.pop() {
        rx.release(b);
    }
}

/// Allocates a TX buffer, lets `build` write a frame and return its length, and sends it.
fn send_frame(tx: &mut TxRing<'_>, build: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
    let buf = match tx.alloc() {
        Some(b) => b,
        None => {
            tx.reap();
            match tx.alloc() {
                Some(b) => b,
                None => return false,
            }
        }
    };
    match tx.buffer(&buf).and_then(build) {
        Some(len) => tx.send(buf, len).is_ok(),
        None => {
            tx.release(buf);
            false
        }
    }
}

/// Sends an ARP packet from us (`op`, to `target_mac`/`target_ip`) in a frame to
/// `eth_dst`: the reply to a request, and the announcement. Written once for both (each
/// copy of `send_frame` and its closure is a few hundred bytes).
#[inline(never)]
fn send_arp(
    tx: &mut TxRing<'_>,
    link: &Link,
    op: u16,
    eth_dst: [u8; 6],
    target_mac: [u8; 6],
    target_ip: [u8; 4],
) -> bool {
    send_frame(tx, |f| {
        let body = ethernet::emit(f, eth_dst, link.mac, ethernet::ETHERTYPE_ARP)?;
        let n = arp::emit(body, op, link.mac, link.ip.address, target_mac, target_ip)?;
        Some(ethernet::HEADER_LEN + n)
    })
}

/// One received frame, parsed in place.
fn handle_frame<H: TcpHandler>(
    data: &mut [u8],
    api: &mut TcpApi<'_, '_>,
    arp: &mut ArpCache,
    stats: &mut NetStats,
    handler: &mut H,
    keep_possible: bool,
) -> Verdict {
    let Some(eth) = EthernetFrame::new_checked(data) else {
        stats.rx_truncated += 1;
        return Verdict::Done;
    };
    let src_mac = eth.src();
    match eth.ethertype() {
        ethernet::ETHERTYPE_ARP => {
            handle_arp(eth.into_payload(), api, arp, stats);
            Verdict::Done
        }
        ethernet::ETHERTYPE_IPV4 => handle_ipv4(
            eth.into_payload(),
            src_mac,
            api,
            arp,
            stats,
            handler,
            keep_possible,
        ),
        _ => {
            stats.rx_unknown_ethertype += 1;
            Verdict::Done
        }
    }
}

fn handle_arp(payload: &[u8], api: &mut TcpApi<'_, '_>, arp: &mut ArpCache, stats: &mut NetStats) {
    stats.arp_rx += 1;
    let Ok(p) = ArpPacket::new_checked(payload) else {
        stats.arp_malformed += 1;
        return;
    };
    let link = api.link;
    let (sender_mac, sender_ip) = (p.sender_mac(), p.sender_ip());
    // RFC 826 "merge": refresh a neighbour we know, and learn one that addresses us.
    // ARP is the only source of neighbour addresses: the source address of other
    // frames is not covered by any checksum past the FCS, so it is never trusted.
    let for_us = p.target_ip() == link.ip.address;
    let usable = link.ip.on_link(sender_ip) && sender_ip != [0; 4] && sender_ip != link.ip.address;
    if usable && arp.merge(sender_ip, sender_mac, api.now, for_us) {
        api.neighbour_changed(sender_ip, sender_mac);
    }
    if p.operation() != arp::OP_REQUEST || !for_us {
        stats.arp_not_for_us += 1;
        return;
    }
    let sent = send_arp(
        api.tx,
        link,
        arp::OP_REPLY,
        sender_mac,
        sender_mac,
        sender_ip,
    );
    if sent {
        stats.arp_replies += 1;
    } else {
        stats.tx_no_buffer += 1;
    }
}

fn handle_ipv4<H: TcpHandler>(
    payload: &mut [u8],
    src_mac: &[u8; 6],
    api: &mut TcpApi<'_, '_>,
    arp: &ArpCache,
    stats: &mut NetStats,
    handler: &mut H,
    keep_possible: bool,
) -> Verdict {
    stats.ip_rx += 1;
    let pkt = match Ipv4Packet::new_checked(payload) {
        Ok(p) => p,
        Err(Ipv4Error::BadChecksum) => {
            stats.ip_bad_checksum += 1;
            return Verdict::Done;
        }
        Err(Ipv4Error::Fragment) => {
            stats.ip_fragments += 1;
            return Verdict::Done;
        }
        Err(_) => {
            stats.ip_malformed += 1;
            return Verdict::Done;
        }
    };
    let link = api.link;
    let (src, dst, proto) = (pkt.src(), pkt.dst(), pkt.protocol());
    if !link.ip.accepts(dst) {
        stats.ip_not_for_us += 1;
        return Verdict::Done;
    }
    if !link.ip.valid_source(src) {
        stats.ip_bad_source += 1;
        return Verdict::Done;
    }
    // Replies go to the next hop's address as ARP knows it; the frame's source address is
    // only a fallback for a neighbour ARP has not told us about. Either is passed on where
    // it is, in the cache or in the frame's header: most segments belong to a connection,
    // which keeps its peer's address, and never read it.
    let peer_mac = arp.get(link.ip.next_hop(src)).unwrap_or(src_mac);
    let header_len = pkt.header_len();
    let body = pkt.into_payload();
    match proto {
        ipv4::PROTO_TCP => match api.input(handler, peer_mac, src, dst, body, keep_possible) {
            Verdict::Keep { conn, offset, len } => Verdict::Keep {
                conn,
                offset: ethernet::HEADER_LEN + header_len + offset,
                len,
            },
            Verdict::Append { conn, offset, len } => Verdict::Append {
                conn,
                offset: ethernet::HEADER_LEN + header_len + offset,
                len,
            },
            Verdict::Done => Verdict::Done,
        },
        ipv4::PROTO_ICMP => {
            handle_icmp(body, peer_mac, src, dst, api, stats);
            Verdict::Done
        }
        _ => {
            stats.ip_unknown_protocol += 1;
            Verdict::Done
        }
    }
}

fn handle_icmp(
    msg: &[u8],
    src_mac: &[u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    api: &mut TcpApi<'_, '_>,
    stats: &mut NetStats,
) {
    match icmp::check_echo_request(msg) {
        Ok(()) => {}
        Err(icmp::IcmpError::Truncated) => {
            stats.icmp_malformed += 1;
            return;
        }
        Err(icmp::IcmpError::BadChecksum) => {
            stats.icmp_bad_checksum += 1;
            return;
        }
        Err(icmp::IcmpError::NotEchoRequest) => {
            stats.icmp_ignored += 1;
            return;
        }
    }
    let link = api.link;
    if dst != link.ip.address {
        // No replies to broadcast pings (RFC 1122 §3.2.2.6 allows silence).
        stats.icmp_ignored += 1;
        return;
    }
    let id = api.next_ip_id();
    let sent = send_frame(api.tx, |f| {
        let ip = ethernet::emit(f, *src_mac, link.mac, ethernet::ETHERTYPE_IPV4)?;
        let body = ipv4::emit(ip, link.ip.address, src, ipv4::PROTO_ICMP, msg.len(), id)?;
        let reply = body.get_mut(..msg.len())?;
        crate::copy::copy(reply, msg);
        icmp::make_echo_reply(reply)?;
        Some(ethernet::HEADER_LEN + ipv4::HEADER_LEN + msg.len())
    });
    if sent {
        stats.icmp_echo_replies += 1;
    } else {
        stats.tx_no_buffer += 1;
    }
}
