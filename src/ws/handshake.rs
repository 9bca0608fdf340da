//! The opening handshake (RFC 6455 §4.2), parsed as the bytes arrive.
//!
//! The parser never holds the whole request: it keeps the request-target (bounded), the
//! `Sec-WebSocket-Key`, and one header name or list token at a time, and decides each
//! header as its line ends. A request may arrive split anywhere, over any number of
//! segments. Lines end with CRLF, or a bare LF (RFC 9112 §2.2 lets a recipient accept
//! it); obsolete line folding is refused (RFC 9112 §5.2).
//!
//! Checks (§4.2.1): method `GET`; HTTP/1.1 or later; a `Host` header; `Upgrade` listing
//! the `websocket` token; `Connection` listing the `upgrade` token (a comma list, as
//! Firefox sends `keep-alive, Upgrade`); a `Sec-WebSocket-Key` that decodes to 16 bytes;
//! `Sec-WebSocket-Version: 13`. Optional: an `Origin` allow-list, subprotocol selection
//! from the server's list. A request without `Upgrade: websocket` is a plain HTTP request
//! for the application's page hook.

use super::base64;
use core::mem::MaybeUninit;
use heapless::Vec;

/// Longest request-target kept (longer: 414).
pub const MAX_PATH: usize = 64;
/// Longest header name split across segments, list token or single value (Origin,
/// key, version) examined; longer ones cannot match anything.
const MAX_ORIGIN: usize = 64;

/// Handshake settings.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeConfig {
    /// Request bytes accepted before 431 (request line and headers).
    pub max_request_bytes: u16,
    /// Origins allowed (compared case-insensitively); empty: any origin.
    pub allowed_origins: &'static [&'static str],
    /// Subprotocols the server speaks, in order of preference.
    pub subprotocols: &'static [&'static str],
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            max_request_bytes: 2048,
            allowed_origins: &[],
            subprotocols: &[],
        }
    }
}

/// The 101 status line's text, written once for [`STATUS_LINES`] and the 101 response
/// head (`concat!` takes only literals).
macro_rules! line_101 {
    () => {
        "101 Switching Protocols"
    };
}

/// HTTP status codes the handshake answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 101 Switching Protocols.
    SwitchingProtocols,
    /// 400 Bad Request.
    BadRequest,
    /// 403 Forbidden (Origin not allowed).
    Forbidden,
    /// 404 Not Found (path refused by the application, or no page).
    NotFound,
    /// 405 Method Not Allowed (not GET).
    MethodNotAllowed,
    /// 414 URI Too Long.
    UriTooLong,
    /// 426 Upgrade Required (Sec-WebSocket-Version other than 13).
    UpgradeRequired,
    /// 431 Request Header Fields Too Large.
    HeadersTooLarge,
    /// 503 Service Unavailable (client table full).
    ServiceUnavailable,
    /// 505 HTTP Version Not Supported.
    VersionNotSupported,
    /// 200 OK (a page served by the application hook).
    Ok,
}

impl Status {
    /// The status line's code and reason phrase.
    pub fn line(self) -> &'static [u8] {
        let lines = self.lines();
        let end = lines
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(lines.len());
        lines.get(..end).unwrap_or_default()
    }

    /// The status line's code and reason phrase with its CRLF, and the header lines only
    /// this status carries: one table load, where a `match` and a test per extra header
    /// were a jump table and a call per piece.
    fn lines(self) -> &'static [u8] {
        STATUS_LINES.get(self as usize).copied().unwrap_or_default()
    }
}

/// [`Status::lines`], in the order of [`Status`]'s variants. 426 names the version the
/// server speaks (RFC 6455 §4.2.2 item 4); 405 lists the methods allowed (RFC 9110
/// §15.5.6).
static STATUS_LINES: [&[u8]; 11] = [
    concat!(line_101!(), "\r\n").as_bytes(),
    b"400 Bad Request\r\n",
    b"403 Forbidden\r\n",
    b"404 Not Found\r\n",
    b"405 Method Not Allowed\r\nAllow: GET\r\n",
    b"414 URI Too Long\r\n",
    b"426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n",
    b"431 Request Header Fields Too Large\r\n",
    b"503 Service Unavailable\r\n",
    b"505 HTTP Version Not Supported\r\n",
    b"200 OK\r\n",
];

/// The token characters of RFC 9110 §5.6.2 (`ALPHA`, `DIGIT` and ``!#$%&'*+-.^_`|~``)
/// as a table of 256 flags, one per byte value: [`token_len`] looks up four bytes' flags
/// and ANDs them, about 5 instructions a byte on MIPS32, where a 256-bit set took 13 (224
/// bytes more flash, 590 instructions less for the benchmark's request) and the table a
/// byte at a time 9.
static TCHAR: [bool; 256] = {
    let mut set = [false; 256];
    let mut b = 0usize;
    while b < 128 {
        let c = b as u8;
        let special = matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        );
        set[b] = c.is_ascii_alphanumeric() || special;
        b += 1;
    }
    set
};

/// A small buffer that remembers whether something did not fit.
///
/// `len` is [`Self::OVERFLOW`] once something did not fit: one byte to clear and to test
/// for emptiness, where a separate flag was a second store for each clear and a second
/// load and branch for each test (three of each for every header line).
///
/// Its bytes start uninitialised: a parser is made for every connection, and zeroing 64
/// bytes at an odd offset costs more than the rest of its set-up. Only `..len` is ever
/// read, and every byte there was written by `append`.
#[derive(Clone)]
struct Scratch<const N: usize> {
    bytes: [MaybeUninit<u8>; N],
    len: u8,
}

