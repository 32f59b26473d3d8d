//! One event-loop thread: many clients on one `mio` poll, like wrk.
//!
//! ```text
//!   connect phase: register every socket, wait until each is connected,
//!                  failed, or out of time
//!   start gate:    every thread waits, so the clock starts when all are
//!   run phase:     on readiness, a client reads its replies, issues the
//!                  requests its budget allows and writes them; every tick
//!                  it checks its timeouts; the loop ends when all are done,
//!                  at the run's end (--duration + one timeout: a client
//!                  still owed a reply then fails), or on Ctrl-C
//! ```
//!
//! Readiness is edge-triggered, so a client drains what it is told about
//! (see [`LoadClient::pump`]).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Poll, Registry, Token};

use super::budget::{Budget, Settings};
use super::tally::{ClientEnd, Live, Tally};
use super::workload::Workload;

/// How often at most clients check their timeouts (more often for short
/// UDP reply timeouts: a quarter of the timeout).
const TICK: Duration = Duration::from_millis(50);
/// The per-thread read buffer: one UDP datagram of any size fits.
const SCRATCH_LEN: usize = 64 * 1024;

/// What a client's handlers share within one thread.
pub struct Turn<'a> {
    /// The request and its expected reply.
    pub workload: &'a Workload,
    /// The thread's counts.
    pub tally: &'a mut Tally,
    /// Where sockets are read into (a connection holds only the bytes of an
    /// incomplete reply).
    pub scratch: &'a mut [u8],
}

/// A TCP connection or a UDP socket driven by the loop.
pub trait LoadClient {
    /// Register the socket with `registry` under `token`; a client whose
    /// socket could not be opened has ended already and registers nothing.
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;
    /// Whether the socket is connected, checking after a readiness event.
    /// A failed connect ends the client.
    fn check_connected(&mut self) -> bool;
    /// End the client with `error`.
    fn fail(&mut self, error: String);
    /// Start issuing requests within `budget` (and read and write what
    /// readiness events, ignored while connecting, may have announced).
    fn start(&mut self, budget: Budget, turn: &mut Turn);
    /// Read every reply available, issue the requests allowed, write them.
    fn pump(&mut self, turn: &mut Turn);
    /// Check the timeouts at `now`.
    fn tick(&mut self, now: Instant, turn: &mut Turn);
    /// End now, without an error: the run was interrupted (Ctrl-C).
    fn stop(&mut self);
    /// Whether it has ended (done, or failed).
    fn is_done(&self) -> bool;
    /// How it ended.
    fn end(&self) -> ClientEnd;
}

/// What every [`LoadClient::register`] does: register the client's socket,
/// if it has one, for reading and writing.
pub fn register_socket<S: Source>(
    socket: Option<&mut S>,
    registry: &Registry,
    token: Token,
) -> io::Result<()> {
    match socket {
        Some(socket) => registry.register(socket, token, Interest::READABLE | Interest::WRITABLE),
        None => Ok(()),
    }
}

/// What one thread measured: its counts and how each of its clients ended.
pub struct ThreadResult {
    /// Counts summed over its clients.
    pub tally: Tally,
    /// One per client, in the order given.
    pub ends: Vec<ClientEnd>,
}

/// Where event-loop threads wait once their clients are connected, so that
/// the clock starts when every client is.
#[derive(Debug, Default)]
pub struct StartGate {
    /// Threads arrived; `Some(run)` once opened (`run: false` cancels).
    state: Mutex<(usize, Option<bool>)>,
    changed: Condvar,
}

impl StartGate {
    /// Arrive, and wait until the gate opens: whether to run.
    pub fn arrive_and_wait(&self) -> bool {
        let mut state = self.state.lock().expect("gate lock");
        state.0 += 1;
        self.changed.notify_all();
        loop {
            if let Some(run) = state.1 {
                return run;
            }
            state = self.changed.wait(state).expect("gate lock");
        }
    }

    /// Wait until `threads` threads have arrived.
    pub fn wait_for(&self, threads: usize) {
        let mut state = self.state.lock().expect("gate lock");
        while state.0 < threads {
            state = self.changed.wait(state).expect("gate lock");
        }
    }

    /// Let every thread go (`run`), or send them home (`!run`).
    pub fn open(&self, run: bool) {
        self.state.lock().expect("gate lock").1 = Some(run);
        self.changed.notify_all();
    }
}

