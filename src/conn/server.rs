//! The server side of one TCP connection, sans-IO (SPEC.md §2–§7, §9).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::config::{RAW_INPUT_LIMIT, ServerConfig, ServerMode};
use super::error::{ProtocolViolation, ServerUsageError};
use super::events::{CloseReason, ConnectionStats, ServerEvent, WireMode};
use super::framed::{FrameOutcome, FramedSession};
use super::reply::{ReplyAddresses, write_error, write_frame};
use crate::transform::LosslessUpcaser;
use crate::wire::{
    Address, Flags, FrameDecoder, FrameType, HEADER_LEN, PREFACE, PREFACE_LEN, PrefaceMatch,
    match_preface,
};

/// Where the connection is in its life.
#[derive(Debug)]
enum Phase {
    /// Auto mode, fewer than 8 bytes seen, all matching the preface so far.
    Sniffing,
    /// A byte stream, upper-cased as it comes.
    Raw(LosslessUpcaser),
    /// Frames, after the preface exchange.
    Framed(FramedSession),
    /// No more input is processed (it is read and discarded). The last
    /// output is written first, however short the linger: while some is
    /// pending, only the write timer (`write_deadline`) can cut it short.
    /// Once it is all written, the client gets until `linger_until` to close
    /// first (SPEC.md §9.2).
    Ending {
        reason: CloseReason,
        linger_until: Option<Instant>,
    },
    /// Over: the socket should be closed.
    Closed,
}

/// The server side of one connection.
///
/// Drive it like this: feed what the socket reads to
/// [`handle_input`](Self::handle_input) (at most
/// [`read_capacity`](Self::read_capacity) bytes), end of stream to
/// [`handle_eof`](Self::handle_eof), write
/// [`pending_output`](Self::pending_output) and report what was written with
/// [`mark_sent`](Self::mark_sent), call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout), and drain
/// [`poll_event`](Self::poll_event). Close the socket once
/// [`is_closed`](Self::is_closed). The connection never reads a clock: every
/// call that depends on time takes `now`.
#[derive(Debug)]
pub struct ServerConnection {
    config: ServerConfig,
    local: Address,
    peer: Address,
    /// `Some(limit)` for a connection over the server's connection limit.
    busy: Option<usize>,
    phase: Phase,
    /// The mode once detected; kept after the connection ends, for logs.
    detected: Option<WireMode>,
    eof: bool,
    input: BytesMut,
    output: BytesMut,
    events: VecDeque<ServerEvent>,
    /// The idle timer; it runs while the server reads, not while it waits
    /// for the client to take output over its bound (SPEC.md §9.1).
    idle_deadline: Instant,
    /// The write timer, set while output is pending: unless the client
    /// takes a byte of it first, the connection closes then, without
    /// sending more, whatever its phase (SPEC.md §9.4).
    write_deadline: Option<Instant>,
    stats: ConnectionStats,
}

impl ServerConnection {
    /// A new connection accepted at `now` on socket `local` from `peer`.
    pub fn new(
        config: ServerConfig,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
    ) -> ServerConnection {
        let phase = match config.mode {
            ServerMode::Raw => Phase::Raw(LosslessUpcaser::new(config.raw_case.lossless_mode())),
            ServerMode::Auto | ServerMode::Framed => Phase::Sniffing,
        };
        let mut connection = ServerConnection {
            idle_deadline: now + config.idle_timeout,
            write_deadline: None,
            config,
            local: local.into(),
            peer: peer.into(),
            busy: None,
            phase,
            detected: None,
            eof: false,
            input: BytesMut::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            stats: ConnectionStats::default(),
        };
        if matches!(connection.phase, Phase::Raw(_)) {
            connection.detect(WireMode::Raw);
        }
        connection
    }

    /// A connection over the server's connection limit of `limit`: once its
    /// mode is known it gets ERROR(BUSY) (framed) or is closed (raw), and
    /// nothing else.
    pub fn new_busy(
        config: ServerConfig,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
        limit: usize,
    ) -> ServerConnection {
        let mut connection = ServerConnection::new(config, local, peer, now);
        connection.busy = Some(limit);
        if matches!(connection.phase, Phase::Raw(_)) {
            connection.end(CloseReason::Busy, now);
        }
        connection
    }

    /// The mode, once known (and still after the connection ended).
    pub fn mode(&self) -> Option<WireMode> {
        self.detected
    }

