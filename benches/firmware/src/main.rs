//! Benchmarks of the real firmware code on QEMU's Malta board, instructions counted
//! exactly by the QEMU plugin (`cargo xtask bench-target` runs it all).
//!
//! - Kernels of `mzw1-wss`: WebSocket unmasking and UTF-8 validation over 4 KiB, the
//!   internet checksum over a full TCP segment; two parts of the WebSocket upgrade
//!   (`mzw1-bench-ws` measures the whole): `upgrade_parse`, the streaming request parser
//!   over a browser's 432-byte request and its verdict, and `upgrade_response`, the
//!   accept key (SHA-1 and base64) and the 101 response written into a buffer.
//! - A TCP echo server on the MAC driver and stack of `mzw1-wss`, set up as the reference
//!   app (`mzw1-reference`: its `Config::default()`, DMA region and connection table):
//!   a handshake, a 16-byte and a 1400-byte echo, each measured from the entry of
//!   interrupt vector 165 to its `eret`. The echo handler is the reference app's TCP
//!   echo as it was before the WebSocket service (the same code, kept here), so these
//!   figures stay comparable with smoltcp's whatever the reference app serves.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::hint::black_box;
    use mzw1_bench_harness::Shared;
    use mzw1_bench_harness::board::{Board, WINDOW};
    use mzw1_bench_harness::client::{Endpoint, inet_checksum};
    use mzw1_bench_harness::inputs::{
        Aligned, KERNEL_BYTES, MASK_KEY, SEGMENT_BYTES, ascii_text, mixed_text, unmask_input,
    };
    use mzw1_bench_harness::runner::{self, Stack, TcpBench};
    use mzw1_bench_harness::ws::{KEYS, upgrade_accepted, upgrade_request};
    use mzw1_bench_harness::{BenchError, now, rt};
    use mzw1_reference::{CONNECTIONS, Config, Dma};
    use mzw1_wss::mac::{IrqShared, Mac};
    use mzw1_wss::net::tcp::{ConnId, TcpApi, TcpEvent, TcpHandler};
    use mzw1_wss::net::{Interface, Link, NetConfig};
    use mzw1_wss::ws::handshake::{
        self, HandshakeConfig, Progress, RequestParser, Status, accept_key,
    };

    /// Descriptors and packet buffers (ordinary RAM on Malta).
    static mut DMA: Dma = Dma::new();
    static IRQ: IrqShared = IrqShared::new();
    static APP: Shared<EchoApp> = Shared::new();

    /// Echoes every byte it receives, written straight from the RX buffer into a TX
    /// buffer; closes when the peer closes (the reference app's TCP echo).
    struct Echo;

    impl TcpHandler for Echo {
        fn on_data(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, data: &mut [u8]) -> usize {
            let mut done = 0;
            while let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
                let sent = tcp.send(conn, rest.len(), |buf| {
                    let n = buf.len().min(rest.len());
                    if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    n
                });
                match sent {
                    Ok(n) if n > 0 => done += n,
                    // No room: what is left stays in its RX buffer and is offered again.
                    _ => break,
                }
            }
            done
        }

        fn on_event(&mut self, tcp: &mut TcpApi<'_, '_>, conn: ConnId, event: TcpEvent) {
            if event == TcpEvent::PeerClosed {
                tcp.close(conn);
            }
        }
    }

    /// The echo server: the stack and its handler.
    struct EchoApp {
        net: Interface<'static, CONNECTIONS>,
        echo: Echo,
    }

    /// What vector 165 calls: acknowledge, then handle what arrived right away.
    #[unsafe(no_mangle)]
    extern "C" fn mzw1_eth_interrupt() {
        APP.with(|app, now| app.net.on_interrupt(now, &mut app.echo));
    }

    #[unsafe(no_mangle)]
    extern "C" fn bench_main() -> ! {
        runner::header("ours");
        let mut code = runner::outcome("micro", micro());
        if code == 0 {
            code = runner::outcome("upgrade", parts());
        }
        if code == 0 {
            code = runner::outcome("tcp", tcp());
        }
        rt::exit(code)
    }

    const WARMUP: [&str; 2] = [".warmup", ""];

    /// The kernels, on word-aligned 4 KiB (as payloads are in the DMA buffers).
    fn micro() -> Result<(), BenchError> {
        let mut buf = Aligned::new();
        unmask_input(&mut buf.0);
        let original = buf.0;

        // The brackets themselves: what every micro-benchmark figure includes.
        for suffix in WARMUP {
            let (c, ()) = rt::measure(|| ());
            rt::report("", "bracket_empty", suffix, c, 0, None);
        }

        for suffix in WARMUP {
            let (c, _) = rt::measure(|| {
                mzw1_wss::ws::mask::apply_mask(black_box(MASK_KEY), 0, black_box(&mut buf.0[..]))
            });
            rt::report("", "unmask4k", suffix, c, KERNEL_BYTES, None);
        }
        // Applied twice: back to the original.
        if buf.0 != original {
            return Err(BenchError::WrongResult);
        }

        ascii_text(&mut buf.0);
        for suffix in WARMUP {
            let (c, r) = rt::measure(|| mzw1_wss::ws::utf8::validate(black_box(&buf.0[..])));
            rt::report("", "utf8_ascii4k", suffix, c, KERNEL_BYTES, None);
            r.map_err(|_| BenchError::WrongResult)?;
        }

        mixed_text(&mut buf.0);
        for suffix in WARMUP {
            let (c, r) = rt::measure(|| mzw1_wss::ws::utf8::validate(black_box(&buf.0[..])));
            rt::report("", "utf8_mixed4k", suffix, c, KERNEL_BYTES, None);
            r.map_err(|_| BenchError::WrongResult)?;
        }
        // The MIPS code refuses what `core` refuses, where `core` does, at a few places
        // of the mixed text (27 bytes a round: é € 😀 ü 中 𝄞 ß 語 🎉): a stray
        // continuation (0), a lead without its continuation (1), F0 A0 (6 and 96: valid,
        // left by the word loop to the byte-by-byte path), a surrogate (1019: 語 E8 AA 9E
        // made ED AA 9E), and a lead cut short by the end (4095).
        for (at, byte) in [
            (0, 0x80),
            (1, 0xC0),
            (6, 0xA0),
            (96, 0xA0),
            (1019, 0xED),
            (4095, 0xE2),
        ] {
            let text = &mut buf.0;
            let Some(old) = text.get(at).copied() else {
                return Err(BenchError::WrongResult);
            };
            if let Some(b) = text.get_mut(at) {
                *b = byte;
            }
            let want = core::str::from_utf8(text)
                .map(|_| ())
                .map_err(|e| e.valid_up_to());
            let got = mzw1_wss::ws::utf8::validate(black_box(&text[..])).map_err(|e| {
                match e.error_len() {
                    Some(_) => e.offset() - e.prefix_len(),
                    None => text.len() - e.prefix_len(),
                }
            });
            if let Some(b) = text.get_mut(at) {
                *b = old;
            }
            if want != got {
                return Err(BenchError::WrongResult);
            }
        }
        // A full segment, word-aligned, and as a TCP segment sits in a frame buffer (the
        // TCP header 34 bytes in: 2 mod 4).
        for (name, at) in [("checksum1460", 0), ("checksum1460_off2", 2)] {
            let segment = buf
                .0
                .get(at..at + SEGMENT_BYTES)
                .ok_or(BenchError::WrongResult)?;
            for suffix in WARMUP {
                let (c, sum) =
                    rt::measure(|| mzw1_wss::net::checksum::checksum(black_box(segment)));
                rt::report("", name, suffix, c, SEGMENT_BYTES, None);
                if sum != inet_checksum(segment, 0) {
                    return Err(BenchError::WrongResult);
                }
            }
        }
        checksum_agrees()?;
        utf8_agrees()?;
        siphash_agrees()?;
        memory_agrees()
    }

    /// The ISN's SipHash-2-4 (its 64-bit rotations in MIPS assembly, which the host tests
    /// never run) against known answers: the paper's 16-byte vector (key and message
    /// 00..0f) and three computed with a plain SipHash-2-4, over all-ones, high bytes and
    /// all-zeros (not measured).
    fn siphash_agrees() -> Result<(), BenchError> {
        use mzw1_wss::net::tcp::isn::siphash24;
        let counting: [u8; 16] = core::array::from_fn(|i| i as u8);
        let high: [u8; 16] = core::array::from_fn(|i| 0x80 + i as u8);
        for (key, msg, want) in [
            (counting, counting, 0x3f2a_cc7f_57c2_9bdb),
            ([0xFF; 16], [0xFF; 16], 0x1a27_dd85_9ed2_9a2e),
            (high, [0xA5; 16], 0x26de_2564_2ac8_f41e),
            ([0; 16], [0; 16], 0x32ca_ecc2_8017_2976),
        ] {
            if siphash24(black_box(&key), black_box(&msg)) != want {
                return Err(BenchError::WrongResult);
            }
        }
        Ok(())
    }

    /// The target's `memcpy` and `memset` (hand-written for MIPS, `mzw1_wss::copy`),
    /// byte by byte: every source and destination offset modulo 4, every length from 0 to
    /// 300 and some up to 1,500; the copy must equal the source, the fill its byte, the
    /// bytes around the destination must keep their 0xA5 and the source its contents
    /// (not measured). The 0xA5 is written and every byte read through `black_box`, so
    /// neither the set-up nor the checks become calls to `memset` or `memcpy`.
    fn memory_agrees() -> Result<(), BenchError> {
        const AREA: usize = 1600;
        let pattern = |i: usize| (i as u8).wrapping_mul(151).wrapping_add(i as u8 >> 3);
        let mut src = [0u8; AREA];
        for (i, b) in src.iter_mut().enumerate() {
            *b = pattern(i);
        }
        let mut dst = [0u8; AREA];
        let lengths = (0..=300).chain([301, 511, 512, 513, 1023, 1459, 1460, 1500]);
        for len in lengths {
            for so in 0..4 {
                for d in 0..4 {
                    for b in dst.iter_mut() {
                        *b = black_box(0xA5);
                    }
                    let (Some(from), Some(to)) = (src.get(so..so + len), dst.get_mut(d..d + len))
                    else {
                        return Err(BenchError::WrongResult);
                    };
                    to.copy_from_slice(black_box(from));
                    for (i, &b) in dst.iter().enumerate() {
                        let want = match i.checked_sub(d) {
                            Some(k) if k < len => src.get(so + k).copied().unwrap_or(0),
                            _ => 0xA5,
                        };
                        if black_box(b) != want {
                            return Err(BenchError::WrongResult);
                        }
                    }
                    if src
                        .iter()
                        .enumerate()
                        .any(|(i, &b)| black_box(b) != pattern(i))
                    {
                        return Err(BenchError::WrongResult);
                    }
                    let fill = (len as u8).wrapping_add(so as u8);
                    if let Some(to) = dst.get_mut(d..d + len) {
                        to.fill(black_box(fill));
                    }
                    for (i, &b) in dst.iter().enumerate() {
                        let inside = i.checked_sub(d).is_some_and(|k| k < len);
                        let want = if inside { fill } else { 0xA5 };
                        if black_box(b) != want {
                            return Err(BenchError::WrongResult);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The target's UTF-8 validator (its word loop hand-written for MIPS) against
    /// `core::str::from_utf8`: 20,000 pieces of a text of ASCII runs and 2- to 4-byte
    /// characters, at every start offset modulo 64 and lengths 0 to 299, with up to 3
    /// bytes replaced by lead, continuation, boundary or random bytes; validated whole
    /// and fed in two pieces split anywhere (the valid prefix and the error length must
    /// agree; not measured).
    fn utf8_agrees() -> Result<(), BenchError> {
        use mzw1_wss::ws::utf8::{Utf8Error, Utf8Validator, validate};
        const BYTES: [u8; 16] = [
            0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4,
            0xF5, 0x41,
        ];
        // The valid prefix and error length of a message, from an error in the piece
        // that starts at `start`.
        fn verdict(e: Utf8Error, start: usize, len: usize) -> (usize, Option<usize>) {
            let at = match e.error_len() {
                Some(_) => start + e.offset(),
                None => len,
            };
            (at - e.prefix_len(), e.error_len())
        }
        let mut x: u32 = 0x9E37_79B9;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        // The text: ASCII runs of 1 to 48 bytes (beyond 32, the word loop hands the run
        // on to the aligned scan) between 1 to 4 characters of 2 to 4 bytes.
        const CHARS: [&str; 9] = ["é", "€", "😀", "ü", "中", "𝄞", "ß", "語", "🎉"];
        let mut buf = Aligned::new();
        let mut at = 0;
        while at < buf.0.len() {
            let r = next();
            let mut piece = [b'a'; 64];
            let mut n = 0;
            if r & 1 == 0 {
                n = 1 + (r >> 1) as usize % 48;
                for (k, b) in piece.iter_mut().take(n).enumerate() {
                    *b = b'a' + ((r >> 8) as usize + k) as u8 % 26;
                }
            } else {
                for k in 0..1 + (r >> 1) as usize % 4 {
                    let c = CHARS[(r >> (4 + 4 * k)) as usize % CHARS.len()].as_bytes();
                    if let Some(d) = piece.get_mut(n..n + c.len()) {
                        d.copy_from_slice(c);
                    }
                    n += c.len();
                }
            }
            let n = n.min(buf.0.len() - at);
            if let (Some(d), Some(p)) = (buf.0.get_mut(at..at + n), piece.get(..n)) {
                d.copy_from_slice(p);
            }
            at += n;
        }
        // Whole characters only: a character cut by the end becomes ASCII.
        let valid = core::str::from_utf8(&buf.0).map_or_else(|e| e.valid_up_to(), |_| buf.0.len());
        for b in buf.0.iter_mut().skip(valid) {
            *b = b'z';
        }
        for _ in 0..20_000 {
            let r = next();
            let (start, len) = ((r & 63) as usize, (r >> 8) as usize % 300);
            let mut saved = [(0usize, 0u8); 3];
            let replaced = (r >> 24) as usize % 4;
            for k in 0..replaced {
                let r = next();
                let at = start + (r as usize >> 8) % len.max(1);
                let byte = match BYTES.get((r & 31) as usize) {
                    Some(&b) => b,
                    None => (r >> 24) as u8,
                };
                let old = buf.0.get_mut(at).map(|b| core::mem::replace(b, byte));
                if let (Some(slot), Some(old)) = (saved.get_mut(k), old) {
                    *slot = (at, old);
                }
            }
            let text = buf
                .0
                .get(start..start + len)
                .ok_or(BenchError::WrongResult)?;
            let want = core::str::from_utf8(text)
                .map(|_| ())
                .map_err(|e| (e.valid_up_to(), e.error_len()));
            let whole = validate(black_box(text)).map_err(|e| verdict(e, 0, len));
            let split = next() as usize % (len + 1);
            let (a, b) = text.split_at_checked(split).unwrap_or((text, &[]));
            let mut v = Utf8Validator::new();
            let pieces = v
                .feed(black_box(a))
                .map_err(|e| verdict(e, 0, len))
                .and_then(|()| v.feed(black_box(b)).map_err(|e| verdict(e, split, len)))
                .and_then(|()| v.finish().map_err(|e| verdict(e, len, len)));
            // Undone in reverse, so a byte replaced twice gets its original back.
            for &(at, old) in saved.iter().take(replaced).rev() {
                if let Some(b) = buf.0.get_mut(at) {
                    *b = old;
                }
            }
            if whole != want || pieces != want {
                return Err(BenchError::WrongResult);
            }
        }
        Ok(())
    }

    /// The target's checksum (hand-written for MIPS) against the harness's plain one, on
    /// every start offset modulo 8, lengths 0 to 300 and a few longer, whole and split in
    /// two, on random bytes, all-ones and all-zeros (not measured).
    fn checksum_agrees() -> Result<(), BenchError> {
        use mzw1_wss::net::checksum::{Checksum, checksum};
        let mut buf = Aligned::new();
        let mut x: u32 = 0x2545_F491;
        for fill in 0..3 {
            for b in buf.0.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = [x as u8, 0xFF, 0][fill];
            }
            for at in 0..8 {
                for len in (0..=300).chain([511, 512, 513, 1459, 1460, 1461, 4000]) {
                    let data = buf.0.get(at..at + len).ok_or(BenchError::WrongResult)?;
                    let want = inet_checksum(data, 0);
                    if checksum(black_box(data)) != want {
                        return Err(BenchError::WrongResult);
                    }
                    for split in [1, 2, 3, 4, 5, 7, len / 2, len.saturating_sub(3)] {
                        let (a, b) = data.split_at_checked(split).unwrap_or((data, &[]));
                        let mut c = Checksum::new();
                        c.add(black_box(a));
                        c.add(black_box(b));
                        if c.finish() != want {
                            return Err(BenchError::WrongResult);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Two parts of the WebSocket upgrade alone, on the benchmark's request (see
    /// `benches/harness/src/ws.rs`): the request parser and the 101 response.
    fn parts() -> Result<(), BenchError> {
        let mut request = [0u8; 512];
        let key = KEYS[1];
        let n = upgrade_request(key.key, &mut request).ok_or(BenchError::WrongResult)?;
        let request = request.get(..n).ok_or(BenchError::WrongResult)?;
        let config = HandshakeConfig::default();
        let mut parser = RequestParser::new();
        for suffix in WARMUP {
            let (c, verdict) = rt::measure(|| {
                parser = RequestParser::new();
                match parser.feed(black_box(request), &config) {
                    Progress::Complete(_) => Some(parser.verdict()),
                    _ => None,
                }
            });
            rt::report("", "upgrade_parse", suffix, c, n, None);
            if verdict != Some(Status::SwitchingProtocols) {
                return Err(BenchError::WrongResult);
            }
        }
        let k = parser.request().key.ok_or(BenchError::WrongResult)?;
        let mut out = [0u8; 192];
        for suffix in WARMUP {
            let (c, len) = rt::measure(|| {
                let accept = accept_key(black_box(&k));
                handshake::write_response(
                    &mut out,
                    Status::SwitchingProtocols,
                    Some(&accept),
                    None,
                    None,
                    0,
                )
            });
            rt::report("", "upgrade_response", suffix, c, 0, None);
            let response = len
                .ok()
                .and_then(|l| out.get(..l))
                .ok_or(BenchError::WrongResult)?;
            if !upgrade_accepted(response, key.accept) {
                return Err(BenchError::WrongResult);
            }
        }
        Ok(())
    }

    /// The echo server on the stand-in controller, brought up as the reference app is.
    fn tcp() -> Result<(), BenchError> {
        let p = Board::peripherals();
        let config = Config::default();
        // SAFETY: the one place that takes the DMA region.
        let dma = unsafe { &mut *core::ptr::addr_of_mut!(DMA) };
        let mac = Mac::new(p, dma, WINDOW, &IRQ, config.mac, now());
        let link = Link {
            mac: config.mac.mac_address,
            ip: config.ip,
        };
        let net = Interface::new(
            mac,
            NetConfig {
                link,
                tcp: config.tcp,
            },
        );
        let app = EchoApp { net, echo: Echo };
        APP.put(app);
        let server = Endpoint {
            mac: config.mac.mac_address,
            ip: config.ip.address,
        };
        let stack = Stack {
            poll: || {
                APP.with(|app, now| app.net.poll(now, &mut app.echo));
            },
            link_up: || {
                APP.with(|app, _| app.net.mac().link().is_some())
                    .unwrap_or(false)
            },
        };
        let mut bench =
            TcpBench::new(stack, Board::attach(), "", server).ok_or(BenchError::WrongResult)?;
        bench.run_tcp()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "mzw1-bench-firmware runs on QEMU's Malta board (mipsel-unknown-none).\n\
         Build and run it with: cargo xtask bench-target"
    );
}
