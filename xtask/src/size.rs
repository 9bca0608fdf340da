//! `cargo xtask size`: the firmware's flash and RAM, and the zero-panic-path check.

use crate::{IMAGE_CLIENTS, build_firmware, build_firmware_for};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
use std::path::Path;

/// Program flash (KSEG0 view of physical 0x10000000, 1 MiB).
fn in_program_flash(addr: u64) -> bool {
    (0x9000_0000..0x9010_0000).contains(&addr)
}

/// Program and boot flash (boot flash: KSEG1 view of physical 0x1FC00000).
fn in_flash(addr: u64) -> bool {
    in_program_flash(addr) || (0xBFC0_0000..0xBFC6_0000).contains(&addr)
}

/// Data RAM (KSEG0 and KSEG1 views of physical 0x00000000, 256 KiB).
fn in_ram(addr: u64) -> bool {
    (0x8000_0000..0x8004_0000).contains(&addr) || (0xA000_0000..0xA004_0000).contains(&addr)
}

/// The footprint of an image.
#[derive(Debug, Default)]
pub struct Footprint {
    pub flash: u64,
    pub ram_state: u64,
    pub ram_dma: u64,
    pub stack: u64,
    /// Program flash between sections (alignment), counted in `flash`.
    pub padding: u64,
    pub sections: Vec<(String, u64, &'static str)>,
    pub panic_symbols: Vec<String>,
}

pub fn measure(elf: &Path) -> Result<Footprint, String> {
    let data = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let mut f = Footprint::default();
    // Program-flash sections by address, for the padding between them (an output
    // section starts at its alignment, which its most aligned input section sets).
    let mut program: Vec<(u64, u64)> = Vec::new();
    for s in file.sections() {
        let name = s.name().unwrap_or("?").to_string();
        let size = s.size();
        if size == 0
            || matches!(
                s.kind(),
                SectionKind::Debug | SectionKind::Metadata | SectionKind::Other
            )
            || name.starts_with(".debug")
            || name.starts_with(".comment")
        {
            continue;
        }
        let vma = s.address();
        // Initialised RAM sections (.data, .got) are also stored in flash and copied at
        // start-up; NOLOAD ones (.bss, .dma) have no file bytes.
        let initialised = s.file_range().is_some();
        if in_flash(vma) {
            f.flash += size;
            f.sections.push((name, size, "flash"));
            if in_program_flash(vma) {
                program.push((vma, size));
            }
        } else if in_ram(vma) {
            if initialised {
                f.flash += size;
            }
            let uninit = !initialised;
            if name.starts_with(".dma") {
                f.ram_dma += size;
                f.sections
                    .push((name, size, "ram (DMA descriptors and buffers)"));
            } else {
                f.ram_state += size;
                f.sections
                    .push((name, size, if uninit { "ram" } else { "ram + flash copy" }));
            }
        }
    }
    // Flash between program sections is spent too, though no section holds it.
    program.sort_unstable();
    f.padding = program
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0 + w[0].1))
        .sum();
    f.flash += f.padding;
    for sym in file.symbols() {
        let name = sym.name().unwrap_or("");
        if name == "_stack_size" {
            f.stack = sym.address();
        }
        if name.contains("panic") || name.contains("rust_begin_unwind") {
            f.panic_symbols.push(name.to_string());
        }
    }
    Ok(f)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let elf = build_firmware(args)?;
    let f = measure(&elf)?;
    for (name, size, place) in &f.sections {
        println!("section {name:<16} {size:>7} bytes  {place}");
    }
    println!(
        "padding                  {:>7} bytes  flash (between sections)",
        f.padding
    );
    println!(
        "ram_state_bytes={} ram_dma_bytes={} stack_bytes={}",
        f.ram_state, f.ram_dma, f.stack
    );
    println!(
        "flash_bytes={} ram_bytes={} elf={}",
        f.flash,
        f.ram_state + f.ram_dma,
        elf.display()
    );
    let mut panic_symbols = f.panic_symbols.clone();
    if args.is_empty() {
        // The other builds (one more client; no chat room), then target/ holds the real
        // image again, whether they succeeded or not.
        let others = other_builds(&f);
        build_firmware(&[])?;
        panic_symbols.extend(others?);
        peer()?;
    }
    if !panic_symbols.is_empty() {
        return Err(format!(
            "{} panic path(s) linked into the image (firmware must not panic):\n  {}",
            panic_symbols.len(),
            panic_symbols.join("\n  ")
        ));
    }
    println!("panic_paths=0");
    Ok(())
}

