//! An in-process Ethernet wire between the board and a peer: latency, 100 Mb/s
//! serialisation, and seeded, reproducible impairments (loss, duplication, reordering,
//! corruption, extra delay), optionally captured to pcap.
//!
//! Frames carry their FCS, as on a real wire. A corrupted frame gets one bit flipped and
//! its FCS recomputed, as if the damage happened in a store-and-forward switch: the MAC
//! accepts it and the IPv4, ICMP and TCP checksums have to catch it. (Damage *on* the
//! wire is only ever a lost frame, because the receiving MAC checks the FCS.)

use crate::crc::append_fcs;
use crate::pcap::PcapWriter;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Which end of the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The simulated board.
    Board,
    /// The peer (smoltcp, a TAP device, a test).
    Peer,
}

impl End {
    fn index(self) -> usize {
        match self {
            End::Board => 0,
            End::Peer => 1,
        }
    }
}

/// Impairments, applied independently to each frame in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairments {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back so later frames overtake it.
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped (FCS recomputed).
    pub corrupt: f64,
    /// Extra one-way delay, nanoseconds.
    pub delay_ns: u64,
    /// Seed of the pseudo-random generator.
    pub seed: u64,
}

impl Impairments {
    /// Parses `loss=P,dup=P,reorder=P,corrupt=P,delay=MS,seed=N` (any subset).
    pub fn parse(s: &str) -> Result<Impairments, String> {
        let mut imp = Impairments {
            seed: 1,
            ..Impairments::default()
        };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got `{part}`"))?;
            let prob = || -> Result<f64, String> {
                let p: f64 = v
                    .parse()
                    .map_err(|_| format!("`{k}` needs a number, got `{v}`"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("`{k}` must be in 0..=1, got {p}"))
                }
            };
            match k {
                "loss" => imp.loss = prob()?,
                "dup" | "duplicate" => imp.duplicate = prob()?,
                "reorder" => imp.reorder = prob()?,
                "corrupt" => imp.corrupt = prob()?,
                "delay" => {
                    let ms: f64 = v
                        .parse()
                        .map_err(|_| format!("`delay` needs milliseconds, got `{v}`"))?;
                    imp.delay_ns = (ms * 1e6) as u64;
                }
                "seed" => {
                    imp.seed = v
                        .parse()
                        .map_err(|_| format!("`seed` needs an integer, got `{v}`"))?
                }
                _ => {
                    return Err(format!(
                        "unknown impairment `{k}` (loss, dup, reorder, corrupt, delay, seed)"
                    ));
                }
            }
        }
        Ok(imp)
    }
}

/// Wire set-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireConfig {
    /// One-way propagation and switching latency, nanoseconds.
    pub latency_ns: u64,
    /// Line rate in bits per second (0: infinitely fast).
    pub bit_rate: u64,
    /// Impairments.
    pub impair: Impairments,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            latency_ns: 10_000,
            bit_rate: 100_000_000,
            impair: Impairments::default(),
        }
    }
}

/// Wire counters, per direction (index 0: from the board, 1: from the peer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames sent into the wire.
    pub sent: [u64; 2],
    /// Frames delivered out of it (duplicates included).
    pub delivered: [u64; 2],
    /// Frames lost.
    pub lost: [u64; 2],
    /// Frames duplicated.
    pub duplicated: [u64; 2],
    /// Frames held back to be reordered.
    pub reordered: [u64; 2],
    /// Frames corrupted.
    pub corrupted: [u64; 2],
}

/// A small deterministic generator (xorshift64*), so impaired runs are reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// A frame in flight: (arrival time, sequence number for ties, bytes), earliest first.
type InFlight = Reverse<(u64, u64, Vec<u8>)>;

/// The wire.
pub struct Wire {
    config: WireConfig,
    /// Frames in flight towards each end, by (arrival time, sequence).
    queues: [BinaryHeap<InFlight>; 2],
    busy_until: [u64; 2],
    seq: u64,
    rng: Rng,
    pcap: Option<PcapWriter>,
    /// Delivered frames not yet written, so the capture comes out in time order across
    /// both directions.
    pending_capture: BinaryHeap<InFlight>,
    /// Counters.
    pub stats: WireStats,
}