impl<const N: usize> Scratch<N> {
    /// The `len` of a buffer that something did not fit.
    const OVERFLOW: u8 = u8::MAX;
    const FITS: () = assert!(N < Self::OVERFLOW as usize);

    const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        Scratch {
            bytes: [MaybeUninit::uninit(); N],
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `s` (a piece of a name or value cut by a segment's end: rare, so not
    /// inlined at each of its callers).
    #[inline(never)]
    fn append(&mut self, s: &[u8]) {
        // Once overflowed, `at` (255) is past the end: it stays so.
        let at = self.len as usize;
        match self.bytes.get_mut(at..at + s.len()) {
            Some(d) => {
                d.write_copy_of_slice(s);
                self.len += s.len() as u8;
            }
            None => self.len = Self::OVERFLOW,
        }
    }

    /// The whole of a name, token or value whose last piece is `last`: `last` itself if
    /// nothing was kept before it (a piece whole in one segment: nearly always, and not
    /// copied), else the contents with `last` appended; `None` if the whole is longer
    /// than the buffer, either way, so that the answer does not depend on where
    /// segments end.
    #[inline(always)]
    fn with_last<'a>(&'a mut self, last: &'a [u8]) -> Option<&'a [u8]> {
        if self.is_empty() {
            Some(last).filter(|l| l.len() <= N)
        } else {
            self.append(last);
            self.get()
        }
    }

    /// The contents, or `None` if some did not fit. Inlined into `with_last`'s three
    /// places: 4 bytes more flash than a call, and 30 to 60 instructions less for a
    /// request (what pays for `version_run`'s pattern).
    #[inline(always)]
    fn get(&self) -> Option<&[u8]> {
        if self.len == Self::OVERFLOW {
            return None;
        }
        let written = self.bytes.get(..self.len as usize)?;
        // SAFETY: `len` only grows by the bytes `append` has just written.
        Some(unsafe { written.assume_init_ref() })
    }
}

impl<const N: usize> core::fmt::Debug for Scratch<N> {
    /// What it holds (`None` once something did not fit), not its uninitialised rest.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Scratch").field(&self.get()).finish()
    }
}

/// Case-insensitive equality with `lower`, which holds only lowercase letters, digits and
/// `-`: setting bit 5 (the ASCII case bit) folds `A`–`Z` onto `a`–`z`. Besides the letters'
/// own capitals it folds only control characters onto digits and `-` (CR onto `-`), so it
/// is exact for token characters (header names) and for words of letters only (list
/// tokens compared with "websocket" and "upgrade"). No per-byte range test, unlike
/// `eq_ignore_ascii_case`.
///
/// Four bytes at a time (`lwl`/`lwr` on MIPS32); the last 1 to 3 as the last four,
/// overlapping the word before. Every name and token compared is at least 4 bytes long
/// (`HEADER_BY_LEN` checks the names): a `lower` shorter than that equals nothing, where
/// a byte-by-byte path no caller takes was 84 bytes of flash.
fn eq_lowercase(s: &[u8], lower: &[u8]) -> bool {
    if s.len() != lower.len() {
        return false;
    }
    let folded_eq = |x: &[u8], y: &[u8]| word(x) | 0x2020_2020 == word(y);
    let (Some(s_last), Some(lower_last)) = (s.last_chunk::<4>(), lower.last_chunk::<4>()) else {
        return false;
    };
    s.chunks_exact(4)
        .zip(lower.chunks_exact(4))
        .all(|(x, y)| folded_eq(x, y))
        && folded_eq(s_last, lower_last)
}

/// The first 4 bytes of `chunk` as a little-endian word (0 if it is shorter, which the
/// callers' exact chunks never are).
#[inline(always)]
fn word(chunk: &[u8]) -> u32 {
    chunk
        .first_chunk::<4>()
        .map_or(0, |w| u32::from_le_bytes(*w))
}

/// The offset of the first CR or LF in `s`, or `s.len()`.
///
/// Four bytes at a time: a word with no byte below 0x0E (CR is 0x0D, LF 0x0A) is passed
/// over with one test, `(w - 0x0E0E0E0E) & !w & 0x80808080` ("has a byte less than n",
/// exact as a yes/no for n <= 0x80); the first control byte is nearly always the CR, and
/// from one that is not (a tab) the rest is looked at byte by byte. Header values are
/// printable text, so nearly every word takes the test alone.
fn line_end(s: &[u8]) -> usize {
    let is_end = |b: &u8| *b == b'\r' || *b == b'\n';
    let mut words = s.chunks_exact(4);
    let mut at = 0;
    for chunk in words.by_ref() {
        let w = word(chunk);
        let low = w.wrapping_sub(0x0E0E_0E0E) & !w & 0x8080_8080;
        if low != 0 {
            // The lowest flag marks the first byte below 0x0E (a borrow can only flag
            // bytes above a flagged one): nearly always the CR.
            let k = (low.trailing_zeros() / 8) as usize;
            if chunk.get(k).is_some_and(is_end) {
                return at + k;
            }
            // A tab (or another control byte) first: the rest of the line byte by byte,
            // by the loop for the last 1 to 3 bytes (one loop less).
            break;
        }
        at += 4;
    }
    let rest = s.get(at..).unwrap_or_default();
    at + rest.iter().position(is_end).unwrap_or(rest.len())
}

/// The length of the run of visible characters (`VCHAR`, 21..7E) that starts `s`.
fn graphic_len(s: &[u8]) -> usize {
    s.iter()
        .position(|b| !b.is_ascii_graphic())
        .unwrap_or(s.len())
}

/// The length of the run of token characters that starts `s`. Four bytes a turn: their
/// four flags ANDed, one branch (the per-byte loop spent 9 instructions a byte on MIPS32,
/// two of them unfilled delay slots); the word that ends the run is resolved from the
/// flags already loaded, and a last 1 to 3 bytes one at a time.
fn token_len(s: &[u8]) -> usize {
    let t = |b: u8| u8::from(TCHAR[b as usize]);
    let (words, _) = s.as_chunks::<4>();
    let mut n = 0;
    for &[a, b, c, d] in words {
        let (ta, tb, tc, td) = (t(a), t(b), t(c), t(d));
        if ta & tb & tc & td == 0 {
            return n + if ta == 0 {
                0
            } else if tb == 0 {
                1
            } else if tc == 0 {
                2
            } else {
                3
            };
        }
        n += 4;
    }
    n + s
        .get(n..)
        .unwrap_or_default()
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(s.len() - n)
}

/// Whether `b` is a blank: SP or HTAB, what OWS is made of (RFC 9110 §5.6.3).
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without the blanks at its start (OWS before a field value, RFC 9110 §5.5).
fn without_leading_blanks(s: &[u8]) -> &[u8] {
    let blanks = match s {
        // Nearly always a single space.
        [b' ', next, ..] if !is_blank(*next) => 1,
        _ => s.iter().take_while(|&&b| is_blank(b)).count(),
    };
    s.get(blanks..).unwrap_or_default()
}

/// `s` without the blanks at its end (OWS after a field value, RFC 9110 §5.5).
fn without_trailing_blanks(s: &[u8]) -> &[u8] {
    let blanks = s.iter().rev().take_while(|&&b| is_blank(b)).count();
    s.get(..s.len() - blanks).unwrap_or_default()
}

/// Whether `b` is a token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Which header the current line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Header {
    Host,
    Upgrade,
    Connection,
    Key,
    Version,
    Origin,
    Protocol,
    Other,
}

