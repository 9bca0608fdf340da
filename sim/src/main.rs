//! `mzw1-sim`: the reference firmware on the simulated board, reachable from ordinary
//! programs.
//!
//! By default it listens on 127.0.0.1:8080 and relays each connection across the
//! simulated Ethernet to the firmware (see `mzw1_sim::bridge`); with `--tap` the board is
//! attached to a TAP device and the Linux kernel talks to the firmware directly. Board time
//! follows the wall clock.

use mzw1_reference::Config;
use mzw1_sim::bridge::Bridge;
use mzw1_sim::pcap::PcapWriter;
use mzw1_sim::tap::{TapDevice, TapPort};
use mzw1_sim::testbed::Station;
use mzw1_sim::{Board, BoardConfig, Impairments, PeerHost, Reference, Testbed, Wire, WireConfig};
use mzw1_wss::net::ipv4::Ipv4Config;
use mzw1_wss::service::ClientState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as WallClock};

const USAGE: &str = "usage: mzw1-sim [options]

Runs the reference firmware on the simulated PIC32MZW1 board.

  --listen ADDR:PORT   bridge: accept kernel connections here and relay them to the
                       firmware (default 127.0.0.1:8080; port 0 picks a free one)
  --tap IFNAME         attach the board to an existing TAP device instead: the Linux
                       kernel is the peer (create it with `ip tuntap add dev IFNAME mode tap`)
  --ip A.B.C.D         the firmware's address (default 192.168.7.2)
  --netmask A.B.C.D    its netmask (default 255.255.255.0)
  --gateway A.B.C.D    its gateway (default: .1 of its subnet)
  --mac XX:XX:..       its MAC address (default 02:04:a3:00:00:01)
  --port N             the firmware's TCP port (default 80)
  --pcap FILE          write every frame on the simulated wire to FILE
  --impair SPEC        impair the wire both ways: loss=P,dup=P,reorder=P,corrupt=P,delay=MS,seed=N
  --clients N          clients served at once, 1-8 (default 2)
  --idle-timeout SECS  close a client silent for this long (default 30; 0 = never)
  --duration SECS      stop after this long
  --quiet              no status display
  -h, --help           this text";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Options {
    listen: SocketAddr,
    tap: Option<String>,
    ip: Ipv4Config,
    mac: [u8; 6],
    port: u16,
    pcap: Option<PathBuf>,
    impair: Option<Impairments>,
    clients: u8,
    idle_timeout_s: u32,
    duration: Option<Duration>,
    quiet: bool,
}

fn parse_ip(flag: &str, v: &str) -> Result<[u8; 4], String> {
    v.parse::<std::net::Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|_| format!("{flag} needs an IPv4 address like 192.168.7.2, got `{v}`"))
}

fn parse_mac(v: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = v.split(':').collect();
    let bad = || format!("--mac needs six hex bytes like 02:04:a3:00:00:01, got `{v}`");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:8080".parse().expect("valid default"),
        tap: None,
        ip: mzw1_reference::DEFAULT_IP,
        mac: Config::default().mac.mac_address,
        port: 80,
        pcap: None,
        impair: None,
        clients: 2,
        idle_timeout_s: 30,
        duration: None,
        quiet: false,
    };
    let mut gateway = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--listen" => {
                let v = value("--listen")?;
                o.listen = v.parse().map_err(|_| {
                    format!("--listen needs ADDR:PORT like 127.0.0.1:8080, got `{v}`")
                })?;
            }
            "--tap" => o.tap = Some(value("--tap")?),
            "--ip" => o.ip.address = parse_ip("--ip", &value("--ip")?)?,
            "--netmask" => o.ip.netmask = parse_ip("--netmask", &value("--netmask")?)?,
            "--gateway" => gateway = Some(parse_ip("--gateway", &value("--gateway")?)?),
            "--mac" => o.mac = parse_mac(&value("--mac")?)?,
            "--port" => {
                let v = value("--port")?;
                o.port = v
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("--port needs 1-65535, got `{v}`"))?;
            }
            "--pcap" => o.pcap = Some(PathBuf::from(value("--pcap")?)),
            "--impair" => {
                o.impair = Some(
                    Impairments::parse(&value("--impair")?)
                        .map_err(|e| format!("--impair: {e}"))?,
                )
            }
            "--clients" => {
                let v = value("--clients")?;
                o.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=8).contains(n))
                    .ok_or_else(|| format!("--clients needs 1-8, got `{v}`"))?;
            }
            "--idle-timeout" => {
                let v = value("--idle-timeout")?;
                o.idle_timeout_s = v
                    .parse()
                    .map_err(|_| format!("--idle-timeout needs seconds, got `{v}`"))?;
            }
            "--duration" => {
                let v = value("--duration")?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0)
                    .ok_or_else(|| format!("--duration needs seconds, got `{v}`"))?;
                o.duration = Some(Duration::from_secs_f64(s));
            }
            "--quiet" => o.quiet = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let mask = u32::from_be_bytes(o.ip.netmask);
    o.ip.gateway = gateway.unwrap_or(((u32::from_be_bytes(o.ip.address) & mask) | 1).to_be_bytes());
    Ok(o)
}

