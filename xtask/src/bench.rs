//! `cargo xtask bench-target`: instruction-counted benchmarks of the firmware code on
//! QEMU's Malta board.
//!
//! 1. Builds the QEMU plugin `benches/qemu-plugin/mfc0snap.c` with gcc: it counts every
//!    instruction executed and snapshots the count at each `mfc0 $t, $9, 0` (CP0 Count).
//! 2. Builds the four benchmark images for `mipsel-unknown-none` (nightly,
//!    `-Zbuild-std=core`, the workspace's release profile, as the real firmware, and the
//!    reference app built for [`crate::IMAGE_CLIENTS`] clients, as the PIC32 image):
//!    `mzw1-bench-firmware` (the kernels of mzw1-wss and a TCP echo on its stack),
//!    `mzw1-bench-ws` (the reference app, `mzw1_reference::App`: its WebSocket echo),
//!    `mzw1-bench-peers` (smoltcp's TCP echo on the same MAC driver) and
//!    `mzw1-bench-peers-ws` (smoltcp and embedded-websocket's WebSocket echo, ditto).
//!    Each WebSocket image is apart from the TCP one so that the compiler sees the app's
//!    code as in a real image (one app per image).
//! 3. Runs each under `qemu-system-mipsel -M malta -cpu M14Kc -icount shift=0,sleep=off`
//!    with the plugin, within a time limit.
//! 4. Pairs the firmware's `region` lines (COM1) with the plugin's snapshots at the
//!    firmware's bracket addresses (its `marks` line) and prints one line per benchmark:
//!    `bench NAME instructions=N [bytes=B instructions_per_byte=X] [peer_ratio=R] count=C`,
//!    where `count` is the CP0 Count delta the firmware read itself (under icount
//!    shift=0 one tick is about 6 instructions: a cross-check of the pairing).
//!    `handshake` is the sum of its two regions, `handshake_syn` (SYN to SYN-ACK) and
//!    `handshake_upgrade` (the ACK with the upgrade request to the 101 response).
//!
//! `cargo xtask bench-target --profile NAME [--top N]` profiles one benchmark instead of
//! printing the figures (see [`profile`]): after the normal runs it runs the firmware that
//! measures NAME again with the plugin in profile mode, which counts the executions of
//! each instruction address inside the region (for a sum such as `handshake`, inside each
//! of its parts), and prints the instructions per function, symbolised from the ELF,
//! most first, with the total, which must equal the benchmark's `instructions=` figure.
//!
//! `cargo xtask bench-target --pic32` builds the same benchmark code for the PIC32MZW1
//! instead (see [`build_pic32`]): build only, nothing is run.
//!
//! The raw QEMU output and the summary are kept in `target/bench/`. The command fails if
//! QEMU fails or times out, if a firmware reports an error (no echo, say), or if any
//! expected benchmark is missing. The figures themselves are not judged.

use crate::{TARGET, nightly_cargo, root, run};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind, SymbolSection};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU for little-endian MIPS (Debian package `qemu-system-mips`).
const QEMU: &str = "qemu-system-mipsel";
/// Longest a firmware may run (each takes well under a second).
const QEMU_TIMEOUT: Duration = Duration::from_secs(20);
/// The plugin's source, relative to the workspace root.
const PLUGIN_SOURCE: &str = "benches/qemu-plugin/mfc0snap.c";

/// A benchmark image.
struct Firmware {
    package: &'static str,
    /// The binary (the ELF's name).
    bin: &'static str,
    /// Short name for the raw output files.
    label: &'static str,
}

const FIRMWARES: [Firmware; 4] = [
    Firmware {
        package: "mzw1-bench-firmware",
        bin: "mzw1-bench-firmware",
        label: "ours",
    },
    Firmware {
        package: "mzw1-bench-firmware",
        bin: "mzw1-bench-ws",
        label: "ours-ws",
    },
    Firmware {
        package: "mzw1-bench-peers",
        bin: "mzw1-bench-peers",
        label: "peers",
    },
    Firmware {
        package: "mzw1-bench-peers",
        bin: "mzw1-bench-peers-ws",
        label: "peers-ws",
    },
];

