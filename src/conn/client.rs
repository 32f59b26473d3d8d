//! The client side of a framed connection, sans-IO: the mirror of
//! [`ServerConnection`](super::ServerConnection).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use super::config::ClientConfig;
use super::error::{ClientUsageError, PeerError};
use crate::wire::{
    ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameHeader, FrameRepr, FrameType, PREFACE,
    PREFACE_LEN, PrefaceMatch, VERSION, match_preface, parse_header,
};

/// Identifies a request, to match it with its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a [`ClientConnection`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A reply to a request. A request sent as several fragments gets one
    /// reply per fragment, in order; the last one has `last` set.
    Reply {
        /// The request it answers.
        request: RequestId,
        /// The reply frame.
        frame: FrameRepr,
        /// Whether the request has now been answered in full.
        last: bool,
    },
    /// The server answered a request with a non-fatal ERROR (the connection
    /// goes on; a fatal ERROR is [`ClientEvent::ConnectionLost`]).
    Error {
        /// The request it answers.
        request: RequestId,
        /// The server's code and message.
        error: ErrorPayload,
    },
    /// The server said BYE on its own (it is shutting down). Requests still
    /// waiting will not be answered. The connection is closed.
    ServerBye {
        /// The server's reason.
        reason: String,
        /// The requests that got no reply.
        unanswered: Vec<RequestId>,
    },
    /// The connection failed: a fatal ERROR, a server that broke the protocol,
    /// closed early or went silent. Reported once, as the last event; the
    /// connection is closed.
    ConnectionLost {
        /// What happened.
        error: PeerError,
        /// The request a fatal ERROR answers, if it answers one.
        request: Option<RequestId>,
        /// The requests that got no (complete) reply, `request` excluded.
        unanswered: Vec<RequestId>,
    },
}

/// A frame sent (or queued) and the reply it waits for.
#[derive(Debug, Clone, Copy)]
struct Sent {
    request: RequestId,
    frame_type: FrameType,
    more: bool,
    data_len: usize,
    /// Whether this is the last frame of its request.
    last: bool,
    /// Whether this is the raw-server probe (SPEC.md §2.4), no request of
    /// the caller's: its PONG is no event.
    probe: bool,
}

impl Sent {
    /// The type of a reply that is not an ERROR.
    fn reply_type(&self) -> FrameType {
        match self.frame_type {
            FrameType::Ping => FrameType::Pong,
            other => other,
        }
    }

    /// The most data the reply can carry (SPEC.md §3.4, §5.1): 3 × (N + 3)
    /// for TEXT (up to 3 bytes carried from the previous fragment, each byte
    /// at most tripled); as long as the request for the others.
    fn reply_limit(&self) -> u32 {
        let limit = match self.frame_type {
            FrameType::Text => self.data_len.saturating_add(3).saturating_mul(3),
            _ => self.data_len,
        };
        u32::try_from(limit).unwrap_or(u32::MAX)
    }
}

/// The client side of one framed connection.
///
/// Queue requests with [`send_text`](Self::send_text) and friends, write
/// [`pending_output`](Self::pending_output) to the socket (the preface goes
/// first) and report it with [`mark_sent`](Self::mark_sent), feed what the
/// socket reads to [`handle_input`](Self::handle_input) and end of stream to
/// [`handle_eof`](Self::handle_eof), call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and drain
/// [`poll_event`](Self::poll_event): replies come back in request order,
/// each matched to its [`RequestId`]. Close the socket once
/// [`is_closed`](Self::is_closed). Like the server, it never reads a clock.
///
/// Text and bytes longer than [`ClientConfig::max_fragment_len`] go out as
/// fragments (SPEC.md §4.2), and at most
/// [`ClientConfig::max_in_flight`] bytes of request data are sent ahead of
/// their replies; the rest waits in the connection until replies come
/// ([`has_held_requests`](Self::has_held_requests)), so that the server,
/// which stops reading while its output is unread, is never waiting for a
/// client that is still writing.
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    input: BytesMut,
    output: BytesMut,
    server_preface_seen: bool,
    /// Frames written to the output, waiting for their replies.
    waiting: VecDeque<Sent>,
    /// Frames held back until the request data in flight is under the window.
    held: VecDeque<(FrameRepr, Sent)>,
    /// Data bytes of the frames in `waiting`.
    in_flight: usize,
    /// Requests not answered in full.
    unanswered: usize,
    next_id: u64,
    events: VecDeque<ClientEvent>,
    bye_queued: bool,
    closed: bool,
    /// When the server must have said something, while a reply is due.
    reply_deadline: Option<Instant>,
}