fn dotted(ip: [u8; 4]) -> String {
    std::net::Ipv4Addr::from(ip).to_string()
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 10_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 10_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// One status block describing the board, refreshed when it changes.
fn status(tb: &mut Testbed<Reference, impl Station>, clients: &[String]) -> String {
    let now = tb.board.now();
    let app = &mut tb.fw.0;
    let mac = app.mac().stats();
    let link = match app.mac().link() {
        Some(l) => format!(
            "up {} Mb/s {}",
            if l.speed == mzw1_wss::mac::Speed::Mbps100 {
                100
            } else {
                10
            },
            if l.full_duplex { "full" } else { "half" }
        ),
        None => "down".into(),
    };
    let net = *app.net().stats();
    let tcp = *app.net().tcp_stats();
    let drops = [
        ("crc", mac.hw.rx_fcs_errors),
        ("overflow", mac.hw.rx_dropped_overflow),
        ("runt", mac.rx.dropped_runt),
        ("oversize", mac.rx.dropped_oversize),
        ("rx-status", mac.rx.dropped_status),
        ("ip-malformed", net.ip_malformed),
        ("ip-checksum", net.ip_bad_checksum),
        ("ip-fragment", net.ip_fragments),
        ("icmp", net.icmp_malformed + net.icmp_bad_checksum),
        ("tcp-checksum", tcp.rx_bad_checksum),
        ("tcp-malformed", tcp.rx_malformed),
        ("out-of-order", tcp.rx_out_of_order),
        ("unaccepted", tcp.rx_unaccepted_bytes),
        ("tx-aborted", mac.tx.aborted),
        ("tx-no-buffer", net.tx_no_buffer + tcp.tx_no_buffer),
    ];
    let drops: Vec<String> = drops
        .iter()
        .filter(|d| d.1 > 0)
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let mut out = format!(
        "link {link} | rx {} frames {} | tx {} frames {} | retransmits {} | drops {}",
        mac.rx.frames,
        human(mac.rx.bytes as u64),
        mac.tx.frames,
        human(mac.tx.bytes as u64),
        tcp.retransmits_timeout + tcp.retransmits_fast + tcp.retransmits_sack,
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        },
    );
    let wss = *app.server().stats();
    out.push_str(&format!(
        "\n  websocket: {} upgrades, {} pages, {} refused ({} full), {} protocol errors, {} idle timeouts, {} in / {} out",
        wss.upgrades,
        wss.pages,
        wss.refused + wss.refused_full,
        wss.refused_full,
        wss.protocol_errors,
        wss.idle_timeouts,
        human(wss.rx_bytes),
        human(wss.tx_bytes),
    ));
    let states: Vec<_> = app
        .server()
        .clients()
        .filter(|(_, s)| *s != ClientState::Closed)
        .collect();
    for (client, state) in states {
        let (ip, port) = app
            .server_mut()
            .client_remote(now, client)
            .unwrap_or_default();
        let via = clients
            .iter()
            .find(|c| c.ends_with(&format!(":{port}")))
            .map_or(String::new(), |c| {
                format!(
                    "  (kernel client {})",
                    c.split(" via").next().unwrap_or_default()
                )
            });
        out.push_str(&format!(
            "\n  client #{} {}:{} {:?}{via}",
            client.index(),
            dotted(ip),
            port,
            state
        ));
    }
    out
}