/// Our benchmarks, each with the peer's counterpart if there is one. A new benchmark
/// (the WebSocket echo, say) is one more entry here and one more region in the firmware.
/// `bracket_empty` is an empty region: the instructions the brackets add to each
/// micro-benchmark figure (the TCP figures include the whole vector 165 instead, its
/// register save and restore and `eret` among them).
const BENCHES: &[(&str, Option<&str>)] = &[
    ("bracket_empty", None),
    ("unmask4k", None),
    ("utf8_ascii4k", None),
    ("utf8_mixed4k", None),
    ("checksum1460", None),
    ("checksum1460_off2", None),
    ("tcp_handshake", Some("peer_tcp_handshake")),
    ("tcp_echo16", Some("peer_tcp_echo16")),
    ("tcp_echo1400", Some("peer_tcp_echo1400")),
    ("handshake_syn", Some("peer_handshake_syn")),
    ("handshake_upgrade", Some("peer_handshake_upgrade")),
    ("handshake", Some("peer_handshake")),
    ("upgrade_parse", Some("peer_upgrade_parse")),
    ("upgrade_response", Some("peer_upgrade_response")),
    ("echo16", Some("peer_echo16")),
    ("echo1400", Some("peer_echo1400")),
];

/// Benchmarks made of several regions, reported as their sum (instructions and Count),
/// for ours and for the peer (`peer_` before every name).
const SUMS: &[(&str, &[&str])] = &[("handshake", &["handshake_syn", "handshake_upgrade"])];

/// One measured region.
#[derive(Clone, Debug)]
struct Region {
    name: String,
    /// CP0 Count delta, as the firmware read it.
    count: u64,
    /// Payload bytes, for the per-byte figure.
    bytes: Option<u64>,
    /// Exact instructions, from the plugin.
    instructions: u64,
    /// The plugin's snapshot numbers of its begin and end marks (for a sum, of each part),
    /// the windows of a profile.
    windows: Vec<(u64, u64)>,
    /// The firmware that measured it (an index into [`FIRMWARES`]).
    firmware: usize,
}

/// What `bench-target` was asked for.
enum Mode {
    /// The figures of every benchmark.
    Figures,
    /// The PIC32 build.
    Pic32,
    /// The profile of one benchmark, the first `top` functions (all if `None`).
    Profile { name: String, top: Option<usize> },
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let usage = "bench-target: usage: bench-target [--pic32 | --profile NAME [--top N]]";
    match args {
        [] => Ok(Mode::Figures),
        [a] if a == "--pic32" => Ok(Mode::Pic32),
        [a, name] if a == "--profile" => Ok(Mode::Profile {
            name: name.clone(),
            top: None,
        }),
        [a, name, t, n] if a == "--profile" && t == "--top" => Ok(Mode::Profile {
            name: name.clone(),
            top: Some(
                n.parse()
                    .map_err(|_| format!("{usage} (--top takes a number)"))?,
            ),
        }),
        _ => Err(usage.to_string()),
    }
}

