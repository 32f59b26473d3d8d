//! The suite's side of UDP (SPEC.md §8): a `std::net` socket of its own per
//! [`Dgram`], a read timeout on every receive, one retry for a datagram that
//! got no reply (UDP may lose it, even on loopback, rarely), and the same
//! wire log as TCP connections.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::case::{CheckResult, Failure};
use super::show;
use super::tap::{self, Tap};
use upcase::wire::{
    Address, ErrorCode, FrameDecoder, FrameRepr, FrameType, PREFACE, encode_framed_datagram,
};

/// Large enough for any datagram, so an oversized reply shows as too long
/// instead of being cut.
const RECEIVE_BUFFER: usize = 65_536;

/// What a receive found.
enum Received {
    Datagram(Vec<u8>),
    Nothing,
    Failed(String),
}

/// One UDP socket talking to the server under test.
pub struct Dgram {
    socket: UdpSocket,
    tap: Tap,
    timeout: Duration,
    /// When the case must be over: no receive waits past it.
    case_deadline: Instant,
    /// The server's receive limit (`--max-frame`): no frame sent exceeds it.
    max_frame: u32,
    /// The address the suite sends to: the server's local address (§8.5).
    pub server: Address,
    /// The socket's own address: the server's peer address.
    pub client: Address,
}

impl Dgram {
    pub(super) fn open(
        server: SocketAddr,
        timeout: Duration,
        max_frame: u32,
        case_deadline: Instant,
        tap: Tap,
    ) -> Result<Dgram, Failure> {
        let any: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let setup = || -> std::io::Result<(UdpSocket, SocketAddr)> {
            let socket = UdpSocket::bind(any)?;
            // Connected: the kernel drops datagrams from anyone else, and
            // local_addr() names the address the server will see.
            socket.connect(server)?;
            socket.set_read_timeout(Some(timeout))?;
            let local = socket.local_addr()?;
            Ok((socket, local))
        };
        let (socket, local) =
            setup().map_err(|e| tap.failure(format_args!("UDP socket to {server}: {e}")))?;
        let dgram = Dgram {
            socket,
            tap,
            timeout,
            case_deadline,
            max_frame,
            server: server.into(),
            client: local.into(),
        };
        dgram.note(format!("udp {} → {}", dgram.client, dgram.server));
        Ok(dgram)
    }

    /// Add a line to the wire log.
    pub fn note(&self, line: impl AsRef<str>) {
        self.tap.note(line);
    }

    /// The socket itself, for the rate case (`cases/udp_rate.rs`), which
    /// sends thousands of datagrams and counts the replies on a thread.
    pub(super) fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    fn send(&self, datagram: &[u8]) -> CheckResult {
        self.tap
            .note_bytes(format!("→ datagram {}", show::datagram(datagram)), datagram);
        self.socket
            .send(datagram)
            .map(drop)
            .map_err(|e| self.tap.failure(format_args!("send failed: {e}")))
    }

    /// The next datagram within `wait`, and never past the case's deadline.
    fn receive(&self, wait: Duration) -> Received {
        let wait = wait.min(self.case_deadline.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            self.note("← (the case's deadline passed)");
            return Received::Nothing;
        }
        let _ = self.socket.set_read_timeout(Some(wait));
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        let result = self.socket.recv(&mut buf);
        match result {
            Ok(n) => {
                buf.truncate(n);
                self.tap
                    .note_bytes(format!("← datagram {}", show::datagram(&buf)), &buf);
                Received::Datagram(buf)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Received::Nothing
            }
            // ICMP port unreachable from an earlier send: nobody listens.
            Err(e) => Received::Failed(format!("receive failed: {e}")),
        }
    }