impl Header {
    fn from_name(name: &[u8]) -> Header {
        // The length picks the one candidate to compare (a request carries a dozen
        // headers, most of them of no interest): two table loads, where a `match` on the
        // length was a jump table and an arm per header.
        let header = HEADER_BY_LEN
            .get(name.len())
            .copied()
            .unwrap_or(Header::Other);
        let candidate = HEADER_NAMES
            .get(header as usize)
            .copied()
            .unwrap_or_default();
        // `Other`'s empty name: no call for a header of no interest.
        if candidate.len() == name.len() && eq_lowercase(name, candidate.as_bytes()) {
            header
        } else {
            Header::Other
        }
    }
}

/// The names of the headers read, lowercase, in the order of [`Header`]'s variants
/// (`Other` has none).
static HEADER_NAMES: [&str; 8] = [
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "origin",
    "sec-websocket-protocol",
    "",
];

/// The header read whose name has this length (no two names have the same).
static HEADER_BY_LEN: [Header; 23] = {
    let mut by_len = [Header::Other; 23];
    let read = [
        Header::Host,
        Header::Upgrade,
        Header::Connection,
        Header::Key,
        Header::Version,
        Header::Origin,
        Header::Protocol,
    ];
    let mut k = 0;
    while k < read.len() {
        let len = HEADER_NAMES[read[k] as usize].len();
        assert!(len >= 4, "a name shorter than a word (`eq_lowercase`)");
        assert!(
            matches!(by_len[len], Header::Other),
            "two names of one length"
        );
        by_len[len] = read[k];
        k += 1;
    }
    by_len
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Method,
    Target,
    Version,
    LineStart,
    Name,
    ValueStart,
    Value,
    LastLf,
    Done,
}

/// What the request asked for, as far as the handshake is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// The request-target (path and query), up to [`MAX_PATH`] bytes (while the method
    /// is read, the method).
    pub path: Vec<u8, MAX_PATH>,
    /// `Upgrade` listed `websocket`.
    pub upgrade_websocket: bool,
    /// `Connection` listed `upgrade`.
    pub connection_upgrade: bool,
    /// A `Host` header was present.
    pub host: bool,
    /// The decoded check of `Sec-WebSocket-Key`: the raw 24 characters if they decode to
    /// 16 bytes.
    pub key: Option<[u8; 24]>,
    /// A `Sec-WebSocket-Key` header was present (valid or not).
    pub key_present: bool,
    /// `Sec-WebSocket-Version` seen, and whether it was exactly 13.
    pub version: Option<bool>,
    /// `Origin` seen, and whether it is allowed.
    pub origin: Option<bool>,
    /// Index in the server's subprotocol list of the one selected.
    pub subprotocol: Option<u8>,
}

/// The parser's progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every byte given was consumed; the request is not complete.
    NeedMore,
    /// The request ended after this many bytes of the input; the rest belongs to what
    /// follows (WebSocket frames).
    Complete(usize),
    /// The request is refused with this status; stop reading.
    Refused(Status),
}