pub fn run_benches(args: &[String]) -> Result<(), String> {
    let mode = parse_args(args)?;
    if let Mode::Pic32 = mode {
        return build_pic32();
    }
    let started = Instant::now();
    let out_dir = crate::target_dir().join("bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let plugin = build_plugin(&out_dir)?;
    let mut c = nightly_cargo();
    // The reference app as the PIC32 image has it, whatever the caller's environment.
    c.env("MZW1_CLIENTS", crate::IMAGE_CLIENTS.to_string());
    c.args(["build", "--release", "--target", TARGET, "-Zbuild-std=core"]);
    for f in &FIRMWARES {
        c.args(["-p", f.package, "--bin", f.bin]);
    }
    run(c)?;

    let mut regions = Vec::new();
    for (i, f) in FIRMWARES.iter().enumerate() {
        let mut r = run_firmware(&elf_of(f), &plugin, &out_dir, f.label, None)?;
        r.iter_mut().for_each(|r| r.firmware = i);
        regions.extend(r);
    }
    add_sums(&mut regions);

    if let Mode::Profile { name, top } = mode {
        let lines = profile(&name, top, &regions, &plugin, &out_dir)?;
        for l in &lines {
            println!("{l}");
        }
        let path = out_dir.join(format!("profile-{name}.txt"));
        fs::write(&path, lines.join("\n") + "\n")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!(
            "xtask: profile of {name} done in {:.1} s; in {}",
            started.elapsed().as_secs_f64(),
            path.display()
        );
        return Ok(());
    }

    let lines = summarise(&regions)?;
    for l in &lines {
        println!("{l}");
    }
    let summary = out_dir.join("summary.txt");
    fs::write(&summary, lines.join("\n") + "\n")
        .map_err(|e| format!("{}: {e}", summary.display()))?;
    eprintln!(
        "xtask: bench-target done in {:.1} s; raw output in {}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );
    Ok(())
}

/// `--pic32`: the same four benchmark images built for the PIC32MZW1 (the `pic32` feature
/// of the benchmark packages: `linker/pic32mzw1.ld`, start-up by `mzw1_wss::rt`, output
/// on UART1 at 115200 baud; see `benches/harness/src/rt.rs`), in their own target
/// directory (`target/pic32/`) so that the QEMU images stay as they are. Build only:
/// flashed to a board, each prints the same `region` lines, whose `count` is the CP0
/// Count delta (SYSCLK / 2, so cycles are twice the count).
fn build_pic32() -> Result<(), String> {
    let dir = crate::target_dir().join("pic32");
    let mut c = nightly_cargo();
    c.env("MZW1_CLIENTS", crate::IMAGE_CLIENTS.to_string())
        .env("CARGO_TARGET_DIR", &dir);
    c.args(["build", "--release", "--target", TARGET, "-Zbuild-std=core"]);
    let mut features = Vec::new();
    for f in &FIRMWARES {
        c.args(["-p", f.package, "--bin", f.bin]);
        let feature = format!("{}/pic32", f.package);
        if !features.contains(&feature) {
            features.push(feature);
        }
    }
    c.args(["--features", &features.join(",")]);
    run(c)?;
    for f in &FIRMWARES {
        let elf = dir.join(TARGET).join("release").join(f.bin);
        let size = fs::metadata(&elf)
            .map_err(|e| format!("{}: {e}", elf.display()))?
            .len();
        println!("pic32 {} elf={} bytes={size}", f.label, elf.display());
    }
    Ok(())
}

/// Compiles the plugin into `target/bench/`.
fn build_plugin(out_dir: &Path) -> Result<PathBuf, String> {
    let so = out_dir.join("libmfc0snap.so");
    let mut c = Command::new("gcc");
    c.args([
        "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
    ])
    .arg(&so)
    .arg(root().join(PLUGIN_SOURCE));
    run(c)?;
    Ok(so)
}

/// A benchmark image's ELF.
fn elf_of(f: &Firmware) -> PathBuf {
    crate::target_dir().join(TARGET).join("release").join(f.bin)
}

/// Runs one firmware under QEMU with the plugin (given `plugin_args`, its profile mode);
/// returns its regions, instructions filled in.
fn run_firmware(
    elf: &Path,
    plugin: &Path,
    out_dir: &Path,
    label: &str,
    plugin_args: Option<&str>,
) -> Result<Vec<Region>, String> {
    let uart_path = out_dir.join(format!("{label}.uart.txt"));
    let plugin_path = out_dir.join(format!("{label}.plugin.txt"));
    let create = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut c = Command::new(QEMU);
    c.args([
        "-M",
        "malta",
        "-cpu",
        "M14Kc",
        "-m",
        "64",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-vga",
        "none",
        "-icount",
        "shift=0,sleep=off",
        "-plugin",
    ])
    .arg(match plugin_args {
        // QEMU's option syntax: a comma in a value is written twice.
        Some(a) => format!("{},{a}", plugin.display().to_string().replace(',', ",,")),
        None => plugin.display().to_string(),
    })
    .arg("-kernel")
    .arg(elf)
    .stdin(Stdio::null())
    .stdout(create(&uart_path)?)
    .stderr(create(&plugin_path)?);
    eprintln!("xtask: running {c:?}");
    let mut child = c.spawn().map_err(|e| {
        format!(
            "cannot run {QEMU}: {e} (install it with \
             `apt-get install -y --no-install-recommends qemu-system-mips`)"
        )
    })?;
    let deadline = Instant::now() + QEMU_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{label}: QEMU timed out after {} s (a hang or a panic in the firmware); \
                     output so far in {}",
                    QEMU_TIMEOUT.as_secs(),
                    uart_path.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{label}: waiting for QEMU: {e}")),
        }
    };
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let uart = read(&uart_path)?.replace('\r', "");
    let plugin_out = read(&plugin_path)?;
    if !status.success() {
        return Err(format!("{label}: QEMU exited with {status}:\n{plugin_out}"));
    }
    pair(label, &uart, &plugin_out)
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// `key=value` fields of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// Pairs the firmware's regions with the plugin's snapshots.
fn pair(label: &str, uart: &str, plugin: &str) -> Result<Vec<Region>, String> {
    let errors: Vec<&str> = uart.lines().filter(|l| l.starts_with("error")).collect();
    if !errors.is_empty() {
        return Err(format!(
            "{label}: the firmware reports:\n  {}",
            errors.join("\n  ")
        ));
    }
    match uart.lines().find_map(|l| l.strip_prefix("EXIT ")) {
        Some("0") => {}
        Some(code) => return Err(format!("{label}: the firmware exited with code {code}")),
        None => {
            return Err(format!(
                "{label}: the firmware did not finish (no EXIT line)"
            ));
        }
    }
    let marks = uart
        .lines()
        .find(|l| l.starts_with("marks "))
        .ok_or_else(|| format!("{label}: no marks line"))?;
    let list = |key: &str| -> Result<Vec<u64>, String> {
        field(marks, key)
            .ok_or_else(|| format!("{label}: marks line without {key}"))?
            .split(',')
            .map(|a| parse_hex(a).ok_or_else(|| format!("{label}: bad mark {a}")))
            .collect()
    };
    let (begins, ends) = (list("begin")?, list("end")?);

    if !plugin.lines().any(|l| l.starts_with("mfc0snap: total ")) {
        return Err(format!("{label}: no plugin output (is -plugin supported?)"));
    }
    if plugin.contains(" LOST") {
        return Err(format!("{label}: the plugin lost snapshots"));
    }
    // Snapshots at the bracket addresses only: any other Count read is not a bracket.
    // Each is (number, pc, instructions).
    let snaps: Vec<(u64, u64, u64)> = plugin
        .lines()
        .filter_map(|l| l.strip_prefix("mfc0snap: snap "))
        .filter_map(|l| {
            let k = l.split_whitespace().next()?.parse().ok()?;
            let pc = parse_hex(field(l, "pc")?)?;
            let n = field(l, "insns")?.parse().ok()?;
            Some((k, pc, n))
        })
        .filter(|(_, pc, _)| begins.contains(pc) || ends.contains(pc))
        .collect();

    let mut regions = Vec::new();
    for l in uart.lines().filter(|l| l.starts_with("region ")) {
        let name = l
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| format!("{label}: bad line {l}"))?;
        let count = field(l, "count")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{label}: no count in {l}"))?;
        let bytes = field(l, "bytes").and_then(|v| v.parse().ok());
        regions.push(Region {
            name: name.to_string(),
            count,
            bytes,
            instructions: 0,
            windows: Vec::new(),
            firmware: 0,
        });
    }
    if snaps.len() != 2 * regions.len() {
        return Err(format!(
            "{label}: {} regions but {} bracket snapshots",
            regions.len(),
            snaps.len()
        ));
    }
    for (r, pair) in regions.iter_mut().zip(snaps.chunks_exact(2)) {
        let [(b_k, b_pc, b), (e_k, e_pc, e)] = [pair[0], pair[1]];
        if !begins.contains(&b_pc) || !ends.contains(&e_pc) || e < b {
            return Err(format!(
                "{label}: region {} is not bracketed by a begin and an end mark \
                 ({b_pc:#x}, {e_pc:#x})",
                r.name
            ));
        }
        r.instructions = e - b;
        r.windows = vec![(b_k, e_k)];
        // Under icount shift=0 Count ticks once per 6 instructions.
        let expect = r.count * 6;
        if r.instructions.abs_diff(expect) > 12 {
            eprintln!(
                "xtask: warning: {label} region {}: {} instructions but Count delta {} (x6 = {expect})",
                r.name, r.instructions, r.count
            );
        }
    }
    Ok(regions)
}

