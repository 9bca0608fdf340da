//! `mzw1-sim` as a program: started as a process, talked to only through the kernel, by
//! tungstenite as the WebSocket client.

use mzw1_sim::pcap;
use mzw1_sim::tap::NetNs;
use mzw1_sim::wire::Rng;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const BIN: &str = env!("CARGO_BIN_EXE_mzw1-sim");

/// A running `mzw1-sim`, stopped with SIGINT when dropped.
struct Sim {
    child: Child,
    addr: Option<SocketAddr>,
    output: std::sync::mpsc::Receiver<String>,
}

impl Sim {
    /// Starts the bridge on a free port and waits until it listens.
    fn start(args: &[&str]) -> Sim {
        Sim::spawn(
            Command::new(BIN)
                .args(["--listen", "127.0.0.1:0"])
                .args(args),
            true,
        )
    }

    fn spawn(cmd: &mut Command, bridge: bool) -> Sim {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mzw1-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sim = Sim {
            child,
            addr: None,
            output: rx,
        };
        let want = if bridge { "listening on " } else { "tap " };
        let line = sim.wait_for(want, Duration::from_secs(20));
        if bridge {
            let addr = line
                .trim_start_matches("listening on ")
                .split(',')
                .next()
                .unwrap();
            sim.addr = Some(addr.parse().expect("bound address"));
        }
        sim
    }

    /// Waits for a stdout line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    let mut err = String::new();
                    let _ = self
                        .child
                        .stderr
                        .take()
                        .map(|mut e| e.read_to_string(&mut err));
                    panic!("mzw1-sim never printed `{prefix}`; stderr: {err}");
                }
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr.expect("bridge mode")
    }

    /// SIGINT, then the exit status and the rest of stdout.
    fn stop(mut self) -> (i32, Vec<String>) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < end, "mzw1-sim did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The process has exited, but the reader thread may not have passed on its last
        // lines yet (seen on a loaded machine: "stopped" missing): read until it sees
        // the end of the output and drops its sender.
        let mut rest = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.output.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(_) => break,
            }
        }
        (status.code().unwrap_or(-1), rest)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

type Ws = WebSocket<TcpStream>;

/// Opens a WebSocket to `addr` (`path`) over a kernel TCP connection.
fn connect(addr: SocketAddr, path: &str) -> Result<Ws, tungstenite::Error> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (ws, response) =
        tungstenite::client(format!("ws://{addr}{path}"), s).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking socket"),
        })?;
    assert_eq!(response.status(), 101);
    Ok(ws)
}

