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
use heapless::Vec;

/// Longest request-target kept (longer: 414).
pub const MAX_PATH: usize = 64;
/// Longest header name or list token examined; longer ones are skipped (names) or
/// cannot match anything (tokens).
const MAX_TOKEN: usize = 32;
/// Longest Origin value compared.
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
        match self {
            Status::SwitchingProtocols => b"101 Switching Protocols",
            Status::Ok => b"200 OK",
            Status::BadRequest => b"400 Bad Request",
            Status::Forbidden => b"403 Forbidden",
            Status::NotFound => b"404 Not Found",
            Status::MethodNotAllowed => b"405 Method Not Allowed",
            Status::UriTooLong => b"414 URI Too Long",
            Status::UpgradeRequired => b"426 Upgrade Required",
            Status::HeadersTooLarge => b"431 Request Header Fields Too Large",
            Status::ServiceUnavailable => b"503 Service Unavailable",
            Status::VersionNotSupported => b"505 HTTP Version Not Supported",
        }
    }
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
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("host") {
            Header::Host
        } else if is("upgrade") {
            Header::Upgrade
        } else if is("connection") {
            Header::Connection
        } else if is("sec-websocket-key") {
            Header::Key
        } else if is("sec-websocket-version") {
            Header::Version
        } else if is("origin") {
            Header::Origin
        } else if is("sec-websocket-protocol") {
            Header::Protocol
        } else {
            Header::Other
        }
    }

    /// Headers whose value is a comma-separated token list.
    fn is_list(self) -> bool {
        matches!(
            self,
            Header::Upgrade | Header::Connection | Header::Protocol
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Method,
    Target,
    Version,
    RequestLineEnd,
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
    /// The request-target (path and query), up to [`MAX_PATH`] bytes.
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
    /// Progress through "GET" / "HTTP/1.".
    matched: u8,
    get: bool,
    version_ok: bool,
    major: u8,
    minor: u8,
    header: Header,
    token: Vec<u8, MAX_TOKEN>,
    token_overflow: bool,
    origin: Vec<u8, MAX_ORIGIN>,
    origin_overflow: bool,
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
            major: 0,
            minor: 0,
            header: Header::Other,
            token: Vec::new(),
            token_overflow: false,
            origin: Vec::new(),
            origin_overflow: false,
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
    pub fn feed(&mut self, data: &[u8], config: &HandshakeConfig) -> Progress {
        for (i, &b) in data.iter().enumerate() {
            if self.phase == Phase::Done {
                return Progress::Complete(i);
            }
            self.seen = self.seen.saturating_add(1);
            if self.seen > config.max_request_bytes {
                return Progress::Refused(Status::HeadersTooLarge);
            }
            if let Err(s) = self.step(b, config) {
                return Progress::Refused(s);
            }
            if self.phase == Phase::Done {
                return Progress::Complete(i + 1);
            }
        }
        Progress::NeedMore
    }

    fn step(&mut self, b: u8, config: &HandshakeConfig) -> Result<(), Status> {
        match self.phase {
            Phase::Method => {
                // Methods are case-sensitive (RFC 9110 §9.1).
                if b == b' ' {
                    self.get &= self.matched == 3;
                    self.matched = 0;
                    self.phase = Phase::Target;
                } else if b.is_ascii_graphic() {
                    self.get &= b"GET".get(self.matched as usize) == Some(&b);
                    self.matched = self.matched.saturating_add(1);
                } else {
                    return Err(Status::BadRequest);
                }
            }
            Phase::Target => {
                if b == b' ' {
                    if self.request.path.is_empty() {
                        return Err(Status::BadRequest);
                    }
                    self.phase = Phase::Version;
                } else if b.is_ascii_graphic() {
                    self.request.path.push(b).map_err(|_| Status::UriTooLong)?;
                } else {
                    return Err(Status::BadRequest);
                }
            }
            Phase::Version => {
                // "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3).
                let m = self.matched as usize;
                match m {
                    0..=4 => {
                        if b"HTTP/".get(m) != Some(&b) {
                            return Err(Status::BadRequest);
                        }
                    }
                    5 if b.is_ascii_digit() => self.major = b - b'0',
                    6 if b == b'.' => {}
                    7 if b.is_ascii_digit() => self.minor = b - b'0',
                    8 if b == b'\r' => {}
                    8 | 9 if b == b'\n' => {
                        self.finish_request_line()?;
                        return Ok(());
                    }
                    _ => return Err(Status::BadRequest),
                }
                self.matched += 1;
                if m == 8 {
                    self.phase = Phase::RequestLineEnd;
                }
            }
            Phase::RequestLineEnd => {
                if b != b'\n' {
                    return Err(Status::BadRequest);
                }
                self.finish_request_line()?;
            }
            Phase::LineStart => match b {
                b'\r' => self.phase = Phase::LastLf,
                b'\n' => self.finish(config)?,
                b' ' | b'\t' => return Err(Status::BadRequest), // obsolete folding
                _ => {
                    self.token.clear();
                    self.token_overflow = false;
                    self.phase = Phase::Name;
                    self.name_byte(b)?;
                }
            },
            Phase::Name => {
                if b == b':' {
                    self.header = if self.token_overflow {
                        Header::Other
                    } else {
                        Header::from_name(&self.token)
                    };
                    self.token.clear();
                    self.token_overflow = false;
                    self.origin.clear();
                    self.origin_overflow = false;
                    self.phase = Phase::ValueStart;
                } else {
                    self.name_byte(b)?;
                }
            }
            Phase::ValueStart | Phase::Value => match b {
                b' ' | b'\t' if self.phase == Phase::ValueStart => {}
                b'\r' => {}
                b'\n' => {
                    self.end_value(config);
                    self.phase = Phase::LineStart;
                }
                _ => {
                    self.phase = Phase::Value;
                    self.value_byte(b, config);
                }
            },
            Phase::LastLf => {
                if b != b'\n' {
                    return Err(Status::BadRequest);
                }
                self.finish(config)?;
            }
            Phase::Done => {}
        }
        Ok(())
    }

    fn finish_request_line(&mut self) -> Result<(), Status> {
        if self.major == 0 || self.matched < 8 {
            return Err(Status::BadRequest);
        }
        self.version_ok = self.major > 1 || self.minor >= 1;
        self.phase = Phase::LineStart;
        Ok(())
    }

    /// A header-name byte: a token character (RFC 9110 §5.6.2).
    fn name_byte(&mut self, b: u8) -> Result<(), Status> {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if !tchar {
            return Err(Status::BadRequest);
        }
        if self.token.push(b).is_err() {
            self.token_overflow = true;
        }
        Ok(())
    }

    fn value_byte(&mut self, b: u8, config: &HandshakeConfig) {
        match self.header {
            Header::Origin => {
                if self.origin.push(b).is_err() {
                    self.origin_overflow = true;
                }
            }
            h if h.is_list() && b == b',' => {
                self.end_token(config);
            }
            Header::Other => {}
            _ => {
                if b == b' ' || b == b'\t' {
                    // Whitespace inside a list separates nothing; around a single value
                    // it is trimmed. Either way a token is complete when it ends.
                    if self.header.is_list() && !self.token.is_empty() {
                        self.end_token(config);
                    }
                    return;
                }
                if self.token.push(b).is_err() {
                    self.token_overflow = true;
                }
            }
        }
    }

    /// A list token (or a single value) is complete.
    fn end_token(&mut self, config: &HandshakeConfig) {
        let t: &[u8] = if self.token_overflow {
            &[]
        } else {
            &self.token
        };
        let r = &mut self.request;
        match self.header {
            Header::Upgrade => r.upgrade_websocket |= t.eq_ignore_ascii_case(b"websocket"),
            Header::Connection => r.connection_upgrade |= t.eq_ignore_ascii_case(b"upgrade"),
            Header::Protocol => {
                // Subprotocol names are case-sensitive tokens (§4.2.1 item 9 / §11.5).
                if let Some(i) = config.subprotocols.iter().position(|p| p.as_bytes() == t) {
                    self.offered |= 1 << (i.min(31));
                }
            }
            _ => {}
        }
        self.token.clear();
        self.token_overflow = false;
    }

    /// A header line is complete.
    fn end_value(&mut self, config: &HandshakeConfig) {
        let single: &[u8] = if self.token_overflow {
            b"\xff"
        } else {
            &self.token
        };
        match self.header {
            Header::Host => self.request.host = true,
            Header::Key => {
                // A second Sec-WebSocket-Key is refused (§11.3.1: it must not appear more
                // than once): the request then has no valid key, and gets 400.
                let repeated = self.request.key_present;
                self.request.key_present = true;
                self.request.key = single
                    .first_chunk::<24>()
                    .filter(|_| {
                        !repeated && single.len() == 24 && base64::decode_key(single).is_some()
                    })
                    .copied();
            }
            Header::Version => {
                // A second Version header must agree; anything but "13" fails.
                let ok = single == b"13";
                self.request.version = Some(self.request.version.unwrap_or(true) && ok);
            }
            Header::Origin => {
                let value = self.origin.trim_ascii_end();
                let allowed = config.allowed_origins.is_empty()
                    || (!self.origin_overflow
                        && config
                            .allowed_origins
                            .iter()
                            .any(|o| o.as_bytes().eq_ignore_ascii_case(value)));
                self.request.origin = Some(self.request.origin.unwrap_or(true) && allowed);
            }
            h if h.is_list() => self.end_token(config),
            _ => {}
        }
        self.token.clear();
        self.token_overflow = false;
    }

    /// The empty line: the request is complete.
    fn finish(&mut self, config: &HandshakeConfig) -> Result<(), Status> {
        self.phase = Phase::Done;
        self.request.subprotocol = if self.offered != 0 {
            // The server's preference among what the client offered.
            (0..config.subprotocols.len().min(32))
                .find(|&i| self.offered & (1 << i) != 0)
                .map(|i| i as u8)
        } else {
            None
        };
        Ok(())
    }

    /// The verdict on a complete request: 101 for a valid WebSocket upgrade, `Ok` for a
    /// plain HTTP GET (the page hook decides), or the refusal.
    pub fn verdict(&self) -> Status {
        let r = &self.request;
        if !self.version_ok {
            return Status::VersionNotSupported;
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

/// Writes the response head for `status` into `out`; returns its length, or `None` if
/// `out` is too small. 101 carries the accept key and the subprotocol; 426 carries
/// `Sec-WebSocket-Version: 13`; every other response closes the connection
/// (`Connection: close`) and has an empty body unless `content_length` says otherwise.
pub fn write_response(
    out: &mut [u8],
    status: Status,
    accept: Option<&[u8; 28]>,
    subprotocol: Option<&str>,
    content_type: Option<&str>,
    content_length: usize,
) -> Option<usize> {
    let mut w = Writer { out, len: 0 };
    w.put(b"HTTP/1.1 ")?;
    w.put(status.line())?;
    w.put(b"\r\n")?;
    if status == Status::SwitchingProtocols {
        w.put(b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")?;
        w.put(accept?)?;
        w.put(b"\r\n")?;
        if let Some(p) = subprotocol {
            w.put(b"Sec-WebSocket-Protocol: ")?;
            w.put(p.as_bytes())?;
            w.put(b"\r\n")?;
        }
    } else {
        if status == Status::UpgradeRequired {
            w.put(b"Sec-WebSocket-Version: 13\r\n")?;
        }
        if status == Status::MethodNotAllowed {
            w.put(b"Allow: GET\r\n")?;
        }
        if let Some(t) = content_type {
            w.put(b"Content-Type: ")?;
            w.put(t.as_bytes())?;
            w.put(b"\r\n")?;
        }
        w.put(b"Content-Length: ")?;
        w.put_decimal(content_length)?;
        w.put(b"\r\nConnection: close\r\n")?;
    }
    w.put(b"\r\n")?;
    Some(w.len)
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) -> Option<()> {
        let end = self.len.checked_add(s.len())?;
        self.out.get_mut(self.len..end)?.copy_from_slice(s);
        self.len = end;
        Some(())
    }

    fn put_decimal(&mut self, mut n: usize) -> Option<()> {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            *digits.get_mut(i)? = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..)?)
    }
}
