//! A property of [`ServerConnection`] under any sequence of peer actions,
//! clock moves and shutdowns, and a property of [`respond_to_datagram`].
//!
//! [`check_server_ops`] drives one connection through a list of [`Op`]s the
//! way an event loop would (input only up to
//! [`read_capacity`](ServerConnection::read_capacity), timeouts only once the
//! fake clock reaches [`poll_timeout`](ServerConnection::poll_timeout)), then
//! closes the client side and lets the connection finish. It checks the
//! invariants after every op and, at the end, that the whole output is what
//! SPEC.md says the input deserves, computed by an independent model
//! ([`ReplyModel`]) rather than by the code under test.
//!
//! The ops are shaped so that random choices often make valid prefaces,
//! frames and fragmented text: a fuzzer then gets past the framing into the
//! reply rules instead of dying on the first garbled header.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{chunks_at, transform_oracle};
use crate::conn::{
    AMPLIFICATION_LIMIT, CloseReason, DatagramConfig, DatagramReply, RawCase, SHORTEST_ERROR_REPLY,
    ServerConfig, ServerConnection, ServerEvent, ServerMode, WireMode, respond_to_datagram,
};
use crate::testing::Pair;
use crate::transform::CaseMode;
use crate::wire::{
    Address, ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameHeader, FrameRepr, FrameType,
    HEADER_LEN, MAX_UDP_PAYLOAD, PREFACE, PREFACE_LEN, PREFACE_MAGIC, parse_header,
};

/// The server's socket address in every run (the SPEC examples' address).
pub const LOCAL: &str = "127.0.0.1:9999";
/// The client's socket address in every run.
pub const PEER: &str = "127.0.0.1:50000";

/// The most raw or not-yet-sniffed input a connection buffers (the crate's
/// private `RAW_INPUT_LIMIT`, restated: a change there must show up here).
pub const RAW_INPUT_LIMIT: usize = 64 * 1024;

/// Room for the one frame a connection writes when it ends without a request
/// causing it: ERROR(IDLE_TIMEOUT | UNSUPPORTED_VERSION | BUSY |
/// FRAME_TOO_LARGE) or the shutdown BYE. Each is a 42-byte header plus a
/// message well under 200 bytes.
pub const END_FRAME_SLACK: usize = 512;

/// Bytes a text message op draws its characters from: ASCII, and characters
/// whose upper case is longer (ß → SS, ΐ → three code points, ﬃ → FFI) or
/// sits in another UTF-8 length class, so that fragments split code points.
const LETTERS: &[char] = &[
    'a',
    'b',
    'z',
    'A',
    'Z',
    '0',
    ' ',
    '\n',
    'é',
    'ß',
    'ΐ',
    'ﬃ',
    'ŉ',
    'ς',
    'Σ',
    'ı',
    'ǅ',
    'ꭰ',
    'ᾳ',
    '😀',
    '𐐨',
    '\u{10FFFF}',
];

/// The fake clock's origin, captured once so every run starts at the same
/// instant.
fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn socket(address: &str) -> SocketAddr {
    address.parse().expect("a valid socket address literal")
}

/// The server settings of one run; small values reach backpressure, the
/// frame limit and the timers within a few ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerOpsConfig {
    /// Which modes the server accepts.
    pub mode: ServerMode,
    /// Raw mode's upper-case rules.
    pub raw_case: RawCase,
    /// The frame data limit.
    pub max_data_len: u16,
    /// The backpressure threshold, minus one (so it is never zero).
    pub max_pending_output: u16,
    /// The idle timeout in milliseconds.
    pub idle_timeout_ms: u16,
    /// The send timeout in milliseconds (the idle timeout applies if shorter).
    pub send_timeout_ms: u16,
    /// The linger in milliseconds.
    pub linger_ms: u8,
    /// Whether the connection is over the server's connection limit.
    pub busy: bool,
    /// Whether every message is reported as an event.
    pub report_messages: bool,
}

impl ServerOpsConfig {
    /// The connection settings this stands for.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            mode: self.mode,
            raw_case: self.raw_case,
            max_data_len: u32::from(self.max_data_len),
            idle_timeout: Duration::from_millis(u64::from(self.idle_timeout_ms)),
            send_timeout: Duration::from_millis(u64::from(self.send_timeout_ms)),
            linger: Duration::from_millis(u64::from(self.linger_ms)),
            max_pending_output: usize::from(self.max_pending_output) + 1,
            report_messages: self.report_messages,
        }
    }
}

/// The type of a [`FrameOp`]'s frame; most choices are well-formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FrameKind {
    /// TEXT (the data need not be UTF-8).
    Text,
    /// BYTES.
    Bytes,
    /// PING.
    Ping,
    /// BYE.
    Bye,
    /// PONG (a client may not send it).
    Pong,
    /// ERROR (a client may not send it).
    Error,
    /// This type code, whatever it is.
    Code(u8),
    /// TEXT with these reserved flag bits (bit 1 always among them).
    ReservedFlags(u8),
}

/// One frame the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FrameOp {
    /// Type (and, for [`FrameKind::ReservedFlags`], bad flags).
    pub kind: FrameKind,
    /// The MORE flag.
    pub more: bool,
    /// Bit 0: the source is a real address (else unspecified); bit 1: the destination.
    pub addresses: u8,
    /// The data.
    pub data: Vec<u8>,
    /// How many bytes of the encoded frame to deliver now (modulo its length
    /// plus one); the rest goes with the next op.
    pub deliver_now: Option<u16>,
}

/// A text message sent as fragments whose boundaries may split code points.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TextOp {
    /// Each byte picks a character (modulo the table of interesting ones).
    pub letters: Vec<u8>,
    /// Byte offsets (modulo the text's length plus one) where fragments end.
    pub cuts: Vec<u16>,
    /// Whether the last fragment has MORE too (the message stays open).
    pub leave_open: bool,
    /// As in [`FrameOp::addresses`].
    pub addresses: u8,
}

