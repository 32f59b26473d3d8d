//! One client connection: issue requests, time each reply, check it
//! against the oracle.
//!
//! Blocking sockets, one thread per connection. When the bytes in flight
//! (pipeline × request or reply size) could fill the kernel's socket buffers,
//! a second thread writes while the first reads: otherwise client and server
//! could both block in `write` with full buffers and never read again.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

use super::check::{Check, check_frame, compare};
use super::histogram::Histogram;
use super::workload::{WireMode, Workload};
use upcase::wire::{FrameDecoder, PREFACE, PREFACE_LEN, PrefaceMatch, VERSION, match_preface};

/// Above this many bytes in flight per connection, reading and writing
/// happen on separate threads (well below Linux's default 128 KiB receive
/// buffer, so the one-thread loop can never deadlock).
const ONE_THREAD_LIMIT: usize = 32 * 1024;
/// Stack size of client threads: they keep their buffers on the heap, and
/// small stacks let a thousand of them run.
pub const STACK_SIZE: usize = 256 * 1024;

/// When a connection stops issuing requests.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Issue no request after this instant (`None`: no time limit).
    pub deadline: Option<Instant>,
    /// Issue at most this many requests.
    pub requests: u64,
}

impl Budget {
    /// The budget `settings` give, its time counted from now.
    pub fn starting_now(settings: &Settings) -> Budget {
        Budget {
            deadline: settings.duration.map(|duration| Instant::now() + duration),
            requests: settings.requests,
        }
    }

    /// Whether request number `issued` (counting from 0) may be sent.
    pub fn allows(&self, issued: u64) -> bool {
        issued < self.requests
            && self
                .deadline
                .is_none_or(|deadline| Instant::now() < deadline)
    }
}

/// How a connection behaves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Requests in flight.
    pub pipeline: usize,
    /// TCP: the connect and reply timeout. UDP: how long a request waits
    /// for its reply before it counts as lost.
    pub timeout: Duration,
    /// The run's length, counted from when every client has connected.
    pub duration: Option<Duration>,
    /// Requests for this connection.
    pub requests: u64,
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Replies received.
    pub replies: AtomicU64,
    /// Replies that differ from the oracle.
    pub wrong: AtomicU64,
}

/// What one connection measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every reply, in nanoseconds.
    pub latencies: Histogram,
    /// Replies received (right or wrong).
    pub replies: u64,
    /// Replies that differ from the oracle.
    pub wrong: u64,
    /// What the first wrong reply looked like.
    pub first_wrong: Option<String>,
    /// What ended the connection early (failed connect, I/O error, timeout).
    pub error: Option<String>,
    /// Whether the connection was established.
    pub connected: bool,
    /// UDP: requests that got no reply within the timeout.
    pub lost: u64,
    /// UDP: replies to requests already answered or counted as lost.
    pub late: u64,
}

impl Outcome {
    /// Count a reply to the request sent at `sent`, and time it: its
    /// latency ends at `received`, when its last byte was read (checking it
    /// against the oracle is the client's work, not the server's).
    pub fn record(&mut self, sent: Instant, received: Instant, check: Check, live: &Live) {
        let latency = received.saturating_duration_since(sent);
        self.latencies.record(latency.as_nanos() as u64);
        self.replies += 1;
        live.replies.fetch_add(1, Ordering::Relaxed);
        self.count_wrong(check, live);
    }

    /// Count a UDP reply that answers no request in flight: it is not
    /// timed, but a wrong one is still a wrong reply.
    pub fn late(&mut self, check: Check, live: &Live) {
        self.late += 1;
        self.count_wrong(check, live);
    }

    fn count_wrong(&mut self, check: Check, live: &Live) {
        if let Check::Wrong(what) = check {
            self.wrong += 1;
            live.wrong.fetch_add(1, Ordering::Relaxed);
            self.first_wrong.get_or_insert(what);
        }
    }

    fn fail(&mut self, error: &io::Error, timeout: Duration) {
        if self.error.is_none() {
            self.error = Some(describe(error, timeout));
        }
    }
}

