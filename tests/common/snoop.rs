//! A station that wraps the smoltcp [`PeerHost`] and sees every frame on the peer's end
//! of the wire: it records what the board sends (per TCP port: the last sequence and
//! acknowledgment numbers, RSTs, pure ACKs), injects raw frames (spoofed segments), can
//! damage frames on their way to the board so that the board's MAC sees a CRC error, and
//! hands frames addressed to a second Ethernet address to a raw host written in the test
//! (a swarm of hand-made TCP clients, cheap enough to be counted in thousands).
//!
//! The host is attached to the wrapper through a private zero-latency wire, so it sees
//! the frames exactly when it would have without the wrapper.
#![allow(dead_code)]

use mzw1_sim::crc::append_fcs;
use mzw1_sim::testbed::Station;
use mzw1_sim::{End, PeerHost, Wire, WireConfig};
use std::collections::BTreeMap;

/// A host in the test that receives the frames sent to its Ethernet address.
pub trait RawHost {
    /// Its Ethernet address.
    fn mac(&self) -> [u8; 6];
    /// A frame for it (with FCS) arrived at `now_ns`; frames to send go in `out`
    /// (without FCS; the wrapper pads them and appends it).
    fn receive(&mut self, now_ns: u64, frame: &[u8], out: &mut Vec<Vec<u8>>);
    /// Timers: called on every poll.
    fn poll(&mut self, now_ns: u64, out: &mut Vec<Vec<u8>>);
    /// When it next needs [`RawHost::poll`].
    fn poll_at(&self) -> Option<u64>;
}

/// No raw host.
pub struct NoRaw;

impl RawHost for NoRaw {
    fn mac(&self) -> [u8; 6] {
        [0xFF; 6]
    }
    fn receive(&mut self, _: u64, _: &[u8], _: &mut Vec<Vec<u8>>) {}
    fn poll(&mut self, _: u64, _: &mut Vec<Vec<u8>>) {}
    fn poll_at(&self) -> Option<u64> {
        None
    }
}

/// A TCP segment's header fields, as seen on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSeen {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: usize,
}

/// What the board sent to one TCP port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortLog {
    /// The last segment.
    pub last: TcpSeen,
    /// Segments.
    pub segments: u64,
    /// Segments with neither payload nor SYN, FIN or RST.
    pub pure_acks: u64,
    /// RSTs.
    pub rsts: u64,
    /// SYN-ACKs.
    pub syn_acks: u64,
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Parses the TCP header of an Ethernet frame (FCS or not), if it holds IPv4 TCP.
pub fn tcp_of(frame: &[u8]) -> Option<([u8; 4], [u8; 4], TcpSeen)> {
    if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = (ip[0] & 0x0F) as usize * 4;
    if ip[9] != 6 || ip.len() < ihl + 20 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let t = &ip[ihl..];
    let doff = (t[12] >> 4) as usize * 4;
    let seen = TcpSeen {
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: t[13],
        window: u16::from_be_bytes([t[14], t[15]]),
        payload: total.saturating_sub(ihl + doff),
    };
    Some((
        ip[12..16].try_into().unwrap(),
        ip[16..20].try_into().unwrap(),
        seen,
    ))
}

/// The payload of an IPv4 TCP frame (FCS or not: the IPv4 total length decides).
pub fn tcp_payload(frame: &[u8]) -> &[u8] {
    let Some((_, _, t)) = tcp_of(frame) else {
        return &[];
    };
    let ip = &frame[14..];
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let start = total - t.payload;
    ip.get(start..total).unwrap_or_default()
}

/// The wrapper station.
pub struct Snoop<R: RawHost = NoRaw> {
    /// The smoltcp host.
    pub host: PeerHost,
    /// The raw host.
    pub raw: R,
    link: Wire,
    /// What the board sent to each TCP port of the smoltcp host.
    pub board: BTreeMap<u16, PortLog>,
    /// Every segment the board sent to the smoltcp host, when `logging`.
    pub log: Vec<(u64, TcpSeen)>,
    pub logging: bool,
    /// The next frames of at least `damage_min_len` bytes from the smoltcp host get one
    /// bit flipped after their FCS was computed: the board's MAC sees a CRC error.
    pub damage_next: u32,
    pub damage_min_len: usize,
    /// Frames damaged so far.
    pub damaged: u64,
    injected: Vec<Vec<u8>>,
    flips: u64,
}

impl<R: RawHost> Snoop<R> {
    pub fn new(host: PeerHost, raw: R) -> Snoop<R> {
        Snoop {
            host,
            raw,
            link: Wire::new(WireConfig {
                latency_ns: 0,
                bit_rate: 0,
                ..WireConfig::default()
            }),
            board: BTreeMap::new(),
            log: Vec::new(),
            logging: false,
            damage_next: 0,
            damage_min_len: 0,
            damaged: 0,
            injected: Vec::new(),
            flips: 0,
        }
    }