/// One thing that happens to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// The client sends these bytes.
    Input(Vec<u8>),
    /// The client sends the preface: version 1 unless the byte is 0xE0 or
    /// more, then that byte is the version.
    Preface(u8),
    /// The client sends one frame.
    Frame(FrameOp),
    /// The client sends a text message in fragments.
    Text(TextOp),
    /// The clock moves on by this many milliseconds.
    AdvanceTime(u16),
    /// The clock jumps to the connection's next timeout.
    FireTimeout,
    /// The client closes its sending side.
    Eof,
    /// The server begins a graceful shutdown.
    Shutdown,
    /// The client accepts up to this many bytes of the server's output.
    Send(u16),
    /// The client accepts all pending output.
    SendAll,
}

/// The bytes the client sends for a frame op, and how many go now.
fn encode_frame_op(op: &FrameOp) -> (Vec<u8>, usize) {
    let (frame_type, extra_flags) = match op.kind {
        FrameKind::Text => (FrameType::Text, 0),
        FrameKind::Bytes => (FrameType::Bytes, 0),
        FrameKind::Ping => (FrameType::Ping, 0),
        FrameKind::Bye => (FrameType::Bye, 0),
        FrameKind::Pong => (FrameType::Pong, 0),
        FrameKind::Error => (FrameType::Error, 0),
        FrameKind::Code(code) => (FrameType::from(code), 0),
        FrameKind::ReservedFlags(bits) => (FrameType::Text, (bits | 0x02) & Flags::RESERVED),
    };
    let (src, dst) = op_addresses(op.addresses);
    let frame = FrameRepr {
        src,
        dst,
        frame_type,
        flags: Flags(u8::from(op.more) | extra_flags),
        data: Bytes::from(op.data.clone()),
    };
    let bytes = frame.to_bytes().to_vec();
    let now = op
        .deliver_now
        .map_or(bytes.len(), |n| usize::from(n) % (bytes.len() + 1));
    (bytes, now)
}

/// The bytes of a fragmented text message.
fn encode_text_op(op: &TextOp) -> Vec<u8> {
    let text: String = op
        .letters
        .iter()
        .map(|&b| LETTERS[usize::from(b) % LETTERS.len()])
        .collect();
    let cuts: Vec<usize> = op.cuts.iter().map(|&c| usize::from(c)).collect();
    let chunks = chunks_at(text.as_bytes(), &cuts);
    let (src, dst) = op_addresses(op.addresses);
    let mut bytes = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let frame = FrameRepr {
            src,
            dst,
            frame_type: FrameType::Text,
            flags: Flags::more_if(!last || op.leave_open),
            data: Bytes::copy_from_slice(chunk),
        };
        bytes.extend_from_slice(&frame.to_bytes());
    }
    bytes
}

fn op_addresses(bits: u8) -> (Address, Address) {
    let client = Address::from(socket("[2001:db8::1]:4000"));
    let server = Address::from(socket("192.0.2.7:7"));
    (
        if bits & 1 == 1 {
            client
        } else {
            Address::UNSPECIFIED
        },
        if bits & 2 == 2 {
            server
        } else {
            Address::UNSPECIFIED
        },
    )
}

/// What the server must send for one request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// This frame (flags other than MORE are zero).
    Frame {
        /// Its type.
        frame_type: FrameType,
        /// Its MORE flag.
        more: bool,
        /// Its data.
        data: Vec<u8>,
    },
    /// An ERROR with this code (and, where SPEC.md fixes it, this message).
    Error(ErrorCode, Option<String>),
}

impl Expected {
    /// Whether the server sends nothing after this reply.
    pub fn is_terminal(&self) -> bool {
        match self {
            Expected::Frame { frame_type, .. } => *frame_type == FrameType::Bye,
            Expected::Error(code, _) => code.is_fatal(),
        }
    }

    /// Panic unless `reply` is this reply.
    pub fn assert_matches(&self, reply: &FrameRepr, request: &FrameRepr) {
        match self {
            Expected::Frame {
                frame_type,
                more,
                data,
            } => {
                assert_eq!(reply.frame_type, *frame_type, "reply type to {request:?}");
                assert_eq!(reply.flags, Flags::more_if(*more), "reply flags");
                assert_eq!(&reply.data[..], &data[..], "reply data to {request:?}");
            }
            Expected::Error(code, message) => {
                assert_eq!(reply.frame_type, FrameType::Error, "reply to {request:?}");
                assert_eq!(error_code(reply), *code, "ERROR code for {request:?}");
                if let Some(message) = message {
                    assert_eq!(&reply.data[2..], message.as_bytes(), "ERROR message");
                }
            }
        }
    }
}

/// The reply rules of SPEC.md (protocol.md §4–§5 and decisions.md), written
/// independently of `conn::framed`: one frame in, the expected reply out.
/// Each TEXT reply is recomputed from the whole message so far (no
/// streaming, no carry), so it shares no logic with the implementation.
#[derive(Debug, Clone, Default)]
pub struct ReplyModel {
    /// The open fragmented message: its type and every data byte received so far.
    open: Option<(FrameType, Vec<u8>)>,
}

