//! Errors of the connection state machines, split by blame: the peer's bad
//! input ([`PeerError`]) versus the caller's misuse ([`UsageError`]).

use crate::wire::{ErrorCode, ErrorPayload, FrameType};

/// The caller used a state machine wrongly; the peer did nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// More input was offered than [`read_capacity`](super::ServerConnection::read_capacity) allowed.
    #[error(
        "offered {offered} input bytes but only {capacity} may be read now; read at most read_capacity() bytes"
    )]
    OverCapacity {
        /// Bytes offered.
        offered: usize,
        /// Bytes the connection accepted at the time.
        capacity: usize,
    },
    /// More output was marked sent than was pending.
    #[error("marked {sent} bytes sent but only {pending} were pending")]
    SentMoreThanPending {
        /// Bytes marked sent.
        sent: usize,
        /// Bytes that were pending.
        pending: usize,
    },
    /// A request was made after BYE was sent or the connection ended.
    #[error("the connection is closing; no more requests can be sent")]
    Closing,
    /// A request's data does not fit the server's frame limit.
    #[error("request data is {len} bytes; the limit is {limit} bytes")]
    TooLong {
        /// Data length.
        len: usize,
        /// The limit.
        limit: u32,
    },
}

/// The server broke the protocol, or reported an error (client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The server answered with an ERROR frame.
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(ErrorPayload),
    /// The server's first bytes are not the preface.
    #[error(
        "the server did not answer with the UPCASE preface (is it an UPCASE/1 server in framed or auto mode?)"
    )]
    BadPreface,
    /// The server's preface names another version.
    #[error("the server speaks version {0}, not 1")]
    UnsupportedVersion(u8),
    /// The server sent a frame over this client's limit.
    #[error("the server sent a frame of {len} bytes, over the limit of {limit}")]
    FrameTooLarge {
        /// Announced data length.
        len: u32,
        /// The client's limit.
        limit: u32,
    },
    /// A reply's type does not fit the request it answers.
    #[error("expected a {expected} reply, got {got}")]
    UnexpectedReply {
        /// What the request called for.
        expected: FrameType,
        /// What arrived.
        got: FrameType,
    },
    /// A reply arrived with no request waiting for it.
    #[error("the server sent a {0} frame that answers no request")]
    Unsolicited(FrameType),
    /// An ERROR frame too short to hold its code.
    #[error("the server sent an ERROR frame without a code")]
    ShortError,
}

impl PeerError {
    /// The ERROR code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            PeerError::Server(payload) => Some(payload.code),
            _ => None,
        }
    }
}
