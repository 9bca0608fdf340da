//! The transmission control block of one connection (RFC 9293 §3.3.1), kept small: a
//! server never opens connections, so there is no SYN-SENT, and sent data lives in the
//! retained TX buffers themselves, not in a copy.

use super::DATA_OFFSET;
use super::rtt::Rtt;
use crate::mac::{RxBuf, TxBuf};
use crate::time::{Deadline, Instant};
use bitflags::bitflags;

/// Retained TX segments a connection can hold at most (its send window in segments).
pub const MAX_TX_SEGMENTS: usize = 4;
/// Received segments a connection can keep in place at most (its receive window in
/// segments, when the layer above cannot consume data at once).
pub const MAX_KEPT: usize = 4;

/// Connection states (RFC 9293 §3.3.2), server side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The slot is free.
    Closed,
    /// SYN received, SYN-ACK sent.
    SynReceived,
    /// Open.
    Established,
    /// We closed; our FIN is not acknowledged yet.
    FinWait1,
    /// We closed and our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// Both closed; waiting out delayed segments.
    TimeWait,
    /// The peer closed; we may still send.
    CloseWait,
    /// The peer closed, then we did; waiting for the ACK of our FIN.
    LastAck,
}

impl State {
    /// Whether the connection is synchronized (past the handshake, not free).
    pub fn synchronized(self) -> bool {
        !matches!(self, State::Closed | State::SynReceived)
    }

    /// Whether we may still send data.
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// Whether received data is still delivered.
    pub fn can_receive(self) -> bool {
        matches!(self, State::Established | State::FinWait1 | State::FinWait2)
    }
}

bitflags! {
    /// Per-connection flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ConnFlags: u16 {
        /// An ACK must go out at the next flush.
        const ACK_NOW = 1 << 0;
        /// An ACK is owed; it may wait until `ack_at` for a reply to carry it.
        const ACK_DELAYED = 1 << 1;
        /// The layer above closed; our FIN goes out once nothing else is queued.
        const FIN_QUEUED = 1 << 2;
        /// Our FIN has been sent, at `snd_nxt - 1` (nothing follows it: see
        /// [`Conn::fin_seq`]).
        const FIN_SENT = 1 << 3;
        /// An RTT sample is being timed (`timed_seq`, `timed_at`).
        const TIMING = 1 << 4;
        /// The layer above was refused a send; tell it when it may write.
        const WANT_WRITE = 1 << 5;
        /// The connection was opened by a SYN cookie (no SYN-RECEIVED state).
        const FROM_COOKIE = 1 << 6;
        /// Loss recovery in progress until `recover` is acknowledged (RFC 6582).
        const RECOVERY = 1 << 7;
        /// The peer offered SACK (RFC 2018) and we accepted: its SACK blocks are used.
        const SACK_OK = 1 << 8;
    }
}

bitflags! {
    /// What loss recovery learned of a retained segment.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Marks: u8 {
        /// The peer reported it received this segment (a SACK block covers it).
        const SACKED = 1 << 0;
        /// Retransmitted during the current loss recovery.
        const RESENT = 1 << 1;
    }
}

/// A data segment waiting for its acknowledgment, in its retained TX buffer: 8 bytes
/// (its frame length is not stored: a data segment's headers are always
/// [`DATA_OFFSET`] bytes).
#[derive(Debug)]
pub struct Unacked {
    /// Sequence number of its first byte.
    pub seq: u32,
    /// Payload bytes.
    pub len: u16,
    /// The retained buffer.
    pub buf: TxBuf,
    /// SACKed, resent.
    pub marks: Marks,
}

impl Unacked {
    /// A segment of `len` payload bytes from `seq`, just written into `buf`, neither
    /// SACKed nor resent yet.
    pub(crate) fn new(seq: u32, len: usize, buf: TxBuf) -> Unacked {
        Unacked {
            seq,
            len: len as u16,
            buf,
            marks: Marks::empty(),
        }
    }

    /// The length of its frame in the buffer: headers and payload.
    #[inline(always)]
    pub(crate) fn frame_len(&self) -> usize {
        DATA_OFFSET + self.len as usize
    }
}

