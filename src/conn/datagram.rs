//! UPCASE over UDP (SPEC.md §8): one datagram in, at most one out, no state.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::config::{RawCase, ServerMode};
use super::error::ProtocolViolation;
use super::framed::FramedSession;
use super::reply::{ReplyAddresses, write_frame};
use crate::transform::upcase_lossless;
use crate::wire::{
    Address, DEFAULT_MAX_DATA_LEN, ErrorPayload, Flags, Frame, FrameRepr, FrameType, HEADER_LEN,
    MAX_REPLY_DATA, MAX_UDP_PAYLOAD, PREFACE, PREFACE_LEN, PREFACE_MAGIC, VERSION, parse_header,
};

/// No reply is longer than this many times the datagram it answers
/// (SPEC.md §8.4): QUIC's anti-amplification limit (RFC 9000 §8.1), so a
/// datagram with a forged source cannot make the server send its victim
/// more than it was sent. Upper case at most triples its input, so only an
/// ERROR can exceed it.
pub const AMPLIFICATION_LIMIT: usize = 3;

/// The shortest ERROR reply: preface, header and the 2-byte code with no
/// message. Datagrams under a third of it get no ERROR at all.
pub const SHORTEST_ERROR_REPLY: usize = PREFACE_LEN + HEADER_LEN + 2;

/// Settings of the datagram service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramConfig {
    /// Which datagrams are answered: `Raw` treats every datagram as raw,
    /// `Framed` drops raw datagrams (SPEC.md §8.1).
    pub mode: ServerMode,
    /// Raw datagrams' upper-case rules.
    pub raw_case: RawCase,
    /// The receive limit on a frame's data length.
    pub max_data_len: u32,
}

impl Default for DatagramConfig {
    fn default() -> DatagramConfig {
        DatagramConfig {
            mode: ServerMode::Auto,
            raw_case: RawCase::Unicode,
            max_data_len: DEFAULT_MAX_DATA_LEN,
        }
    }
}

/// What to do with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramReply {
    /// Send these bytes back to the datagram's source.
    Send(BytesMut),
    /// Send nothing: a raw reply would not fit a datagram.
    Drop {
        /// The size the reply would have had.
        reply_len: usize,
    },
    /// Send nothing: a framed-only server got a raw datagram.
    NotFramed,
    /// Send nothing: the datagram is too short for even a message-less
    /// ERROR to stay within [`AMPLIFICATION_LIMIT`] times its size.
    OverAmplificationLimit {
        /// The size the ERROR would have had with its whole message.
        reply_len: usize,
    },
}

impl DatagramReply {
    /// The reply bytes, if one is sent.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            DatagramReply::Send(bytes) => Some(bytes),
            DatagramReply::Drop { .. }
            | DatagramReply::NotFramed
            | DatagramReply::OverAmplificationLimit { .. } => None,
        }
    }
}

/// Answer one datagram received on `local` from `peer`.
pub fn respond_to_datagram(
    datagram: &[u8],
    local: SocketAddr,
    peer: SocketAddr,
    config: &DatagramConfig,
) -> DatagramReply {
    let framed = config.mode != ServerMode::Raw
        && datagram.len() >= PREFACE_LEN
        && datagram[..PREFACE_MAGIC.len()] == PREFACE_MAGIC;
    if framed {
        respond_framed(datagram, local.into(), peer.into(), config)
    } else if config.mode == ServerMode::Framed {
        DatagramReply::NotFramed
    } else {
        respond_raw(datagram, config.raw_case)
    }
}

fn respond_raw(datagram: &[u8], raw_case: RawCase) -> DatagramReply {
    let out = upcase_lossless(raw_case.lossless_mode(), datagram);
    if out.len() > MAX_UDP_PAYLOAD {
        DatagramReply::Drop {
            reply_len: out.len(),
        }
    } else {
        DatagramReply::Send(out)
    }
}

fn respond_framed(
    datagram: &[u8],
    local: Address,
    peer: Address,
    config: &DatagramConfig,
) -> DatagramReply {
    let mut out = BytesMut::new();
    out.extend_from_slice(&PREFACE);
    let Err((addresses, violation)) = reply_to_frame(datagram, local, peer, config, &mut out)
    else {
        return DatagramReply::Send(out);
    };
    out.truncate(PREFACE_LEN);
    let mut payload = ErrorPayload::new(violation.code(), violation.to_string());
    let budget = AMPLIFICATION_LIMIT * datagram.len();
    let Some(room) = budget.checked_sub(SHORTEST_ERROR_REPLY) else {
        return DatagramReply::OverAmplificationLimit {
            reply_len: SHORTEST_ERROR_REPLY + payload.message.len(),
        };
    };
    shorten(&mut payload.message, room);
    let data = payload.to_bytes();
    write_frame(
        &mut out,
        addresses,
        FrameType::Error,
        Flags::default(),
        &data,
    );
    DatagramReply::Send(out)
}

/// Cut `message` to its longest prefix of at most `max_len` bytes that ends
/// on a character boundary, so a shortened ERROR still carries UTF-8.
pub(super) fn shorten(message: &mut String, max_len: usize) {
    let mut len = max_len.min(message.len());
    while !message.is_char_boundary(len) {
        len -= 1;
    }
    message.truncate(len);
}

/// Append the reply frame, or say which ERROR replaces it, in the order of
/// checks of SPEC.md §8.2.
fn reply_to_frame(
    datagram: &[u8],
    local: Address,
    peer: Address,
    config: &DatagramConfig,
    out: &mut BytesMut,
) -> Result<(), (ReplyAddresses, ProtocolViolation)> {
    let unaddressed = ReplyAddresses {
        src: local,
        dst: peer,
    };
    let version = datagram[PREFACE_LEN - 1];
    if version != VERSION {
        return Err((
            unaddressed,
            ProtocolViolation::UnsupportedVersion { version },
        ));
    }
    let frame_bytes = &datagram[PREFACE_LEN..];
    let Some(header) = parse_header(frame_bytes) else {
        return Err((unaddressed, ProtocolViolation::DatagramHeaderTruncated));
    };
    let addresses = ReplyAddresses::for_request(header.src, header.dst, local, peer);
    let actual = frame_bytes.len() - HEADER_LEN;
    if header.data_len > config.max_data_len {
        let violation = ProtocolViolation::FrameTooLarge {
            len: header.data_len.into(),
            limit: config.max_data_len.into(),
        };
        return Err((addresses, violation));
    }
    if header.data_len as usize != actual {
        let violation = ProtocolViolation::DatagramLengthMismatch {
            len: header.data_len,
            actual,
        };
        return Err((addresses, violation));
    }
    // MORE on a data frame is the one rule UDP adds; other flag errors are
    // the stream's (SPEC.md §8.2: step 5 before step 6).
    if header.flags.more() && header.frame_type.is_data() && header.flags.reserved() == 0 {
        return Err((addresses, ProtocolViolation::MoreInDatagram));
    }
    let frame = FrameRepr::parse(&Frame::new_unchecked(frame_bytes))
        .expect("length checked against the datagram");
    // The session writes its own ERROR for the stream's rules.
    let _ = FramedSession::default().handle_frame(&frame, local, peer, out);
    let reply_data_len = out.len() - PREFACE_LEN - HEADER_LEN;
    if reply_data_len > MAX_REPLY_DATA {
        let violation = ProtocolViolation::DatagramReplyTooLarge {
            request_len: header.data_len,
            reply_len: reply_data_len as u64,
            limit: MAX_REPLY_DATA as u64,
        };
        return Err((addresses, violation));
    }
    Ok(())
}
