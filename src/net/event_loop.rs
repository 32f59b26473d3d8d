//! One event loop: a thread with its own listeners, connections, timers and
//! read buffer, waiting in `poll` for readiness or the next deadline.
//!
//! Why one loop per core with its own listeners (`SO_REUSEPORT`): the kernel
//! spreads new connections over the loops, and a connection lives and dies
//! on the loop that accepted it, so no loop ever hands work to another
//! (waking a thread on another core costs milliseconds on a busy VM). The
//! loops share only the connection count and the memory budget, both
//! atomics touched when a connection opens, closes or buffers more.
//!
//! Why nothing wakes an idle server: every connection has at most one entry
//! in the timer heap (its earliest deadline), and `poll` sleeps until the
//! first of them; shutdown arrives through a [`Waker`].

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::connection::{Connection, Step};
use super::log_throttle::{self, TcpLine};
use super::metrics::{ConnectionMeter, ServerMetrics, ShardHandle};
use super::proxy::Cidr;
use super::proxy_stage::{HeaderDone, HeaderStage};
use super::server::Shared;
use super::slots::{Admission, Slots};
use super::timers::{TimerKey, Timers};
use super::work::Turn;
use crate::conn::{ServerConfig, ServerConnection};

/// The waker's token; listeners follow, then connections.
const WAKER: Token = Token(0);

/// The read buffer every connection of a loop shares: one read's worth.
const SCRATCH_LEN: usize = 64 * 1024;

/// Readiness events taken from one `poll`.
const EVENTS_PER_POLL: usize = 1024;

/// How long a connection over the limit may take to say which mode it
/// speaks (it gets BUSY or is closed right after), from its accept on.
pub(crate) const BUSY_DEADLINE: Duration = Duration::from_secs(2);

/// While connections wait for the memory budget, how often they retry.
const BUDGET_RETRY: Duration = Duration::from_millis(10);

/// How long to pause accepting after the process ran out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a loop needs to know that every loop of a server shares.
#[derive(Debug)]
pub(crate) struct LoopSettings {
    pub(crate) config: ServerConfig,
    /// `Some(trusted peers, header timeout)` when the PROXY protocol is on.
    pub(crate) proxy_protocol: Option<(Vec<Cidr>, Duration)>,
    /// The counters of `--metrics`, when on.
    pub(crate) metrics: Option<Arc<ServerMetrics>>,
    /// Work units a connection may use in one turn (`super::work`).
    pub(crate) work_per_turn: usize,
}

/// One loop's state. Built on the spawning thread, run on its own.
pub(crate) struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// Connection tokens start after the listeners'.
    first_connection_token: usize,
    connections: Vec<Entry>,
    free: Vec<usize>,
    live: usize,
    slots: Slots,
    timers: Timers,
    /// Connections that used their turn with input still waiting.
    more_to_read: VecDeque<TimerKey>,
    /// Connections waiting for the memory budget.
    budget_blocked: Vec<TimerKey>,
    budget_retry_at: Option<Instant>,
    accept_paused_until: Option<Instant>,
    /// A descriptor to give up when the process has none left.
    spare: Option<std::fs::File>,
    descriptor_drops: u64,
    /// Before this, a dropped connection is counted but not logged.
    descriptor_warning_at: Option<Instant>,
    scratch: Box<[u8]>,
    settings: Arc<LoopSettings>,
    shared: Arc<Shared>,
    shutting_down: bool,
    /// Sockets waiting for their PROXY header (PROXY protocol on).
    headers: Option<HeaderStage>,
    /// This loop's shard of the metrics (metrics on).
    metrics: Option<ShardHandle>,
}

/// A connection slot and its generation (bumped at every reuse, so stale
/// timer entries and queued keys are recognised).
#[derive(Default)]
struct Entry {
    generation: u32,
    connection: Option<Connection>,
}

