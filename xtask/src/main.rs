//! `cargo xtask <task>`: the project's tasks.
//!
//! - `firmware`: builds the reference firmware for the PIC32MZW1 (`mipsel-unknown-none`,
//!   nightly, `-Zbuild-std=core`, release with LTO).
//! - `size [--features F]`: builds it and prints `flash_bytes=N ram_bytes=N elf=PATH`
//!   plus a breakdown; without arguments also what one more client costs, the same
//!   firmware without its chat room (`echo_flash_bytes=N ...`: the service and its echo,
//!   as the peer image) and the peer image; fails if any panic path is linked into either
//!   reference image.
//! - `hex`: the reference firmware as Intel HEX for PIC32 programmers; see `hex.rs`.
//! - `bench-target [--pic32]`: instruction-counted benchmarks of the firmware code (and of
//!   smoltcp, with embedded-websocket for the WebSocket ones, on the same driver, for
//!   comparison) on QEMU's Malta board; `--pic32` builds the same code for the PIC32MZW1
//!   (build only); see `bench.rs`.
//! - `autobahn`: the Autobahn suite (1.* to 10.*) by `kosoku` against the reference
//!   firmware on the simulated board; see `autobahn.rs`.
//! - `test`: everything CI runs (the README's test command): formatting, clippy, the host
//!   tests, the host benchmarks (`cargo bench --bench host`, callgrind), the target build,
//!   the footprint check with its self-test, and the target benchmarks; both sets of
//!   benchmarks as smoke tests (they must run to the end, every reply checked; the
//!   figures are printed, not judged).

mod autobahn;
mod bench;
mod hex;
mod size;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

pub const TARGET: &str = "mipsel-unknown-none";
pub const FIRMWARE: &str = "mzw1-reference";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("firmware") => build_firmware(&args[1..]).map(|elf| println!("elf={}", elf.display())),
        Some("size") => size::run(&args[1..]),
        Some("hex") => hex::run(&args[1..]),
        Some("bench-target") => bench::run_benches(&args[1..]),
        Some("autobahn") => autobahn::run_autobahn(&args[1..]),
        Some("test") => test_all(),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: cargo xtask <firmware|size|hex|bench-target|autobahn|test> [--features F]".to_string()
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { root().join(d) }
        }
        _ => root().join("target"),
    }
}

/// A `cargo` command for the nightly toolchain, clean of the outer cargo's toolchain
/// selection.
pub fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly").current_dir(root());
    for v in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTDOC",
        "CARGO",
    ] {
        c.env_remove(v);
    }
    c
}

/// A `cargo` command for the default (stable) toolchain.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn run(mut c: Command) -> Result<(), String> {
    eprintln!("xtask: running {c:?}");
    let status = c.status().map_err(|e| format!("cannot run {c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed with {status}"))
    }
}

/// Clients the PIC32 image is built for (Harmony's default).
pub const IMAGE_CLIENTS: usize = 2;

/// Builds the reference firmware for the target (for [`IMAGE_CLIENTS`] clients); returns
/// the ELF path.
pub fn build_firmware(extra: &[String]) -> Result<PathBuf, String> {
    build_firmware_for(IMAGE_CLIENTS, extra)
}

/// Builds the reference firmware for `clients` clients.
pub fn build_firmware_for(clients: usize, extra: &[String]) -> Result<PathBuf, String> {
    let mut c = nightly_cargo();
    c.env("MZW1_CLIENTS", clients.to_string());
    c.args([
        "build",
        "--release",
        "-p",
        FIRMWARE,
        "--target",
        TARGET,
        "-Zbuild-std=core",
    ]);
    c.args(extra);
    run(c)?;
    Ok(target_dir().join(TARGET).join("release").join(FIRMWARE))
}

fn test_all() -> Result<(), String> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    run(c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    let mut c = nightly_cargo();
    c.args([
        "clippy",
        "--release",
        "-p",
        FIRMWARE,
        "--target",
        TARGET,
        "-Zbuild-std=core",
        "--",
        "-D",
        "warnings",
    ]);
    run(c)?;
    let mut c = cargo();
    c.args(["test", "--workspace"]);
    run(c)?;
    // Needs valgrind and gungraun-runner (`.ci/run` installs them); fails if a benchmark
    // does not run to the end or its reply is wrong.
    let mut c = cargo();
    c.args(["bench", "--bench", "host"]);
    run(c)?;
    size::run(&[])?;
    size::self_test()?;
    bench::run_benches(&[])?;
    // The same benchmark code for the PIC32MZW1 must keep linking (build only).
    bench::run_benches(&["--pic32".to_string()])?;
    autobahn::run_autobahn(&[])?;
    eprintln!("xtask: all checks passed");
    Ok(())
}
