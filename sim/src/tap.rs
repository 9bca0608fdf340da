//! The Linux kernel as the peer: one end of the [`Wire`] attached to a TAP device.
//!
//! - [`TapDevice`]: a TAP interface opened through `/dev/net/tun` (`IFF_TAP | IFF_NO_PI`,
//!   non-blocking), one Ethernet frame (without FCS) per read or write.
//! - [`TapPort`]: a [`Station`] that pumps frames between a TAP device and its end of the
//!   wire, padding and appending the FCS towards the wire, checking and stripping it
//!   towards the kernel. The wire's impairments apply as usual, so loss, duplication,
//!   reordering, corruption and delay work against the kernel too (this kernel has no
//!   netem).
//! - [`NetNs`]: a throw-away network namespace holding a TAP device with an address, so
//!   kernel traffic stays inside it; the current process opens the TAP and creates
//!   kernel sockets in it from a thread that has joined the namespace (`setns`).
//!
//! All of this needs root (CAP_NET_ADMIN), `/dev/net/tun` and iproute2's `ip`;
//! [`NetNs::available`] says which is missing, so tests can skip with the reason.

use crate::peer::{from_wire, to_wire};
use crate::testbed::Station;
use crate::wire::{End, Wire};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54CA;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
/// Largest frame we read: a 1514-byte frame plus room for a VLAN tag, with margin.
const READ_BUF: usize = 2048;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, in a 40-byte union.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A TAP network interface opened by this process.
#[derive(Debug)]
pub struct TapDevice {
    fd: OwnedFd,
    name: String,
}

impl TapDevice {
    /// Opens (or creates, if there is none by that name in the calling thread's network
    /// namespace) the TAP interface `ifname`, non-blocking, without packet information.
    /// A persistent interface made by `ip tuntap add` is attached to as it is.
    pub fn open(ifname: &str) -> io::Result<TapDevice> {
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name `{ifname}` must be 1 to 15 bytes"),
            ));
        }
        let path = c"/dev/net/tun";
        // SAFETY: a valid NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("open /dev/net/tun: {e}")));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        // SAFETY: TUNSETIFF reads a `struct ifreq`, which `IfReq` lays out.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("TUNSETIFF {ifname} (IFF_TAP|IFF_NO_PI): {e}"),
            ));
        }
        Ok(TapDevice {
            fd,
            name: ifname.to_string(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next frame (without FCS) the kernel sent, or `None` if there is none now.
    pub fn recv_frame(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; READ_BUF];
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        buf.truncate(n as usize);
        Ok(Some(buf))
    }

    /// Hands a frame (without FCS) to the kernel as if it arrived on the interface.
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: writes `frame.len()` bytes from `frame`.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TAP took {n} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Waits up to `timeout` for a frame to read; returns whether one is ready.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // Round a sub-millisecond wait up, so waiting never spins.
        let ms = if ms == 0 && !timeout.is_zero() { 1 } else { ms };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(r > 0 && pfd.revents & libc::POLLIN != 0)
    }
}

/// [`TapPort`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames read from the kernel and put on the wire.
    pub from_kernel: u64,
    /// Frames taken from the wire and written to the kernel.
    pub to_kernel: u64,
    /// Frames from the wire dropped for a bad FCS.
    pub bad_fcs: u64,
    /// Frames the kernel refused (write errors).
    pub write_errors: u64,
    /// Read errors other than "nothing to read".
    pub read_errors: u64,
}

/// A [`Station`] that connects a TAP device to one end of the wire (by default
/// [`End::Peer`]): the kernel behind the TAP becomes that end's host. It is real-time:
/// benches that include it follow the wall clock.
#[derive(Debug)]
pub struct TapPort {
    tap: TapDevice,
    end: End,
    /// Counters.
    pub stats: TapStats,
}

impl TapPort {
    /// Attaches `tap` to [`End::Peer`].
    pub fn new(tap: TapDevice) -> TapPort {
        TapPort {
            tap,
            end: End::Peer,
            stats: TapStats::default(),
        }
    }

    /// The same port, on the other `end` of the wire.
    pub fn on_end(mut self, end: End) -> TapPort {
        self.end = end;
        self
    }

    /// The TAP device.
    pub fn device(&self) -> &TapDevice {
        &self.tap
    }

    /// Moves frames both ways: what the kernel sent goes on the wire at `now_ns` (padded,
    /// FCS appended); what the wire delivers by `now_ns` goes to the kernel (FCS checked
    /// and stripped).
    pub fn pump(&mut self, now_ns: u64, wire: &mut Wire) {
        // Bounded, so a chatty kernel cannot starve the other direction.
        for _ in 0..256 {
            match self.tap.recv_frame() {
                Ok(Some(frame)) => {
                    self.stats.from_kernel += 1;
                    wire.send(self.end, now_ns, to_wire(frame));
                }
                Ok(None) => break,
                Err(_) => {
                    self.stats.read_errors += 1;
                    break;
                }
            }
        }
        while let Some(frame) = wire.receive(self.end, now_ns) {
            match from_wire(frame) {
                Some(f) => match self.tap.send_frame(&f) {
                    Ok(()) => self.stats.to_kernel += 1,
                    Err(_) => self.stats.write_errors += 1,
                },
                None => self.stats.bad_fcs += 1,
            }
        }
    }
}

