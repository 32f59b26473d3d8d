//! One metrics connection: read one request head, write one answer, close.
//!
//! Each phase a peer can stall in has a deadline: the whole head must
//! arrive within [`Limits::request_timeout`] of the accept (else 408), and
//! the answer must be taken within [`Limits::write_timeout`] (else the
//! connection is closed with the answer half written). The answer is held
//! whole (a few KiB) and written without waiting, as the socket takes it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use upcase::net::SourceKey;

use super::Limits;
use super::head::{Fill, HeadBuffer};
use super::response;

/// What the loop does with a peer after giving it a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Keep it: it waits for readiness or its deadline.
    Wait,
    /// Close it: answered, gone, or out of time.
    Close,
}

#[derive(Debug)]
enum Phase {
    Reading(HeadBuffer),
    Writing { answer: Vec<u8>, written: usize },
}

/// One accepted metrics connection.
#[derive(Debug)]
pub(super) struct Peer {
    stream: TcpStream,
    token: Token,
    addr: SocketAddr,
    accepted: Instant,
    phase: Phase,
    deadline: Instant,
}

impl Peer {
    /// A peer at `addr` registered for reading under `token`, accepted at
    /// `now`.
    pub(super) fn new(
        stream: TcpStream,
        addr: SocketAddr,
        token: Token,
        now: Instant,
        limits: &Limits,
    ) -> Peer {
        Peer {
            stream,
            token,
            addr,
            accepted: now,
            phase: Phase::Reading(HeadBuffer::default()),
            deadline: now + limits.request_timeout,
        }
    }

    /// Its address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address group it counts in for admission.
    pub(super) fn group(&self) -> SourceKey {
        SourceKey::of(self.addr.ip())
    }

    /// When it was accepted.
    pub(super) fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Whether its head is still awaited (no answer started).
    pub(super) fn is_reading(&self) -> bool {
        matches!(self.phase, Phase::Reading(_))
    }

    /// The socket, to register or deregister it.
    pub(super) fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// When the current phase runs out of time.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The socket is ready: read what the head still needs, or write what
    /// the answer still has. `render` writes the exposition, `scratch` is
    /// the loop's read buffer.
    pub(super) fn ready(
        &mut self,
        registry: &Registry,
        now: Instant,
        limits: &Limits,
        scratch: &mut [u8],
        render: impl FnOnce() -> String,
    ) -> Next {
        let head = match &mut self.phase {
            Phase::Writing { answer, written } => return write(&mut self.stream, answer, written),
            Phase::Reading(head) => head,
        };
        let Ok(fill) = head.fill(&mut self.stream, limits.max_head, scratch) else {
            return Next::Close;
        };
        match head.request(fill == Fill::Full) {
            Some(request) => self.answer(response::answer(request, render), registry, now, limits),
            None if fill == Fill::Closed => Next::Close,
            None => Next::Wait,
        }
    }

    /// Called when the deadline may have passed: a head still incomplete
    /// is answered 408, an answer still unwritten is given up.
    pub(super) fn expire(&mut self, registry: &Registry, now: Instant, limits: &Limits) -> Next {
        if now < self.deadline {
            return Next::Wait;
        }
        match self.phase {
            Phase::Reading(_) => self.answer(response::timed_out(), registry, now, limits),
            Phase::Writing { .. } => Next::Close,
        }
    }

    /// Stop reading for good and start writing `answer`.
    fn answer(
        &mut self,
        answer: Vec<u8>,
        registry: &Registry,
        now: Instant,
        limits: &Limits,
    ) -> Next {
        self.deadline = now + limits.write_timeout;
        if registry
            .reregister(&mut self.stream, self.token, Interest::WRITABLE)
            .is_err()
        {
            return Next::Close;
        }
        let mut written = 0;
        let next = write(&mut self.stream, &answer, &mut written);
        self.phase = Phase::Writing { answer, written };
        next
    }
}

/// Write what is left of `answer` after `written` bytes, as far as the
/// socket takes it now: [`Next::Close`] once all is written (or the
/// peer is gone).
fn write(stream: &mut TcpStream, answer: &[u8], written: &mut usize) -> Next {
    while *written < answer.len() {
        match stream.write(&answer[*written..]) {
            Ok(0) => return Next::Close,
            Ok(sent) => *written += sent,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
    Next::Close
}
