//! One UDP client: its own socket, up to `pipeline` numbered datagrams in
//! flight, each reply matched by number and checked against the oracle.
//!
//! A request with no reply after the reply timeout is **lost**: it leaves
//! the window and is counted apart from wrong replies, since UDP may drop
//! datagrams (the server's receive buffer overflows first under load). A
//! reply that comes after its request was declared lost is **late**.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::check::Check;
use super::connection::{Budget, Live, Outcome, Settings, StartGate, wait_ready};
use super::datagram::{Datagrams, Reply, SEQ_MODULUS};

/// The kernel receive buffer asked for holds this many replies in flight
/// (at least 256 KiB, at most 8 MiB; the kernel may grant less).
const BUFFERED_REPLIES: usize = 2;

/// Requests in flight, oldest first, with the time each was sent.
#[derive(Debug)]
pub struct Window {
    in_flight: VecDeque<(u64, Instant)>,
    timeout: Duration,
}

impl Window {
    /// An empty window whose requests are lost after `timeout`.
    pub fn new(timeout: Duration) -> Window {
        Window {
            in_flight: VecDeque::new(),
            timeout,
        }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Note that request `seq` was sent at `sent`.
    pub fn sent(&mut self, seq: u64, sent: Instant) {
        self.in_flight.push_back((seq, sent));
    }

    /// Take the request in flight numbered `seq` modulo [`SEQ_MODULUS`],
    /// returning when it was sent.
    pub fn take(&mut self, seq: u64) -> Option<Instant> {
        let at = self
            .in_flight
            .iter()
            .position(|&(issued, _)| issued % SEQ_MODULUS == seq)?;
        self.in_flight.remove(at).map(|(_, sent)| sent)
    }

    /// Take the oldest request in flight (the one an unnumbered reply is
    /// charged to).
    pub fn take_oldest(&mut self) -> Option<Instant> {
        self.in_flight.pop_front().map(|(_, sent)| sent)
    }

    /// Drop the requests sent `timeout` or more before `now`; return how
    /// many were lost.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut lost = 0;
        while let Some(&(_, sent)) = self.in_flight.front() {
            if now.duration_since(sent) < self.timeout {
                break;
            }
            self.in_flight.pop_front();
            lost += 1;
        }
        lost
    }
}

/// Open the socket, wait at `start` until every client has, then run.
pub fn run(
    addr: SocketAddr,
    mut datagrams: Datagrams,
    settings: Settings,
    start: &StartGate,
    live: &Live,
) -> Outcome {
    let mut outcome = Outcome::default();
    let socket = open(addr, &settings, datagrams.reply_len());
    let failed = |error| format!("cannot open a UDP socket to {addr}: {error}");
    let Some(socket) = wait_ready(socket, start, &mut outcome, failed) else {
        return outcome;
    };
    let budget = Budget::starting_now(&settings);
    if let Err(error) = exchange(
        &socket,
        &mut datagrams,
        settings,
        budget,
        live,
        &mut outcome,
    ) {
        outcome.error = Some(match error.kind() {
            io::ErrorKind::ConnectionRefused => format!(
                "nothing answers on udp {addr} (the port is closed): \
                 is the server serving UDP on that port?"
            ),
            _ => format!("udp {addr}: {error}"),
        });
    }
    outcome
}

/// A socket connected to `addr` (so it receives from the server only), with
/// a receive buffer for the replies in flight and a read timeout short
/// enough to notice lost requests within a quarter of the reply timeout.
fn open(addr: SocketAddr, settings: &Settings, reply_len: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let wanted = (settings.pipeline * BUFFERED_REPLIES * (reply_len + 64))
        .clamp(256 * 1024, 8 * 1024 * 1024);
    // The kernel caps it at rmem_max; a smaller buffer only risks loss.
    let _ = socket.set_recv_buffer_size(wanted);
    let any: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    socket.bind(&any.into())?;
    socket.connect(&addr.into())?;
    let poll = (settings.timeout / 4).max(Duration::from_millis(1));
    socket.set_read_timeout(Some(poll))?;
    Ok(socket.into())
}

