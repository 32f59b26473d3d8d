//! The suite's side of a connection: plain `std::net` sockets, the crate's
//! wire types for encoding and decoding, and a wire log of everything sent
//! and received.
//!
//! A server under test may be broken or hostile, so nothing it sends can
//! hang the suite or exhaust its memory:
//!
//! * every reply awaited has an absolute deadline, the read timeout from
//!   the moment it is owed (a server trickling bytes does not put it off),
//!   and never later than the case's own deadline ([`Case::deadline`]);
//! * every frame read is held to a receive limit decided from its header
//!   before its data is awaited (SPEC.md §3.4): a TEXT reply to a request
//!   of *N* data bytes (the longest frame the connection sent, or all the
//!   bytes it wrote raw) carries at most 3 × (*N* + 3) bytes, BYTES and
//!   PONG at most *N*, ERROR and BYE at most the default receive limit;
//!   raw replies at most 3 × what the connection wrote (§11).
//!
//! [`Case::deadline`]: super::Case::deadline

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::Options;
use super::case::{CheckResult, Failure};
use super::datagram::Dgram;
use super::show;
use super::tap::{self, Tap, WireLog};
use super::wire_log::WireEvent;
use upcase::wire::{
    Address, DEFAULT_MAX_DATA_LEN, ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameRepr,
    FrameType, HEADER_LEN, PREFACE, parse_header,
};

/// Everything a case's check gets: the options and a way to open connections.
pub struct Ctx<'a> {
    /// How the suite was asked to run.
    pub options: &'a Options,
    log: WireLog,
    started: Instant,
    /// When the case must be over, whatever the server does.
    deadline: Instant,
    connections: usize,
    warnings: Vec<String>,
    turned_away: Rc<Cell<bool>>,
    leftovers: Option<Leftovers>,
    first_connect: Option<Reach>,
}

/// How a case's first TCP connection went: the suite's only check that a
/// server is there, so that a server taking one client is not spent on a
/// probe (see [`run_with`](super::run_with)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reach {
    /// The server accepted it.
    Connected,
    /// It could not be opened: the reason (refused, timed out).
    Unreachable(String),
}

/// Connections a case dropped before the server closed them, with their
/// labels: the suite half-closed them and waits for the server's close.
type Leftovers = Rc<RefCell<Vec<(String, TcpStream)>>>;

/// What a case left behind when its check returned.
pub(super) struct Aftermath {
    /// Its wire log.
    pub log: Vec<WireEvent>,
    /// What it found that SPEC.md recommends against but does not forbid.
    pub warnings: Vec<String>,
    /// Whether any of its connections was turned away as over the limit
    /// (SPEC.md §9.3): it received ERROR(BUSY), or the server closed it
    /// before sending a byte, as it does to a raw client over the limit.
    pub turned_away: bool,
    /// How its first TCP connection went; `None` when it opened none.
    pub first_connect: Option<Reach>,
}

impl<'a> Ctx<'a> {
    /// A case's context; its reads end by `deadline` (the case's own).
    pub(super) fn new(options: &'a Options, deadline: Instant) -> Ctx<'a> {
        Ctx {
            options,
            log: WireLog::default(),
            started: Instant::now(),
            deadline,
            connections: 0,
            warnings: Vec::new(),
            turned_away: Rc::default(),
            // Under a known connection limit, every connection must be seen
            // to end before the next case, which may need every slot.
            leftovers: options.max_connections.map(|_| Leftovers::default()),
            first_connect: None,
        }
    }

    /// Wait (at most the read timeout in all) until the server has closed
    /// every connection the case dropped, then hand over what the case left.
    pub(super) fn finish(self) -> Aftermath {
        let deadline = Instant::now() + self.options.timeout;
        let leftovers = self.leftovers.map(|l| l.take()).unwrap_or_default();
        for (label, mut stream) in leftovers {
            if !wait_for_close(&mut stream, deadline) {
                Tap::new(label, self.log.clone(), self.started).note(format!(
                    "(the server had not closed this connection {:.1} s after the case ended; the next case may meet a full server)",
                    self.options.timeout.as_secs_f64()
                ));
            }
        }
        Aftermath {
            log: self.log.take(),
            warnings: self.warnings,
            turned_away: self.turned_away.get(),
            first_connect: self.first_connect,
        }
    }

    /// Record something the server did that SPEC.md recommends against
    /// (SHOULD NOT) without forbidding it: the case still passes.
    pub fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        Tap::new("--".into(), self.log.clone(), self.started).note(format!("warning: {warning}"));
        self.warnings.push(warning);
    }