/// Adds the [`SUMS`] whose parts are all there, for ours and for the peer.
fn add_sums(regions: &mut Vec<Region>) {
    for (name, parts) in SUMS {
        for prefix in ["", "peer_"] {
            let found: Vec<&Region> = parts
                .iter()
                .filter_map(|p| regions.iter().find(|r| r.name == format!("{prefix}{p}")))
                .collect();
            if found.len() == parts.len() {
                let sum = Region {
                    name: format!("{prefix}{name}"),
                    count: found.iter().map(|r| r.count).sum(),
                    bytes: None,
                    instructions: found.iter().map(|r| r.instructions).sum(),
                    windows: found.iter().flat_map(|r| r.windows.clone()).collect(),
                    // A profile of a sum needs its parts in one firmware.
                    firmware: if found.iter().all(|r| r.firmware == found[0].firmware) {
                        found[0].firmware
                    } else {
                        usize::MAX
                    },
                };
                regions.push(sum);
            }
        }
    }
}

/// The `bench` lines: ours (with the ratio to the peer), then the peers'.
fn summarise(regions: &[Region]) -> Result<Vec<String>, String> {
    let find = |name: &str| -> Result<&Region, String> {
        regions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("benchmark {name} missing from the firmware output"))
    };
    let line = |r: &Region| {
        let mut s = format!("bench {} instructions={}", r.name, r.instructions);
        if let Some(b) = r.bytes.filter(|&b| b > 0) {
            s += &format!(
                " bytes={b} instructions_per_byte={:.2}",
                r.instructions as f64 / b as f64
            );
        }
        s
    };
    let mut ours = Vec::new();
    let mut peers = Vec::new();
    for (name, peer) in BENCHES {
        let r = find(name)?;
        let mut s = line(r);
        if let Some(peer) = peer {
            let p = find(peer)?;
            s += &format!(
                " peer_ratio={:.3}",
                r.instructions as f64 / p.instructions.max(1) as f64
            );
            peers.push(format!("{} count={}", line(p), p.count));
        }
        ours.push(format!("{s} count={}", r.count));
    }
    ours.extend(peers);
    Ok(ours)
}