    fn detect(&mut self, mode: WireMode) {
        self.detected = Some(mode);
        self.events.push_back(ServerEvent::ModeDetected(mode));
    }

    /// Counters for logging.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// How many bytes [`handle_input`](Self::handle_input) accepts now. Zero
    /// while the peer has not taken enough output: stop reading (backpressure).
    pub fn read_capacity(&self) -> usize {
        match self.phase {
            // After end of stream a read would only return 0 again.
            _ if self.eof => 0,
            Phase::Closed => 0,
            Phase::Ending { .. } => RAW_INPUT_LIMIT,
            _ if self.output.len() >= self.config.max_pending_output => 0,
            _ => self.input_limit().saturating_sub(self.input.len()),
        }
    }

    /// The most unprocessed input held: one whole frame in framed mode.
    fn input_limit(&self) -> usize {
        match self.phase {
            Phase::Framed(_) => RAW_INPUT_LIMIT.max(HEADER_LEN + self.config.max_data_len as usize),
            _ => RAW_INPUT_LIMIT,
        }
    }

    /// Feed bytes read from the socket. After BYE or a fatal error, input is
    /// read and discarded (SPEC.md §5.4).
    ///
    /// # Errors
    /// [`ServerUsageError::OverCapacity`] when `data` is longer than
    /// [`read_capacity`](Self::read_capacity); nothing is consumed then.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), ServerUsageError> {
        let capacity = self.read_capacity();
        if data.len() > capacity {
            return Err(ServerUsageError::OverCapacity {
                offered: data.len(),
                capacity,
            });
        }
        self.stats.bytes_in += data.len() as u64;
        if matches!(self.phase, Phase::Ending { .. } | Phase::Closed) {
            return Ok(());
        }
        // A busy connection's wait for its preface is one deadline from
        // its accept: trickled bytes do not extend it (SPEC.md §9.3).
        if !matches!(self.phase, Phase::Framed(_)) && !data.is_empty() && self.busy.is_none() {
            self.idle_deadline = now + self.config.idle_timeout;
        }
        self.input.extend_from_slice(data);
        self.process(now, false);
        self.watch_output(now);
        Ok(())
    }

    /// The peer closed its sending side. Everything complete is answered;
    /// raw mode copies held partial bytes; then the connection ends.
    pub fn handle_eof(&mut self, now: Instant) {
        self.end_of_input(now);
        self.watch_output(now);
    }

    fn end_of_input(&mut self, now: Instant) {
        if self.eof {
            return;
        }
        self.eof = true;
        if let Phase::Ending { .. } = self.phase {
            self.after_output_written(now);
            return;
        }
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if matches!(self.phase, Phase::Sniffing) && self.config.mode == ServerMode::Framed {
            return self.end(CloseReason::PeerClosedMidFrame, now);
        }
        if !self.answer_everything_received(now) {
            return;
        }
        // Raw input is all consumed; framed input left over is a partial frame.
        let reason = if self.input.is_empty() {
            CloseReason::PeerClosed
        } else {
            CloseReason::PeerClosedMidFrame
        };
        self.end(reason, now);
    }

    /// Begin a graceful shutdown: answer everything already received, then
    /// send BYE (framed) or flush (raw) and end.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.shut_down(now);
        self.watch_output(now);
    }

    fn shut_down(&mut self, now: Instant) {
        if self.has_ended() || !self.answer_everything_received(now) {
            return;
        }
        if let Phase::Framed(_) = self.phase {
            let addresses = ReplyAddresses {
                src: self.local,
                dst: self.peer,
            };
            write_frame(
                &mut self.output,
                addresses,
                FrameType::Bye,
                Flags::default(),
                b"server shutting down",
            );
            self.stats.frames_out += 1;
            self.stats.frames_out_by_type.add(FrameType::Bye);
        }
        self.end(CloseReason::Shutdown, now);
    }

    /// The server is full and evicts this connection to make room for a
    /// newcomer (SPEC.md §9.3): framed, it sends ERROR(BUSY) and closes per
    /// §6.5; raw, what was received is answered and flushed, then it
    /// closes; undetected, it closes without reply. Nothing happens once
    /// the connection has ended.
    pub fn evict(&mut self, now: Instant) {
        match self.phase {
            Phase::Ending { .. } | Phase::Closed => {}
            Phase::Sniffing => self.end(CloseReason::Evicted, now),
            Phase::Framed(_) => self.fatal_without_frame(ProtocolViolation::Evicted, now),
            Phase::Raw(_) => {
                if self.answer_everything_received(now) {
                    self.end(CloseReason::Evicted, now);
                }
            }
        }
        self.watch_output(now);
    }

    /// No more input will come or be taken (end of stream, shutdown, raw
    /// idle timeout): answer everything buffered, ignoring the output bound;
    /// undecided bytes are raw input (SPEC.md §2.1) and raw mode copies its
    /// held bytes (§7.3). Whether the connection is still going, i.e. no
    /// fatal error, framed-only or busy end came of it.
    fn answer_everything_received(&mut self, now: Instant) -> bool {
        if let Phase::Sniffing = self.phase {
            self.start_raw_or_close(now);
        }
        self.process(now, true);
        if let Phase::Raw(upcaser) = &mut self.phase {
            upcaser.finish(&mut self.output);
        }
        !self.has_ended()
    }

    /// Bytes held: unprocessed input plus output not yet sent, what a
    /// server's memory budget counts (SPEC.md §11).
    pub fn buffered_len(&self) -> usize {
        self.input.len() + self.output.len()
    }

    /// The memory of the buffers behind [`buffered_len`](Self::buffered_len):
    /// what they can hold without growing, at least what they hold.
    pub fn buffered_capacity(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }

    /// Give back the memory of empty buffers. A shell calls this when the
    /// connection has been waiting for its client for a while, so that an
    /// idle connection holds no buffer however large its last frame was;
    /// the next input allocates again.
    pub fn release_idle_buffers(&mut self) {
        if self.input.is_empty() {
            self.input = BytesMut::new();
        }
        if self.output.is_empty() {
            self.output = BytesMut::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    /// The bytes to write to the socket next.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// Report that the first `sent` bytes of [`pending_output`](Self::pending_output)
    /// were written. Frees room, so held input may be processed now.
    ///
    /// # Errors
    /// [`ServerUsageError::SentMoreThanPending`] when `sent` is larger than what was pending.
    pub fn mark_sent(&mut self, now: Instant, sent: usize) -> Result<(), ServerUsageError> {
        if sent > self.output.len() {
            return Err(ServerUsageError::SentMoreThanPending {
                sent,
                pending: self.output.len(),
            });
        }
        if sent > 0 {
            // Progress restarts the write timer; while the server waits for
            // the client, it also restarts the idle timer, which runs again
            // once the server reads.
            self.write_deadline = None;
            if self.waiting_for_the_client() {
                self.idle_deadline = now + self.config.idle_timeout;
            }
        }
        self.output.advance(sent);
        self.stats.bytes_out += sent as u64;
        match self.phase {
            Phase::Ending { .. } => self.after_output_written(now),
            Phase::Closed => {}
            _ => self.process(now, false),
        }
        self.watch_output(now);
        Ok(())
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever:
    /// the earlier of the idle timer (or the linger) and the write timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = match self.phase {
            Phase::Closed => return None,
            Phase::Ending { linger_until, .. } => linger_until,
            _ if self.waiting_for_the_client() => None,
            _ => Some(self.idle_deadline),
        };
        [timer, self.write_deadline].into_iter().flatten().min()
    }

    /// The clock reached (or passed) [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.write_deadline.is_some_and(|deadline| now >= deadline) {
            // The client took none of the pending output within the send
            // timeout: no ERROR or BYE, it would not read them either.
            return self.close_as(CloseReason::SendTimeout);
        }
        match self.phase {
            Phase::Ending {
                linger_until: Some(deadline),
                ..
            } if now >= deadline => self.close(),
            Phase::Sniffing | Phase::Raw(_) | Phase::Framed(_)
                if now >= self.idle_deadline && !self.waiting_for_the_client() =>
            {
                self.idle_timeout(now);
            }
            _ => {}
        }
        self.watch_output(now);
    }

    /// The send timeout in force: never longer than the idle timeout (SPEC.md §9.1).
    fn send_timeout(&self) -> Duration {
        self.config.send_timeout.min(self.config.idle_timeout)
    }

    /// Keep the write timer in step with the output: started when output
    /// becomes pending, stopped when none is.
    fn watch_output(&mut self, now: Instant) {
        if self.output.is_empty() {
            self.write_deadline = None;
        } else if self.write_deadline.is_none() {
            self.write_deadline = Some(now + self.send_timeout());
        }
    }

    /// The next event, if any. Drain until `None` after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether the connection has ended (BYE, a fatal error, end of input,
    /// shutdown): it processes no more input, and closes once its output is
    /// flushed and the client has closed, or the linger has passed.
    pub fn has_ended(&self) -> bool {
        matches!(self.phase, Phase::Ending { .. } | Phase::Closed)
    }

    /// Whether the shell should half-close the socket (shut down its
    /// writing side) now: the connection has ended, its output is flushed,
    /// and it is raw, so the client has no BYE or ERROR to tell it the
    /// server is done. End of stream tells a raw client (`nc`, the tutorial)
    /// to close, and the server then closes at once instead of waiting out
    /// the linger. Framed connections never half-close: their client closes
    /// first, which keeps TIME_WAIT on the client (SPEC.md §5.4).
    pub fn wants_write_shutdown(&self) -> bool {
        matches!(self.phase, Phase::Ending { .. })
            && self.output.is_empty()
            && self.detected != Some(WireMode::Framed)
    }

    /// Whether the server has stopped reading because the client has not
    /// taken its output, which is over its bound (backpressure): the idle
    /// timer does not run then (SPEC.md §9.1).
    fn waiting_for_the_client(&self) -> bool {
        !self.output.is_empty() && self.output.len() >= self.config.max_pending_output
    }

    /// Whether the connection is over and the socket should be closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    fn idle_timeout(&mut self, now: Instant) {
        if let Phase::Framed(_) = self.phase {
            let secs = self.config.idle_timeout.as_secs();
            self.fatal_without_frame(ProtocolViolation::IdleTimeout { secs }, now);
        } else if self.answer_everything_received(now) {
            self.end(CloseReason::IdleTimeout, now);
        }
    }

    /// Consume buffered input. Stops when output is over its bound (unless
    /// `drain_all`: at EOF and shutdown everything received is answered).
    fn process(&mut self, now: Instant, drain_all: bool) {
        loop {
            if !drain_all && self.output.len() >= self.config.max_pending_output {
                break;
            }
            let progressed = match self.phase {
                Phase::Sniffing => self.sniff(now),
                Phase::Raw(_) => self.process_raw(),
                Phase::Framed(_) => self.process_frame(now),
                Phase::Ending { .. } | Phase::Closed => false,
            };
            if !progressed {
                break;
            }
        }
        self.compact_input();
    }

    /// The input left after a large frame keeps that frame's allocation (a
    /// decoded frame shares it): copy the few bytes out, so that what a
    /// connection holds in memory follows what it buffers (SPEC.md §11)
    /// rather than the largest frame it ever received.
    fn compact_input(&mut self) {
        let capacity = self.input.capacity();
        let len = self.input.len();
        // An empty buffer is kept for the next frame; the shell gives it
        // back once the connection is idle (`release_idle_buffers`).
        if len > 0 && capacity > RAW_INPUT_LIMIT && capacity > 4 * len {
            self.input = BytesMut::from(&self.input[..]);
        }
    }

    fn sniff(&mut self, now: Instant) -> bool {
        match match_preface(&self.input) {
            PrefaceMatch::Partial => false,
            PrefaceMatch::Mismatch => {
                self.start_raw_or_close(now);
                true
            }
            PrefaceMatch::Complete { version } => {
                self.input.advance(PREFACE_LEN);
                self.output.extend_from_slice(&PREFACE);
                self.phase = Phase::Framed(FramedSession::default());
                self.detect(WireMode::Framed);
                self.idle_deadline = now + self.config.idle_timeout;
                // BUSY whatever the version: the server will not serve it anyway.
                if let Some(limit) = self.busy {
                    self.fatal_without_frame(ProtocolViolation::Busy { limit }, now);
                } else if version != crate::wire::VERSION {
                    self.fatal_without_frame(
                        ProtocolViolation::UnsupportedVersion { version },
                        now,
                    );
                }
                true
            }
        }
    }

    /// The bytes are not a preface (or no more will come): raw mode, unless
    /// the server is framed-only, or this connection is over the limit —
    /// both close without a reply (SPEC.md §2.2, §9.3).
    fn start_raw_or_close(&mut self, now: Instant) {
        if self.config.mode == ServerMode::Framed {
            self.end(CloseReason::NotFramed, now);
        } else if self.busy.is_some() {
            self.end(CloseReason::Busy, now);
        } else {
            self.start_raw();
        }
    }

    fn start_raw(&mut self) {
        self.phase = Phase::Raw(LosslessUpcaser::new(self.config.raw_case.lossless_mode()));
        self.detect(WireMode::Raw);
    }

    fn process_raw(&mut self) -> bool {
        let Phase::Raw(upcaser) = &mut self.phase else {
            return false;
        };
        if self.input.is_empty() {
            return false;
        }
        if self.config.report_messages {
            self.events.push_back(ServerEvent::Message {
                frame_type: None,
                data: Bytes::copy_from_slice(&self.input),
            });
        }
        // Upper-case straight from the input buffer and keep its allocation
        // for the next read.
        if let Some(bound) = upcaser.max_output_len(self.input.len()) {
            self.output.reserve(bound);
        }
        upcaser.push(&self.input, &mut self.output);
        self.input.clear();
        true
    }

    fn process_frame(&mut self, now: Instant) -> bool {
        let decoder = FrameDecoder::new(self.config.max_data_len);
        let frame = match decoder.decode(&mut self.input) {
            Ok(Some(frame)) => frame,
            Ok(None) => return false,
            Err(too_large) => {
                let header = too_large.header;
                let addresses =
                    ReplyAddresses::for_request(header.src, header.dst, self.local, self.peer);
                let violation = ProtocolViolation::FrameTooLarge {
                    len: header.data_len.into(),
                    limit: too_large.limit.into(),
                };
                self.fatal(addresses, violation, now);
                return true;
            }
        };
        self.stats.frames_in += 1;
        self.stats.frames_in_by_type.add(frame.frame_type);
        self.idle_deadline = now + self.config.idle_timeout;
        if self.config.report_messages {
            self.events.push_back(ServerEvent::Message {
                frame_type: Some(frame.frame_type),
                data: frame.data.clone(),
            });
        }
        let Phase::Framed(session) = &mut self.phase else {
            return false;
        };
        let outcome = session.handle_frame(&frame, self.local, self.peer, &mut self.output);
        self.stats.frames_out += 1;
        self.stats
            .frames_out_by_type
            .add(outcome.reply_type(frame.frame_type));
        match outcome {
            FrameOutcome::Continue => {}
            FrameOutcome::NonFatal(violation) => {
                self.events.push_back(ServerEvent::ProtocolError(violation));
            }
            FrameOutcome::Fatal(violation) => {
                let reason = CloseReason::Fatal(violation.code());
                self.events.push_back(ServerEvent::ProtocolError(violation));
                self.end(reason, now);
            }
            FrameOutcome::Bye => self.end(CloseReason::PeerBye, now),
        }
        true
    }

    /// A fatal error not caused by a particular frame: addressed from the
    /// server's local address to the peer.
    fn fatal_without_frame(&mut self, violation: ProtocolViolation, now: Instant) {
        let addresses = ReplyAddresses {
            src: self.local,
            dst: self.peer,
        };
        self.fatal(addresses, violation, now);
    }

    fn fatal(&mut self, addresses: ReplyAddresses, violation: ProtocolViolation, now: Instant) {
        write_error(&mut self.output, addresses, &violation);
        self.stats.frames_out += 1;
        self.stats.frames_out_by_type.add(FrameType::Error);
        let reason = CloseReason::Fatal(violation.code());
        self.events.push_back(ServerEvent::ProtocolError(violation));
        self.end(reason, now);
    }

    /// Stop processing input; write what is pending, then give the client
    /// the linger to close first.
    fn end(&mut self, reason: CloseReason, now: Instant) {
        self.input = BytesMut::new();
        self.phase = Phase::Ending {
            reason,
            linger_until: None,
        };
        self.after_output_written(now);
    }

    /// Once the last output is all written: close if the client has closed
    /// its side, else start the linger (once).
    fn after_output_written(&mut self, now: Instant) {
        if !self.output.is_empty() {
            return;
        }
        if self.eof {
            return self.close();
        }
        if let Phase::Ending { linger_until, .. } = &mut self.phase {
            linger_until.get_or_insert(now + self.config.linger);
        }
    }

    fn close(&mut self) {
        if let Phase::Ending { reason, .. } = self.phase {
            self.close_as(reason);
        }
    }

    /// Close now, from any phase, dropping unsent output.
    fn close_as(&mut self, reason: CloseReason) {
        let unsent = self.output.len();
        self.input = BytesMut::new();
        self.output = BytesMut::new();
        self.write_deadline = None;
        self.phase = Phase::Closed;
        self.events
            .push_back(ServerEvent::Closed { reason, unsent });
    }
}
