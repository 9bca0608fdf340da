//! A host on the wire with a TCP/IP stack nobody here wrote: [`smoltcp`], behind an
//! Ethernet device whose frames go to and come from one end of the [`Wire`].
//!
//! Frames on the wire carry their FCS, so the device behaves like a real NIC: frames it
//! transmits are padded to the 60-byte minimum and get a CRC-32 FCS; frames it receives
//! with a bad FCS are dropped (and counted), and the FCS of good ones is stripped before
//! smoltcp sees them.
//!
//! Everything runs at the time the caller gives ([`PeerHost::poll`]), so it works in
//! virtual time; [`PeerHost::poll_at`] says when smoltcp's timers next need it.
//!
//! smoltcp's defaults are kept except: the random seed is derived from the host's
//! addresses (runs are reproducible), and TCP sockets use Reno congestion control (the
//! crate's `socket-tcp-reno` feature; without a controller smoltcp sends its whole
//! window at once, which no real peer does). smoltcp answers ARP and ICMP echo requests
//! by itself. Its minimum retransmission timeout is fixed at 1 s (RFC 6298) and cannot be
//! changed; the delayed-ACK time (10 ms), Nagle, timeouts and keep-alive can be, per
//! socket, through [`PeerHost::tcp_socket`].

use crate::crc::{append_fcs, fcs_ok};
use crate::testbed::Station;
use crate::wire::{End, Wire};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{icmp, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address,
};
use std::collections::{BTreeMap, VecDeque};

pub use smoltcp;
pub use smoltcp::iface::SocketHandle;
pub use smoltcp::socket::tcp::State as TcpState;

/// The minimum Ethernet frame without its FCS; shorter frames are padded, as a NIC does.
pub const MIN_FRAME: usize = 60;
/// The largest Ethernet frame without its FCS (1500-byte IP MTU).
pub const MAX_FRAME: usize = 1514;
/// First local port [`PeerHost::tcp_connect`] uses (the IANA dynamic range).
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// Pads a frame to [`MIN_FRAME`] and appends its FCS: what a NIC puts on the wire.
pub fn to_wire(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < MIN_FRAME {
        frame.resize(MIN_FRAME, 0);
    }
    append_fcs(&mut frame);
    frame
}

/// Checks and strips the FCS of a frame from the wire: what a NIC hands its host. `None`
/// for a bad FCS or a frame too short to hold an Ethernet header.
pub fn from_wire(mut frame: Vec<u8>) -> Option<Vec<u8>> {
    if frame.len() < 14 + 4 || !fcs_ok(&frame) {
        return None;
    }
    frame.truncate(frame.len() - 4);
    Some(frame)
}

/// A [`PeerHost`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames taken from the wire with a good FCS.
    pub rx_frames: u64,
    /// Frames dropped for a bad FCS (or too short to be Ethernet).
    pub rx_bad_fcs: u64,
    /// Frames put on the wire (injected ones included).
    pub tx_frames: u64,
    /// Frames that had to be padded to the minimum length.
    pub tx_padded: u64,
}

/// An ICMP echo reply the host received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingReply {
    /// Who answered.
    pub from: [u8; 4],
    /// The echo identifier.
    pub ident: u16,
    /// The echo sequence number.
    pub seq: u16,
    /// The echoed data.
    pub payload: Vec<u8>,
    /// When it was taken from the wire, nanoseconds.
    pub at_ns: u64,
}

/// The smoltcp device: frames (without FCS) queued between the wire and the interface.
#[derive(Default)]
struct WirePhy {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

impl Device for WirePhy {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        // The wire queues without limit (it serialises frames at line rate), so there is
        // always room.
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}

struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct TxToken<'a>(&'a mut Vec<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push(frame);
        r
    }
}

fn smol_now(now_ns: u64) -> Instant {
    Instant::from_micros((now_ns / 1_000) as i64)
}

/// A smoltcp host on one end of the wire (by default [`End::Peer`]).
///
/// It owns the smoltcp [`Interface`] and [`SocketSet`], and offers helpers for TCP
/// (connect, listen, send, receive, close), ICMP echo, and raw frame injection. Anything
/// else is reachable through [`PeerHost::interface`], [`PeerHost::sockets`] and
/// [`PeerHost::tcp_socket`].
pub struct PeerHost {
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: WirePhy,
    end: End,
    mac: [u8; 6],
    ip: [u8; 4],
    next_port: u16,
    icmp: BTreeMap<u16, SocketHandle>,
    ping_replies: Vec<PingReply>,
    injected: Vec<Vec<u8>>,
    stats: PeerStats,
}

