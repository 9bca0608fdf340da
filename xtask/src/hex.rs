//! `cargo xtask hex`: the reference firmware as an Intel HEX file for PIC32 programmers
//! (MPLAB IPE with a PICkit or ICD, `pic32prog`, ...).
//!
//! Every loadable ELF segment with file bytes is written at its load address (`p_paddr`,
//! so `.data`'s initial values land in program flash behind `.rodata`), translated from
//! the KSEG0/KSEG1 view the linker uses to the physical address programmers expect
//! (`& 0x1FFF_FFFF`: program flash at 0x10000000, boot flash at 0x1FC00000, the
//! configuration words at 0x1FC55F8C), as MPLAB XC32's own HEX files do.

use crate::{build_firmware, target_dir};
use object::Endianness;
use object::elf::{FileHeader32, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use std::fmt::Write as _;
use std::path::PathBuf;

pub fn run(args: &[String]) -> Result<(), String> {
    let elf = build_firmware(args)?;
    let data = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let header = FileHeader32::<Endianness>::parse(&*data).map_err(|e| format!("{e}"))?;
    let endian = header.endian().map_err(|e| format!("{e}"))?;
    let mut chunks: Vec<(u32, &[u8])> = Vec::new();
    for ph in header
        .program_headers(endian, &*data)
        .map_err(|e| format!("{e}"))?
    {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, &*data)
            .map_err(|_| "segment data".to_string())?;
        chunks.push((ph.p_paddr(endian) & 0x1FFF_FFFF, bytes));
    }
    chunks.sort_by_key(|c| c.0);
    let text = intel_hex(&chunks);
    let out: PathBuf = target_dir().join("mzw1-reference.hex");
    std::fs::write(&out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
    let bytes: usize = chunks.iter().map(|c| c.1.len()).sum();
    println!(
        "hex={} bytes={bytes} segments={}",
        out.display(),
        chunks.len()
    );
    Ok(())
}

/// Intel HEX (I32HEX): extended linear address records (type 04) for the upper 16 bits,
/// 16-byte data records (00), the end-of-file record (01).
pub fn intel_hex(chunks: &[(u32, &[u8])]) -> String {
    fn record(out: &mut String, kind: u8, addr: u16, data: &[u8]) {
        let mut sum = data.len() as u8;
        sum = sum
            .wrapping_add((addr >> 8) as u8)
            .wrapping_add(addr as u8)
            .wrapping_add(kind);
        let _ = write!(out, ":{:02X}{addr:04X}{kind:02X}", data.len());
        for b in data {
            let _ = write!(out, "{b:02X}");
            sum = sum.wrapping_add(*b);
        }
        let _ = writeln!(out, "{:02X}", sum.wrapping_neg());
    }
    let mut out = String::new();
    let mut upper: Option<u16> = None;
    for &(base, bytes) in chunks {
        let mut at = 0usize;
        while at < bytes.len() {
            let addr = base + at as u32;
            let hi = (addr >> 16) as u16;
            if upper != Some(hi) {
                record(&mut out, 0x04, 0, &hi.to_be_bytes());
                upper = Some(hi);
            }
            // A record never crosses a 64 KiB boundary.
            let to_boundary = 0x1_0000 - (addr & 0xFFFF) as usize;
            let n = 16.min(bytes.len() - at).min(to_boundary);
            record(&mut out, 0x00, addr as u16, &bytes[at..at + n]);
            at += n;
        }
    }
    record(&mut out, 0x01, 0, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::intel_hex;

    #[test]
    fn records_match_a_hand_computed_file() {
        // 0x1FC00000: 3 bytes; checksums worked out by hand (two's complement of the sum).
        let hex = intel_hex(&[(0x1FC0_0000, &[0x01, 0x02, 0x03])]);
        assert_eq!(hex, ":020000041FC01B\n:03000000010203F7\n:00000001FF\n");
    }

    #[test]
    fn records_split_at_64k_boundaries() {
        let data = [0xAAu8; 8];
        let hex = intel_hex(&[(0x1000_FFFC, &data)]);
        let lines: Vec<&str> = hex.lines().collect();
        assert_eq!(lines[0], ":020000041000EA");
        assert!(lines[1].starts_with(":04FFFC00"));
        assert_eq!(lines[2], ":020000041001E9");
        assert!(lines[3].starts_with(":04000000"));
        assert_eq!(lines[4], ":00000001FF");
    }
}