/// A streaming HTTP/1.1 request parser.
#[derive(Clone, Debug)]
pub struct RequestParser {
    phase: Phase,
    /// Bytes seen so far (bounded by `max_request_bytes`).
    seen: u16,
    /// Progress through the version ("HTTP/1.1" and its line end).
    matched: u8,
    get: bool,
    version_ok: bool,
    /// A header value's piece ended with a CR: the next byte must be its LF.
    cr_pending: bool,
    /// Host lines seen (RFC 9112 §3.2: exactly one), and whether a Host value had a
    /// blank inside it (invalid: `uri-host [ ":" port ]` has none).
    host_lines: u8,
    host_bad: bool,
    /// Within a Host value: 1 after its first non-blank byte, 2 after a blank following it.
    host_run: u8,
    major: u8,
    minor: u8,
    header: Header,
    /// The part of a header name, list token or single value (key, version, origin)
    /// that arrived before a segment's end cut it (a piece of any other value too, kept
    /// unread); empty while everything is read in place, as it nearly always is.
    scratch: Scratch<MAX_ORIGIN>,
    /// Offered subprotocols seen so far, as a bit set over the server's list.
    offered: u32,
    request: Request,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// A parser at the start of a request.
    pub const fn new() -> RequestParser {
        RequestParser {
            phase: Phase::Method,
            seen: 0,
            matched: 0,
            get: true,
            version_ok: false,
            cr_pending: false,
            host_lines: 0,
            host_bad: false,
            host_run: 0,
            major: 0,
            minor: 0,
            header: Header::Other,
            scratch: Scratch::new(),
            offered: 0,
            request: Request {
                path: Vec::new(),
                upgrade_websocket: false,
                connection_upgrade: false,
                host: false,
                key: None,
                key_present: false,
                version: None,
                origin: None,
                subprotocol: None,
            },
        }
    }

    /// What has been parsed (complete once [`Progress::Complete`] was returned).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Request bytes seen so far.
    pub fn bytes_seen(&self) -> usize {
        self.seen as usize
    }

    /// Whether the request is GET over HTTP/1.1 or later (valid once complete).
    pub fn is_get(&self) -> bool {
        self.get
    }