/// Runs the board until Ctrl-C (or `--duration`); returns the exit code.
fn run<P: Station>(
    mut tb: Testbed<Reference, P>,
    o: &Options,
    mut clients: impl FnMut(&mut P) -> Vec<String>,
    mut close_peer: impl FnMut(&mut P),
) -> ExitCode {
    let wall = WallClock::now();
    let mut shown = String::new();
    let mut last_show = WallClock::now() - Duration::from_secs(1);
    let mut stopping: Option<WallClock> = None;
    loop {
        tb.step();
        let stop_now =
            STOP.load(Ordering::SeqCst) || o.duration.is_some_and(|d| wall.elapsed() >= d);
        if stop_now && stopping.is_none() {
            // Orderly stop: the service is deinitialized (every client gets a Close frame
            // with 1001, going away) and the board runs on until the closing handshakes
            // are done and the MAC is stopped (the service gives up on a client after its
            // close timeout); then the bridge closes what is left on its side.
            let now = tb.board.now();
            tb.fw.0.shutdown(now);
            stopping = Some(WallClock::now());
            if !o.quiet {
                println!("stopping: closing every client (1001 going away)");
            }
        }
        if let Some(t) = stopping
            && (tb.fw.0.is_stopped() || t.elapsed() >= Duration::from_secs(4))
        {
            // Let the bridge pass on what the firmware sent last.
            let flush = WallClock::now();
            while flush.elapsed() < Duration::from_millis(100) {
                tb.step();
            }
            close_peer(&mut tb.peer);
            break;
        }
        if !o.quiet && last_show.elapsed() >= Duration::from_millis(250) {
            last_show = WallClock::now();
            let names = clients(&mut tb.peer);
            let s = status(&mut tb, &names);
            if s != shown {
                println!("[{:>9.3} s] {s}", wall.elapsed().as_secs_f64());
                shown = s;
            }
        }
    }
    tb.wire.flush_capture();
    if !o.quiet {
        let names = clients(&mut tb.peer);
        println!(
            "[{:>9.3} s] {}",
            wall.elapsed().as_secs_f64(),
            status(&mut tb, &names)
        );
        println!("stopped");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mzw1-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    let mut board = Board::new(BoardConfig::default());
    let mut config = Config {
        ip: o.ip,
        ..Config::default()
    };
    config.wss.clients = o.clients;
    config.wss.idle_timeout_ms = o.idle_timeout_s.saturating_mul(1000);
    config.mac.mac_address = o.mac;
    config.tcp.port = o.port;
    let fw = Reference::boot(&mut board, config);
    let mut wire = Wire::new(WireConfig {
        impair: o.impair.unwrap_or_default(),
        ..WireConfig::default()
    });
    if let Some(path) = &o.pcap {
        match PcapWriter::create(path) {
            Ok(p) => wire.capture(p),
            Err(e) => {
                eprintln!("mzw1-sim: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }

    if !o.quiet {
        println!("mzw1-sim: the reference firmware on a simulated PIC32MZW1 board");
        println!(
            "  firmware  {}/{} via {}, MAC {}, TCP port {}, {} clients, idle timeout {} s",
            dotted(o.ip.address),
            u32::from_be_bytes(o.ip.netmask).count_ones(),
            dotted(o.ip.gateway),
            mac_text(o.mac),
            o.port,
            o.clients,
            o.idle_timeout_s
        );
        if let Some(p) = &o.pcap {
            println!("  pcap      {}", p.display());
        }
        if let Some(i) = &o.impair {
            println!(
                "  impair    loss {} dup {} reorder {} corrupt {} delay {} ms seed {}",
                i.loss,
                i.duplicate,
                i.reorder,
                i.corrupt,
                i.delay_ns as f64 / 1e6,
                i.seed
            );
        }
    }

    match &o.tap {
        Some(name) => {
            let dev = match TapDevice::open(name) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!(
                        "mzw1-sim: cannot attach to TAP device {name}: {e} \
                         (create it first: ip tuntap add dev {name} mode tap; this needs root)"
                    );
                    return ExitCode::from(1);
                }
            };
            println!(
                "tap {name} attached: the kernel reaches the firmware at {}:{}",
                dotted(o.ip.address),
                o.port
            );
            let tb = Testbed::new(board, fw, wire, TapPort::new(dev));
            run(tb, &o, |_| Vec::new(), |_| {})
        }
        None => {
            // The bridge's host sits on the firmware's subnet, at its gateway address (or
            // the next one if the gateway is the firmware itself).
            let mut host_ip = o.ip.gateway;
            if host_ip == o.ip.address {
                host_ip[3] = host_ip[3].wrapping_add(1);
            }
            let prefix = u32::from_be_bytes(o.ip.netmask).count_ones() as u8;
            let peer = PeerHost::new([0x02, 0x00, 0x5E, 0x00, 0x53, 0x01], host_ip, prefix);
            let bridge = match Bridge::bind(o.listen, peer, (o.ip.address, o.port)) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    eprintln!(
                        "mzw1-sim: cannot listen on {}: the port is in use (another mzw1-sim? choose one with --listen)",
                        o.listen
                    );
                    return ExitCode::from(1);
                }
                Err(e) => {
                    eprintln!("mzw1-sim: cannot listen on {}: {e}", o.listen);
                    return ExitCode::from(1);
                }
            };
            let local = bridge.local_addr().unwrap_or(o.listen);
            println!(
                "listening on {local}, relayed to {}:{}",
                dotted(o.ip.address),
                o.port
            );
            if !o.quiet {
                println!(
                    "  open http://{local}/ for the chat page, or echo: websocat ws://{local}/   (Ctrl-C to stop)"
                );
            }
            let tb = Testbed::new(board, fw, wire, bridge);
            run(
                tb,
                &o,
                |b: &mut Bridge| {
                    b.connections()
                        .into_iter()
                        .map(|(c, p)| format!("{c} via :{p}"))
                        .collect()
                },
                |b: &mut Bridge| b.close_all(),
            )
        }
    }
}
