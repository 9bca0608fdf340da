//! The frame receiver (`Receiver::process`) against a reference decoder written here
//! from RFC 6455 §5 alone.
//!
//! Input: byte 0 and bytes 1..=4 seed the cut points and the sink's answers, the rest is
//! the client's byte stream (masked frames, or anything). Two runs:
//!
//! 1. the whole stream in one buffer, a sink that takes everything;
//! 2. the stream in pieces, a sink that refuses, takes part of a chunk or claims more
//!    than it was offered, and refuses control frames, as the seed decides (never more
//!    than three refusals in a row, so progress is always possible).
//!
//! Both must deliver what the reference decoder finds: the same messages (kinds, bytes,
//! boundaries) and control frames in the same order, and fail with the same close code.
//! When a text message fails UTF-8 validation the receiver may have delivered less of it
//! than the reference (it drops the chunk with the offending byte), never more. Every
//! call must make progress: the number of `process` calls is bounded by the input's
//! length and the refusals (no livelock).

use super::bytes::{Rng, cuts, pieces};
use mzw1_wss::ws::frame::{FrameSink, MessageKind, Opcode, Receiver};

/// What a decoder hands over, in order. `Start` comes with the first byte of a message
/// that reaches the application (or its end, for a message with no payload so far).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Start(MessageKind),
    Bytes(Vec<u8>),
    End,
    Control(Opcode, Vec<u8>),
}

/// The decoding of a whole stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub events: Vec<Ev>,
    /// The close code that failed the connection.
    pub error: Option<u16>,
    /// A valid Close frame was handed over; what follows is not read.
    pub closed: bool,
    /// A data message is open at the end.
    pub in_message: bool,
}

/// Appends an event, merging adjacent byte runs and dropping empty ones.
fn push(events: &mut Vec<Ev>, ev: Ev) {
    if let Ev::Bytes(b) = &ev {
        if b.is_empty() {
            return;
        }
        if let Some(Ev::Bytes(prev)) = events.last_mut() {
            prev.extend_from_slice(b);
            return;
        }
    }
    events.push(ev);
}

// ------------------------------------------------------------ the reference decoder

/// Status codes a Close frame may carry (RFC 6455 §7.4.1, §7.4.2).
fn close_code_ok(c: u16) -> bool {
    (1000..=1003).contains(&c) || (1007..=1011).contains(&c) || (3000..=4999).contains(&c)
}

/// Where a text message stops being valid UTF-8 for good: the index of the first byte
/// no continuation could make valid (`None` if every byte so far may still be part of
/// a valid message).
fn utf8_offending(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => None,
        Err(e) => {
            let len = e.error_len()?;
            let at = e.valid_up_to();
            // A sequence that started well and then met a wrong byte fails at that byte;
            // a byte that can never start a sequence fails where it stands.
            if (0xC2..=0xF4).contains(&bytes[at]) {
                Some(at + len)
            } else {
                Some(at)
            }
        }
    }
}