    /// Feeds bytes.
    ///
    /// Header names and values are taken a run at a time (a name up to its colon, a
    /// value up to its line end), so most bytes cost one comparison in a tight scan;
    /// the value of a header nobody reads (User-Agent, Accept-*, cookies: most of a
    /// browser's request) is only scanned for its end.
    pub fn feed(&mut self, data: &[u8], config: &HandshakeConfig) -> Progress {
        // Only the bytes within `max_request_bytes` are looked at, so the answer to a
        // request that passes the limit (431) cannot depend on where it was cut: a
        // malformed byte beyond the limit is never seen (found by the fuzz target).
        let room = usize::from(config.max_request_bytes.saturating_sub(self.seen));
        let (data, over) = match data.get(..room) {
            Some(window) if window.len() < data.len() => (window, true),
            _ => (data, false),
        };
        let mut i = 0;
        let refused = loop {
            let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) else {
                break None;
            };
            if self.phase == Phase::Done {
                break None;
            }
            let first = rest.first().copied().unwrap_or(0);
            let used = match self.phase {
                Phase::Method | Phase::Target => self.word_run(rest),
                Phase::Version => self.version_run(rest),
                // A header line (from a token character: a name) or the rest of one.
                Phase::LineStart | Phase::Name | Phase::ValueStart | Phase::Value
                    if self.phase != Phase::LineStart || is_tchar(first) =>
                {
                    self.header_line(rest, config)
                }
                _ => self.step(first).map(|()| 1),
            };
            match used {
                Ok(n) => i += n,
                Err(s) => break Some(s),
            }
        };
        // `i` is at most `room`, so `seen` stays within `max_request_bytes`: no wrap.
        self.seen = self.seen.wrapping_add(i as u16);
        if let Some(s) = refused {
            return Progress::Refused(s);
        }
        if self.phase == Phase::Done {
            return Progress::Complete(i);
        }
        if over {
            return Progress::Refused(Status::HeadersTooLarge);
        }
        Progress::NeedMore
    }

    /// Method or request-target bytes up to and including the space after them. Returns
    /// the bytes used. Both are kept in `path`, the method until its space: one scan
    /// and one copy loop for both words, where each had its own (the method compared
    /// byte by byte with "GET").
    fn word_run(&mut self, rest: &[u8]) -> Result<usize, Status> {
        let end = graphic_len(rest);
        let method = self.phase == Phase::Method;
        for &b in rest.get(..end).unwrap_or_default() {
            if self.request.path.push(b).is_err() {
                if !method {
                    // Byte by byte: a target too long fills the path before it is
                    // refused (414).
                    return Err(Status::UriTooLong);
                }
                // A method this long is not GET (answered later: 405).
                self.get = false;
            }
        }
        match rest.get(end) {
            None => Ok(end),
            Some(b' ') if method => {
                // Methods are case-sensitive (RFC 9110 §9.1); any but GET is answered
                // later (405). A pattern, not `==`: that was a call to `bcmp`.
                self.get &= matches!(self.request.path.as_slice(), b"GET");
                self.request.path.clear();
                self.phase = Phase::Target;
                Ok(end + 1)
            }
            Some(b' ') if !self.request.path.is_empty() => {
                self.phase = Phase::Version;
                Ok(end + 1)
            }
            Some(_) => Err(Status::BadRequest),
        }
    }

    /// Version bytes up to and including the request line's LF (after a CR or bare): a
    /// turn of `feed`'s dispatch for each byte cost 20 instructions more. Returns the
    /// bytes used.
    fn version_run(&mut self, rest: &[u8]) -> Result<usize, Status> {
        for (used, &b) in rest.iter().enumerate() {
            // "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), as a pattern with `0` for a digit,
            // then the LF (after the CR, or bare): an arm for each position was 110 bytes
            // more flash, for 45 instructions less a request.
            let m = self.matched as usize;
            match b"HTTP/0.0\r".get(m) {
                _ if b == b'\n' && m >= 8 => {
                    self.finish_request_line()?;
                    return Ok(used + 1);
                }
                Some(b'0') if b.is_ascii_digit() => {
                    let digit = b - b'0';
                    if m == 5 {
                        self.major = digit;
                    } else {
                        self.minor = digit;
                    }
                }
                Some(&want) if b == want => {}
                _ => return Err(Status::BadRequest),
            }
            self.matched += 1;
        }
        Ok(rest.len())
    }

    /// A header line, or the rest of one begun in an earlier segment: the name (from the
    /// line's first byte, a token character), then the value. A line whole in one
    /// segment, nearly every one, costs one turn of `feed`'s dispatch, not one for each
    /// phase. Returns the bytes used.
    fn header_line(&mut self, rest: &[u8], config: &HandshakeConfig) -> Result<usize, Status> {
        let mut used = 0;
        if self.phase == Phase::LineStart {
            // The scratch buffer is empty already: nothing uses it before the headers,
            // and `end_value` clears it at each line's end.
            self.phase = Phase::Name;
        }
        if self.phase == Phase::Name {
            used = self.name_run(rest)?;
        }
        match rest.get(used..) {
            Some(value) if self.phase != Phase::Name && !value.is_empty() => {
                Ok(used + self.value_run(value, config)?)
            }
            _ => Ok(used),
        }
    }

    /// Header-name bytes up to the colon. Returns the bytes used.
    fn name_run(&mut self, rest: &[u8]) -> Result<usize, Status> {
        let end = token_len(rest);
        let name = rest.get(..end).unwrap_or_default();
        match rest.get(end) {
            None => {
                // The name goes on in the next segment.
                self.scratch.append(name);
                Ok(end)
            }
            Some(b':') => {
                self.header = self
                    .scratch
                    .with_last(name)
                    .map_or(Header::Other, Header::from_name);
                self.scratch.clear();
                self.phase = Phase::ValueStart;
                Ok(end + 1)
            }
            Some(_) => Err(Status::BadRequest),
        }
    }

    /// Header-value bytes up to and including the line feed. Returns the bytes used.
    ///
    /// One scan finds the line's end: its first CR or LF. RFC 9112 §2.2: a bare CR (one
    /// not followed by LF) makes the request invalid; dropping it instead would let
    /// "AQID\rBAUG..." pass as one key. The CR before the LF may end this piece, its LF
    /// starting the next one.
    fn value_run(&mut self, rest: &[u8], config: &HandshakeConfig) -> Result<usize, Status> {
        let end = if core::mem::take(&mut self.cr_pending) {
            if rest.first() != Some(&b'\n') {
                return Err(Status::BadRequest);
            }
            0
        } else {
            line_end(rest)
        };
        let mut run = rest.get(..end).unwrap_or_default();
        let (used, line_done) = match rest.get(end) {
            None => (end, false),
            Some(b'\n') => (end + 1, true),
            // A CR (`line_end` stops at nothing else).
            Some(_) => match rest.get(end + 1) {
                Some(b'\n') => (end + 2, true),
                None => {
                    self.cr_pending = true;
                    (end + 1, false)
                }
                Some(_) => return Err(Status::BadRequest),
            },
        };
        if self.phase == Phase::ValueStart {
            run = without_leading_blanks(run);
            if !run.is_empty() {
                self.phase = Phase::Value;
            }
        }
        match self.header {
            Header::Other => {}
            Header::Host => {
                for &b in run {
                    let blank = is_blank(b);
                    self.host_run = match (blank, self.host_run) {
                        (false, 2) => {
                            self.host_bad = true;
                            2
                        }
                        (false, _) => 1,
                        (true, 0) => 0,
                        (true, _) => 2,
                    };
                }
            }
            Header::Upgrade | Header::Connection | Header::Protocol => {
                // A comma-separated token list (RFC 9110 §5.6.1), a token at a time: a
                // comma ends one; blanks end one too, and between tokens separate
                // nothing. A token cut by the segment's end goes on in the next.
                // One comparison for each byte above the comma (letters, digits, `-`).
                // The line's end ends the last token as a comma would: one call of
                // `end_token` for both.
                let ends_token = |&b: &u8| b <= b',' && (b == b',' || is_blank(b));
                while let Some(k) = run
                    .iter()
                    .position(ends_token)
                    .or(line_done.then_some(run.len()))
                {
                    let (token, rest) = run.split_at_checked(k).unwrap_or_default();
                    if rest.first().is_none_or(|&b| b == b',')
                        || !token.is_empty()
                        || !self.scratch.is_empty()
                    {
                        self.end_token(token, config);
                    }
                    match rest.get(1..) {
                        Some(after) => run = after,
                        None => break,
                    }
                }
            }
            // A single value: read whole by `end_value`.
            Header::Key | Header::Version | Header::Origin => {}
        }
        if line_done {
            self.end_value(run, config);
            self.phase = Phase::LineStart;
        } else {
            // A piece the segment's end cut, kept for the line's end: a single value's,
            // or the list token it ends in. One call for every header: a value nobody
            // reads is rarely cut, and costs a copy of at most 64 bytes before the buffer
            // overflows (a call for each kind of header was 200 bytes more flash).
            self.scratch.append(run);
        }
        Ok(used)
    }

    fn step(&mut self, b: u8) -> Result<(), Status> {
        match self.phase {
            // The empty line that ends the request: CRLF or a bare LF.
            Phase::LineStart | Phase::LastLf => match b {
                b'\r' if self.phase == Phase::LineStart => self.phase = Phase::LastLf,
                b'\n' => self.finish(),
                b' ' | b'\t' => return Err(Status::BadRequest), // obsolete folding
                // A name starts (taken by `feed`) or the line is bad.
                _ => return Err(Status::BadRequest),
            },
            // Taken a run at a time (`word_run`, `version_run`, `name_run`,
            // `value_run`).
            Phase::Method
            | Phase::Target
            | Phase::Version
            | Phase::Name
            | Phase::ValueStart
            | Phase::Value => {}
            Phase::Done => {}
        }
        Ok(())
    }

    /// The request line's LF (after its CR, or bare) has come.
    fn finish_request_line(&mut self) -> Result<(), Status> {
        if self.major == 0 || self.matched < 8 {
            return Err(Status::BadRequest);
        }
        self.version_ok = self.major > 1 || self.minor >= 1;
        self.phase = Phase::LineStart;
        Ok(())
    }

    /// A list token is complete; `last` is its last piece, after what earlier segments
    /// left in the scratch buffer (a token whole in one segment is not copied). Called
    /// from one place, yet not inlined: in the parser's loop it was 330 bytes more flash
    /// and 450 instructions more for a request.
    #[inline(never)]
    fn end_token(&mut self, last: &[u8], config: &HandshakeConfig) {
        let t: &[u8] = self.scratch.with_last(last).unwrap_or_default();
        let r = &mut self.request;
        match self.header {
            Header::Upgrade => r.upgrade_websocket |= eq_lowercase(t, b"websocket"),
            Header::Connection => r.connection_upgrade |= eq_lowercase(t, b"upgrade"),
            Header::Protocol => {
                // Subprotocol names are case-sensitive tokens (§4.2.1 item 9 / §11.5).
                if let Some(i) = config.subprotocols.iter().position(|p| p.as_bytes() == t) {
                    self.offered |= 1 << (i.min(31));
                }
            }
            _ => {}
        }
        self.scratch.clear();
    }

    /// A header line is complete; `last` is the last piece of its value. A single value
    /// whole in one segment is read where it lies; one begun in an earlier segment is
    /// completed in the scratch buffer.
    fn end_value(&mut self, last: &[u8], config: &HandshakeConfig) {
        match self.header {
            Header::Host => {
                // RFC 9112 §3.2: more than one Host line, or an invalid value, is a 400.
                self.host_lines = self.host_lines.saturating_add(1);
                self.host_run = 0;
                self.request.host = self.host_lines == 1 && !self.host_bad;
            }
            Header::Key | Header::Version | Header::Origin => self.end_single(last, config),
            _ => {}
        }
        self.scratch.clear();
    }

    /// The line of a single value (key, version, origin) is complete: `end_value` for
    /// them, the only headers whose value is read whole (the other lines of a request,
    /// most of them, skip completing and trimming a value nobody reads).
    fn end_single(&mut self, last: &[u8], config: &HandshakeConfig) {
        let value = self.scratch.with_last(last).map(without_trailing_blanks);
        // A single value that did not fit cannot match anything.
        let single: &[u8] = value.unwrap_or(b"\xff");
        match self.header {
            Header::Key => {
                // A second Sec-WebSocket-Key is refused (§11.3.1: it must not appear more
                // than once): the request then has no valid key, and gets 400.
                let repeated = self.request.key_present;
                self.request.key_present = true;
                let valid = !repeated && single.len() == 24 && base64::decode_key(single).is_some();
                self.request.key = single.first_chunk::<24>().copied().filter(|_| valid);
            }
            Header::Version => {
                // A second Version header must agree; anything but "13" fails.
                let ok = single == b"13";
                self.request.version = Some(self.request.version.unwrap_or(true) && ok);
            }
            Header::Origin => {
                let allowed = config.allowed_origins.is_empty()
                    || value.is_some_and(|v| {
                        config
                            .allowed_origins
                            .iter()
                            .any(|o| o.as_bytes().eq_ignore_ascii_case(v))
                    });
                self.request.origin = Some(self.request.origin.unwrap_or(true) && allowed);
            }
            _ => {}
        }
    }

    /// The empty line: the request is complete.
    fn finish(&mut self) {
        self.phase = Phase::Done;
        // The server's preference among what the client offered: the lowest bit set
        // (`end_token` sets bits of the server's list only, the last for any beyond 31).
        self.request.subprotocol = (self.offered != 0).then(|| self.offered.trailing_zeros() as u8);
    }

    /// The verdict on a complete request: 101 for a valid WebSocket upgrade, `Ok` for a
    /// plain HTTP GET (the page hook decides), or the refusal.
    pub fn verdict(&self) -> Status {
        let r = &self.request;
        if !self.version_ok {
            // HTTP/1.0: RFC 6455 §4.2.1 asks for HTTP/1.1 or higher, and §4.2.2 answers a
            // request that fails it with 400. Not 505, which RFC 9110 §15.6.6 keeps for a
            // major version the server refuses (1.0 shares 1.1's).
            return Status::BadRequest;
        }
        if !self.get {
            return Status::MethodNotAllowed;
        }
        if !r.upgrade_websocket {
            return Status::Ok;
        }
        if !r.host || !r.connection_upgrade || r.key.is_none() {
            return Status::BadRequest;
        }
        if r.version != Some(true) {
            return Status::UpgradeRequired;
        }
        if r.origin == Some(false) {
            return Status::Forbidden;
        }
        Status::SwitchingProtocols
    }
}