impl ClientConnection {
    /// A connection opened at `now`; its output starts with the preface.
    pub fn new(now: Instant, config: ClientConfig) -> ClientConnection {
        let mut output = BytesMut::new();
        output.extend_from_slice(&PREFACE);
        let mut waiting = VecDeque::new();
        if config.probe {
            // SPEC.md §2.4: unspecified addresses, empty data, nothing else.
            FrameRepr::new(FrameType::Ping, Bytes::new()).encode(&mut output);
            waiting.push_back(Sent {
                request: RequestId(u64::MAX),
                frame_type: FrameType::Ping,
                more: false,
                data_len: 0,
                last: true,
                probe: true,
            });
        }
        ClientConnection {
            reply_deadline: Some(now + config.reply_timeout),
            config,
            input: BytesMut::new(),
            output,
            server_preface_seen: false,
            waiting,
            held: VecDeque::new(),
            in_flight: 0,
            unanswered: 0,
            next_id: 0,
            events: VecDeque::new(),
            bye_queued: false,
            closed: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Queue a TEXT request, as fragments when it is longer than
    /// [`ClientConfig::max_fragment_len`], cut at code point boundaries
    /// unless the limit is shorter than a code point.
    ///
    /// # Errors
    /// [`ClientUsageError::Closing`] after BYE or once closed.
    pub fn send_text(&mut self, text: &str) -> Result<RequestId, ClientUsageError> {
        let data = Bytes::copy_from_slice(text.as_bytes());
        let max = self.fragment_len();
        let mut cuts = Vec::new();
        let mut start = 0;
        while text.len() - start > max {
            let mut end = start + max;
            while end > start && !text.is_char_boundary(end) {
                end -= 1;
            }
            if end == start {
                // A code point longer than the limit: cut inside it; the
                // server carries its bytes to the next fragment (SPEC.md §5.1).
                end = start + max;
            }
            cuts.push(start..end);
            start = end;
        }
        cuts.push(start..text.len());
        self.send_message(FrameType::Text, data, cuts)
    }

    /// Queue a BYTES request, as fragments when it is longer than
    /// [`ClientConfig::max_fragment_len`].
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_bytes(&mut self, data: &[u8]) -> Result<RequestId, ClientUsageError> {
        let max = self.fragment_len();
        let mut cuts: Vec<_> = (0..data.len())
            .step_by(max)
            .map(|start| start..data.len().min(start + max))
            .collect();
        if cuts.is_empty() {
            cuts.push(0..0);
        }
        self.send_message(FrameType::Bytes, Bytes::copy_from_slice(data), cuts)
    }

    /// Queue a PING.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn ping(&mut self, data: &[u8]) -> Result<RequestId, ClientUsageError> {
        self.send(FrameRepr::new(
            FrameType::Ping,
            Bytes::copy_from_slice(data),
        ))
    }

    /// Queue a BYE; no request can follow it.
    ///
    /// # Errors
    /// [`ClientUsageError::Closing`] when BYE was already sent.
    pub fn bye(&mut self) -> Result<RequestId, ClientUsageError> {
        self.send(FrameRepr::new(FrameType::Bye, Bytes::new()))
    }

    /// Queue any one frame as it is (fragments with MORE, explicit
    /// addresses, even frames a server must reject: this is also a
    /// conformance tester's tool). It gets one reply.
    ///
    /// # Errors
    /// [`ClientUsageError::Closing`] after BYE or once closed;
    /// [`ClientUsageError::TooLong`] for data over `u32::MAX`.
    pub fn send(&mut self, frame: FrameRepr) -> Result<RequestId, ClientUsageError> {
        if u32::try_from(frame.data.len()).is_err() {
            return Err(ClientUsageError::TooLong {
                len: frame.data.len(),
                limit: u32::MAX,
            });
        }
        let id = self.begin_request()?;
        self.queue(frame, id, true);
        Ok(id)
    }

    fn fragment_len(&self) -> usize {
        usize::try_from(self.config.max_fragment_len)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Queue `data` as fragments cut at `cuts` (contiguous, covering it all).
    fn send_message(
        &mut self,
        frame_type: FrameType,
        data: Bytes,
        cuts: Vec<std::ops::Range<usize>>,
    ) -> Result<RequestId, ClientUsageError> {
        let id = self.begin_request()?;
        let count = cuts.len();
        for (index, cut) in cuts.into_iter().enumerate() {
            let last = index + 1 == count;
            let mut frame = FrameRepr::new(frame_type, data.slice(cut));
            frame.flags = Flags::more_if(!last);
            self.queue(frame, id, last);
        }
        Ok(id)
    }

    fn begin_request(&mut self) -> Result<RequestId, ClientUsageError> {
        if self.bye_queued || self.closed {
            return Err(ClientUsageError::Closing);
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.unanswered += 1;
        Ok(id)
    }

    fn queue(&mut self, frame: FrameRepr, request: RequestId, last: bool) {
        let sent = Sent {
            request,
            frame_type: frame.frame_type,
            more: frame.flags.more(),
            data_len: frame.data.len(),
            last,
            probe: false,
        };
        self.bye_queued |= frame.frame_type == FrameType::Bye;
        self.held.push_back((frame, sent));
        self.release_held();
    }

    /// Move held frames to the output while the data in flight allows
    /// (always at least one frame, however long).
    fn release_held(&mut self) {
        while let Some((frame, sent)) = self.held.front() {
            if self.in_flight > 0 && self.in_flight + sent.data_len > self.config.max_in_flight {
                return;
            }
            frame.encode(&mut self.output);
            self.in_flight += sent.data_len;
            self.waiting.push_back(*sent);
            self.held.pop_front();
        }
    }

    /// How many requests wait for their (last) reply.
    pub fn waiting(&self) -> usize {
        self.unanswered
    }

    /// Whether requests are held back until replies come: a shell that has
    /// written all [`pending_output`](Self::pending_output) must read before
    /// it can write them.
    pub fn has_held_requests(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether the exchange is over: the server answered BYE or said BYE,
    /// or the connection was lost. Close the socket.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The bytes to write to the socket next.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Report that the first `sent` bytes of the output were written at
    /// `now`: the server has until `now` plus the reply timeout to answer.
    ///
    /// # Errors
    /// [`ClientUsageError::SentMoreThanPending`] when `sent` is more than was pending.
    pub fn mark_sent(&mut self, now: Instant, sent: usize) -> Result<(), ClientUsageError> {
        if sent > self.output.len() {
            return Err(ClientUsageError::SentMoreThanPending {
                sent,
                pending: self.output.len(),
            });
        }
        self.output.advance(sent);
        if !self.closed {
            // A byte written is progress: the server is reading.
            self.update_deadline(now, sent > 0);
        }
        Ok(())
    }

    /// Feed bytes read from the socket. A protocol failure of the server
    /// (bad preface, a reply that does not fit its request, a fatal
    /// ERROR...) closes the connection and is reported once, as
    /// [`ClientEvent::ConnectionLost`]; input after that is ignored.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.closed {
            return;
        }
        self.input.extend_from_slice(data);
        let (preface_seen, replies) = (self.server_preface_seen, self.waiting.len());
        if let Err((error, request)) = self.decode_all() {
            self.lose(error, request);
            return;
        }
        // Only a whole preface or reply frame is progress: bytes trickled
        // into an incomplete one do not put the deadline off.
        let answered = self.server_preface_seen != preface_seen || self.waiting.len() < replies;
        self.release_held();
        self.update_deadline(now, answered);
    }

    /// The server closed its sending side. Before the exchange is over that
    /// loses the connection ([`PeerError::Closed`]).
    pub fn handle_eof(&mut self, _now: Instant) {
        if !self.closed {
            self.lose(PeerError::Closed, None);
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: while the
    /// preface or a reply is due, the reply timeout after the last byte
    /// sent, the last whole frame received, or the connection's start. A
    /// server trickling bytes into a frame does not move it: each reply has
    /// an absolute deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.reply_deadline
    }

    /// The clock reached (or passed) [`poll_timeout`](Self::poll_timeout):
    /// a server that owes a reply and said nothing for the reply timeout
    /// loses the connection ([`PeerError::Timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let timeout = self.config.reply_timeout;
                self.lose(PeerError::Timeout { timeout }, None);
            }
            _ => {}
        }
    }

