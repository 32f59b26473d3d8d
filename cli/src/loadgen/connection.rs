//! One TCP client: a non-blocking connection on an event loop that issues
//! requests, times each reply and checks it against the oracle.
//!
//! Output is counted, not buffered: every request is the same bytes, so
//! the connection remembers how many are issued but unwritten and how far
//! the first of them got. Input is buffered only while a reply is
//! incomplete ([`ReplyParser`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Registry, Token};

use super::budget::Budget;
use super::event_loop::{LoadClient, Turn, register_socket};
use super::reply::ReplyParser;
use super::tally::ClientEnd;
use super::workload::{RequestMode, Workload};
use upcase::wire::PREFACE;

/// Requests handed to one `writev`.
const REQUESTS_PER_WRITE: usize = 64;

/// One connection and its requests in flight.
pub struct TcpClient {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    connected: bool,
    parser: ReplyParser,
    /// When each request in flight was issued, oldest first.
    in_flight: VecDeque<Instant>,
    issued: u64,
    budget: Budget,
    pipeline: usize,
    /// Bytes of the preface not yet written (framed mode).
    preface_left: usize,
    /// Requests issued whose bytes are not all written.
    unsent: usize,
    /// Bytes of the first unsent request already written.
    request_at: usize,
    /// When the oldest reply in flight became owed: the previous reply
    /// arrived whole, or its request was issued with none in flight. Its
    /// deadline is this plus the timeout, whatever bytes trickle in.
    last_progress: Instant,
    timeout: Duration,
    end: ClientEnd,
    done: bool,
}

impl TcpClient {
    /// Start connecting to `addr` (the connect completes on the event loop).
    pub fn connect(
        addr: SocketAddr,
        workload: &Workload,
        pipeline: usize,
        timeout: Duration,
    ) -> TcpClient {
        let mut client = TcpClient {
            addr,
            stream: None,
            connected: false,
            parser: ReplyParser::new(workload),
            in_flight: VecDeque::new(),
            issued: 0,
            budget: Budget {
                deadline: None,
                requests: 0,
            },
            pipeline,
            preface_left: match workload.mode {
                RequestMode::Raw => 0,
                RequestMode::Framed => PREFACE.len(),
            },
            unsent: 0,
            request_at: 0,
            last_progress: Instant::now(),
            timeout,
            end: ClientEnd::default(),
            done: false,
        };
        match TcpStream::connect(addr) {
            Ok(stream) => client.stream = Some(stream),
            Err(error) => client.fail(client.connect_error(&error)),
        }
        client
    }

    fn connect_error(&self, error: &io::Error) -> String {
        let hint = match error.raw_os_error() {
            Some(24) => " (too many open files: use fewer --clients)",
            Some(99) => " (no local port left: use fewer --clients)",
            _ => "",
        };
        format!("cannot connect to {}: {error}{hint}", self.addr)
    }

    /// Read and check every reply available; `Ok(true)` when the server
    /// closed the connection.
    fn read_replies(&mut self, turn: &mut Turn) -> Result<bool, String> {
        let Some(stream) = &mut self.stream else {
            return Ok(false);
        };
        loop {
            let n = match stream.read(turn.scratch) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(describe(&error)),
            };
            let received = Instant::now();
            self.parser.extend(&turn.scratch[..n]);
            while let Some(check) = self.parser.next(turn.workload).map_err(|error| error.0)? {
                let Some(sent) = self.in_flight.pop_front() else {
                    return Err(
                        "the server sent a reply to no request (more replies than requests: is it an UPCASE server?)"
                            .into(),
                    );
                };
                turn.tally.record(sent, received, check, &mut self.end);
                // The next reply is owed from now: bytes of an incomplete
                // one do not put its deadline off.
                self.last_progress = received;
            }
            // A short read emptied the socket's buffer: the next bytes to
            // arrive raise a new readiness edge (Linux, stream sockets), so
            // the WouldBlock read that would confirm it can be skipped.
            if n < turn.scratch.len() {
                return Ok(false);
            }
        }
    }

    /// Issue the requests that the pipeline and the budget allow.
    fn issue(&mut self, now: Instant) {
        while self.in_flight.len() < self.pipeline && self.budget.allows(self.issued, now) {
            if self.in_flight.is_empty() {
                self.last_progress = now;
            }
            self.in_flight.push_back(now);
            self.issued += 1;
            self.unsent += 1;
        }
    }

    /// Write the preface and the unsent requests until done or the socket
    /// is full.
    fn write_pending(&mut self, request: &[u8]) -> io::Result<()> {
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        while self.preface_left > 0 || self.unsent > 0 {
            let preface = &PREFACE[PREFACE.len() - self.preface_left..];
            let mut slices = [IoSlice::new(&[]); REQUESTS_PER_WRITE + 1];
            let mut count = 0;
            if !preface.is_empty() {
                slices[0] = IoSlice::new(preface);
                count = 1;
            }
            for i in 0..self.unsent.min(REQUESTS_PER_WRITE) {
                let from = if i == 0 { self.request_at } else { 0 };
                slices[count] = IoSlice::new(&request[from..]);
                count += 1;
            }
            let written = match stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            advance(
                written,
                request.len(),
                &mut self.preface_left,
                &mut self.unsent,
                &mut self.request_at,
            );
        }
        Ok(())
    }

    fn finish(&mut self, error: Option<String>) {
        self.end.finish(error);
        self.done = true;
        // Close now: the descriptor is free for the clients still running.
        self.stream = None;
    }
}