/// Profiles the region `name` (see the module docs); returns the report's lines.
fn profile(
    name: &str,
    top: Option<usize>,
    regions: &[Region],
    plugin: &Path,
    out_dir: &Path,
) -> Result<Vec<String>, String> {
    let region = regions.iter().find(|r| r.name == name).ok_or_else(|| {
        let mut names: Vec<&str> = regions
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| !n.ends_with(".warmup"))
            .collect();
        names.sort_unstable();
        format!(
            "profile: no benchmark {name}; there are {}",
            names.join(" ")
        )
    })?;
    let firmware = FIRMWARES
        .get(region.firmware)
        .ok_or_else(|| format!("profile: the parts of {name} are in different firmwares"))?;
    let hist_path = out_dir.join(format!("profile-{name}.hist.txt"));
    let mut args = format!(
        "profile={}",
        hist_path.display().to_string().replace(',', ",,")
    );
    for (from, to) in &region.windows {
        args += &format!(",window={from}:{to}");
    }
    let label = format!("{}.profile-{name}", firmware.label);
    let elf = elf_of(firmware);
    let mut again = run_firmware(&elf, plugin, out_dir, &label, Some(&args))?;
    add_sums(&mut again);
    // The same run again, instrumented differently: the same snapshots must bracket the
    // same instruction counts (the runs are deterministic under icount).
    match again.iter().find(|r| r.name == name) {
        Some(r) if r.instructions == region.instructions && r.windows == region.windows => {}
        _ => {
            return Err(format!(
                "profile: the profile run of {} does not reproduce {name}'s figure",
                firmware.label
            ));
        }
    }

    let hist = fs::read_to_string(&hist_path)
        .map_err(|e| format!("{}: {e} (no profile written)", hist_path.display()))?;
    if hist.lines().next().is_none_or(|h| h.contains("LOST")) {
        return Err(format!(
            "{}: the plugin lost addresses",
            hist_path.display()
        ));
    }
    let mut counts: Vec<(u64, u64)> = Vec::new();
    for l in hist.lines().filter(|l| !l.starts_with('#')) {
        let mut w = l.split_whitespace();
        match (
            w.next().and_then(parse_hex),
            w.next().and_then(|n| n.parse().ok()),
        ) {
            (Some(pc), Some(n)) => counts.push((pc, n)),
            _ => return Err(format!("{}: bad line {l}", hist_path.display())),
        }
    }
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    if total != region.instructions {
        return Err(format!(
            "profile: the histogram of {name} adds up to {total} instructions, \
             not its {}",
            region.instructions
        ));
    }

    let symbols = Symbols::read(&elf)?;
    let mut per_function: HashMap<String, u64> = HashMap::new();
    for (pc, n) in counts {
        *per_function.entry(symbols.function_of(pc)).or_default() += n;
    }
    let mut rows: Vec<(String, u64)> = per_function.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(profile_lines(
        name,
        firmware.label,
        region.instructions,
        &rows,
        top,
    ))
}

