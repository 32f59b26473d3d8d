//! One UDP client on an event loop: its own socket, up to `pipeline`
//! numbered datagrams in flight, each reply matched by number and checked
//! against the oracle.
//!
//! A request with no reply after the reply timeout is **lost**: it leaves
//! the window and is counted apart from wrong replies, since UDP may drop
//! datagrams (the server's receive buffer overflows first under load). A
//! reply that comes after its request was declared lost is **late**.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};

use super::budget::{Budget, Settings};
use super::check::ReplyCheck;
use super::datagram::{Datagrams, Reply, SEQ_MODULUS};
use super::event_loop::{LoadClient, Turn, register_socket};
use super::tally::{ClientEnd, Tally};

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

/// One UDP socket and its requests in flight.
pub struct UdpClient {
    addr: SocketAddr,
    socket: Option<UdpSocket>,
    datagrams: Datagrams,
    window: Window,
    issued: u64,
    budget: Budget,
    pipeline: usize,
    end: ClientEnd,
    done: bool,
}

impl UdpClient {
    /// Open a socket connected to `addr` (a UDP socket is ready at once).
    pub fn open(addr: SocketAddr, datagrams: Datagrams, settings: &Settings) -> UdpClient {
        let mut client = UdpClient {
            addr,
            socket: None,
            window: Window::new(settings.timeout),
            issued: 0,
            budget: Budget {
                deadline: None,
                requests: 0,
            },
            pipeline: settings.pipeline,
            end: ClientEnd::default(),
            done: false,
            datagrams,
        };
        match open(addr, settings.pipeline, client.datagrams.reply_len()) {
            Ok(socket) => {
                client.socket = Some(socket);
                client.end.connected = true;
            }
            Err(error) => client.fail(format!("cannot open a UDP socket to {addr}: {error}")),
        }
        client
    }

    /// Receive every datagram waiting, then send the requests the window
    /// and the budget allow.
    fn exchange(&mut self, tally: &mut Tally, scratch: &mut [u8]) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        loop {
            let len = match socket.recv(scratch) {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            let received = Instant::now();
            match self.datagrams.check(&scratch[..len]) {
                Reply::Numbered { seq, check } => match self.window.take(seq) {
                    Some(sent) => tally.record(sent, received, check, &mut self.end),
                    None if was_issued(seq, self.issued) => tally.late(),
                    None => {
                        let what = format!(
                            "a reply numbered {seq}, but only {} requests were sent",
                            self.issued
                        );
                        charge_to_oldest(&mut self.window, what, received, tally, &mut self.end);
                    }
                },
                Reply::Unnumbered(what) => {
                    charge_to_oldest(&mut self.window, what, received, tally, &mut self.end);
                }
            }
        }
        let now = Instant::now();
        tally.lost += self.window.expire(now);
        while self.window.len() < self.pipeline && self.budget.allows(self.issued, now) {
            let request = self.datagrams.request(self.issued);
            match socket.send(request) {
                Ok(_) => {}
                // A full send buffer: the next tick tries again.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            self.window.sent(self.issued, now);
            self.issued += 1;
        }
        if self.window.is_empty() && !self.budget.allows(self.issued, now) {
            self.finish(None);
        }
        Ok(())
    }

    fn pump_or_fail(&mut self, tally: &mut Tally, scratch: &mut [u8]) {
        if self.done {
            return;
        }
        if let Err(error) = self.exchange(tally, scratch) {
            let addr = self.addr;
            self.finish(Some(match error.kind() {
                io::ErrorKind::ConnectionRefused => format!(
                    "nothing answers on udp {addr} (the port is closed): \
                     is the server serving UDP on that port?"
                ),
                _ => format!("udp {addr}: {error}"),
            }));
        }
    }

    fn finish(&mut self, error: Option<String>) {
        self.end.finish(error);
        self.done = true;
        self.socket = None;
    }
}

impl LoadClient for UdpClient {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        register_socket(self.socket.as_mut(), registry, token)
    }

    fn check_connected(&mut self) -> bool {
        self.socket.is_some()
    }

    fn fail(&mut self, error: String) {
        self.finish(Some(error));
    }

    fn start(&mut self, budget: Budget, turn: &mut Turn) {
        self.budget = budget;
        self.pump(turn);
    }

    fn pump(&mut self, turn: &mut Turn) {
        self.pump_or_fail(turn.tally, turn.scratch);
    }

    fn tick(&mut self, _now: Instant, turn: &mut Turn) {
        // Expiring requests frees room in the window for new ones.
        self.pump_or_fail(turn.tally, turn.scratch);
    }