impl LoadClient for TcpClient {
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        register_socket(self.stream.as_mut(), registry, token)
    }

    fn check_connected(&mut self) -> bool {
        if self.connected || self.done {
            return self.connected;
        }
        let Some(stream) = &self.stream else {
            return false;
        };
        // mio: a connect has completed when the socket has no error and a peer.
        let error = match stream.take_error() {
            Ok(Some(error)) | Err(error) => error,
            Ok(None) => match stream.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    self.end.connected = true;
                    if let Err(error) = stream.set_nodelay(true) {
                        self.fail(format!("cannot set TCP_NODELAY: {error}"));
                    }
                    return self.connected;
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                    ) =>
                {
                    return false;
                }
                Err(error) => error,
            },
        };
        let message = self.connect_error(&error);
        self.fail(message);
        false
    }

    fn fail(&mut self, error: String) {
        self.finish(Some(error));
    }

    fn start(&mut self, budget: Budget, turn: &mut Turn) {
        self.budget = budget;
        self.pump(turn);
    }

    fn pump(&mut self, turn: &mut Turn) {
        if self.done {
            return;
        }
        let closed = match self.read_replies(turn) {
            Ok(closed) => closed,
            Err(error) => return self.finish(Some(error)),
        };
        let now = Instant::now();
        self.issue(now);
        if self.in_flight.is_empty() {
            // Nothing issued and nothing to wait for: the budget is spent.
            return self.finish(None);
        }
        if closed {
            return self.finish(Some(
                "the server closed the connection before replying".into(),
            ));
        }
        if let Err(error) = self.write_pending(&turn.workload.request) {
            self.finish(Some(describe(&error)));
        }
    }

    fn tick(&mut self, now: Instant, _turn: &mut Turn) {
        // Between replies an idle connection holds no input buffer (done
        // here, not after each reply, to keep allocation off the hot path).
        self.parser.shrink_when_empty();
        if !self.in_flight.is_empty() && now.duration_since(self.last_progress) > self.timeout {
            let partial = if self.parser.is_empty() {
                ""
            } else {
                " (part of it came: a deadline, not restarted by each byte)"
            };
            self.finish(Some(format!(
                "no whole reply within {} s of it being owed{partial} (a slow server? raise --timeout)",
                self.timeout.as_secs_f64()
            )));
        }
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

/// Count `written` bytes off the preface, then off the unsent requests
/// (the first of which has `request_at` bytes written already).
fn advance(
    mut written: usize,
    request_len: usize,
    preface_left: &mut usize,
    unsent: &mut usize,
    request_at: &mut usize,
) {
    let from_preface = written.min(*preface_left);
    *preface_left -= from_preface;
    written -= from_preface;
    while written > 0 {
        let left = request_len - *request_at;
        if written < left {
            *request_at += written;
            return;
        }
        written -= left;
        *request_at = 0;
        *unsent -= 1;
    }
}

/// An I/O error in words a user can act on.
fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => "the server closed the connection before replying".into(),
        io::ErrorKind::ConnectionReset => "the server reset the connection".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::loadgen::workload::{Expect, PayloadType, RequestMode, Workload};
    use crate::loadgen::{BenchReport, Config, Limit, run};
    use std::io::{self, BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread;
    use std::time::Duration;

    /// A server that answers every line of each of `connections`
    /// connections with `reply` (all reads time out, so a broken test
    /// fails instead of hanging).
    fn serve_lines_with(connections: usize, reply: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for _ in 0..connections {
                let (stream, _) = listener.accept().unwrap();
                thread::spawn(move || {
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
            }
        });
        addr
    }

    fn upper(line: &[u8]) -> Vec<u8> {
        String::from_utf8_lossy(line).to_uppercase().into()
    }

    fn config(
        addr: SocketAddr,
        mode: RequestMode,
        clients: usize,
        pipeline: usize,
        size: usize,
    ) -> Config {
        Config {
            addr,
            target: addr.to_string(),
            clients,
            threads: 2,
            pipeline,
            limit: Limit::Requests(20 * clients as u64),
            workload: Workload::new(mode, PayloadType::Text, size, Expect::Upper).unwrap(),
            timeout: Duration::from_secs(5),
            udp: None,
            progress: false,
            stop: std::sync::Arc::default(),
        }
    }

    fn run_against(addr: SocketAddr, pipeline: usize, size: usize) -> BenchReport {
        run(&config(addr, RequestMode::Raw, 1, pipeline, size)).unwrap()
    }

    #[test]
    fn right_replies_are_counted_and_timed() {
        let addr = serve_lines_with(1, upper);
        let report = run_against(addr, 3, 64);
        assert_eq!((report.requests, report.wrong_replies), (20, 0));
        assert!(report.latency_us.max > 0.0);
        assert!(report.ok, "{report}");
        assert_eq!((report.connected, report.threads), (1, 1));
    }

    #[test]
    fn large_requests_in_flight_do_not_deadlock() {
        // 4 × 200 kB in flight each way is more than the socket buffers
        // hold: the client must read while it still has bytes to write.
        let addr = serve_lines_with(1, upper);
        let report = run_against(addr, 4, 200_000);
        assert_eq!((report.requests, report.wrong_replies), (20, 0));
        assert!(report.ok, "{report}");
    }

    #[test]
    fn many_connections_share_a_few_threads() {
        let addr = serve_lines_with(50, upper);
        let report = run(&config(addr, RequestMode::Raw, 50, 2, 64)).unwrap();
        assert_eq!((report.connected, report.threads), (50, 2));
        assert_eq!((report.requests, report.wrong_replies), (1000, 0));
        assert!(report.ok, "{report}");
    }

    #[test]
    fn framed_replies_of_the_server_are_right_with_small_and_large_requests() {
        let server = upcase::net::Server::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .bind()
            .unwrap();
        let addr = server.local_addrs()[0];
        let server = server.spawn().unwrap();
        for (clients, pipeline, size) in [(3, 3, 64), (2, 4, 200_000)] {
            let report = run(&config(addr, RequestMode::Framed, clients, pipeline, size)).unwrap();
            assert!(report.ok, "size {size}: {report}");
            assert_eq!(report.requests, 20 * clients as u64, "size {size}");
        }
        server.begin_shutdown();
        assert!(server.wait(Some(Duration::from_secs(5))));
    }

    #[test]
    fn a_timed_run_ends_after_its_duration() {
        let addr = serve_lines_with(1, upper);
        let mut config = config(addr, RequestMode::Raw, 1, 1, 64);
        config.limit = Limit::Duration(Duration::from_millis(300));
        let report = run(&config).unwrap();
        assert!(report.ok, "{report}");
        assert!(report.requests > 0);
        assert!(
            report.elapsed_s >= 0.3 && report.elapsed_s < 5.0,
            "{report}"
        );
    }

    #[test]
    fn a_wrong_server_gives_wrong_replies() {
        let addr = serve_lines_with(1, |line| {
            let mut reply = upper(line);
            reply[0] = b't';
            reply
        });
        let report = run_against(addr, 1, 64);
        assert_eq!((report.requests, report.wrong_replies), (20, 20));
        assert!(!report.ok);
        assert!(report.errors[0].message.contains("differs"), "{report}");
    }

    #[test]
    fn a_server_that_closes_early_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = vec![];
            reader.read_until(b'\n', &mut line).unwrap();
            reader.get_mut().write_all(&upper(&line)).unwrap();
            // Then close, with requests still in flight.
        });
        let report = run_against(addr, 1, 64);
        assert_eq!(report.requests, 1);
        assert_eq!(report.failed_connections, 1);
        // The next request may reach the closed socket first: then the
        // kernel answers it with a reset instead of the end of the stream.
        let error = &report.errors[0].message;
        assert!(
            error.contains("closed") || error.contains("reset"),
            "{report}"
        );
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = config(addr, RequestMode::Raw, 1, 1, 64);
        config.timeout = Duration::from_millis(200);
        let report = run(&config).unwrap();
        drop(listener);
        assert_eq!(report.connected, 1);
        assert!(
            report.errors[0].message.contains("no whole reply within"),
            "{report}"
        );
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let report = run_against(addr, 1, 64);
        assert_eq!(report.connected, 0);
        assert!(
            report.errors[0].message.contains("cannot connect"),
            "{report}"
        );
    }
}