/// RFC 6455 §5 over the whole stream, byte positions in hand.
pub fn reference(s: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    // The open message: kind, payload so far, bytes already handed over, started.
    let mut msg: Option<(MessageKind, Vec<u8>, bool)> = None;
    let mut i = 0;
    let fail = |mut d: Decoded, code: u16, msg: &Option<(MessageKind, Vec<u8>, bool)>| {
        d.error = Some(code);
        d.in_message = msg.is_some();
        d
    };
    loop {
        let rest = &s[i..];
        if rest.len() < 2 {
            d.in_message = msg.is_some();
            return d;
        }
        let (b0, b1) = (rest[0], rest[1]);
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        let len7 = (b1 & 0x7F) as u64;
        // §5.2: no extension negotiated, so RSV1-3 are 0; opcodes 3-7 and B-F reserved.
        if b0 & 0x70 != 0 || !matches!(op, 0 | 1 | 2 | 8 | 9 | 10) {
            return fail(d, 1002, &msg);
        }
        let control = op >= 8;
        // §5.5: control frames are not fragmented and carry at most 125 bytes.
        if control && (!fin || len7 > 125) {
            return fail(d, 1002, &msg);
        }
        // §5.1: a client masks every frame.
        if !masked {
            return fail(d, 1002, &msg);
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if rest.len() < 2 + ext + 4 {
            d.in_message = msg.is_some();
            return d;
        }
        let len = match len7 {
            126 => {
                let l = u16::from_be_bytes([rest[2], rest[3]]) as u64;
                if l < 126 {
                    return fail(d, 1002, &msg); // not the minimal encoding
                }
                l
            }
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&rest[2..10]);
                let l = u64::from_be_bytes(b);
                if l >> 63 != 0 || l < 0x1_0000 {
                    return fail(d, 1002, &msg);
                }
                l
            }
            l => l,
        };
        let key = [rest[2 + ext], rest[3 + ext], rest[4 + ext], rest[5 + ext]];
        // §5.4: a continuation needs an open message; a new message needs none open.
        match op {
            0 if msg.is_none() => return fail(d, 1002, &msg),
            1 | 2 if msg.is_some() => return fail(d, 1002, &msg),
            1 => msg = Some((MessageKind::Text, Vec::new(), false)),
            2 => msg = Some((MessageKind::Binary, Vec::new(), false)),
            _ => {}
        }
        i += 2 + ext + 4;
        let avail = (s.len() - i).min(len.min(usize::MAX as u64) as usize);
        let payload: Vec<u8> = s[i..i + avail]
            .iter()
            .enumerate()
            .map(|(k, b)| b ^ key[k % 4])
            .collect();
        i += avail;
        let complete = avail as u64 == len;
        if control {
            if !complete {
                d.in_message = msg.is_some();
                return d;
            }
            let opcode = Opcode::from_bits(op).unwrap();
            if op == 8 {
                // §5.5.1: empty, or a valid code and a UTF-8 reason.
                if payload.len() == 1 {
                    return fail(d, 1002, &msg);
                }
                if payload.len() >= 2 {
                    if !close_code_ok(u16::from_be_bytes([payload[0], payload[1]])) {
                        return fail(d, 1002, &msg);
                    }
                    if std::str::from_utf8(&payload[2..]).is_err() {
                        return fail(d, 1007, &msg);
                    }
                }
                push(&mut d.events, Ev::Control(opcode, payload));
                d.closed = true;
                d.in_message = msg.is_some();
                return d;
            }
            push(&mut d.events, Ev::Control(opcode, payload));
            continue;
        }
        let (kind, bytes, started) = msg.as_mut().unwrap();
        let before = bytes.len();
        bytes.extend_from_slice(&payload);
        if *kind == MessageKind::Text {
            // §8.1: invalid UTF-8 fails the connection (1007), as soon as it shows.
            let bad = utf8_offending(bytes).or_else(|| {
                (complete && fin && std::str::from_utf8(bytes).is_err()).then_some(bytes.len())
            });
            if let Some(at) = bad {
                let good = &bytes[before..at.max(before)];
                if !good.is_empty() && !*started {
                    push(&mut d.events, Ev::Start(*kind));
                }
                push(&mut d.events, Ev::Bytes(good.to_vec()));
                return fail(d, 1007, &msg);
            }
        }
        if !payload.is_empty() || (complete && (!*started || fin)) {
            if !*started {
                push(&mut d.events, Ev::Start(*kind));
                *started = true;
            }
            push(&mut d.events, Ev::Bytes(payload));
        }
        if complete && fin {
            push(&mut d.events, Ev::End);
            msg = None;
        }
    }
}

// ------------------------------------------------------------ the receiver under test

/// How the sink answers.
enum Policy {
    /// Takes everything offered.
    Greedy,
    /// Refuses, takes part or claims too much, as the generator says.
    Stingy(Rng),
}

struct Sink {
    policy: Policy,
    events: Vec<Ev>,
    /// The kind of the message the sink is in (it saw its first chunk).
    open: Option<MessageKind>,
    /// Refusals in a row (at most 3, so that the receiver can always progress).
    refusals_in_a_row: u32,
    /// Every time the sink took less than it was offered.
    refusals: usize,
    /// Calls of either kind.
    calls: usize,
}

impl Sink {
    fn new(policy: Policy) -> Sink {
        Sink {
            policy,
            events: Vec::new(),
            open: None,
            refusals_in_a_row: 0,
            refusals: 0,
            calls: 0,
        }
    }

    fn refuse(&mut self) -> bool {
        let Policy::Stingy(rng) = &mut self.policy else {
            return false;
        };
        if self.refusals_in_a_row >= 3 || !rng.chance(1, 3) {
            self.refusals_in_a_row = 0;
            return false;
        }
        self.refusals_in_a_row += 1;
        self.refusals += 1;
        true
    }
}

impl FrameSink for Sink {
    fn data(
        &mut self,
        chunk: &mut [u8],
        kind: MessageKind,
        first: bool,
        last: bool,
    ) -> Option<usize> {
        self.calls += 1;
        // The receiver's bookkeeping as the application sees it.
        assert_eq!(
            first,
            self.open.is_none(),
            "`first` exactly on a message's first chunk"
        );
        if let Some(k) = self.open {
            assert_eq!(k, kind, "a message keeps its kind");
        }
        let len = chunk.len();
        let answer = if self.refuse() {
            let Policy::Stingy(rng) = &mut self.policy else {
                unreachable!()
            };
            match rng.below(4) {
                0 => None,
                1 => Some(0),
                _ if len > 1 => Some(1 + rng.below(len - 1)),
                _ => None,
            }
        } else if let Policy::Stingy(rng) = &mut self.policy {
            // Now and then a sink claims more than it was offered.
            Some(if rng.chance(1, 16) {
                len + 1 + rng.below(8)
            } else {
                len
            })
        } else {
            Some(len)
        };
        let took = match answer {
            None => return None,
            Some(n) => n.min(len),
        };
        if took == 0 && len > 0 {
            return answer;
        }
        if first {
            push(&mut self.events, Ev::Start(kind));
            self.open = Some(kind);
        }
        push(&mut self.events, Ev::Bytes(chunk[..took].to_vec()));
        if last && took == len {
            push(&mut self.events, Ev::End);
            self.open = None;
        }
        answer
    }

