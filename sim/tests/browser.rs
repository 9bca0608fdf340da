//! The chat page in a real browser: headless Chromium loads `GET /` from `mzw1-sim`
//! through the bridge, the page's script opens a WebSocket to `/chat`, sends a message
//! (given in the URL's fragment, `#say=...`) and must see the board broadcast it back.
//! A screenshot and the final DOM are kept in `target/artifacts/`.
//!
//! Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! commands on the child's fd 3, answers on its fd 4, each a JSON text ending in NUL), so
//! the test waits for the echo itself: `--dump-dom` returns as soon as the page has loaded,
//! before the WebSocket is even open, and `--virtual-time-budget` does not wait for
//! WebSocket traffic either (it only holds virtual time for pending fetches).
//!
//! Chromium must be installed (Debian: `apt-get install chromium`; `.ci/run` does it).
//! Without it this test fails, it does not skip. `CHROMIUM=/path/to/chrome` picks another
//! binary.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mzw1-sim");

/// Sent by the page, broadcast back by the board; not ASCII, so UTF-8 must survive the
/// URL, the page, the WebSocket frames both ways and the firmware's validation.
const MESSAGE: &str = "héllo 😀 from chromium";

// --- the simulated board as a process (as in tests/binary.rs) ---

/// A running `mzw1-sim` with its status display on; killed when dropped.
struct Sim {
    child: Child,
    addr: SocketAddr,
    output: Receiver<String>,
}

impl Sim {
    /// Starts the bridge on a free port and waits until it listens.
    fn start() -> Sim {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            // Eight client slots, not the default two: after the page, Chromium opens a
            // connection for /favicon.ico and at times a speculative one that stays idle;
            // with two slots both can be taken when the page's WebSocket arrives, which
            // is then refused with 503 (the page shows "closed (1006)"). Chromium opens
            // at most six connections to a host, so eight slots always leave one.
            .args(["--clients", "8"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mzw1-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, output) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let end = Instant::now() + Duration::from_secs(20);
        let line = loop {
            match output.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) if l.starts_with("listening on ") => break l,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let mut err = String::new();
                    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                    panic!("mzw1-sim never printed `listening on`; stderr: {err}");
                }
            }
        };
        let addr = line["listening on ".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .expect("bound address");
        Sim {
            child,
            addr,
            output,
        }
    }

    /// SIGINT, then the exit status and the rest of stdout (read to its end).
    fn stop(mut self) -> (i32, Vec<String>) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < end, "mzw1-sim did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = Vec::new();
        loop {
            match self.output.recv_timeout(Duration::from_secs(5)) {
                Ok(l) => rest.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("mzw1-sim's stdout stayed open"),
            }
        }
        (status.code().unwrap_or(-1), rest)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- a minimal JSON reader and writer for the DevTools protocol ---

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && b" \t\r\n".contains(&self.s[self.i]) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err("unexpected end".into());
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = match self.value()? {
                        Json::Str(k) => k,
                        other => return Err(format!("object key {other:?}")),
                    };
                    self.ws();
                    if !self.eat(":") {
                        return Err(format!("`:` expected at {}", self.i));
                    }
                    m.push((k, self.value()?));
                    self.ws();
                    if self.eat("}") {
                        return Ok(Json::Obj(m));
                    }
                    if !self.eat(",") {
                        return Err(format!("`,` or `}}` expected at {}", self.i));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(Json::Arr(a));
                    }
                    if !self.eat(",") {
                        return Err(format!("`,` or `]` expected at {}", self.i));
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            _ if self.eat("true") => Ok(Json::Bool(true)),
            _ if self.eat("false") => Ok(Json::Bool(false)),
            _ if self.eat("null") => Ok(Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.0123456789eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad value at {start}"))
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        std::str::from_utf8(h)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| "bad \\u escape".into())
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let &c = self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let &e = self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                u = 0x10000 + ((u - 0xd800) << 10) + (lo.wrapping_sub(0xdc00));
                            }
                            char::from_u32(u).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape \\{}", e as char)),
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every byte but the URL-unreserved ones as `%XX` (UTF-8), for the URL's fragment.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | val(c) as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// --- Chromium over the DevTools pipe ---

/// Headless Chromium with its DevTools protocol on a pipe; killed when dropped.
struct Browser {
    child: Child,
    commands: File,
    answers: Receiver<String>,
    next_id: u64,
    log: PathBuf,
    profile: PathBuf,
}