    /// The next connection's or socket's place in the wire log, labelled
    /// `prefix` and its number in the case.
    fn tap(&mut self, prefix: &str) -> Tap {
        self.connections += 1;
        Tap::new(
            format!("{prefix}{}", self.connections),
            self.log.clone(),
            self.started,
        )
    }

    /// Open a TCP connection (TCP_NODELAY on, so each write leaves at once).
    ///
    /// # Errors
    /// A [`Failure`] when the server cannot be reached.
    pub fn connect(&mut self) -> Result<Conn, Failure> {
        let tap = self.tap("c");
        let addr = self.options.addr;
        let connected = TcpStream::connect_timeout(&addr, self.options.timeout);
        self.first_connect.get_or_insert_with(|| match &connected {
            Ok(_) => Reach::Connected,
            Err(e) => Reach::Unreachable(e.to_string()),
        });
        let stream =
            connected.map_err(|e| tap.failure(format_args!("cannot connect to {addr}: {e}")))?;
        let setup = |stream: &TcpStream| -> std::io::Result<(Address, Address)> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.options.timeout))?;
            stream.set_write_timeout(Some(self.options.timeout))?;
            Ok((stream.peer_addr()?.into(), stream.local_addr()?.into()))
        };
        let (server, client) =
            setup(&stream).map_err(|e| tap.failure(format_args!("socket setup: {e}")))?;
        let conn = Conn {
            stream,
            tap,
            input: BytesMut::new(),
            timeout: self.options.timeout,
            case_deadline: self.deadline,
            case_budget: self.deadline.saturating_duration_since(self.started),
            written: 0,
            largest_frame: 0,
            raw_written: 0,
            max_frame: self.options.max_frame,
            turned_away: self.turned_away.clone(),
            received: false,
            leftovers: self.leftovers.clone(),
            ended: false,
            server,
            client,
        };
        conn.note(format!("connected {} → {}", conn.client, conn.server));
        Ok(conn)
    }

    /// Open a UDP socket of its own, connected to the server (SPEC.md §8).
    ///
    /// # Errors
    /// A [`Failure`] when the socket cannot be set up.
    pub fn datagram(&mut self) -> Result<Dgram, Failure> {
        let tap = self.tap("u");
        Dgram::open(
            self.options.addr,
            self.options.timeout,
            self.options.max_frame,
            self.deadline,
            tap,
        )
    }

    /// Open a connection and exchange prefaces (SPEC.md §2).
    ///
    /// # Errors
    /// A [`Failure`] when the server does not answer the preface with its own.
    pub fn framed(&mut self) -> Result<Conn, Failure> {
        let mut conn = self.connect()?;
        conn.write(&PREFACE)?;
        conn.expect_raw(&PREFACE, "the server's preface")?;
        Ok(conn)
    }
}

