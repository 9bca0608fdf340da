//! The other end of the wire: a scripted ARP and TCP client that builds the frames the
//! firmware receives and checks the frames it sends back.
//!
//! Written independently of the stacks under test (its own checksums, its own parsing),
//! so it also checks their output: a reply with a bad IPv4 or TCP checksum is not
//! accepted.

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

const ETH_HEADER: usize = 14;
const IP_HEADER: usize = 20;
const TCP_HEADER: usize = 20;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_TCP: u8 = 6;

/// CRC-32 of IEEE 802.3 (the Ethernet FCS), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0xEDB8_8320;
            }
        }
    }
    !crc
}

/// Ones'-complement sum of big-endian 16-bit words, not folded.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [a, b] = c {
            acc += u16::from_be_bytes([*a, *b]) as u32;
        }
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u32) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The internet checksum field value of `data` (0 when verifying data that holds its
/// own correct checksum).
pub fn inet_checksum(data: &[u8], acc: u32) -> u16 {
    !fold(sum16(data, acc))
}

fn pseudo(src: [u8; 4], dst: [u8; 4], len: usize) -> u32 {
    let acc = sum16(&src, 0);
    let acc = sum16(&dst, acc);
    acc + PROTO_TCP as u32 + len as u32
}

/// A station: link and network address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Ethernet address.
    pub mac: [u8; 6],
    /// IPv4 address.
    pub ip: [u8; 4],
}