/// Send and receive until the budget is spent and every request is
/// answered or lost.
fn exchange(
    socket: &UdpSocket,
    datagrams: &mut Datagrams,
    settings: Settings,
    budget: Budget,
    live: &Live,
    outcome: &mut Outcome,
) -> io::Result<()> {
    let mut window = Window::new(settings.timeout);
    let mut buffer = vec![0u8; datagrams.reply_len().max(64 * 1024) + 1];
    let mut issued = 0u64;
    loop {
        while window.len() < settings.pipeline && budget.allows(issued) {
            let request = datagrams.request(issued);
            window.sent(issued, Instant::now());
            socket.send(request)?;
            issued += 1;
        }
        if window.is_empty() {
            return Ok(());
        }
        let len = match socket.recv(&mut buffer) {
            Ok(len) => len,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                outcome.lost += window.expire(Instant::now());
                continue;
            }
            Err(error) => return Err(error),
        };
        let received = Instant::now();
        match datagrams.check(&buffer[..len]) {
            Reply::Numbered { seq, check } => match window.take(seq) {
                Some(sent) => outcome.record(sent, received, check, live),
                None if was_issued(seq, issued) => outcome.late(check, live),
                None => {
                    let what =
                        format!("a reply numbered {seq}, but only {issued} requests were sent");
                    charge_to_oldest(&mut window, what, received, outcome, live);
                }
            },
            Reply::Unnumbered(what) => {
                charge_to_oldest(&mut window, what, received, outcome, live);
            }
        }
        outcome.lost += window.expire(Instant::now());
    }
}

/// Whether a request numbered `seq` (modulo [`SEQ_MODULUS`]) was sent
/// among the first `issued`.
fn was_issued(seq: u64, issued: u64) -> bool {
    issued >= SEQ_MODULUS || seq < issued
}

