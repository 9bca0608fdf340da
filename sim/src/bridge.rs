//! The 127.0.0.1 bridge: ordinary programs reach the firmware through the kernel.
//!
//! A kernel listening socket accepts connections; each one is relayed through its own
//! TCP connection from a smoltcp host on the simulated Ethernet to the firmware's port, so
//! every byte a browser or `curl` sends crosses the firmware's MAC driver, IPv4 and TCP.
//! The bridge is a real-time [`Station`]: the bench follows the wall clock and waits on
//! the kernel sockets between events.

use crate::peer::{PeerHost, SocketHandle, TcpState};
use crate::testbed::Station;
use crate::wire::{End, Wire};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Bytes the smoltcp side buffers per connection, each way.
const SOCKET_BUFFER: usize = 256 * 1024;
/// Bytes read from or written to the kernel per step and connection.
const CHUNK: usize = 64 * 1024;
/// Bytes from the firmware the bridge holds for a kernel client that is not reading.
/// A client may write a whole message before it reads the echo (Autobahn's 16 MiB cases
/// do): the streaming echo on the board would then stall on a closed window, as would any
/// server that does not buffer whole messages. The bridge plays the part of the network
/// and absorbs it, up to this much per connection, so the board is never held up by the
/// host.
const TO_CLIENT_LIMIT: usize = 64 * 1024 * 1024;

/// Bridge counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Kernel connections accepted.
    pub accepted: u64,
    /// Kernel connections finished.
    pub finished: u64,
    /// Bytes relayed towards the firmware.
    pub bytes_to_firmware: u64,
    /// Bytes relayed towards the kernel clients.
    pub bytes_from_firmware: u64,
}

/// One relayed connection.
struct Relay {
    client: SocketAddr,
    stream: TcpStream,
    socket: SocketHandle,
    /// Read from the client, not yet taken by smoltcp.
    to_firmware: Vec<u8>,
    /// From the firmware, not yet written to the client: `to_client[sent_to_client..]`.
    to_client: Vec<u8>,
    sent_to_client: usize,
    client_done: bool,
    fin_sent: bool,
    client_closed: bool,
}

/// The bridge station.
pub struct Bridge {
    listener: TcpListener,
    /// The smoltcp host on the simulated Ethernet.
    pub peer: PeerHost,
    target: ([u8; 4], u16),
    relays: Vec<Relay>,
    /// Counters.
    pub stats: BridgeStats,
}