/// A pipe whose two ends are not 0–4 (so they can be moved onto fd 3 and 4 in the
/// child without clobbering each other) and close on exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is two writable ints; the new descriptors are owned right below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let high = |fd: RawFd| {
        // SAFETY: `fd` was just created and is closed right after being duplicated.
        unsafe {
            let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            assert!(h >= 10, "F_DUPFD_CLOEXEC");
            libc::close(fd);
            OwnedFd::from_raw_fd(h)
        }
    };
    (high(fds[0]), high(fds[1]))
}

impl Browser {
    /// Starts Chromium on `url`; fails the test with the fix if Chromium is missing.
    fn launch(url: &str, window: (u32, u32)) -> Browser {
        use std::os::fd::AsRawFd;
        let exe = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let profile = tmp.join(format!("chromium-profile-{}", std::process::id()));
        let log = tmp.join(format!("chromium-{}.log", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let (cmd_read, cmd_write) = pipe();
        let (ans_read, ans_write) = pipe();
        let (child_in, child_out) = (cmd_read.as_raw_fd(), ans_write.as_raw_fd());
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--headless",
            // Root (CI, containers) cannot use the setuid/namespace sandbox.
            "--no-sandbox",
            "--disable-gpu",
            // Containers often have a 64 MB /dev/shm.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", window.0, window.1))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("chromium log"));
        // SAFETY: only async-signal-safe calls between fork and exec. The sources are
        // >= 10, so the two dup2s cannot clobber each other, and dup2 clears CLOEXEC.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "`{exe}` not found: this test needs Chromium. Install it with \
                 `apt-get update && apt-get install -y --no-install-recommends chromium` \
                 (Debian; .ci/run does this), or set CHROMIUM=/path/to/chromium"
            ),
            Err(e) => panic!("start `{exe}`: {e}"),
        };
        // The parent keeps only its own ends, so EOF on the answers means Chromium is gone.
        drop((cmd_read, ans_write));
        let mut reader = BufReader::new(File::from(ans_read));
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            loop {
                let mut msg = Vec::new();
                match reader.read_until(0, &mut msg) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if msg.last() == Some(&0) {
                            msg.pop();
                        }
                        let text = String::from_utf8(msg).expect("DevTools message in UTF-8");
                        if tx.send(text).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            commands: File::from(cmd_write),
            answers,
            next_id: 1,
            log,
            profile,
        }
    }

