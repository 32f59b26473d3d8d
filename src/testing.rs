//! One in-memory pair (quinn-proto's `Pair`): a [`ServerConnection`] and a
//! [`ClientConnection`] joined by a fake network and a fake clock. The unit
//! tests, the integration tests and the properties all drive connections
//! through it. Compiled for tests and with the `arbitrary` feature.
//!
//! Two ways to be the server's peer:
//!
//! - by hand, with any bytes at all ([`Pair::feed`], [`Pair::deliver`]),
//!   reading the server's output with [`Pair::flush`] or [`Pair::read`];
//! - through the client connection ([`Pair::exchange`]), which speaks the
//!   protocol as a well-behaved client.
//!
//! The primitives ([`Pair::deliver`], [`Pair::read`]) move bytes and nothing
//! else; the conveniences ([`Pair::feed`], [`Pair::flush`], [`Pair::eof`],
//! [`Pair::advance`]) behave like an event loop whose peer reads everything,
//! and collect the server's events into [`Pair::events`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::conn::{
    ClientConfig, ClientConnection, ClientEvent, ServerConfig, ServerConnection, ServerEvent,
};
use crate::wire::{
    Address, ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameRepr, FrameType, PREFACE,
};

/// The server's socket address in a pair (SPEC.md's examples use it too).
pub fn local() -> SocketAddr {
    "127.0.0.1:9999".parse().expect("a socket address")
}

/// The client's socket address in a pair.
pub fn peer() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("a socket address")
}

/// [`local`] as frames carry it.
pub fn local_address() -> Address {
    local().into()
}

/// [`peer`] as frames carry it.
pub fn peer_address() -> Address {
    peer().into()
}

/// A server connection and its peer, in memory, on a fake clock.
#[derive(Debug)]
pub struct Pair {
    /// The server side.
    pub server: ServerConnection,
    /// The client side, for [`Pair::exchange`].
    pub client: ClientConnection,
    /// The fake clock; every call passes it as `now`.
    pub now: Instant,
    /// Everything the peer has read from the server, in order.
    pub sent: Vec<u8>,
    /// How much of `sent` the client connection has been given.
    client_read: usize,
    /// The server's events, as the conveniences collected them.
    pub events: Vec<ServerEvent>,
    /// The client connection's events, as [`Pair::exchange`] collected them.
    pub client_events: Vec<ClientEvent>,
}

impl Pair {
    /// A new connection with `config`, between [`local`] and [`peer`], now.
    pub fn new(config: ServerConfig) -> Pair {
        let now = Instant::now();
        Pair::of(ServerConnection::new(config, local(), peer(), now), now)
    }

    /// A new connection over the server's connection limit of `limit`.
    pub fn new_busy(config: ServerConfig, limit: usize) -> Pair {
        let now = Instant::now();
        Pair::of(
            ServerConnection::new_busy(config, local(), peer(), now, limit),
            now,
        )
    }

    /// A connection with the given addresses, opened at `now`.
    pub fn between(
        config: ServerConfig,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
    ) -> Pair {
        Pair::of(ServerConnection::new(config, local, peer, now), now)
    }

    /// A pair around `server`, opened at `now`, with a default client.
    pub fn of(server: ServerConnection, now: Instant) -> Pair {
        Pair {
            server,
            client: ClientConnection::new(now, ClientConfig::default()),
            now,
            sent: Vec::new(),
            client_read: 0,
            events: Vec::new(),
            client_events: Vec::new(),
        }
    }

    /// Replace the client connection with one using `config`.
    pub fn with_client(mut self, config: ClientConfig) -> Pair {
        self.client = ClientConnection::new(self.now, config);
        self
    }

    /// Offer `bytes` to the server once, as much as its `read_capacity`
    /// takes; return how many it took.
    pub fn deliver(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(self.server.read_capacity());
        if take > 0 {
            self.server
                .handle_input(self.now, &bytes[..take])
                .expect("input within read_capacity is accepted");
        }
        take
    }

