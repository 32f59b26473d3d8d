//! One thread's run loop for one accepted TCP connection.
//!
//! All protocol decisions are made by [`ServerConnection`]; this loop only
//! moves bytes and time between it and a blocking socket. Blocking sockets
//! (instead of an event loop) keep the shell tiny and make one connection's
//! trouble stay on its own thread; the price is that a thread cannot wait for
//! "readable or writable" at once, so both waits are sliced with socket
//! timeouts:
//!
//! - a read waits at most until the core's next deadline, and at most
//!   [`POLL_INTERVAL`], so shutdown is noticed even on an idle connection;
//! - a write to a peer that does not read waits at most one slice too, so
//!   the thread still meets its idle/linger deadlines and notices shutdown
//!   instead of hanging in `write` forever;
//! - while output is stuck and the core still accepts input, reads and writes
//!   alternate in short [`BLOCKED_SLICE`]s. Once the core's output bound is
//!   reached, `read_capacity()` is 0 and the loop stops reading: TCP flow
//!   control then pushes back on the client, and memory stays bounded.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::server::Shared;
use crate::conn::{CloseReason, ServerConnection, ServerEvent, UsageError, WireMode};

/// The longest a thread sleeps in a socket call without checking for shutdown.
/// 1000 idle connections wake 5000 times a second at 200 ms: cheap, and a
/// shutdown starts within 0.2 s.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The read/write alternation period while the peer is not taking output.
const BLOCKED_SLICE: Duration = Duration::from_millis(20);

/// The first read buffer: small, so an idle connection costs little memory.
const FIRST_READ_BUFFER: usize = 512;

/// The read buffer grows (×4) up to this when reads fill it.
const MAX_READ_BUFFER: usize = 32 * 1024;

/// Drive `conn` over `stream` until it closes, the peer vanishes, or the
/// socket fails. Logs the connection's end either way.
pub(crate) fn run(stream: TcpStream, conn: ServerConnection, peer: SocketAddr, shared: &Shared) {
    let mut driver = Driver {
        stream,
        conn,
        peer,
        shared,
        buffer: vec![0; FIRST_READ_BUFFER],
        write_shut: false,
        read_timeout: None,
        write_timeout: None,
        shutting_down: false,
        reported_pending: 0,
    };
    let end = driver.run();
    driver.report_pending(0);
    let stats = driver.conn.stats();
    let mode = driver.conn.mode();
    let mode_name = mode.map_or("undetected".to_string(), |m| m.to_string());
    let why = match end {
        Ok((reason, 0)) => reason.to_string(),
        Ok((reason, unsent)) => format!("{reason}, {unsent} bytes never read by the client"),
        Err(error) => format!("socket error: {error}"),
    };
    match mode {
        Some(WireMode::Framed) => info!(
            "{peer} closed ({why}): framed, in {} frames/{} bytes, out {} frames/{} bytes",
            stats.frames_in, stats.bytes_in, stats.frames_out, stats.bytes_out
        ),
        _ => info!(
            "{peer} closed ({why}): {mode_name}, in {} bytes, out {} bytes",
            stats.bytes_in, stats.bytes_out
        ),
    }
}

struct Driver<'a> {
    stream: TcpStream,
    conn: ServerConnection,
    peer: SocketAddr,
    shared: &'a Shared,
    buffer: Vec<u8>,
    /// Our writing side is shut down (raw connections that ended).
    write_shut: bool,
    /// The socket timeouts last set, to skip setting them again.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    shutting_down: bool,
    /// This connection's share of [`Shared`]'s pending-output total.
    reported_pending: usize,
}

