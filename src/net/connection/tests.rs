//! A connection driven by hand over a loopback socket, at chosen instants:
//! when it gives its buffers back.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;

use super::*;
use crate::conn::ServerConfig;
use crate::net::budget::RESERVE_PER_CONNECTION;
use crate::net::work::DEFAULT_WORK_PER_TURN;
use crate::wire::{FrameRepr, FrameType, PREFACE};

/// A served connection, its client's socket, and the budget it charges.
struct Harness {
    client: std::net::TcpStream,
    connection: Connection,
    budget: MemoryBudget,
    scratch: Vec<u8>,
}

impl Harness {
    fn new(now: Instant) -> Harness {
        Harness::with_socket_buffers(now, None)
    }

    /// With `Some(bytes)`, the client's receive buffer and the server's
    /// send buffer are that small: output the client does not read soon
    /// stays pending in the connection.
    fn with_socket_buffers(now: Instant, socket_buffers: Option<usize>) -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(bytes) = socket_buffers {
            client.set_recv_buffer_size(bytes).unwrap();
        }
        client
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let client: std::net::TcpStream = client.into();
        client.set_nonblocking(true).unwrap();
        let (server, peer) = listener.accept().unwrap();
        if let Some(bytes) = socket_buffers {
            socket2::SockRef::from(&server)
                .set_send_buffer_size(bytes)
                .unwrap();
        }
        server.set_nonblocking(true).unwrap();
        let local = server.local_addr().unwrap();
        let core = ServerConnection::new(ServerConfig::default(), local, peer, now);
        Harness {
            client,
            connection: Connection::new(TcpStream::from_std(server), core, peer, false),
            budget: MemoryBudget::new(1 << 30, 1 << 30),
            scratch: vec![0; 64 * 1024],
        }
    }

    /// The client writes as much of `unsent` as its socket takes (taking
    /// it off the front), then the connection is driven at `now`, which
    /// must not close it. The step the drive ended with.
    fn send_some(&mut self, unsent: &mut &[u8], now: Instant) -> Step {
        match self.client.write(unsent) {
            Ok(written) => *unsent = &unsent[written..],
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => panic!("write failed: {error}"),
        }
        self.connection.set_read_ready();
        let step = self.connection.drive(
            now,
            &mut self.scratch,
            &self.budget,
            Turn::new(DEFAULT_WORK_PER_TURN),
        );
        assert_ne!(step, Step::Closed);
        step
    }

    /// The client sends `request` (raw text) and reads its whole reply,
    /// the connection being driven at `now` throughout.
    fn exchange(&mut self, request: &[u8], now: Instant) {
        let mut unsent = request;
        let mut received = Vec::new();
        let mut chunk = [0; 64 * 1024];
        while !unsent.is_empty() || received.len() < request.len() {
            self.send_some(&mut unsent, now);
            match self.client.read(&mut chunk) {
                Ok(read) => received.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => panic!("read failed: {error}"),
            }
        }
        assert_eq!(received, request.to_ascii_uppercase());
    }

    /// Drive the connection at `now` with nothing new from its client.
    fn wake(&mut self, now: Instant) {
        let step = self.connection.drive(
            now,
            &mut self.scratch,
            &self.budget,
            Turn::new(DEFAULT_WORK_PER_TURN),
        );
        assert_eq!(step, Step::Wait);
    }
}

/// A request far beyond a connection's reserve: its buffers are charged.
fn large_request() -> Vec<u8> {
    b"give it back ".repeat(10_000)
}

#[test]
fn empty_buffers_are_given_back_after_a_second_of_quiet_and_not_before() {
    let start = Instant::now();
    let mut harness = Harness::new(start);
    harness.exchange(&large_request(), start);
    assert!(
        harness.budget.charged() > 0,
        "the buffers should be charged"
    );
    assert_eq!(
        harness.connection.deadline(),
        Some(start + BUFFER_RELEASE_DELAY)
    );

    harness.wake(start + BUFFER_RELEASE_DELAY - Duration::from_millis(1));
    assert!(harness.budget.charged() > 0, "given back too early");
    harness.wake(start + BUFFER_RELEASE_DELAY);
    assert_eq!(harness.budget.charged(), 0);
    assert_eq!(harness.connection.core.buffered_capacity(), 0);
}

#[test]
fn bytes_moving_start_the_quiet_second_again() {
    let start = Instant::now();
    let mut harness = Harness::new(start);
    harness.exchange(&large_request(), start);
    let later = start + Duration::from_millis(600);
    harness.exchange(b"one more", later);
    assert_eq!(
        harness.connection.deadline(),
        Some(later + BUFFER_RELEASE_DELAY)
    );

    // A second after the first exchange, but not after the last one.
    harness.wake(start + BUFFER_RELEASE_DELAY + Duration::from_millis(100));
    assert!(harness.budget.charged() > 0, "given back too early");
    harness.wake(later + BUFFER_RELEASE_DELAY);
    assert_eq!(harness.budget.charged(), 0);
}