    /// Send `datagram` and return the reply. A datagram with no reply within
    /// the timeout is sent once more (UDP may lose either datagram) before
    /// this fails.
    ///
    /// # Errors
    /// A [`Failure`] when neither attempt gets a reply.
    pub fn exchange(&self, datagram: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
        for attempt in 1..=2 {
            self.send(datagram)?;
            match self.receive(self.timeout) {
                Received::Datagram(reply) => return Ok(reply),
                Received::Failed(why) => return Err(self.tap.failure(why)),
                Received::Nothing if attempt == 1 => self.note(format!(
                    "← (nothing within {:.1} s; the datagram or its reply may be lost: sending it once more)",
                    self.timeout.as_secs_f64()
                )),
                Received::Nothing => self.note("← (nothing again)"),
            }
        }
        Err(self.tap.mismatch(
            format_args!("no reply to {what}"),
            format!("a reply datagram to {what}"),
            format!(
                "nothing within {:.1} s, twice (sent twice in case UDP lost one)",
                self.timeout.as_secs_f64()
            ),
        ))
    }

    /// Send a raw datagram and require the reply to equal `expected`.
    ///
    /// # Errors
    /// A [`Failure`] showing both in hex when they differ.
    pub fn expect_raw(&self, datagram: &[u8], expected: &[u8], what: &str) -> CheckResult {
        let reply = self.exchange(datagram, what)?;
        self.tap
            .check(
                reply == expected,
                format_args!("wrong reply to {what}"),
                show::data(expected),
                show::data(&reply),
            )
            .map_err(|f| f.with_bytes(expected, &reply))
    }

    /// Send `datagram` and require no reply within `quiet` (no retry: silence
    /// is the expected outcome).
    ///
    /// # Errors
    /// A [`Failure`] when a datagram arrives.
    pub fn expect_no_reply(&self, datagram: &[u8], quiet: Duration, what: &str) -> CheckResult {
        self.send(datagram)?;
        match self.receive(quiet) {
            Received::Nothing => {
                self.note(format!(
                    "← (nothing within {} ms, as required)",
                    quiet.as_millis()
                ));
                Ok(())
            }
            Received::Datagram(reply) => Err(self.tap.mismatch(
                format_args!("a reply to {what}"),
                "no reply (the datagram is dropped)",
                format!(
                    "a datagram of {} bytes: {}",
                    reply.len(),
                    show::data(&reply)
                ),
            )),
            Received::Failed(why) => Err(self.tap.failure(why)),
        }
    }

    /// Preface + `frame`, as a client sends it.
    pub fn framed(frame: &FrameRepr) -> Vec<u8> {
        encode_framed_datagram(frame).to_vec()
    }

    /// Send `datagram` and return the one frame of the reply, which must be
    /// the preface and exactly one frame (SPEC.md §8.2).
    ///
    /// # Errors
    /// A [`Failure`] when there is no reply or it is not preface + one frame.
    pub fn request(
        &self,
        datagram: &[u8],
        expected: &str,
        what: &str,
    ) -> Result<FrameRepr, Failure> {
        let reply = self.exchange(datagram, what)?;
        let wrong = |why: &str| {
            self.tap.mismatch(
                format_args!("the reply to {what} {why}"),
                format_args!("preface + {expected}"),
                show::data(&reply),
            )
        };
        let Some(frame_bytes) = reply.strip_prefix(&PREFACE[..]) else {
            return Err(wrong(
                "does not start with the preface c0 55 50 43 41 53 45 01",
            ));
        };
        let mut rest = BytesMut::from(frame_bytes);
        match FrameDecoder::new(u32::MAX).decode(&mut rest) {
            Ok(Some(frame)) if rest.is_empty() => {
                self.note(format!("  = preface + {}", show::frame(&frame)));
                Ok(frame)
            }
            Ok(Some(_)) => Err(wrong("holds more than one frame")),
            _ => Err(wrong("does not hold a whole frame after the preface")),
        }
    }