/// Sends `data` as binary messages of up to `chunk` bytes on one WebSocket while
/// reading the echo (non-blocking, so neither side waits on the other); then closes with
/// 1000 and expects the server's Close. Returns the echo.
fn echo_messages(addr: SocketAddr, data: &[u8], chunk: usize, limit: Duration) -> Vec<u8> {
    let mut ws = connect(addr, "/echo").expect("handshake");
    ws.get_mut().set_nonblocking(true).unwrap();
    let end = Instant::now() + limit;
    let mut chunks = data.chunks(chunk).peekable();
    let mut got = Vec::with_capacity(data.len());
    let mut closing = false;
    loop {
        assert!(
            Instant::now() < end,
            "echo within {limit:?}: {} of {} bytes",
            got.len(),
            data.len()
        );
        let mut progress = false;
        if let Some(c) = chunks.peek() {
            match ws.write(Message::binary(c.to_vec())) {
                Ok(()) => progress = true,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                    progress = true
                }
                Err(tungstenite::Error::WriteBufferFull(_)) => {}
                Err(e) => panic!("write: {e}"),
            }
            if progress {
                chunks.next();
            }
        } else if got.len() == data.len() && !closing {
            closing = true;
            let bye = CloseFrame {
                code: CloseCode::Normal,
                reason: "done".into(),
            };
            match ws.close(Some(bye)) {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("close: {e}"),
            }
        }
        match ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(tungstenite::Error::ConnectionClosed) if closing => return got,
            Err(e) => panic!("flush: {e}"),
        }
        match ws.read() {
            Ok(Message::Binary(b)) => {
                got.extend_from_slice(&b);
                progress = true;
            }
            Ok(Message::Close(frame)) => {
                assert!(closing, "server closed first: {frame:?}");
                assert_eq!(
                    frame.map(|f| u16::from(f.code)),
                    Some(1000),
                    "close code echoed"
                );
            }
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(tungstenite::Error::ConnectionClosed) if closing => return got,
            Err(e) => panic!("read: {e}"),
        }
        if !progress {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn echo(addr: SocketAddr, data: &[u8], limit: Duration) -> Vec<u8> {
    echo_messages(addr, data, 64 * 1024, limit)
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

#[test]
fn bridge_echoes_10_mb_and_stops_cleanly_on_sigint() {
    let sim = Sim::start(&[]);
    let data = pattern(10_000_000, 1);
    let t = Instant::now();
    let got = echo(sim.addr(), &data, Duration::from_secs(60));
    let secs = t.elapsed().as_secs_f64();
    assert_same(&got, &data, "10 MB through the bridge");
    eprintln!(
        "bridge: 10 MB echoed in {secs:.2} s ({:.1} Mb/s each way)",
        80.0 / secs
    );
    let (code, out) = sim.stop();
    assert_eq!(code, 0, "clean exit on SIGINT: {out:?}");
    assert!(out.iter().any(|l| l == "stopped"), "{out:?}");
}

#[test]
fn eight_concurrent_clients() {
    let sim = Sim::start(&["--clients", "8"]);
    let addr = sim.addr();
    let workers: Vec<_> = (0..8)
        .map(|k| {
            std::thread::spawn(move || {
                let data = pattern(1_000_000, 100 + k);
                let got = echo(addr, &data, Duration::from_secs(60));
                assert_same(&got, &data, &format!("client {k}"));
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client thread");
    }
    assert_eq!(sim.stop().0, 0);
}

#[test]
fn a_ninth_client_is_refused_with_503_and_the_eight_keep_working() {
    let sim = Sim::start(&["--clients", "8"]);
    let addr = sim.addr();
    let mut held: Vec<Ws> = (0..8)
        .map(|k| {
            let mut ws = connect(addr, "/echo").expect("handshake");
            ws.send(Message::text(format!("hello {k}"))).unwrap();
            assert_eq!(ws.read().unwrap(), Message::text(format!("hello {k}")));
            ws
        })
        .collect();
    match connect(addr, "/echo") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("the ninth client: {:?}", other.map(|_| "connected")),
    }
    for (k, ws) in held.iter_mut().enumerate() {
        ws.send(Message::text("still here")).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Message::text("still here"),
            "client {k}"
        );
    }
    // Ctrl-C: every client gets a Close frame, 1001 (going away).
    let (code, out) = sim.stop();
    assert_eq!(code, 0, "{out:?}");
    for (k, ws) in held.iter_mut().enumerate() {
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1001, "client {k}"),
            other => panic!("client {k}: {other:?}"),
        }
    }
}

#[test]
fn impaired_wire_still_delivers_every_byte() {
    // Real time, and the bridge's smoltcp retransmits no sooner than 1 s (its fixed
    // minimum RTO, doubling on repeated loss): a modest size keeps this under a minute.
    // No idle timeout: a back-off stall is not a silent client.
    let impair = "loss=0.1,dup=0.05,reorder=0.1,corrupt=0.01,seed=3";
    let sim = Sim::start(&["--impair", impair, "--idle-timeout", "0", "--quiet"]);
    let data = pattern(50_000, 2);
    let t = Instant::now();
    let got = echo(sim.addr(), &data, Duration::from_secs(240));
    assert_same(&got, &data, "50 kB through the impaired wire");
    eprintln!(
        "impaired bridge: 50 kB echoed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(sim.stop().0, 0);
}

#[test]
fn pcap_file_holds_the_session() {
    let path = std::env::temp_dir().join(format!("mzw1-sim-{}.pcap", std::process::id()));
    let sim = Sim::start(&["--pcap", path.to_str().unwrap(), "--quiet"]);
    let got = echo(sim.addr(), b"captured payload", Duration::from_secs(10));
    assert_eq!(got, b"captured payload");
    // The chat page, over plain HTTP.
    let mut http = TcpStream::connect(sim.addr()).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: board\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    http.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n") && page.contains("new WebSocket("),
        "{page}"
    );
    assert_eq!(sim.stop().0, 0);
    let frames = pcap::read(&path).expect("a readable pcap file");
    std::fs::remove_file(&path).ok();
    let arp = frames
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06])
        .count();
    let tcp: Vec<&Vec<u8>> = frames
        .iter()
        .map(|(_, f)| f)
        .filter(|f| f[12..14] == [0x08, 0x00] && f[23] == 6)
        .collect();
    let syn_to_80 = tcp
        .iter()
        .any(|f| f[36..38] == [0, 80] && f[47] & 0x02 != 0);
    let carries = |needle: &[u8]| {
        tcp.iter()
            .filter(|f| f.windows(needle.len()).any(|w| w == needle))
            .count()
    };
    assert!(arp >= 1, "ARP on the wire");
    assert!(syn_to_80, "the SYN to port 80");
    assert_eq!(
        carries(b"Upgrade: websocket"),
        2,
        "the upgrade request and the 101"
    );
    assert_eq!(carries(b"101 Switching Protocols"), 1);
    // The client's frame is masked; the echo is not.
    assert_eq!(carries(b"captured payload"), 1, "the echo, unmasked");
    assert_eq!(carries(b"<title>mzw1-wss chat</title>"), 1, "the page");
    assert!(
        frames.windows(2).all(|w| w[0].0 <= w[1].0),
        "timestamps in order"
    );
    if let Ok(out) = Command::new("tshark").arg("-r").arg("-").output() {
        let _ = out; // tshark presence is checked in sim/tests/wire_pcap.rs
    }
}

