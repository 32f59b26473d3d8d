//! Deliberately broken TCP servers for the conformance tests: a
//! `ServerConnection` per connection (thread per connection), broken by
//! rewriting the client's frames before our connection sees them, rewriting
//! its output frames, or replacing the loop. Our real server is in `ours.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use upcase::conn::{ServerConfig, ServerConnection};
use upcase::wire::{
    ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameRepr, FrameType, PREFACE, PREFACE_LEN,
};

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// TEXT fragments are decoded one by one (lossily): no carried code points.
    NoCarry,
    /// Reply addresses are the request's, not swapped (unspecified ones still filled in).
    NoSwap,
    /// Invalid UTF-8 inside a fragmented message is only reported at the last fragment.
    LateUtf8,
    /// BYTES get Unicode upper case when they happen to be UTF-8.
    UnicodeBytes,
    /// The connection is closed after ERROR(UNKNOWN_TYPE).
    ClosesOnUnknownType,
    /// One client at a time: the tutorial's accept loop.
    Serial,
    /// Raw only; each recv() is upper-cased on its own (split code points lost).
    RawPerRecv,
    /// PONG or ERROR with MORE gets UNEXPECTED_TYPE (not fatal) instead of
    /// MALFORMED: the type is checked before MORE on a control frame.
    UnexpectedBeforeMalformed,
    /// A non-fatal ERROR inside an open TEXT message abandons it: the next
    /// fragment starts a new message, so a carried code point's tail is
    /// INVALID_UTF8.
    AbandonsMessageOnError,
    /// Frames written in one go with a BYE are answered (before the BYE).
    AnswersFramesBehindBye,
    /// The idle timer restarts at every byte, not only at complete frames.
    IdleRestartsOnBytes,
    /// At the connection limit only a version-1 preface gets BUSY; any
    /// other version is closed without reply (needs a limit).
    BusyOnlyForVersion1,
    /// Conforming, but closes at once after its BYE (linger 0): allowed,
    /// though SPEC.md §5.4 says it SHOULD NOT close first.
    NoLinger,
    /// Conforming, on Unicode 14.0: the code points whose upper case is new
    /// since then come back unchanged (TEXT and raw).
    Unicode14,
    /// Conforming (for the connection-limit tests).
    Conforming,
}

/// A connection limit, and how late a slot is freed after a connection ends.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Connections served at once; more get BUSY (SPEC.md §9.3).
    pub max: usize,
    /// How long after a connection has ended its slot is freed.
    pub free_delay: Duration,
    /// When: `false` models a server slow to notice a close (the slot is
    /// freed, then the socket closed, `free_delay` after the client's close);
    /// `true` one that closes at once and frees the slot `free_delay` later.
    pub free_after_close: bool,
}

/// A server on 127.0.0.1:0, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(flavor: Flavor, config: ServerConfig) -> TestServer {
        TestServer::limited(flavor, config, None)
    }

    pub fn limited(flavor: Flavor, config: ServerConfig, limit: Option<Limit>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let config = config.clone();
                if let Some(limit) = limit {
                    if open.load(Ordering::SeqCst) >= limit.max {
                        std::thread::spawn(move || busy(stream, flavor));
                        continue;
                    }
                    open.fetch_add(1, Ordering::SeqCst);
                    let open = open.clone();
                    std::thread::spawn(move || {
                        let mut stream = stream;
                        serve(&mut stream, flavor, config);
                        if limit.free_after_close {
                            drop(stream);
                            std::thread::sleep(limit.free_delay);
                        } else {
                            std::thread::sleep(limit.free_delay);
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                } else if flavor == Flavor::Serial {
                    serve(&mut { stream }, flavor, config);
                } else {
                    std::thread::spawn(move || serve(&mut { stream }, flavor, config));
                }
            }
        });
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; connection threads end with their clients.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection over the limit (SPEC.md §9.3): read up to 8 bytes; the
/// magic and any version get our preface and ERROR(BUSY), anything else a
/// close without reply.
fn busy(mut stream: TcpStream, flavor: Flavor) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut preface = [0u8; PREFACE_LEN];
    if stream.read_exact(&mut preface).is_err() || preface[..7] != PREFACE[..7] {
        return;
    }
    if flavor == Flavor::BusyOnlyForVersion1 && preface[7] != PREFACE[7] {
        return;
    }
    let mut reply = BytesMut::from(&PREFACE[..]);
    let error = FrameRepr {
        src: stream.local_addr().expect("local").into(),
        dst: stream.peer_addr().expect("peer").into(),
        ..FrameRepr::new(
            FrameType::Error,
            ErrorPayload::new(ErrorCode::BUSY, "busy").to_bytes(),
        )
    };
    error.encode(&mut reply);
    let _ = stream.write_all(&reply);
    // Read and discard until the client closes, so the ERROR is not reset away.
    let mut sink = [0u8; 1024];
    while let Ok(1..) = stream.read(&mut sink) {}
}