impl ReplyModel {
    /// The reply to `frame`, updating the open message.
    pub fn expect(&mut self, frame: &FrameRepr) -> Expected {
        let more = frame.flags.more();
        let malformed = frame.flags.0 & Flags::RESERVED != 0
            || (more && !matches!(frame.frame_type, FrameType::Text | FrameType::Bytes));
        if malformed {
            return Expected::Error(ErrorCode::MALFORMED, None);
        }
        match frame.frame_type {
            FrameType::Unknown(_) => Expected::Error(ErrorCode::UNKNOWN_TYPE, None),
            FrameType::Pong | FrameType::Error => Expected::Error(ErrorCode::UNEXPECTED_TYPE, None),
            FrameType::Ping => Expected::Frame {
                frame_type: FrameType::Pong,
                more: false,
                data: frame.data.to_vec(),
            },
            FrameType::Bye => {
                self.open = None;
                Expected::Frame {
                    frame_type: FrameType::Bye,
                    more: false,
                    data: Vec::new(),
                }
            }
            data_type @ (FrameType::Text | FrameType::Bytes) => {
                let (open_type, mut message) = self.open.take().unwrap_or((data_type, Vec::new()));
                if open_type != data_type {
                    return Expected::Error(ErrorCode::TYPE_MISMATCH, None);
                }
                let data = if data_type == FrameType::Bytes {
                    frame.data.to_ascii_uppercase()
                } else {
                    let done_before =
                        whole_code_points(&message, true).expect("an open message is valid");
                    message.extend_from_slice(&frame.data);
                    let done_after = match whole_code_points(&message, more) {
                        Ok(len) => len,
                        Err(offset) => {
                            return Expected::Error(
                                ErrorCode::INVALID_UTF8,
                                Some(format!("invalid UTF-8 at byte {offset} of the message")),
                            );
                        }
                    };
                    std::str::from_utf8(&message[done_before..done_after])
                        .expect("a run of whole code points")
                        .to_uppercase()
                        .into_bytes()
                };
                if more {
                    self.open = Some((data_type, message));
                }
                Expected::Frame {
                    frame_type: data_type,
                    more,
                    data,
                }
            }
        }
    }
}

/// How many leading bytes of a TEXT `message` are whole code points, or the
/// offset of the first bad byte when it is invalid (an unfinished code point
/// at the end is only bad when no more fragments are to come).
fn whole_code_points(message: &[u8], more_to_come: bool) -> Result<usize, usize> {
    match std::str::from_utf8(message) {
        Ok(_) => Ok(message.len()),
        Err(error) if error.error_len().is_none() && more_to_come => Ok(error.valid_up_to()),
        Err(error) => Err(error.valid_up_to()),
    }
}

/// The replies SPEC.md gives to `frames` sent in order on one connection:
/// the [`ReplyModel`]'s, FRAME_TOO_LARGE for a frame over `max_data_len`,
/// and nothing after the reply that ends the connection.
pub fn expected_replies(frames: &[FrameRepr], max_data_len: u32) -> Vec<Expected> {
    let mut model = ReplyModel::default();
    let mut replies = Vec::new();
    for frame in frames {
        let reply = if frame.data.len() > max_data_len as usize {
            Expected::Error(ErrorCode::FRAME_TOO_LARGE, None)
        } else {
            model.expect(frame)
        };
        let terminal = reply.is_terminal();
        replies.push(reply);
        if terminal {
            break;
        }
    }
    replies
}

/// The code of an ERROR frame (whose data is at least 2 bytes).
fn error_code(frame: &FrameRepr) -> ErrorCode {
    ErrorPayload::parse(&frame.data)
        .expect("ERROR data holds a code")
        .code
}

/// Whether bytes a client sent make a framed session: the preface magic
/// came first on a server that sniffs (SPEC.md §2.1).
fn starts_framed(mode: ServerMode, input: &[u8]) -> bool {
    mode != ServerMode::Raw
        && input.len() >= PREFACE_LEN
        && input[..PREFACE_MAGIC.len()] == PREFACE_MAGIC
}

/// The transform raw mode applies with these upper-case rules.
fn raw_case_mode(raw_case: RawCase) -> CaseMode {
    match raw_case {
        RawCase::Unicode => CaseMode::UnicodeLossless,
        RawCase::Ascii => CaseMode::Ascii,
    }
}

/// The server's and the client's addresses, as frames carry them.
fn endpoints() -> (Address, Address) {
    (Address::from(socket(LOCAL)), Address::from(socket(PEER)))
}

/// Panic unless `frame` is a frame a server may send: reserved bits clear,
/// MORE only on TEXT/BYTES, a known type a server sends, ERROR data holding a code.
pub fn assert_well_formed_reply(frame: &FrameRepr) {
    assert_eq!(frame.flags.reserved(), 0, "reserved bits in {frame:?}");
    assert!(
        !frame.flags.more() || frame.frame_type.is_data(),
        "MORE on {frame:?}"
    );
    assert!(
        matches!(
            frame.frame_type,
            FrameType::Text
                | FrameType::Bytes
                | FrameType::Pong
                | FrameType::Bye
                | FrameType::Error
        ),
        "a server never sends {frame:?}"
    );
    if frame.frame_type == FrameType::Error {
        assert!(frame.data.len() >= 2, "ERROR without a code: {frame:?}");
    }
}

/// Panic unless `frame` goes from `src` to `dst`.
fn assert_addressed(frame: &FrameRepr, src: Address, dst: Address) {
    assert_eq!((frame.src, frame.dst), (src, dst), "addresses of {frame:?}");
}

/// The addresses of a reply to a request from `src` to `dst`: swapped, each
/// unspecified one filled in from the socket.
fn reply_addresses(src: Address, dst: Address) -> (Address, Address) {
    let fill = |address: Address, socket_side: &str| {
        if address == Address::UNSPECIFIED {
            Address::from(socket(socket_side))
        } else {
            address
        }
    };
    (fill(dst, LOCAL), fill(src, PEER))
}

/// Frames decoded from a growing byte stream.
#[derive(Debug)]
struct FrameLog {
    decoder: FrameDecoder,
    buf: BytesMut,
    frames: Vec<FrameRepr>,
    /// The header of the first frame over the limit; decoding stops there.
    oversize: Option<FrameHeader>,
}

impl FrameLog {
    fn new(limit: u32) -> FrameLog {
        FrameLog {
            decoder: FrameDecoder::new(limit),
            buf: BytesMut::new(),
            frames: Vec::new(),
            oversize: None,
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.oversize.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => self.frames.push(frame),
                Ok(None) => return,
                Err(too_large) => {
                    self.oversize = Some(too_large.header);
                    return;
                }
            }
        }
    }
}