    /// The peer reads up to `n` bytes of the server's pending output; they
    /// are appended to [`Pair::sent`] and returned.
    pub fn read(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.server.pending_output().len());
        let bytes = self.server.pending_output()[..n].to_vec();
        self.server
            .mark_sent(self.now, n)
            .expect("marked at most what was pending");
        self.sent.extend_from_slice(&bytes);
        bytes
    }

    /// Deliver `bytes` as an event loop would, never more than the server
    /// takes, the peer reading all output in between; return what the
    /// server sent meanwhile.
    ///
    /// # Errors
    /// When the server takes no more input although its output was read.
    pub fn try_feed(&mut self, mut bytes: &[u8]) -> Result<Vec<u8>, String> {
        let before = self.sent.len();
        while !bytes.is_empty() {
            self.flush();
            let taken = self.deliver(bytes);
            if taken == 0 {
                return Err(format!(
                    "the connection takes no more input ({} bytes left)",
                    bytes.len()
                ));
            }
            bytes = &bytes[taken..];
        }
        self.flush();
        Ok(self.sent[before..].to_vec())
    }

    /// [`Pair::try_feed`], for a connection that must take everything.
    ///
    /// # Panics
    /// When the connection refuses input.
    pub fn feed(&mut self, bytes: &[u8]) {
        if let Err(error) = self.try_feed(bytes) {
            panic!("a connection whose peer reads must accept input: {error}");
        }
    }

    /// The peer reads everything pending (until reading frees no more
    /// output); the server's events are collected. Returns what was read.
    pub fn flush(&mut self) -> Vec<u8> {
        let before = self.sent.len();
        while !self.server.pending_output().is_empty() {
            self.read(usize::MAX);
        }
        self.drain_events();
        self.sent[before..].to_vec()
    }

    /// The peer closes its sending side; then it reads everything.
    pub fn eof(&mut self) {
        self.server.handle_eof(self.now);
        self.flush();
    }

    /// The clock moves on by `by`; a due timer fires; the peer reads.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.server.poll_timeout().is_some_and(|at| at <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.flush();
    }

    /// Collect the server's new events into [`Pair::events`].
    pub fn drain_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            self.events.push(event);
        }
    }

    /// Everything the peer read, after the server's preface, as frames.
    ///
    /// # Panics
    /// When it does not start with the preface or ends inside a frame.
    pub fn frames(&self) -> Vec<FrameRepr> {
        assert_eq!(
            &self.sent[..PREFACE.len()],
            &PREFACE,
            "server preface first"
        );
        decode_all(&self.sent[PREFACE.len()..])
    }

    /// Everything the peer read so far, forgotten here.
    pub fn take_sent(&mut self) -> Vec<u8> {
        self.client_read = 0;
        std::mem::take(&mut self.sent)
    }

    /// Move bytes both ways between the client connection and the server
    /// until neither has anything to send; collect both sides' events.
    pub fn exchange(&mut self) {
        loop {
            let to_server = self.client.pending_output().to_vec();
            self.client
                .mark_sent(self.now, to_server.len())
                .expect("sent what was pending");
            self.feed(&to_server);
            let to_client = self.sent[self.client_read..].to_vec();
            self.client_read = self.sent.len();
            self.client.handle_input(self.now, &to_client);
            while let Some(event) = self.client.poll_event() {
                self.client_events.push(event);
            }
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
        }
    }

    /// The client connection's events collected so far, forgotten here.
    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }
}

/// Decode a whole byte string into frames.
///
/// # Panics
/// On bytes left after the last whole frame.
pub fn decode_all(bytes: &[u8]) -> Vec<FrameRepr> {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = FrameDecoder::new(u32::MAX)
        .decode(&mut buf)
        .expect("no limit")
    {
        frames.push(frame);
    }
    assert!(
        buf.is_empty(),
        "trailing bytes after the last frame: {buf:x?}"
    );
    frames
}

/// A frame with unspecified addresses and MORE as given.
pub fn frame(frame_type: FrameType, more: bool, data: &[u8]) -> FrameRepr {
    let mut frame = FrameRepr::new(frame_type, data.to_vec());
    frame.flags = Flags::more_if(more);
    frame
}

/// The client preface, then `frames` back to back.
pub fn framed_input(frames: &[FrameRepr]) -> Vec<u8> {
    let mut out = BytesMut::from(&PREFACE[..]);
    for frame in frames {
        frame.encode(&mut out);
    }
    out.to_vec()
}

/// The code of an ERROR frame.
///
/// # Panics
/// When `frame` is not an ERROR with a code.
pub fn error_code(frame: &FrameRepr) -> ErrorCode {
    assert_eq!(frame.frame_type, FrameType::Error, "{frame:?}");
    ErrorPayload::parse(&frame.data)
        .expect("ERROR data holds a code")
        .code
}

/// The message of an ERROR frame.
///
/// # Panics
/// When `frame`'s data does not hold a code.
pub fn error_message(frame: &FrameRepr) -> String {
    ErrorPayload::parse(&frame.data)
        .expect("ERROR data holds a code")
        .message
}