impl Station for TapPort {
    fn end(&self) -> End {
        self.end
    }

    fn poll(&mut self, now_ns: u64, wire: &mut Wire) {
        self.pump(now_ns, wire);
    }

    fn poll_at(&mut self, _now_ns: u64) -> Option<u64> {
        None
    }

    fn realtime(&self) -> bool {
        true
    }

    fn wait(&mut self, timeout: Duration) {
        // An error here shows up again on the next read, where it is counted.
        let _ = self.tap.wait_readable(timeout);
    }
}

static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, turning a failure into an error that shows the command and its
/// output.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running `ip {}`: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Work running on a thread inside a [`NetNs`] (see [`NetNs::spawn`]).
#[derive(Debug)]
pub struct NsTask<T>(std::thread::JoinHandle<io::Result<T>>);

impl<T> NsTask<T> {
    /// Whether it has finished (so [`NsTask::join`] will not block).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Waits for it and returns its result; joining the namespace failing, or the
    /// thread panicking, are errors too.
    pub fn join(self) -> io::Result<T> {
        self.0
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    }
}

/// Runs `f` on a new thread that has joined the network namespace at `ns_path`; kernel
/// sockets `f` creates live in that namespace.
fn in_netns<T: Send + 'static>(
    ns_path: String,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> NsTask<T> {
    NsTask(std::thread::spawn(move || {
        let file = File::open(&ns_path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {ns_path}: {e}")))?;
        // SAFETY: a valid namespace file descriptor; setns only changes this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("setns({ns_path}): {e}")));
        }
        f()
    }))
}

/// A network namespace made for a test, holding one persistent TAP device with an
/// address; deleted on drop.
///
/// The namespace's kernel is the peer: open its TAP with [`NetNs::open_tap`] and put a
/// [`TapPort`] on the wire, then talk to the station on the other end from kernel
/// sockets made in [`NetNs::run`] / [`NetNs::spawn`], or from programs started with
/// [`NetNs::command`].
#[derive(Debug)]
pub struct NetNs {
    name: String,
    tap: String,
    addr: [u8; 4],
    prefix_len: u8,
}

