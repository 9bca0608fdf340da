//! A server-side TCP (RFC 9293) for a fixed table of connections.
//!
//! - Listen on one port; SYN → SYN-ACK with the MSS option, honouring the peer's MSS.
//!   Half-open connections are bounded; past the bound, SYNs are answered with SYN
//!   cookies and hold no state, so a SYN flood cannot crowd out established connections
//!   or clients that complete the handshake. TIME-WAIT slots are reused under pressure.
//! - Initial sequence numbers per RFC 6528 ([`isn`]).
//! - In-order receive only: a segment beyond `rcv_nxt` is answered with an ACK and
//!   dropped (counted). Data is handed to the layer above in place, inside the DMA
//!   buffer; what it does not consume is kept in place (the RX buffer is detached from
//!   the ring) and offered again, and the advertised window is the room left for that.
//! - Sending writes straight into a TX buffer, which is retained until acknowledged and
//!   retransmitted from as is (ACK and window fields patched, checksum adjusted per
//!   RFC 1624). RTO per RFC 6298 with Karn's rule and back-off, a retry limit that aborts
//!   the connection with an event, fast retransmit on three duplicate ACKs (early
//!   retransmit, RFC 5827, for smaller flights) with NewReno-style recovery (RFC 6582),
//!   the peer's window respected, zero-window probes.
//!   In-flight data is bounded by [`MAX_TX_SEGMENTS`] per connection, below the initial
//!   window a congestion-controlled sender may use (RFC 6928: 10 segments).
//! - RST for segments to closed ports and invalid segments (§3.10.7.1); RFC 5961
//!   challenge ACKs for in-window RST and SYN, and ACK validation; RST and challenge ACKs
//!   are rate-limited.
//! - FIN in every state, simultaneous close, a short configurable TIME-WAIT.

pub(crate) mod conn;
pub mod isn;
pub mod rtt;
pub mod segment;
pub mod seq;

pub use conn::{MAX_KEPT, MAX_TX_SEGMENTS, State};
pub use rtt::RtoConfig;
pub use segment::Flags;

use crate::mac::{RxBuf, TxRing};
use crate::net::checksum::adjust_all;
use crate::net::{Link, ethernet, ipv4};
use crate::time::{Deadline, Instant};
use conn::{Conn, ConnFlags, Kept, Marks, Unacked};
use segment::{SegmentHeader, SegmentInfo};

/// Bytes before the payload of a data segment: Ethernet, IPv4 and TCP headers.
pub const DATA_OFFSET: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + segment::HEADER_LEN;
/// Offset of the TCP header in a frame we built.
const TCP_AT: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
/// The MSS we announce: a 1500-byte MTU minus IPv4 and TCP headers.
pub const OUR_MSS: u16 = 1460;
/// TX buffers data segments never take: ACKs, SYN-ACKs, RSTs, ARP and ICMP replies must
/// find one even when every connection has its full flight of retained segments.
pub const CONTROL_RESERVE: u32 = 2;
/// The MSS assumed when the peer sends none (RFC 9293 §3.7.1).
const DEFAULT_MSS: u16 = 536;

/// A connection handle. Stale handles (the slot was reused) are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    index: u8,
    generation: u8,
}

impl ConnId {
    /// The slot index.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpEvent {
    /// The handshake completed.
    Connected,
    /// The peer sent FIN: no more data will arrive.
    PeerClosed,
    /// Closed in order (both FINs acknowledged, or TIME-WAIT entered).
    Closed,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions were exhausted; the connection was aborted.
    TimedOut,
    /// A send that was refused can now go ahead.
    Writable,
}

/// Why a send did not go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such connection, or it can no longer send.
    NotConnected,
    /// No room now: the peer's window, the connection's TX budget or the TX buffers are
    /// exhausted. [`TcpEvent::Writable`] follows when there is room.
    WouldBlock,
}

/// TCP configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// The listening port.
    pub port: u16,
    /// RTO bounds.
    pub rto: RtoConfig,
    /// Retransmissions of the same data before the connection is aborted.
    pub max_retries: u8,
    /// SYN-ACK retransmissions before a half-open connection is dropped.
    pub syn_retries: u8,
    /// TIME-WAIT duration (RFC 9293 says 2 MSL; a small server trades that for slots).
    pub time_wait_ms: u32,
    /// FIN-WAIT-2 without a FIN from the peer for this long frees the slot.
    pub fin_wait2_timeout_ms: u32,
    /// ACK delay for received data when no reply carries the ACK (0: at the end of the
    /// current batch of frames).
    pub ack_delay_ms: u32,
    /// Half-open connections held at most; further SYNs get cookies.
    pub max_half_open: u8,
    /// Retained TX segments per connection (≤ [`MAX_TX_SEGMENTS`]).
    pub tx_segments: u8,
    /// Received segments a connection may keep in place (≤ [`MAX_KEPT`]).
    pub rx_segments: u8,
    /// RSTs and challenge ACKs sent per second at most (RFC 5961 §7).
    pub rst_per_second: u16,
    /// Secret of the ISN and cookie hash (set it from a random source at start-up).
    pub secret: [u8; 16],
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            port: 80,
            rto: RtoConfig::default(),
            max_retries: 8,
            syn_retries: 3,
            time_wait_ms: 2000,
            fin_wait2_timeout_ms: 30_000,
            ack_delay_ms: 0,
            max_half_open: 2,
            tx_segments: MAX_TX_SEGMENTS as u8,
            rx_segments: 2,
            rst_per_second: 100,
            secret: [0x5A; 16],
        }
    }
}

/// TCP counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Segments received (valid checksum).
    pub rx_segments: u32,
    /// Segments dropped: malformed (length, data offset, options).
    pub rx_malformed: u32,
    /// Segments dropped: bad checksum.
    pub rx_bad_checksum: u32,
    /// Segments to a port nobody listens on (answered with RST).
    pub rx_closed_port: u32,
    /// Segments outside the receive window (answered with an ACK).
    pub rx_out_of_window: u32,
    /// Segments beyond `rcv_nxt` (out of order: ACKed and dropped).
    pub rx_out_of_order: u32,
    /// Segments that were entirely old duplicates.
    pub rx_duplicate: u32,
    /// Received bytes not consumed and not kept (not acknowledged; the peer resends).
    pub rx_unaccepted_bytes: u32,
    /// Segments not offered to the layer above for want of a spare RX buffer to keep
    /// what it might leave (not acknowledged; the peer resends).
    pub rx_no_spare: u32,
    /// Small segments copied behind a connection's last kept segment (its keep slots full).
    pub rx_coalesced: u32,
    /// Segments with an unacceptable ACK (dropped, RFC 5961 §5).
    pub rx_bad_ack: u32,
    /// Segments without ACK in a synchronized state (dropped).
    pub rx_no_ack: u32,
    /// Payload bytes delivered to the layer above.
    pub rx_bytes: u32,
    /// Connections opened (handshake completed).
    pub accepted: u32,
    /// SYN-ACKs sent with a cookie instead of state.
    pub syn_cookies_sent: u32,
    /// Connections opened from a valid cookie.
    pub syn_cookies_accepted: u32,
    /// ACKs to the listener carrying no valid cookie (answered with RST).
    pub syn_cookies_rejected: u32,
    /// Half-open connections dropped after their SYN-ACK retries.
    pub syn_timeouts: u32,
    /// Half-open connections dropped to make room for a completed cookie handshake.
    pub half_open_evicted: u32,
    /// Connections refused for want of a slot (RST).
    pub refused_full: u32,
    /// Handshake-completing ACKs dropped because no TX buffer was free for the
    /// connection's first reply (the peer's retransmission completes it later).
    pub accepts_deferred: u32,
    /// TIME-WAIT slots taken over by a new connection.
    pub time_wait_reused: u32,
    /// Data segments sent.
    pub tx_segments: u32,
    /// Payload bytes sent (first transmissions).
    pub tx_bytes: u32,
    /// Retransmissions after a timeout.
    pub retransmits_timeout: u32,
    /// Fast retransmissions (three duplicate ACKs) and partial-ACK retransmissions.
    pub retransmits_fast: u32,
    /// Retransmissions of segments SACK showed lost (RFC 6675).
    pub retransmits_sack: u32,
    /// Retransmissions postponed because the buffer was still being sent.
    pub retransmits_deferred: u32,
    /// Zero-window probes sent.
    pub window_probes: u32,
    /// Control segments (ACK, RST, SYN-ACK, FIN) not sent for want of a TX buffer.
    pub tx_no_buffer: u32,
    /// RSTs sent.
    pub rst_sent: u32,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u32,
    /// RSTs and challenge ACKs suppressed by the rate limit.
    pub rst_rate_limited: u32,
    /// Connections reset by the peer.
    pub resets_received: u32,
    /// Connections aborted after exhausting retries.
    pub timeouts: u32,
}

/// The stack's TCP state that is not per connection.
pub struct TcpCore {
    pub(crate) config: TcpConfig,
    pub(crate) stats: TcpStats,
    ip_id: u16,
    rst_tokens: u16,
    rst_refill: Instant,
    /// Kept RX buffers given up while the RX ring was busy; the interface returns them.
    pub(crate) rx_to_release: heapless::Vec<RxBuf, 32>,
}

impl TcpCore {
    pub(crate) fn new(config: TcpConfig) -> TcpCore {
        let mut config = config;
        config.tx_segments = config.tx_segments.clamp(1, MAX_TX_SEGMENTS as u8);
        config.rx_segments = config.rx_segments.min(MAX_KEPT as u8);
        TcpCore {
            config,
            stats: TcpStats::default(),
            ip_id: 0,
            rst_tokens: config.rst_per_second,
            rst_refill: Instant(0),
            rx_to_release: heapless::Vec::new(),
        }
    }
}

/// The layer above TCP.
pub trait TcpHandler {
    /// In-order data arrived on `conn`, in place. Return how many bytes were consumed; the
    /// rest is kept and offered again (or, if it cannot be kept, not acknowledged).
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize;
    /// Something happened to `conn`.
    fn on_event(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, event: TcpEvent);
}