impl Wire {
    /// A wire with the given behaviour.
    pub fn new(config: WireConfig) -> Wire {
        Wire {
            config,
            queues: [BinaryHeap::new(), BinaryHeap::new()],
            busy_until: [0; 2],
            seq: 0,
            rng: Rng::new(config.impair.seed),
            pcap: None,
            pending_capture: BinaryHeap::new(),
            stats: WireStats::default(),
        }
    }

    /// Captures every delivered frame into a pcap file.
    pub fn capture(&mut self, pcap: PcapWriter) {
        self.pcap = Some(pcap);
    }

    /// The capture, flushed.
    pub fn flush_capture(&mut self) {
        self.write_capture(u64::MAX);
        if let Some(p) = self.pcap.as_mut() {
            let _ = p.flush();
        }
    }

    /// Writes the held capture records up to time `upto`, oldest first.
    fn write_capture(&mut self, upto: u64) {
        let Some(p) = self.pcap.as_mut() else { return };
        while self
            .pending_capture
            .peek()
            .is_some_and(|Reverse((t, _, _))| *t <= upto)
        {
            if let Some(Reverse((t, _, frame))) = self.pending_capture.pop() {
                let _ = p.write(t, &frame[..frame.len().saturating_sub(4)]);
            }
        }
    }

    /// Puts a frame (with FCS) on the wire from `from` at `now_ns`.
    pub fn send(&mut self, from: End, now_ns: u64, mut frame: Vec<u8>) {
        let dir = from.index();
        self.stats.sent[dir] += 1;
        // Serialisation: preamble + SFD (8) and inter-frame gap (12) around the frame.
        let start = now_ns.max(self.busy_until[dir]);
        let wire_ns = ((frame.len() as u64 + 20) * 8 * 1_000_000_000)
            .checked_div(self.config.bit_rate)
            .unwrap_or(0);
        self.busy_until[dir] = start + wire_ns;
        let mut arrival = start + wire_ns + self.config.latency_ns + self.config.impair.delay_ns;
        let imp = self.config.impair;
        if imp.loss > 0.0 && self.rng.unit() < imp.loss {
            self.stats.lost[dir] += 1;
            return;
        }
        if imp.corrupt > 0.0 && self.rng.unit() < imp.corrupt && frame.len() > 4 {
            let n = frame.len() - 4;
            frame.truncate(n);
            let bit = self.rng.below(n as u64 * 8);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
            append_fcs(&mut frame);
            self.stats.corrupted[dir] += 1;
        }
        if imp.reorder > 0.0 && self.rng.unit() < imp.reorder {
            // Held back by a few frame times, so frames sent after it arrive first.
            arrival += 3 * wire_ns.max(10_000) + self.rng.below(200_000);
            self.stats.reordered[dir] += 1;
        }
        if imp.duplicate > 0.0 && self.rng.unit() < imp.duplicate {
            self.stats.duplicated[dir] += 1;
            let later = arrival + wire_ns.max(1_000);
            self.push(1 - dir, later, frame.clone());
        }
        self.push(1 - dir, arrival, frame);
    }

    fn push(&mut self, to: usize, at: u64, frame: Vec<u8>) {
        self.seq += 1;
        self.queues[to].push(Reverse((at, self.seq, frame)));
    }

    /// The next frame due at `to` by `now_ns`, if any.
    pub fn receive(&mut self, to: End, now_ns: u64) -> Option<Vec<u8>> {
        let q = &mut self.queues[to.index()];
        if q.peek().is_none_or(|Reverse((t, _, _))| *t > now_ns) {
            return None;
        }
        let Reverse((t, seq, frame)) = q.pop()?;
        self.stats.delivered[1 - to.index()] += 1;
        if self.pcap.is_some() {
            self.pending_capture.push(Reverse((t, seq, frame.clone())));
            // Anything still in flight arrives later than the earliest queued frame, and
            // frames not sent yet later than now: records up to there are final.
            let horizon = self.next_arrival().unwrap_or(now_ns).min(now_ns);
            self.write_capture(horizon);
        }
        Some(frame)
    }

    /// When the next frame arrives anywhere.
    pub fn next_arrival(&self) -> Option<u64> {
        self.queues
            .iter()
            .filter_map(|q| q.peek().map(|Reverse((t, _, _))| *t))
            .min()
    }

    /// Frames in flight.
    pub fn in_flight(&self) -> usize {
        self.queues.iter().map(|q| q.len()).sum()
    }
}