#[test]
fn clear_errors_and_exit_codes() {
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown option `--bogus`") && err.contains("usage:"),
        "{err}"
    );

    let out = Command::new(BIN).args(["--clients", "9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clients needs 1-8"));

    let out = Command::new(BIN)
        .args(["--impair", "loss=1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(BIN)
        .args(["--tap", "mzw1-no-such-tap0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot attach to TAP device"));
}

#[test]
fn tap_mode_in_a_namespace() {
    if let Err(why) = NetNs::available() {
        eprintln!("SKIPPED tap_mode_in_a_namespace: {why}");
        return;
    }
    let ns = NetNs::create("tap0", [10, 201, 0, 1], 24).expect("namespace");
    let mut cmd = ns.command(BIN);
    cmd.args([
        "--tap",
        "tap0",
        "--ip",
        "10.201.0.2",
        "--gateway",
        "10.201.0.1",
    ]);
    let sim = Sim::spawn(&mut cmd, false);
    let ping = ns.spawn_ping(
        [10, 201, 0, 2],
        3,
        Duration::from_millis(50),
        Duration::from_secs(2),
    );
    let rtts = ping.join().expect("ping");
    assert!(rtts.iter().all(Option::is_some), "pings answered: {rtts:?}");
    let data = pattern(10_000_000, 4);
    let want = data.clone();
    let client = ns.spawn(move || -> std::io::Result<Vec<u8>> {
        Ok(echo(
            SocketAddr::from(([10, 201, 0, 2], 80)),
            &data,
            Duration::from_secs(120),
        ))
    });
    let got = client.join().expect("kernel client in the namespace");
    assert_same(&got, &want, "10 MB through --tap");
    assert_eq!(sim.stop().0, 0);
}