/// Drive `clients` (each with its share of the requests) from connect to
/// end. Arrives at `gate` exactly once, whatever fails, so that the run is
/// never left waiting for this thread.
pub fn drive<C: LoadClient>(
    mut clients: Vec<(C, u64)>,
    settings: Settings,
    workload: &Workload,
    gate: &StartGate,
    live: &Live,
) -> ThreadResult {
    let mut tally = Tally::default();
    let mut poll = match Poll::new() {
        Ok(poll) => Some(poll),
        Err(error) => {
            for (client, _) in &mut clients {
                client.fail(format!("cannot create an event loop: {error}"));
            }
            None
        }
    };
    if let Some(poll) = &mut poll {
        connect_all(poll, &mut clients, settings.timeout, live);
    }
    if !gate.arrive_and_wait() {
        for (client, _) in &mut clients {
            client.fail("the run was cancelled".into());
        }
        poll = None;
    }
    if let Some(poll) = &mut poll {
        let start = Instant::now();
        let mut scratch = vec![0; SCRATCH_LEN];
        let mut turn = Turn {
            workload,
            tally: &mut tally,
            scratch: &mut scratch,
        };
        for (client, requests) in &mut clients {
            if !client.is_done() {
                client.start(Budget::new(&settings, *requests, start), &mut turn);
            }
        }
        let tick = (settings.timeout / 4).clamp(Duration::from_millis(1), TICK);
        // One tick of grace: a reply due just at the end is not cut off by
        // the tick that happens to see the end first.
        let run_end = settings
            .duration
            .map(|duration| start + duration + settings.timeout + tick);
        run_all(poll, &mut clients, &mut turn, live, tick, run_end);
    }
    tally.publish(live);
    ThreadResult {
        tally,
        ends: clients.iter().map(|(client, _)| client.end()).collect(),
    }
}

/// Register every client and wait until each is connected or ended; those
/// still connecting after `timeout` fail, and on Ctrl-C (`live.stop`) stop.
fn connect_all<C: LoadClient>(
    poll: &mut Poll,
    clients: &mut [(C, u64)],
    timeout: Duration,
    live: &Live,
) {
    let mut connecting = vec![false; clients.len()];
    let mut left_to_connect = 0;
    for (index, (client, _)) in clients.iter_mut().enumerate() {
        if let Err(error) = client.register(poll.registry(), Token(index)) {
            client.fail(format!("cannot register a socket: {error}"));
        } else if !client.is_done() && !client.check_connected() && !client.is_done() {
            connecting[index] = true;
            left_to_connect += 1;
        }
    }
    let deadline = Instant::now() + timeout;
    let mut events = Events::with_capacity(1024);
    while left_to_connect > 0 {
        if live.stop.load(Ordering::Relaxed) {
            for (index, (client, _)) in clients.iter_mut().enumerate() {
                if connecting[index] {
                    client.stop();
                }
            }
            return;
        }
        // Wake at least every tick to look at the stop flag.
        let left = deadline.saturating_duration_since(Instant::now());
        let polled = if left.is_zero() {
            Err(format!(
                "cannot connect within {} s (a slow or overloaded server? raise --timeout)",
                timeout.as_secs_f64()
            ))
        } else {
            match poll.poll(&mut events, Some(left.min(TICK))) {
                // A signal (Ctrl-C): the loop looks at the stop flag.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                polled => polled.map_err(|error| format!("the event loop failed: {error}")),
            }
        };
        if let Err(error) = polled {
            for (index, (client, _)) in clients.iter_mut().enumerate() {
                if connecting[index] {
                    client.fail(error.clone());
                }
            }
            return;
        }
        for event in &events {
            let index = event.token().0;
            let client = &mut clients[index].0;
            if connecting[index] && (client.check_connected() || client.is_done()) {
                connecting[index] = false;
                left_to_connect -= 1;
            }
        }
    }
}

/// Pump each client on its readiness and tick them all every `tick` until
/// every one is done, `run_end` passes (those still running fail: a server
/// cannot keep a timed run going past it), or `live.stop` is set (those
/// still running stop).
fn run_all<C: LoadClient>(
    poll: &mut Poll,
    clients: &mut [(C, u64)],
    turn: &mut Turn,
    live: &Live,
    tick: Duration,
    run_end: Option<Instant>,
) {
    let mut events = Events::with_capacity(1024);
    let mut running = clients
        .iter()
        .filter(|(client, _)| !client.is_done())
        .count();
    let mut next_tick = Instant::now() + tick;
    while running > 0 {
        let wait = next_tick.saturating_duration_since(Instant::now());
        if let Err(error) = poll.poll(&mut events, Some(wait)) {
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            for (client, _) in clients.iter_mut().filter(|(client, _)| !client.is_done()) {
                client.fail(format!("the event loop failed: {error}"));
            }
            return;
        }
        for event in &events {
            let client = &mut clients[event.token().0].0;
            if !client.is_done() {
                client.pump(turn);
                running -= usize::from(client.is_done());
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            for (client, _) in clients.iter_mut().filter(|(client, _)| !client.is_done()) {
                client.tick(now, turn);
                running -= usize::from(client.is_done());
            }
            next_tick = now + tick;
        }
        let stopped = live.stop.load(Ordering::Relaxed);
        let over = run_end.is_some_and(|end| now >= end);
        if stopped || over {
            for (client, _) in clients.iter_mut().filter(|(client, _)| !client.is_done()) {
                if stopped {
                    client.stop();
                } else {
                    client.fail(
                        "still owed a reply at the run's end (--duration plus one reply timeout): the run does not wait longer"
                            .into(),
                    );
                }
            }
            running = 0;
        }
        turn.tally.publish(live);
    }
}