impl Harness {
    /// The client writes all of `bytes` (at most 100 KB), and the server's
    /// socket holds them.
    fn arrive(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= 100_000, "more than the sockets may hold");
        socket2::SockRef::from(&self.connection.stream)
            .set_recv_buffer_size(256 * 1024)
            .unwrap();
        let mut unsent = bytes;
        let mut peeked = vec![0; bytes.len()];
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.connection.stream.peek(&mut peeked).unwrap_or(0) < bytes.len() {
            assert!(Instant::now() < deadline, "the bytes never all arrived");
            match self.client.write(unsent) {
                Ok(written) => unsent = &unsent[written..],
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => panic!("write failed: {error}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.connection.set_read_ready();
    }

    /// One turn of `units` at `now`.
    fn turn(&mut self, units: usize, now: Instant) -> Step {
        let step = self
            .connection
            .drive(now, &mut self.scratch, &self.budget, Turn::new(units));
        assert_ne!(step, Step::Closed);
        step
    }
}

#[test]
fn a_connection_reads_at_most_its_turn_then_lets_the_others_be_served() {
    let start = Instant::now();
    let mut harness = Harness::new(start);
    harness.arrive(&[b'a'; 100_000]);
    assert_eq!(harness.turn(DEFAULT_WORK_PER_TURN, start), Step::MoreToRead);
    // Raw ASCII costs a unit for each byte in and each byte out: about
    // half a turn's units in bytes.
    let first = harness.connection.core.stats().bytes_in;
    assert!(
        (1000..=DEFAULT_WORK_PER_TURN as u64 / 2).contains(&first),
        "{first} bytes in one turn"
    );
    // Its next turns read the rest.
    while harness.connection.core.stats().bytes_in < 100_000 {
        harness.turn(DEFAULT_WORK_PER_TURN, start);
    }
}

/// The preface and `count` copies of `frame`.
fn pipelined(frame: FrameRepr, count: usize) -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    for _ in 0..count {
        bytes.extend_from_slice(&frame.to_bytes());
    }
    bytes
}

/// Frames answered in the first and in the second turn of `units`, for
/// `count` of `frame` pipelined; every one is answered after enough turns.
fn frames_in_two_turns(frame: FrameRepr, count: usize, units: usize) -> (u64, u64) {
    let start = Instant::now();
    let mut harness = Harness::new(start);
    harness.arrive(&pipelined(frame, count));
    assert_eq!(harness.turn(units, start), Step::MoreToRead);
    let first = harness.connection.core.stats().frames_in;
    assert_eq!(harness.turn(units, start), Step::MoreToRead);
    let second = harness.connection.core.stats().frames_in - first;
    while harness.connection.core.stats().frames_in < count as u64 {
        harness.turn(units, start);
    }
    assert_eq!(harness.connection.core.stats().frames_out, count as u64);
    (first, second)
}

#[test]
fn a_turn_is_charged_for_the_errors_it_produces_not_only_its_bytes() {
    // The same 42-byte frames: PINGs get their PONG, unknown types an
    // ERROR each, which costs its turn more (about twice a PING). Once a connection's reads
    // have shown what its input costs (the second turn), it gets
    // correspondingly fewer frames a turn.
    let ping = FrameRepr::new(FrameType::Ping, &b""[..]);
    let unknown = FrameRepr::new(FrameType::Unknown(0x07), &b""[..]);
    let (first_pings, pings) = frames_in_two_turns(ping, 2000, 32 * 1024);
    let (first_unknown, unknown) = frames_in_two_turns(unknown, 2000, 32 * 1024);
    assert!(unknown > 0);
    assert!(
        pings >= 2 * unknown,
        "{pings} PINGs and {unknown} unknown frames in a turn"
    );
    // However cheap, a turn never takes the whole burst of 84 KB at once,
    // not even a connection's first.
    assert!(
        first_pings.max(first_unknown) < 500,
        "{first_pings}, {first_unknown}"
    );
}

#[test]
fn a_smaller_turn_takes_fewer_frames() {
    let ping = || FrameRepr::new(FrameType::Ping, &b""[..]);
    let (_, large) = frames_in_two_turns(ping(), 2000, 32 * 1024);
    let (_, small) = frames_in_two_turns(ping(), 2000, 4 * 1024);
    assert!(small > 0 && small * 4 <= large, "{small} then {large}");
}

#[test]
fn buffers_holding_data_are_kept_however_long_the_quiet() {
    let start = Instant::now();
    let mut harness = Harness::with_socket_buffers(start, Some(4096));
    // The client sends a large request and reads none of its reply.
    let request = large_request();
    let mut unsent = &request[..];
    while !unsent.is_empty() || harness.connection.read_ready {
        harness.send_some(&mut unsent, start);
    }
    assert!(harness.connection.core.pending_output().len() > RESERVE_PER_CONNECTION);
    let capacity = harness.connection.core.buffered_capacity();
    let charged = harness.budget.charged();

    // Its reply waits: nothing is given back, nothing charged less.
    harness.wake(start + 2 * BUFFER_RELEASE_DELAY);
    assert_eq!(harness.connection.core.buffered_capacity(), capacity);
    assert_eq!(harness.budget.charged(), charged);
}

#[test]
fn a_connection_may_fill_its_reserve_with_replies_its_client_has_not_taken() {
    let start = Instant::now();
    let mut harness = Harness::with_socket_buffers(start, Some(4096));
    // No budget beyond the reserves.
    harness.budget = MemoryBudget::new(0, 1 << 30);
    // The client sends and never reads: once the sockets are full, replies
    // wait in the connection, which reads on while they fit its reserve.
    let request = large_request();
    let mut unsent = &request[..];
    loop {
        let step = harness.send_some(&mut unsent, start);
        if step == Step::BudgetBlocked {
            break;
        }
        assert!(
            !(unsent.is_empty() && step == Step::Wait),
            "the reserve was never filled"
        );
    }
    // Each byte read weighs 3 until processed; a reply weighs its size.
    let pending = harness.connection.core.pending_output().len();
    assert!(
        pending > RESERVE_PER_CONNECTION * 2 / 3,
        "held back with only {pending} bytes of replies waiting"
    );
    assert!(pending <= RESERVE_PER_CONNECTION, "{pending} bytes waiting");
}
