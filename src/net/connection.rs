//! One accepted TCP connection inside an event loop: its non-blocking
//! socket, its sans-IO core, and the few facts the shell keeps beside them.
//!
//! All protocol decisions are made by [`ServerConnection`]; [`Connection::drive`]
//! only moves bytes and time between it and the socket, until the socket
//! would block. Readiness is edge-triggered (mio), so the connection
//! remembers that its socket may still hold input (`read_ready`) when it
//! stops reading for its own reasons: the core's `read_capacity()` is 0
//! (backpressure: TCP flow control then slows the client), the memory
//! budget is spent, or it has used up its turn: the work units of
//! [`super::work`], which count frames and ERRORs as well as bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpStream;

use super::budget::{BudgetShare, MemoryBudget, weight};
use super::log_escape::escape_for_log;
use super::log_throttle::TcpLine;
use super::metrics::ConnectionMeter;
use super::slots::Activity;
use super::work::{CostPerByte, Turn, Work};
use crate::conn::{CloseReason, ServerConnection, ServerEvent, ServerUsageError, WireMode};

/// How long a connection must stay quiet with empty buffers before it
/// gives their memory back: long enough that a client sending request
/// after request keeps them, short enough that idle connections hold none.
const BUFFER_RELEASE_DELAY: Duration = Duration::from_secs(1);

/// What [`Connection::drive`] left the connection waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The socket, a timer or the budget; nothing to do until an event.
    Wait,
    /// It still has input to read but used up its turn: drive it again soon.
    MoreToRead,
    /// Input is waiting but the memory budget is spent: retry when it frees.
    BudgetBlocked,
    /// Over; the close is logged. Drop the connection.
    Closed,
}

/// An accepted connection.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    core: ServerConnection,
    peer: SocketAddr,
    /// Over the connection limit: its only reply is BUSY.
    refusing: bool,
    /// The socket may hold input not yet read (edge-triggered readiness).
    read_ready: bool,
    /// Our writing side is shut down (raw connections that ended).
    write_shut: bool,
    /// Since when it has held empty buffers with nothing moving (see
    /// [`release_buffers_once_quiet`](Self::release_buffers_once_quiet)).
    quiet_since: Option<Instant>,
    /// [`bytes_moved`](Self::bytes_moved) when `quiet_since` was set.
    bytes_moved_at_quiet: u64,
    /// The largest buffer capacity seen since buffers were last given back.
    capacity_high_water: usize,
    /// The deadline this connection has in the loop's timer heap, if any.
    pub(crate) armed: Option<Instant>,
    /// Whether it is in the loop's queue of connections with input left
    /// from their turn, or waiting for the budget (each at most once).
    pub(crate) queued_for_turn: bool,
    pub(crate) queued_for_budget: bool,
    /// Its bytes charged to the server's memory budget and pending-output total.
    share: BudgetShare,
    /// Whether it received a complete frame (framed), any byte (raw) or
    /// bytes before detection since [`take_activity`](Self::take_activity)
    /// was last called: what resets "idle" for eviction (the most of them).
    active: Option<Activity>,
    /// Its reporter to the server's metrics (`--metrics`).
    meter: Option<ConnectionMeter>,
    /// What its last read cost per byte: how much to read next in a turn.
    cost: CostPerByte,
}

impl Connection {
    /// Wrap an accepted socket and its core.
    pub(crate) fn new(
        stream: TcpStream,
        core: ServerConnection,
        peer: SocketAddr,
        refusing: bool,
    ) -> Connection {
        Connection {
            stream,
            core,
            peer,
            refusing,
            read_ready: false,
            write_shut: false,
            quiet_since: None,
            bytes_moved_at_quiet: 0,
            capacity_high_water: 0,
            armed: None,
            queued_for_turn: false,
            queued_for_budget: false,
            share: BudgetShare::default(),
            active: None,
            meter: None,
            cost: CostPerByte::default(),
        }
    }

    /// Report to the server's metrics from now on.
    pub(crate) fn set_meter(&mut self, meter: ConnectionMeter) {
        self.meter = Some(meter);
    }

    /// The socket, to register it with the loop's poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether this is a connection over the limit, being refused.
    pub(crate) fn is_refusing(&self) -> bool {
        self.refusing
    }

    /// Whether the core has ended it (BYE, error, shutdown): it only
    /// flushes and lingers now, and is no candidate for eviction.
    pub(crate) fn has_ended(&self) -> bool {
        self.core.has_ended()
    }

    /// How it was active since the last call, if it was (see `active`).
    pub(crate) fn take_activity(&mut self) -> Option<Activity> {
        self.active.take()
    }

    /// Evict it to make room (SPEC.md §9.3): from now on it counts as a
    /// refused connection, and the core says BUSY (framed) or finishes.
    pub(crate) fn evict(&mut self, now: Instant) {
        self.refusing = true;
        self.core.evict(now);
        if let Some(meter) = &mut self.meter {
            meter.evicted();
        }
    }

