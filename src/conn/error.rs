//! Errors of the connection state machines, split by blame and side: the
//! peer's bad input ([`ProtocolViolation`] for a server, [`PeerError`] for a
//! client) versus the caller's misuse ([`ServerUsageError`] of a server,
//! [`ClientUsageError`] of a client).

use std::time::Duration;

use crate::wire::{ErrorCode, ErrorPayload, FrameType};

/// The program drove a [`ServerConnection`](super::ServerConnection)
/// wrongly; the peer did nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUsageError {
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
}

/// The program drove a [`ClientConnection`](super::ClientConnection)
/// wrongly; the server did nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientUsageError {
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
    /// A frame's data does not fit the length field.
    #[error("frame data is {len} bytes; a frame holds at most {limit}")]
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
    /// The server sent a frame longer than its request allows (or, for
    /// ERROR and BYE, than the client's limit).
    #[error(
        "the server sent a {frame_type} frame of {len} bytes, over the limit of {limit} for it"
    )]
    FrameTooLarge {
        /// The frame's type.
        frame_type: FrameType,
        /// Announced data length.
        len: u32,
        /// The limit for that frame.
        limit: u32,
    },
    /// A data reply's MORE flag is not its request's (SPEC.md §5.1, §5.2).
    #[error("the server's reply has MORE {}, its request had MORE {}", if *.request_more { "clear" } else { "set" }, if *.request_more { "set" } else { "clear" })]
    MoreMismatch {
        /// The request's MORE flag.
        request_more: bool,
    },
    /// The server closed the connection while replies were due.
    #[error("the server closed the connection before answering")]
    Closed,
    /// The server said nothing for the reply timeout while it owed a reply.
    #[error("no answer from the server within {timeout:?}")]
    Timeout {
        /// The reply timeout.
        timeout: Duration,
    },
    /// A reply's type does not fit the request it answers.
    #[error("expected a {expected} reply, got {got}")]
    UnexpectedReply {
        /// What the request called for.
        expected: FrameType,
        /// What arrived.
        got: FrameType,
    },
    /// A frame with a reserved flag bit set, or MORE on a type other than
    /// TEXT or BYTES (SPEC.md §3.3): the server is broken.
    #[error(
        "the server sent a {frame_type} frame with flags 0x{flags:02x} (reserved bits, or MORE on a type that cannot have it)"
    )]
    BadFlags {
        /// The frame's type.
        frame_type: FrameType,
        /// Its whole flags byte.
        flags: u8,
    },
    /// A reply arrived with no request waiting for it.
    #[error("the server sent a {0} frame that answers no request")]
    Unsolicited(FrameType),
    /// An ERROR frame too short to hold its code (SPEC.md §6.6: a protocol
    /// failure, and no reply).
    #[error("the server sent an ERROR frame without a code")]
    ShortError,
    /// A TEXT reply whose data is not UTF-8 on its own: every reply is the
    /// upper case of complete code points (SPEC.md §2.4, §5.1).
    #[error("the server's TEXT reply is not UTF-8")]
    TextReplyNotUtf8,
    /// The probe PING came back as it was sent (SPEC.md §2.4): the server
    /// runs raw mode and echoed the client's bytes upper-cased.
    #[error("the server echoed the probe PING: it is a raw server, not a framed UPCASE/1 one")]
    RawServer,
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

/// A rule of SPEC.md the client broke (server side): the peer's bad input.
/// `Display` is the ERROR message this implementation sends (SPEC.md §6.4),
/// [`code`](Self::code) the ERROR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    /// Reserved flag bits were set.
    #[error("reserved flag bits set")]
    ReservedFlags,
    /// MORE on a frame that is not TEXT or BYTES.
    #[error("MORE set on a frame that is not TEXT or BYTES")]
    MoreOnControlFrame,
    /// MORE on a data frame in a datagram.
    #[error("MORE set on a frame in a datagram")]
    MoreInDatagram,
    /// A datagram too short for the frame header.
    #[error("datagram ends inside the frame header")]
    DatagramHeaderTruncated,
    /// A datagram whose frame length disagrees with its size.
    #[error("frame length {len} does not match the {actual} data bytes in the datagram")]
    DatagramLengthMismatch {
        /// The header's length.
        len: u32,
        /// The data bytes the datagram holds.
        actual: usize,
    },
    /// The preface's version is not 1.
    #[error("unsupported version {version}; this server speaks version 1")]
    UnsupportedVersion {
        /// The client's version.
        version: u8,
    },
    /// A frame (or a UDP reply) over the limit.
    #[error("frame length {len} exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The data length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A datagram's TEXT whose upper case does not fit a reply datagram
    /// (SPEC.md §8.4): named by what the client sent, the reply's size beside it.
    #[error(
        "the upper case of this {request_len}-byte TEXT is {reply_len} bytes, over the {limit} a reply datagram can carry"
    )]
    DatagramReplyTooLarge {
        /// The request's data length.
        request_len: u32,
        /// The reply's data length.
        reply_len: u64,
        /// The most reply data a datagram holds (65,457).
        limit: u64,
    },
    /// TEXT data that is not UTF-8.
    #[error("invalid UTF-8 at byte {offset} of the message")]
    InvalidUtf8 {
        /// Offset in the whole message of the first invalid byte's sequence.
        offset: u64,
    },
    /// A type code not in SPEC.md §4.1.
    #[error("unknown frame type 0x{code:02x}")]
    UnknownType {
        /// The type code.
        code: u8,
    },
    /// A client sent PONG or ERROR.
    #[error("a client may not send {frame_type} frames")]
    UnexpectedType {
        /// PONG or ERROR.
        frame_type: FrameType,
    },
    /// A data frame of the other type while a message is open.
    #[error("a {got} frame arrived while a {open} message is open")]
    TypeMismatch {
        /// The open message's type.
        open: FrameType,
        /// The frame's type.
        got: FrameType,
    },
    /// No complete frame within the idle timeout.
    #[error("no complete frame within {secs} s")]
    IdleTimeout {
        /// The idle timeout in whole seconds.
        secs: u64,
    },
    /// The server is at its connection limit.
    #[error("server is at its connection limit of {limit}; try again later")]
    Busy {
        /// The connection limit.
        limit: usize,
    },
    /// The server is full and closed this connection to make room for
    /// another address's (SPEC.md §9.3).
    #[error("server full: evicted the longest-idle connection; reconnect later")]
    Evicted,
}