/// Received data kept in place because the layer above did not consume it yet.
#[derive(Debug)]
pub struct Kept {
    /// The RX buffer holding the frame.
    pub buf: RxBuf,
    /// Offset of the first unconsumed byte in the buffer.
    pub offset: u16,
    /// Unconsumed bytes.
    pub len: u16,
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    pub(crate) state: State,
    /// Incremented whenever the slot is reused, so stale handles are refused.
    pub(crate) generation: u8,
    pub(crate) flags: ConnFlags,
    pub(crate) retries: u8,
    pub(crate) dup_acks: u8,
    pub(crate) remote_ip: [u8; 4],
    pub(crate) remote_port: u16,
    pub(crate) remote_mac: [u8; 6],
    /// In SYN-RECEIVED our SYN is the one unacknowledged sequence number, so `snd_una`
    /// is the ISS: no field of its own.
    pub(crate) snd_una: u32,
    pub(crate) snd_nxt: u32,
    pub(crate) snd_wnd: u16,
    pub(crate) snd_wl1: u32,
    pub(crate) snd_wl2: u32,
    pub(crate) snd_mss: u16,
    pub(crate) recover: u32,
    pub(crate) rcv_nxt: u32,
    /// The acknowledgment number last sent.
    pub(crate) ack_sent: u32,
    /// Right edge of the receive window last advertised (never moved left).
    pub(crate) rcv_adv: u32,
    pub(crate) rtt: Rtt,
    pub(crate) timed_seq: u32,
    pub(crate) timed_at: Instant,
    /// Retransmission, persist, SYN-ACK or TIME-WAIT deadline, by state.
    pub(crate) timer: Deadline,
    pub(crate) ack_at: Instant,
    /// When the connection entered its current state (eviction order).
    pub(crate) since: Instant,
    /// Unacknowledged data segments, oldest (lowest sequence) first; acknowledged ones
    /// leave at the front.
    pub(crate) unacked: heapless::Vec<Unacked, MAX_TX_SEGMENTS>,
    /// The newest unacked segment is still being filled (not transmitted yet).
    pub(crate) corked: bool,
    pub(crate) kept: [Option<Kept>; MAX_KEPT],
    /// How many entries of `kept` hold a buffer, counted as they come and go: the
    /// receive window asks it of every connection each time it is computed.
    pub(crate) kept_len: u8,
}

impl Conn {
    /// The next sequence number to send as far as the peer can know: `snd_nxt` less the
    /// corked data (counted in `snd_nxt` but not on the wire yet).
    pub(crate) fn sent_nxt(&self) -> u32 {
        match self
            .corked_index()
            .and_then(|k| self.unacked.get(k as usize))
        {
            Some(u) => u.seq,
            None => self.snd_nxt,
        }
    }

    /// Where the corked segment is in `unacked`: the newest, last entry.
    pub(crate) fn corked_index(&self) -> Option<u8> {
        if !self.corked {
            return None;
        }
        self.unacked.len().checked_sub(1).map(|k| k as u8)
    }

    /// A free slot: all zeros. Its MSS and RTO are never read ([`TcpApi::open`] sets
    /// both), and an all-zero slot is set with a `memset` where one with an MSS of 536
    /// and an RTO of 1 s was copied from a 160-byte image in flash.
    ///
    /// [`TcpApi::open`]: super::TcpApi::open
    pub const fn new() -> Conn {
        Conn {
            state: State::Closed,
            generation: 0,
            flags: ConnFlags::empty(),
            retries: 0,
            dup_acks: 0,
            remote_ip: [0; 4],
            remote_port: 0,
            remote_mac: [0; 6],
            snd_una: 0,
            snd_nxt: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_mss: 0,
            recover: 0,
            rcv_nxt: 0,
            ack_sent: 0,
            rcv_adv: 0,
            rtt: Rtt::new(0),
            timed_seq: 0,
            timed_at: Instant(0),
            timer: Deadline::NONE,
            ack_at: Instant(0),
            since: Instant(0),
            unacked: heapless::Vec::new(),
            corked: false,
            kept: [const { None }; MAX_KEPT],
            kept_len: 0,
        }
    }

    /// Unacknowledged data segments held.
    pub(crate) fn unacked_count(&self) -> usize {
        self.unacked.len()
    }

    /// Kept receive buffers held.
    pub(crate) fn kept_count(&self) -> usize {
        debug_assert_eq!(
            self.kept_len as usize,
            self.kept.iter().filter(|k| k.is_some()).count()
        );
        self.kept_len as usize
    }

    /// The sequence number of our FIN, once sent (`FIN_SENT`): the last one used, since
    /// nothing is sent after it (RFC 9293 §3.10.4: no SEND after CLOSE).
    pub(crate) fn fin_seq(&self) -> u32 {
        self.snd_nxt.wrapping_sub(1)
    }

    /// Bytes sent and not yet acknowledged (FIN included).
    pub(crate) fn in_flight(&self) -> u32 {
        self.snd_nxt.wrapping_sub(self.snd_una)
    }

    /// Whether the peer identified by its address and port owns this slot.
    pub(crate) fn is(&self, ip: [u8; 4], port: u16) -> bool {
        self.state != State::Closed && self.remote_port == port && self.remote_ip == ip
    }
}

impl Default for Conn {
    fn default() -> Self {
        Conn::new()
    }
}

/// Moves the first entry to the back and every other one place forward (a
/// `rotate_left(1)`), one swap at a time: for the few entries here that is shorter and
/// quicker than the `memmove` call `rotate_left` and `Vec::remove` make, and keeps
/// `memmove` out of the image.
pub(crate) fn first_to_back<T>(entries: &mut [T]) {
    let mut slots = entries.iter_mut();
    let Some(mut prev) = slots.next() else {
        return;
    };
    for next in slots {
        core::mem::swap(prev, next);
        prev = next;
    }
}

#[cfg(test)]
mod tests {
    use super::first_to_back;

    #[test]
    fn first_to_back_is_rotate_left_by_one() {
        for n in 0..6 {
            let mut got: heapless::Vec<u8, 6> = (0..n).collect();
            let mut want = got.clone();
            want.rotate_left(usize::from(n > 0));
            first_to_back(&mut got);
            assert_eq!(got, want, "{n} entries");
        }
    }
}
