//! The client side of a framed connection, sans-IO.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::error::{PeerError, UsageError};
use crate::wire::{
    DEFAULT_MAX_DATA_LEN, ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE,
    PREFACE_LEN, PrefaceMatch, VERSION, match_preface,
};

/// Identifies a request, to match it with its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a [`ClientConnection`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The reply to a request.
    Reply {
        /// The request it answers.
        request: RequestId,
        /// The reply frame.
        frame: FrameRepr,
    },
    /// The server answered a request with an ERROR.
    Error {
        /// The request it answers (`None` for an ERROR no frame caused, such
        /// as IDLE_TIMEOUT or BUSY).
        request: Option<RequestId>,
        /// What went wrong.
        error: PeerError,
    },
    /// The server said BYE on its own (it is shutting down). Requests still
    /// waiting will not be answered.
    ServerBye {
        /// The server's reason.
        reason: String,
        /// The requests that got no reply.
        unanswered: Vec<RequestId>,
    },
}

/// The client side of one framed connection.
///
/// Queue requests with [`send`](Self::send) and friends, write
/// [`pending_output`](Self::pending_output) to the socket (the preface goes
/// first), feed what the socket reads to [`handle_input`](Self::handle_input)
/// and drain [`poll_event`](Self::poll_event): replies come back in request
/// order, each matched to its [`RequestId`].
#[derive(Debug)]
pub struct ClientConnection {
    decoder: FrameDecoder,
    input: BytesMut,
    output: BytesMut,
    server_preface_seen: bool,
    waiting: VecDeque<(RequestId, FrameType)>,
    next_id: u64,
    events: VecDeque<ClientEvent>,
    bye_sent: bool,
    /// A protocol failure after which nothing more is decoded.
    failed: Option<PeerError>,
    server_closed: bool,
}

impl Default for ClientConnection {
    fn default() -> ClientConnection {
        ClientConnection::new(DEFAULT_MAX_DATA_LEN)
    }
}

impl ClientConnection {
    /// A client that accepts reply frames of up to `max_data_len` data bytes.
    /// Replies can be longer than requests (upper case may expand text by up to
    /// 3×), so this should be at least 3× the largest TEXT request.
    pub fn new(max_data_len: u32) -> ClientConnection {
        let mut output = BytesMut::new();
        output.extend_from_slice(&PREFACE);
        ClientConnection {
            decoder: FrameDecoder::new(max_data_len),
            input: BytesMut::new(),
            output,
            server_preface_seen: false,
            waiting: VecDeque::new(),
            next_id: 0,
            events: VecDeque::new(),
            bye_sent: false,
            failed: None,
            server_closed: false,
        }
    }

    /// Queue a TEXT request.
    ///
    /// # Errors
    /// [`UsageError::Closing`] after BYE; [`UsageError::TooLong`] for data over `u32::MAX`.
    pub fn send_text(&mut self, text: &str) -> Result<RequestId, UsageError> {
        self.send(FrameRepr::new(
            FrameType::Text,
            Bytes::copy_from_slice(text.as_bytes()),
        ))
    }

