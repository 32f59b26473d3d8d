//! What a server connection reports to the program driving it.

use bytes::Bytes;

use super::error::ProtocolViolation;
use crate::wire::{ErrorCode, FrameType};

/// How a connection speaks, once detected (SPEC.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireMode {
    /// A plain byte stream.
    Raw,
    /// Preface, then frames.
    Framed,
}

impl std::fmt::Display for WireMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireMode::Raw => "raw",
            WireMode::Framed => "framed",
        })
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client said BYE.
    PeerBye,
    /// The client closed its side at a frame boundary (or in raw mode).
    PeerClosed,
    /// The client closed its side in the middle of a frame or the preface.
    PeerClosedMidFrame,
    /// The server sent a fatal ERROR with this code.
    Fatal(ErrorCode),
    /// Nothing arrived within the idle timeout (raw mode; framed mode sends
    /// IDLE_TIMEOUT and reports [`CloseReason::Fatal`]).
    IdleTimeout,
    /// Output was pending and the client took no byte of it within the send
    /// timeout (SPEC.md §9.4): closed without sending more, whatever the
    /// connection was doing (reading, waiting for the client, ending).
    SendTimeout,
    /// The server is shutting down.
    Shutdown,
    /// A framed-only server got a connection without the preface.
    NotFramed,
    /// The server is at its connection limit and this connection is raw.
    Busy,
    /// The server was full and closed this connection, one that had done
    /// the least (SPEC.md §9.3), to make room (framed connections get
    /// ERROR(BUSY) and report [`CloseReason::Fatal`]).
    Evicted,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::PeerBye => f.write_str("client said BYE"),
            CloseReason::PeerClosed => f.write_str("client closed"),
            CloseReason::PeerClosedMidFrame => f.write_str("client closed mid-frame"),
            CloseReason::Fatal(code) => write!(f, "fatal error {code}"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::SendTimeout => {
                f.write_str("client took no output within the send timeout")
            }
            CloseReason::Shutdown => f.write_str("server shutdown"),
            CloseReason::NotFramed => f.write_str("no preface on a framed-only server"),
            CloseReason::Busy => f.write_str("server busy"),
            CloseReason::Evicted => f.write_str("evicted: the server is full"),
        }
    }
}

/// Counters of one connection, for the close log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    /// Complete frames received (framed mode).
    pub frames_in: u64,
    /// Frames sent, the ERROR and BYE frames included (framed mode).
    pub frames_out: u64,
    /// Bytes received, the preface included.
    pub bytes_in: u64,
    /// Bytes the peer accepted (marked sent).
    pub bytes_out: u64,
    /// [`frames_in`](Self::frames_in) by type, for metrics.
    pub frames_in_by_type: FrameCounts,
    /// [`frames_out`](Self::frames_out) by type, for metrics.
    pub frames_out_by_type: FrameCounts,
}

/// Frames counted by type: one counter for each type SPEC.md defines and
/// one for all unknown codes together (so the set stays small and fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameCounts([u64; FrameCounts::TYPES.len()]);

impl FrameCounts {
    /// The types counted, in the order of [`counts`](Self::counts);
    /// `Unknown(0)` stands for every unknown code.
    pub const TYPES: [FrameType; 7] = [
        FrameType::Text,
        FrameType::Bytes,
        FrameType::Ping,
        FrameType::Pong,
        FrameType::Bye,
        FrameType::Error,
        FrameType::Unknown(0),
    ];

    fn index(frame_type: FrameType) -> usize {
        match frame_type {
            FrameType::Text => 0,
            FrameType::Bytes => 1,
            FrameType::Ping => 2,
            FrameType::Pong => 3,
            FrameType::Bye => 4,
            FrameType::Error => 5,
            FrameType::Unknown(_) => 6,
        }
    }

    /// Count one frame of `frame_type`.
    pub fn add(&mut self, frame_type: FrameType) {
        self.0[Self::index(frame_type)] += 1;
    }

    /// Frames of `frame_type` (of any unknown code, for `Unknown`).
    pub fn get(&self, frame_type: FrameType) -> u64 {
        self.0[Self::index(frame_type)]
    }

    /// The counts in [`TYPES`](Self::TYPES) order.
    pub fn counts(&self) -> &[u64; FrameCounts::TYPES.len()] {
        &self.0
    }
}

/// Something the program driving a [`ServerConnection`](super::ServerConnection) may log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// The connection's mode is known.
    ModeDetected(WireMode),
    /// A message arrived (only with `report_messages`): a frame's data, or a
    /// raw input chunk (`frame_type` `None`).
    Message {
        /// The frame's type; `None` in raw mode.
        frame_type: Option<FrameType>,
        /// The data as received.
        data: Bytes,
    },
    /// The peer broke a rule; the ERROR frame answering it was sent
    /// (its code is `violation.code()`, its message `violation.to_string()`).
    ProtocolError(ProtocolViolation),
    /// The connection is over; close the socket.
    Closed {
        /// Why.
        reason: CloseReason,
        /// Output bytes that were never sent (the peer did not read them in time).
        unsent: usize,
    },
}
