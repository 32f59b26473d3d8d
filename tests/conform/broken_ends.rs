//! Deliberately broken TCP servers for the lifecycle cases (issue 23,
//! s01–s15): our `ServerConnection` in a non-blocking loop of its own, one
//! thread per connection, that gets one thing about the end of a
//! connection, its timers or its buffering wrong. Request/reply behaviour
//! is the core's, so every other case passes against them.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use upcase::conn::{ServerConfig, ServerConnection, WireMode};
use upcase::wire::{ErrorCode, ErrorPayload, FrameRepr, FrameType, PREFACE, PREFACE_LEN};

/// What the server gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndBug {
    /// s01: closes as soon as its last frame is written, input unread.
    ClosesWithUnreadInput,
    /// s03: half-closes once its BYE (or fatal ERROR) is written.
    HalfClosesAfterBye,
    /// s02: the idle timer runs from the accept and never restarts.
    IdleFromAcceptOnly,
    /// s04: the idle timer restarts at complete frames but also runs while
    /// output waits for a client that does not read.
    IdleRunsWhileOutputWaits,
    /// s05: reads whatever arrives, however much output waits.
    NoBackpressure,
    /// s06: a raw stream ended by the idle timeout is not half-closed; the
    /// server closes when the linger ends.
    RawNoHalfClose,
    /// s15: at the raw idle timeout held bytes are dropped.
    DropsHeldBytesAtIdle,
    /// s08: a framed-only server closes a raw client with a plain close.
    FramedOnlyClosesRawAtOnce,
    /// s14: the wait for a busy client's preface is this server's linger
    /// (200 ms here), not a wait of at least 1 s.
    BusyWaitIsTheLinger,
}

/// How long the BUSY wait is for [`EndBug::BusyWaitIsTheLinger`].
const SHORT_BUSY_WAIT: Duration = Duration::from_millis(200);

/// A server on 127.0.0.1:0, stopped on drop.
pub struct EndServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EndServer {
    /// Serve with `config`, and turn away connections over `limit`.
    pub fn start(bug: EndBug, config: ServerConfig, limit: Option<usize>) -> EndServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                if limit.is_some_and(|max| open.load(Ordering::SeqCst) >= max) {
                    std::thread::spawn(move || busy(stream, bug));
                    continue;
                }
                open.fetch_add(1, Ordering::SeqCst);
                let open = open.clone();
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = Driver::new(stream, bug, config).and_then(Driver::run);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        EndServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EndServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection over the limit: the preface (any version) within the
/// BUSY wait gets our preface and ERROR(BUSY), then input is discarded
/// until the client closes.
fn busy(mut stream: TcpStream, bug: EndBug) {
    let wait = match bug {
        EndBug::BusyWaitIsTheLinger => SHORT_BUSY_WAIT,
        _ => Duration::from_secs(2),
    };
    let _ = stream.set_read_timeout(Some(wait));
    let mut preface = [0u8; PREFACE_LEN];
    if stream.read_exact(&mut preface).is_err() || preface[..7] != PREFACE[..7] {
        let _ = stream.shutdown(Shutdown::Write);
        return discard_until_closed(&mut stream);
    }
    let mut reply = PREFACE.to_vec();
    reply.extend_from_slice(&idle_or_busy(&stream, ErrorCode::BUSY));
    let _ = stream.write_all(&reply);
    discard_until_closed(&mut stream);
}

fn discard_until_closed(stream: &mut TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 4096];
    while let Ok(1..) = stream.read(&mut sink) {}
}

/// An ERROR with `code` from the server to its peer, encoded.
fn idle_or_busy(stream: &TcpStream, code: ErrorCode) -> Vec<u8> {
    let local = stream.local_addr().expect("local");
    let peer = stream.peer_addr().expect("peer");
    FrameRepr {
        src: local.into(),
        dst: peer.into(),
        ..FrameRepr::new(
            FrameType::Error,
            ErrorPayload::new(code, "broken").to_bytes(),
        )
    }
    .to_bytes()
    .to_vec()
}

/// One connection's loop.
struct Driver {
    stream: TcpStream,
    bug: EndBug,
    core: ServerConnection,
    /// The idle timeout the bug keeps itself (the core's is switched off).
    own_idle: Option<Duration>,
    idle_since: Instant,
    frames_seen: u64,
    bytes_seen: u64,
    /// Input read beyond what the core takes (NoBackpressure).
    surplus: Vec<u8>,
    eof_read: bool,
    eof_given: bool,
    write_shut: bool,
}