    /// Queue a BYTES request.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_bytes(&mut self, data: &[u8]) -> Result<RequestId, UsageError> {
        self.send(FrameRepr::new(
            FrameType::Bytes,
            Bytes::copy_from_slice(data),
        ))
    }

    /// Queue a PING.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn ping(&mut self, data: &[u8]) -> Result<RequestId, UsageError> {
        self.send(FrameRepr::new(
            FrameType::Ping,
            Bytes::copy_from_slice(data),
        ))
    }

    /// Queue a BYE; no request can follow it.
    ///
    /// # Errors
    /// [`UsageError::Closing`] when BYE was already sent.
    pub fn bye(&mut self) -> Result<RequestId, UsageError> {
        self.send(FrameRepr::new(FrameType::Bye, Bytes::new()))
    }

    /// Queue any frame (fragments with MORE, explicit addresses, even frames a
    /// server must reject: this is also the conformance tester's tool).
    ///
    /// # Errors
    /// [`UsageError::Closing`] after BYE; [`UsageError::TooLong`] for data over `u32::MAX`.
    pub fn send(&mut self, frame: FrameRepr) -> Result<RequestId, UsageError> {
        if self.bye_sent || self.server_closed {
            return Err(UsageError::Closing);
        }
        if u32::try_from(frame.data.len()).is_err() {
            return Err(UsageError::TooLong {
                len: frame.data.len(),
                limit: u32::MAX,
            });
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        frame.encode(&mut self.output);
        self.waiting.push_back((id, frame.frame_type));
        self.bye_sent = frame.frame_type == FrameType::Bye;
        Ok(id)
    }

    /// How many requests wait for a reply.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether the exchange is over: the server answered BYE, said BYE, or
    /// failed; the socket can be closed.
    pub fn is_finished(&self) -> bool {
        self.server_closed || self.failed.is_some()
    }

    /// The bytes to write to the socket next.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Report that the first `sent` bytes of the output were written.
    ///
    /// # Errors
    /// [`UsageError::SentMoreThanPending`] when `sent` is more than was pending.
    pub fn mark_sent(&mut self, sent: usize) -> Result<(), UsageError> {
        if sent > self.output.len() {
            return Err(UsageError::SentMoreThanPending {
                sent,
                pending: self.output.len(),
            });
        }
        self.output.advance(sent);
        Ok(())
    }

    /// Feed bytes read from the socket.
    ///
    /// # Errors
    /// The first protocol failure of the server (bad preface, a reply that
    /// does not fit its request, a fatal ERROR...). It stays: later calls
    /// return it again. Non-fatal ERROR replies are events, not errors.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), PeerError> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        if self.server_closed {
            return Ok(());
        }
        self.input.extend_from_slice(data);
        let result = self.decode_all();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn decode_all(&mut self) -> Result<(), PeerError> {
        if !self.server_preface_seen {
            match match_preface(&self.input) {
                PrefaceMatch::Partial => return Ok(()),
                PrefaceMatch::Mismatch => return Err(PeerError::BadPreface),
                PrefaceMatch::Complete { version } if version != VERSION => {
                    return Err(PeerError::UnsupportedVersion(version));
                }
                PrefaceMatch::Complete { .. } => {
                    self.input.advance(PREFACE_LEN);
                    self.server_preface_seen = true;
                }
            }
        }
        while !self.server_closed {
            let frame = match self.decoder.decode(&mut self.input) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(too_large) => {
                    return Err(PeerError::FrameTooLarge {
                        len: too_large.header.data_len,
                        limit: too_large.limit,
                    });
                }
            };
            self.handle_frame(frame)?;
        }
        Ok(())
    }

    fn handle_frame(&mut self, frame: FrameRepr) -> Result<(), PeerError> {
        // The server obeys §3.3 as the client does; a frame that does not is
        // a broken server, whatever its type (SPEC.md §2.4).
        let more_allowed = matches!(frame.frame_type, FrameType::Text | FrameType::Bytes);
        if frame.flags.reserved() != 0 || (frame.flags.more() && !more_allowed) {
            return Err(PeerError::BadFlags {
                frame_type: frame.frame_type,
                flags: frame.flags.0,
            });
        }
        if frame.frame_type == FrameType::Error {
            let payload = ErrorPayload::parse(&frame.data).map_err(|_| PeerError::ShortError)?;
            // A code this client does not know is a reply like any other; only
            // the server closing would say it was fatal (SPEC.md §6.6).
            let fatal = payload.code.name().is_some() && payload.code.is_fatal();
            let answers_no_frame = [
                ErrorCode::UNSUPPORTED_VERSION,
                ErrorCode::IDLE_TIMEOUT,
                ErrorCode::BUSY,
            ]
            .contains(&payload.code);
            let request = if answers_no_frame {
                None
            } else {
                self.waiting.pop_front().map(|(id, _)| id)
            };
            let error = PeerError::Server(payload);
            self.events.push_back(ClientEvent::Error {
                request,
                error: error.clone(),
            });
            if fatal {
                return Err(error);
            }
            return Ok(());
        }
        if frame.frame_type == FrameType::Bye
            && !matches!(self.waiting.front(), Some((_, FrameType::Bye)))
        {
            self.server_closed = true;
            let unanswered = self.waiting.drain(..).map(|(id, _)| id).collect();
            self.events.push_back(ClientEvent::ServerBye {
                reason: String::from_utf8_lossy(&frame.data).into_owned(),
                unanswered,
            });
            return Ok(());
        }
        let Some((request, request_type)) = self.waiting.pop_front() else {
            return Err(PeerError::Unsolicited(frame.frame_type));
        };
        let expected = match request_type {
            FrameType::Ping => FrameType::Pong,
            other => other,
        };
        if frame.frame_type != expected {
            return Err(PeerError::UnexpectedReply {
                expected,
                got: frame.frame_type,
            });
        }
        if frame.frame_type == FrameType::Bye {
            self.server_closed = true;
        }
        self.events.push_back(ClientEvent::Reply { request, frame });
        Ok(())
    }
}