/// The state of one run: the connection and everything observed about it.
struct Run {
    server: ServerConfig,
    /// Whether the connection is over the server's connection limit.
    busy: bool,
    /// The connection and the fake clock; this run is the peer, by hand.
    pair: Pair,
    /// Client bytes not yet delivered; the last `hold` of them wait for the next op.
    queue: Vec<u8>,
    hold: usize,
    /// Bytes the connection accepted before it ended.
    fed: Vec<u8>,
    /// Every byte the connection ever put in its output, and how many were sent.
    emitted: Vec<u8>,
    sent: usize,
    /// Since when output has been pending with no byte of it taken: the
    /// send timeout's start (SPEC.md §9.4), tracked here independently.
    stalled_since: Option<Instant>,
    requests: FrameLog,
    replies: FrameLog,
    /// Raw mode: how much of `fed` and `emitted` was already checked.
    raw_checked: (usize, usize),
    eof: bool,
    shutdown: bool,
    timed_out: bool,
    seen_mode: Option<WireMode>,
    protocol_errors: usize,
    closed: Option<CloseReason>,
}

impl Run {
    fn new(config: &ServerOpsConfig) -> Run {
        let server = config.server_config();
        let now = clock_origin();
        let (local, peer) = (socket(LOCAL), socket(PEER));
        let conn = if config.busy {
            ServerConnection::new_busy(server.clone(), local, peer, now, 7)
        } else {
            ServerConnection::new(server.clone(), local, peer, now)
        };
        let mut run = Run {
            busy: config.busy,
            requests: FrameLog::new(server.max_data_len),
            replies: FrameLog::new(u32::MAX),
            server,
            pair: Pair::of(conn, now),
            queue: Vec::new(),
            hold: 0,
            fed: Vec::new(),
            emitted: Vec::new(),
            sent: 0,
            stalled_since: None,
            raw_checked: (0, 0),
            eof: false,
            shutdown: false,
            timed_out: false,
            seen_mode: None,
            protocol_errors: 0,
            closed: None,
        };
        run.observe();
        run
    }

    /// The most input the connection ever buffers.
    fn input_limit(&self) -> usize {
        RAW_INPUT_LIMIT.max(HEADER_LEN + self.server.max_data_len as usize)
    }

    /// The bound on pending output. Processing stops once the output
    /// reaches `max_pending_output`, and input is refused from then on, so
    /// past that point the connection can only answer what it already
    /// buffered (at most the input limit), at most three output bytes per
    /// input byte (upper case triples at most; a reply frame is at most
    /// three times its request frame, header included, ERRORs too), plus one
    /// frame that ends the connection without a request.
    fn output_bound(&self) -> usize {
        self.server.max_pending_output + 3 * self.input_limit() + END_FRAME_SLACK
    }

    /// Whether the connection is past its active phase (so it discards input).
    fn ended(&self) -> bool {
        self.pair.server.is_closed()
            || self.eof
            || self.shutdown
            || self.timed_out
            || self.pair.server.has_ended()
    }

    /// Whether the client's bytes are frames: the preface magic came first
    /// on a server that sniffs.
    fn framed(&self) -> bool {
        starts_framed(self.server.mode, &self.fed)
    }

    fn apply(&mut self, op: &Op) {
        let hold = std::mem::take(&mut self.hold);
        debug_assert!(hold <= self.queue.len());
        match op {
            Op::Input(bytes) => self.queue.extend_from_slice(bytes),
            Op::Preface(byte) => {
                let mut preface = PREFACE;
                if *byte >= 0xe0 {
                    preface[PREFACE_LEN - 1] = *byte;
                }
                self.queue.extend_from_slice(&preface);
            }
            Op::Frame(frame) => {
                let (bytes, now) = encode_frame_op(frame);
                self.queue.extend_from_slice(&bytes);
                self.hold = bytes.len() - now;
            }
            Op::Text(text) => self.queue.extend_from_slice(&encode_text_op(text)),
            Op::AdvanceTime(millis) => {
                self.pair.now += Duration::from_millis(u64::from(*millis));
                self.fire_due_timeouts();
            }
            Op::FireTimeout => {
                if let Some(at) = self.pair.server.poll_timeout() {
                    self.pair.now = self.pair.now.max(at);
                }
                self.fire_due_timeouts();
            }
            Op::Eof => {
                self.queue.clear();
                if !self.eof {
                    self.eof = true;
                    self.pair.server.handle_eof(self.pair.now);
                }
            }
            Op::Shutdown => {
                self.shutdown = true;
                self.pair.server.begin_shutdown(self.pair.now);
            }
            Op::Send(n) => self.send(usize::from(*n)),
            Op::SendAll => self.send(usize::MAX),
        }
        self.observe();
        self.deliver();
    }

    /// Feed queued client bytes, as many as the connection takes.
    fn deliver(&mut self) {
        if self.eof {
            return;
        }
        let ready = self.queue.len() - self.hold;
        let record = !self.ended();
        let n = self.pair.deliver(&self.queue[..ready]);
        if n == 0 {
            return;
        }
        let chunk: Vec<u8> = self.queue.drain(..n).collect();
        if record {
            self.record_fed(&chunk);
        }
        self.observe();
    }

    fn record_fed(&mut self, chunk: &[u8]) {
        let before = self.fed.len();
        self.fed.extend_from_slice(chunk);
        if self.framed() {
            let start = before.max(PREFACE_LEN);
            self.requests.extend(&self.fed[start..]);
        }
    }

    fn send(&mut self, n: usize) {
        let taken = self.pair.read(n).len();
        self.sent += taken;
        if taken > 0 {
            self.stalled_since = None;
        }
    }

    /// The send timeout in force: the idle timeout if shorter (SPEC.md §9.1).
    fn send_timeout(&self) -> Duration {
        self.server.send_timeout.min(self.server.idle_timeout)
    }

    /// Call `handle_timeout` while the clock is at or past `poll_timeout`;
    /// the connection must not ask to be woken again at the same instant
    /// more than once (ending, then closing, as with a zero linger).
    fn fire_due_timeouts(&mut self) {
        for _ in 0..2 {
            match self.pair.server.poll_timeout() {
                Some(at) if at <= self.pair.now => {
                    self.timed_out = true;
                    self.pair.server.handle_timeout(self.pair.now);
                    self.observe();
                }
                _ => return,
            }
        }
        assert!(
            self.pair
                .server
                .poll_timeout()
                .is_none_or(|at| at > self.pair.now),
            "still due after handling a timeout twice"
        );
    }