    fn stop(&mut self) {
        self.finish(None);
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn end(&self) -> ClientEnd {
        self.end.clone()
    }
}

/// A non-blocking socket connected to `addr` (so it receives from the
/// server only), with a receive buffer for the replies in flight.
fn open(addr: SocketAddr, pipeline: usize, reply_len: usize) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let wanted =
        (pipeline * BUFFERED_REPLIES * (reply_len + 64)).clamp(256 * 1024, 8 * 1024 * 1024);
    // The kernel caps it at rmem_max; a smaller buffer only risks loss.
    let _ = socket.set_recv_buffer_size(wanted);
    let any: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    socket.bind(&any.into())?;
    socket.connect(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket.into()))
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
    tally: &mut Tally,
    end: &mut ClientEnd,
) {
    match window.take_oldest() {
        Some(sent) => tally.record(sent, received, ReplyCheck::Wrong(what), end),
        None => tally.late(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::event_loop::{StartGate, drive};
    use crate::loadgen::tally::Live;
    use crate::loadgen::workload::{Expect, PayloadType, RequestMode, Workload};
    use std::net::UdpSocket;
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

    /// One client's run: the thread's counts and how the client ended.
    fn run_against(
        addr: SocketAddr,
        mode: RequestMode,
        pipeline: usize,
        requests: u64,
    ) -> (Tally, ClientEnd) {
        let workload = Workload::new(mode, PayloadType::Text, 64, Expect::Upper).unwrap();
        let settings = Settings {
            pipeline,
            timeout: Duration::from_millis(500),
            duration: None,
        };
        let gate = StartGate::default();
        gate.open(true);
        let client = UdpClient::open(addr, Datagrams::new(&workload).unwrap(), &settings);
        let mut result = drive(
            vec![(client, requests)],
            settings,
            &workload,
            &gate,
            &Live::default(),
        );
        (result.tally, result.ends.remove(0))
    }

    #[test]
    fn every_right_reply_is_counted_with_its_latency() {
        let addr = responder(|_, datagram| vec![upper(datagram)]);
        let (tally, end) = run_against(addr, RequestMode::Raw, 4, 30);
        assert_eq!(end.error, None);
        // A reply slower than the timeout would be late, not wrong: the
        // counts add up whatever the machine's load.
        assert_eq!(tally.replies + tally.lost, 30);
        assert_eq!(tally.lost, tally.late);
        assert_eq!(tally.wrong, 0);
        assert_eq!(tally.latencies.count(), tally.replies);
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
        let (tally, end) = run_against(addr, RequestMode::Raw, 2, 20);
        assert_eq!(end.error, None);
        assert_eq!(tally.replies + tally.lost, 20);
        assert_eq!(tally.lost, tally.late);
        assert_eq!(tally.wrong, 0, "{:?}", end.first_wrong);
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
        let (tally, end) = run_against(addr, RequestMode::Raw, 3, 20);
        assert_eq!(end.error, None);
        assert_eq!(tally.replies + tally.lost, 20);
        assert_eq!(tally.lost - tally.late, 4);
        assert_eq!(tally.wrong, 0);
    }

    #[test]
    fn wrong_and_duplicate_replies_are_told_apart_from_loss() {
        // The number is kept but the text is not upper-cased, and each
        // reply is sent twice: the copy answers a request already answered.
        let addr = responder(|_, datagram| vec![datagram.to_vec(), datagram.to_vec()]);
        let (tally, end) = run_against(addr, RequestMode::Raw, 1, 10);
        assert_eq!(tally.replies + tally.lost, 10);
        // Each copy is late (the last one may come after the run), counted
        // apart: the wrong replies are among the replies.
        assert!(tally.late >= tally.replies.saturating_sub(1));
        assert_eq!(tally.wrong, tally.replies);
        let first = end.first_wrong.unwrap();
        assert!(first.contains("differs from the oracle"), "{first}");
    }

    #[test]
    fn a_server_answering_garbage_gets_wrong_replies_without_loss() {
        let addr = responder(|_, _| vec![b"NO NUMBER HERE\n".to_vec()]);
        let (tally, end) = run_against(addr, RequestMode::Raw, 4, 12);
        assert_eq!(tally.replies + tally.lost, 12);
        assert_eq!(tally.wrong, tally.replies);
        assert!(tally.replies > 0);
        assert!(end.first_wrong.unwrap().contains("request number"));
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
        let (tally, end) = run_against(addr, RequestMode::Framed, 4, 20);
        assert_eq!(end.error, None);
        assert_eq!(tally.replies + tally.lost, 20);
        assert_eq!(tally.lost, tally.late);
        assert_eq!(tally.wrong, 0, "{:?}", end.first_wrong);
    }

    #[test]
    fn a_closed_port_is_an_error_that_says_so() {
        let addr = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (tally, end) = run_against(addr, RequestMode::Raw, 1, 3);
        // Linux reports the ICMP port unreachable; elsewhere the requests
        // may only be lost.
        match end.error {
            Some(error) => assert!(error.contains("nothing answers"), "{error}"),
            None => assert_eq!(tally.lost, 3),
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