impl PeerHost {
    /// A host with Ethernet address `mac` and address `ip/prefix_len`, on [`End::Peer`].
    ///
    /// # Panics
    /// If `mac` is not a unicast address or `prefix_len` is over 32.
    pub fn new(mac: [u8; 6], ip: [u8; 4], prefix_len: u8) -> PeerHost {
        assert!(mac[0] & 1 == 0, "peer MAC {mac:02x?} must be unicast");
        assert!(prefix_len <= 32, "prefix length {prefix_len} is over 32");
        let mut dev = WirePhy::default();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // Reproducible initial sequence numbers and IP identifiers.
        config.random_seed =
            u64::from_be_bytes([mac[2], mac[3], mac[4], mac[5], ip[0], ip[1], ip[2], ip[3]]);
        let mut iface = Interface::new(config, &mut dev, smol_now(0));
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::new(
                    IpAddress::Ipv4(Ipv4Address::from(ip)),
                    prefix_len,
                ))
                .expect("a fresh interface has room for one address");
        });
        PeerHost {
            iface,
            sockets: SocketSet::new(Vec::new()),
            dev,
            end: End::Peer,
            mac,
            ip,
            next_port: FIRST_EPHEMERAL_PORT,
            icmp: BTreeMap::new(),
            ping_replies: Vec::new(),
            injected: Vec::new(),
            stats: PeerStats::default(),
        }
    }

    /// The same host, on the other `end` of the wire (to put two hosts on one wire).
    pub fn on_end(mut self, end: End) -> PeerHost {
        self.end = end;
        self
    }

    /// Its Ethernet address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Its IPv4 address.
    pub fn ip(&self) -> [u8; 4] {
        self.ip
    }

    /// Its counters.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// Sets the default gateway (for addresses outside its subnet).
    pub fn set_gateway(&mut self, gateway: [u8; 4]) {
        self.iface
            .routes_mut()
            .add_default_ipv4_route(Ipv4Address::from(gateway))
            .expect("the route table has room for a default route");
    }

    /// The smoltcp interface.
    pub fn interface(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The smoltcp sockets.
    pub fn sockets(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    /// Takes the frames due at its end of the wire by `now_ns`, runs smoltcp at `now_ns`,
    /// and puts what it (and [`PeerHost::inject_frame`]) transmits on the wire.
    pub fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        while let Some(frame) = wire.receive(self.end, now_ns) {
            match from_wire(frame) {
                Some(f) => {
                    self.stats.rx_frames += 1;
                    self.dev.rx.push_back(f);
                }
                None => self.stats.rx_bad_fcs += 1,
            }
        }
        self.iface
            .poll(smol_now(now_ns), &mut self.dev, &mut self.sockets);
        self.collect_ping_replies(now_ns);
        let injected = std::mem::take(&mut self.injected);
        for frame in self.dev.tx.drain(..).chain(injected) {
            if frame.len() < MIN_FRAME {
                self.stats.tx_padded += 1;
            }
            self.stats.tx_frames += 1;
            wire.send(self.end, now_ns, to_wire(frame));
        }
    }

    /// When smoltcp next needs [`PeerHost::poll`] without a frame arriving, in
    /// nanoseconds, or `None` if only an arrival can wake it. "Now" is reported as the
    /// start of the next microsecond: smoltcp's clock has microsecond resolution, so a
    /// second poll within the same microsecond could do nothing new, and a bench stepping
    /// a nanosecond at a time would spin.
    pub fn poll_at(&mut self, now_ns: u64) -> Option<u64> {
        let soonest = (now_ns / 1_000 + 1) * 1_000;
        if !self.injected.is_empty() {
            return Some(soonest);
        }
        self.iface
            .poll_at(smol_now(now_ns), &self.sockets)
            .map(|t| (t.total_micros().max(0) as u64 * 1_000).max(soonest))
    }

    /// Queues a raw Ethernet frame (without FCS) to send on the next poll, padded and
    /// with its FCS appended.
    pub fn inject_frame(&mut self, frame: &[u8]) {
        self.injected.push(frame.to_vec());
    }

    /// A new TCP socket with buffers of `rx_buf` and `tx_buf` bytes, connecting to
    /// `remote` (address, port) from a fresh local port; the SYN leaves on the next poll.
    ///
    /// # Panics
    /// If smoltcp refuses the endpoints (an unspecified address or port 0).
    pub fn tcp_connect(
        &mut self,
        remote: ([u8; 4], u16),
        rx_buf: usize,
        tx_buf: usize,
    ) -> SocketHandle {
        let mut socket = new_tcp_socket(rx_buf, tx_buf);
        let local = self.next_port;
        self.next_port = self
            .next_port
            .checked_add(1)
            .unwrap_or(FIRST_EPHEMERAL_PORT);
        let endpoint = (IpAddress::Ipv4(Ipv4Address::from(remote.0)), remote.1);
        if let Err(e) = socket.connect(self.iface.context(), endpoint, local) {
            panic!("tcp_connect to {:?}:{} refused: {e}", remote.0, remote.1);
        }
        self.sockets.add(socket)
    }

    /// A new TCP socket with buffers of `rx_buf` and `tx_buf` bytes, listening on `port`.
    /// One socket takes one connection; listen again for the next.
    ///
    /// # Panics
    /// If `port` is 0.
    pub fn tcp_listen(&mut self, port: u16, rx_buf: usize, tx_buf: usize) -> SocketHandle {
        let mut socket = new_tcp_socket(rx_buf, tx_buf);
        if let Err(e) = socket.listen(port) {
            panic!("tcp_listen on port {port} refused: {e}");
        }
        self.sockets.add(socket)
    }

    /// The smoltcp socket behind a handle, for anything the helpers do not cover
    /// (`set_ack_delay`, `set_nagle_enabled`, `set_timeout`, `set_congestion_control`…).
    ///
    /// # Panics
    /// If `h` is not a TCP socket of this host.
    pub fn tcp_socket(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Queues as much of `data` as the send buffer takes; returns how much that was (0
    /// when the buffer is full or the connection cannot send).
    pub fn tcp_send(&mut self, h: SocketHandle, data: &[u8]) -> usize {
        self.tcp_socket(h).send_slice(data).unwrap_or(0)
    }

    /// Appends everything received so far to `out`; returns how many bytes that was.
    pub fn tcp_recv(&mut self, h: SocketHandle, out: &mut Vec<u8>) -> usize {
        let socket = self.tcp_socket(h);
        let mut total = 0;
        // The receive buffer is a ring: its contents may come in two pieces.
        while socket.can_recv() {
            let n = socket
                .recv(|buf| {
                    out.extend_from_slice(buf);
                    (buf.len(), buf.len())
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    }

    /// The connection's state.
    pub fn tcp_state(&self, h: SocketHandle) -> TcpState {
        self.sockets.get::<tcp::Socket>(h).state()
    }

    /// Bytes queued but not yet acknowledged by the other side.
    pub fn tcp_send_queue(&self, h: SocketHandle) -> usize {
        self.sockets.get::<tcp::Socket>(h).send_queue()
    }

    /// Closes the sending half (a FIN follows the queued data).
    pub fn tcp_close(&mut self, h: SocketHandle) {
        self.tcp_socket(h).close();
    }

    /// Aborts the connection (a RST leaves on the next poll).
    pub fn tcp_abort(&mut self, h: SocketHandle) {
        self.tcp_socket(h).abort();
    }

    /// Forgets a socket (do it once it is closed, or its RST has gone out).
    pub fn tcp_remove(&mut self, h: SocketHandle) {
        self.sockets.remove(h);
    }

    /// Queues an ICMP echo request to `remote`; returns false if the ICMP socket's send
    /// buffer is full. Replies with this `ident` are collected for
    /// [`PeerHost::take_ping_replies`].
    pub fn ping(&mut self, remote: [u8; 4], ident: u16, seq: u16, payload: &[u8]) -> bool {
        let h = match self.icmp.get(&ident) {
            Some(&h) => h,
            None => {
                let mut socket = icmp::Socket::new(icmp_buffer(), icmp_buffer());
                socket
                    .bind(icmp::Endpoint::Ident(ident))
                    .expect("a fresh ICMP socket binds to any identifier");
                let h = self.sockets.add(socket);
                self.icmp.insert(ident, h);
                h
            }
        };
        let repr = Icmpv4Repr::EchoRequest {
            ident,
            seq_no: seq,
            data: payload,
        };
        let caps = ChecksumCapabilities::default();
        let socket = self.sockets.get_mut::<icmp::Socket>(h);
        match socket.send(
            repr.buffer_len(),
            IpAddress::Ipv4(Ipv4Address::from(remote)),
        ) {
            Ok(buf) => {
                repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
                true
            }
            Err(_) => false,
        }
    }

    /// The echo replies received since the last call, in arrival order.
    pub fn take_ping_replies(&mut self) -> Vec<PingReply> {
        std::mem::take(&mut self.ping_replies)
    }

    fn collect_ping_replies(&mut self, now_ns: u64) {
        let caps = ChecksumCapabilities::default();
        for &h in self.icmp.values() {
            let socket = self.sockets.get_mut::<icmp::Socket>(h);
            while let Ok((data, from)) = socket.recv() {
                let Ok(packet) = Icmpv4Packet::new_checked(data) else {
                    continue;
                };
                // The socket also sees echo *requests* with its identifier; keep replies.
                if let Ok(Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }) = Icmpv4Repr::parse(&packet, &caps)
                {
                    let IpAddress::Ipv4(from) = from;
                    self.ping_replies.push(PingReply {
                        from: from.octets(),
                        ident,
                        seq: seq_no,
                        payload: data.to_vec(),
                        at_ns: now_ns,
                    });
                }
            }
        }
    }
}

fn new_tcp_socket(rx_buf: usize, tx_buf: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx_buf]),
        tcp::SocketBuffer::new(vec![0; tx_buf]),
    )
}

fn icmp_buffer() -> icmp::PacketBuffer<'static> {
    icmp::PacketBuffer::new(
        vec![icmp::PacketMetadata::EMPTY; 32],
        vec![0; 32 * MAX_FRAME],
    )
}

impl Station for PeerHost {
    fn end(&self) -> End {
        self.end
    }

    fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        PeerHost::poll(self, now_ns, wire);
    }

    fn poll_at(&mut self, now_ns: u64) -> Option<u64> {
        PeerHost::poll_at(self, now_ns)
    }
}