impl Driver<'_> {
    /// The str0m-style loop: write, drain events, check shutdown and
    /// deadlines, read, feed; until the core says closed.
    fn run(&mut self) -> io::Result<(CloseReason, usize)> {
        loop {
            self.flush()?;
            if self.conn.wants_write_shutdown() && !self.write_shut {
                // Ignore failure: the peer may already be gone.
                let _ = self.stream.shutdown(std::net::Shutdown::Write);
                self.write_shut = true;
            }
            if let Some(closed) = self.drain_events() {
                return Ok(closed);
            }
            self.report_pending(self.conn.pending_output().len());
            if !self.shutting_down && self.shared.is_shutting_down() {
                self.shutting_down = true;
                self.drain_socket()?;
                self.conn.begin_shutdown(Instant::now());
                continue;
            }
            let now = Instant::now();
            let deadline = self.conn.poll_timeout();
            if deadline.is_some_and(|deadline| deadline <= now) {
                self.conn.handle_timeout(now);
                continue;
            }
            let wait = deadline.map_or(POLL_INTERVAL, |d| (d - now).min(POLL_INTERVAL));
            let capacity = self.conn.read_capacity();
            let output_stuck = !self.conn.pending_output().is_empty();
            match (capacity, output_stuck) {
                (0, true) => {} // flush() waits for the peer
                (0, false) => std::thread::sleep(wait),
                (_, true) => _ = self.read(capacity, wait.min(BLOCKED_SLICE))?,
                (_, false) => _ = self.read(capacity, wait)?,
            }
        }
    }

    /// Write pending output until it is all written or one wait slice passes.
    fn flush(&mut self) -> io::Result<()> {
        while !self.conn.pending_output().is_empty() {
            let now = Instant::now();
            let until_deadline = self
                .conn
                .poll_timeout()
                .map_or(POLL_INTERVAL, |d| d.saturating_duration_since(now));
            let mut slice = until_deadline.min(POLL_INTERVAL);
            if self.conn.read_capacity() > 0 {
                slice = slice.min(BLOCKED_SLICE);
            }
            if slice.is_zero() {
                return Ok(()); // the deadline is due: let the loop handle it
            }
            self.set_write_timeout(slice)?;
            match self.stream.write(self.conn.pending_output()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => self.conn.mark_sent(Instant::now(), sent).map_err(usage)?,
                Err(error) if is_timeout(&error) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Read at most `capacity` bytes, waiting at most `wait`, and feed them.
    /// Whether anything (data or end of stream) arrived.
    fn read(&mut self, capacity: usize, wait: Duration) -> io::Result<bool> {
        self.set_read_timeout(wait.max(Duration::from_millis(1)))?;
        let len = capacity.min(self.buffer.len());
        match self.stream.read(&mut self.buffer[..len]) {
            Ok(0) => {
                self.conn.handle_eof(Instant::now());
                Ok(true)
            }
            Ok(read) => {
                self.conn
                    .handle_input(Instant::now(), &self.buffer[..read])
                    .map_err(usage)?;
                if read == self.buffer.len() && self.buffer.len() < MAX_READ_BUFFER {
                    self.buffer.resize(self.buffer.len() * 4, 0);
                }
                Ok(true)
            }
            Err(error) if is_timeout(&error) => Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Before shutting down, feed what the socket already holds (without
    /// waiting for more), so every frame the client sent before the shutdown
    /// and that reached us is answered.
    fn drain_socket(&mut self) -> io::Result<()> {
        self.stream.set_nonblocking(true)?;
        let result = loop {
            let capacity = self.conn.read_capacity();
            if capacity == 0 {
                break Ok(());
            }
            match self.read(capacity, Duration::ZERO) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        self.stream.set_nonblocking(false)?;
        result
    }

    /// Log the core's events; the close reason once it has closed.
    fn drain_events(&mut self) -> Option<(CloseReason, usize)> {
        let mut closed = None;
        while let Some(event) = self.conn.poll_event() {
            let peer = self.peer;
            match event {
                ServerEvent::ModeDetected(mode) => debug!("{peer}: {mode} mode"),
                ServerEvent::Message { frame_type, data } => {
                    let text = String::from_utf8_lossy(&data);
                    match frame_type {
                        Some(frame_type) => {
                            info!("{peer}: from connected user ({frame_type}): {text}")
                        }
                        None => info!("{peer}: from connected user: {text}"),
                    }
                }
                ServerEvent::ProtocolError(violation) => {
                    let code = violation.code();
                    warn!("{peer}: protocol error {code} ({}): {violation}", code.0);
                }
                ServerEvent::Closed { reason, unsent } => closed = Some((reason, unsent)),
            }
        }
        closed
    }

    /// Keep the server-wide pending-output total up to date.
    fn report_pending(&mut self, now_pending: usize) {
        self.shared
            .adjust_pending(self.reported_pending, now_pending);
        self.reported_pending = now_pending;
    }
}

impl Driver<'_> {
    /// Set the socket's read timeout, skipping the system call when it is
    /// already (within a millisecond) what is asked: a busy connection would
    /// otherwise make one extra call per read.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if !close_enough(self.read_timeout, timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.read_timeout = Some(timeout);
        }
        Ok(())
    }

    /// The write-side twin of [`set_read_timeout`](Self::set_read_timeout).
    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if !close_enough(self.write_timeout, timeout) {
            self.stream.set_write_timeout(Some(timeout))?;
            self.write_timeout = Some(timeout);
        }
        Ok(())
    }
}

/// Whether a socket timeout already set is within 1 ms of `wanted`.
fn close_enough(set: Option<Duration>, wanted: Duration) -> bool {
    set.is_some_and(|set| set.abs_diff(wanted) < Duration::from_millis(1))
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A core usage error is a bug in this loop; it ends the connection as an
/// I/O error rather than panicking the thread.
fn usage(error: UsageError) -> io::Error {
    io::Error::other(format!("internal error driving the connection: {error}"))
}
