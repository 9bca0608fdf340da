//! A scripted peer for the stack's unit tests: frames are built and parsed here with an
//! encoder independent of the firmware's (its own checksum, its own field layout), and
//! the firmware runs on the simulated board.
#![allow(dead_code)]

use mzw1_sim::crc::append_fcs;
use mzw1_sim::{Board, BoardConfig, Firmware};
use mzw1_wss::mac::{IrqShared, Mac, MacConfig};
use mzw1_wss::net::ipv4::Ipv4Config;
use mzw1_wss::net::tcp::{ConnId, TcpApi, TcpConfig, TcpEvent, TcpHandler};
use mzw1_wss::net::{Interface, Link, NetConfig};
use mzw1_wss::time::Instant;

pub const BOARD_MAC: [u8; 6] = [0x02, 0x04, 0xA3, 0x00, 0x00, 0x01];
pub const BOARD_IP: [u8; 4] = [10, 0, 0, 2];
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x42];
pub const PEER_IP: [u8; 4] = [10, 0, 0, 1];
pub const PORT: u16 = 80;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Plain RFC 1071 sum over big-endian pairs.
pub fn sum(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|p| ((p[0] as u32) << 8) | p.get(1).copied().unwrap_or(0) as u32)
        .sum()
}

pub fn fold(mut s: u32) -> u16 {
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// An IPv4 frame from the peer (with FCS, padded to 60 bytes).
pub fn ipv4_frame(src_ip: [u8; 4], dst_ip: [u8; 4], proto: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BOARD_MAC);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + body.len()) as u16;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&src_ip);
    ip.extend_from_slice(&dst_ip);
    let c = !fold(sum(&ip));
    ip[10] = (c >> 8) as u8;
    ip[11] = c as u8;
    f.extend_from_slice(&ip);
    f.extend_from_slice(body);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    append_fcs(&mut f);
    f
}

/// A TCP segment from the peer's `port`.
#[derive(Clone, Debug)]
pub struct Seg {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Seg {
    pub fn new(src_port: u16, seq: u32, ack: u32, flags: u8) -> Seg {
        Seg {
            src_port,
            dst_port: PORT,
            seq,
            ack,
            flags,
            window: 65535,
            options: vec![],
            payload: vec![],
        }
    }
    pub fn data(mut self, d: &[u8]) -> Seg {
        self.payload = d.to_vec();
        self
    }
    pub fn window(mut self, w: u16) -> Seg {
        self.window = w;
        self
    }
    pub fn mss(mut self, mss: u16) -> Seg {
        self.options
            .extend_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        self
    }
    pub fn to(mut self, port: u16) -> Seg {
        self.dst_port = port;
        self
    }

    pub fn bytes(&self, src_ip: [u8; 4], dst_ip: [u8; 4]) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut t = Vec::new();
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
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src_ip);
        pseudo.extend_from_slice(&dst_ip);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
        let c = !fold(sum(&pseudo) + sum(&t));
        t[16] = (c >> 8) as u8;
        t[17] = c as u8;
        t
    }

    pub fn frame(&self) -> Vec<u8> {
        ipv4_frame(PEER_IP, BOARD_IP, 6, &self.bytes(PEER_IP, BOARD_IP))
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }

    pub fn mss_option(&self) -> Option<u16> {
        let mut o = &self.options[..];
        while let Some(&k) = o.first() {
            match k {
                0 => break,
                1 => o = &o[1..],
                _ => {
                    let l = o[1] as usize;
                    if k == 2 && l == 4 {
                        return Some(u16::from_be_bytes([o[2], o[3]]));
                    }
                    o = &o[l..];
                }
            }
        }
        None
    }
}

/// A frame the board sent, parsed.
#[derive(Clone, Debug)]
pub enum Out {
    Tcp {
        dst_mac: [u8; 6],
        src_ip: [u8; 4],
        dst_ip: [u8; 4],
        seg: Seg,
    },
    Icmp {
        dst_ip: [u8; 4],
        body: Vec<u8>,
    },
    Arp {
        dst_mac: [u8; 6],
        body: Vec<u8>,
    },
    Other(Vec<u8>),
}

