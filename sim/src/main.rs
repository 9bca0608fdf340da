//! `mzw1-sim`: runs the reference firmware on the simulated board, board time following
//! the wall clock, and shows the board's status.

use mzw1_reference::Config;
use mzw1_sim::{Board, BoardConfig, Reference};
use std::time::{Duration, Instant as WallClock};

fn usage() -> ! {
    eprintln!("usage: mzw1-sim [--duration SECS]");
    std::process::exit(2);
}

fn main() {
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--duration" => {
                let v = args.next().unwrap_or_else(|| usage());
                let secs: f64 = v.parse().unwrap_or_else(|_| {
                    eprintln!("mzw1-sim: --duration needs seconds, got `{v}`");
                    std::process::exit(2)
                });
                duration = Some(Duration::from_secs_f64(secs));
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("mzw1-sim: unknown option `{other}`");
                usage();
            }
        }
    }

    let mut board = Board::new(BoardConfig::default());
    let mut fw = Reference::boot(&mut board, Config::default());
    let start = WallClock::now();
    let mut last_status = String::new();
    loop {
        let elapsed = start.elapsed();
        if duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        board.set_now_ns(elapsed.as_nanos() as u64);
        board.step(&mut fw);
        let s = fw.0.mac().stats();
        let link = match fw.0.mac().link() {
            Some(l) => format!(
                "up {} {}",
                if l.speed == mzw1_wss::mac::Speed::Mbps100 {
                    "100"
                } else {
                    "10"
                },
                if l.full_duplex { "full" } else { "half" }
            ),
            None => "down".into(),
        };
        let status = format!(
            "link {link} | rx {} frames | tx {} frames | dropped rx {} tx {}",
            s.rx.frames,
            s.tx.frames,
            s.rx.dropped_status
                + s.rx.dropped_runt
                + s.rx.dropped_oversize
                + s.hw.rx_dropped_overflow,
            s.tx.aborted + s.tx.cancelled
        );
        if status != last_status {
            println!("[{:>8.3} s] {status}", elapsed.as_secs_f64());
            last_status = status;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