    /// The reply SPEC.md §5.5/§8.5 requires to `request`.
    pub fn reply_to(
        &self,
        request: &FrameRepr,
        frame_type: FrameType,
        data: impl Into<Bytes>,
    ) -> FrameRepr {
        tap::reply(request, (self.server, self.client), frame_type, data)
    }

    /// Reply (source, destination) for a request from `src` to `dst`.
    pub fn reply_addresses(&self, src: Address, dst: Address) -> (Address, Address) {
        tap::reply_addresses((src, dst), (self.server, self.client))
    }

    /// Whether `actual` is an acceptable reply source where `expected` is
    /// required: equal, or, where the server filled in its own address, its
    /// wildcard bind address with the same port (SPEC.md §8.5 allows a server
    /// bound to `0.0.0.0` or `::` to report that).
    fn source_ok(&self, expected: Address, actual: Address) -> bool {
        if actual == expected {
            return true;
        }
        let wildcard = actual.ip.is_unspecified()
            || actual.ip.to_ipv4_mapped() == Some(std::net::Ipv4Addr::UNSPECIFIED);
        let ok = expected == self.server && wildcard && actual.port == self.server.port;
        if ok {
            self.note(format!(
                "  (source {actual} is the server's wildcard bind address: allowed by SPEC.md §8.5)"
            ));
        }
        ok
    }

    fn same_reply(&self, expected: &FrameRepr, actual: &FrameRepr) -> bool {
        self.source_ok(expected.src, actual.src)
            && actual.dst == expected.dst
            && actual.frame_type == expected.frame_type
            && actual.flags == expected.flags
            && actual.data == expected.data
    }

    /// Send preface + `request` and require preface + `expected` back.
    ///
    /// # Errors
    /// A [`Failure`] showing both frames when they differ; a
    /// [`Failure::cannot_run`] for a request over the server's limit.
    pub fn expect_frame(
        &self,
        request: &FrameRepr,
        expected: &FrameRepr,
        what: &str,
    ) -> CheckResult {
        super::client::within_limit(request, self.max_frame)?;
        let frame = self.request(&Dgram::framed(request), &show::frame(expected), what)?;
        self.tap.check(
            self.same_reply(expected, &frame),
            format_args!("wrong reply to {what}"),
            show::frame(expected),
            show::frame(&frame),
        )
    }

    /// Send `datagram` and require preface + ERROR(`code`) addressed from
    /// `src` to `dst` (the message text is not checked).
    ///
    /// # Errors
    /// A [`Failure`] when anything else comes back.
    pub fn expect_error(
        &self,
        datagram: &[u8],
        code: ErrorCode,
        (src, dst): (Address, Address),
        what: &str,
    ) -> CheckResult {
        let expected = tap::expected_error(code, src, dst);
        let frame = self.request(datagram, &expected, what)?;
        self.tap.check(
            tap::is_error(&frame, code, dst) && self.source_ok(src, frame.src),
            format_args!("wrong reply to {what}"),
            expected,
            show::frame(&frame),
        )
    }

    /// [`expect_error`](Self::expect_error) for the ERROR that replaces the
    /// reply to `request`: addressed as its reply (§5.5).
    ///
    /// # Errors
    /// As [`expect_error`](Self::expect_error).
    pub fn expect_error_reply(
        &self,
        datagram: &[u8],
        request: (Address, Address),
        code: ErrorCode,
        what: &str,
    ) -> CheckResult {
        let addresses = self.reply_addresses(request.0, request.1);
        self.expect_error(datagram, code, addresses, what)
    }

    /// [`expect_error`](Self::expect_error) for an ERROR no readable header
    /// caused (§8.5, checks 1–2 of §8.2): source = server, destination = client.
    ///
    /// # Errors
    /// As [`expect_error`](Self::expect_error).
    pub fn expect_unaddressed_error(
        &self,
        datagram: &[u8],
        code: ErrorCode,
        what: &str,
    ) -> CheckResult {
        self.expect_error(datagram, code, (self.server, self.client), what)
    }
}