/// Where clients wait after connecting, so that the clock starts when all
/// of them are connected.
#[derive(Debug, Default)]
pub struct StartGate {
    /// Clients arrived, and whether the gate is open.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl StartGate {
    /// Count this client as arrived and wait until the gate opens.
    pub fn arrive_and_wait(&self) {
        let mut state = self.state.lock().expect("gate lock");
        state.0 += 1;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).expect("gate lock");
        }
    }

    /// Wait until `clients` clients have arrived.
    pub fn wait_for(&self, clients: usize) {
        let mut state = self.state.lock().expect("gate lock");
        while state.0 < clients {
            state = self.changed.wait(state).expect("gate lock");
        }
    }

    /// Let every client go (and any that arrives later).
    pub fn open(&self) {
        self.state.lock().expect("gate lock").1 = true;
        self.changed.notify_all();
    }
}

/// Wait at `start` whether or not the socket opened (so that the clock
/// starts once every client is ready), then return the socket, or note in
/// `outcome` why there is none (`failed` words the error).
pub fn wait_ready<S>(
    opened: io::Result<S>,
    start: &StartGate,
    outcome: &mut Outcome,
    failed: impl FnOnce(io::Error) -> String,
) -> Option<S> {
    start.arrive_and_wait();
    match opened {
        Ok(socket) => {
            outcome.connected = true;
            Some(socket)
        }
        Err(error) => {
            outcome.error = Some(failed(error));
            None
        }
    }
}

/// Connect, wait at `start` until every client is connected, then run.
pub fn run(
    addr: SocketAddr,
    workload: &Workload,
    settings: Settings,
    start: &StartGate,
    live: &Live,
) -> Outcome {
    let mut outcome = Outcome::default();
    let stream = TcpStream::connect_timeout(&addr, settings.timeout).and_then(|stream| {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(settings.timeout))?;
        stream.set_write_timeout(Some(settings.timeout))?;
        Ok(stream)
    });
    let failed = |error| format!("cannot connect to {addr}: {error}");
    let Some(stream) = wait_ready(stream, start, &mut outcome, failed) else {
        return outcome;
    };
    let budget = Budget::starting_now(&settings);
    if let Err(error) = exchange(
        stream,
        workload,
        settings.pipeline,
        budget,
        live,
        &mut outcome,
    ) {
        outcome.fail(&error, settings.timeout);
    }
    outcome
}

/// Write the preface (framed mode), then send requests and check their
/// replies, on one thread or, when the bytes in flight could fill the socket
/// buffers, two.
fn exchange(
    stream: TcpStream,
    workload: &Workload,
    pipeline: usize,
    budget: Budget,
    live: &Live,
    outcome: &mut Outcome,
) -> io::Result<()> {
    // Reads and writes go through `&TcpStream` (std implements both for
    // it): one descriptor per connection, whichever thread uses it.
    let mut stream = &stream;
    if workload.mode == WireMode::Framed {
        stream.write_all(&PREFACE)?;
    }
    let mut replies = ReplyReader::new(stream, workload);
    let receive = |sent| {
        let (received, check) = replies.next()?;
        outcome.record(sent, received, check, live);
        Ok(())
    };
    let in_flight = pipeline * workload.request.len().max(workload.expected.len());
    if in_flight <= ONE_THREAD_LIMIT {
        one_thread(stream, &workload.request, pipeline, budget, receive)
    } else {
        two_threads(stream, &workload.request, pipeline, budget, receive)
    }
}

/// Keep `pipeline` requests in flight, writing and then reading on this thread.
/// `receive` reads and counts the reply to the request sent at the instant given.
fn one_thread(
    mut stream: &TcpStream,
    request: &[u8],
    pipeline: usize,
    budget: Budget,
    mut receive: impl FnMut(Instant) -> io::Result<()>,
) -> io::Result<()> {
    let mut in_flight = VecDeque::with_capacity(pipeline);
    let mut issued = 0;
    loop {
        while in_flight.len() < pipeline && budget.allows(issued) {
            in_flight.push_back(Instant::now());
            stream.write_all(request)?;
            issued += 1;
        }
        let Some(sent) = in_flight.pop_front() else {
            return Ok(());
        };
        receive(sent)?;
    }
}

