//! The Linux kernel as the peer: the simulated board attached to a TAP device inside a
//! network namespace these tests create (every address lives in that namespace), kernel
//! sockets connecting to the firmware's echo server, the kernel pinging it, and loss
//! added in the kernel's path with nftables (`numgen random`; this kernel has no netem).
//!
//! They need root, `/dev/net/tun` and iproute2 (nftables for the lossy one); where those
//! are missing each test prints `SKIPPED <name>: <reason>` and passes.

use mzw1_reference::Config;
use mzw1_sim::tap::{NetNs, NsTask, TapPort};
use mzw1_sim::wire::Rng;
use mzw1_sim::{Board, BoardConfig, TcpEcho, Testbed, Wire, WireConfig};
use mzw1_wss::net::ipv4::Ipv4Config;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant as WallClock};

const NS_ADDR: [u8; 4] = [10, 200, 0, 1];
const BOARD_ADDR: [u8; 4] = [10, 200, 0, 2];
const SECOND: u64 = 1_000_000_000;
const MB: usize = 1_000_000;

fn netns_or_skip(test: &str) -> Option<NetNs> {
    if let Err(why) = NetNs::available() {
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    Some(NetNs::create("tap0", NS_ADDR, 24).expect("create the test namespace"))
}

fn testbed(ns: &NetNs) -> Testbed<TcpEcho, TapPort> {
    let mut board = Board::new(BoardConfig::default());
    let config = Config {
        ip: Ipv4Config {
            address: BOARD_ADDR,
            netmask: [255, 255, 255, 0],
            gateway: NS_ADDR,
        },
        ..Config::default()
    };
    let fw = TcpEcho::boot(&mut board, config);
    let port = TapPort::new(ns.open_tap().expect("open tap0 in the namespace"));
    let mut tb = Testbed::new(board, fw, Wire::new(WireConfig::default()), port);
    assert!(
        tb.run_until(|tb| tb.fw.net.mac().link().is_some(), SECOND),
        "link up"
    );
    tb
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

/// A kernel TCP client in the namespace: connects to the echo server, writes `data`
/// while reading the echo, half-closes, and returns what came back.
fn kernel_echo(ns: &NetNs, data: Vec<u8>) -> NsTask<Vec<u8>> {
    ns.spawn(move || {
        let addr = SocketAddr::from((BOARD_ADDR, 80));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut writer = stream.try_clone()?;
        let sender = std::thread::spawn(move || -> io::Result<()> {
            writer.write_all(&data)?;
            writer.shutdown(Shutdown::Write)
        });
        let mut got = Vec::new();
        (&stream).read_to_end(&mut got)?;
        sender
            .join()
            .map_err(|_| io::Error::other("writer panicked"))??;
        Ok(got)
    })
}

fn run_echo(
    tb: &mut Testbed<TcpEcho, TapPort>,
    ns: &NetNs,
    bytes: usize,
    seed: u64,
    limit_s: u64,
) -> f64 {
    let data = pattern(bytes, seed);
    let wall = WallClock::now();
    let task = kernel_echo(ns, data.clone());
    let done = tb.run_until(|_| task.is_finished(), limit_s * SECOND);
    let secs = wall.elapsed().as_secs_f64();
    let tcp = *tb.fw.net.tcp_stats();
    assert!(done, "kernel echo finished within {limit_s} s; {tcp:?}");
    let got = task.join().expect("kernel client");
    assert_eq!(got.len(), data.len(), "echoed length; {tcp:?}");
    if let Some(i) = got.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("first difference at byte {i}");
    }
    // The server closed after the client: its slot is released (TIME-WAIT aside).
    secs
}

#[test]
fn linux_pings_and_echoes_10_mb_through_tap() {
    let Some(ns) = netns_or_skip("linux_pings_and_echoes_10_mb_through_tap") else {
        return;
    };
    let mut tb = testbed(&ns);
    let ping = ns.spawn_ping(
        BOARD_ADDR,
        5,
        Duration::from_millis(20),
        Duration::from_secs(1),
    );
    tb.run_until(|_| ping.is_finished(), 10 * SECOND);
    let rtts = ping.join().expect("kernel ping");
    assert!(
        rtts.iter().all(Option::is_some),
        "every ping answered: {rtts:?}"
    );
    let secs = run_echo(&mut tb, &ns, 10 * MB, 21, 120);
    let tcp = tb.fw.net.tcp_stats();
    eprintln!(
        "linux: pings {rtts:?}; 10 MB echoed in {secs:.2} s ({:.1} Mb/s each way); {tcp:?}",
        10.0 * 8.0 / secs
    );
    assert_eq!(tcp.rx_bad_checksum, 0);
    assert_eq!(tb.fw.net.stats().icmp_echo_replies, 5);
}

#[test]
fn linux_echoes_10_mb_through_nftables_random_loss() {
    let nft = std::process::Command::new("nft").arg("--version").output();
    if !nft.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED linux_echoes_10_mb_through_nftables_random_loss: no nft (apt-get install nftables)"
        );
        return;
    }
    let Some(ns) = netns_or_skip("linux_echoes_10_mb_through_nftables_random_loss") else {
        return;
    };
    // 3 % of the packets each way, dropped in the kernel's own path.
    ns.nft(
        "table inet imp {\n\
           chain out {\n\
             type filter hook output priority 0;\n\
             ip daddr 10.200.0.2 numgen random mod 100 < 3 counter drop\n\
           }\n\
           chain in {\n\
             type filter hook input priority 0;\n\
             ip saddr 10.200.0.2 numgen random mod 100 < 3 counter drop\n\
           }\n\
         }\n",
    )
    .expect("load the nftables rules");
    let mut tb = testbed(&ns);
    let secs = run_echo(&mut tb, &ns, 10 * MB, 22, 300);
    let tcp = tb.fw.net.tcp_stats();
    let counters = ns
        .command("nft")
        .args(["list", "table", "inet", "imp"])
        .output()
        .expect("nft list");
    let rules = String::from_utf8_lossy(&counters.stdout);
    eprintln!("linux with loss: 10 MB echoed in {secs:.2} s; {tcp:?}\n{rules}");
    assert!(
        tcp.retransmits_timeout + tcp.retransmits_fast > 0,
        "losses were repaired"
    );
    assert!(
        tcp.rx_out_of_order + tcp.rx_duplicate > 0,
        "the kernel's retransmissions were seen"
    );
}