/// What to do with the frame a segment came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to keep.
    Done,
    /// Keep the frame for connection `conn`: `len` bytes from `offset` in the segment.
    Keep {
        conn: ConnId,
        offset: usize,
        len: usize,
    },
    /// Copy `len` bytes from `offset` in the segment behind the data `conn` last kept,
    /// whose buffer has room for them.
    Append {
        conn: ConnId,
        offset: usize,
        len: usize,
    },
}

/// The TCP byte streams, for the layer above and for the interface.
pub struct TcpApi<'a, 'm> {
    pub(crate) conns: &'a mut [Conn],
    pub(crate) core: &'a mut TcpCore,
    pub(crate) tx: &'a mut TxRing<'m>,
    pub(crate) link: &'a Link,
    pub(crate) now: Instant,
    /// RX buffers free to keep received data in (the ring's spares), shared by every
    /// connection: the receive windows together never promise more than these.
    pub(crate) rx_spare: u32,
}

impl<'a, 'm> TcpApi<'a, 'm> {
    // ------------------------------------------------------------ for the layer above

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    fn slot(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.index as usize)
            .filter(|c| c.generation == id.generation && c.state != State::Closed)
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.state != State::Closed)
    }

    fn id(&self, i: usize) -> ConnId {
        ConnId {
            index: i as u8,
            generation: self.conns.get(i).map_or(0, |c| c.generation),
        }
    }

    /// The state of a connection (`None`: closed or stale handle).
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.slot(id).map(|c| c.state)
    }

    /// The peer's address and port.
    pub fn remote(&self, id: ConnId) -> Option<([u8; 4], u16)> {
        self.slot(id).map(|c| (c.remote_ip, c.remote_port))
    }

    /// Open connections (handshake completed, not yet closed).
    pub fn connections(&self) -> impl Iterator<Item = (ConnId, State)> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state.synchronized())
            .map(|(i, c)| {
                (
                    ConnId {
                        index: i as u8,
                        generation: c.generation,
                    },
                    c.state,
                )
            })
    }

    /// Payload bytes one [`send`](Self::send) can take now (0 = would block).
    pub fn send_capacity(&self, id: ConnId) -> usize {
        match self.slot(id) {
            Some(c) => self.room(c),
            None => 0,
        }
    }

    /// Asks for [`TcpEvent::Writable`] once there is room again, for a caller that found
    /// too little room (from the capacity queries) without calling `send`. With the
    /// peer's window shut and nothing in flight, the persist timer starts probing it
    /// (RFC 9293 §3.8.6.1).
    pub fn want_write(&mut self, id: ConnId) {
        let now = self.now;
        if let Some(c) = self.slot_mut(id) {
            c.flags |= ConnFlags::WANT_WRITE;
            if c.snd_wnd == 0 && c.in_flight() == 0 && c.timer.is_none() {
                c.timer = Deadline::at(now.plus(c.rtt.rto()));
            }
        }
    }

    /// Payload bytes one [`send_more`](Self::send_more) can take now (0 = would block):
    /// the room left in the corked segment, or in a new one if that is more.
    pub fn send_more_capacity(&self, id: ConnId) -> usize {
        let Some(c) = self.slot(id) else { return 0 };
        if let Some(u) = c.corked_index().and_then(|k| c.unacked.get(k as usize)) {
            let window_left = (c.snd_wnd as u32).saturating_sub(c.in_flight()) as usize;
            let room = (c.snd_mss as usize)
                .saturating_sub(u.len as usize)
                .min(window_left);
            return room.max(self.room(c));
        }
        self.room(c)
    }

    fn room(&self, c: &Conn) -> usize {
        if !c.state.can_send()
            || c.flags
                .intersects(ConnFlags::FIN_QUEUED | ConnFlags::FIN_SENT)
        {
            return 0;
        }
        self.open_room(c)
    }

    /// [`room`](Self::room) for a connection that may send (open, no FIN queued): TX
    /// buffers and the peer's window.
    fn open_room(&self, c: &Conn) -> usize {
        if c.unacked_count() >= self.core.config.tx_segments as usize
            // A connection with segments in flight leaves one buffer for the others, so
            // peers that stop acknowledging cannot hold every TX buffer.
            || !self
                .tx
                .free_more_than(CONTROL_RESERVE + u32::from(c.unacked_count() > 0))
        {
            return 0;
        }
        let window_left = (c.snd_wnd as u32).saturating_sub(c.in_flight());
        window_left.min(c.snd_mss as u32) as usize
    }

    /// Sends up to `max` bytes: `write` fills the payload area of a TX frame (at most the
    /// room available) and returns how many bytes it wrote; it is called at most once. The
    /// segment is retained until acknowledged. Returns the bytes sent.
    ///
    /// `FnMut` rather than `FnOnce`: `send_dyn` takes it as it is, where a `FnOnce` needed
    /// an `Option`-taking wrapper, a function of its own on every send.
    pub fn send(
        &mut self,
        id: ConnId,
        max: usize,
        mut write: impl FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        self.send_dyn(id, max, &mut write, true)
    }

    /// As [`send`](Self::send), but the segment is held back ("corked") until
    /// [`flush`](Self::flush) or the end of the current interrupt or poll, and further
    /// `send_more` calls append to it while it has room: many small writes in one batch
    /// (a WebSocket frame per chunk of input) leave as full segments.
    pub fn send_more(
        &mut self,
        id: ConnId,
        max: usize,
        mut write: impl FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        self.send_dyn(id, max, &mut write, false)
    }

    /// The body of [`send`](Self::send) (`transmit`) and [`send_more`](Self::send_more),
    /// written once for every caller's closure (monomorphised, it would be copied into
    /// each of them).
    fn send_dyn(
        &mut self,
        id: ConnId,
        max: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
        transmit: bool,
    ) -> Result<usize, SendError> {
        let i = id.index as usize;
        if transmit {
            self.transmit_corked(i);
        }
        // The handle is checked once, here: nothing below frees or reuses the slot.
        let Some(k) = self.slot(id).map(Conn::corked_index) else {
            return Err(SendError::NotConnected);
        };
        if !transmit && let Some(k) = k {
            let TcpApi {
                conns, tx, core, ..
            } = self;
            if let Some(c) = conns.get_mut(i) {
                let window_left = (c.snd_wnd as u32).saturating_sub(c.in_flight()) as usize;
                let mss = c.snd_mss as usize;
                if let Some(u) = c.unacked.get_mut(k as usize) {
                    let room = max.min(mss.saturating_sub(u.len as usize)).min(window_left);
                    // Append only what fits whole; a longer write starts a new segment
                    // (fuller than the rest of this one could be).
                    if room > 0 && room == max {
                        let at = u.frame_len();
                        let n = match tx.buffer(&u.buf).and_then(|f| f.get_mut(at..at + room)) {
                            Some(area) => write(area).min(room),
                            None => 0,
                        };
                        u.len += n as u16;
                        c.snd_nxt = c.snd_nxt.wrapping_add(n as u32);
                        core.stats.tx_bytes = core.stats.tx_bytes.wrapping_add(n as u32);
                        return Ok(n);
                    }
                }
            }
            // Full (or the peer's window is): out it goes, and a new one begins.
            self.transmit_corked(i);
        }
        self.segment(i, max, write, transmit)
    }

    /// Transmits every corked segment.
    pub fn flush(&mut self) {
        for i in 0..self.conns.len() {
            self.transmit_corked(i);
        }
    }

    /// Transmits connection `i`'s corked segment, if it has one.
    ///
    /// Most calls find nothing corked (every flush asks every connection): that test is
    /// made here, inline, and only a corked segment costs the call to
    /// [`send_corked`](Self::send_corked) and its saving of registers.
    #[inline(always)]
    fn transmit_corked(&mut self, i: usize) {
        if self.conns.get(i).is_some_and(|c| c.corked) {
            self.send_corked(i);
        }
    }

    /// Builds the headers of connection `i`'s corked segment (with the current ACK and
    /// window) and hands it to the controller. If the ring refuses it, it stays unacked
    /// with valid headers and the retransmission timer sends it.
    ///
    /// Called only for a corked connection (its callers test `corked`): the window, which
    /// `rcv_window` records as advertised, is taken first, so that the connection and its
    /// corked segment are looked up once, after that call.
    #[inline(never)]
    fn send_corked(&mut self, i: usize) {
        let window = self.rcv_window(i);
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let k = c.corked_index();
        c.corked = false;
        let Some(u) = k.and_then(|k| c.unacked.get(k as usize)) else {
            return;
        };
        let frame_len = u.frame_len();
        let port = self.core.config.port;
        let built = match self.tx.buffer(&u.buf) {
            Some(f) => build_data(
                f,
                frame_len,
                c,
                u.seq,
                window,
                port,
                self.link,
                &mut self.core.ip_id,
            ),
            None => None,
        };
        if built.is_some() && self.tx.send_retained(&u.buf, frame_len).is_ok() {
            c.ack_sent = c.rcv_nxt;
            c.flags.remove(ConnFlags::ACK_NOW | ConnFlags::ACK_DELAYED);
            self.core.stats.tx_segments += 1;
        } else {
            self.core.stats.tx_no_buffer += 1;
        }
    }

    /// A new data segment of up to `max` bytes from `write`; transmitted at once, or
    /// corked (headers built when it is transmitted).
    ///
    /// Connection `i`'s handle was checked by the caller.
    fn segment(
        &mut self,
        i: usize,
        max: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
        transmit: bool,
    ) -> Result<usize, SendError> {
        let Some(c) = self.conns.get(i) else {
            return Err(SendError::NotConnected);
        };
        if !c.state.can_send()
            || c.flags
                .intersects(ConnFlags::FIN_QUEUED | ConnFlags::FIN_SENT)
        {
            return Err(SendError::NotConnected);
        }
        let mut room = self.open_room(c).min(max);
        if room == 0 && !self.tx.free_more_than(CONTROL_RESERVE) {
            self.tx.reap();
            room = self.conns.get(i).map_or(0, |c| self.open_room(c)).min(max);
        }
        if room == 0 {
            if let Some(c) = self.conns.get_mut(i) {
                c.flags |= ConnFlags::WANT_WRITE;
            }
            return Err(SendError::WouldBlock);
        }
        let Some(buf) = self.tx.alloc() else {
            return Err(SendError::WouldBlock);
        };
        let n = match self
            .tx
            .buffer(&buf)
            .and_then(|f| f.get_mut(DATA_OFFSET..DATA_OFFSET + room))
        {
            Some(area) => write(area).min(room),
            None => 0,
        };
        if n == 0 {
            self.tx.release(buf);
            return Ok(0);
        }
        let Some(c) = self.conns.get(i) else {
            self.tx.release(buf);
            return Err(SendError::NotConnected);
        };
        let seq = c.snd_nxt;
        if transmit {
            let frame_len = DATA_OFFSET + n;
            let window = self.rcv_window(i);
            let Some(c) = self.conns.get(i) else {
                self.tx.release(buf);
                return Err(SendError::NotConnected);
            };
            let port = self.core.config.port;
            let built = match self.tx.buffer(&buf) {
                Some(f) => build_data(
                    f,
                    frame_len,
                    c,
                    seq,
                    window,
                    port,
                    self.link,
                    &mut self.core.ip_id,
                ),
                None => None,
            };
            if built.is_none() || self.tx.send_retained(&buf, frame_len).is_err() {
                self.tx.release(buf);
                return Err(SendError::WouldBlock);
            }
        }
        // The segment is retained, sent or corked alike: one bookkeeping for both.
        let now = self.now;
        let core = &mut *self.core;
        let Some(c) = self.conns.get_mut(i) else {
            self.tx.release(buf);
            return Err(SendError::NotConnected);
        };
        if let Err(u) = c.unacked.push(Unacked::new(seq, n, buf)) {
            self.tx.release(u.buf); // cannot happen: room() checked the budget
            if !transmit {
                return Err(SendError::WouldBlock);
            }
        }
        c.snd_nxt = seq.wrapping_add(n as u32);
        c.flags.remove(ConnFlags::WANT_WRITE);
        if transmit {
            // The segment carried the current acknowledgment.
            c.ack_sent = c.rcv_nxt;
            c.flags.remove(ConnFlags::ACK_NOW | ConnFlags::ACK_DELAYED);
            core.stats.tx_segments += 1;
        } else {
            c.corked = true;
        }
        if !c.flags.contains(ConnFlags::TIMING) {
            c.flags.insert(ConnFlags::TIMING);
            c.timed_seq = seq;
            c.timed_at = now;
        }
        if c.timer.is_none() {
            c.timer = Deadline::at(now.plus(c.rtt.rto()));
        }
        core.stats.tx_bytes = core.stats.tx_bytes.wrapping_add(n as u32);
        Ok(n)
    }

    /// Closes the sending side: FIN after the data already sent. Receiving goes on until
    /// the peer closes too.
    pub fn close(&mut self, id: ConnId) -> bool {
        let Some(c) = self.slot_mut(id) else {
            return false;
        };
        match c.state {
            State::SynReceived => {
                // Nothing was exchanged yet: reset rather than linger (§3.10.4).
                self.abort(id);
            }
            State::Established | State::CloseWait => {
                c.flags.insert(ConnFlags::FIN_QUEUED);
                // The data first, then the FIN.
                self.transmit_corked(id.index as usize);
                self.send_fin(id.index as usize);
            }
            _ => {}
        }
        true
    }

    /// Aborts: RST to the peer when it still has a connection to reset, slot freed at
    /// once. No event follows.
    pub fn abort(&mut self, id: ConnId) -> bool {
        let i = id.index as usize;
        let Some(c) = self.slot(id) else { return false };
        // RFC 9293 §3.10.5: SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 and
        // CLOSE-WAIT send a reset; in CLOSING, LAST-ACK and TIME-WAIT both FINs are out,
        // and the TCB is deleted without one.
        if !matches!(c.state, State::Closing | State::LastAck | State::TimeWait) {
            let (mac, ip) = (c.remote_mac, c.remote_ip);
            let hdr = header(
                self.core.config.port,
                c.remote_port,
                c.sent_nxt(),
                c.rcv_nxt,
                Flags::RST | Flags::ACK,
                0,
            );
            self.emit(mac, ip, &hdr);
            self.core.stats.rst_sent += 1;
        }
        self.free(i);
        true
    }

    // ------------------------------------------------------------ segment output

    /// ARP learned a new Ethernet address for neighbour `ip`: connections routed through
    /// it follow.
    pub(crate) fn neighbour_changed(&mut self, ip: [u8; 4], mac: [u8; 6]) {
        let ipc = self.link.ip;
        for c in self.conns.iter_mut().filter(|c| c.state != State::Closed) {
            if ipc.next_hop(c.remote_ip) == ip {
                c.remote_mac = mac;
            }
        }
    }

    /// Spares held back from connection `i`'s second and later kept segments: one for
    /// each other receiving connection that keeps nothing yet (so each can keep its first
    /// and never sees its data refused for want of a spare), and at least one for a
    /// connection still to come.
    ///
    /// A loop rather than `filter().count()`, whose fold the compiler outlines: a call
    /// from [`rcv_window`](Self::rcv_window) that made it save and restore registers on
    /// every segment sent.
    fn keep_reserve(&self, i: usize) -> u32 {
        let mut idle = 0;
        for (j, c) in self.conns.iter().enumerate() {
            if j != i && receives(c.state) && c.kept_count() == 0 {
                idle += 1;
            }
        }
        idle.max(1)
    }

    /// The next IPv4 identification value.
    pub(crate) fn next_ip_id(&mut self) -> u16 {
        self.core.ip_id = self.core.ip_id.wrapping_add(1);
        self.core.ip_id
    }

    /// The receive window to advertise: room for the segments the connection may still
    /// keep, out of the spare RX buffers the other connections have not been promised,
    /// never retracting the right edge already advertised (RFC 9293 §3.8.6.2.2). Data
    /// the layer above takes at once needs no spare, but data it cannot take must fit
    /// one, or it is dropped and costs the peer a retransmission timeout; so the windows
    /// together promise no more than the spares.
    fn rcv_window(&mut self, i: usize) -> u16 {
        let budget = self.core.config.rx_segments as usize;
        let promised_elsewhere: u32 = self
            .conns
            .iter()
            .enumerate()
            .filter(|(j, c)| *j != i && receives(c.state))
            .map(|(_, c)| promised_segments(c))
            .sum();
        let mut pool = self.rx_spare.saturating_sub(promised_elsewhere);
        if self.conns.get(i).is_some_and(|c| c.kept_count() > 0) {
            // Beyond its first, a connection keeps only what leaves the others theirs
            // (see `keep_reserve`).
            pool = pool.min(self.rx_spare.saturating_sub(self.keep_reserve(i)));
        }
        let Some(c) = self.conns.get_mut(i) else {
            return 0;
        };
        // A connection keeping nothing may always have one segment: with more receiving
        // connections than spares that overcommits, but no connection is ever shut out
        // (a zero window would also refuse its peer's FIN).
        let floor = u32::from(c.kept_count() == 0);
        let free = (budget.saturating_sub(c.kept_count()) as u32).min(pool.max(floor));
        let mut wnd = (free * OUR_MSS as u32).max(if budget == 0 { OUR_MSS as u32 } else { 0 });
        // The right edge already advertised, if it lies ahead (`seq::lt`) and beyond
        // `wnd`: one signed comparison tests both, since `wnd` is at most `rx_segments`
        // segments, far below 2^31.
        let promised = c.rcv_adv.wrapping_sub(c.rcv_nxt);
        if promised as i32 > wnd as i32 {
            wnd = promised;
        }
        let wnd = wnd.min(u16::MAX as u32);
        c.rcv_adv = c.rcv_nxt.wrapping_add(wnd);
        wnd as u16
    }

    /// Sends a segment without payload from a fresh TX buffer (not retained).
    fn emit(&mut self, mac: [u8; 6], ip: [u8; 4], hdr: &SegmentHeader) -> bool {
        let buf = match self.tx.alloc() {
            Some(b) => b,
            None => {
                self.tx.reap();
                match self.tx.alloc() {
                    Some(b) => b,
                    None => {
                        self.core.stats.tx_no_buffer += 1;
                        return false;
                    }
                }
            }
        };
        let len = TCP_AT + hdr.len();
        let built = match self.tx.buffer(&buf) {
            Some(f) => build(f, len, self.link, &mac, ip, hdr, &mut self.core.ip_id),
            None => None,
        };
        if built.is_none() {
            self.tx.release(buf);
            return false;
        }
        self.tx.send(buf, len).is_ok()
    }

    /// An ACK with the current window; clears the pending-ACK flags.
    fn send_ack(&mut self, i: usize) {
        // Corked data goes first (and carries the ACK): a pure ACK must not announce a
        // sequence number past data not yet sent.
        if self.conns.get(i).is_some_and(|c| c.corked) {
            self.send_corked(i);
            return;
        }
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        c.flags.remove(ConnFlags::ACK_NOW | ConnFlags::ACK_DELAYED);
        let seq = c.snd_nxt;
        self.send_bare(i, seq, Flags::ACK);
    }

    fn send_syn_ack(&mut self, i: usize) {
        let window = self.rcv_window(i);
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        c.ack_sent = c.rcv_nxt;
        let (mac, ip) = (c.remote_mac, c.remote_ip);
        let mut hdr = header(
            self.core.config.port,
            c.remote_port,
            c.snd_una,
            c.rcv_nxt,
            Flags::SYN | Flags::ACK,
            window,
        );
        hdr.mss = Some(OUR_MSS);
        hdr.sack_permitted = c.flags.contains(ConnFlags::SACK_OK);
        self.emit(mac, ip, &hdr);
    }

    /// Sends (or re-sends) our FIN (at [`Conn::fin_seq`]).
    fn send_fin(&mut self, i: usize) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if !c.flags.contains(ConnFlags::FIN_SENT) {
            c.snd_nxt = c.snd_nxt.wrapping_add(1);
            c.flags.insert(ConnFlags::FIN_SENT);
            c.state = match c.state {
                State::CloseWait => State::LastAck,
                _ => State::FinWait1,
            };
            c.since = now;
            if c.timer.is_none() {
                c.timer = Deadline::at(now.plus(c.rtt.rto()));
            }
        }
        c.flags.remove(ConnFlags::ACK_NOW | ConnFlags::ACK_DELAYED);
        let seq = c.fin_seq();
        self.send_bare(i, seq, Flags::FIN | Flags::ACK);
    }

    /// Sends connection `i` a segment without data: `flags` at `seq`, with the current
    /// acknowledgment and window (the acknowledgment recorded as sent). The ACK, the FIN
    /// and the window probe, written once (the window, the header and the call to `emit`
    /// were some 80 bytes each). Not the SYN-ACK: its options cost the handshake 10
    /// instructions here.
    #[inline(never)]
    fn send_bare(&mut self, i: usize, seq: u32, flags: Flags) {
        let window = self.rcv_window(i);
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        c.ack_sent = c.rcv_nxt;
        let (mac, ip) = (c.remote_mac, c.remote_ip);
        let hdr = header(
            self.core.config.port,
            c.remote_port,
            seq,
            c.rcv_nxt,
            flags,
            window,
        );
        self.emit(mac, ip, &hdr);
    }

    /// RST or challenge ACK, if the rate limit allows (RFC 5961 §7).
    fn rate_ok(&mut self) -> bool {
        let core = &mut *self.core;
        if self.now.since(core.rst_refill) >= 1000 {
            core.rst_refill = self.now;
            core.rst_tokens = core.config.rst_per_second;
        }
        if core.rst_tokens == 0 {
            core.stats.rst_rate_limited += 1;
            return false;
        }
        core.rst_tokens -= 1;
        true
    }

    /// The RST answering a segment that has no connection (RFC 9293 §3.10.7.1).
    fn reset_for(&mut self, mac: &[u8; 6], ip: [u8; 4], seg: &SegmentInfo) {
        if seg.flags.contains(Flags::RST) || !self.rate_ok() {
            return;
        }
        self.core.stats.rst_sent += 1;
        let (seq, ack, flags) = if seg.flags.contains(Flags::ACK) {
            (seg.ack, 0, Flags::RST)
        } else {
            (
                0,
                seg.seq.wrapping_add(seg.seg_len()),
                Flags::RST | Flags::ACK,
            )
        };
        // From the port the segment was sent to, which may not be ours.
        let hdr = SegmentHeader {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags,
            window: 0,
            mss: None,
            sack_permitted: false,
        };
        self.emit(*mac, ip, &hdr);
    }

    fn challenge_ack(&mut self, i: usize) {
        if self.rate_ok() {
            self.core.stats.challenge_acks += 1;
            self.send_ack(i);
        }
    }

    /// Retransmits the oldest unacknowledged segment (data from its retained buffer, or
    /// the FIN, or the SYN-ACK). Karn: the RTT sample in progress is abandoned.
    fn retransmit_first(&mut self, i: usize) -> bool {
        let window = self.rcv_window(i);
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        c.flags.remove(ConnFlags::TIMING);
        if c.state == State::SynReceived {
            self.send_syn_ack(i);
            return true;
        }
        if !c.unacked.is_empty() {
            return self.resend(i, 0, window);
        }
        if c.flags.contains(ConnFlags::FIN_SENT) && seq::le(c.snd_una, c.fin_seq()) {
            self.send_fin(i);
            return true;
        }
        false
    }

    /// Sends retained segment `k` of connection `i` again, with the current ACK and
    /// window.
    fn resend(&mut self, i: usize, k: usize, window: u16) -> bool {
        if self
            .conns
            .get(i)
            .is_some_and(|c| c.corked_index() == Some(k as u8))
        {
            // Never sent yet: it goes out whole, with fresh headers.
            self.transmit_corked(i);
            return true;
        }
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        let ack = c.rcv_nxt;
        let Some(u) = c.unacked.get_mut(k) else {
            return false;
        };
        if self.tx.is_in_flight(&u.buf) {
            self.core.stats.retransmits_deferred += 1;
            return false;
        }
        u.marks.insert(Marks::RESENT);
        let frame_len = u.frame_len();
        if let Some(f) = self.tx.buffer(&u.buf) {
            patch_ack_window(f, ack, window);
        }
        let sent = self.tx.send_retained(&u.buf, frame_len).is_ok();
        c.flags
            .remove(ConnFlags::ACK_NOW | ConnFlags::ACK_DELAYED | ConnFlags::TIMING);
        c.ack_sent = ack;
        sent
    }

    /// SACK-based loss recovery (RFC 6675, simplified): marks the segments the peer's
    /// SACK blocks cover, then retransmits, once per recovery, each segment with enough
    /// SACKed segments above it to call it lost: three, or one less than the segments
    /// outstanding when fewer than four are (as early retransmit, RFC 5827).
    fn sack_recovery(&mut self, i: usize, seg: &SegmentInfo, header: &[u8]) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if !c.flags.contains(ConnFlags::SACK_OK) || seg.sack_blocks == 0 {
            return;
        }
        // Block by block: the blocks are read from the header once each.
        for (l, r) in seg.sack(header) {
            for u in c.unacked.iter_mut() {
                if seq::le(l, u.seq) && seq::le(u.seq.wrapping_add(u.len as u32), r) {
                    u.marks.insert(Marks::SACKED);
                }
            }
        }
        let threshold = loss_threshold(c.unacked_count());
        // Bit k: segment k is lost.
        let mut lost = 0u32;
        let mut sacked_above = 0u8;
        for (k, u) in c.unacked.iter().enumerate().rev() {
            if u.marks.contains(Marks::SACKED) {
                sacked_above += 1;
            } else if !u.marks.contains(Marks::RESENT) && sacked_above >= threshold {
                lost |= 1 << k;
            }
        }
        if lost != 0 && !c.flags.contains(ConnFlags::RECOVERY) {
            c.flags.insert(ConnFlags::RECOVERY);
            c.recover = c.snd_nxt;
        }
        let window = self.rcv_window(i);
        for k in 0..conn::MAX_TX_SEGMENTS {
            if lost & 1 << k != 0 {
                self.core.stats.retransmits_sack += 1;
                self.resend(i, k, window);
            }
        }
    }

    /// Frees a slot, giving back its buffers.
    fn free(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        while let Some(u) = c.unacked.pop() {
            self.tx.release(u.buf);
        }
        for k in c.kept.iter_mut() {
            if let Some(k) = k.take() {
                // The ring may be lending a frame right now; the interface returns these.
                let _ = self.core.rx_to_release.push(k.buf);
            }
        }
        *c = Conn {
            generation: c.generation.wrapping_add(1),
            ..Conn::new()
        };
    }

    // ------------------------------------------------------------ input

    /// Handles one segment (the IPv4 payload). `keep_possible`: the frame can be kept if
    /// the layer above does not consume all of it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn input<H: TcpHandler>(
        &mut self,
        handler: &mut H,
        src_mac: &[u8; 6],
        src_ip: [u8; 4],
        dst_ip: [u8; 4],
        seg: &mut [u8],
        keep_possible: bool,
    ) -> Verdict {
        let info = match segment::parse(seg, src_ip, dst_ip) {
            Ok(i) => i,
            Err(segment::TcpError::BadChecksum) => {
                self.core.stats.rx_bad_checksum += 1;
                return Verdict::Done;
            }
            Err(_) => {
                self.core.stats.rx_malformed += 1;
                return Verdict::Done;
            }
        };
        self.core.stats.rx_segments += 1;
        if dst_ip != self.link.ip.address {
            // Broadcast TCP is meaningless; ignore it.
            self.core.stats.rx_malformed += 1;
            return Verdict::Done;
        }
        if info.dst_port != self.core.config.port {
            self.core.stats.rx_closed_port += 1;
            self.reset_for(src_mac, src_ip, &info);
            return Verdict::Done;
        }
        let found = self.conns.iter().position(|c| c.is(src_ip, info.src_port));
        match found {
            Some(i) => self.segment_arrives(handler, i, src_mac, &info, seg, keep_possible),
            None => self.listen(handler, src_mac, src_ip, &info, seg, keep_possible),
        }
    }

    /// A segment for the listening port with no connection (§3.10.7.2).
    ///
    /// Not inlined in [`input`](Self::input), and so in the interface's receive loop:
    /// the constants and registers of the SYN and cookie paths were set up there for
    /// every frame, at a cost to each data segment above what the call costs a SYN.
    #[inline(never)]
    fn listen<H: TcpHandler>(
        &mut self,
        handler: &mut H,
        mac: &[u8; 6],
        ip: [u8; 4],
        seg: &SegmentInfo,
        raw: &mut [u8],
        keep_possible: bool,
    ) -> Verdict {
        if seg.flags.contains(Flags::RST) {
            return Verdict::Done;
        }
        let tuple = isn::four_tuple(
            self.link.ip.address,
            self.core.config.port,
            ip,
            seg.src_port,
        );
        if seg.flags.contains(Flags::ACK) {
            // Either junk, or the end of a handshake we answered with a cookie.
            let mss = match isn::check_cookie(
                &self.core.config.secret,
                &tuple,
                self.now.millis(),
                seg.ack.wrapping_sub(1),
            ) {
                Some(m) if !seg.flags.contains(Flags::SYN) => m,
                _ => {
                    self.core.stats.syn_cookies_rejected += 1;
                    self.reset_for(mac, ip, seg);
                    return Verdict::Done;
                }
            };
            if !self.can_accept() {
                return Verdict::Done;
            }
            // A peer that answered our cookie has proven its address; an unproven
            // half-open entry gives way to it if the table is full.
            let Some(i) = self.take_slot().or_else(|| self.evict_half_open()) else {
                self.core.stats.refused_full += 1;
                self.reset_for(mac, ip, seg);
                return Verdict::Done;
            };
            self.core.stats.syn_cookies_accepted += 1;
            self.open(
                i,
                mac,
                ip,
                seg.src_port,
                seg.ack.wrapping_sub(1),
                seg.seq.wrapping_sub(1),
                mss,
            );
            let window = self.initial_window() as u32;
            if let Some(c) = self.conns.get_mut(i) {
                c.flags.insert(ConnFlags::FROM_COOKIE);
                // The window our cookie SYN-ACK advertised.
                c.rcv_adv = c.rcv_nxt.wrapping_add(window);
            }
            self.established(handler, i, seg);
            // The ACK may carry data (and FIN): process it as in ESTABLISHED.
            if seg.payload_len > 0 || seg.flags.contains(Flags::FIN) {
                return self.segment_arrives(handler, i, mac, seg, raw, keep_possible);
            }
            return Verdict::Done;
        }
        if !seg.flags.contains(Flags::SYN) || seg.flags.contains(Flags::FIN) {
            return Verdict::Done;
        }
        let mss = seg.mss.unwrap_or(DEFAULT_MSS);
        let half_open = self
            .conns
            .iter()
            .filter(|c| c.state == State::SynReceived)
            .count();
        let slot = if half_open < self.core.config.max_half_open as usize {
            self.take_slot()
        } else {
            None
        };
        match slot {
            Some(i) => {
                let iss = isn::isn(&self.core.config.secret, &tuple, self.now.millis());
                self.open(i, mac, ip, seg.src_port, iss, seg.seq, mss);
                if let Some(c) = self.conns.get_mut(i) {
                    c.snd_wnd = seg.window;
                    c.timer = Deadline::at(self.now.plus(c.rtt.rto()));
                    c.flags.set(ConnFlags::SACK_OK, seg.sack_permitted);
                }
                self.send_syn_ack(i);
            }
            None => {
                // No state for this one: a cookie carries what we need (RFC 4987 §3.6).
                let cookie = isn::cookie(&self.core.config.secret, &tuple, self.now.millis(), mss);
                let ack = seg.seq.wrapping_add(1);
                self.core.stats.syn_cookies_sent += 1;
                let mut hdr = header(
                    self.core.config.port,
                    seg.src_port,
                    cookie,
                    ack,
                    Flags::SYN | Flags::ACK,
                    self.initial_window(),
                );
                hdr.mss = Some(OUR_MSS);
                self.emit(*mac, ip, &hdr);
            }
        }
        Verdict::Done
    }

    /// The window of a new connection: room for every segment it may keep, out of the
    /// spares the established connections have not been promised (at least one segment;
    /// see [`TcpApi::rcv_window`]).
    fn initial_window(&self) -> u16 {
        let promised: u32 = self
            .conns
            .iter()
            .filter(|c| receives(c.state))
            .map(promised_segments)
            .sum();
        let segments = (self.core.config.rx_segments.max(1) as u32)
            .min(self.rx_spare.saturating_sub(promised).max(1));
        (segments * OUR_MSS as u32).min(u16::MAX as u32) as u16
    }

    /// Whether a connection may be opened now: its first reply (a 101, or a 503 from a
    /// full service) must find a TX buffer beyond the control reserve, or the layer above
    /// could only close it without a word. If not, the handshake-completing ACK is
    /// dropped and counted; the peer's next segment (its request, or its ACK of our
    /// retransmitted SYN-ACK) completes the handshake once a buffer is released.
    fn can_accept(&mut self) -> bool {
        let ok = self.tx.free_more_than(CONTROL_RESERVE);
        if !ok {
            self.core.stats.accepts_deferred += 1;
        }
        ok
    }

    /// A free slot, or the oldest TIME-WAIT slot (which yields under pressure).
    fn take_slot(&mut self) -> Option<usize> {
        if let Some(i) = self.conns.iter().position(|c| c.state == State::Closed) {
            return Some(i);
        }
        let i = self.oldest(State::TimeWait)?;
        self.core.stats.time_wait_reused += 1;
        self.free(i);
        Some(i)
    }

    /// Frees the oldest half-open (SYN-RECEIVED) slot, if any.
    fn evict_half_open(&mut self) -> Option<usize> {
        let i = self.oldest(State::SynReceived)?;
        self.core.stats.half_open_evicted += 1;
        self.free(i);
        Some(i)
    }

    /// The slot that has been in `state` longest (the last of equals), for the two
    /// searches above: written once, where each was a few hundred bytes of iterator code.
    #[inline(never)]
    fn oldest(&self, state: State) -> Option<usize> {
        let mut oldest: Option<(usize, u32)> = None;
        for (i, c) in self.conns.iter().enumerate() {
            let age = self.now.since(c.since);
            if c.state == state && oldest.is_none_or(|(_, a)| age >= a) {
                oldest = Some((i, age));
            }
        }
        oldest.map(|(i, _)| i)
    }

    /// Fills a fresh slot for a connection whose ISS and IRS are known.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        i: usize,
        mac: &[u8; 6],
        ip: [u8; 4],
        port: u16,
        iss: u32,
        irs: u32,
        mss: u16,
    ) {
        let now = self.now;
        let initial_rto = self.core.config.rto.initial_ms;
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        // The slot is CLOSED (`take_slot`, `evict_half_open`), and a CLOSED slot is
        // `Conn::new()` but for its generation (`free` and the initial table make the
        // only ones): just the connection's own fields are set, not the whole slot
        // rebuilt (a `memset` and a dozen stores more).
        debug_assert!(c.state == State::Closed && c.unacked.is_empty() && c.kept_len == 0);
        c.state = State::SynReceived;
        c.remote_mac = *mac;
        c.remote_ip = ip;
        c.remote_port = port;
        c.snd_una = iss;
        c.snd_nxt = iss.wrapping_add(1);
        c.snd_mss = mss.clamp(64, OUR_MSS);
        c.rcv_nxt = irs.wrapping_add(1);
        c.rcv_adv = irs.wrapping_add(1);
        c.rtt = rtt::Rtt::new(initial_rto);
        c.since = now;
    }

    /// The handshake completed (our SYN is acknowledged).
    fn established<H: TcpHandler>(&mut self, handler: &mut H, i: usize, seg: &SegmentInfo) {
        let now = self.now;
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        c.state = State::Established;
        c.since = now;
        // Our SYN is acknowledged (`snd_una` held the ISS).
        c.snd_una = c.snd_una.wrapping_add(1);
        c.snd_wnd = seg.window;
        c.snd_wl1 = seg.seq;
        c.snd_wl2 = seg.ack;
        c.timer = Deadline::NONE;
        c.retries = 0;
        self.core.stats.accepted += 1;
        let id = self.id(i);
        handler.on_event(self, id, TcpEvent::Connected);
    }

    /// RFC 9293 §3.10.7.4, for a segment matching connection `i`; `raw` is the whole
    /// segment (the IPv4 payload) `seg` was parsed from.
    fn segment_arrives<H: TcpHandler>(
        &mut self,
        handler: &mut H,
        i: usize,
        mac: &[u8; 6],
        seg: &SegmentInfo,
        raw: &mut [u8],
        keep_possible: bool,
    ) -> Verdict {
        // The header stays readable for the SACK blocks (`SegmentInfo::sack`).
        let (header, payload) = raw
            .split_at_mut_checked(seg.payload_offset)
            .unwrap_or_default();
        let header = &*header;
        let Some(c) = self.conns.get_mut(i) else {
            return Verdict::Done;
        };

        if c.state == State::SynReceived {
            if seg.flags.contains(Flags::RST) {
                // In-window RST in SYN-RECEIVED: back to listening (§3.10.7.4, first check).
                if seq::in_window(
                    seg.seq,
                    c.rcv_nxt,
                    (c.rcv_adv.wrapping_sub(c.rcv_nxt)).max(1),
                ) {
                    self.free(i);
                }
                return Verdict::Done;
            }
            if seg.flags.contains(Flags::SYN) {
                if seg.seq.wrapping_add(1) == c.rcv_nxt && !seg.flags.contains(Flags::ACK) {
                    // The peer retransmitted its SYN: answer again.
                    self.send_syn_ack(i);
                } else {
                    self.challenge_ack(i);
                }
                return Verdict::Done;
            }
            if !seg.flags.contains(Flags::ACK) {
                return Verdict::Done;
            }
            if seg.ack != c.snd_una.wrapping_add(1) || seg.seq != c.rcv_nxt {
                // An ACK for something we did not send: RST (§3.10.7.4, SYN-RECEIVED).
                if seg.ack != c.snd_una.wrapping_add(1) {
                    let ip = c.remote_ip;
                    self.reset_for(mac, ip, seg);
                }
                return Verdict::Done;
            }
            if !self.can_accept() {
                return Verdict::Done;
            }
            self.established(handler, i, seg);
            // Fall through with the ACK's data and FIN, if any.
        }

        let Some(c) = self.conns.get_mut(i) else {
            return Verdict::Done;
        };
        if !c.state.synchronized() {
            return Verdict::Done;
        }

        // --- First: sequence number acceptable? (§3.10.7.4, table of four cases)
        let rcv_wnd = c.rcv_adv.wrapping_sub(c.rcv_nxt);
        let seg_len = seg.seg_len();
        // The four rows in one test: a window of 0 holds no sequence number, and an
        // empty segment in one must be at RCV.NXT, the one number of a window of 1; an
        // empty segment's first and last numbers are its one.
        let wnd = rcv_wnd.max(u32::from(seg_len == 0));
        let last = seg.seq.wrapping_add(seg_len.max(1) - 1);
        let acceptable =
            seq::in_window(seg.seq, c.rcv_nxt, wnd) || seq::in_window(last, c.rcv_nxt, wnd);
        // A segment whose data all lies before rcv_nxt is a duplicate: still ACK it.
        if !acceptable {
            if !seg.flags.contains(Flags::RST) {
                if seq::lt(seg.seq.wrapping_add(seg_len), c.rcv_nxt.wrapping_add(1)) {
                    self.core.stats.rx_duplicate += 1;
                } else {
                    self.core.stats.rx_out_of_window += 1;
                }
                if c.state == State::TimeWait
                    && seg.flags.contains(Flags::SYN)
                    && seq::lt(c.rcv_nxt, seg.seq)
                {
                    // RFC 6191-style reuse: a new SYN beyond the old connection's sequence
                    // space ends TIME-WAIT early.
                    self.free(i);
                    return Verdict::Done;
                }
                self.send_ack(i);
            }
            return Verdict::Done;
        }

        // --- Second: RST (RFC 5961 §3.2).
        if seg.flags.contains(Flags::RST) {
            if seg.seq == c.rcv_nxt {
                self.core.stats.resets_received += 1;
                let id = self.id(i);
                let notify = !matches!(self.conns.get(i).map(|c| c.state), Some(State::TimeWait));
                self.free(i);
                if notify {
                    handler.on_event(self, id, TcpEvent::Reset);
                }
            } else {
                self.challenge_ack(i);
            }
            return Verdict::Done;
        }

        // --- Fourth: SYN in a synchronized state (RFC 5961 §4.2).
        if seg.flags.contains(Flags::SYN) {
            self.challenge_ack(i);
            return Verdict::Done;
        }

        // --- Fifth: ACK.
        if !seg.flags.contains(Flags::ACK) {
            self.core.stats.rx_no_ack += 1;
            return Verdict::Done;
        }
        if !self.process_ack(handler, i, seg, header) {
            return Verdict::Done;
        }

        // --- Seventh: segment text. Not for a slot the layer above freed from an event
        // of the ACK (Closed, Writable): CLOSED now, and not reused (only a SYN opens a
        // slot, and none is being taken).
        let Some(c) = self.conns.get_mut(i).filter(|c| c.state != State::Closed) else {
            return Verdict::Done;
        };
        // Trim what we already have (a retransmission overlapping rcv_nxt) and what lies
        // beyond the window.
        let skip = c.rcv_nxt.wrapping_sub(seg.seq);
        let skip = if seq::lt(seg.seq, c.rcv_nxt) {
            (skip as usize).min(payload.len())
        } else {
            0
        };
        let mut fin = seg.flags.contains(Flags::FIN);
        let data_start = skip;
        let mut data_len = payload.len() - skip;
        let window_left = c.rcv_adv.wrapping_sub(c.rcv_nxt) as usize;
        if data_len > window_left {
            data_len = window_left;
            fin = false;
        }
        let seg_start = seg.seq.wrapping_add(skip as u32);
        if seq::lt(c.rcv_nxt, seg_start) {
            // Out of order: tell the peer where we are, drop the data.
            self.core.stats.rx_out_of_order += 1;
            if let Some(c) = self.conns.get_mut(i) {
                c.flags.insert(ConnFlags::ACK_NOW);
            }
            return Verdict::Done;
        }

        let mut verdict = Verdict::Done;
        if data_len > 0 {
            if !c.state.can_receive() {
                // Data after the peer's FIN: ignore (§3.10.7.4, seventh, CLOSE-WAIT...).
                data_len = 0;
                fin = false;
            } else {
                let (v, accepted) = self.deliver(
                    handler,
                    i,
                    payload,
                    data_start,
                    data_len,
                    seg.payload_offset,
                    keep_possible,
                );
                verdict = v;
                if accepted < data_len || matches!(v, Verdict::Keep { .. }) {
                    // The FIN follows data not accepted, or data the layer above has not
                    // seen yet: leave it for the peer's retransmission, so the layer above
                    // learns of the close after the data.
                    fin = false;
                }
            }
        }
        if fin && self.conns.get(i).is_some_and(|c| c.kept_count() > 0) {
            fin = false;
        }

        // --- Eighth: FIN.
        if fin {
            self.fin_arrives(handler, i);
        } else if data_len > 0 {
            self.schedule_ack(i);
        }
        verdict
    }

    /// ACK processing (§3.10.7.4, fifth). Returns false if the segment is to be dropped.
    ///
    /// Inline in its one caller, as [`deliver`](Self::deliver) is: every data segment
    /// takes both, and a call of each cost about 40 instructions of register saves and
    /// argument moves (measured: echo16 -75, flash -284).
    #[inline(always)]
    fn process_ack<H: TcpHandler>(
        &mut self,
        handler: &mut H,
        i: usize,
        seg: &SegmentInfo,
        header: &[u8],
    ) -> bool {
        let now = self.now;
        let cfg_rto = self.core.config.rto;
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        let ack = seg.ack;
        if seq::lt(c.snd_nxt, ack) {
            // Acknowledges something not yet sent.
            self.core.stats.rx_bad_ack += 1;
            self.send_ack(i);
            return false;
        }
        // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK.
        let max_wnd = (c.snd_wnd as u32).max(OUR_MSS as u32 * MAX_TX_SEGMENTS as u32);
        if seq::lt(ack, c.snd_una.wrapping_sub(max_wnd)) {
            self.core.stats.rx_bad_ack += 1;
            self.challenge_ack(i);
            return false;
        }
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        let old_wnd = c.snd_wnd;
        if seq::lt(c.snd_una, ack) {
            // New data acknowledged.
            if c.flags.contains(ConnFlags::TIMING) && seq::lt(c.timed_seq, ack) {
                c.flags.remove(ConnFlags::TIMING);
                let r = now.since(c.timed_at);
                c.rtt.sample(r, &cfg_rto);
            }
            c.snd_una = ack;
            c.retries = 0;
            c.dup_acks = 0;
            // Release fully acknowledged segments (they are in sequence order).
            while c
                .unacked
                .first()
                .is_some_and(|u| seq::le(u.seq.wrapping_add(u.len as u32), ack))
            {
                conn::first_to_back(&mut c.unacked);
                if let Some(u) = c.unacked.pop() {
                    self.tx.release(u.buf);
                }
            }
            let partial = c.flags.contains(ConnFlags::RECOVERY) && seq::lt(ack, c.recover);
            if c.flags.contains(ConnFlags::RECOVERY) && !partial {
                c.flags.remove(ConnFlags::RECOVERY);
                for u in c.unacked.iter_mut() {
                    u.marks.remove(Marks::RESENT);
                }
            }
            // The next hole, unless SACK already showed it arrived or it was resent.
            let first_open = c.unacked.first().is_some_and(|u| u.marks.is_empty());
            c.timer = if c.in_flight() > 0 {
                Deadline::at(now.plus(c.rtt.rto()))
            } else {
                Deadline::NONE
            };
            if partial && first_open {
                // NewReno: a partial ACK means the next segment was lost too.
                self.core.stats.retransmits_fast += 1;
                self.retransmit_first(i);
            }
        } else if ack == c.snd_una
            && seg.payload_len == 0
            && !seg.flags.contains(Flags::FIN)
            && seg.window == c.snd_wnd
            && c.unacked_count() > 0
        {
            // Duplicate ACK (RFC 5681 §2). With fewer than four segments outstanding,
            // three duplicates may never come: early retransmit (RFC 5827) lowers the
            // threshold to one less than the segments outstanding.
            c.dup_acks = c.dup_acks.saturating_add(1);
            let threshold = loss_threshold(c.unacked_count());
            if c.dup_acks == threshold && !c.flags.contains(ConnFlags::RECOVERY) {
                c.flags.insert(ConnFlags::RECOVERY);
                c.recover = c.snd_nxt;
                self.core.stats.retransmits_fast += 1;
                self.retransmit_first(i);
            }
        }
        if seg.sack_blocks != 0 {
            // Tested here: most ACKs carry no SACK blocks, and skip the call.
            self.sack_recovery(i, seg, header);
        }
        // Window update (§3.10.7.4: SND.WL1/WL2 guard against old segments).
        let Some(c) = self.conns.get_mut(i) else {
            return false;
        };
        if seq::lt(c.snd_wl1, seg.seq) || (c.snd_wl1 == seg.seq && seq::le(c.snd_wl2, ack)) {
            c.snd_wnd = seg.window;
            c.snd_wl1 = seg.seq;
            c.snd_wl2 = ack;
        }
        if c.snd_wnd == 0
            && c.in_flight() == 0
            && c.flags.contains(ConnFlags::WANT_WRITE)
            && c.timer.is_none()
        {
            // Zero window with something to say: probe (persist timer).
            c.timer = Deadline::at(now.plus(c.rtt.rto()));
        }
        if old_wnd == 0 && c.snd_wnd > 0 && c.in_flight() == 0 {
            c.timer = Deadline::NONE;
            c.retries = 0;
        }

        // Our FIN acknowledged?
        let fin_acked = c.flags.contains(ConnFlags::FIN_SENT) && seq::lt(c.fin_seq(), ack);
        let want_write = c.flags.contains(ConnFlags::WANT_WRITE);
        match c.state {
            State::FinWait1 if fin_acked => {
                c.state = State::FinWait2;
                c.since = now;
                c.timer = Deadline::NONE;
            }
            State::Closing if fin_acked => {
                c.state = State::TimeWait;
                c.since = now;
                c.timer = Deadline::at(now.plus(self.core.config.time_wait_ms));
                // Both FINs are through: the connection is over for the layer above.
                let id = self.id(i);
                handler.on_event(self, id, TcpEvent::Closed);
            }
            State::LastAck if fin_acked => {
                let id = self.id(i);
                self.free(i);
                handler.on_event(self, id, TcpEvent::Closed);
                return false;
            }
            State::TimeWait => {
                // Only a retransmitted FIN can arrive here; handled with the FIN below.
            }
            _ => {}
        }
        // The flag tested here, not only in the call: most ACKs find it clear, and skip
        // the call (as the timers do). Read before the match: the one arm that calls
        // the layer above leaves TIME-WAIT, where there is no room to notify of.
        if want_write {
            self.notify_writable(handler, i);
        }
        true
    }

    /// Tells the layer above it may write again, if it was refused and there is room.
    fn notify_writable<H: TcpHandler>(&mut self, handler: &mut H, i: usize) {
        let Some(c) = self.conns.get(i) else { return };
        if c.flags.contains(ConnFlags::WANT_WRITE) && self.room(c) > 0 {
            if let Some(c) = self.conns.get_mut(i) {
                c.flags.remove(ConnFlags::WANT_WRITE);
            }
            let id = self.id(i);
            handler.on_event(self, id, TcpEvent::Writable);
        }
    }

    /// In-order data `payload[at..at + len]`: to the layer above in place, the rest kept
    /// if possible. `payload_offset` is where `payload` starts in the segment. Returns
    /// the verdict for the frame and the bytes accepted (consumed or kept).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)] // one caller (see `process_ack`)
    fn deliver<H: TcpHandler>(
        &mut self,
        handler: &mut H,
        i: usize,
        payload: &mut [u8],
        at: usize,
        len: usize,
        payload_offset: usize,
        keep_possible: bool,
    ) -> (Verdict, usize) {
        let budget = self.core.config.rx_segments as usize;
        // A connection's first kept segment needs a spare; each further one must leave
        // the others theirs, so clients that stop reading cannot take every spare.
        let kept = self.conns.get(i).map_or(0, Conn::kept_count);
        let can_keep =
            keep_possible && kept < budget && (kept == 0 || self.rx_spare > self.keep_reserve(i));
        let Some(c) = self.conns.get_mut(i) else {
            return (Verdict::Done, 0);
        };
        let id = ConnId {
            index: i as u8,
            generation: c.generation,
        };
        if c.kept_count() > 0 {
            // Earlier data is still waiting: this goes behind it, or is not accepted.
            if can_keep {
                c.rcv_nxt = c.rcv_nxt.wrapping_add(len as u32);
                self.core.stats.rx_bytes = self.core.stats.rx_bytes.wrapping_add(len as u32);
                return (
                    Verdict::Keep {
                        conn: id,
                        offset: payload_offset + at,
                        len,
                    },
                    len,
                );
            }
            // Out of slots: a small segment may still fit behind the last kept one.
            let tail_room = c.kept.iter().flatten().last().map_or(0, |k| {
                crate::mac::dma::RX_DMA_SIZE.saturating_sub(k.offset as usize + k.len as usize)
            });
            if len <= tail_room {
                c.rcv_nxt = c.rcv_nxt.wrapping_add(len as u32);
                self.core.stats.rx_bytes = self.core.stats.rx_bytes.wrapping_add(len as u32);
                self.core.stats.rx_coalesced += 1;
                let offset = payload_offset + at;
                return (
                    Verdict::Append {
                        conn: id,
                        offset,
                        len,
                    },
                    len,
                );
            }
            self.core.stats.rx_unaccepted_bytes =
                self.core.stats.rx_unaccepted_bytes.wrapping_add(len as u32);
            c.flags.insert(ConnFlags::ACK_NOW);
            return (Verdict::Done, 0);
        }
        if !can_keep && budget > 0 {
            // No spare buffer to keep what the layer above may leave over: it may work on
            // the data in place (a WebSocket receiver unmasks it), so a rest it left and
            // that was then dropped would come back from the peer as it was sent, not as
            // it was left. So the data is not offered at all, nor acknowledged; the peer
            // sends it again.
            self.core.stats.rx_no_spare += 1;
            self.core.stats.rx_unaccepted_bytes =
                self.core.stats.rx_unaccepted_bytes.wrapping_add(len as u32);
            c.flags.insert(ConnFlags::ACK_NOW);
            return (Verdict::Done, 0);
        }
        // When the unconsumed rest can be kept, acknowledge the whole segment before the
        // layer above runs, so a reply it sends carries the ACK.
        if can_keep {
            c.rcv_nxt = c.rcv_nxt.wrapping_add(len as u32);
        }
        let Some(data) = payload.get_mut(at..at + len) else {
            return (Verdict::Done, 0);
        };
        let consumed = handler.on_data(self, id, data).min(len);
        let live = self
            .conns
            .get_mut(i)
            .filter(|c| c.generation == id.generation && c.state != State::Closed);
        let Some(c) = live else {
            // The layer above aborted the connection.
            return (Verdict::Done, consumed);
        };
        if can_keep {
            self.core.stats.rx_bytes = self.core.stats.rx_bytes.wrapping_add(len as u32);
            if consumed < len {
                let offset = payload_offset + at + consumed;
                return (
                    Verdict::Keep {
                        conn: id,
                        offset,
                        len: len - consumed,
                    },
                    len,
                );
            }
            return (Verdict::Done, len);
        }
        c.rcv_nxt = c.rcv_nxt.wrapping_add(consumed as u32);
        self.core.stats.rx_bytes = self.core.stats.rx_bytes.wrapping_add(consumed as u32);
        if consumed < len {
            self.core.stats.rx_unaccepted_bytes = self
                .core
                .stats
                .rx_unaccepted_bytes
                .wrapping_add((len - consumed) as u32);
            c.flags.insert(ConnFlags::ACK_NOW);
        }
        (Verdict::Done, consumed)
    }

    /// The peer's FIN, in order (§3.10.7.4, eighth).
    fn fin_arrives<H: TcpHandler>(&mut self, handler: &mut H, i: usize) {
        let now = self.now;
        let time_wait = self.core.config.time_wait_ms;
        // Not in a slot the layer above freed while it took the data before the FIN
        // (an abort from `on_data`): CLOSED, it has nothing to answer.
        let Some(c) = self.conns.get_mut(i).filter(|c| c.state != State::Closed) else {
            return;
        };
        c.rcv_nxt = c.rcv_nxt.wrapping_add(1);
        c.flags.insert(ConnFlags::ACK_NOW);
        let id = ConnId {
            index: i as u8,
            generation: c.generation,
        };
        let fin_acked = c.flags.contains(ConnFlags::FIN_SENT) && seq::lt(c.fin_seq(), c.snd_una);
        // Every first FIN is reported; one that also ends the connection (our FIN was
        // acknowledged already) is followed by Closed.
        let closed = match c.state {
            State::Established => {
                c.state = State::CloseWait;
                false
            }
            State::FinWait1 if !fin_acked => {
                c.state = State::Closing;
                false
            }
            State::FinWait1 | State::FinWait2 => {
                c.state = State::TimeWait;
                c.timer = Deadline::at(now.plus(time_wait));
                true
            }
            State::TimeWait => {
                // A retransmitted FIN: ACK it again and restart the timer.
                c.rcv_nxt = c.rcv_nxt.wrapping_sub(1);
                c.timer = Deadline::at(now.plus(time_wait));
                return;
            }
            State::CloseWait | State::Closing | State::LastAck => {
                // Retransmitted FIN: already counted.
                c.rcv_nxt = c.rcv_nxt.wrapping_sub(1);
                return;
            }
            // CLOSED is filtered out above; SYN-RECEIVED takes no FIN.
            State::Closed | State::SynReceived => return,
        };
        c.since = now;
        handler.on_event(self, id, TcpEvent::PeerClosed);
        if closed {
            handler.on_event(self, id, TcpEvent::Closed);
        }
    }

    // ------------------------------------------------------------ timers and ACKs

    /// Runs the connections' timers: retransmission (with the retry limit), zero-window
    /// probes, SYN-ACK retries, TIME-WAIT and FIN-WAIT-2 expiry, delayed ACKs.
    pub(crate) fn on_timers<H: TcpHandler>(&mut self, handler: &mut H) {
        self.flush();
        let now = self.now;
        let cfg = self.core.config;
        for i in 0..self.conns.len() {
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            if c.state == State::Closed {
                continue;
            }
            if c.flags.contains(ConnFlags::WANT_WRITE) {
                // Room may have come from TX buffers other connections gave back.
                self.notify_writable(handler, i);
            }
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            if c.flags.contains(ConnFlags::ACK_DELAYED) && now.reached(c.ack_at) {
                c.flags.insert(ConnFlags::ACK_NOW);
            }
            if c.state == State::FinWait2 && now.since(c.since) >= cfg.fin_wait2_timeout_ms {
                let id = self.id(i);
                self.free(i);
                handler.on_event(self, id, TcpEvent::Closed);
                continue;
            }
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            let Some(t) = c.timer.get() else { continue };
            if !now.reached(t) {
                continue;
            }
            // The timer is TIME-WAIT's end, a retransmission (of the SYN-ACK, or of data)
            // within its retry limit, or the persist timer, by state. The last two back
            // off alike, in one place.
            let limit = match c.state {
                State::TimeWait => {
                    self.free(i);
                    continue;
                }
                State::SynReceived => Some(cfg.syn_retries),
                _ if c.in_flight() > 0 => Some(cfg.max_retries),
                _ if c.snd_wnd == 0 && c.flags.contains(ConnFlags::WANT_WRITE) => None,
                _ => {
                    c.timer = Deadline::NONE;
                    continue;
                }
            };
            if let Some(limit) = limit {
                if c.retries >= limit {
                    if c.state == State::SynReceived {
                        self.core.stats.syn_timeouts += 1;
                        self.free(i);
                    } else {
                        self.core.stats.timeouts += 1;
                        let id = self.id(i);
                        self.abort(id);
                        handler.on_event(self, id, TcpEvent::TimedOut);
                    }
                    continue;
                }
                c.retries += 1;
            }
            c.rtt.back_off(&cfg.rto);
            c.timer = Deadline::at(now.plus(c.rtt.rto()));
            if c.state == State::SynReceived {
                self.send_syn_ack(i);
            } else if limit.is_some() {
                // Everything sent after the lost segment is suspect: recover up to here.
                // SACK information is forgotten, since a receiver may renege on it (RFC
                // 2018 §8).
                c.flags.insert(ConnFlags::RECOVERY);
                c.recover = c.snd_nxt;
                for u in c.unacked.iter_mut() {
                    u.marks = Marks::empty();
                }
                self.core.stats.retransmits_timeout += 1;
                self.retransmit_first(i);
            } else {
                // Persist: a zero-length segment one before SND.UNA makes the peer answer
                // with its current window.
                self.core.stats.window_probes += 1;
                let seq = c.snd_una.wrapping_sub(1);
                self.send_bare(i, seq, Flags::ACK);
            }
        }
    }

    /// Sends the ACKs owed now (at the end of a batch of frames, or when delayed ACKs
    /// expire).
    ///
    /// Inline in its two callers (the interrupt's batch and the timers): measured, 14
    /// instructions less per interrupt for 12 bytes of flash.
    #[inline(always)]
    pub(crate) fn flush_acks(&mut self) {
        // One pass: a connection's corked segment, then its ACK if still owed. The order
        // between connections does not matter: a corked segment already holds its TX
        // buffer, and the ring has a descriptor for every buffer, so another connection's
        // ACK cannot take what it needs.
        for i in 0..self.conns.len() {
            // Corked data carries the ACK (and clears ACK_NOW when it goes).
            self.transmit_corked(i);
            if self
                .conns
                .get(i)
                .is_some_and(|c| c.flags.contains(ConnFlags::ACK_NOW))
            {
                self.send_ack(i);
            }
        }
    }

    /// The earliest timer deadline, for a caller that sleeps between events.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        for c in self.conns.iter().filter(|c| c.state != State::Closed) {
            let mut consider = |t: Instant| {
                if best.is_none_or(|b| b.reached(t) && b != t) {
                    best = Some(t);
                }
            };
            if let Some(t) = c.timer.get() {
                consider(t);
            }
            if c.flags.contains(ConnFlags::ACK_DELAYED) {
                consider(c.ack_at);
            }
            if c.state == State::FinWait2 {
                consider(c.since.plus(self.core.config.fin_wait2_timeout_ms));
            }
        }
        best
    }

    // ------------------------------------------------------------ kept data

    /// Attaches a kept RX buffer (the frame of a `Verdict::Keep`) to its connection.
    /// Returns the buffer if the connection is gone or has no room.
    pub(crate) fn attach_kept(
        &mut self,
        id: ConnId,
        buf: RxBuf,
        offset: usize,
        len: usize,
    ) -> Option<RxBuf> {
        let Some(c) = self.slot_mut(id) else {
            return Some(buf);
        };
        match c.kept.iter_mut().find(|k| k.is_none()) {
            Some(slot) => {
                *slot = Some(Kept {
                    buf,
                    offset: offset as u16,
                    len: len as u16,
                });
                c.kept_len += 1;
                None
            }
            None => Some(buf),
        }
    }

    /// A `Verdict::Append`: `copy` puts `len` bytes into the buffer `id` last kept, at
    /// the offset given (behind its data), and says whether it did; if so they are
    /// counted in. The connection and its last kept buffer are looked up once for both.
    pub(crate) fn append_kept(
        &mut self,
        id: ConnId,
        len: usize,
        copy: impl FnOnce(&RxBuf, usize) -> bool,
    ) -> bool {
        let last = self
            .slot_mut(id)
            .and_then(|c| c.kept.iter_mut().flatten().last());
        let Some(k) = last else {
            return false;
        };
        if !copy(&k.buf, k.offset as usize + k.len as usize) {
            return false;
        }
        k.len += len as u16;
        true
    }

    /// A `Verdict::Keep` whose frame could not be kept: the bytes counted as received
    /// were not, so take them back (the peer will retransmit).
    pub(crate) fn keep_failed(&mut self, id: ConnId, len: usize) {
        if let Some(c) = self.slot_mut(id) {
            c.rcv_nxt = c.rcv_nxt.wrapping_sub(len as u32);
            if seq::lt(c.rcv_adv, c.rcv_nxt) {
                c.rcv_adv = c.rcv_nxt;
            }
            self.core.stats.rx_unaccepted_bytes =
                self.core.stats.rx_unaccepted_bytes.wrapping_add(len as u32);
        }
    }

    /// The oldest kept buffer of connection slot `i` (taken out; give it back with
    /// [`put_back_kept`](Self::put_back_kept) or drop it with [`kept_done`](Self::kept_done)).
    pub(crate) fn take_kept(&mut self, i: usize) -> Option<(ConnId, Kept)> {
        let c = self.conns.get_mut(i)?;
        let k = c.kept.first_mut()?.take()?;
        c.kept_len = c.kept_len.saturating_sub(1);
        Some((
            ConnId {
                index: i as u8,
                generation: c.generation,
            },
            k,
        ))
    }

    /// Puts a partly consumed kept buffer back in front. Returns it if the connection is
    /// gone (the caller releases it).
    pub(crate) fn put_back_kept(&mut self, id: ConnId, k: Kept) -> Option<RxBuf> {
        let Some(c) = self.slot_mut(id) else {
            return Some(k.buf);
        };
        match c.kept.first_mut() {
            Some(slot) if slot.is_none() => {
                *slot = Some(k);
                c.kept_len += 1;
                None
            }
            _ => Some(k.buf),
        }
    }

    /// The front kept buffer was fully consumed (its buffer already released): close the
    /// gap, and announce the window it frees if the peer may be waiting for it.
    pub(crate) fn kept_done(&mut self, id: ConnId) {
        if let Some(c) = self.slot_mut(id) {
            let window = c.rcv_adv.wrapping_sub(c.rcv_nxt);
            conn::first_to_back(&mut c.kept);
            if window < OUR_MSS as u32 {
                c.flags.insert(ConnFlags::ACK_NOW);
            }
        }
        self.rx_spare += 1;
        self.reopen_windows();
    }

    /// A spare RX buffer came free: connections that were shut out (a zero window
    /// advertised for want of spares) get a window update now rather than waiting for
    /// their peer's next zero-window probe.
    fn reopen_windows(&mut self) {
        for j in 0..self.conns.len() {
            let shut = self.conns.get(j).is_some_and(|c| {
                c.state.can_receive()
                    && c.rcv_adv == c.rcv_nxt
                    && !c.flags.contains(ConnFlags::ACK_NOW)
            });
            if shut
                && self.rcv_window(j) > 0
                && let Some(c) = self.conns.get_mut(j)
            {
                c.flags.insert(ConnFlags::ACK_NOW);
            }
        }
    }

    #[inline(always)] // one caller: segment_arrives
    fn schedule_ack(&mut self, i: usize) {
        let delay = self.core.config.ack_delay_ms;
        let now = self.now;
        // Not in a slot the layer above freed while it took the data (an abort from
        // `on_data`): CLOSED, it owes nothing.
        let Some(c) = self.conns.get_mut(i).filter(|c| c.state != State::Closed) else {
            return;
        };
        if c.ack_sent == c.rcv_nxt {
            // A reply already carried this ACK.
            return;
        }
        if delay == 0 || c.flags.contains(ConnFlags::ACK_DELAYED) {
            // Every second segment, or no delay configured: at the end of this batch.
            c.flags.insert(ConnFlags::ACK_NOW);
        } else {
            c.flags.insert(ConnFlags::ACK_DELAYED);
            c.ack_at = now.plus(delay);
        }
    }
}