/// What a read found.
enum Read1 {
    Data,
    Closed(&'static str),
    TimedOut,
}

/// The receive limit for ERROR and BYE, which no request bounds: the
/// default receive limit (SPEC.md §3.4).
const CONTROL_LIMIT: u32 = DEFAULT_MAX_DATA_LEN;

/// Read from `stream` until the server closes it (end of input or reset)
/// or `deadline` passes; whether it closed.
fn wait_for_close(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// One connection to the server under test.
pub struct Conn {
    stream: TcpStream,
    tap: Tap,
    input: BytesMut,
    timeout: Duration,
    /// When the case must be over: no read waits past it.
    case_deadline: Instant,
    /// How long the case was given, for messages.
    case_budget: Duration,
    /// Bytes written on this connection: what bounds a raw reply.
    written: usize,
    /// The longest frame data sent with [`send`](Self::send), and the raw
    /// bytes written (the preface, hand-made frames): what bounds a frame
    /// received.
    largest_frame: usize,
    raw_written: usize,
    /// The server's receive limit (`--max-frame`): no frame sent exceeds it.
    max_frame: u32,
    turned_away: Rc<Cell<bool>>,
    /// The server has sent at least one byte on this connection.
    received: bool,
    /// Where a dropped connection goes to be waited for, when the limit is known.
    leftovers: Option<Leftovers>,
    /// The server has closed the connection (the suite read its close).
    ended: bool,
    /// The address the suite connected to: the server's local address.
    pub server: Address,
    /// The suite's own address: the server's peer address.
    pub client: Address,
}

impl Conn {
    /// Change how long each read waits (for cases that wait on a server timer).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Add a line to the wire log.
    pub fn note(&self, line: impl AsRef<str>) {
        self.tap.note(line);
    }

    /// The socket itself, for the cases that watch TCP's own signals (a
    /// FIN, a reset, a send that blocks: `cases/lifecycle.rs`,
    /// `cases/backpressure.rs`). What they read there bypasses the frame
    /// checks and the wire log, so they take [`take_unread`](Self::take_unread)
    /// first and log what they see with [`note`](Self::note).
    pub(super) fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// The bytes received but not consumed by an `expect` yet.
    pub(super) fn take_unread(&mut self) -> BytesMut {
        self.input.split()
    }

    /// The case saw the server close the connection through
    /// [`socket`](Self::socket): nothing is left to wait for at its end.
    pub(super) fn mark_ended(&mut self) {
        self.ended = true;
    }

    /// Write raw bytes.
    ///
    /// # Errors
    /// A [`Failure`] when the write fails.
    pub fn write(&mut self, bytes: &[u8]) -> CheckResult {
        self.tap
            .note_bytes(format!("→ {}", show::data(bytes)), bytes);
        self.raw_written += bytes.len();
        self.write_quiet(bytes)
    }

    /// Send one frame.
    ///
    /// # Errors
    /// A [`Failure`] when the write fails; a [`Failure::cannot_run`] for a
    /// frame over the server's limit.
    pub fn send(&mut self, frame: &FrameRepr) -> CheckResult {
        self.send_all(std::slice::from_ref(frame))
    }

    /// Send several frames in one write (pipelining).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_all(&mut self, frames: &[FrameRepr]) -> CheckResult {
        let mut bytes = BytesMut::new();
        for frame in frames {
            within_limit(frame, self.max_frame)?;
            self.largest_frame = self.largest_frame.max(frame.data.len());
            let start = bytes.len();
            frame.encode(&mut bytes);
            let line = format!("→ {}", show::frame(frame));
            self.tap.note_bytes(line, &bytes[start..]);
        }
        self.write_quiet(&bytes)
    }

    /// Send one frame and ignore a failed write: for frames the server may
    /// already have stopped reading (after its BYE or a fatal ERROR).
    pub fn send_regardless(&mut self, frame: &FrameRepr) {
        self.largest_frame = self.largest_frame.max(frame.data.len());
        let bytes = frame.to_bytes();
        self.written += bytes.len();
        self.tap
            .note_bytes(format!("→ {}", show::frame(frame)), &bytes);
        let _ = self.stream.write_all(&bytes);
    }

    /// Write raw bytes and ignore a failed write (the server may have closed).
    pub fn write_regardless(&mut self, bytes: &[u8]) {
        self.tap
            .note_bytes(format!("→ {}", show::data(bytes)), bytes);
        self.written += bytes.len();
        self.raw_written += bytes.len();
        let _ = self.stream.write_all(bytes);
    }

    fn write_quiet(&mut self, bytes: &[u8]) -> CheckResult {
        self.written += bytes.len();
        self.stream
            .write_all(bytes)
            .map_err(|e| self.tap.failure(format_args!("write failed: {e}")))
    }

    /// Close the sending side (FIN): the server sees end of input.
    pub fn shutdown_write(&mut self) {
        self.note("→ FIN");
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// When a reply owed from now must be whole: the read timeout from
    /// now, or the case's deadline when that comes first.
    fn owed_by(&self) -> Instant {
        (Instant::now() + self.timeout).min(self.case_deadline)
    }

    /// One read, waiting at most until `deadline`.
    fn read_until(&mut self, deadline: Instant) -> Read1 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Read1::TimedOut;
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 64 * 1024];
        let result = self.stream.read(&mut chunk);
        let read = match result {
            Ok(0) => Read1::Closed("closed (FIN)"),
            Ok(n) => {
                self.received = true;
                self.input.extend_from_slice(&chunk[..n]);
                Read1::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Read1::TimedOut
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Read1::Data,
            Err(_) => Read1::Closed("reset"),
        };
        if matches!(read, Read1::Closed(_)) {
            self.ended = true;
            // How a server over its limit turns a raw client away (§9.3).
            if !self.received {
                self.turned_away.set(true);
            }
        }
        read
    }

    /// What was late, when a wait for something owed by `deadline` ended.
    fn nothing_within(&self, deadline: Instant) -> String {
        if deadline >= self.case_deadline {
            format!(
                "the case's deadline ({:.1} s, see --list) passed",
                self.case_budget.as_secs_f64()
            )
        } else if self.input.is_empty() {
            format!("nothing within {:.1} s", self.timeout.as_secs_f64())
        } else {
            format!(
                "no whole reply within {:.1} s of it being owed (a deadline: bytes trickled in do not extend it)",
                self.timeout.as_secs_f64()
            )
        }
    }

    /// The receive limit for a frame of `frame_type` (SPEC.md §3.4): what a
    /// request of *N* data bytes can be answered with, *N* the longest frame
    /// sent (or, for frames written as raw bytes, all such bytes).
    fn receive_limit(&self, frame_type: FrameType) -> u32 {
        let sent = self.request_bound();
        let limit = match frame_type {
            FrameType::Text => sent.saturating_add(3).saturating_mul(3),
            FrameType::Bytes | FrameType::Pong => sent,
            FrameType::Error | FrameType::Bye => return CONTROL_LIMIT,
            // No request asks for anything else: only its header is read.
            _ => 0,
        };
        u32::try_from(limit).unwrap_or(u32::MAX)
    }

    /// *N* of [`receive_limit`](Self::receive_limit).
    fn request_bound(&self) -> usize {
        self.largest_frame.max(self.raw_written)
    }

    /// The next whole frame in the input, its header held to
    /// [`receive_limit`](Self::receive_limit) before any data is awaited.
    fn decode_next(&mut self) -> Result<Option<FrameRepr>, String> {
        let Some(header) = parse_header(&self.input) else {
            return Ok(None);
        };
        let limit = self.receive_limit(header.frame_type);
        match FrameDecoder::new(limit).decode(&mut self.input) {
            Ok(frame) => Ok(frame),
            Err(too_large) => {
                let message = format!(
                    "a {} frame announcing {} data bytes, over the suite's receive limit of {limit} for it (SPEC.md §3.4: what a request of {} bytes can be answered with); not read further",
                    header.frame_type,
                    too_large.header.data_len,
                    self.request_bound()
                );
                self.note(format!("← {message}"));
                self.input.clear();
                Err(message)
            }
        }
    }

    /// Read the next frame; `Err` holds what arrived instead, for the message.
    fn recv(&mut self) -> Result<FrameRepr, String> {
        let deadline = self.owed_by();
        loop {
            if let Some(frame) = self.decode_next()? {
                self.tap
                    .note_bytes(format!("← {}", show::frame(&frame)), &frame.to_bytes());
                if frame.frame_type == FrameType::Error
                    && ErrorPayload::parse(&frame.data).is_ok_and(|p| p.code == ErrorCode::BUSY)
                {
                    self.turned_away.set(true);
                }
                return Ok(frame);
            }
            match self.read_until(deadline) {
                Read1::Data => {}
                Read1::Closed(how) => {
                    self.note(format!("← connection {how}"));
                    return Err(self.with_leftover(format!("connection {how}")));
                }
                Read1::TimedOut => {
                    self.note("← (timed out)");
                    return Err(self.with_leftover(self.nothing_within(deadline)));
                }
            }
        }
    }

    fn with_leftover(&self, what: String) -> String {
        if self.input.is_empty() {
            what
        } else {
            format!("{what}, after a partial frame [{}]", show::hex(&self.input))
        }
    }

    /// Wait at most `wait` for the next frame: `None` when none came.
    ///
    /// # Errors
    /// A [`Failure`] when the connection closes.
    pub fn poll_frame(&mut self, wait: Duration) -> Result<Option<FrameRepr>, Failure> {
        let deadline = (Instant::now() + wait).min(self.case_deadline);
        loop {
            let decoded = self.decode_next().map_err(|too_large| {
                self.tap
                    .mismatch("a frame over the receive limit", "a frame", too_large)
            })?;
            if let Some(frame) = decoded {
                self.tap
                    .note_bytes(format!("← {}", show::frame(&frame)), &frame.to_bytes());
                return Ok(Some(frame));
            }
            match self.read_until(deadline) {
                Read1::Data => {}
                Read1::TimedOut => return Ok(None),
                Read1::Closed(how) => {
                    self.note(format!("← connection {how}"));
                    let actual = self.with_leftover(format!("connection {how}"));
                    return Err(self.tap.mismatch("no frame", "a frame", actual));
                }
            }
        }
    }

    /// Read the next frame, whatever it is.
    ///
    /// # Errors
    /// A [`Failure`] when the connection closes or nothing arrives in time.
    pub fn recv_frame(&mut self, what: &str) -> Result<FrameRepr, Failure> {
        self.recv()
            .map_err(|actual| self.tap.mismatch(format_args!("no {what}"), what, actual))
    }

    /// The reply SPEC.md §5.5 requires to `request`: addresses swapped, the
    /// unspecified ones filled in with what the server sees.
    pub fn reply_to(
        &self,
        request: &FrameRepr,
        frame_type: FrameType,
        more: bool,
        data: impl Into<Bytes>,
    ) -> FrameRepr {
        FrameRepr {
            flags: Flags::more_if(more),
            ..tap::reply(request, (self.server, self.client), frame_type, data)
        }
    }

    /// Reply (source, destination) for a request from `src` to `dst`.
    pub fn reply_addresses(&self, src: Address, dst: Address) -> (Address, Address) {
        tap::reply_addresses((src, dst), (self.server, self.client))
    }

    /// Read the next frame and require it to equal `expected`.
    ///
    /// # Errors
    /// A [`Failure`] showing both frames when they differ.
    pub fn expect(&mut self, expected: &FrameRepr, what: &str) -> CheckResult {
        match self.recv() {
            Ok(frame) => self
                .tap
                .check(
                    frame == *expected,
                    format_args!("wrong reply to {what}"),
                    show::frame(expected),
                    show::frame(&frame),
                )
                .map_err(|f| f.with_bytes(&expected.to_bytes(), &frame.to_bytes())),
            Err(actual) => Err(self.tap.mismatch(
                format_args!("no reply to {what}"),
                show::frame(expected),
                actual,
            )),
        }
    }

    /// Read the next frame and require an ERROR with `code`, addressed as a
    /// reply to a frame from `src` to `dst` (the message text is not checked:
    /// only the code is normative).
    ///
    /// # Errors
    /// A [`Failure`] when anything else arrives.
    pub fn expect_error(
        &mut self,
        code: ErrorCode,
        src: Address,
        dst: Address,
        what: &str,
    ) -> CheckResult {
        let (reply_src, reply_dst) = self.reply_addresses(src, dst);
        let expected = tap::expected_error(code, reply_src, reply_dst);
        let frame = self.recv().map_err(|actual| {
            self.tap
                .mismatch(format_args!("no ERROR after {what}"), &expected, actual)
        })?;
        self.tap.check(
            frame.src == reply_src && tap::is_error(&frame, code, reply_dst),
            format_args!("wrong reply to {what}"),
            expected,
            show::frame(&frame),
        )
    }

    /// [`expect_error`](Self::expect_error) for a request with unspecified addresses.
    ///
    /// # Errors
    /// As [`expect_error`](Self::expect_error).
    pub fn expect_error_code(&mut self, code: ErrorCode, what: &str) -> CheckResult {
        self.expect_error(code, Address::UNSPECIFIED, Address::UNSPECIFIED, what)
    }

    /// [`expect_error_code`](Self::expect_error_code) for a fatal ERROR,
    /// then [`expect_closed_after_fatal`](Self::expect_closed_after_fatal),
    /// whose failure names `what`.
    ///
    /// # Errors
    /// As the two checks.
    pub fn expect_fatal_error(&mut self, code: ErrorCode, what: &str) -> CheckResult {
        self.expect_error_code(code, what)?;
        self.expect_closed_after_fatal()
            .map_err(|f| f.context(what))
    }

    /// After a fatal ERROR: the server reads nothing more and closes. Sends a
    /// PING (which must get no PONG), closes the sending side, and requires
    /// the connection to end with no further byte.
    ///
    /// # Errors
    /// A [`Failure`] when anything arrives or the connection stays open.
    pub fn expect_closed_after_fatal(&mut self) -> CheckResult {
        let ping = FrameRepr::new(FrameType::Ping, &b"after a fatal error"[..]);
        self.note(format!("→ {}", show::frame(&ping)));
        let _ = self.stream.write_all(&ping.to_bytes());
        self.shutdown_write();
        self.expect_eof("a fatal ERROR")
    }

    /// Require the connection to end (FIN or reset) with no further byte.
    ///
    /// # Errors
    /// A [`Failure`] when bytes arrive or nothing happens in time.
    pub fn expect_eof(&mut self, after: &str) -> CheckResult {
        let expected = "the server closes the connection, sending nothing more";
        let deadline = self.owed_by();
        loop {
            if !self.input.is_empty() {
                let whole = parse_header(&self.input)
                    .filter(|header| self.input.len() >= HEADER_LEN + header.data_len as usize)
                    .and_then(|_| {
                        FrameDecoder::new(u32::MAX)
                            .decode(&mut self.input.clone())
                            .ok()
                    })
                    .flatten();
                let actual = match whole {
                    Some(frame) => show::frame(&frame),
                    None => format!("bytes [{}]", show::hex(&self.input)),
                };
                self.note(format!("← {actual}"));
                return Err(self.tap.mismatch(
                    format_args!("the server sent more after {after}"),
                    expected,
                    actual,
                ));
            }
            match self.read_until(deadline) {
                Read1::Data => {}
                Read1::Closed(how) => {
                    self.note(format!("← connection {how}"));
                    return Ok(());
                }
                Read1::TimedOut => {
                    self.note("← (timed out)");
                    return Err(self.tap.mismatch(
                        format_args!("the connection stayed open after {after}"),
                        expected,
                        self.nothing_within(deadline),
                    ));
                }
            }
        }
    }

    /// A non-fatal outcome: the connection still answers a PING.
    ///
    /// # Errors
    /// A [`Failure`] when the PONG does not come.
    pub fn expect_alive(&mut self, after: &str) -> CheckResult {
        let ping = FrameRepr::new(FrameType::Ping, &b"still there?"[..]);
        self.send(&ping)?;
        let pong = self.reply_to(&ping, FrameType::Pong, false, ping.data.clone());
        self.expect(&pong, &format!("a PING sent after {after}"))
    }

    /// Require the server to send nothing and keep the connection open for `quiet`.
    ///
    /// # Errors
    /// A [`Failure`] when bytes arrive or the connection closes.
    pub fn expect_silence(&mut self, quiet: Duration, why: &str) -> CheckResult {
        match self.expect_nothing_sent(quiet, why)? {
            None => Ok(()),
            Some(how) => Err(self.tap.mismatch(
                format_args!("the server closed while {why}"),
                format!("the connection open and quiet for {} ms", quiet.as_millis()),
                format!("connection {how}"),
            )),
        }
    }

    /// Require the server to send nothing for `quiet`; `Some(how)` when it
    /// closed the connection (FIN or reset) within that time, sending nothing.
    ///
    /// # Errors
    /// A [`Failure`] when bytes arrive.
    pub fn expect_nothing_sent(
        &mut self,
        quiet: Duration,
        why: &str,
    ) -> Result<Option<&'static str>, Failure> {
        let deadline = (Instant::now() + quiet).min(self.case_deadline);
        loop {
            if deadline <= Instant::now() {
                return Ok(None);
            }
            let before = self.input.len();
            match self.read_until(deadline) {
                Read1::TimedOut => return Ok(None),
                Read1::Data if self.input.len() == before => {}
                Read1::Data => {
                    let actual = format!("bytes [{}]", show::hex(&self.input[before..]));
                    self.note(format!("← {actual}"));
                    return Err(self.tap.mismatch(
                        format_args!("the server sent something while {why}"),
                        "nothing",
                        actual,
                    ));
                }
                Read1::Closed(how) => {
                    self.note(format!("← connection {how}"));
                    return Ok(Some(how));
                }
            }
        }
    }

