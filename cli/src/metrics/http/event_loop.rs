//! The endpoint's one thread: a mio poll over the listener, the waker and
//! at most [`Limits::max_connections`] peers.
//!
//! Why one poll and no thread per connection: a peer that stalls costs a
//! slot and a descriptor until its deadline, never a thread, and the
//! number of both is fixed. Peers over the cap are accepted and closed at
//! once (after one unwaited `503`), so they cannot wait in the kernel's
//! queue either; [`admission`] says when a newcomer takes an older peer's
//! place instead. A failed `accept` (EMFILE: the process ran out of
//! descriptors) pauses accepting for a moment instead of spinning, and
//! accepting resumes by the clock, since an edge-triggered listener may
//! not report readiness again. The waker ends the loop at once: dropping
//! it closes every peer, whatever state it is in.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::warn;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use upcase::net::{LOG_INTERVAL, LogThrottle, ServerMetrics, suppressed_note};

use super::peer::{Next, Peer};
use super::{Limits, admission, response};

/// The listener's token.
pub(super) const LISTENER: Token = Token(0);
/// The waker's token: its event means "stop".
pub(super) const WAKE: Token = Token(1);
/// Peer `slot` has token `FIRST_PEER + slot`.
const FIRST_PEER: usize = 2;

/// How long accepting pauses after `accept` failed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Answer 503 once, without waiting (a peer that does not take it loses
/// it); the caller then drops the stream, which closes it.
fn refuse(stream: &mut TcpStream) {
    let _ = stream.write(&response::too_busy());
}

/// The running endpoint's state, owned by its thread.
pub(super) struct EndpointLoop {
    poll: Poll,
    listener: TcpListener,
    metrics: Arc<ServerMetrics>,
    limits: Limits,
    /// One entry per slot; `None` is free.
    peers: Vec<Option<Peer>>,
    scratch: Vec<u8>,
    accept_paused_until: Option<Instant>,
    /// One warning a second for each kind, with a count of those held back.
    refusals: LogThrottle,
    evictions: LogThrottle,
    accept_failures: LogThrottle,
}

impl EndpointLoop {
    /// A loop over `listener`, already registered with `poll` as
    /// [`LISTENER`] (and a waker as [`WAKE`]).
    pub(super) fn new(
        poll: Poll,
        listener: TcpListener,
        metrics: Arc<ServerMetrics>,
        limits: Limits,
    ) -> EndpointLoop {
        EndpointLoop {
            poll,
            listener,
            metrics,
            peers: (0..limits.max_connections).map(|_| None).collect(),
            scratch: vec![0; limits.max_head.clamp(1, 16 << 10)],
            limits,
            accept_paused_until: None,
            refusals: LogThrottle::new("metrics: refused", LOG_INTERVAL),
            evictions: LogThrottle::new("metrics: evicted", LOG_INTERVAL),
            accept_failures: LogThrottle::new("metrics: accept failed", LOG_INTERVAL),
        }
    }

    /// Serve until the waker fires (or polling itself fails); every peer is
    /// closed on return.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!("metrics: polling failed, no more scrapes are answered: {error}");
                return;
            }
            let now = Instant::now();
            for event in &events {
                match event.token() {
                    WAKE => return,
                    LISTENER => self.accept(now),
                    Token(token) => self.ready(token - FIRST_PEER, now),
                }
            }
            self.expire(now);
        }
    }

    /// The earliest peer deadline, or the end of an accept pause.
    fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flatten()
            .map(Peer::deadline)
            .chain(self.accept_paused_until)
            .min()
    }

    fn accept(&mut self, now: Instant) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(error) => {
                    if let Some(count) = self.accept_failures.admit(now) {
                        warn!(
                            "metrics: accept failed: {error}; pausing accepts for {} ms{}",
                            ACCEPT_PAUSE.as_millis(),
                            suppressed_note(count)
                        );
                    }
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Give `stream` a free slot, or the slot of a peer from a more
    /// crowded address (which is answered 503 and closed), or answer it
    /// 503 and close it.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let free = self.peers.iter().position(Option::is_none);
        let Some(slot) = free.or_else(|| admission::victim(&self.peers, peer.ip())) else {
            refuse(&mut stream);
            if let Some(count) = self.refusals.admit(now) {
                warn!(
                    "metrics: {peer} refused: {} metrics connections already open{}",
                    self.limits.max_connections,
                    suppressed_note(count)
                );
            }
            return;
        };
        if let Some(mut evicted) = self.close(slot) {
            refuse(evicted.stream());
            if let Some(count) = self.evictions.admit(now) {
                warn!(
                    "metrics: {} closed before its request was complete, to make room for {peer}: \
                     its address holds the most metrics connections{}",
                    evicted.addr(),
                    suppressed_note(count)
                );
            }
        }
        let token = Token(FIRST_PEER + slot);
        if let Err(error) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            warn!("metrics: cannot watch {peer}: {error}");
            return;
        }
        self.peers[slot] = Some(Peer::new(stream, peer, token, now, &self.limits));
    }

    fn ready(&mut self, slot: usize, now: Instant) {
        let Some(Some(peer)) = self.peers.get_mut(slot) else {
            return;
        };
        let metrics = &self.metrics;
        let next = peer.ready(
            self.poll.registry(),
            now,
            &self.limits,
            &mut self.scratch,
            || super::super::render(metrics),
        );
        if next == Next::Close {
            self.close(slot);
        }
    }

    /// Give every peer past its deadline its due, and end an accept pause
    /// that is over.
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.peers.len() {
            let Some(peer) = self.peers[slot].as_mut() else {
                continue;
            };
            if peer.expire(self.poll.registry(), now, &self.limits) == Next::Close {
                self.close(slot);
            }
        }
        if self.accept_paused_until.is_some_and(|until| until <= now) {
            self.accept_paused_until = None;
            self.accept(now);
        }
    }

    /// Free `slot`; the peer it held, to drop (which closes it).
    fn close(&mut self, slot: usize) -> Option<Peer> {
        let mut peer = self.peers[slot].take()?;
        let _ = self.poll.registry().deregister(peer.stream());
        Some(peer)
    }
}