impl NetNs {
    /// Whether namespaces with TAP devices can be made here; the error says what is
    /// missing (no `/dev/net/tun`, not root, no `ip`, namespaces not allowed).
    pub fn available() -> Result<(), String> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err("/dev/net/tun does not exist (no TUN/TAP support)".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: creating namespaces and TAP devices needs root".into());
        }
        match Command::new("ip").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => return Err(format!("`ip -V` failed: {}", o.status)),
            Err(e) => {
                return Err(format!(
                    "iproute2's `ip` is not usable ({e}); apt-get install iproute2"
                ));
            }
        }
        // A namespace of our own, on a thread that is thrown away afterwards: proves the
        // kernel has network namespaces and lets us make them.
        let probe = std::thread::spawn(|| {
            // SAFETY: unshare only changes this thread, which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
        .join();
        match probe {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("cannot create network namespaces: {e}")),
            Err(_) => return Err("the namespace probe thread panicked".into()),
        }
        match File::options().read(true).write(true).open("/dev/net/tun") {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot open /dev/net/tun: {e}")),
        }
    }

    /// A new namespace (named `mzw1-<pid>-<n>`) with its loopback up and a persistent TAP
    /// device `tap` holding `addr/prefix_len`, up. IPv6 is switched off on the TAP, so
    /// the kernel does not chatter router solicitations onto the wire.
    pub fn create(tap: &str, addr: [u8; 4], prefix_len: u8) -> io::Result<NetNs> {
        let name = format!(
            "mzw1-{}-{}",
            std::process::id(),
            NEXT_NS.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        // From here on, Drop deletes the namespace whatever fails next.
        let ns = NetNs {
            name,
            tap: tap.to_string(),
            addr,
            prefix_len,
        };
        let cidr = format!(
            "{}.{}.{}.{}/{}",
            addr[0], addr[1], addr[2], addr[3], prefix_len
        );
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns.name, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        let sysctl = format!("/proc/sys/net/ipv6/conf/{tap}/disable_ipv6");
        // Best effort: a kernel without IPv6 has no such file, which is fine.
        ns.run(move || {
            let _ = std::fs::write(sysctl, "1");
            Ok(())
        })?;
        ip(&["-n", &ns.name, "addr", "add", &cidr, "dev", tap])?;
        ip(&["-n", &ns.name, "link", "set", tap, "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip -n NAME …` or `ip netns exec NAME …`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The TAP device's name inside the namespace.
    pub fn tap_name(&self) -> &str {
        &self.tap
    }

    /// The kernel's address on the TAP, and its prefix length.
    pub fn addr(&self) -> ([u8; 4], u8) {
        (self.addr, self.prefix_len)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Opens the namespace's TAP device from this process (the descriptor works from
    /// any thread once open). The TAP's carrier comes up with it.
    pub fn open_tap(&self) -> io::Result<TapDevice> {
        let tap = self.tap.clone();
        self.run(move || TapDevice::open(&tap))
    }

    /// Runs `f` on a thread inside the namespace and waits for its result. Do not use
    /// it for anything that needs the wire moving meanwhile (use [`NetNs::spawn`]).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        in_netns(self.path(), f).join()
    }

    /// Starts `f` on a thread inside the namespace, for the caller to drive the wire
    /// until [`NsTask::is_finished`].
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> NsTask<T> {
        in_netns(self.path(), f)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `ip -n NAME ARGS` (for example `["route", "add", …]`).
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Loads an nftables `ruleset` inside the namespace (`nft -f -`), for loss in the
    /// kernel's own path, e.g. `ip daddr 10.200.0.2 numgen random mod 100 < 10 drop` in
    /// an output-hook chain. Write it in nft's file syntax with one statement per line:
    /// nft 1.0.6 rejects a whole table written on one line.
    pub fn nft(&self, ruleset: &str) -> io::Result<()> {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("running nft: {e}")))?;
        child
            .stdin
            .take()
            .expect("stdin was piped")
            .write_all(ruleset.as_bytes())?;
        let out = child.wait_with_output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "nft -f - in {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Starts a ping from the namespace's kernel: `count` ICMP echo requests to `dst`
    /// (sent from a raw socket, so no `ping` program is needed), `interval` apart,
    /// waiting up to `timeout` for each reply. The thread's result has the round-trip
    /// time of each request (`None`: no reply, or a firewall rule refused to send it).
    /// The caller drives the wire meanwhile.
    pub fn spawn_ping(
        &self,
        dst: [u8; 4],
        count: u16,
        interval: Duration,
        timeout: Duration,
    ) -> NsTask<Vec<Option<Duration>>> {
        self.spawn(move || kernel_ping(dst, count, interval, timeout))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// The Internet checksum.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMP echo from a raw socket in the calling thread's namespace.
fn kernel_ping(
    dst: [u8; 4],
    count: u16,
    interval: Duration,
    timeout: Duration,
) -> io::Result<Vec<Option<Duration>>> {
    // SAFETY: plain socket creation; the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("raw ICMP socket: {e}")));
    }
    // SAFETY: a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ident = (std::process::id() as u16) ^ 0x5A5A;
    // SAFETY: an all-zero sockaddr_in is valid; the fields are then set.
    let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    to.sin_family = libc::AF_INET as libc::sa_family_t;
    to.sin_addr.s_addr = u32::from_ne_bytes(dst);
    let mut rtts = Vec::with_capacity(count as usize);
    for seq in 0..count {
        if seq > 0 {
            std::thread::sleep(interval);
        }
        let mut msg = vec![8, 0, 0, 0];
        msg.extend_from_slice(&ident.to_be_bytes());
        msg.extend_from_slice(&seq.to_be_bytes());
        msg.extend((0..56u8).map(|i| i.wrapping_mul(7)));
        let c = inet_checksum(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let sent = Instant::now();
        // SAFETY: `msg` and `to` are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            // EPERM is a firewall rule dropping the request on its way out: a lost
            // request, as `ping` reports it, not a failure of the ping itself.
            if e.raw_os_error() == Some(libc::EPERM) {
                rtts.push(None);
                continue;
            }
            return Err(io::Error::new(e.kind(), format!("sendto: {e}")));
        }
        rtts.push(wait_echo_reply(&fd, dst, ident, seq, sent, timeout)?);
    }
    Ok(rtts)
}

/// Reads the raw socket until the matching echo reply arrives or `timeout` runs out.
fn wait_echo_reply(
    fd: &OwnedFd,
    dst: [u8; 4],
    ident: u16,
    seq: u16,
    sent: Instant,
    timeout: Duration,
) -> io::Result<Option<Duration>> {
    let mut buf = [0u8; 2048];
    loop {
        let left = timeout.saturating_sub(sent.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
        if r <= 0 {
            continue;
        }
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            continue;
        }
        // A raw IPv4 socket delivers the IP header too.
        let pkt = &buf[..n as usize];
        let Some(&vihl) = pkt.first() else { continue };
        let ihl = (vihl & 0x0F) as usize * 4;
        if pkt.len() < ihl + 8 || pkt[12..16] != dst {
            continue;
        }
        let icmp = &pkt[ihl..];
        let (typ, id, sq) = (
            icmp[0],
            u16::from_be_bytes([icmp[4], icmp[5]]),
            u16::from_be_bytes([icmp[6], icmp[7]]),
        );
        if typ == 0 && id == ident && sq == seq && inet_checksum(icmp) == 0 {
            return Ok(Some(sent.elapsed()));
        }
    }
}