    /// Read exactly `expected.len()` bytes and require them to equal `expected`.
    ///
    /// # Errors
    /// A [`Failure`] showing both in hex when they differ.
    pub fn expect_raw(&mut self, expected: &[u8], what: &str) -> CheckResult {
        let deadline = self.owed_by();
        while self.input.len() < expected.len() {
            match self.read_until(deadline) {
                Read1::Data => {}
                Read1::Closed(how) => {
                    return Err(self.raw_failure(
                        expected,
                        what,
                        format!(", then connection {how}"),
                    ));
                }
                Read1::TimedOut => {
                    let tail = format!(", then {}", self.nothing_within(deadline));
                    return Err(self.raw_failure(expected, what, tail));
                }
            }
        }
        let got = self.input.split_to(expected.len());
        self.tap.note_bytes(format!("← {}", show::data(&got)), &got);
        self.check_raw(&got, expected, what)
    }

    fn check_raw(&self, got: &[u8], expected: &[u8], what: &str) -> CheckResult {
        self.tap
            .check(
                got == expected,
                format_args!("wrong {what}"),
                show::data(expected),
                show::data(got),
            )
            .map_err(|f| f.with_bytes(expected, got))
    }

    fn raw_failure(&mut self, expected: &[u8], what: &str, tail: String) -> Failure {
        let got = self.input.split();
        self.tap
            .note_bytes(format!("← {}{tail}", show::data(&got)), &got);
        self.tap
            .mismatch(
                format_args!("incomplete {what}"),
                show::data(expected),
                format!("{}{tail}", show::data(&got)),
            )
            .with_bytes(expected, &got)
    }