impl EventLoop {
    /// A loop over `listeners`, one of `loops` of a server limited to
    /// `max_connections`. Returns the loop and the waker that interrupts
    /// its `poll`.
    pub(crate) fn new(
        listeners: Vec<std::net::TcpListener>,
        loops: usize,
        max_connections: usize,
        settings: Arc<LoopSettings>,
        shared: Arc<Shared>,
    ) -> io::Result<(EventLoop, Waker)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let mut mio_listeners = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            listener.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(listener);
            poll.registry()
                .register(&mut listener, Token(1 + index), Interest::READABLE)?;
            mio_listeners.push(listener);
        }
        // The server makes one shard per loop, so each loop gets its own.
        let metrics = settings
            .metrics
            .as_ref()
            .and_then(ServerMetrics::claim_shard);
        let headers = settings.proxy_protocol.clone().map(|(trusted, timeout)| {
            // This loop's share of the connection limit, for sockets that
            // are not connections yet.
            let max_waiting = max_connections.div_ceil(loops.max(1));
            HeaderStage::new(trusted, timeout, max_waiting, metrics.clone())
        });
        let event_loop = EventLoop {
            headers,
            metrics,
            poll,
            first_connection_token: 1 + mio_listeners.len(),
            listeners: mio_listeners,
            connections: Vec::new(),
            free: Vec::new(),
            live: 0,
            slots: Slots::new(max_connections, loops),
            timers: Timers::default(),
            more_to_read: VecDeque::new(),
            budget_blocked: Vec::new(),
            budget_retry_at: None,
            accept_paused_until: None,
            spare: open_spare(),
            descriptor_drops: 0,
            descriptor_warning_at: None,
            scratch: vec![0; SCRATCH_LEN].into_boxed_slice(),
            settings,
            shared,
            shutting_down: false,
        };
        Ok((event_loop, waker))
    }

    /// Serve until shutdown has been asked and every connection is gone.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            if self.shared.is_shutting_down() && !self.shutting_down {
                self.begin_shutdown();
            }
            if self.shutting_down && self.live == 0 {
                return;
            }
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != io::ErrorKind::Interrupted
            {
                error!("event loop stopped: poll failed: {error}");
                return;
            }
            let now = Instant::now();
            for event in events.iter() {
                let token = event.token().0;
                if token == WAKER.0 {
                    continue;
                }
                if HeaderStage::owns(event.token()) {
                    self.header_readable(event.token(), now);
                    continue;
                }
                if token < self.first_connection_token {
                    self.accept(token - 1, now);
                    continue;
                }
                let slot = token - self.first_connection_token;
                if let Some(connection) = self.connection_mut(slot) {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        connection.set_read_ready();
                    }
                    // One waiting for its next turn gets it below, with
                    // the others: not a second one now (SPEC.md §11, "CPU").
                    if !connection.queued_for_turn {
                        self.drive(slot, now);
                    }
                }
            }
            self.run_turn_queue(now);
            self.run_timers(now);
            self.retry_budget_blocked(now);
            if let Some(headers) = &mut self.headers {
                headers.expire(self.poll.registry(), now);
            }
            log_throttle::flush_tcp_lines(now);
        }
    }

    /// How long `poll` may sleep: not at all while connections have input
    /// left from their turn, else until the first deadline.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.more_to_read.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.timers.next_deadline(),
            self.budget_retry_at,
            self.accept_paused_until,
            self.headers.as_ref().and_then(HeaderStage::next_deadline),
            log_throttle::next_tcp_flush(),
        ];
        let first = deadlines.into_iter().flatten().min()?;
        Some(first.saturating_duration_since(Instant::now()))
    }

    fn connection_mut(&mut self, slot: usize) -> Option<&mut Connection> {
        self.connections.get_mut(slot)?.connection.as_mut()
    }

    fn key(&self, slot: usize) -> TimerKey {
        TimerKey {
            slot,
            generation: self.connections[slot].generation,
        }
    }

    /// The connection `key` names, if it is still the one in that slot.
    fn current_mut(&mut self, key: TimerKey) -> Option<&mut Connection> {
        let entry = self.connections.get_mut(key.slot)?;
        if entry.generation != key.generation {
            return None;
        }
        entry.connection.as_mut()
    }

    /// Accept every connection waiting on listener `index`.
    fn accept(&mut self, index: usize, now: Instant) {
        if self.shutting_down || self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(error) if is_out_of_descriptors(&error) && self.has_spare() => {
                    // EMFILE comes before the queue is looked at: stop once
                    // it turns out to be empty.
                    if !self.drop_one_waiting(index, now) {
                        return;
                    }
                }
                Err(error) => {
                    // Something else, or no spare left: pause instead of
                    // spinning on a listener that stays readable.
                    warn!(
                        "accept failed: {error}; pausing accepts for {} ms",
                        ACCEPT_PAUSE.as_millis()
                    );
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Whether the spare descriptor is there, opening it again if it could
    /// not be after its last use (a descriptor may have been freed since).
    fn has_spare(&mut self) -> bool {
        if self.spare.is_none() {
            self.spare = open_spare();
        }
        self.spare.is_some()
    }

    /// Out of descriptors: give up the spare one to accept a waiting
    /// connection and close it at once, so that its client learns it was
    /// not served instead of waiting in the queue (the nginx and libev
    /// trick). The limit fitted to the descriptors (`upcase serve`) makes
    /// this rare.
    ///
    /// Whether a connection was waiting (and was dropped).
    fn drop_one_waiting(&mut self, index: usize, now: Instant) -> bool {
        self.spare = None;
        let dropped = match self.listeners.get(index).map(TcpListener::accept) {
            // Closed at once: its descriptor becomes the spare again.
            Some(Ok((stream, peer))) => {
                drop(stream);
                Some(peer)
            }
            _ => None,
        };
        self.spare = open_spare();
        match dropped {
            Some(peer) => {
                self.dropped_for_descriptors(peer, now);
                true
            }
            None => false,
        }
    }

    /// Count a connection closed at once for want of descriptors; log it,
    /// at most once a second.
    fn dropped_for_descriptors(&mut self, peer: SocketAddr, now: Instant) {
        self.descriptor_drops += 1;
        if self.descriptor_warning_at.is_none_or(|at| now >= at) {
            warn!(
                "{peer} dropped: no file descriptor left for it ({} dropped so far); \
                 lower --max-connections or raise the descriptor limit",
                self.descriptor_drops
            );
            self.descriptor_warning_at = Some(now + Duration::from_secs(1));
        }
    }

    /// Give an accepted socket a slot: served, refused (BUSY), or dropped.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        if !self.shared.has_descriptor_for_another() {
            return self.dropped_for_descriptors(peer, now);
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(error) => return warn!("{peer}: cannot read the local address: {error}"),
        };
        let _ = stream.set_nodelay(true);
        match &mut self.headers {
            // The connection's addresses are the PROXY header's: wait for it.
            Some(headers) => headers.accept(self.poll.registry(), stream, local, peer, now),
            None => _ = self.open(stream, local, peer, now, ""),
        }
    }

    /// A socket's PROXY header may have arrived: once it has, serve the
    /// connection with the header's addresses, from the bytes after it.
    fn header_readable(&mut self, token: Token, now: Instant) {
        let Some(headers) = &mut self.headers else {
            return;
        };
        let Some(HeaderDone {
            stream,
            local,
            peer,
            via,
        }) = headers.readable(self.poll.registry(), token, &mut self.scratch)
        else {
            return;
        };
        if let Some(slot) = self.open(stream, local, peer, now, &via) {
            // What followed the header may be in the socket already, and
            // edge-triggered readiness will not say so again.
            if let Some(connection) = self.connection_mut(slot) {
                connection.set_read_ready();
            }
            self.drive(slot, now);
        }
    }

    /// Serve, refuse (BUSY) or drop a connection from `peer` to `local`;
    /// `via` ends its log line (` via …`: how a PROXY header named these
    /// addresses). Its slot, unless dropped.
    fn open(
        &mut self,
        stream: TcpStream,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
        via: &str,
    ) -> Option<usize> {
        let settings = Arc::clone(&self.settings);
        let config = &settings.config;
        let (core, refusing) = match self.slots.admit(peer.ip(), self.shared.limit()) {
            admission @ (Admission::Serve | Admission::Evict { .. }) => {
                if let Admission::Evict { victim } = admission {
                    self.evict(victim, peer, now);
                }
                if let Some(note) = TcpLine::Connected.admit() {
                    info!("{peer} connected to {local}{via}{note}");
                }
                let core = ServerConnection::new(config.clone(), local, peer, now);
                (core, false)
            }
            Admission::Refuse { limit } => {
                if let Some(note) = TcpLine::OverLimit.admit() {
                    info!("{peer} connected{via} over the connection limit of {limit}{note}");
                }
                let mut config = config.clone();
                config.idle_timeout = config.idle_timeout.min(BUSY_DEADLINE);
                config.linger = config.linger.min(BUSY_DEADLINE);
                let core = ServerConnection::new_busy(config, local, peer, now, limit);
                (core, true)
            }
            Admission::Drop { limit } => {
                if let Some(shard) = &self.metrics {
                    shard.connection_dropped();
                }
                if let Some(note) = TcpLine::DroppedOverLimit.admit() {
                    info!("{peer} dropped: over the connection limit of {limit}{note}");
                }
                return None;
            }
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.connections.push(Entry::default());
                self.connections.len() - 1
            }
        };
        let token = Token(self.first_connection_token + slot);
        let mut connection = Connection::new(stream, core, peer, refusing);
        if let Err(error) = self.poll.registry().register(
            connection.stream_mut(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.slots.release(None, refusing, self.shared.limit());
            self.free.push(slot);
            warn!("{peer}: cannot register the connection: {error}");
            return None;
        }
        if let Some(shard) = &self.metrics {
            connection.set_meter(ConnectionMeter::accepted(shard, refusing));
        }
        self.connections[slot].connection = Some(connection);
        if !refusing {
            self.slots.enqueue(slot, peer.ip(), now);
        }
        self.live += 1;
        self.shared.connection_opened();
        // A client usually sends right away; the readable event will say so.
        self.after_drive(slot, Step::Wait, now);
        Some(slot)
    }

    /// Make room for `newcomer`: the connection in `victim` is told BUSY
    /// (framed) or finishes (raw) and closes.
    fn evict(&mut self, victim: usize, newcomer: SocketAddr, now: Instant) {
        let Some(connection) = self.connection_mut(victim) else {
            return;
        };
        if let Some(note) = TcpLine::Evicted.admit() {
            info!(
                "{} evicted (server full): it had done the least of those a newcomer may take (SPEC §9.3), to make room for {newcomer}{note}",
                connection.peer()
            );
        }
        connection.evict(now);
        self.drive(victim, now);
    }

    /// Drive one connection and act on what it needs next.
    fn drive(&mut self, slot: usize, now: Instant) {
        let Some(entry) = self.connections.get_mut(slot) else {
            return;
        };
        let Some(connection) = entry.connection.as_mut() else {
            return;
        };
        let turn = Turn::new(self.settings.work_per_turn);
        let step = connection.drive(now, &mut self.scratch, self.shared.budget(), turn);
        self.after_drive(slot, step, now);
    }

    fn after_drive(&mut self, slot: usize, step: Step, now: Instant) {
        if step == Step::Closed {
            return self.remove(slot);
        }
        let key = self.key(slot);
        let Some(connection) = self.connections[slot].connection.as_mut() else {
            return;
        };
        if connection.has_ended() {
            self.slots.dequeue(slot);
        } else if let Some(activity) = connection.take_activity() {
            self.slots.touch(slot, now, activity);
        }
        match step {
            Step::MoreToRead if !connection.queued_for_turn => {
                connection.queued_for_turn = true;
                self.more_to_read.push_back(key);
            }
            Step::BudgetBlocked if !connection.queued_for_budget => {
                connection.queued_for_budget = true;
                self.budget_blocked.push(key);
                if self.budget_retry_at.is_none() {
                    self.budget_retry_at = Some(now + BUDGET_RETRY);
                }
            }
            _ => {}
        }
        self.arm_timer(slot);
    }

    /// Make sure the heap holds an entry at or before the connection's deadline.
    fn arm_timer(&mut self, slot: usize) {
        let key = self.key(slot);
        let Some(connection) = self.connections[slot].connection.as_mut() else {
            return;
        };
        let Some(deadline) = connection.deadline() else {
            return;
        };
        if connection.armed.is_some_and(|armed| armed <= deadline) {
            return;
        }
        connection.armed = Some(deadline);
        self.timers.arm(deadline, key);
    }

    fn remove(&mut self, slot: usize) {
        let entry = &mut self.connections[slot];
        if let Some(mut connection) = entry.connection.take() {
            let _ = self.poll.registry().deregister(connection.stream_mut());
            self.slots
                .release(Some(slot), connection.is_refusing(), self.shared.limit());
            entry.generation = entry.generation.wrapping_add(1);
            self.free.push(slot);
            self.live -= 1;
            self.shared.connection_closed();
        }
    }

    /// Connections that used up their turn get another.
    fn run_turn_queue(&mut self, now: Instant) {
        for _ in 0..self.more_to_read.len() {
            let Some(key) = self.more_to_read.pop_front() else {
                break;
            };
            if let Some(connection) = self.current_mut(key) {
                connection.queued_for_turn = false;
                self.drive(key.slot, now);
            }
        }
    }

    /// Drive every connection whose armed deadline has come.
    fn run_timers(&mut self, now: Instant) {
        while let Some((when, key)) = self.timers.pop_due(now) {
            let Some(connection) = self.current_mut(key) else {
                continue;
            };
            if connection.armed != Some(when) {
                continue; // re-armed earlier since: a stale entry
            }
            connection.armed = None;
            self.drive(key.slot, now);
        }
        let connections = &self.connections;
        self.timers.purge_if_bloated(self.live, |when, key| {
            connections.get(key.slot).is_some_and(|entry| {
                entry.generation == key.generation
                    && entry
                        .connection
                        .as_ref()
                        .is_some_and(|c| c.armed == Some(when))
            })
        });
        if self.accept_paused_until.is_some_and(|until| until <= now) {
            self.accept_paused_until = None;
            for index in 0..self.listeners.len() {
                self.accept(index, now);
            }
        }
    }

    /// Let budget-blocked connections try again once the budget has room.
    fn retry_budget_blocked(&mut self, now: Instant) {
        if self.budget_retry_at.is_none_or(|at| at > now) {
            return;
        }
        self.budget_retry_at = None;
        if !self.shared.budget().has_room() {
            if !self.budget_blocked.is_empty() {
                self.budget_retry_at = Some(now + BUDGET_RETRY);
            }
            return;
        }
        for key in std::mem::take(&mut self.budget_blocked) {
            if let Some(connection) = self.current_mut(key) {
                connection.queued_for_budget = false;
                self.drive(key.slot, now);
            }
        }
    }

    /// Stop accepting, and tell every connection to answer what it has
    /// received, say BYE (framed) or flush (raw), and close.
    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        if let Some(headers) = &mut self.headers {
            headers.close_all(self.poll.registry());
        }
        let now = Instant::now();
        for slot in 0..self.connections.len() {
            let Some(connection) = self.connections[slot].connection.as_mut() else {
                continue;
            };
            if let Err(error) = connection.begin_shutdown(now, &mut self.scratch) {
                connection.close_now(&format!("socket error: {error}"), self.shared.budget());
                self.remove(slot);
                continue;
            }
            self.drive(slot, now);
        }
    }
}

/// The spare descriptor (see `EventLoop::drop_one_waiting`).
fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// EMFILE (the process's limit) or ENFILE (the system's), the same numbers
/// on Linux, the BSDs and macOS.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24))
}
