//! The frame receiver (RFC 6455 §5): the RFC's own examples, every split of a frame
//! stream into segments, every rule that fails a connection, and backpressure.

use mzw1_wss::ws::frame::{
    FrameSink, MessageKind, Opcode, Receiver, close_code_valid, encode_header,
};

/// A client frame, masked, built here independently of the firmware's code.
fn frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![(fin as u8) << 7 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[derive(Default, Debug)]
struct Rec {
    messages: Vec<(MessageKind, Vec<u8>)>,
    current: Vec<u8>,
    kinds: Vec<MessageKind>,
    controls: Vec<(Opcode, Vec<u8>)>,
    /// At most this many bytes per data call (backpressure); None = all.
    limit: Option<usize>,
    refuse_controls: usize,
    /// Refuse this many empty (message start/end) chunks.
    refuse_markers: usize,
    firsts: usize,
}

impl FrameSink for Rec {
    fn data(
        &mut self,
        chunk: &mut [u8],
        kind: MessageKind,
        first: bool,
        last: bool,
    ) -> Option<usize> {
        if chunk.is_empty() && self.refuse_markers > 0 {
            self.refuse_markers -= 1;
            return None;
        }
        let n = self.limit.map_or(chunk.len(), |l| l.min(chunk.len()));
        if first && (n > 0 || chunk.is_empty()) {
            self.firsts += 1;
            assert!(
                self.current.is_empty(),
                "first chunk while a message is open"
            );
        }
        self.current.extend_from_slice(&chunk[..n]);
        if last && n == chunk.len() {
            self.messages
                .push((kind, std::mem::take(&mut self.current)));
        }
        self.kinds.push(kind);
        Some(n)
    }
    fn control(&mut self, opcode: Opcode, payload: &[u8]) -> bool {
        if self.refuse_controls > 0 {
            self.refuse_controls -= 1;
            return false;
        }
        self.controls.push((opcode, payload.to_vec()));
        true
    }
}

/// Feeds `stream` in pieces (split at `cuts`), re-offering what the receiver leaves.
fn run(stream: &[u8], cuts: &[usize], rec: &mut Rec) -> Result<(), u16> {
    let mut rx = Receiver::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        pending.extend_from_slice(&stream[last..cut]);
        last = cut;
        for _ in 0..10_000 {
            let n = rx.process(&mut pending, rec)?;
            pending.drain(..n);
            if n == 0 || pending.is_empty() {
                break;
            }
        }
    }
    // Drain what backpressure left.
    for _ in 0..100_000 {
        if pending.is_empty() {
            break;
        }
        let n = rx.process(&mut pending, rec)?;
        pending.drain(..n);
    }
    Ok(())
}