    fn control(&mut self, opcode: Opcode, payload: &[u8]) -> bool {
        self.calls += 1;
        assert!(opcode.is_control());
        assert!(payload.len() <= 125);
        if self.refuse() {
            return false;
        }
        self.events.push(Ev::Control(opcode, payload.to_vec()));
        true
    }
}

/// Runs the receiver over `parts` with `sink`; re-offers what it leaves, as TCP does.
/// `closed`: the reference says a Close ended the stream.
fn receive(parts: &[&[u8]], mut sink: Sink, closed: bool) -> Decoded {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut rx = Receiver::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut calls = 0usize;
    let mut error = None;
    // Each call consumes a byte, or hands over something pending, or meets a refusal.
    let budget = |sink: &Sink| 4 * (total + parts.len() + sink.refusals) + 16;
    'input: for part in parts {
        pending.extend_from_slice(part);
        while !pending.is_empty() || rx.has_pending() {
            calls += 1;
            assert!(
                calls <= budget(&sink),
                "livelock: {calls} calls for {total} bytes, {} refusals",
                sink.refusals
            );
            let before = pending.len();
            match rx.process(&mut pending, &mut sink) {
                Ok(n) => {
                    assert!(n <= before, "consumed {n} of {before}");
                    pending.drain(..n);
                }
                Err(code) => {
                    assert!(rx.failed(), "an error fails the connection");
                    error = Some(code);
                    break 'input;
                }
            }
        }
    }
    if let Some(code) = error {
        // A failed receiver discards everything, and hands nothing over.
        let calls = sink.calls;
        let mut more = [0x88u8, 0x80, 1, 2, 3, 4, 0xFF];
        assert_eq!(rx.process(&mut more, &mut sink), Ok(more.len()));
        assert_eq!(sink.calls, calls, "a failed receiver hands nothing over");
        return Decoded {
            events: sink.events,
            error: Some(code),
            closed: false,
            in_message: rx.in_message(),
        };
    }
    if closed {
        // After the client's Close nothing is read (§5.5.1).
        let calls = sink.calls;
        let mut more = [0x81u8, 0x80, 1, 2, 3, 4];
        assert_eq!(rx.process(&mut more, &mut sink), Ok(more.len()));
        assert_eq!(sink.calls, calls, "nothing is read after a Close");
    }
    Decoded {
        events: sink.events,
        error: None,
        closed,
        in_message: rx.in_message(),
    }
}

/// `got` (from the receiver) against `want` (the reference).
fn compare(got: &Decoded, want: &Decoded, what: &str) {
    assert_eq!(
        got.error, want.error,
        "{what}: close code\n got {got:?}\nwant {want:?}"
    );
    if want.error == Some(1007) {
        // The chunk holding the offending byte is not delivered, so less of the failing
        // text message may have reached the application: the receiver's events are the
        // reference's with its tail (`Start`, `Bytes`) shortened.
        let g = &got.events;
        let w = &want.events;
        assert!(
            g.len() <= w.len(),
            "{what}: more events than the reference\n got {g:?}\nwant {w:?}"
        );
        let n = g.len();
        let ok = g.iter().zip(w).enumerate().all(|(i, (a, b))| match (a, b) {
            (Ev::Bytes(x), Ev::Bytes(y)) if i + 1 == n => y.starts_with(x),
            _ => a == b,
        });
        assert!(
            ok,
            "{what}: not a prefix of the reference\n got {g:?}\nwant {w:?}"
        );
        let tail_ok = w[n..]
            .iter()
            .all(|e| matches!(e, Ev::Start(MessageKind::Text) | Ev::Bytes(_)));
        assert!(tail_ok, "{what}: missing events\n got {g:?}\nwant {w:?}");
    } else {
        assert_eq!(got.events, want.events, "{what}: events");
    }
    assert_eq!(
        got.in_message, want.in_message,
        "{what}: message open at the end"
    );
}

pub fn run(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let (seed, stream) = data.split_at(5);
    let want = reference(stream);

    let mut whole = stream.to_vec();
    let got = receive(&[&whole[..]], Sink::new(Policy::Greedy), want.closed);
    compare(&got, &want, "in one piece");
    whole.clear();

    let mut rng = Rng::new(seed);
    let at = cuts(stream.len(), &mut rng);
    let parts = pieces(stream, &at);
    let got = receive(&parts, Sink::new(Policy::Stingy(rng)), want.closed);
    compare(&got, &want, "in pieces, with backpressure");
}