    /// Close the sending side, read everything until the server closes, and
    /// require it to equal `expected`.
    ///
    /// # Errors
    /// A [`Failure`] when the bytes differ or the server does not close.
    pub fn expect_raw_then_eof(&mut self, expected: &[u8], what: &str) -> CheckResult {
        self.shutdown_write();
        let deadline = self.owed_by();
        // Upper case at most triples a byte (SPEC.md §11): more than that
        // is not a reply to what was sent, and is not read further.
        let limit = expected.len().max(self.written.saturating_mul(3));
        loop {
            match self.read_until(deadline) {
                Read1::Data if self.input.len() > limit => {
                    let tail = format!(
                        " … over {limit} bytes without a close: more than 3 × the {} bytes sent can produce (SPEC.md §11); not read further",
                        self.written
                    );
                    return Err(self.raw_failure(expected, what, tail));
                }
                Read1::Data => {}
                Read1::Closed(_) => break,
                Read1::TimedOut => {
                    let tail = format!(" and no close: {}", self.nothing_within(deadline));
                    return Err(self.raw_failure(expected, what, tail));
                }
            }
        }
        let got = self.input.split();
        self.tap
            .note_bytes(format!("← {} then close", show::data(&got)), &got);
        self.check_raw(&got, expected, what)
    }
}

impl Drop for Conn {
    /// Under a known connection limit, half-close and leave the connection
    /// for the end of the case to see the server close it; otherwise just close.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Some(leftovers) = &self.leftovers
            && let Ok(clone) = self.stream.try_clone()
        {
            let _ = self.stream.shutdown(Shutdown::Write);
            leftovers.borrow_mut().push((self.tap.label.clone(), clone));
        }
    }
}

/// `Ok` when `frame`'s data fits the server's limit; otherwise the case
/// cannot run against that server.
pub(super) fn within_limit(frame: &FrameRepr, max_frame: u32) -> CheckResult {
    let len = frame.data.len();
    if len <= max_frame as usize {
        return Ok(());
    }
    Err(Failure::cannot_run(format!(
        "sends a {} frame of {len} bytes, over the server's limit of {max_frame} (--max-frame); run it against a server that takes at least {len}",
        frame.frame_type
    )))
}
