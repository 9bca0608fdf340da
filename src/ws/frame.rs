//! WebSocket frames (RFC 6455 §5): the incremental header parser, the server's header
//! encoder, close-code validation, and [`Receiver`], the per-connection state machine that
//! turns the TCP byte stream into message chunks and control frames.
//!
//! The receiver works in place on the bytes TCP lends it (inside the DMA buffer): payload
//! is unmasked a word at a time with the mask phase carried across segments, text is
//! validated as UTF-8 as it streams, and each chunk goes to the [`FrameSink`] at once, so
//! a message of any size needs no buffer. A header may straddle segments; several frames
//! may share one. When the sink cannot take a chunk (backpressure), the bytes it left are
//! remembered as already unmasked and validated, and handed over as they are when TCP
//! offers them again: every payload byte is processed once.

use super::mask::Unmasker;
use super::utf8::Utf8Validator;

/// Frame opcodes (§5.2), each with its wire value as discriminant: converting either
/// way is then a test of which values exist, not a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// Text data frame.
    Text = 0x1,
    /// Binary data frame.
    Binary = 0x2,
    /// Connection close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl Opcode {
    /// The opcode from its 4-bit value; `None` for the reserved ones (3–7, 0xB–0xF).
    pub const fn from_bits(v: u8) -> Option<Opcode> {
        match v {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The 4-bit value.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Control frames: Close, Ping, Pong (§5.5).
    pub const fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

impl MessageKind {
    /// The opcode that starts a message of this kind.
    pub const fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// Status codes the server sends when it fails a connection (§7.4.1).
pub mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away (the server shuts down).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Inconsistent data: invalid UTF-8 in a text message.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation.
    pub const POLICY: u16 = 1008;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error.
    pub const INTERNAL: u16 = 1011;
}

/// Whether a status code may appear in a Close frame (§7.4.1–7.4.2): 1000–1003,
/// 1007–1011 and 3000–4999. 1004–1006 and 1015 are reserved for local use; the rest of
/// 0–2999 is unassigned.
pub const fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Writes a server frame header (FIN, opcode, unmasked, minimal length encoding, §5.2)
/// into `out`; returns its length (2, 4 or 10 bytes).
pub fn encode_header(out: &mut [u8], fin: bool, opcode: Opcode, len: usize) -> Option<usize> {
    let b0 = ((fin as u8) << 7) | opcode.bits();
    if len < 126 {
        let h = out.first_chunk_mut::<2>()?;
        *h = [b0, len as u8];
        Some(2)
    } else if len <= 0xFFFF {
        let h = out.first_chunk_mut::<4>()?;
        *h = [b0, 126, (len >> 8) as u8, len as u8];
        Some(4)
    } else {
        let h = out.first_chunk_mut::<10>()?;
        h[0] = b0;
        h[1] = 127;
        h[2..].copy_from_slice(&(len as u64).to_be_bytes());
        Some(10)
    }
}

/// Header length for a payload of `len` bytes.
pub const fn header_len(len: usize) -> usize {
    if len < 126 {
        2
    } else if len <= 0xFFFF {
        4
    } else {
        10
    }
}

/// A parsed client frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment.
    pub fin: bool,
    /// Opcode.
    pub opcode: Opcode,
    /// Payload length.
    pub len: u64,
    /// Masking key.
    pub mask: [u8; 4],
}

/// Collects a header that may straddle segments (2 to 14 bytes).
#[derive(Clone, Copy, Debug)]
struct HeaderParser {
    buf: [u8; 14],
    have: u8,
}

impl HeaderParser {
    const fn new() -> HeaderParser {
        HeaderParser {
            buf: [0; 14],
            have: 0,
        }
    }

    /// Takes bytes from `data`; returns how many, and the header once complete (or the
    /// close code that fails the connection).
    ///
    /// Both ways to a whole header (where it lies in `data`, or collected across
    /// segments) end at the one call of [`parse`], so that it is inlined into the
    /// receiver once and the header reaches `begin_frame` in registers.
    #[inline(always)]
    fn feed(&mut self, data: &[u8]) -> (usize, Option<Result<FrameHeader, u16>>) {
        let (used, header): (usize, &[u8]) = 'whole: {
            // The usual case: a whole header at the start of a segment, parsed where it
            // lies.
            if self.have == 0
                && let [b0, b1, ..] = *data
            {
                if let Err(code) = check_first_two(b0, b1) {
                    return (2, Some(Err(code)));
                }
                let need = client_header_len(b1);
                if let Some(header) = data.get(..need) {
                    break 'whole (need, header);
                }
            }
            // Split between segments: collected byte by byte.
            let mut used = 0;
            loop {
                let have = self.have as usize;
                let need = match self.buf {
                    _ if have < 2 => 2,
                    [_, b1, ..] => client_header_len(b1),
                };
                if have >= need {
                    self.have = 0;
                    break 'whole (used, self.buf.get(..need).unwrap_or_default());
                }
                let Some(&b) = data.get(used) else {
                    return (used, None);
                };
                if let Some(slot) = self.buf.get_mut(have) {
                    *slot = b;
                }
                self.have += 1;
                used += 1;
                if self.have == 2 {
                    // Fail fast on the first two bytes, before waiting for the rest.
                    if let Err(code) = check_first_two(self.buf[0], self.buf[1]) {
                        self.have = 0;
                        return (used, Some(Err(code)));
                    }
                }
            }
        };
        (used, Some(parse(header)))
    }
}