/// Like [`one_thread`], with a writer thread that sends a request for each
/// credit while this thread reads the replies and hands credits back.
fn two_threads(
    stream: &TcpStream,
    request: &[u8],
    pipeline: usize,
    budget: Budget,
    mut receive: impl FnMut(Instant) -> io::Result<()>,
) -> io::Result<()> {
    let (credit_tx, credit_rx) = mpsc::channel::<()>();
    let (sent_tx, sent_rx) = mpsc::channel::<Instant>();
    for _ in 0..pipeline {
        credit_tx.send(()).expect("the receiver is alive");
    }
    thread::scope(|scope| {
        let write = move || -> io::Result<()> {
            let mut write_half = stream;
            let mut issued = 0;
            while budget.allows(issued) && credit_rx.recv().is_ok() {
                if sent_tx.send(Instant::now()).is_err() {
                    break;
                }
                write_half.write_all(request)?;
                issued += 1;
            }
            Ok(())
        };
        let writer =
            thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, move || {
                    let result = write();
                    if result.is_err() {
                        // Wake the reader, which may wait for a reply that will not come.
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    result
                })?;
        let mut read_result = Ok(());
        while let Ok(sent) = sent_rx.recv() {
            if let Err(error) = receive(sent) {
                read_result = Err(error);
                let _ = stream.shutdown(Shutdown::Both);
                break;
            }
            let _ = credit_tx.send(());
        }
        drop(credit_tx);
        drop(sent_rx);
        let write_result = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        // The writer's error explains the reader's (a reset, a shut-down socket).
        write_result.and(read_result)
    })
}

/// Reads replies off the socket, one at a time, and checks them.
enum ReplyReader<'a> {
    Raw {
        input: BufReader<&'a TcpStream>,
        reply: Vec<u8>,
        expected: &'a [u8],
    },
    Framed {
        stream: &'a TcpStream,
        input: BytesMut,
        chunk: Vec<u8>,
        decoder: FrameDecoder,
        preface_seen: bool,
        workload: &'a Workload,
    },
}