/// The GUID of RFC 6455 §1.3.
pub const GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)) (§4.2.2 item 5.4).
pub fn accept_key(key: &[u8; 24]) -> [u8; 28] {
    // One fixed-size message hashed in one call, the firmware's only use of SHA-1: the
    // hasher's buffering then works on constants, so none of its bounds checks survives
    // optimisation (`cargo xtask size` checks that no panic path is linked).
    let mut msg = [0u8; 60];
    msg[..24].copy_from_slice(key);
    msg[24..].copy_from_slice(GUID);
    base64::encode_20(&sha1_smol::Sha1::from(msg).digest().bytes())
}

/// Writes the response head for `status` into `out`: `Ok` with its length, or, if `out`
/// is too small, `Err` with the length it needs (so a caller can tell a head too long
/// for any buffer it has from one waiting for room; a 101 without an accept key is
/// `Err(usize::MAX)`). 101 carries the accept key and the subprotocol; 426 carries
/// `Sec-WebSocket-Version: 13`; every other response closes the connection
/// (`Connection: close`) and has an empty body unless `content_length` says otherwise.
pub fn write_response(
    out: &mut [u8],
    status: Status,
    accept: Option<&[u8; 28]>,
    subprotocol: Option<&str>,
    content_type: Option<&str>,
    content_length: usize,
) -> Result<usize, usize> {
    let mut w = Writer {
        out,
        len: 0,
        fits: true,
    };
    if status == Status::SwitchingProtocols {
        let Some(accept) = accept else {
            return Err(usize::MAX);
        };
        // The fixed text in as few pieces as it allows: each is a call and a copy.
        w.put(
            concat!(
                "HTTP/1.1 ",
                line_101!(),
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
            )
            .as_bytes(),
        );
        w.put(accept);
        if let Some(p) = subprotocol {
            w.put(b"\r\nSec-WebSocket-Protocol: ");
            w.put(p.as_bytes());
        }
        w.put(b"\r\n\r\n");
    } else {
        w.put(b"HTTP/1.1 ");
        w.put(status.lines());
        if let Some(t) = content_type {
            w.put(b"Content-Type: ");
            w.put(t.as_bytes());
            w.put(b"\r\n");
        }
        w.put(b"Content-Length: ");
        w.put_decimal(content_length);
        w.put(b"\r\nConnection: close\r\n\r\n");
    }
    if w.fits { Ok(w.len) } else { Err(w.len) }
}