    /// The last lines Chromium wrote on stderr, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Without its usual complaints about D-Bus, which does not run here.
        let lines: Vec<_> = text
            .lines()
            .filter(|l| !l.contains(":ERROR:dbus/"))
            .collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Sends a DevTools command (to a page's `session` if given) and returns its `result`.
    fn call(&mut self, session: Option<&str>, method: &str, params: &str) -> Json {
        let id = self.next_id;
        self.next_id += 1;
        let session = session
            .map(|s| format!(",\"sessionId\":{}", json_str(s)))
            .unwrap_or_default();
        let msg = format!("{{\"id\":{id}{session},\"method\":\"{method}\",\"params\":{params}}}\0");
        if let Err(e) = self.commands.write_all(msg.as_bytes()) {
            panic!(
                "DevTools {method}: {e}; chromium said:\n{}",
                self.log_tail()
            );
        }
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let text = match self
                .answers
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(t) => t,
                Err(e) => panic!(
                    "DevTools {method}: no answer ({e:?}); chromium said:\n{}",
                    self.log_tail()
                ),
            };
            let v = Json::parse(&text).unwrap_or_else(|e| panic!("DevTools JSON {e}: {text}"));
            if v.get("id").and_then(Json::num) != Some(id as f64) {
                continue; // an event, or an answer to someone else
            }
            if let Some(err) = v.get("error") {
                panic!("DevTools {method} failed: {err:?}");
            }
            return v.get("result").cloned().unwrap_or(Json::Null);
        }
    }

    /// Closes the browser and waits for it to exit.
    fn close(mut self) {
        let _ = self.call(None, "Browser.close", "{}");
        let end = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < end,
                "chromium did not exit on Browser.close"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What the page shows: the status line and the log's messages.
fn page_state(browser: &mut Browser, session: &str) -> Option<(String, Vec<String>)> {
    const EXPR: &str = "({state: document.getElementById('state')?.textContent ?? null, \
        log: [...document.querySelectorAll('#log p')].map(p => p.textContent)})";
    let params = format!(
        "{{\"expression\":{},\"returnByValue\":true}}",
        json_str(EXPR)
    );
    let r = browser.call(Some(session), "Runtime.evaluate", &params);
    let v = r.get("result")?.get("value")?;
    let state = v.get("state")?.str()?.to_string();
    let log = v
        .get("log")?
        .arr()?
        .iter()
        .filter_map(|p| p.str().map(str::to_string))
        .collect();
    Some((state, log))
}

#[test]
fn chromium_chats_with_the_board_through_the_bridge() {
    let t0 = Instant::now();
    let sim = Sim::start();
    let base = format!("http://{}/", sim.addr);
    let url = format!("{base}#say={}", percent_encode(MESSAGE));
    let mut browser = Browser::launch(&url, (800, 600));

    // The page target Chromium opened for the URL on its command line.
    let end = Instant::now() + Duration::from_secs(20);
    let target = loop {
        let r = browser.call(None, "Target.getTargets", "{}");
        let found = r.get("targetInfos").and_then(Json::arr).and_then(|ts| {
            ts.iter().find_map(|t| {
                let page = t.get("type")?.str()? == "page";
                let ours = t.get("url")?.str()?.starts_with(&base);
                (page && ours).then(|| t.get("targetId")?.str().map(str::to_string))?
            })
        });
        if let Some(id) = found {
            break id;
        }
        assert!(Instant::now() < end, "no page target for {url}: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let params = format!("{{\"targetId\":{},\"flatten\":true}}", json_str(&target));
    let attached = browser.call(None, "Target.attachToTarget", &params);
    let session = attached
        .get("sessionId")
        .and_then(Json::str)
        .expect("sessionId")
        .to_string();

    // Wait until the board has broadcast the message back to the page.
    let end = Instant::now() + Duration::from_secs(20);
    let (state, log) = loop {
        let now = page_state(&mut browser, &session);
        if let Some((state, log)) = &now
            && !log.is_empty()
        {
            break (state.clone(), log.clone());
        }
        // A socket the page saw close will not come back: fail now, with both sides.
        let closed = matches!(&now, Some((s, _)) if s.starts_with("closed"));
        if closed || Instant::now() >= end {
            let chromium = browser.log_tail();
            drop(browser);
            let (_, out) = sim.stop();
            let board = out[out.len().saturating_sub(12)..].join("\n");
            panic!(
                "no echo{}; the page shows {now:?}\nmzw1-sim said:\n{board}\nchromium said:\n{chromium}",
                if closed { "" } else { " within 20 s" }
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let echoed = t0.elapsed();
    assert_eq!(state, "connected", "the page's status");
    assert_eq!(log, [MESSAGE], "the page's log: its own message, once");

    // Keep the evidence: a screenshot and the DOM.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target/artifacts");
    std::fs::create_dir_all(&artifacts).expect("target/artifacts");
    let shot = browser.call(
        Some(&session),
        "Page.captureScreenshot",
        "{\"format\":\"png\"}",
    );
    let png = base64_decode(shot.get("data").and_then(Json::str).expect("PNG data"));
    let png_path = artifacts.join("chat.png");
    std::fs::write(&png_path, &png).expect("write chat.png");
    let dom = browser.call(
        Some(&session),
        "Runtime.evaluate",
        "{\"expression\":\"document.documentElement.outerHTML\",\"returnByValue\":true}",
    );
    let dom = dom
        .get("result")
        .and_then(|r| r.get("value"))
        .and_then(Json::str)
        .expect("outerHTML")
        .to_string();
    std::fs::write(artifacts.join("chat.html"), &dom).expect("write chat.html");
    assert!(
        dom.contains(&format!("<p>{MESSAGE}</p>")),
        "the echo in the DOM"
    );
    let written = std::fs::read(&png_path).expect("read chat.png back");
    assert!(
        written.starts_with(b"\x89PNG\r\n\x1a\n"),
        "chat.png is a PNG"
    );
    assert!(
        written.len() > 5_000,
        "chat.png is only {} bytes",
        written.len()
    );
    browser.close();

    // The board's side: one page served, one WebSocket upgrade, a clean stop.
    let (code, out) = sim.stop();
    assert_eq!(code, 0, "clean exit on SIGINT: {out:?}");
    assert!(out.iter().any(|l| l == "stopped"), "{out:?}");
    let ws = out
        .iter()
        .rev()
        .find(|l| l.trim_start().starts_with("websocket: "))
        .unwrap_or_else(|| panic!("no final websocket status line: {out:?}"));
    assert!(
        ws.contains(" 1 upgrades, 1 pages, ") && ws.contains(" 0 protocol errors,"),
        "final status: {ws}"
    );
    // The message's UTF-8 bytes, once in and once out (a single chat client).
    let n = MESSAGE.len();
    assert!(
        ws.ends_with(&format!(" {n} B in / {n} B out")),
        "final status: {ws}"
    );
    eprintln!(
        "browser: echo seen after {:.2} s, {} B screenshot at {}, done in {:.2} s\n{ws}",
        echoed.as_secs_f64(),
        written.len(),
        png_path.display(),
        t0.elapsed().as_secs_f64()
    );
}