/// A header without options.
fn header(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: Flags,
    window: u16,
) -> SegmentHeader {
    SegmentHeader {
        src_port,
        dst_port,
        seq,
        ack,
        flags,
        window,
        mss: None,
        sack_permitted: false,
    }
}

/// Builds Ethernet, IPv4 and TCP headers around a payload already at `DATA_OFFSET` (or
/// nothing, for control segments), in the first `len` bytes of the TX buffer's frame
/// area `buf`.
///
/// The callers pass the buffer as they got it, with no closure to cut it to length: the
/// compiler made such a closure a function of its own in some callers.
fn build(
    buf: &mut [u8],
    len: usize,
    link: &Link,
    dst_mac: &[u8; 6],
    dst_ip: [u8; 4],
    hdr: &SegmentHeader,
    ip_id: &mut u16,
) -> Option<()> {
    let frame = buf.get_mut(..len)?;
    let ip = ethernet::emit(frame, *dst_mac, link.mac, ethernet::ETHERTYPE_IPV4)?;
    let tcp_len = ip.len().checked_sub(ipv4::HEADER_LEN)?;
    *ip_id = ip_id.wrapping_add(1);
    let seg = ipv4::emit(
        ip,
        link.ip.address,
        dst_ip,
        ipv4::PROTO_TCP,
        tcp_len,
        *ip_id,
    )?;
    segment::emit(seg, hdr, link.ip.address, dst_ip)
}