/// A head being written: `len` counts every byte put, `fits` says whether `out` took
/// them all.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
    fits: bool,
}

impl Writer<'_> {
    /// Out of line, and through `crate::copy`: inlined, each of the response's fixed
    /// strings became its own run of byte loads and stores (414 bytes more flash, for
    /// 280 to 400 instructions less per response).
    #[inline(never)]
    fn put(&mut self, s: &[u8]) {
        let end = self.len.saturating_add(s.len());
        match self.out.get_mut(self.len..end) {
            Some(d) if self.fits => crate::copy::copy(d, s),
            _ => self.fits = false,
        }
        self.len = end;
    }

    #[inline(always)] // One caller; LLVM keeps it out of line, for 136 bytes more flash.
    fn put_decimal(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::{
        HandshakeConfig, Header, MAX_PATH, Progress, RequestParser, Status, accept_key,
        eq_lowercase, is_tchar, line_end, write_response,
    };

    /// The method shares the path's buffer while it is read: one longer than that is
    /// still a method that is not GET (405), not a target too long (414), and the target
    /// after it has the whole buffer.
    #[test]
    fn a_long_method_is_not_a_long_target() {
        let config = HandshakeConfig::default();
        let target = [b'/'; MAX_PATH];
        for method_len in [2, 3, 4, MAX_PATH - 1, MAX_PATH, MAX_PATH + 1, 200] {
            let mut request = [b'G'; 200].get(..method_len).unwrap().to_vec();
            if method_len == 3 {
                request = b"GET".to_vec();
            }
            request.push(b' ');
            request.extend_from_slice(&target);
            request.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
            let mut p = RequestParser::new();
            assert_eq!(
                p.feed(&request, &config),
                Progress::Complete(request.len()),
                "method of {method_len}"
            );
            assert_eq!(p.is_get(), method_len == 3, "method of {method_len}");
            assert_eq!(&p.request().path[..], &target[..]);
            let want = if method_len == 3 {
                Status::Ok
            } else {
                Status::MethodNotAllowed
            };
            assert_eq!(p.verdict(), want, "method of {method_len}");
        }
    }

    /// Every byte value at every position of the version and its line end, against the
    /// grammar written out: `HTTP/` DIGIT `.` DIGIT, then CRLF or a bare LF.
    #[test]
    fn version_is_http_digit_dot_digit() {
        let config = HandshakeConfig::default();
        let want = |v: &[u8]| -> Option<(u8, u8)> {
            let (major, minor) = (*v.get(5)?, *v.get(7)?);
            let end = v.get(8..)?;
            let ok = v.starts_with(b"HTTP/")
                && major.is_ascii_digit()
                && v[6] == b'.'
                && minor.is_ascii_digit()
                && (end == b"\r\n" || end == b"\n");
            ok.then(|| (major - b'0', minor - b'0'))
        };
        for line in [&b"HTTP/1.1\r\n"[..], b"HTTP/1.1\n"] {
            for at in 0..line.len() {
                // An LF ends the line where it is (the bare-LF line has one at its end).
                for b in (0..=255u8).filter(|&b| b != b'\n') {
                    let mut version = line.to_vec();
                    version[at] = b;
                    let mut request = b"GET / ".to_vec();
                    request.extend_from_slice(&version);
                    request.extend_from_slice(b"\r\n");
                    let mut p = RequestParser::new();
                    let got = p.feed(&request, &config);
                    match want(&version) {
                        Some((0, _)) => {
                            assert_eq!(got, Progress::Refused(Status::BadRequest), "{version:?}")
                        }
                        Some((major, minor)) => {
                            assert_eq!(got, Progress::Complete(request.len()), "{version:?}");
                            let old = major == 1 && minor == 0;
                            assert_eq!(p.verdict() == Status::BadRequest, old, "{version:?}");
                        }
                        None => assert!(
                            matches!(got, Progress::Refused(Status::BadRequest)),
                            "{version:?}: {got:?}"
                        ),
                    }
                }
            }
        }
    }

    /// Every byte value at every position of lines of 0 to 11 bytes (each word position
    /// and the tail), against the byte-at-a-time definition.
    #[test]
    fn line_end_finds_the_first_cr_or_lf() {
        let want = |s: &[u8]| {
            s.iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(s.len())
        };
        for len in 0..12 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut line = [b'a'; 12];
                    let s = &mut line[..len];
                    s[at] = b;
                    assert_eq!(line_end(s), want(s), "{s:?}");
                    // A second candidate after it never wins over the first.
                    if at + 1 < len {
                        s[at + 1] = b'\n';
                        assert_eq!(line_end(s), want(s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn write_response_measures_what_does_not_fit() {
        let accept = accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        let mut big = [0u8; 512];
        for (status, accept, proto, ctype, len) in [
            (
                Status::SwitchingProtocols,
                Some(&accept),
                Some("chat.v2"),
                None,
                0,
            ),
            (Status::NotFound, None, None, Some("text/plain"), 12_345),
            (Status::ServiceUnavailable, None, None, None, 0),
        ] {
            let Ok(n) = write_response(&mut big, status, accept, proto, ctype, len) else {
                panic!("{status:?} fits 512 bytes");
            };
            for short in [0, 1, n / 2, n - 1] {
                let mut out = [0u8; 512];
                let got = write_response(&mut out[..short], status, accept, proto, ctype, len);
                assert_eq!(got, Err(n), "{status:?} in {short} bytes");
            }
        }
        assert_eq!(
            write_response(&mut big, Status::SwitchingProtocols, None, None, None, 0),
            Err(usize::MAX),
            "a 101 needs its key"
        );
    }

    /// `STATUS_LINES` is indexed by the variant: each status's lines start with its code.
    #[test]
    fn status_lines_follow_the_variants() {
        for (status, code) in [
            (Status::SwitchingProtocols, "101 "),
            (Status::BadRequest, "400 "),
            (Status::Forbidden, "403 "),
            (Status::NotFound, "404 "),
            (Status::MethodNotAllowed, "405 "),
            (Status::UriTooLong, "414 "),
            (Status::UpgradeRequired, "426 "),
            (Status::HeadersTooLarge, "431 "),
            (Status::ServiceUnavailable, "503 "),
            (Status::VersionNotSupported, "505 "),
            (Status::Ok, "200 "),
        ] {
            assert!(status.line().starts_with(code.as_bytes()), "{status:?}");
            assert!(status.lines().ends_with(b"\r\n"), "{status:?}");
        }
        assert_eq!(Status::NotFound.line(), b"404 Not Found");
    }

    /// `HEADER_NAMES` is indexed by the variant: each name, in any case, is its header.
    #[test]
    fn header_names_follow_the_variants() {
        for (name, header) in [
            ("Host", Header::Host),
            ("UPGRADE", Header::Upgrade),
            ("Connection", Header::Connection),
            ("Sec-WebSocket-Key", Header::Key),
            ("Sec-WebSocket-Version", Header::Version),
            ("Origin", Header::Origin),
            ("Sec-WebSocket-Protocol", Header::Protocol),
            ("Accept", Header::Other),
            ("Hostx", Header::Other),
            ("", Header::Other),
        ] {
            assert_eq!(Header::from_name(name.as_bytes()), header, "{name}");
        }
    }

    #[test]
    fn tchar_is_rfc_9110_token_characters() {
        // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" /
        // "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "byte {b:#04x}");
        }
    }

    #[test]
    fn eq_lowercase_folds_only_the_case_bit() {
        let want = |s: &[u8], l: &[u8]| {
            s.len() == l.len() && s.iter().zip(l).all(|(&a, &b)| a | 0x20 == b)
        };
        // Every length mod 4.
        let names = [
            "sec-websocket-version",
            "connection",
            "host",
            "upgrade",
            "websocket",
        ];
        // Shorter than a word: equal to nothing, itself included.
        for name in ["", "a", "ab", "a-9"] {
            assert!(!eq_lowercase(name.as_bytes(), name.as_bytes()), "{name:?}");
        }
        for name in names {
            let l = name.as_bytes();
            for at in 0..l.len() {
                for b in 0..=255u8 {
                    let mut buf = [0u8; 32];
                    let s = &mut buf[..l.len()];
                    s.copy_from_slice(l);
                    s[at] = b;
                    assert_eq!(eq_lowercase(s, l), want(s, l), "{s:?}");
                }
            }
            let mut upper = [0u8; 32];
            let upper = &mut upper[..l.len()];
            upper.copy_from_slice(l);
            upper.make_ascii_uppercase();
            assert!(eq_lowercase(upper, l));
            assert!(!eq_lowercase(&l[..l.len() - 1], l));
        }
    }
}