#[test]
fn rfc6455_section_5_7_examples() {
    // A single-frame masked text message "Hello".
    let f = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut rec = Rec::default();
    run(&f, &[], &mut rec).unwrap();
    assert_eq!(rec.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
    // A fragmented text message, masked by the client.
    let mut s = frame(false, 0x1, b"Hel", [1, 2, 3, 4]);
    s.extend(frame(true, 0x0, b"lo", [5, 6, 7, 8]));
    let mut rec = Rec::default();
    run(&s, &[], &mut rec).unwrap();
    assert_eq!(rec.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
    // The server's unmasked "Hello" header, and 256 / 65536-byte binary headers.
    let mut out = [0u8; 10];
    assert_eq!(encode_header(&mut out, true, Opcode::Text, 5), Some(2));
    assert_eq!(out[..2], [0x81, 0x05]);
    assert_eq!(encode_header(&mut out, true, Opcode::Binary, 256), Some(4));
    assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(
        encode_header(&mut out, true, Opcode::Binary, 65536),
        Some(10)
    );
    assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(encode_header(&mut out, true, Opcode::Pong, 0), Some(2));
    assert_eq!(out[..2], [0x8A, 0x00]);
}

/// Messages as the sink assembles them.
type Messages = Vec<(MessageKind, Vec<u8>)>;

fn sample_stream() -> (Vec<u8>, Messages, usize) {
    let text: String = "héllo wörld, καλημέρα, 你好 🎉 ".repeat(20);
    let bin: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    let mut s = Vec::new();
    s.extend(frame(true, 0x1, text.as_bytes(), [9, 8, 7, 6]));
    // Fragmented text split inside multi-byte characters, with a ping between fragments.
    let t = text.as_bytes();
    s.extend(frame(false, 0x1, &t[..3], [1, 1, 1, 1]));
    s.extend(frame(true, 0x9, b"ping!", [2, 2, 2, 2]));
    s.extend(frame(false, 0x0, &t[3..100], [3, 3, 3, 3]));
    s.extend(frame(false, 0x0, &[], [4, 4, 4, 4]));
    s.extend(frame(true, 0x0, &t[100..], [5, 5, 5, 5]));
    s.extend(frame(true, 0x2, &bin, [0xDE, 0xAD, 0xBE, 0xEF]));
    s.extend(frame(true, 0x1, b"", [0, 0, 0, 0]));
    s.extend(frame(true, 0xA, b"", [7, 7, 7, 7]));
    s.extend(frame(
        true,
        0x8,
        &[0x03, 0xE8, b'b', b'y', b'e'],
        [6, 6, 6, 6],
    ));
    let want = vec![
        (MessageKind::Text, text.as_bytes().to_vec()),
        (MessageKind::Text, text.as_bytes().to_vec()),
        (MessageKind::Binary, bin),
        (MessageKind::Text, Vec::new()),
    ];
    (s, want, 3)
}

#[test]
fn every_single_split_point() {
    let (s, want, controls) = sample_stream();
    for cut in (0..s.len()).step_by(7).chain(0..64) {
        let mut rec = Rec::default();
        run(&s, &[cut], &mut rec).unwrap_or_else(|c| panic!("cut {cut}: failed with {c}"));
        assert_eq!(rec.messages, want, "cut {cut}");
        assert_eq!(rec.controls.len(), controls);
    }
}

#[test]
fn byte_by_byte_and_random_segments() {
    let (s, want, _) = sample_stream();
    let cuts: Vec<usize> = (1..s.len()).collect();
    let mut rec = Rec::default();
    run(&s, &cuts, &mut rec).unwrap();
    assert_eq!(rec.messages, want);
    let mut x = 12345u64;
    for _ in 0..50 {
        let mut cuts = Vec::new();
        let mut at = 0;
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            at += 1 + (x % 1500) as usize;
            if at >= s.len() {
                break;
            }
            cuts.push(at);
        }
        let mut rec = Rec::default();
        run(&s, &cuts, &mut rec).unwrap();
        assert_eq!(rec.messages, want);
        assert_eq!(rec.controls[0], (Opcode::Ping, b"ping!".to_vec()));
        assert_eq!(
            rec.controls[2],
            (Opcode::Close, vec![0x03, 0xE8, b'b', b'y', b'e'])
        );
    }
}

#[test]
fn backpressure_hands_over_each_byte_once() {
    let (s, want, _) = sample_stream();
    for limit in [1, 3, 100, 1459] {
        let mut rec = Rec {
            limit: Some(limit),
            ..Rec::default()
        };
        run(&s, &[1000, 2000, 5000, 70_000], &mut rec).unwrap();
        assert_eq!(rec.messages, want, "limit {limit}");
    }
}

#[test]
fn a_refused_control_frame_is_offered_again_first() {
    let mut s = frame(true, 0x9, b"p1", [1, 2, 3, 4]);
    s.extend(frame(true, 0x2, b"data", [1, 2, 3, 4]));
    let mut rx = Receiver::new();
    let mut rec = Rec {
        refuse_controls: 1,
        ..Rec::default()
    };
    let n = rx.process(&mut s.clone(), &mut rec).unwrap();
    assert_eq!(n, 8, "the ping's bytes are consumed, the data frame is not");
    assert!(rec.controls.is_empty() && rec.messages.is_empty());
    let mut rest = s[n..].to_vec();
    let m = rx.process(&mut rest, &mut rec).unwrap();
    assert_eq!(m, rest.len());
    assert_eq!(rec.controls, vec![(Opcode::Ping, b"p1".to_vec())]);
    assert_eq!(rec.messages, vec![(MessageKind::Binary, b"data".to_vec())]);
}

fn fails(stream: &[u8]) -> u16 {
    let mut rec = Rec::default();
    match run(stream, &[], &mut rec) {
        Err(code) => code,
        Ok(()) => panic!("accepted: {stream:02x?}"),
    }
}

#[test]
fn protocol_errors_fail_with_1002() {
    let m = [1, 2, 3, 4];
    for rsv in [0x40u8, 0x20, 0x10] {
        let mut f = frame(true, 0x1, b"x", m);
        f[0] |= rsv;
        assert_eq!(fails(&f), 1002, "RSV {rsv:#x}");
    }
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        assert_eq!(fails(&frame(true, op, b"", m)), 1002, "opcode {op:#x}");
    }
    assert_eq!(fails(&frame(false, 0x9, b"", m)), 1002, "fragmented ping");
    assert_eq!(
        fails(&frame(true, 0x9, &[0; 126], m)),
        1002,
        "ping over 125 bytes"
    );
    assert_eq!(
        fails(&frame(true, 0x8, &[0; 126], m)),
        1002,
        "close over 125 bytes"
    );
    let mut unmasked = frame(true, 0x1, b"x", m);
    unmasked[1] &= 0x7F;
    assert_eq!(fails(&unmasked), 1002, "unmasked client frame");
    assert_eq!(
        fails(&frame(true, 0x0, b"x", m)),
        1002,
        "continuation with no message"
    );
    let mut s = frame(false, 0x1, b"a", m);
    s.extend(frame(true, 0x1, b"b", m));
    assert_eq!(fails(&s), 1002, "new message inside a fragmented one");
    let mut s = frame(false, 0x2, b"a", m);
    s.extend(frame(true, 0x2, b"b", m));
    assert_eq!(fails(&s), 1002);
    // A 64-bit length with the top bit set (a 2^63-byte payload).
    let f = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(fails(&f), 1002);
}