fn serve(stream: &mut TcpStream, flavor: Flavor, config: ServerConfig) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    if flavor == Flavor::RawPerRecv {
        return raw_per_recv(stream);
    }
    let _ = drive(stream, flavor, config);
}

/// The tutorial's loop, made lossless: every recv() upper-cased on its own.
fn raw_per_recv(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        let mut out = Vec::new();
        for chunk in buf[..n].utf8_chunks() {
            out.extend_from_slice(chunk.valid().to_uppercase().as_bytes());
            out.extend_from_slice(chunk.invalid());
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The std::net loop around one `ServerConnection`, with the flavor's rewrites.
fn drive(stream: &mut TcpStream, flavor: Flavor, mut config: ServerConfig) -> std::io::Result<()> {
    let max_frame = config.max_data_len;
    // IdleRestartsOnBytes keeps the idle timer itself, restarted at each byte.
    let byte_idle = (flavor == Flavor::IdleRestartsOnBytes).then_some(config.idle_timeout);
    if byte_idle.is_some() {
        config.idle_timeout = Duration::from_secs(3600);
    }
    let mut last_byte = Instant::now();
    let mut conn = ServerConnection::new(
        config,
        stream.local_addr()?,
        stream.peer_addr()?,
        Instant::now(),
    );
    let mut input = InputRewriter::new(flavor, max_frame);
    let mut output = OutputRewriter::new(flavor);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let pending = conn.pending_output().len();
        if pending > 0 {
            let (bytes, close) = output.rewrite(conn.pending_output());
            stream.write_all(&bytes)?;
            conn.mark_sent(Instant::now(), pending)
                .expect("sent what was pending");
            if close {
                return Ok(());
            }
        }
        while let Some(_event) = conn.poll_event() {}
        if conn.is_closed() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(idle) = byte_idle
            && now >= last_byte + idle
        {
            let error = FrameRepr {
                src: stream.local_addr()?.into(),
                dst: stream.peer_addr()?.into(),
                ..FrameRepr::new(
                    FrameType::Error,
                    ErrorPayload::new(ErrorCode::IDLE_TIMEOUT, "idle").to_bytes(),
                )
            };
            stream.write_all(&error.to_bytes())?;
            return Ok(());
        }
        let wait = conn
            .poll_timeout()
            .into_iter()
            .chain(byte_idle.map(|idle| last_byte + idle))
            .min()
            .map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_secs(1));
        stream.set_read_timeout(Some(wait))?;
        // Rewritten input can be up to 3× longer (U+FFFD for one byte).
        let capacity = match conn.read_capacity() {
            0 => 0,
            all if input.passes_through() => all,
            some => (some / 3).max(1),
        }
        .min(buf.len());
        if capacity == 0 {
            conn.handle_timeout(Instant::now());
            continue;
        }
        match stream.read(&mut buf[..capacity]) {
            Ok(0) => {
                let rest = input.finish();
                if !rest.is_empty() {
                    let _ = conn.handle_input(Instant::now(), &rest);
                }
                conn.handle_eof(Instant::now());
            }
            Ok(n) => {
                last_byte = Instant::now();
                let bytes = input.rewrite(&buf[..n]);
                conn.handle_input(Instant::now(), &bytes)
                    .expect("within capacity");
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Rewrites the client's frames (after the preface) for the flavors whose
/// bug is in how requests are read. Raw streams pass through.
struct InputRewriter {
    flavor: Flavor,
    decoder: FrameDecoder,
    held: BytesMut,
    state: InputState,
    /// LateUtf8: the open TEXT message had invalid bytes, not yet reported.
    /// AbandonsMessageOnError: a frame answered with an ERROR came while a
    /// message was open.
    tainted: bool,
    /// AbandonsMessageOnError: a message is open.
    open: bool,
}

#[derive(PartialEq)]
enum InputState {
    Sniffing,
    Frames,
    PassThrough,
}

impl InputRewriter {
    fn new(flavor: Flavor, max_frame: u32) -> InputRewriter {
        let rewrites = matches!(
            flavor,
            Flavor::NoCarry
                | Flavor::NoSwap
                | Flavor::LateUtf8
                | Flavor::UnexpectedBeforeMalformed
                | Flavor::AbandonsMessageOnError
                | Flavor::AnswersFramesBehindBye
        );
        InputRewriter {
            flavor,
            decoder: FrameDecoder::new(max_frame),
            held: BytesMut::new(),
            state: if rewrites {
                InputState::Sniffing
            } else {
                InputState::PassThrough
            },
            tainted: false,
            open: false,
        }
    }

    fn rewrite(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.state == InputState::PassThrough {
            return bytes.to_vec();
        }
        self.held.extend_from_slice(bytes);
        let mut out = Vec::new();
        if self.state == InputState::Sniffing {
            let n = self.held.len().min(PREFACE_LEN);
            if self.held[..n] != PREFACE[..n] {
                self.state = InputState::PassThrough;
                return self.held.split().to_vec();
            }
            if n < PREFACE_LEN {
                return out;
            }
            out.extend_from_slice(&self.held.split_to(PREFACE_LEN));
            self.state = InputState::Frames;
        }
        // AnswersFramesBehindBye: a BYE goes after the frames read with it.
        let mut bye = None;
        loop {
            match self.decoder.decode(&mut self.held) {
                Ok(Some(frame))
                    if self.flavor == Flavor::AnswersFramesBehindBye
                        && frame.frame_type == FrameType::Bye =>
                {
                    bye = Some(frame);
                }
                Ok(Some(frame)) => out.extend_from_slice(&self.rewrite_frame(frame).to_bytes()),
                Ok(None) => {
                    if let Some(bye) = bye {
                        out.extend_from_slice(&bye.to_bytes());
                    }
                    return out;
                }
                Err(_) => {
                    self.state = InputState::PassThrough;
                    out.extend_from_slice(&self.held.split());
                    return out;
                }
            }
        }
    }

    fn passes_through(&self) -> bool {
        self.state == InputState::PassThrough
    }

    fn finish(&mut self) -> Vec<u8> {
        self.held.split().to_vec()
    }

    fn rewrite_frame(&mut self, mut frame: FrameRepr) -> FrameRepr {
        let data_frame = matches!(frame.frame_type, FrameType::Text | FrameType::Bytes);
        match self.flavor {
            Flavor::UnexpectedBeforeMalformed
                if matches!(frame.frame_type, FrameType::Pong | FrameType::Error) =>
            {
                frame.flags = Flags::default();
            }
            Flavor::AbandonsMessageOnError if data_frame => {
                // The fragment after an abandoned message starts a new one:
                // a leading continuation byte is invalid there.
                if std::mem::take(&mut self.tainted)
                    && frame.data.first().is_some_and(|b| b & 0xc0 == 0x80)
                {
                    frame.data = Bytes::from_static(b"\xff");
                }
                self.open = frame.flags.more();
            }
            Flavor::AbandonsMessageOnError
                if matches!(
                    frame.frame_type,
                    FrameType::Pong | FrameType::Error | FrameType::Unknown(_)
                ) =>
            {
                self.tainted |= self.open;
            }
            Flavor::NoSwap => std::mem::swap(&mut frame.src, &mut frame.dst),
            Flavor::NoCarry if frame.frame_type == FrameType::Text => {
                frame.data = Bytes::from(String::from_utf8_lossy(&frame.data).into_owned());
            }
            Flavor::LateUtf8 if frame.frame_type == FrameType::Text => {
                let mut kept = Vec::new();
                let chunks: Vec<_> = frame.data.utf8_chunks().collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    kept.extend_from_slice(chunk.valid().as_bytes());
                    let incomplete_tail = i + 1 == chunks.len()
                        && std::str::from_utf8(chunk.invalid())
                            .err()
                            .is_some_and(|e| e.error_len().is_none());
                    if incomplete_tail || !frame.flags.more() {
                        kept.extend_from_slice(chunk.invalid());
                    } else if !chunk.invalid().is_empty() {
                        self.tainted = true;
                    }
                }
                if !frame.flags.more() && std::mem::take(&mut self.tainted) {
                    kept.push(0xff);
                }
                frame.data = Bytes::from(kept);
            }
            _ => {}
        }
        frame
    }
}

/// Rewrites our server's output frames for the flavors whose bug is in
/// the replies; says when to close the connection.
struct OutputRewriter {
    flavor: Flavor,
    preface_seen: bool,
    raw: bool,
}

impl OutputRewriter {
    fn new(flavor: Flavor) -> OutputRewriter {
        OutputRewriter {
            flavor,
            preface_seen: false,
            raw: false,
        }
    }

    fn rewrite(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        if self.raw && self.flavor == Flavor::Unicode14 {
            return (unicode14(bytes), false);
        }
        if self.raw
            || !matches!(
                self.flavor,
                Flavor::UnicodeBytes
                    | Flavor::ClosesOnUnknownType
                    | Flavor::NoLinger
                    | Flavor::Unicode14
            )
        {
            return (bytes.to_vec(), false);
        }
        let mut rest = BytesMut::from(bytes);
        let mut out = Vec::new();
        if !self.preface_seen {
            if !rest.starts_with(&PREFACE) {
                self.raw = true;
                return self.rewrite(bytes);
            }
            self.preface_seen = true;
            out.extend_from_slice(&rest.split_to(PREFACE_LEN));
        }
        // Our output always holds whole frames.
        while let Ok(Some(mut frame)) = FrameDecoder::new(u32::MAX).decode(&mut rest) {
            let mut close = false;
            match frame.frame_type {
                FrameType::Bytes if self.flavor == Flavor::UnicodeBytes => {
                    if let Ok(text) = std::str::from_utf8(&frame.data) {
                        frame.data = Bytes::from(text.to_uppercase());
                    }
                }
                FrameType::Error if self.flavor == Flavor::ClosesOnUnknownType => {
                    close = ErrorPayload::parse(&frame.data)
                        .is_ok_and(|p| p.code == ErrorCode::UNKNOWN_TYPE);
                }
                FrameType::Bye if self.flavor == Flavor::NoLinger => close = true,
                FrameType::Text if self.flavor == Flavor::Unicode14 => {
                    frame.data = Bytes::from(unicode14(&frame.data));
                }
                _ => {}
            }
            out.extend_from_slice(&frame.to_bytes());
            if close {
                return (out, true);
            }
        }
        (out, false)
    }
}

/// Undo the upper-case mappings Unicode added after 14.0 (SPEC.md §10's
/// table): each image goes back to its lower-case letter, as a server on
/// Unicode 14.0 leaves that letter. Invalid bytes pass through.
fn unicode14(bytes: &[u8]) -> Vec<u8> {
    let older = |c: char| -> char {
        let shifted = |from: u32, to: u32, n: u32| {
            let c = c as u32;
            (from..from + n).contains(&c).then(|| to + (c - from))
        };
        let mapped = match c {
            '\u{a7dc}' => Some(0x19b),
            '\u{a7cb}' => Some(0x264),
            '\u{a7d2}' => Some(0xa7d3),
            '\u{a7d4}' => Some(0xa7d5),
            '\u{1c89}' => Some(0x1c8a),
            '\u{a7cc}' => Some(0xa7cd),
            '\u{a7ce}' => Some(0xa7cf),
            '\u{a7da}' => Some(0xa7db),
            _ => shifted(0x10d50, 0x10d70, 22).or_else(|| shifted(0x16ea0, 0x16ebb, 25)),
        };
        mapped.and_then(char::from_u32).unwrap_or(c)
    };
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let valid: String = chunk.valid().chars().map(older).collect();
        out.extend_from_slice(valid.as_bytes());
        out.extend_from_slice(chunk.invalid());
    }
    out
}