/// What one more client costs (the same image built for one more), and the reference
/// firmware without its chat room and page (`--no-default-features`): the WebSocket
/// service with its streaming echo, which is what the peer image does, so the ratios
/// compare like with like. Prints both; returns the second image's panic paths. Leaves
/// another image in target/: the caller rebuilds the real one.
fn other_builds(f: &Footprint) -> Result<Vec<String>, String> {
    let (ram, flash) = per_client(f, &[])?;
    println!("clients={IMAGE_CLIENTS} per_client_ram_bytes={ram} per_client_flash_bytes={flash}");
    let args = ["--no-default-features".to_string()];
    let echo = measure(&build_firmware(&args)?)?;
    let (ram, flash) = per_client(&echo, &args)?;
    println!(
        "echo_flash_bytes={} echo_ram_state_bytes={} echo_per_client_ram_bytes={ram} \
         echo_per_client_flash_bytes={flash}",
        echo.flash, echo.ram_state
    );
    Ok(echo.panic_symbols)
}

/// RAM (control state) and flash that one more client adds to the image `f` was
/// measured from (built with `args`): the same image built for one more, less `f`.
fn per_client(f: &Footprint, args: &[String]) -> Result<(i64, i64), String> {
    let more = measure(&build_firmware_for(IMAGE_CLIENTS + 1, args)?)?;
    Ok((
        more.ram_state as i64 - f.ram_state as i64,
        more.flash as i64 - f.flash as i64,
    ))
}

/// The comparison firmware's footprint: `mzw1-peer-image` (benches/peers: smoltcp and
/// embedded-websocket doing the same WebSocket echo on the same MAC driver, as a PIC32MZW1
/// image), measured as the reference image is. Its panic paths are counted, not refused.
fn peer() -> Result<(), String> {
    let mut c = crate::nightly_cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "mzw1-bench-peers",
        "--bin",
        PEER_IMAGE,
        "--target",
        crate::TARGET,
        "-Zbuild-std=core",
    ]);
    crate::run(c)?;
    let elf = crate::target_dir()
        .join(crate::TARGET)
        .join("release")
        .join(PEER_IMAGE);
    let p = measure(&elf)?;
    println!(
        "peer_flash_bytes={} peer_ram_bytes={} peer_ram_state_bytes={} peer_ram_dma_bytes={} \
         peer_panic_paths={} peer_elf={}",
        p.flash,
        p.ram_state + p.ram_dma,
        p.ram_state,
        p.ram_dma,
        p.panic_symbols.len(),
        elf.display()
    );
    Ok(())
}

/// The peer's image (smoltcp + embedded-websocket), a binary of `mzw1-bench-peers`.
const PEER_IMAGE: &str = "mzw1-peer-image";

/// Proves the panic check can fail: an image built with a deliberate panic path
/// (`mzw1-reference --features panic-probe`) must be rejected.
pub fn self_test() -> Result<(), String> {
    let elf = build_firmware(&["--features".into(), "panic-probe".into()])?;
    let f = measure(&elf)?;
    if f.panic_symbols.is_empty() {
        return Err(
            "size self-test: the panic-probe image shows no panic path; the check is blind".into(),
        );
    }
    // Rebuild the normal image so target/ holds the real firmware again.
    build_firmware(&[])?;
    eprintln!(
        "xtask: size self-test ok: the panic-probe image is rejected ({} panic symbols)",
        f.panic_symbols.len()
    );
    Ok(())
}