impl<'a> ReplyReader<'a> {
    fn new(stream: &'a TcpStream, workload: &'a Workload) -> ReplyReader<'a> {
        let chunk_len = (workload.expected.len() + 64).clamp(4096, 64 * 1024);
        match workload.mode {
            WireMode::Raw => ReplyReader::Raw {
                input: BufReader::with_capacity(chunk_len, stream),
                reply: Vec::with_capacity(workload.expected.len()),
                expected: &workload.expected,
            },
            WireMode::Framed => ReplyReader::Framed {
                stream,
                input: BytesMut::with_capacity(chunk_len),
                chunk: vec![0; chunk_len],
                decoder: FrameDecoder::new(
                    u32::try_from(workload.expected.len().max(1 << 20)).unwrap_or(u32::MAX),
                ),
                preface_seen: false,
                workload,
            },
        }
    }

    /// Read the next reply and check it; return when its last byte was
    /// read, and the check. Raw replies end at a newline (the request's only
    /// one, which upper case keeps).
    fn next(&mut self) -> io::Result<(Instant, Check)> {
        match self {
            ReplyReader::Raw {
                input,
                reply,
                expected,
            } => {
                // A reply is a line, whatever its length: a wrong one is seen
                // at once instead of waiting for bytes that never come.
                reply.clear();
                input.read_until(b'\n', reply)?;
                if reply.last() != Some(&b'\n') {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok((Instant::now(), compare(expected, reply)))
            }
            ReplyReader::Framed {
                stream,
                input,
                chunk,
                decoder,
                preface_seen,
                workload,
            } => loop {
                if !*preface_seen {
                    match match_preface(input) {
                        PrefaceMatch::Partial => {}
                        PrefaceMatch::Mismatch => {
                            return Err(io::Error::other(
                                "the server did not answer with the UPCASE/1 preface \
                                 (is it a raw-only server? try --mode raw)",
                            ));
                        }
                        PrefaceMatch::Complete { version } if version != VERSION => {
                            return Err(io::Error::other(format!(
                                "the server speaks UPCASE version {version}, not {VERSION}"
                            )));
                        }
                        PrefaceMatch::Complete { .. } => {
                            input.advance(PREFACE_LEN);
                            *preface_seen = true;
                        }
                    }
                }
                if *preface_seen {
                    match decoder.decode(input) {
                        Ok(Some(frame)) => {
                            let received = Instant::now();
                            return Ok((
                                received,
                                check_frame(workload, frame.frame_type, frame.flags.0, &frame.data),
                            ));
                        }
                        Ok(None) => {}
                        Err(too_large) => return Err(io::Error::other(too_large.to_string())),
                    }
                }
                let n = stream.read(chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                input.extend_from_slice(&chunk[..n]);
            },
        }
    }
}

/// An I/O error in words a user can act on.
fn describe(error: &io::Error, timeout: Duration) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "no reply within {} s (a slow server? raise --timeout)",
            timeout.as_secs_f64()
        ),
        io::ErrorKind::UnexpectedEof => "the server closed the connection before replying".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::workload::{Expect, PayloadType};
    use std::net::TcpListener;

    /// A server that answers every line with `reply` (all reads and writes
    /// time out, so a broken test fails instead of hanging).
    fn serve_lines_with(reply: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut lines = io::BufRead::split(BufReader::new(stream), b'\n');
            while let Some(Ok(mut line)) = lines.next() {
                line.push(b'\n');
                if writer.write_all(&reply(&line)).is_err() {
                    break;
                }
            }
        });
        addr
    }

    fn run_against(addr: SocketAddr, pipeline: usize, size: usize) -> Outcome {
        let workload =
            Workload::new(WireMode::Raw, PayloadType::Text, size, Expect::Upper).unwrap();
        let settings = Settings {
            pipeline,
            timeout: Duration::from_secs(5),
            duration: None,
            requests: 20,
        };
        let gate = StartGate::default();
        gate.open();
        run(addr, &workload, settings, &gate, &Live::default())
    }

    #[test]
    fn right_replies_are_counted_and_timed() {
        let addr = serve_lines_with(|line| String::from_utf8_lossy(line).to_uppercase().into());
        let outcome = run_against(addr, 3, 64);
        assert_eq!((outcome.replies, outcome.wrong), (20, 0));
        assert_eq!(outcome.latencies.count(), 20);
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn two_thread_mode_gets_every_reply() {
        let addr = serve_lines_with(|line| String::from_utf8_lossy(line).to_uppercase().into());
        let outcome = run_against(addr, 4, 20_000);
        assert_eq!((outcome.replies, outcome.wrong), (20, 0));
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn framed_replies_of_the_server_are_right_on_one_thread_and_two() {
        let server = upcase::net::Server::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .bind()
            .unwrap();
        let addr = server.local_addrs()[0];
        let server = server.spawn().unwrap();
        let gate = StartGate::default();
        gate.open();
        // 64 bytes × 3 in flight fits one thread; 20 000 × 4 needs two.
        for (pipeline, size) in [(3, 64), (4, 20_000)] {
            let workload =
                Workload::new(WireMode::Framed, PayloadType::Text, size, Expect::Upper).unwrap();
            let settings = Settings {
                pipeline,
                timeout: Duration::from_secs(5),
                duration: None,
                requests: 20,
            };
            let outcome = run(addr, &workload, settings, &gate, &Live::default());
            assert_eq!(outcome.error, None, "size {size}");
            assert_eq!((outcome.replies, outcome.wrong), (20, 0), "size {size}");
            assert_eq!(outcome.latencies.count(), 20, "size {size}");
        }
        server.begin_shutdown();
        assert!(server.wait(Some(Duration::from_secs(5))));
    }

    #[test]
    fn a_wrong_server_gives_wrong_replies() {
        let addr = serve_lines_with(|line| {
            let mut reply = String::from_utf8_lossy(line).to_uppercase().into_bytes();
            reply[0] = b't';
            reply
        });
        let outcome = run_against(addr, 1, 64);
        assert_eq!((outcome.replies, outcome.wrong), (20, 20));
        assert!(
            outcome.first_wrong.as_deref().unwrap().contains("differs"),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let outcome = run_against(addr, 1, 64);
        assert!(!outcome.connected);
        assert!(outcome.error.unwrap().contains("cannot connect"));
    }
}