    /// Record new output and events, and check the invariants that hold
    /// whenever the connection is at rest.
    fn observe(&mut self) {
        let pending = self.pair.server.pending_output();
        let known = self.emitted.len() - self.sent;
        if self.pair.server.is_closed() {
            assert!(pending.is_empty(), "output after close");
        } else {
            assert!(
                pending.len() >= known,
                "pending output shrank without a send"
            );
            assert_eq!(
                &pending[..known],
                &self.emitted[self.sent..],
                "pending output rewritten"
            );
            let new = pending[known..].to_vec();
            self.emitted.extend_from_slice(&new);
            if self.seen_mode == Some(WireMode::Framed) || self.framed() {
                let start = (self.emitted.len() - new.len()).max(PREFACE_LEN);
                if start < self.emitted.len() {
                    self.replies.extend(&self.emitted[start..]);
                }
            }
        }
        while let Some(event) = self.pair.server.poll_event() {
            assert!(self.closed.is_none(), "event {event:?} after Closed");
            match event {
                ServerEvent::ModeDetected(mode) => {
                    assert_eq!(self.seen_mode, None, "mode detected twice");
                    self.seen_mode = Some(mode);
                }
                ServerEvent::ProtocolError { .. } => self.protocol_errors += 1,
                ServerEvent::Message { .. } => {}
                ServerEvent::Closed { reason, unsent } => {
                    assert_eq!(
                        unsent,
                        self.emitted.len() - self.sent,
                        "Closed reports the unsent bytes"
                    );
                    if reason == CloseReason::SendTimeout {
                        let since = self
                            .stalled_since
                            .expect("a send timeout with no output pending");
                        assert!(
                            self.pair.now >= since + self.send_timeout(),
                            "closed for the send timeout before it passed"
                        );
                    }
                    self.closed = Some(reason);
                }
            }
        }
        let pending = self.emitted.len() - self.sent;
        if self.pair.server.is_closed() || pending == 0 {
            self.stalled_since = None;
        } else {
            let since = *self.stalled_since.get_or_insert(self.pair.now);
            let due = since + self.send_timeout();
            assert!(
                self.pair.server.poll_timeout().is_some_and(|at| at <= due),
                "pending output without the send timeout armed"
            );
        }
        assert_eq!(
            self.pair.server.is_closed(),
            self.closed.is_some(),
            "Closed event"
        );
        let pending = self.pair.server.pending_output().len();
        assert!(
            pending <= self.output_bound(),
            "{pending} bytes pending, over the bound {}",
            self.output_bound()
        );
        if self.pair.server.is_closed() {
            assert_eq!(self.pair.server.read_capacity(), 0);
            assert_eq!(self.pair.server.poll_timeout(), None);
            return;
        }
        assert!(self.pair.server.read_capacity() <= self.input_limit());
        let backpressure = pending >= self.server.max_pending_output;
        match self.pair.server.mode() {
            Some(WireMode::Framed) if !self.ended() => {
                // At rest every complete frame is answered unless output is over its bound.
                let (answered, received) = (self.replies.frames.len(), self.requests.frames.len());
                if backpressure {
                    assert!(
                        answered <= received,
                        "{answered} replies to {received} frames"
                    );
                } else {
                    assert_eq!(answered, received, "every complete frame answered at rest");
                    assert!(
                        self.requests.oversize.is_none(),
                        "oversized frame not refused"
                    );
                }
            }
            Some(WireMode::Raw) if !self.ended() && !backpressure => self.check_raw_so_far(),
            _ => {}
        }
    }

    /// Raw mode at rest: the output is the upper case of everything received
    /// except a trailing incomplete sequence, which is held.
    fn check_raw_so_far(&mut self) {
        let (fed_done, out_done) = self.raw_checked;
        let mode = raw_case_mode(self.server.raw_case);
        let held = match self.fed[fed_done..].utf8_chunks().last() {
            Some(chunk) if mode == CaseMode::UnicodeLossless && !chunk.invalid().is_empty() => {
                let incomplete = std::str::from_utf8(chunk.invalid())
                    .expect_err("invalid bytes")
                    .error_len()
                    .is_none();
                if incomplete { chunk.invalid().len() } else { 0 }
            }
            _ => 0,
        };
        let upto = self.fed.len() - held;
        let expected = transform_oracle(mode, &self.fed[fed_done..upto]).expect("raw never fails");
        assert_eq!(
            &self.emitted[out_done..],
            &expected[..],
            "raw output of {:x?}",
            &self.fed[fed_done..upto]
        );
        self.raw_checked = (upto, self.emitted.len());
    }

    /// Close the client side, accept all output and let the timers run out.
    fn finish(&mut self) {
        for _ in 0..4 {
            if self.pair.server.is_closed() {
                return;
            }
            self.apply(&Op::Eof);
            self.apply(&Op::SendAll);
            if !self.pair.server.is_closed() {
                self.apply(&Op::FireTimeout);
            }
        }
        assert!(self.pair.server.is_closed(), "connection never closed");
    }

    /// The whole output against what the whole input deserves.
    fn check_end(&self) {
        let reason = self.closed.expect("closed");
        if self.framed() {
            self.check_framed_end(reason);
            return;
        }
        assert_eq!(self.protocol_errors, 0, "ERROR events on a raw connection");
        // Undecided bytes are raw input when the connection ends (SPEC.md
        // §2.1), but a framed-only server or a busy connection says nothing (§9.3).
        let silent = self.server.mode == ServerMode::Framed || self.busy;
        if silent {
            assert!(
                self.emitted.is_empty(),
                "reply on a connection closed silently"
            );
            return;
        }
        let expected = transform_oracle(raw_case_mode(self.server.raw_case), &self.fed)
            .expect("raw never fails");
        if reason == CloseReason::SendTimeout {
            // Cut short where the client stopped taking output (SPEC.md §9.4).
            assert!(self.timed_out, "a send timeout without the clock");
            assert!(
                expected.starts_with(&self.emitted),
                "raw output of {:x?}",
                self.fed
            );
            return;
        }
        assert_eq!(self.emitted, expected, "raw output of {:x?}", self.fed);
    }

