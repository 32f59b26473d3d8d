//! Drives a [`ServerConnection`] in memory, like a shell would, on a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::conn::{ServerConfig, ServerConnection, ServerEvent};
use crate::wire::{Address, ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE};

/// The server's socket address in these tests.
pub fn local() -> SocketAddr {
    "127.0.0.1:9999".parse().unwrap()
}

/// The client's socket address in these tests.
pub fn peer() -> SocketAddr {
    "127.0.0.1:50000".parse().unwrap()
}

pub struct Harness {
    pub conn: ServerConnection,
    pub now: Instant,
    pub sent: Vec<u8>,
    pub events: Vec<ServerEvent>,
}

impl Harness {
    pub fn new(config: ServerConfig) -> Harness {
        let now = Instant::now();
        Harness {
            conn: ServerConnection::new(config, local(), peer(), now),
            now,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A connection over the server's connection limit of `limit`.
    pub fn new_busy(config: ServerConfig, limit: usize) -> Harness {
        let mut harness = Harness::new(config.clone());
        harness.conn = ServerConnection::new_busy(config, local(), peer(), harness.now, limit);
        harness
    }

    /// Feed `bytes` in pieces no larger than the connection accepts,
    /// flushing output as a reading peer would.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            self.flush();
            let take = rest.len().min(self.conn.read_capacity());
            assert!(take > 0, "a connection whose peer reads must accept input");
            self.conn.handle_input(self.now, &rest[..take]).unwrap();
            rest = &rest[take..];
        }
        self.flush();
    }

    /// The peer reads everything pending.
    pub fn flush(&mut self) {
        let pending = self.conn.pending_output().to_vec();
        self.conn.mark_sent(self.now, pending.len()).unwrap();
        self.sent.extend_from_slice(&pending);
        self.drain_events();
    }

    pub fn eof(&mut self) {
        self.conn.handle_eof(self.now);
        self.flush();
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.conn.poll_timeout().is_some_and(|at| at <= self.now) {
            self.conn.handle_timeout(self.now);
        }
        self.flush();
    }

    pub fn drain_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event);
        }
    }

    /// Everything sent so far, after the server's preface, as frames.
    pub fn frames(&self) -> Vec<FrameRepr> {
        assert_eq!(
            &self.sent[..PREFACE.len()],
            &PREFACE,
            "server preface first"
        );
        decode_all(&self.sent[PREFACE.len()..])
    }

    /// The take of all sent bytes, then forget them.
    pub fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sent)
    }
}

/// Decode a whole byte string into frames; panics on leftovers.
pub fn decode_all(bytes: &[u8]) -> Vec<FrameRepr> {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = FrameDecoder::new(u32::MAX).decode(&mut buf).unwrap() {
        frames.push(frame);
    }
    assert!(
        buf.is_empty(),
        "trailing bytes after the last frame: {buf:x?}"
    );
    frames
}

/// A frame with unspecified addresses.
pub fn frame(frame_type: FrameType, more: bool, data: &[u8]) -> FrameRepr {
    let mut frame = FrameRepr::new(frame_type, data.to_vec());
    frame.flags = crate::wire::Flags::more_if(more);
    frame
}

/// Encode frames back to back after the client preface.
pub fn framed_input(frames: &[FrameRepr]) -> Vec<u8> {
    let mut out = BytesMut::from(&PREFACE[..]);
    for frame in frames {
        frame.encode(&mut out);
    }
    out.to_vec()
}

/// The code of an ERROR frame.
pub fn error_code(frame: &FrameRepr) -> ErrorCode {
    assert_eq!(frame.frame_type, FrameType::Error, "{frame:?}");
    ErrorPayload::parse(&frame.data).unwrap().code
}

/// The message of an ERROR frame.
pub fn error_message(frame: &FrameRepr) -> String {
    ErrorPayload::parse(&frame.data).unwrap().message
}

pub fn local_address() -> Address {
    local().into()
}

pub fn peer_address() -> Address {
    peer().into()
}