#[test]
fn huge_declared_lengths_are_streamed_not_buffered() {
    // 2^62 bytes declared: accepted, and the first bytes stream out at once.
    let mut f = vec![0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&[7u8; 100]);
    let mut rx = Receiver::new();
    let mut rec = Rec::default();
    assert_eq!(rx.process(&mut f, &mut rec), Ok(114));
    assert_eq!(rec.current, vec![7u8; 100]);
    assert!(rec.messages.is_empty());
}

#[test]
fn invalid_utf8_fails_fast_with_1007() {
    let m = [9, 9, 9, 9];
    assert_eq!(fails(&frame(true, 0x1, &[0xC0, 0x80], m)), 1007, "overlong");
    assert_eq!(
        fails(&frame(true, 0x1, &[0xED, 0xA0, 0x80], m)),
        1007,
        "surrogate"
    );
    assert_eq!(
        fails(&frame(true, 0x1, &[b'a', 0xE2, 0x82], m)),
        1007,
        "truncated at the end"
    );
    // Across fragments: the message ends inside a character.
    let mut s = frame(false, 0x1, &[0xE2, 0x82], m);
    s.extend(frame(true, 0x0, &[], m));
    assert_eq!(fails(&s), 1007);
    // Fail fast: a long frame whose first segment already holds an invalid byte fails
    // before the rest arrives, and nothing of it is delivered.
    let mut payload = vec![b'a'; 10_000];
    payload[20] = 0xFF;
    let f = frame(true, 0x1, &payload, m);
    let mut rx = Receiver::new();
    let mut rec = Rec::default();
    assert_eq!(rx.process(&mut f[..200].to_vec(), &mut rec), Err(1007));
    assert!(rec.current.is_empty());
    assert!(rx.failed());
}

#[test]
fn close_frames_are_validated() {
    let m = [5, 6, 7, 8];
    assert_eq!(
        fails(&frame(true, 0x8, &[0x03], m)),
        1002,
        "one-byte close body"
    );
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert_eq!(
            fails(&frame(true, 0x8, &code.to_be_bytes(), m)),
            1002,
            "code {code}"
        );
        assert!(!close_code_valid(code));
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let mut rec = Rec::default();
        run(&frame(true, 0x8, &code.to_be_bytes(), m), &[], &mut rec).unwrap();
        assert_eq!(rec.controls.len(), 1, "code {code}");
    }
    let mut body = 1000u16.to_be_bytes().to_vec();
    body.extend_from_slice(&[0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE]);
    assert_eq!(
        fails(&frame(true, 0x8, &body, m)),
        1007,
        "reason ends inside a character"
    );
    let mut rec = Rec::default();
    run(&frame(true, 0x8, &[], m), &[], &mut rec).unwrap();
    assert_eq!(
        rec.controls,
        vec![(Opcode::Close, vec![])],
        "an empty close body is valid"
    );
}

#[test]
fn a_refused_message_end_is_offered_again_first() {
    // "ab" then an empty final continuation: the end of the message is an empty chunk,
    // which the sink refuses once; it must come back before the next message.
    let mut s = frame(false, 0x1, b"ab", [9, 8, 7, 6]);
    s.extend(frame(true, 0x0, b"", [9, 8, 7, 6]));
    s.extend(frame(true, 0x2, b"", [1, 1, 1, 1]));
    let mut rx = Receiver::new();
    let mut rec = Rec {
        refuse_markers: 1,
        ..Rec::default()
    };
    let n = rx.process(&mut s.clone(), &mut rec).unwrap();
    assert_eq!(n, 8 + 6, "stops after the frame whose end was refused");
    assert!(rec.messages.is_empty());
    let mut rest = s[n..].to_vec();
    let m = rx.process(&mut rest, &mut rec).unwrap();
    assert_eq!(m, rest.len());
    assert_eq!(
        rec.messages,
        vec![
            (MessageKind::Text, b"ab".to_vec()),
            (MessageKind::Binary, Vec::new())
        ]
    );
}