/// A wrong reply that names no request in flight answers one of them,
/// presumably the oldest: retire it, so that a server answering everything
/// wrongly is not also charged with losing every request. It was `received`
/// at that instant.
fn charge_to_oldest(
    window: &mut Window,
    what: String,
    received: Instant,
    outcome: &mut Outcome,
    live: &Live,
) {
    match window.take_oldest() {
        Some(sent) => outcome.record(sent, received, Check::Wrong(what), live),
        None => outcome.late(Check::Wrong(what), live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::workload::{Expect, PayloadType, WireMode, Workload};
    use std::thread;
    use upcase::conn::{DatagramConfig, DatagramReply, respond_to_datagram};

    /// A UDP responder on 127.0.0.1 that answers datagram number `i` (in
    /// arrival order) with `answer(i, datagram)`, or not at all for `None`.
    /// It stops after 3 s without a datagram, so a broken test ends.
    fn responder(answer: fn(usize, &[u8]) -> Vec<Vec<u8>>) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buffer = vec![0u8; 65_536];
            let mut received = 0;
            while let Ok((len, peer)) = socket.recv_from(&mut buffer) {
                for reply in answer(received, &buffer[..len]) {
                    let _ = socket.send_to(&reply, peer);
                }
                received += 1;
            }
        });
        addr
    }

    fn upper(datagram: &[u8]) -> Vec<u8> {
        String::from_utf8(datagram.to_vec())
            .unwrap()
            .to_uppercase()
            .into_bytes()
    }

    fn run_against(addr: SocketAddr, mode: WireMode, pipeline: usize, requests: u64) -> Outcome {
        let workload = Workload::new(mode, PayloadType::Text, 64, Expect::Upper).unwrap();
        let settings = Settings {
            pipeline,
            timeout: Duration::from_millis(500),
            duration: None,
            requests,
        };
        let gate = StartGate::default();
        gate.open();
        let datagrams = Datagrams::new(&workload).unwrap();
        run(addr, datagrams, settings, &gate, &Live::default())
    }

    #[test]
    fn every_right_reply_is_counted_with_its_latency() {
        let addr = responder(|_, datagram| vec![upper(datagram)]);
        let outcome = run_against(addr, WireMode::Raw, 4, 30);
        assert_eq!(outcome.error, None);
        // A reply slower than the timeout would be late, not wrong: the
        // counts add up whatever the machine's load.
        assert_eq!(outcome.replies + outcome.lost, 30);
        assert_eq!(outcome.lost, outcome.late);
        assert_eq!(outcome.wrong, 0);
        assert_eq!(outcome.latencies.count(), outcome.replies);
    }

    #[test]
    fn replies_out_of_order_are_matched_by_number() {
        // Hold every even-numbered datagram and answer it after the next
        // one: replies come back 1, 0, 3, 2, … (raw replies carry no tag
        // but the number in their text).
        static HELD: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);
        let addr = responder(|i, datagram| {
            let mut held = HELD.lock().unwrap();
            if i % 2 == 0 {
                *held = Some(upper(datagram));
                vec![]
            } else {
                vec![upper(datagram), held.take().unwrap()]
            }
        });
        let outcome = run_against(addr, WireMode::Raw, 2, 20);
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.replies + outcome.lost, 20);
        assert_eq!(outcome.lost, outcome.late);
        assert_eq!(outcome.wrong, 0, "{:?}", outcome.first_wrong);
    }

    #[test]
    fn unanswered_requests_are_lost_not_wrong() {
        // Every fifth datagram gets no answer.
        let addr = responder(|i, datagram| {
            if i % 5 == 4 {
                vec![]
            } else {
                vec![upper(datagram)]
            }
        });
        let outcome = run_against(addr, WireMode::Raw, 3, 20);
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.replies + outcome.lost, 20);
        assert_eq!(outcome.lost - outcome.late, 4);
        assert_eq!(outcome.wrong, 0);
    }

    #[test]
    fn wrong_and_duplicate_replies_are_told_apart_from_loss() {
        // The number is kept but the text is not upper-cased, and each
        // reply is sent twice: the copy answers a request already answered.
        let addr = responder(|_, datagram| vec![datagram.to_vec(), datagram.to_vec()]);
        let outcome = run_against(addr, WireMode::Raw, 1, 10);
        assert_eq!(outcome.replies + outcome.lost, 10);
        // Each copy is late (the last one may come after the run) and,
        // being lower case, wrong too.
        assert!(outcome.late >= outcome.replies.saturating_sub(1));
        assert_eq!(outcome.wrong, outcome.replies + outcome.late);
        let first = outcome.first_wrong.unwrap();
        assert!(first.contains("differs from the oracle"), "{first}");
    }

    #[test]
    fn a_server_answering_garbage_gets_wrong_replies_without_loss() {
        let addr = responder(|_, _| vec![b"NO NUMBER HERE\n".to_vec()]);
        let outcome = run_against(addr, WireMode::Raw, 4, 12);
        assert_eq!(outcome.replies + outcome.lost, 12);
        assert_eq!(outcome.wrong, outcome.replies);
        assert!(outcome.replies > 0);
        assert!(outcome.first_wrong.unwrap().contains("request number"));
    }

    #[test]
    fn framed_datagrams_against_the_server_core_are_right() {
        let addr = responder(|_, datagram| {
            let local: SocketAddr = "127.0.0.1:1".parse().unwrap();
            match respond_to_datagram(datagram, local, local, &DatagramConfig::default()) {
                DatagramReply::Send(reply) => vec![reply.to_vec()],
                _ => vec![],
            }
        });
        let outcome = run_against(addr, WireMode::Framed, 4, 20);
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.replies + outcome.lost, 20);
        assert_eq!(outcome.lost, outcome.late);
        assert_eq!(outcome.wrong, 0, "{:?}", outcome.first_wrong);
    }

    #[test]
    fn a_closed_port_is_an_error_that_says_so() {
        let addr = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let outcome = run_against(addr, WireMode::Raw, 1, 3);
        // Linux reports the ICMP port unreachable; elsewhere the requests
        // may only be lost.
        match outcome.error {
            Some(error) => assert!(error.contains("nothing answers"), "{error}"),
            None => assert_eq!(outcome.lost, 3),
        }
    }

    #[test]
    fn the_window_expires_the_oldest_first() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_secs(1));
        window.sent(0, t0);
        window.sent(1, t0 + Duration::from_millis(500));
        window.sent(2, t0 + Duration::from_millis(900));
        assert_eq!(window.expire(t0 + Duration::from_millis(999)), 0);
        assert_eq!(window.expire(t0 + Duration::from_millis(1500)), 2);
        assert_eq!(window.len(), 1);
        assert_eq!(window.take(1), None);
        assert!(window.take(2).is_some());
        assert!(window.is_empty());
    }

    #[test]
    fn the_window_matches_numbers_modulo_the_digits() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_secs(1));
        window.sent(SEQ_MODULUS + 5, t0);
        assert_eq!(window.take(5), Some(t0));
        assert!(was_issued(3, 4));
        assert!(!was_issued(4, 4));
        assert!(was_issued(99, SEQ_MODULUS + 1));
    }
}
