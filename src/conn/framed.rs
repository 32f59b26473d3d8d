//! The server's rules for one framed-mode frame (SPEC.md §4–§6): checks in
//! the order the spec gives, then exactly one reply.

use bytes::BytesMut;

use super::error::ProtocolViolation;
use super::reply::{FrameWriter, ReplyAddresses, write_error, write_frame};
use crate::transform::{CaseMode, Upcaser};
use crate::wire::{Address, Flags, FrameRepr, FrameType};

/// What handling a frame did to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Replied; carry on.
    Continue,
    /// Replied with a non-fatal ERROR; carry on.
    NonFatal(ProtocolViolation),
    /// Replied with a fatal ERROR; the connection ends.
    Fatal(ProtocolViolation),
    /// Replied BYE to the client's BYE; the connection ends.
    Bye,
}

impl FrameOutcome {
    /// The type of the one reply written for a request of `request` type.
    pub fn reply_type(&self, request: FrameType) -> FrameType {
        match (self, request) {
            (FrameOutcome::NonFatal(_) | FrameOutcome::Fatal(_), _) => FrameType::Error,
            (FrameOutcome::Bye, _) => FrameType::Bye,
            (FrameOutcome::Continue, FrameType::Ping) => FrameType::Pong,
            (FrameOutcome::Continue, request) => request,
        }
    }
}

/// A fragmented message in progress: its type and its transform.
#[derive(Debug, Clone)]
struct OpenMessage {
    frame_type: FrameType,
    upcaser: Upcaser,
}

/// Framed-mode server state between frames: the open message, if any.
#[derive(Debug, Clone, Default)]
pub struct FramedSession {
    open: Option<OpenMessage>,
}

impl FramedSession {
    /// Answer one frame, appending exactly one reply frame to `out`.
    pub fn handle_frame(
        &mut self,
        frame: &FrameRepr,
        local: Address,
        peer: Address,
        out: &mut BytesMut,
    ) -> FrameOutcome {
        let addresses = ReplyAddresses::for_request(frame.src, frame.dst, local, peer);
        match self.reply(frame, addresses, out) {
            Ok(outcome) => outcome,
            Err(violation) => {
                write_error(out, addresses, &violation);
                if violation.code().is_fatal() {
                    self.open = None;
                    FrameOutcome::Fatal(violation)
                } else {
                    FrameOutcome::NonFatal(violation)
                }
            }
        }
    }

    fn reply(
        &mut self,
        frame: &FrameRepr,
        addresses: ReplyAddresses,
        out: &mut BytesMut,
    ) -> Result<FrameOutcome, ProtocolViolation> {
        let frame_type = frame.frame_type;
        if frame.flags.reserved() != 0 {
            return Err(ProtocolViolation::ReservedFlags);
        }
        if frame.flags.more() && !frame_type.is_data() {
            return Err(ProtocolViolation::MoreOnControlFrame);
        }
        match frame_type {
            FrameType::Unknown(code) => Err(ProtocolViolation::UnknownType { code }),
            FrameType::Pong | FrameType::Error => {
                Err(ProtocolViolation::UnexpectedType { frame_type })
            }
            FrameType::Ping => {
                write_frame(
                    out,
                    addresses,
                    FrameType::Pong,
                    Flags::default(),
                    &frame.data,
                );
                Ok(FrameOutcome::Continue)
            }
            FrameType::Bye => {
                self.open = None;
                write_frame(out, addresses, FrameType::Bye, Flags::default(), &[]);
                Ok(FrameOutcome::Bye)
            }
            FrameType::Text | FrameType::Bytes => self.reply_data(frame, addresses, out),
        }
    }

    fn reply_data(
        &mut self,
        frame: &FrameRepr,
        addresses: ReplyAddresses,
        out: &mut BytesMut,
    ) -> Result<FrameOutcome, ProtocolViolation> {
        let frame_type = frame.frame_type;
        let mut message = match self.open.take() {
            Some(open) if open.frame_type != frame_type => {
                return Err(ProtocolViolation::TypeMismatch {
                    open: open.frame_type,
                    got: frame_type,
                });
            }
            Some(open) => open,
            None => OpenMessage {
                frame_type,
                upcaser: Upcaser::new(if frame_type == FrameType::Text {
                    CaseMode::UnicodeStrict
                } else {
                    CaseMode::Ascii
                }),
            },
        };
        let more = frame.flags.more();
        let writer = FrameWriter::begin(out);
        if let Some(bound) = message.upcaser.max_output_len(frame.data.len()) {
            out.reserve(bound);
        }
        let mut result = message.upcaser.push(&frame.data, out);
        if result.is_ok() && !more {
            result = message.upcaser.finish(out);
        }
        if let Err(invalid) = result {
            writer.abandon(out);
            return Err(ProtocolViolation::InvalidUtf8 {
                offset: invalid.offset,
            });
        }
        writer.finish(out, addresses, frame_type, Flags::more_if(more));
        if more {
            self.open = Some(message);
        }
        Ok(FrameOutcome::Continue)
    }
}