impl ProtocolViolation {
    /// The ERROR code this violation is answered with.
    pub fn code(&self) -> ErrorCode {
        use ProtocolViolation::*;
        match self {
            ReservedFlags
            | MoreOnControlFrame
            | MoreInDatagram
            | DatagramHeaderTruncated
            | DatagramLengthMismatch { .. } => ErrorCode::MALFORMED,
            UnsupportedVersion { .. } => ErrorCode::UNSUPPORTED_VERSION,
            FrameTooLarge { .. } | DatagramReplyTooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
            InvalidUtf8 { .. } => ErrorCode::INVALID_UTF8,
            UnknownType { .. } => ErrorCode::UNKNOWN_TYPE,
            UnexpectedType { .. } => ErrorCode::UNEXPECTED_TYPE,
            TypeMismatch { .. } => ErrorCode::TYPE_MISMATCH,
            IdleTimeout { .. } => ErrorCode::IDLE_TIMEOUT,
            Busy { .. } | Evicted => ErrorCode::BUSY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProtocolViolation::*;
    use super::*;

    /// Every message text and code of SPEC.md §6.4, written out by hand.
    #[test]
    fn messages_and_codes_match_the_spec_table() {
        let table: [(ProtocolViolation, u16, &str); 16] = [
            (ReservedFlags, 1, "reserved flag bits set"),
            (
                MoreOnControlFrame,
                1,
                "MORE set on a frame that is not TEXT or BYTES",
            ),
            (MoreInDatagram, 1, "MORE set on a frame in a datagram"),
            (
                DatagramHeaderTruncated,
                1,
                "datagram ends inside the frame header",
            ),
            (
                DatagramLengthMismatch { len: 5, actual: 3 },
                1,
                "frame length 5 does not match the 3 data bytes in the datagram",
            ),
            (
                UnsupportedVersion { version: 2 },
                2,
                "unsupported version 2; this server speaks version 1",
            ),
            (
                FrameTooLarge {
                    len: 1048577,
                    limit: 1048576,
                },
                3,
                "frame length 1048577 exceeds the limit of 1048576 bytes",
            ),
            (
                DatagramReplyTooLarge {
                    request_len: 60000,
                    reply_len: 180000,
                    limit: 65457,
                },
                3,
                "the upper case of this 60000-byte TEXT is 180000 bytes, over the 65457 a reply datagram can carry",
            ),
            (
                InvalidUtf8 { offset: 17 },
                4,
                "invalid UTF-8 at byte 17 of the message",
            ),
            (UnknownType { code: 0x0a }, 5, "unknown frame type 0x0a"),
            (
                UnexpectedType {
                    frame_type: FrameType::Pong,
                },
                6,
                "a client may not send PONG frames",
            ),
            (
                UnexpectedType {
                    frame_type: FrameType::Error,
                },
                6,
                "a client may not send ERROR frames",
            ),
            (
                TypeMismatch {
                    open: FrameType::Text,
                    got: FrameType::Bytes,
                },
                7,
                "a BYTES frame arrived while a TEXT message is open",
            ),
            (
                IdleTimeout { secs: 300 },
                8,
                "no complete frame within 300 s",
            ),
            (
                Busy { limit: 1024 },
                9,
                "server is at its connection limit of 1024; try again later",
            ),
            (
                Evicted,
                9,
                "server full: evicted the longest-idle connection; reconnect later",
            ),
        ];
        for (violation, code, message) in table {
            assert_eq!(violation.code(), ErrorCode(code), "{violation:?}");
            assert_eq!(violation.to_string(), message);
        }
    }
}
