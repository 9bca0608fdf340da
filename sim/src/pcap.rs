//! A pcap writer (nanosecond timestamps, LINKTYPE_ETHERNET) for everything on the wire.
//! Frames are written without their FCS, as capture tools expect; the file opens in
//! Wireshark and tshark.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Magic of a pcap file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Writes frames to a pcap file.
pub struct PcapWriter {
    out: BufWriter<File>,
    /// Frames written.
    pub frames: u64,
}

impl PcapWriter {
    /// Creates the file and writes the global header.
    pub fn create(path: &Path) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&MAGIC_NANOS.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // thiszone
        out.write_all(&0u32.to_le_bytes())?; // sigfigs
        out.write_all(&65535u32.to_le_bytes())?; // snaplen
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(PcapWriter { out, frames: 0 })
    }

    /// Writes one frame (given without FCS) seen at `t_ns`.
    pub fn write(&mut self, t_ns: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        self.out
            .write_all(&((t_ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((t_ns % 1_000_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a pcap file written by [`PcapWriter`] (for tests): (timestamp ns, frame).
pub fn read(path: &Path) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let data = std::fs::read(path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a nanosecond pcap file");
    if data.len() < 24 || data[..4] != MAGIC_NANOS.to_le_bytes() {
        return Err(bad());
    }
    let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= data.len() {
        let t = u32_at(i) as u64 * 1_000_000_000 + u32_at(i + 4) as u64;
        let n = u32_at(i + 8) as usize;
        let frame = data.get(i + 16..i + 16 + n).ok_or_else(bad)?;
        out.push((t, frame.to_vec()));
        i += 16 + n;
    }
    if i != data.len() {
        return Err(bad());
    }
    Ok(out)
}