/// The profile report: a header, one line per function (the first `top`), the total.
fn profile_lines(
    name: &str,
    firmware: &str,
    instructions: u64,
    rows: &[(String, u64)],
    top: Option<usize>,
) -> Vec<String> {
    let mut lines = vec![
        format!(
            "profile {name} instructions={instructions} functions={} firmware={firmware}",
            rows.len()
        ),
        format!("{:>12} {:>7}  function", "instructions", "%"),
    ];
    let shown = top.unwrap_or(rows.len()).min(rows.len());
    for (f, n) in &rows[..shown] {
        let pct = 100.0 * *n as f64 / instructions.max(1) as f64;
        lines.push(format!("{n:>12} {pct:>6.2}%  {f}"));
    }
    if shown < rows.len() {
        let rest: u64 = rows[shown..].iter().map(|(_, n)| n).sum();
        let pct = 100.0 * rest as f64 / instructions.max(1) as f64;
        lines.push(format!(
            "{rest:>12} {pct:>6.2}%  ({} more functions)",
            rows.len() - shown
        ));
    }
    let sum: u64 = rows.iter().map(|(_, n)| n).sum();
    lines.push(format!("{sum:>12} {:>6.2}%  total", 100.0));
    lines
}

/// The code symbols of an ELF, by address, for attributing instruction addresses to
/// functions (and to the labels of hand-written assembly, such as the vector).
struct Symbols {
    /// (address, demangled name), sorted by address, one per address.
    by_address: Vec<(u64, String)>,
}

impl Symbols {
    fn read(elf: &Path) -> Result<Symbols, String> {
        let data = fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
        // (address, preference, name): functions before other labels, global before
        // local, at the same address.
        let mut all: Vec<(u64, u8, String)> = Vec::new();
        for sym in file.symbols() {
            let SymbolSection::Section(index) = sym.section() else {
                continue;
            };
            let code = file
                .section_by_index(index)
                .is_ok_and(|s| s.kind() == SectionKind::Text);
            let Ok(raw) = sym.name() else { continue };
            if !code
                || raw.is_empty()
                || raw.starts_with(".L")
                || raw.starts_with('$')
                || matches!(sym.kind(), SymbolKind::Section | SymbolKind::File)
            {
                continue;
            }
            let preference =
                u8::from(sym.kind() != SymbolKind::Text) * 2 + u8::from(!sym.is_global());
            let name = format!("{:#}", rustc_demangle::demangle(raw));
            all.push((sym.address(), preference, name));
        }
        all.sort();
        all.dedup_by_key(|(a, _, _)| *a);
        if all.is_empty() {
            return Err(format!("{}: no code symbols", elf.display()));
        }
        Ok(Symbols {
            by_address: all.into_iter().map(|(a, _, n)| (a, n)).collect(),
        })
    }