    /// The next event, if any. Drain until `None` after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Keep the reply timer running while something is due from the server:
    /// restarted at `now` on `progress` (a byte sent, or the preface or a
    /// reply frame received whole: never a byte of an incomplete one),
    /// started when it was not running.
    fn update_deadline(&mut self, now: Instant, progress: bool) {
        let due = !self.server_preface_seen || !self.waiting.is_empty();
        if !due {
            self.reply_deadline = None;
        } else if progress || self.reply_deadline.is_none() {
            self.reply_deadline = Some(now + self.config.reply_timeout);
        }
    }

    /// Close, reporting `error` once.
    fn lose(&mut self, error: PeerError, request: Option<RequestId>) {
        let unanswered = self.drain_unanswered();
        self.events.push_back(ClientEvent::ConnectionLost {
            error,
            request,
            unanswered: unanswered
                .into_iter()
                .filter(|id| Some(*id) != request)
                .collect(),
        });
        self.close();
    }

    fn close(&mut self) {
        self.closed = true;
        self.reply_deadline = None;
        self.input = BytesMut::new();
        self.output = BytesMut::new();
    }

    /// Every request with a reply still due, once each, in order.
    fn drain_unanswered(&mut self) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = self
            .waiting
            .drain(..)
            .filter(|sent| !sent.probe)
            .map(|sent| sent.request)
            .chain(self.held.drain(..).map(|(_, sent)| sent.request))
            .collect();
        ids.dedup();
        self.unanswered = 0;
        self.in_flight = 0;
        ids
    }

    fn decode_all(&mut self) -> Result<(), (PeerError, Option<RequestId>)> {
        if !self.server_preface_seen {
            match match_preface(&self.input) {
                PrefaceMatch::Partial => return Ok(()),
                PrefaceMatch::Mismatch => return Err((PeerError::BadPreface, None)),
                PrefaceMatch::Complete { version } if version != VERSION => {
                    return Err((PeerError::UnsupportedVersion(version), None));
                }
                PrefaceMatch::Complete { .. } => {
                    self.input.advance(PREFACE_LEN);
                    self.server_preface_seen = true;
                }
            }
        }
        while !self.closed {
            let Some(header) = parse_header(&self.input) else {
                return Ok(());
            };
            let limit = self.limit_for(&header).map_err(|error| (error, None))?;
            let frame = match FrameDecoder::new(limit).decode(&mut self.input) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(too_large) => {
                    return Err((
                        PeerError::FrameTooLarge {
                            frame_type: header.frame_type,
                            len: too_large.header.data_len,
                            limit: too_large.limit,
                        },
                        None,
                    ));
                }
            };
            self.handle_frame(frame)?;
        }
        Ok(())
    }

    /// Check a frame's header and decide its receive limit before its data
    /// is awaited: what the oldest request's reply can be, or the configured
    /// limit for ERROR and BYE.
    fn limit_for(&self, header: &FrameHeader) -> Result<u32, PeerError> {
        // The server obeys §3.3 as the client does; a frame that does not is
        // a broken server, whatever its type (SPEC.md §2.4).
        let flags = header.flags;
        if flags.reserved() != 0 || (flags.more() && !header.frame_type.is_data()) {
            return Err(PeerError::BadFlags {
                frame_type: header.frame_type,
                flags: flags.0,
            });
        }
        if matches!(header.frame_type, FrameType::Error | FrameType::Bye) {
            return Ok(self.config.max_data_len);
        }
        let Some(sent) = self.waiting.front() else {
            return Err(PeerError::Unsolicited(header.frame_type));
        };
        let expected = sent.reply_type();
        if sent.probe && header.frame_type == FrameType::Ping {
            return Err(PeerError::RawServer);
        }
        if header.frame_type != expected {
            return Err(PeerError::UnexpectedReply {
                expected,
                got: header.frame_type,
            });
        }
        if flags.more() != sent.more {
            return Err(PeerError::MoreMismatch {
                request_more: sent.more,
            });
        }
        Ok(sent.reply_limit())
    }

    /// Take the oldest waiting frame off the queue: it has its reply.
    fn answered(&mut self) -> Option<Sent> {
        let sent = self.waiting.pop_front()?;
        self.in_flight -= sent.data_len;
        if sent.last && !sent.probe {
            self.unanswered -= 1;
        }
        Some(sent)
    }

    fn handle_frame(&mut self, frame: FrameRepr) -> Result<(), (PeerError, Option<RequestId>)> {
        match frame.frame_type {
            FrameType::Error => self.handle_error(&frame),
            FrameType::Bye if !matches!(self.waiting.front(), Some(sent) if sent.frame_type == FrameType::Bye) =>
            {
                let unanswered = self.drain_unanswered();
                self.events.push_back(ClientEvent::ServerBye {
                    reason: String::from_utf8_lossy(&frame.data).into_owned(),
                    unanswered,
                });
                self.close();
                Ok(())
            }
            _ => {
                // Each TEXT reply is the upper case of complete code points
                // (SPEC.md §5.1), so valid UTF-8 on its own (§2.4).
                if frame.frame_type == FrameType::Text && std::str::from_utf8(&frame.data).is_err()
                {
                    return Err((PeerError::TextReplyNotUtf8, None));
                }
                let sent = self.answered().expect("limit_for checked a request waits");
                if sent.probe {
                    return Ok(());
                }
                let bye = frame.frame_type == FrameType::Bye;
                self.events.push_back(ClientEvent::Reply {
                    request: sent.request,
                    frame,
                    last: sent.last,
                });
                if bye {
                    self.close();
                }
                Ok(())
            }
        }
    }

    fn handle_error(&mut self, frame: &FrameRepr) -> Result<(), (PeerError, Option<RequestId>)> {
        let payload =
            ErrorPayload::parse(&frame.data).map_err(|_| (PeerError::ShortError, None))?;
        // SPEC.md §6.6: these answer no frame; the others answer the oldest.
        let answers_no_frame = [
            ErrorCode::UNSUPPORTED_VERSION,
            ErrorCode::IDLE_TIMEOUT,
            ErrorCode::BUSY,
        ]
        .contains(&payload.code);
        let request = if answers_no_frame {
            None
        } else {
            match self.answered() {
                // No server answers a PING with an ERROR: it is not one.
                Some(sent) if sent.probe => return Err((PeerError::Server(payload), None)),
                Some(sent) => Some(sent.request),
                None => return Err((PeerError::Unsolicited(FrameType::Error), None)),
            }
        };
        // A code this client does not know is a reply like any other; only
        // the server closing would say it was fatal (SPEC.md §6.6).
        let fatal = payload.code.name().is_some() && payload.code.is_fatal();
        match request {
            Some(request) if !fatal => {
                self.events.push_back(ClientEvent::Error {
                    request,
                    error: payload,
                });
                Ok(())
            }
            _ => Err((PeerError::Server(payload), request)),
        }
    }
}