/// Parses a transmitted frame (with FCS), checking every checksum on the way.
pub fn parse(frame: &[u8]) -> Out {
    let f = &frame[..frame.len() - 4];
    let dst_mac: [u8; 6] = f[..6].try_into().unwrap();
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    if ethertype == 0x0806 {
        return Out::Arp {
            dst_mac,
            body: f[14..42].to_vec(),
        };
    }
    if ethertype != 0x0800 {
        return Out::Other(f.to_vec());
    }
    let ip = &f[14..];
    assert_eq!(ip[0], 0x45, "20-byte IPv4 header");
    assert_eq!(fold(sum(&ip[..20])), 0xFFFF, "IPv4 header checksum");
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let body = &ip[20..total];
    let src_ip: [u8; 4] = ip[12..16].try_into().unwrap();
    let dst_ip: [u8; 4] = ip[16..20].try_into().unwrap();
    match ip[9] {
        1 => {
            assert_eq!(fold(sum(body)), 0xFFFF, "ICMP checksum");
            Out::Icmp {
                dst_ip,
                body: body.to_vec(),
            }
        }
        6 => {
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&src_ip);
            pseudo.extend_from_slice(&dst_ip);
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(body.len() as u16).to_be_bytes());
            assert_eq!(fold(sum(&pseudo) + sum(body)), 0xFFFF, "TCP checksum");
            let hlen = ((body[12] >> 4) as usize) * 4;
            let seg = Seg {
                src_port: u16::from_be_bytes([body[0], body[1]]),
                dst_port: u16::from_be_bytes([body[2], body[3]]),
                seq: u32::from_be_bytes(body[4..8].try_into().unwrap()),
                ack: u32::from_be_bytes(body[8..12].try_into().unwrap()),
                flags: body[13],
                window: u16::from_be_bytes([body[14], body[15]]),
                options: body[20..hlen].to_vec(),
                payload: body[hlen..].to_vec(),
            };
            Out::Tcp {
                dst_mac,
                src_ip,
                dst_ip,
                seg,
            }
        }
        _ => Out::Other(f.to_vec()),
    }
}

/// What the test handler does with data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Consume everything, echo it back.
    Echo,
    /// Consume everything, reply nothing.
    Sink,
    /// Consume at most this many bytes per call.
    Limit(usize),
    /// Consume everything, then abort the connection (from inside `on_data`).
    Abort,
}

/// Records what the stack tells the layer above.
pub struct Recorder {
    pub mode: Mode,
    pub events: Vec<(ConnId, TcpEvent)>,
    pub data: Vec<u8>,
    pub echo_pending: Vec<u8>,
    pub close_on_peer_close: bool,
}

impl TcpHandler for Recorder {
    fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
        let n = match self.mode {
            Mode::Limit(k) => data.len().min(k),
            _ => data.len(),
        };
        self.data.extend_from_slice(&data[..n]);
        if self.mode == Mode::Abort {
            tcp.abort(conn);
        }
        if self.mode == Mode::Echo {
            let mut off = 0;
            while off < n {
                let rest = &data[off..n];
                match tcp.send(conn, rest.len(), |buf| {
                    let k = buf.len().min(rest.len());
                    buf[..k].copy_from_slice(&rest[..k]);
                    k
                }) {
                    Ok(k) if k > 0 => off += k,
                    _ => break,
                }
            }
            return off;
        }
        n
    }

    fn on_event(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, event: TcpEvent) {
        self.events.push((conn, event));
        if event == TcpEvent::PeerClosed && self.close_on_peer_close {
            tcp.close(conn);
        }
    }
}

pub struct StackFw {
    pub iface: Interface<'static, 4>,
    pub rec: Recorder,
}

impl Firmware for StackFw {
    fn on_interrupt(&mut self, now: Instant) {
        self.iface.on_interrupt(now, &mut self.rec);
    }
    fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.rec);
    }
}

pub struct Rig {
    pub board: Board,
    pub fw: StackFw,
    pub out: Vec<Out>,
}

pub fn tcp_config() -> TcpConfig {
    TcpConfig {
        port: PORT,
        secret: *b"0123456789abcdef",
        ..TcpConfig::default()
    }
}

impl Rig {
    pub fn new() -> Rig {
        Rig::with(tcp_config(), Mode::Sink)
    }