    /// Sends a raw frame (without FCS) to the board on the next poll.
    pub fn inject(&mut self, frame: Vec<u8>) {
        self.injected.push(frame);
    }

    /// What the board sent to `port` so far.
    pub fn port(&self, port: u16) -> PortLog {
        self.board.get(&port).copied().unwrap_or_default()
    }

    fn record(&mut self, now_ns: u64, frame: &[u8]) {
        let Some((_, _, t)) = tcp_of(frame) else {
            return;
        };
        let e = self.board.entry(t.dst_port).or_default();
        e.last = t;
        e.segments += 1;
        if t.flags & RST != 0 {
            e.rsts += 1;
        } else if t.flags & (SYN | ACK) == SYN | ACK {
            e.syn_acks += 1;
        } else if t.payload == 0 && t.flags & (SYN | FIN) == 0 {
            e.pure_acks += 1;
        }
        if self.logging {
            self.log.push((now_ns, t));
        }
    }
}

fn to_wire(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    append_fcs(&mut frame);
    frame
}

impl<R: RawHost> Station for Snoop<R> {
    fn end(&self) -> End {
        End::Peer
    }

    fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        let mut raw_out = Vec::new();
        while let Some(frame) = wire.receive(End::Peer, now_ns) {
            if frame[..6] == self.raw.mac() {
                self.raw.receive(now_ns, &frame, &mut raw_out);
            } else {
                self.record(now_ns, &frame);
                self.link.send(End::Board, now_ns, frame);
            }
        }
        self.raw.poll(now_ns, &mut raw_out);
        self.host.poll(now_ns, &mut self.link);
        while let Some(mut frame) = self.link.receive(End::Board, now_ns) {
            if self.damage_next > 0 && frame.len() >= self.damage_min_len {
                self.damage_next -= 1;
                self.damaged += 1;
                // A bit in the payload area, the FCS left as it was.
                self.flips += 1;
                let at = 14 + (self.flips as usize * 37) % (frame.len() - 18);
                frame[at] ^= 0x08;
            }
            wire.send(End::Peer, now_ns, frame);
        }
        for f in self.injected.drain(..).chain(raw_out) {
            wire.send(End::Peer, now_ns, to_wire(f));
        }
    }

    fn poll_at(&mut self, now_ns: u64) -> Option<u64> {
        let soon = (now_ns / 1_000 + 1) * 1_000;
        if !self.injected.is_empty() {
            return Some(soon);
        }
        [
            self.host.poll_at(now_ns),
            self.raw.poll_at().map(|t| t.max(soon)),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Internet checksum over big-endian pairs, folded.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut s: u32 = 0;
    for p in parts {
        for c in p.chunks(2) {
            s += ((c[0] as u32) << 8) | c.get(1).copied().unwrap_or(0) as u32;
        }
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

/// A TCP segment to build.
#[derive(Clone, Debug)]
pub struct Segment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Segment {
    pub fn new(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: u8) -> Segment {
        Segment {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window: 65535,
            options: Vec::new(),
            payload: Vec::new(),
        }
    }

    pub fn data(mut self, d: &[u8]) -> Segment {
        self.payload = d.to_vec();
        self
    }

    pub fn mss(mut self, mss: u16) -> Segment {
        self.options.extend_from_slice(&[2, 4]);
        self.options.extend_from_slice(&mss.to_be_bytes());
        self
    }

    /// The TCP bytes, checksummed for `src` → `dst`.
    pub fn bytes(&self, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut t = Vec::with_capacity(hlen + self.payload.len());
        t.extend_from_slice(&self.src_port.to_be_bytes());
        t.extend_from_slice(&self.dst_port.to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.push(((hlen / 4) as u8) << 4);
        t.push(self.flags);
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(&self.options);
        t.extend_from_slice(&self.payload);
        let len = (t.len() as u16).to_be_bytes();
        let c = checksum(&[&src, &dst, &[0, 6], &len, &t]);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }

    /// The whole Ethernet frame (without FCS).
    pub fn frame(&self, src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        ipv4_frame(src_mac, dst_mac, src, dst, 6, &self.bytes(src, dst))
    }
}

/// An IPv4 packet in an Ethernet frame (without FCS).
pub fn ipv4_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + body.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = ((20 + body.len()) as u16).to_be_bytes();
    let mut ip = vec![
        0x45, 0, total[0], total[1], 0x12, 0x34, 0x40, 0, 64, proto, 0, 0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(body);
    f
}