/// Writes an Ethernet header; returns the rest of `out`.
fn ethernet(out: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Option<&mut [u8]> {
    let (h, rest) = out.split_at_mut_checked(ETH_HEADER)?;
    let (d, h) = h.split_at_mut(6);
    let (s, t) = h.split_at_mut(6);
    d.copy_from_slice(&dst);
    s.copy_from_slice(&src);
    t.copy_from_slice(&ethertype.to_be_bytes());
    Some(rest)
}

/// An ARP request from `from` for `target`; returns the frame length.
pub fn arp_request(from: &Endpoint, target: [u8; 4], out: &mut [u8]) -> Option<usize> {
    let body = ethernet(out, [0xFF; 6], from.mac, ETHERTYPE_ARP)?;
    let arp = body.get_mut(..28)?;
    arp[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp[8..14].copy_from_slice(&from.mac);
    arp[14..18].copy_from_slice(&from.ip);
    arp[18..24].copy_from_slice(&[0; 6]);
    arp[24..28].copy_from_slice(&target);
    Some(ETH_HEADER + 28)
}

/// The sender's Ethernet address if `frame` is an ARP reply for `to` from `ip`.
pub fn parse_arp_reply(frame: &[u8], to: &Endpoint, ip: [u8; 4]) -> Option<[u8; 6]> {
    if frame.get(..6)? != to.mac || frame.get(12..14)? != ETHERTYPE_ARP.to_be_bytes() {
        return None;
    }
    let arp = frame.get(ETH_HEADER..ETH_HEADER + 28)?;
    if arp[..8] != [0, 1, 8, 0, 6, 4, 0, 2] || arp[14..18] != ip || arp[24..28] != to.ip {
        return None;
    }
    let mut mac = [0; 6];
    mac.copy_from_slice(&arp[8..14]);
    Some(mac)
}

/// A TCP segment the firmware sent, parsed and checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Flags (see [`flags`]).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Window.
    pub window: u16,
    /// Payload.
    pub payload: &'a [u8],
}

/// One TCP connection, played from the client side.
#[derive(Clone, Copy, Debug)]
pub struct TcpClient {
    /// This end.
    pub local: Endpoint,
    /// The server.
    pub remote: Endpoint,
    /// Our port.
    pub local_port: u16,
    /// The server's port.
    pub remote_port: u16,
    /// Next sequence number we send.
    pub snd_nxt: u32,
    /// Next sequence number we expect from the server.
    pub rcv_nxt: u32,
    /// The window we advertise.
    pub window: u16,
    ip_id: u16,
}

impl TcpClient {
    /// A client about to connect, with initial sequence number `isn`.
    pub fn new(
        local: Endpoint,
        remote: Endpoint,
        local_port: u16,
        remote_port: u16,
        isn: u32,
    ) -> Self {
        TcpClient {
            local,
            remote,
            local_port,
            remote_port,
            snd_nxt: isn,
            rcv_nxt: 0,
            window: 65535,
            ip_id: 1,
        }
    }

    /// Writes a segment; returns the frame length.
    fn segment(
        &mut self,
        out: &mut [u8],
        fl: u8,
        mss: Option<u16>,
        payload: &[u8],
    ) -> Option<usize> {
        let opt_len = if mss.is_some() { 4 } else { 0 };
        let tcp_len = TCP_HEADER + opt_len + payload.len();
        let ip_len = IP_HEADER + tcp_len;
        let body = ethernet(out, self.remote.mac, self.local.mac, ETHERTYPE_IPV4)?;
        let (ip, rest) = body.split_at_mut_checked(IP_HEADER)?;
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, PROTO_TCP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[12..16].copy_from_slice(&self.local.ip);
        ip[16..20].copy_from_slice(&self.remote.ip);
        let c = inet_checksum(ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);

        let tcp = rest.get_mut(..tcp_len)?;
        tcp.fill(0);
        tcp[0..2].copy_from_slice(&self.local_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.remote_port.to_be_bytes());
        tcp[4..8].copy_from_slice(&self.snd_nxt.to_be_bytes());
        let ack = if fl & flags::ACK != 0 {
            self.rcv_nxt
        } else {
            0
        };
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = (((TCP_HEADER + opt_len) / 4) as u8) << 4;
        tcp[13] = fl;
        tcp[14..16].copy_from_slice(&self.window.to_be_bytes());
        if let Some(m) = mss {
            tcp[20..24].copy_from_slice(&[2, 4, (m >> 8) as u8, m as u8]);
        }
        tcp.get_mut(TCP_HEADER + opt_len..)?
            .copy_from_slice(payload);
        let c = inet_checksum(tcp, pseudo(self.local.ip, self.remote.ip, tcp_len));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        Some(ETH_HEADER + ip_len)
    }

    /// The opening SYN (with MSS 1460).
    pub fn syn(&mut self, out: &mut [u8]) -> Option<usize> {
        let n = self.segment(out, flags::SYN, Some(1460), &[])?;
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        Some(n)
    }

    /// A pure ACK of everything received.
    pub fn ack(&mut self, out: &mut [u8]) -> Option<usize> {
        self.segment(out, flags::ACK, None, &[])
    }

    /// A data segment (PSH | ACK) that also acknowledges everything received.
    pub fn data(&mut self, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = self.segment(out, flags::ACK | flags::PSH, None, payload)?;
        self.snd_nxt = self.snd_nxt.wrapping_add(payload.len() as u32);
        Some(n)
    }

    /// Parses a frame sent to this connection; `None` if it is anything else or any
    /// checksum is wrong.
    pub fn parse<'a>(&self, frame: &'a [u8]) -> Option<Segment<'a>> {
        if frame.get(..6)? != self.local.mac
            || frame.get(6..12)? != self.remote.mac
            || frame.get(12..14)? != ETHERTYPE_IPV4.to_be_bytes()
        {
            return None;
        }
        let ip = frame.get(ETH_HEADER..)?;
        let ihl = (*ip.first()? & 0x0F) as usize * 4;
        let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
        if *ip.first()? >> 4 != 4
            || ihl < IP_HEADER
            || total < ihl + TCP_HEADER
            || *ip.get(9)? != PROTO_TCP
            || inet_checksum(ip.get(..ihl)?, 0) != 0
            || ip.get(12..16)? != self.remote.ip
            || ip.get(16..20)? != self.local.ip
        {
            return None;
        }
        let tcp = ip.get(ihl..total)?;
        if inet_checksum(tcp, pseudo(self.remote.ip, self.local.ip, tcp.len())) != 0 {
            return None;
        }
        let be16 = |i: usize| Some(u16::from_be_bytes([*tcp.get(i)?, *tcp.get(i + 1)?]));
        let be32 = |i: usize| {
            Some(u32::from_be_bytes([
                *tcp.get(i)?,
                *tcp.get(i + 1)?,
                *tcp.get(i + 2)?,
                *tcp.get(i + 3)?,
            ]))
        };
        if be16(0)? != self.remote_port || be16(2)? != self.local_port {
            return None;
        }
        let data_offset = (*tcp.get(12)? >> 4) as usize * 4;
        Some(Segment {
            flags: *tcp.get(13)?,
            seq: be32(4)?,
            ack: be32(8)?,
            window: be16(14)?,
            payload: tcp.get(data_offset..)?,
        })
    }

    /// Takes a SYN-ACK in: true if `frame` is one for our SYN.
    pub fn accept_syn_ack(&mut self, frame: &[u8]) -> bool {
        match self.parse(frame) {
            Some(s)
                if s.flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN | flags::ACK
                    && s.ack == self.snd_nxt =>
            {
                self.rcv_nxt = s.seq.wrapping_add(1);
                true
            }
            _ => false,
        }
    }

    /// Takes a data segment in: its payload if `frame` carries the next bytes of the
    /// server's stream and acknowledges all we sent.
    pub fn accept_data<'a>(&mut self, frame: &'a [u8]) -> Option<&'a [u8]> {
        let s = self.parse(frame)?;
        if s.flags & flags::RST != 0
            || s.seq != self.rcv_nxt
            || s.ack != self.snd_nxt
            || s.payload.is_empty()
        {
            return None;
        }
        self.rcv_nxt = self.rcv_nxt.wrapping_add(s.payload.len() as u32);
        Some(s.payload)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const A: Endpoint = Endpoint {
        mac: [2, 0, 0, 0, 0, 2],
        ip: [192, 168, 7, 10],
    };
    const B: Endpoint = Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: [192, 168, 7, 2],
    };

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn segments_parse_back_from_the_other_side() {
        let mut c = TcpClient::new(A, B, 40000, 80, 1000);
        let mut buf = [0u8; 1600];
        let n = c.syn(&mut buf).unwrap();
        assert_eq!(n, 14 + 20 + 24);
        // The same frames, seen by a client at the other end.
        let s = TcpClient::new(B, A, 80, 40000, 0);
        let seg = s.parse(&buf[..n]).unwrap();
        assert_eq!(seg.flags, flags::SYN);
        assert_eq!(seg.seq, 1000);
        assert!(seg.payload.is_empty());
        c.rcv_nxt = 7;
        let n = c.data(b"hello", &mut buf).unwrap();
        let seg = s.parse(&buf[..n]).unwrap();
        assert_eq!(seg.payload, b"hello");
        assert_eq!((seg.seq, seg.ack), (1001, 7));
        assert_eq!(seg.flags, flags::ACK | flags::PSH);
        // A flipped payload bit breaks the TCP checksum.
        buf[n - 1] ^= 1;
        assert!(s.parse(&buf[..n]).is_none());
    }

    #[test]
    fn echo_and_syn_ack_advance_the_client() {
        let mut c = TcpClient::new(A, B, 40000, 80, 1000);
        let mut server = TcpClient::new(B, A, 80, 40000, 5000);
        let mut buf = [0u8; 1600];
        c.syn(&mut buf).unwrap();
        server.rcv_nxt = 1001;
        let n = server
            .segment(&mut buf, flags::SYN | flags::ACK, Some(1460), &[])
            .unwrap();
        assert!(c.accept_syn_ack(&buf[..n]));
        assert_eq!(c.rcv_nxt, 5001);
        server.snd_nxt = 5001;
        c.data(b"abc", &mut buf).unwrap();
        server.rcv_nxt = 1004;
        let n = server.data(b"abc", &mut buf).unwrap();
        assert_eq!(c.accept_data(&buf[..n]), Some(&b"abc"[..]));
        assert_eq!(c.rcv_nxt, 5004);
        // The same segment again is not the next data.
        assert_eq!(c.accept_data(&buf[..n]), None);
    }

    #[test]
    fn arp_request_and_reply() {
        let mut buf = [0u8; 64];
        let n = arp_request(&A, B.ip, &mut buf).unwrap();
        assert_eq!(n, 42);
        assert_eq!(&buf[..6], &[0xFF; 6]);
        // Turn it into the reply B would send.
        let mut r = [0u8; 42];
        r[..6].copy_from_slice(&A.mac);
        r[6..12].copy_from_slice(&B.mac);
        r[12..14].copy_from_slice(&[8, 6]);
        r[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        r[22..28].copy_from_slice(&B.mac);
        r[28..32].copy_from_slice(&B.ip);
        r[32..38].copy_from_slice(&A.mac);
        r[38..42].copy_from_slice(&A.ip);
        assert_eq!(parse_arp_reply(&r, &A, B.ip), Some(B.mac));
    }
}