impl Driver {
    fn new(stream: TcpStream, bug: EndBug, mut config: ServerConfig) -> std::io::Result<Driver> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let own_idle = matches!(
            bug,
            EndBug::IdleFromAcceptOnly
                | EndBug::IdleRunsWhileOutputWaits
                | EndBug::DropsHeldBytesAtIdle
        )
        .then_some(config.idle_timeout);
        if own_idle.is_some() {
            config.idle_timeout = Duration::from_secs(3600);
        }
        let now = Instant::now();
        let core = ServerConnection::new(config, stream.local_addr()?, stream.peer_addr()?, now);
        Ok(Driver {
            stream,
            bug,
            core,
            own_idle,
            idle_since: now,
            frames_seen: 0,
            bytes_seen: 0,
            surplus: Vec::new(),
            eof_read: false,
            eof_given: false,
            write_shut: false,
        })
    }

    fn run(mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let now = Instant::now();
            let mut moved = self.write(now)?;
            while self.core.poll_event().is_some() {}
            if self.core.is_closed() {
                return Ok(());
            }
            if self.ends_here() {
                return Ok(());
            }
            self.half_close();
            if self.own_idle_expired(now) {
                return self.own_idle_timeout();
            }
            if self.core.poll_timeout().is_some_and(|due| due <= now) {
                self.core.handle_timeout(now);
                moved = true;
            }
            moved |= self.read(now, &mut buf)?;
            if !moved {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn write(&mut self, now: Instant) -> std::io::Result<bool> {
        let mut moved = false;
        while !self.core.pending_output().is_empty() {
            match self.stream.write(self.core.pending_output()) {
                Ok(n) => {
                    self.core.mark_sent(now, n).expect("sent what was pending");
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// The bugs that end a connection by a plain close.
    fn ends_here(&self) -> bool {
        let flushed = self.core.has_ended() && self.core.pending_output().is_empty();
        match self.bug {
            EndBug::ClosesWithUnreadInput => flushed,
            EndBug::FramedOnlyClosesRawAtOnce => {
                flushed && self.core.mode() != Some(WireMode::Framed)
            }
            _ => false,
        }
    }

    fn half_close(&mut self) {
        if self.write_shut {
            return;
        }
        let wanted = match self.bug {
            EndBug::RawNoHalfClose => false,
            EndBug::HalfClosesAfterBye => {
                self.core.has_ended() && self.core.pending_output().is_empty()
            }
            _ => self.core.wants_write_shutdown(),
        };
        if wanted {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.write_shut = true;
        }
    }

    /// The bug's own idle timer: from the accept only, or restarted at
    /// complete frames (framed) or bytes (raw), whether or not output waits.
    fn own_idle_expired(&mut self, now: Instant) -> bool {
        let Some(idle) = self.own_idle else {
            return false;
        };
        let stats = self.core.stats();
        if self.bug != EndBug::IdleFromAcceptOnly
            && (stats.frames_in != self.frames_seen || stats.bytes_in != self.bytes_seen)
        {
            let raw = self.core.mode() == Some(WireMode::Raw);
            if stats.frames_in != self.frames_seen || raw {
                self.idle_since = now;
            }
            self.frames_seen = stats.frames_in;
            self.bytes_seen = stats.bytes_in;
        }
        !self.core.has_ended() && now >= self.idle_since + idle
    }

    /// Framed: the pending output, ERROR(IDLE_TIMEOUT), close. Raw: the
    /// pending output without the held bytes, half-close, close.
    fn own_idle_timeout(mut self) -> std::io::Result<()> {
        let mut tail = self.core.pending_output().to_vec();
        let framed = self.core.mode() == Some(WireMode::Framed);
        if framed {
            tail.extend_from_slice(&idle_or_busy(&self.stream, ErrorCode::IDLE_TIMEOUT));
        }
        self.stream.set_nonblocking(false)?;
        self.stream
            .set_write_timeout(Some(Duration::from_secs(10)))?;
        self.stream.write_all(&tail)?;
        if !framed {
            self.stream.shutdown(Shutdown::Write)?;
        }
        discard_until_closed(&mut self.stream);
        Ok(())
    }

    fn read(&mut self, now: Instant, buf: &mut [u8]) -> std::io::Result<bool> {
        let capacity = self.core.read_capacity().min(buf.len());
        let greedy = self.bug == EndBug::NoBackpressure;
        if !self.eof_read && (capacity > 0 || greedy) {
            let want = if greedy { buf.len() } else { capacity };
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => self.eof_read = true,
                Ok(n) => self.surplus.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        let take = self.surplus.len().min(self.core.read_capacity());
        let mut moved = false;
        if take > 0 {
            self.core
                .handle_input(now, &self.surplus[..take])
                .expect("within capacity");
            self.surplus.drain(..take);
            moved = true;
        }
        if self.eof_read && self.surplus.is_empty() && !self.eof_given {
            self.eof_given = true;
            self.core.handle_eof(now);
            moved = true;
        }
        Ok(moved)
    }
}