    pub fn with(tcp: TcpConfig, mode: Mode) -> Rig {
        let mut board = Board::new(BoardConfig::default());
        let (dma, window) = board.alloc_dma::<8, 12, 8>();
        let shared: &'static IrqShared = Box::leak(Box::new(IrqShared::new()));
        let mac_cfg = MacConfig {
            mac_address: BOARD_MAC,
            ..MacConfig::default()
        };
        let mac = Mac::new(
            board.peripherals(),
            dma,
            window,
            shared,
            mac_cfg,
            board.now(),
        );
        let ip = Ipv4Config {
            address: BOARD_IP,
            netmask: [255, 255, 255, 0],
            gateway: [10, 0, 0, 254],
        };
        let iface = Interface::new(
            mac,
            NetConfig {
                link: Link { mac: BOARD_MAC, ip },
                tcp,
            },
        );
        let rec = Recorder {
            mode,
            events: vec![],
            data: vec![],
            echo_pending: vec![],
            close_on_peer_close: false,
        };
        let mut rig = Rig {
            board,
            fw: StackFw { iface, rec },
            out: vec![],
        };
        for _ in 0..100 {
            rig.board.advance_ns(1_000_000);
            rig.board.step(&mut rig.fw);
            if rig.fw.iface.mac().link().is_some() {
                break;
            }
        }
        assert!(rig.fw.iface.mac().link().is_some(), "link up");
        rig.collect();
        rig.out.clear();
        rig
    }

    fn collect(&mut self) {
        for f in self.board.take_transmitted() {
            self.out.push(parse(&f));
        }
    }

    /// Delivers a frame, runs the firmware, returns what it sent.
    pub fn send_frame(&mut self, frame: &[u8]) -> Vec<Out> {
        self.board.receive(frame);
        self.board.advance_ns(10_000);
        self.board.step(&mut self.fw);
        self.collect();
        std::mem::take(&mut self.out)
    }

    /// Delivers a segment; returns the TCP segments sent in answer.
    pub fn send(&mut self, seg: Seg) -> Vec<Seg> {
        tcp_only(self.send_frame(&seg.frame()))
    }

    /// Advances board time by `ms`, stepping every millisecond; returns TCP segments sent.
    pub fn wait_ms(&mut self, ms: u64) -> Vec<Seg> {
        let mut out = vec![];
        for _ in 0..ms {
            self.board.advance_ns(1_000_000);
            self.board.step(&mut self.fw);
            self.collect();
            out.extend(tcp_only(std::mem::take(&mut self.out)));
        }
        out
    }

    /// SYN → SYN-ACK → ACK from `port` with initial sequence `isn`; returns the board's ISS.
    pub fn connect(&mut self, port: u16, isn: u32) -> u32 {
        let r = self.send(Seg::new(port, isn, 0, SYN).mss(1460));
        assert_eq!(r.len(), 1, "one SYN-ACK: {r:?}");
        let sa = &r[0];
        assert!(sa.has(SYN | ACK));
        assert_eq!(sa.ack, isn.wrapping_add(1));
        let iss = sa.seq;
        let r = self.send(Seg::new(
            port,
            isn.wrapping_add(1),
            iss.wrapping_add(1),
            ACK,
        ));
        assert!(r.is_empty(), "nothing answers the handshake's ACK: {r:?}");
        iss
    }

    pub fn events(&self) -> Vec<TcpEvent> {
        self.fw.rec.events.iter().map(|e| e.1).collect()
    }

    pub fn conn(&self) -> ConnId {
        self.fw.rec.events.first().expect("a connection").0
    }

    pub fn tcp(&mut self) -> TcpApi<'_, 'static> {
        let now = self.board.now();
        self.fw.iface.tcp(now)
    }

    /// Lets the layer above send `data` on the first connection.
    pub fn app_send(&mut self, data: &[u8]) -> usize {
        let id = self.conn();
        let mut off = 0;
        while off < data.len() {
            let rest = &data[off..];
            match self.tcp().send(id, rest.len(), |b| {
                let k = b.len().min(rest.len());
                b[..k].copy_from_slice(&rest[..k]);
                k
            }) {
                Ok(k) if k > 0 => off += k,
                _ => break,
            }
        }
        self.board.advance_ns(10_000);
        self.board.step(&mut self.fw);
        self.collect();
        off
    }

    pub fn take_out(&mut self) -> Vec<Seg> {
        self.collect();
        tcp_only(std::mem::take(&mut self.out))
    }
}

pub fn tcp_only(out: Vec<Out>) -> Vec<Seg> {
    out.into_iter()
        .filter_map(|o| match o {
            Out::Tcp {
                dst_mac,
                dst_ip,
                seg,
                ..
            } => {
                assert_eq!(dst_mac, PEER_MAC);
                assert_eq!(dst_ip, PEER_IP);
                Some(seg)
            }
            _ => None,
        })
        .collect()
}