impl Bridge {
    /// Listens on `addr` and relays to `target` (the firmware's address and port) through
    /// `peer`.
    pub fn bind(addr: SocketAddr, peer: PeerHost, target: ([u8; 4], u16)) -> io::Result<Bridge> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Bridge {
            listener,
            peer,
            target,
            relays: Vec::new(),
            stats: BridgeStats::default(),
        })
    }

    /// The address actually bound (port 0 picks one).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The relayed connections: the kernel client's address, and the port the firmware
    /// sees the connection come from (the smoltcp side's local port).
    pub fn connections(&mut self) -> Vec<(SocketAddr, u16)> {
        let mut out = Vec::with_capacity(self.relays.len());
        for r in &self.relays {
            let port = self
                .peer
                .tcp_socket(r.socket)
                .local_endpoint()
                .map_or(0, |e| e.port);
            out.push((r.client, port));
        }
        out
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, client)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let socket = self
                        .peer
                        .tcp_connect(self.target, SOCKET_BUFFER, SOCKET_BUFFER);
                    // ACK at once: a relay is retired right after its last exchange, and a
                    // delayed final ACK would die with its socket.
                    self.peer.tcp_socket(socket).set_ack_delay(None);
                    self.stats.accepted += 1;
                    self.relays.push(Relay {
                        client,
                        stream,
                        socket,
                        to_firmware: Vec::new(),
                        to_client: Vec::new(),
                        sent_to_client: 0,
                        client_done: false,
                        fin_sent: false,
                        client_closed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    /// Moves bytes both ways for every connection.
    fn relay(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        for r in self.relays.iter_mut() {
            // Client → firmware.
            if r.to_firmware.is_empty() && !r.client_done {
                match r.stream.read(&mut buf) {
                    Ok(0) => r.client_done = true,
                    Ok(n) => r.to_firmware.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => r.client_done = true,
                }
            }
            if !r.to_firmware.is_empty() {
                let n = self.peer.tcp_send(r.socket, &r.to_firmware);
                r.to_firmware.drain(..n);
                self.stats.bytes_to_firmware += n as u64;
            }
            if r.client_done && r.to_firmware.is_empty() && !r.fin_sent {
                self.peer.tcp_close(r.socket);
                r.fin_sent = true;
            }
            // Firmware → client.
            if r.to_client.len() - r.sent_to_client < TO_CLIENT_LIMIT {
                let before = r.to_client.len();
                self.peer.tcp_recv(r.socket, &mut r.to_client);
                self.stats.bytes_from_firmware += (r.to_client.len() - before) as u64;
            }
            while r.sent_to_client < r.to_client.len() && !r.client_closed {
                match r.stream.write(&r.to_client[r.sent_to_client..]) {
                    Ok(0) => break,
                    Ok(n) => r.sent_to_client += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        // The client went away: nothing more can reach it.
                        r.client_closed = true;
                        r.to_client.clear();
                        r.sent_to_client = 0;
                        self.peer.tcp_abort(r.socket);
                    }
                }
            }
            if r.sent_to_client == r.to_client.len() {
                r.to_client.clear();
                r.sent_to_client = 0;
            } else if r.sent_to_client >= CHUNK && r.sent_to_client * 2 >= r.to_client.len() {
                r.to_client.drain(..r.sent_to_client);
                r.sent_to_client = 0;
            }
            // The firmware finished sending: pass the close on to the client.
            let state = self.peer.tcp_state(r.socket);
            let firmware_done = matches!(
                state,
                TcpState::CloseWait
                    | TcpState::LastAck
                    | TcpState::Closed
                    | TcpState::TimeWait
                    | TcpState::Closing
            );
            if firmware_done && r.sent_to_client == r.to_client.len() && !r.client_closed {
                let _ = r.stream.shutdown(std::net::Shutdown::Write);
                r.client_closed = true;
                if !r.fin_sent {
                    // The firmware closed first; answer its FIN once our side is done.
                    if r.client_done || state == TcpState::Closed {
                        self.peer.tcp_close(r.socket);
                        r.fin_sent = true;
                    }
                }
            }
        }
    }

    /// Retires connections whose both halves are finished (after a poll, so their last
    /// ACK has gone out).
    fn retire(&mut self) {
        let peer = &mut self.peer;
        let stats = &mut self.stats;
        self.relays.retain(|r| {
            let state = peer.tcp_state(r.socket);
            let over =
                r.client_closed && (state == TcpState::Closed || state == TcpState::TimeWait);
            if over {
                peer.tcp_remove(r.socket);
                stats.finished += 1;
            }
            !over
        });
    }

    /// Closes every client connection towards the firmware (FIN), for an orderly stop.
    pub fn close_all(&mut self) {
        for r in self.relays.iter_mut() {
            r.client_done = true;
        }
    }

    /// Relayed connections still open.
    pub fn open_connections(&self) -> usize {
        self.relays.len()
    }
}

impl Station for Bridge {
    fn end(&self) -> End {
        End::Peer
    }

    fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        self.accept();
        // Kernel data first, so it rides out with this step's frames.
        self.relay();
        self.peer.poll(now_ns, wire);
        self.relay();
        self.peer.poll(now_ns, wire);
        self.retire();
    }

    fn poll_at(&mut self, now_ns: u64) -> Option<u64> {
        self.peer.poll_at(now_ns)
    }

    fn realtime(&self) -> bool {
        true
    }

    /// Waits for the kernel: a new connection or data from a client, or the timeout.
    fn wait(&mut self, timeout: Duration) {
        let mut fds = Vec::with_capacity(1 + self.relays.len());
        fds.push(libc::pollfd {
            fd: self.listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for r in &self.relays {
            let mut events = 0;
            if r.to_firmware.is_empty() && !r.client_done {
                events |= libc::POLLIN;
            }
            if r.sent_to_client < r.to_client.len() && !r.client_closed {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: r.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }
}