    /// The poll reported the socket readable (or closed, or in error).
    pub(crate) fn set_read_ready(&mut self) {
        self.read_ready = true;
    }

    /// The earliest moment this connection needs [`drive`](Self::drive)
    /// for time alone: the core's deadline (its timers, the send timeout
    /// among them) or the moment to give back its empty buffers.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let release = self.quiet_since.map(|since| since + BUFFER_RELEASE_DELAY);
        [self.core.poll_timeout(), release]
            .into_iter()
            .flatten()
            .min()
    }

    /// Move bytes until the socket would block, the connection has used up
    /// `turn`, or it is over. Logs how it ended.
    pub(crate) fn drive(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        budget: &MemoryBudget,
        turn: Turn,
    ) -> Step {
        let step = match self.run(now, scratch, budget, turn) {
            Ok(Ok(step)) => step,
            Ok(Err(end)) => {
                self.log_close(&end);
                Step::Closed
            }
            Err(error) => {
                self.log_close(&End::Socket(error));
                Step::Closed
            }
        };
        if let Some(meter) = &mut self.meter {
            meter.report(&self.core);
        }
        if step == Step::Closed {
            self.share.release(budget);
            if let Some(meter) = self.meter.take() {
                meter.closed(&self.core);
            }
        } else {
            self.release_buffers_once_quiet(now);
            self.update_share(budget);
        }
        step
    }

    /// A connection with nothing buffered but buffers still allocated (a
    /// client between requests) gives them back once it has been quiet
    /// for [`BUFFER_RELEASE_DELAY`]: an idle connection holds no buffer,
    /// and a busy one is not made to allocate them anew for every request.
    fn release_buffers_once_quiet(&mut self, now: Instant) {
        let empty_but_allocated =
            self.core.buffered_len() == 0 && self.core.buffered_capacity() > 0 && !self.read_ready;
        if !empty_but_allocated || self.bytes_moved_at_quiet != self.bytes_moved() {
            self.bytes_moved_at_quiet = self.bytes_moved();
            self.quiet_since = empty_but_allocated.then_some(now);
            return;
        }
        match self.quiet_since {
            Some(since) if now >= since + BUFFER_RELEASE_DELAY => {
                self.core.release_idle_buffers();
                self.capacity_high_water = self.core.buffered_capacity();
                self.quiet_since = None;
            }
            Some(_) => {}
            None => self.quiet_since = Some(now),
        }
    }

    /// Bytes read and written so far: whether anything moved since.
    fn bytes_moved(&self) -> u64 {
        let stats = self.core.stats();
        stats.bytes_in + stats.bytes_out
    }

    fn update_share(&mut self, budget: &MemoryBudget) {
        let pending = self.core.pending_output().len();
        let input = self.core.buffered_len() - pending;
        // A buffer's capacity shows only the part past its bytes, while its
        // whole allocation stays until it is given back: charge the most it
        // has shown since.
        self.capacity_high_water = self.capacity_high_water.max(self.core.buffered_capacity());
        self.share
            .update(budget, input, pending, self.capacity_high_water);
    }

    /// Shutdown: feed what the socket already holds (without waiting for
    /// more), so every frame that reached the server is answered, then tell
    /// the core to finish (answer, BYE or flush, close).
    pub(crate) fn begin_shutdown(&mut self, now: Instant, scratch: &mut [u8]) -> io::Result<()> {
        loop {
            let capacity = self.core.read_capacity().min(scratch.len());
            if capacity == 0 {
                break;
            }
            match self.stream.read(&mut scratch[..capacity]) {
                Ok(0) => {
                    self.core.handle_eof(now);
                    break;
                }
                Ok(read) => _ = self.feed(now, &scratch[..read])?,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.read_ready = false;
        self.core.begin_shutdown(now);
        Ok(())
    }

    /// Close at once (eviction of a connection that cannot be told BUSY,
    /// the server giving up at shutdown): logs and releases its budget.
    pub(crate) fn close_now(&mut self, why: &str, budget: &MemoryBudget) {
        self.log_close(&End::Dropped(why.to_string()));
        self.share.release(budget);
        if let Some(meter) = self.meter.take() {
            meter.closed(&self.core);
        }
    }

    /// The loop of [`drive`](Self::drive): `Err` is a socket error, `Ok(Err)`
    /// another end.
    fn run(
        &mut self,
        now: Instant,
        scratch: &mut [u8],
        budget: &MemoryBudget,
        mut turn: Turn,
    ) -> io::Result<Result<Step, End>> {
        loop {
            self.flush(now)?;
            if self.core.wants_write_shutdown() && !self.write_shut {
                // Ignore failure: the peer may already be gone.
                let _ = self.stream.shutdown(Shutdown::Write);
                self.write_shut = true;
            }
            if let Some((reason, unsent)) = self.drain_events() {
                return Ok(Err(End::Core(reason, unsent)));
            }
            if self.core.poll_timeout().is_some_and(|due| due <= now) {
                self.core.handle_timeout(now);
                continue;
            }
            if !self.read_ready {
                return Ok(Ok(Step::Wait));
            }
            let buffered = self.core.buffered_len();
            let capacity = self
                .core
                .read_capacity()
                .min(scratch.len())
                .min(budget.own_room(buffered));
            if capacity == 0 {
                // Backpressure: the client must take output first.
                return Ok(Ok(Step::Wait));
            }
            let pending = self.core.pending_output().len();
            let allowed = budget.may_read(weight(buffered - pending, pending), capacity);
            if allowed == 0 {
                return Ok(Ok(Step::BudgetBlocked));
            }
            if turn.is_spent() {
                return Ok(Ok(Step::MoreToRead));
            }
            let size = turn.read_size(allowed, self.cost);
            let result = self.stream.read(&mut scratch[..size]);
            // Every call costs its turn something, whatever it returned.
            let mut work = Work::default();
            match result {
                Ok(0) => {
                    self.read_ready = false;
                    self.core.handle_eof(now);
                }
                Ok(read) => {
                    work = self.feed(now, &scratch[..read])?;
                    self.cost.learn(&work);
                    // Charge at once, so the next read sees the budget as it is.
                    self.update_share(budget);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.read_ready = false;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            turn.charge(&work);
        }
    }

    /// Hand input to the core, note whether it made the connection active
    /// (a complete frame, or raw bytes), and say what work it caused.
    fn feed(&mut self, now: Instant, data: &[u8]) -> io::Result<Work> {
        if let Some(meter) = &mut self.meter {
            meter.read_at(now);
        }
        let before = self.core.stats();
        let output_before = self.core.pending_output().len();
        self.core.handle_input(now, data).map_err(usage)?;
        let after = self.core.stats();
        let output = self
            .core
            .pending_output()
            .len()
            .saturating_sub(output_before);
        let activity = match self.core.mode() {
            Some(WireMode::Framed) => {
                (after.frames_in > before.frames_in).then_some(Activity::Served)
            }
            Some(WireMode::Raw) => Some(Activity::Served),
            None => Some(Activity::Detecting),
        };
        self.active = self.active.max(activity);
        Ok(Work::between(&before, &after, data.len(), output))
    }

    /// Write pending output until it is all written or the socket is full.
    fn flush(&mut self, now: Instant) -> io::Result<()> {
        while !self.core.pending_output().is_empty() {
            match self.stream.write(self.core.pending_output()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => self.core.mark_sent(now, sent).map_err(usage)?,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Log the core's events; the close reason once it has closed.
    fn drain_events(&mut self) -> Option<(CloseReason, usize)> {
        let mut closed = None;
        while let Some(event) = self.core.poll_event() {
            let peer = self.peer;
            match event {
                ServerEvent::ModeDetected(mode) => debug!("{peer}: {mode} mode"),
                ServerEvent::Message { frame_type, data } => {
                    let text = escape_for_log(&data);
                    match frame_type {
                        Some(frame_type) => {
                            info!("{peer}: from connected user ({frame_type}): {text}")
                        }
                        None => info!("{peer}: from connected user: {text}"),
                    }
                }
                ServerEvent::ProtocolError(violation) => {
                    let code = violation.code();
                    if let Some(meter) = &self.meter {
                        meter.error_sent(code);
                    }
                    if let Some(note) = TcpLine::ProtocolError(code).admit() {
                        warn!(
                            "{peer}: protocol error {code} ({}): {violation}{note}",
                            code.0
                        );
                    }
                }
                ServerEvent::Closed { reason, unsent } => closed = Some((reason, unsent)),
            }
        }
        closed
    }

    /// The one log line of a connection's end, with its counters (throttled).
    fn log_close(&self, end: &End) {
        let Some(note) = TcpLine::Closed.admit() else {
            return;
        };
        let peer = self.peer;
        let why = match end {
            End::Core(reason, 0) => reason.to_string(),
            End::Core(reason, unsent) => {
                format!("{reason}, {unsent} bytes never read by the client")
            }
            End::Socket(error) => format!("socket error: {error}"),
            End::Dropped(why) => why.clone(),
        };
        let stats = self.core.stats();
        match self.core.mode() {
            Some(WireMode::Framed) => info!(
                "{peer} closed ({why}): framed, in {} frames/{} bytes, out {} frames/{} bytes{note}",
                stats.frames_in, stats.bytes_in, stats.frames_out, stats.bytes_out
            ),
            mode => info!(
                "{peer} closed ({why}): {}, in {} bytes, out {} bytes{note}",
                mode.map_or("undetected".to_string(), |m| m.to_string()),
                stats.bytes_in,
                stats.bytes_out
            ),
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The core closed it: a reason and the output the client never took.
    Core(CloseReason, usize),
    /// The socket failed.
    Socket(io::Error),
    /// The server closed it for its own reasons.
    Dropped(String),
}

/// A core usage error is a bug in this shell; it ends the connection as an
/// I/O error rather than panicking the loop.
fn usage(error: ServerUsageError) -> io::Error {
    io::Error::other(format!("internal error driving the connection: {error}"))
}

#[cfg(test)]
mod tests;