    /// The function (or label) `pc` is in: the last symbol at or below it.
    fn function_of(&self, pc: u64) -> String {
        let i = self.by_address.partition_point(|(a, _)| *a <= pc);
        match i.checked_sub(1).and_then(|i| self.by_address.get(i)) {
            Some((_, name)) => name.clone(),
            None => format!("<no symbol at {pc:#x}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_pair_with_bracket_snapshots_only() {
        let uart = "bench-firmware ours\nmarks begin=0x10,0x20 end=0x14,0x24\n\
                    region a count=10 bytes=4\nregion b count=2 tx_frames=1\nEXIT 0\n";
        let plugin = "mfc0snap: snap 0 pc=0x10 insns=100\n\
                      mfc0snap: snap 1 pc=0x99 insns=120\n\
                      mfc0snap: snap 2 pc=0x14 insns=160\n\
                      mfc0snap: snap 3 pc=0x20 insns=200\n\
                      mfc0snap: snap 4 pc=0x24 insns=212\n\
                      mfc0snap: total insns=300 snaps=5\n";
        let r = pair("t", uart, plugin).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].name.as_str(), r[0].instructions, r[0].bytes),
            ("a", 60, Some(4))
        );
        assert_eq!(
            (r[1].name.as_str(), r[1].instructions, r[1].count),
            ("b", 12, 2)
        );
        // The snapshot numbers bracketing each region: its profile window.
        assert_eq!(
            (r[0].windows.clone(), r[1].windows.clone()),
            (vec![(0, 2)], vec![(3, 4)])
        );
    }

    #[test]
    fn arguments() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(a(&[]), Ok(Mode::Figures)));
        assert!(matches!(a(&["--pic32"]), Ok(Mode::Pic32)));
        assert!(matches!(
            a(&["--profile", "echo16"]),
            Ok(Mode::Profile { name, top: None }) if name == "echo16"
        ));
        assert!(matches!(
            a(&["--profile", "echo16", "--top", "25"]),
            Ok(Mode::Profile { top: Some(25), .. })
        ));
        assert!(a(&["--profile"]).is_err());
        assert!(a(&["--profile", "x", "--top", "many"]).is_err());
        assert!(a(&["--pic32", "--profile", "x"]).is_err());
    }

    #[test]
    fn profile_lines_show_the_top_and_the_rest() {
        let rows = vec![
            ("f".to_string(), 60),
            ("g".to_string(), 30),
            ("h".to_string(), 10),
        ];
        let l = profile_lines("x", "ours", 100, &rows, Some(2));
        assert_eq!(l[0], "profile x instructions=100 functions=3 firmware=ours");
        assert!(l[2].ends_with(" 60.00%  f") && l[2].trim_start().starts_with("60 "));
        assert!(l[4].ends_with("(1 more functions)"));
        assert!(l[5].trim_start().starts_with("100 ") && l[5].ends_with("total"));
        assert_eq!(profile_lines("x", "ours", 100, &rows, None).len(), 6);
    }

    #[test]
    fn addresses_map_to_the_last_symbol_at_or_below() {
        let s = Symbols {
            by_address: vec![(0x100, "a".into()), (0x180, "b".into())],
        };
        assert_eq!(s.function_of(0xfc), "<no symbol at 0xfc>");
        assert_eq!(s.function_of(0x100), "a");
        assert_eq!(s.function_of(0x17c), "a");
        assert_eq!(s.function_of(0x180), "b");
        assert_eq!(s.function_of(0x1000), "b");
    }

    #[test]
    fn firmware_errors_and_missing_exit_fail() {
        let plugin = "mfc0snap: total insns=1 snaps=0\n";
        assert!(
            pair(
                "t",
                "marks begin=0x1 end=0x2\nerror tcp: no echo\nEXIT 1\n",
                plugin
            )
            .is_err()
        );
        assert!(pair("t", "marks begin=0x1 end=0x2\n", plugin).is_err());
        assert!(
            pair(
                "t",
                "marks begin=0x1 end=0x2\nregion a count=1\nEXIT 0\n",
                plugin
            )
            .is_err()
        );
    }

    #[test]
    fn sums_add_their_parts_when_all_are_there() {
        let r = |name: &str, n| Region {
            name: name.into(),
            count: n / 6,
            bytes: None,
            instructions: n,
            windows: vec![(n, n + 1)],
            firmware: 0,
        };
        let mut v = vec![
            r("handshake_syn", 600),
            r("handshake_upgrade", 1200),
            r("peer_handshake_syn", 60),
        ];
        add_sums(&mut v);
        let h = v.iter().find(|x| x.name == "handshake").unwrap();
        assert_eq!((h.instructions, h.count), (1800, 300));
        // Profiled as its parts' windows together.
        assert_eq!(h.windows, vec![(600, 601), (1200, 1201)]);
        assert!(!v.iter().any(|x| x.name == "peer_handshake"));
    }

    #[test]
    fn missing_benchmarks_fail_the_summary() {
        let r = |name: &str, n| Region {
            name: name.into(),
            count: n / 6,
            bytes: None,
            instructions: n,
            windows: vec![(n, n + 1)],
            firmware: 0,
        };
        let all: Vec<Region> = BENCHES
            .iter()
            .flat_map(|(a, b)| [Some(*a), *b])
            .flatten()
            .map(|n| r(n, 600))
            .collect();
        let lines = summarise(&all).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("bench tcp_echo16 ") && l.contains("peer_ratio=1.000"))
        );
        assert!(summarise(&all[1..]).is_err());
    }
}