    /// The connection closed for `expected`, or for the send timeout when
    /// the client had not taken the output that ended it (SPEC.md §9.4).
    fn assert_ended_for(&self, reason: CloseReason, expected: CloseReason) {
        if reason == CloseReason::SendTimeout {
            assert!(self.timed_out, "a send timeout without the clock");
        } else {
            assert_eq!(reason, expected);
        }
    }

    fn check_framed_end(&self, reason: CloseReason) {
        assert!(self.emitted.len() >= PREFACE_LEN, "no preface in reply");
        assert_eq!(self.emitted[..PREFACE_LEN], PREFACE, "server preface");
        assert!(self.replies.buf.is_empty(), "output ends inside a frame");
        let replies = &self.replies.frames;
        let errors = replies
            .iter()
            .filter(|frame| frame.frame_type == FrameType::Error)
            .count();
        assert_eq!(errors, self.protocol_errors, "one event per ERROR sent");
        for reply in replies {
            assert_well_formed_reply(reply);
        }
        let (local, peer) = endpoints();
        let version = self.fed[PREFACE_LEN - 1];
        if version != 1 || self.busy {
            // BUSY whatever the version (SPEC.md §9.3).
            let code = if self.busy {
                ErrorCode::BUSY
            } else {
                ErrorCode::UNSUPPORTED_VERSION
            };
            assert_eq!(replies.len(), 1, "only ERROR after the preface");
            assert_eq!(error_code(&replies[0]), code);
            assert_addressed(&replies[0], local, peer);
            self.assert_ended_for(reason, CloseReason::Fatal(code));
            return;
        }
        let requests = &self.requests.frames;
        let last = replies.last();
        let server_initiated = last.is_some_and(|frame| {
            (frame.frame_type == FrameType::Bye && !frame.data.is_empty())
                || (frame.frame_type == FrameType::Error
                    && matches!(
                        error_code(frame),
                        ErrorCode::IDLE_TIMEOUT | ErrorCode::FRAME_TOO_LARGE
                    ))
        });
        let answered = replies.len() - usize::from(server_initiated);
        assert!(
            answered <= requests.len(),
            "{answered} replies to {} frames",
            requests.len()
        );
        let expected = expected_replies(requests, self.server.max_data_len);
        assert!(
            answered <= expected.len(),
            "reply after the last one: {:?}",
            replies[expected.len()]
        );
        for ((request, reply), expected) in requests.iter().zip(&replies[..answered]).zip(&expected)
        {
            expected.assert_matches(reply, request);
            let (src, dst) = reply_addresses(request.src, request.dst);
            assert_addressed(reply, src, dst);
        }
        let terminal = expected
            .last()
            .filter(|last| last.is_terminal() && answered == expected.len());
        if let Some(expected) = terminal {
            assert!(!server_initiated, "a frame after the last reply");
            let expected_reason = match expected {
                Expected::Error(code, _) => CloseReason::Fatal(*code),
                Expected::Frame { .. } => CloseReason::PeerBye,
            };
            self.assert_ended_for(reason, expected_reason);
            return;
        }
        if reason == CloseReason::SendTimeout && !server_initiated {
            // Closed without more output behind replies the client did not
            // take within the send timeout (SPEC.md §9.4); those written
            // were checked above.
            assert!(self.timed_out, "a send timeout without the clock");
            return;
        }
        let Some(last) = last.filter(|_| server_initiated) else {
            // Nothing ended it but the client's EOF: everything complete is answered.
            assert_eq!(answered, requests.len(), "every frame answered at EOF");
            assert!(
                self.requests.oversize.is_none(),
                "oversized frame not refused"
            );
            let mid_frame = !self.requests.buf.is_empty();
            let expected = if mid_frame {
                CloseReason::PeerClosedMidFrame
            } else {
                CloseReason::PeerClosed
            };
            assert_eq!(reason, expected);
            return;
        };
        match last.frame_type {
            FrameType::Bye => {
                assert!(self.shutdown, "shutdown BYE without a shutdown");
                assert_eq!(answered, requests.len(), "shutdown answers every frame");
                assert!(self.requests.oversize.is_none());
                assert_addressed(last, local, peer);
                self.assert_ended_for(reason, CloseReason::Shutdown);
            }
            _ if error_code(last) == ErrorCode::FRAME_TOO_LARGE => {
                let header = self.requests.oversize.expect("FRAME_TOO_LARGE for a frame");
                assert_eq!(answered, requests.len(), "frames before the oversized one");
                let (src, dst) = reply_addresses(header.src, header.dst);
                assert_addressed(last, src, dst);
                self.assert_ended_for(reason, CloseReason::Fatal(ErrorCode::FRAME_TOO_LARGE));
            }
            _ => {
                assert!(self.timed_out, "IDLE_TIMEOUT without the clock reaching it");
                assert_addressed(last, local, peer);
                self.assert_ended_for(reason, CloseReason::Fatal(ErrorCode::IDLE_TIMEOUT));
            }
        }
    }
}

/// Drive a server connection through `ops` and check it: no panic; input
/// only up to `read_capacity`; pending output within
/// `max_pending_output + 3 × input limit + END_FRAME_SLACK`; output never
/// rewritten; at rest, every complete frame answered (or raw input
/// upper-cased) unless output is over its bound; the whole output decodes
/// (preface, then frames) and every reply is well-formed and what the
/// [`ReplyModel`] expects, one per consumed frame, in order, plus one frame
/// for an ending no frame caused; nothing after the close; timers never due
/// again at the instant they were handled.
pub fn check_server_ops(config: &ServerOpsConfig, ops: &[Op]) {
    let mut run = Run::new(config);
    for op in ops {
        run.apply(op);
        if run.pair.server.is_closed() {
            // Whatever happens next must not wake it up.
            let emitted = run.emitted.len();
            for op in ops.iter().take(4) {
                run.apply(op);
            }
            assert_eq!(run.emitted.len(), emitted, "output after close");
            break;
        }
    }
    run.finish();
    run.check_end();
}