/// The length of a client frame's header from its second byte (§5.2): 2, the extended
/// payload length (0, 2 or 8), and the masking key (4: `check_first_two` passed first).
fn client_header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + 4
}

/// What the first two bytes of a client frame alone make invalid (§5.2, §5.5, §5.1).
fn check_first_two(b0: u8, b1: u8) -> Result<(), u16> {
    // RSV1–3 must be 0: no extension was negotiated (§5.2); client frames must be masked
    // (§5.1). One test: every failure here has the same code.
    if b0 & 0x70 != 0 || b1 & 0x80 == 0 {
        return Err(code::PROTOCOL_ERROR);
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(code::PROTOCOL_ERROR)?;
    // Control frames: not fragmented, payload of 125 bytes at most (§5.5).
    if opcode.is_control() && (b0 & 0x80 == 0 || b1 & 0x7F > 125) {
        return Err(code::PROTOCOL_ERROR);
    }
    Ok(())
}

/// Parses a whole header (`client_header_len` bytes, first two checked).
#[inline(always)]
fn parse(b: &[u8]) -> Result<FrameHeader, u16> {
    let [b0, b1, ref rest @ ..] = *b else {
        return Err(code::PROTOCOL_ERROR);
    };
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(code::PROTOCOL_ERROR)?;
    // The length, and the bytes after it: the masking key.
    let (len, key) = match (b1 & 0x7F, rest) {
        // The length in the fewest bytes (§5.2: "the minimal number of bytes MUST be
        // used"); a longer encoding fails the connection.
        (126, [l0, l1, key @ ..]) => match u16::from_be_bytes([*l0, *l1]) {
            l if l < 126 => return Err(code::PROTOCOL_ERROR),
            l => (l as u64, key),
        },
        (127, [l0, l1, l2, l3, l4, l5, l6, l7, key @ ..]) => {
            let l = u64::from_be_bytes([*l0, *l1, *l2, *l3, *l4, *l5, *l6, *l7]);
            // The most significant bit must be 0 (§5.2).
            if l >> 63 != 0 || l <= 0xFFFF {
                return Err(code::PROTOCOL_ERROR);
            }
            (l, key)
        }
        (126 | 127, _) => return Err(code::PROTOCOL_ERROR),
        (l, key) => (l as u64, key),
    };
    let Some(&mask) = key.first_chunk::<4>() else {
        return Err(code::PROTOCOL_ERROR);
    };
    Ok(FrameHeader {
        fin: b0 & 0x80 != 0,
        opcode,
        len,
        mask,
    })
}

/// Where the receiver delivers what it decodes.
pub trait FrameSink {
    /// A chunk of a text or binary message, unmasked in place (text validated so far).
    /// `first`: the message's first bytes; `last`: its final bytes. Empty chunks mark the
    /// start or end of a message with no payload there. Returns `Some(n)` when `n` bytes
    /// were taken (an empty chunk with `Some(0)`), the rest being offered again later, or
    /// `None` when nothing can be taken now: the chunk, empty or not, is offered again
    /// before any further input.
    fn data(
        &mut self,
        chunk: &mut [u8],
        kind: MessageKind,
        first: bool,
        last: bool,
    ) -> Option<usize>;

    /// A complete, valid control frame (a Close frame's code and reason are already
    /// checked). Returns false if it cannot be acted on now (a reply cannot be sent yet);
    /// it is then offered again before any further input.
    fn control(&mut self, opcode: Opcode, payload: &[u8]) -> bool;
}

/// The receiving half of one WebSocket connection.
#[derive(Clone, Debug)]
pub struct Receiver {
    /// The next frame's header as far as it came; read while `remaining` is 0.
    header: HeaderParser,
    fin: bool,
    opcode: Opcode,
    /// The current frame's payload bytes still to come; 0 between frames, when the
    /// next header is read.
    remaining: u64,
    unmasker: Unmasker,
    /// A data message in progress (its kind), between its first and last frame.
    message: Option<MessageKind>,
    /// The current message's first bytes have been delivered.
    started: bool,
    utf8: Utf8Validator,
    control: heapless::Vec<u8, 125>,
    /// Bytes at the head of the next input that were unmasked and validated already
    /// but not taken by the sink.
    carried: usize,
    /// Those bytes end the message.
    carried_last: bool,
    /// What holds new input back, if anything: one test on the way in.
    hold: Hold,
}

/// What holds a receiver's new input back. These exclude each other: the receiver stops
/// at a control frame or marker the sink does not take, and at the client's Close or a
/// failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Nothing: input is decoded.
    Nothing,
    /// A control frame is complete and waiting for the sink to accept it.
    Control,
    /// An empty data frame's message start or end is waiting for the sink to accept it.
    Marker,
    /// The client's Close was handed over: what follows it is not read (§5.5.1).
    Closed,
    /// The connection was failed; input is discarded.
    Failed,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// At the start of the frame stream.
    pub const fn new() -> Receiver {
        Receiver {
            header: HeaderParser::new(),
            fin: false,
            opcode: Opcode::Continuation,
            remaining: 0,
            unmasker: Unmasker::new([0; 4]),
            message: None,
            started: false,
            utf8: Utf8Validator::new(),
            control: heapless::Vec::new(),
            carried: 0,
            carried_last: false,
            hold: Hold::Nothing,
        }
    }

    /// Whether the connection was failed (input is then ignored).
    pub fn failed(&self) -> bool {
        self.hold == Hold::Failed
    }

    /// Whether a control frame or a message boundary is waiting for the sink: call
    /// [`Receiver::process`] again (with no input, if none came) once it can take it.
    pub fn has_pending(&self) -> bool {
        matches!(self.hold, Hold::Control | Hold::Marker)
    }

    /// Whether a data message is in progress.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    fn fail(&mut self, code: u16) -> Result<usize, u16> {
        self.hold = Hold::Failed;
        Err(code)
    }

    /// Decodes `data` in place. Returns the bytes consumed (the rest is to be offered
    /// again, from its first byte, once the sink can take more), or the close code that
    /// fails the connection (§7.1.7).
    ///
    /// Every chunk, be it payload, bytes carried from an earlier call or an empty data
    /// frame's marker, reaches the sink from one call, at the end of the loop: the sink
    /// is then inlined here, and its layer's register saves go.
    pub fn process<S: FrameSink>(&mut self, data: &mut [u8], sink: &mut S) -> Result<usize, u16> {
        // A chunk ready for the sink before any new input is decoded: its length at the
        // start of `data` (0 for a marker) and whether it ends the message.
        let mut ready = None;
        if self.hold != Hold::Nothing {
            if matches!(self.hold, Hold::Failed | Hold::Closed) {
                // Discarded (the service stops calling once the client's Close is in).
                return Ok(data.len());
            }
            if self.hold == Hold::Control {
                // Offered again by the one way a control frame reaches the sink (a Close
                // frame's body, checked already, passes its check again).
                self.hold = Hold::Nothing;
                if self.end_control(sink) != Ok(true) {
                    return Ok(0);
                }
            }
            if self.hold == Hold::Marker {
                self.hold = Hold::Nothing;
                ready = Some((0, self.fin));
            }
        } else if self.carried > 0 {
            // Already unmasked and validated: straight to the sink (never with a marker:
            // the receiver stops at bytes the sink left).
            if data.is_empty() {
                return Ok(0);
            }
            let n = self.carried.min(data.len());
            ready = Some((n, self.carried_last && n == self.carried));
            self.carried -= n;
        }
        let mut pos = 0;
        loop {
            let (chunk, last): (&mut [u8], bool) = match ready.take() {
                // `ready` is set before the first decoding only: `pos` is 0.
                Some((n, last)) => match data.get_mut(..n) {
                    Some(chunk) => (chunk, last),
                    None => return Ok(0),
                },
                None => 'decode: loop {
                    if self.remaining == 0 {
                        let Some(rest @ [_, ..]) = data.get(pos..) else {
                            // No header byte to take (a header is never complete before
                            // its last byte is fed).
                            return Ok(pos);
                        };
                        let (used, header) = self.header.feed(rest);
                        pos += used;
                        match header {
                            None => return Ok(pos),
                            Some(Err(code)) => return self.fail(code),
                            Some(Ok(h)) => {
                                if let Err(code) = self.begin_frame(h) {
                                    return self.fail(code);
                                }
                                if self.remaining == 0 {
                                    if self.opcode.is_control() {
                                        match self.end_control(sink) {
                                            Ok(true) => continue,
                                            Ok(false) => return Ok(pos),
                                            Err(code) => return self.fail(code),
                                        }
                                    }
                                    // An empty data frame: the sink is told where a
                                    // message starts or ends (if it is the message's
                                    // first frame or its last).
                                    let last = self.fin;
                                    // A text message ends valid iff its validator is
                                    // between characters with no error (what `finish`
                                    // tells), one test.
                                    if self.message == Some(MessageKind::Text)
                                        && last
                                        && !self.utf8.is_boundary()
                                    {
                                        return self.fail(code::INVALID_PAYLOAD);
                                    }
                                    if self.started && !last {
                                        continue;
                                    }
                                    break 'decode (&mut [], last);
                                }
                            }
                        }
                    }
                    // Payload.
                    let avail = data.len().saturating_sub(pos);
                    if avail == 0 {
                        return Ok(pos);
                    }
                    let take = (self.remaining.min(avail as u64)) as usize;
                    let Some(chunk) = data.get_mut(pos..pos + take) else {
                        return Ok(pos);
                    };
                    let short_ascii = self.unmasker.apply(chunk);
                    self.remaining -= take as u64;
                    if self.opcode.is_control() {
                        // Control payloads are small (≤ 125 bytes) and kept whole.
                        if self.control.extend_from_slice(chunk).is_err() {
                            return self.fail(code::PROTOCOL_ERROR);
                        }
                        pos += take;
                        if self.remaining == 0 {
                            match self.end_control(sink) {
                                Ok(true) => {}
                                Ok(false) => return Ok(pos),
                                Err(code) => return self.fail(code),
                            }
                        }
                        continue;
                    }
                    let last = self.remaining == 0 && self.fin;
                    // ASCII between characters leaves the validator as it is: nothing to
                    // feed.
                    if self.message == Some(MessageKind::Text)
                        && !(short_ascii && self.utf8.is_boundary())
                    {
                        // Fail fast: the first invalid byte fails the connection (§8.1),
                        // before the chunk is delivered.
                        if self.utf8.feed(chunk).is_err() || (last && !self.utf8.is_boundary()) {
                            return self.fail(code::INVALID_PAYLOAD);
                        }
                    }
                    break 'decode (chunk, last);
                },
            };
            // To the sink: the `take` bytes at `pos` (none: a marker, which the sink may
            // refuse whole).
            let take = chunk.len();
            let kind = self.message.unwrap_or(MessageKind::Binary);
            let took = match sink.data(chunk, kind, !self.started, last) {
                Some(n) => n.min(take),
                None if take == 0 => {
                    self.hold = Hold::Marker;
                    return Ok(pos);
                }
                None => 0,
            };
            if took < take {
                // Kept for the next call, as unmasked and validated (the carried bytes
                // left by an earlier call included).
                self.started |= took > 0;
                self.carried += take - took;
                self.carried_last |= last;
                return Ok(pos + took);
            }
            // All taken (a marker too): the message has begun.
            self.started = true;
            pos += take;
            if last {
                self.end_message();
            }
        }
    }

    /// Checks a new frame against the message state (§5.4) and sets up its payload.
    fn begin_frame(&mut self, h: FrameHeader) -> Result<(), u16> {
        match h.opcode {
            Opcode::Continuation => {
                if self.message.is_none() {
                    return Err(code::PROTOCOL_ERROR); // nothing to continue
                }
            }
            Opcode::Text | Opcode::Binary => {
                if self.message.is_some() {
                    return Err(code::PROTOCOL_ERROR); // a new message inside another
                }
                self.message = Some(if h.opcode == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                });
                self.started = false;
                self.utf8.reset();
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => self.control.clear(),
        }
        self.fin = h.fin;
        self.opcode = h.opcode;
        self.remaining = h.len;
        self.unmasker = Unmasker::new(h.mask);
        Ok(())
    }

    /// A control frame's payload is complete. Returns whether processing may go on.
    fn end_control<S: FrameSink>(&mut self, sink: &mut S) -> Result<bool, u16> {
        if self.opcode == Opcode::Close {
            check_close_payload(&self.control)?;
        }
        if !sink.control(self.opcode, &self.control) {
            self.hold = Hold::Control;
            return Ok(false);
        }
        self.control.clear();
        if self.opcode == Opcode::Close {
            self.hold = Hold::Closed;
            return Ok(false);
        }
        Ok(true)
    }

    fn end_message(&mut self) {
        self.message = None;
        self.started = false;
        self.carried_last = false;
    }
}

/// A Close frame's body: empty, or a valid code followed by a UTF-8 reason (§5.5.1).
fn check_close_payload(p: &[u8]) -> Result<(), u16> {
    match p {
        [] => Ok(()),
        [_] => Err(code::PROTOCOL_ERROR),
        [hi, lo, reason @ ..] => {
            if !close_code_valid(u16::from_be_bytes([*hi, *lo])) {
                return Err(code::PROTOCOL_ERROR);
            }
            // `validate` in one test at the end (as in `Receiver::process`).
            let mut utf8 = Utf8Validator::new();
            if utf8.feed(reason).is_err() || !utf8.is_boundary() {
                return Err(code::INVALID_PAYLOAD);
            }
            Ok(())
        }
    }
}

/// The code and reason of a valid Close frame body (`None` code for an empty body).
pub fn close_payload(p: &[u8]) -> (Option<u16>, &[u8]) {
    match p {
        [hi, lo, reason @ ..] => (Some(u16::from_be_bytes([*hi, *lo])), reason),
        _ => (None, &[]),
    }
}