/// [`build`] for a data segment of connection `c` from `seq` (ACK and PSH, the current
/// acknowledgment, `window`): the one description of a data segment's headers, for a
/// corked segment and one sent at once.
#[allow(clippy::too_many_arguments)] // inlined at its two callers
#[inline(always)]
fn build_data(
    buf: &mut [u8],
    len: usize,
    c: &Conn,
    seq: u32,
    window: u16,
    port: u16,
    link: &Link,
    ip_id: &mut u16,
) -> Option<()> {
    let hdr = SegmentHeader {
        src_port: port,
        dst_port: c.remote_port,
        seq,
        ack: c.rcv_nxt,
        flags: Flags::ACK | Flags::PSH,
        window,
        mss: None,
        sack_permitted: false,
    };
    build(buf, len, link, &c.remote_mac, c.remote_ip, &hdr, ip_id)
}

/// Rewrites the ACK and window fields of a retained data segment, adjusting its checksum
/// for the changed words (RFC 1624) instead of reading the payload again. The header's
/// words are read and written whole, one unaligned access each (as `segment::emit`
/// writes them): the acknowledgment number; data offset, flags and window; checksum
/// and urgent pointer.
fn patch_ack_window(frame: &mut [u8], ack: u32, window: u16) {
    let Some(h) = frame.get_mut(TCP_AT..TCP_AT + segment::HEADER_LEN) else {
        return;
    };
    let ([_, _, ack_word, control, check], []) = h.as_chunks_mut::<4>() else {
        return;
    };
    let old_ack = u32::from_be_bytes(*ack_word);
    let (old_control, old_check) = (u32::from_be_bytes(*control), u32::from_be_bytes(*check));
    let sum = adjust_all(
        (old_check >> 16) as u16,
        [
            ((old_ack >> 16) as u16, (ack >> 16) as u16),
            (old_ack as u16, ack as u16),
            (old_control as u16, window),
        ],
    );
    *ack_word = ack.to_be_bytes();
    *control = (old_control & 0xFFFF_0000 | u32::from(window)).to_be_bytes();
    *check = (u32::from(sum) << 16 | old_check & 0xFFFF).to_be_bytes();
}

/// The duplicate ACKs (or SACKed segments above a hole) that mean a segment was lost,
/// with `outstanding` segments in flight: three (RFC 5681 §3.2), or one less than the
/// segments outstanding when fewer than four are (early retransmit, RFC 5827), at least
/// one. As one clamp rather than a test of which rule applies.
fn loss_threshold(outstanding: usize) -> u8 {
    outstanding.saturating_sub(1).clamp(1, 3) as u8
}

/// Whether a connection in `state` holds a receive window (a SYN-ACK's counts too).
fn receives(state: State) -> bool {
    state.can_receive() || state == State::SynReceived
}

/// Segments' worth of window a connection was promised and has not received yet.
#[allow(clippy::manual_div_ceil)] // see below: `div_ceil` costs a remainder test
fn promised_segments(c: &Conn) -> u32 {
    if !seq::lt(c.rcv_nxt, c.rcv_adv) {
        return 0;
    }
    // At most 2^31 (`lt` above), so adding MSS - 1 cannot wrap: a division by a constant
    // (a multiply-high) and no remainder test, where `div_ceil` makes both.
    (c.rcv_adv.wrapping_sub(c.rcv_nxt) + (OUR_MSS as u32 - 1)) / OUR_MSS as u32
}