/// Answer one datagram and check the reply: never over 65,507 bytes; a
/// datagram that starts with the preface (on a server that is not raw-only)
/// gets the preface plus exactly one well-formed frame, the [`ReplyModel`]'s
/// reply to a well-formed request frame, never more than three times its
/// size (no reply at all when even a message-less ERROR would be); any other datagram gets its upper
/// case (at most three times as long), dropped only when it would not fit,
/// or nothing on a framed-only server.
pub fn check_datagram(datagram: &[u8], mode: ServerMode, raw_case: RawCase, max_data_len: u32) {
    let config = DatagramConfig {
        mode,
        raw_case,
        max_data_len,
    };
    let reply = respond_to_datagram(datagram, socket(LOCAL), socket(PEER), &config);
    let framed = starts_framed(mode, datagram);
    if !framed && mode == ServerMode::Framed {
        assert_eq!(
            reply,
            DatagramReply::NotFramed,
            "framed-only server, raw datagram"
        );
        return;
    }
    if !framed {
        let expected =
            transform_oracle(raw_case_mode(raw_case), datagram).expect("raw never fails");
        assert!(expected.len() <= 3 * datagram.len());
        if expected.len() > MAX_UDP_PAYLOAD {
            assert_eq!(
                reply,
                DatagramReply::Drop {
                    reply_len: expected.len()
                }
            );
        } else {
            assert_eq!(reply.bytes(), Some(&expected[..]), "raw reply");
        }
        return;
    }
    if let DatagramReply::OverAmplificationLimit { .. } = reply {
        assert!(
            AMPLIFICATION_LIMIT * datagram.len() < SHORTEST_ERROR_REPLY,
            "a datagram of {} bytes has room for an ERROR",
            datagram.len()
        );
        return;
    }
    let bytes = reply
        .bytes()
        .expect("a framed datagram with room for an ERROR is answered");
    assert!(
        bytes.len() <= MAX_UDP_PAYLOAD,
        "reply of {} bytes",
        bytes.len()
    );
    assert!(
        bytes.len() <= AMPLIFICATION_LIMIT * datagram.len(),
        "reply of {} bytes to {} bytes",
        bytes.len(),
        datagram.len()
    );
    assert_eq!(bytes[..PREFACE_LEN], PREFACE);
    let mut rest = BytesMut::from(&bytes[PREFACE_LEN..]);
    let reply = FrameDecoder::new(u32::MAX)
        .decode(&mut rest)
        .expect("no limit")
        .expect("a whole reply frame");
    assert!(rest.is_empty(), "bytes after the reply frame");
    assert_well_formed_reply(&reply);
    let (local, peer) = endpoints();
    let frame_bytes = &datagram[PREFACE_LEN..];
    let error = |code: ErrorCode| {
        assert_eq!(reply.frame_type, FrameType::Error, "reply to {datagram:x?}");
        assert_eq!(error_code(&reply), code, "reply to {datagram:x?}");
    };
    if datagram[PREFACE_LEN - 1] != 1 {
        error(ErrorCode::UNSUPPORTED_VERSION);
        return assert_addressed(&reply, local, peer);
    }
    let Some(header) = parse_header(frame_bytes) else {
        error(ErrorCode::MALFORMED);
        return assert_addressed(&reply, local, peer);
    };
    let (src, dst) = reply_addresses(header.src, header.dst);
    assert_addressed(&reply, src, dst);
    if header.data_len > max_data_len {
        return error(ErrorCode::FRAME_TOO_LARGE);
    }
    if header.data_len as usize != frame_bytes.len() - HEADER_LEN || header.flags.more() {
        return error(ErrorCode::MALFORMED);
    }
    let request =
        FrameRepr::from_header(header, Bytes::copy_from_slice(&frame_bytes[HEADER_LEN..]));
    let expected = ReplyModel::default().expect(&request);
    let too_big = match &expected {
        Expected::Frame { data, .. } => PREFACE_LEN + HEADER_LEN + data.len() > MAX_UDP_PAYLOAD,
        Expected::Error(..) => false,
    };
    if too_big {
        error(ErrorCode::FRAME_TOO_LARGE);
    } else {
        expected.assert_matches(&reply, &request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> impl Strategy<Value = ServerOpsConfig> {
        (
            prop_oneof![
                Just(ServerMode::Auto),
                Just(ServerMode::Raw),
                Just(ServerMode::Framed)
            ],
            prop_oneof![Just(RawCase::Unicode), Just(RawCase::Ascii)],
            prop_oneof![Just(u16::MAX), 0u16..64],
            prop_oneof![Just(u16::MAX), 0u16..300],
            prop_oneof![Just(u16::MAX), 0u16..50],
            prop_oneof![Just(u16::MAX), 0u16..50],
            any::<u8>(),
            prop::bool::weighted(0.1),
            any::<bool>(),
        )
            .prop_map(
                |(mode, raw_case, max_data_len, pending, idle, send, linger, busy, report)| {
                    ServerOpsConfig {
                        mode,
                        raw_case,
                        max_data_len,
                        max_pending_output: pending,
                        idle_timeout_ms: idle,
                        send_timeout_ms: send,
                        linger_ms: linger,
                        busy,
                        report_messages: report,
                    }
                },
            )
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    fn frame_kind() -> impl Strategy<Value = FrameKind> {
        prop_oneof![
            4 => Just(FrameKind::Text),
            4 => Just(FrameKind::Bytes),
            2 => Just(FrameKind::Ping),
            1 => Just(FrameKind::Bye),
            1 => Just(FrameKind::Pong),
            1 => Just(FrameKind::Error),
            1 => any::<u8>().prop_map(FrameKind::Code),
            1 => any::<u8>().prop_map(FrameKind::ReservedFlags),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let frame = (
            frame_kind(),
            any::<bool>(),
            any::<u8>(),
            bytes(40),
            any::<Option<u16>>(),
        )
            .prop_map(|(kind, more, addresses, data, deliver_now)| {
                Op::Frame(FrameOp {
                    kind,
                    more,
                    addresses,
                    data,
                    deliver_now,
                })
            });
        let text = (
            bytes(24),
            prop::collection::vec(any::<u16>(), 0..4),
            prop::bool::weighted(0.2),
            any::<u8>(),
        )
            .prop_map(|(letters, cuts, leave_open, addresses)| {
                Op::Text(TextOp {
                    letters,
                    cuts,
                    leave_open,
                    addresses,
                })
            });
        prop_oneof![
            2 => bytes(20).prop_map(Op::Input),
            2 => prop_oneof![9 => Just(0u8), 1 => any::<u8>()].prop_map(Op::Preface),
            6 => frame,
            4 => text,
            2 => any::<u16>().prop_map(Op::AdvanceTime),
            1 => Just(Op::FireTimeout),
            1 => Just(Op::Eof),
            1 => Just(Op::Shutdown),
            3 => any::<u16>().prop_map(|n| Op::Send(n % 512)),
            2 => Just(Op::SendAll),
        ]
    }

    /// A framed session usually starts with the preface; raw ones with text.
    fn ops() -> impl Strategy<Value = Vec<Op>> {
        (
            prop::bool::weighted(0.7),
            prop::collection::vec(op(), 0..24),
        )
            .prop_map(|(preface, mut ops)| {
                if preface {
                    ops.insert(0, Op::Preface(0));
                }
                ops
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn server_connection_survives_any_ops(config in config(), ops in ops()) {
            check_server_ops(&config, &ops);
        }

        #[test]
        fn datagram_reply_is_one_frame_or_the_upper_case(
            mode in prop_oneof![Just(ServerMode::Auto), Just(ServerMode::Raw), Just(ServerMode::Framed)],
            raw_case in prop_oneof![Just(RawCase::Unicode), Just(RawCase::Ascii)],
            max_data_len in prop_oneof![Just(u32::MAX), 0u32..64],
            frame in prop::option::of((frame_kind(), any::<bool>(), any::<u8>(), bytes(60), -2i64..3)),
            raw in bytes(80),
        ) {
            let datagram = match frame {
                None => raw,
                Some((kind, more, addresses, data, length_error)) => {
                    let op = FrameOp { kind, more, addresses, data, deliver_now: None };
                    let (frame, _) = encode_frame_op(&op);
                    let mut datagram = PREFACE.to_vec();
                    datagram.extend_from_slice(&frame);
                    let len = usize::try_from(datagram.len() as i64 + length_error).unwrap_or(0);
                    datagram.resize(len, b'x');
                    datagram
                }
            };
            check_datagram(&datagram, mode, raw_case, max_data_len);
        }
    }

    fn default_config() -> ServerOpsConfig {
        ServerOpsConfig {
            mode: ServerMode::Auto,
            raw_case: RawCase::Unicode,
            max_data_len: u16::MAX,
            max_pending_output: u16::MAX,
            idle_timeout_ms: 1000,
            send_timeout_ms: 1000,
            linger_ms: 10,
            busy: false,
            report_messages: false,
        }
    }

    #[test]
    fn a_fragmented_message_with_a_split_code_point_is_answered_per_fragment() {
        let text = Op::Text(TextOp {
            letters: vec![9, 10, 19], // ß ΐ 😀
            cuts: vec![1, 3, 6],
            leave_open: false,
            addresses: 3,
        });
        check_server_ops(&default_config(), &[Op::Preface(0), text, Op::SendAll]);
    }

    #[test]
    fn the_model_expects_per_fragment_upper_case() {
        let mut model = ReplyModel::default();
        let mut fragment = |data: &'static [u8], more: bool| {
            let mut frame = FrameRepr::new(FrameType::Text, data);
            frame.flags = Flags::more_if(more);
            model.expect(&frame)
        };
        let text = |data: &[u8], more: bool| Expected::Frame {
            frame_type: FrameType::Text,
            more,
            data: data.to_vec(),
        };
        assert_eq!(fragment(b"a\xc3", true), text(b"A", true));
        assert_eq!(fragment(b"\x9f", true), text(b"SS", true));
        assert_eq!(
            fragment(b"\xff", false),
            Expected::Error(
                ErrorCode::INVALID_UTF8,
                Some("invalid UTF-8 at byte 3 of the message".into())
            )
        );
    }

    #[test]
    fn idle_timeout_and_shutdown_are_checked_endings() {
        let config = default_config();
        check_server_ops(&config, &[Op::Preface(0), Op::FireTimeout]);
        check_server_ops(&config, &[Op::Preface(0), Op::Shutdown]);
        check_server_ops(&config, &[Op::Input(b"hello \xce".to_vec()), Op::Shutdown]);
    }

    #[test]
    fn a_client_that_stops_reading_is_a_checked_ending() {
        let config = ServerOpsConfig {
            max_pending_output: 10,
            ..default_config()
        };
        let frame = |data: &[u8]| {
            Op::Frame(FrameOp {
                kind: FrameKind::Text,
                more: false,
                addresses: 0,
                data: data.to_vec(),
                deliver_now: None,
            })
        };
        let ops = [
            Op::Preface(0),
            frame(&[b'a'; 40]),
            frame(b"not read"),
            Op::FireTimeout,
        ];
        check_server_ops(&config, &ops);
        check_server_ops(&config, &[Op::Input(vec![b'a'; 40]), Op::FireTimeout]);
    }

    #[test]
    fn a_send_timeout_while_reading_is_a_checked_ending() {
        // The send timeout (100 ms) is far shorter than the idle timeout:
        // the byte taken at 60 ms restarts it, so it closes at 160 ms.
        let config = ServerOpsConfig {
            send_timeout_ms: 100,
            ..default_config()
        };
        let ops = [
            Op::Preface(0),
            Op::AdvanceTime(60),
            Op::Send(1),
            Op::AdvanceTime(60),
            Op::AdvanceTime(60),
        ];
        check_server_ops(&config, &ops);
    }
}
