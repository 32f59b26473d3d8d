//! The PROXY protocol stage of an event loop (`--proxy-protocol`): accepted
//! sockets whose PROXY header has not arrived yet, before any protocol
//! state exists for them.
//!
//! Why a stage of its own: the core's [`ServerConnection`] is created with
//! the connection's addresses, and per-address limits are applied when it
//! is admitted, so both must wait for the header. Until then a socket costs
//! only its descriptor: the header is read with `MSG_PEEK` into the loop's
//! scratch buffer, parsed whole each time ([`parse_proxy_header`] needs at
//! most [`MAX_V2_HEADER`] bytes), and only the header's own bytes are
//! consumed, so whatever the client sent after it stays in the socket for
//! the connection. A socket that sends no complete header within the header
//! timeout ([`DEFAULT_PROXY_HEADER_TIMEOUT`]) is closed, and a loop holds
//! at most its share of the connection limit of such sockets (more are
//! closed at once), so even a trusted peer cannot pile them up.
//!
//! [`ServerConnection`]: crate::conn::ServerConnection

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::log_throttle::TcpLine;
use super::metrics::{ProxyOutcome, ShardHandle};
use super::proxy::{
    Cidr, MAX_V2_HEADER, ProxiedAddresses, ProxyHeader, ProxyHeaderStatus, parse_proxy_header,
};

/// How long a trusted peer has, by default, to send its whole PROXY header.
/// Balancers send it at once with the connection; a peer that does not is
/// not one.
pub const DEFAULT_PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Tokens of sockets waiting for their header start here, far above the
/// loop's connection tokens.
const TOKEN_BASE: usize = usize::MAX / 2;

/// A socket whose header is complete: hand it to the protocol.
#[derive(Debug)]
pub(crate) struct HeaderDone {
    pub(crate) stream: TcpStream,
    /// The connection's local and peer addresses, from the header (or the
    /// socket's for LOCAL and UNKNOWN).
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
    /// What the header said and who sent it, for the log line (` via …`).
    pub(crate) via: String,
}

/// A socket waiting for its header.
#[derive(Debug)]
struct Waiting {
    stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    deadline: Instant,
}

/// One loop's sockets waiting for their PROXY header.
#[derive(Debug)]
pub(crate) struct HeaderStage {
    trusted: Vec<Cidr>,
    timeout: Duration,
    max_waiting: usize,
    waiting: Vec<Option<Waiting>>,
    free: Vec<usize>,
    /// Deadlines in the order they were set, which (one timeout for all)
    /// is the order they fall due. Entries of sockets gone are skipped.
    deadlines: VecDeque<(Instant, usize)>,
    metrics: Option<ShardHandle>,
}

impl HeaderStage {
    /// A stage accepting headers from peers in `trusted`, within
    /// `timeout`, from at most `max_waiting` sockets at once.
    pub(crate) fn new(
        trusted: Vec<Cidr>,
        timeout: Duration,
        max_waiting: usize,
        metrics: Option<ShardHandle>,
    ) -> HeaderStage {
        HeaderStage {
            trusted,
            timeout,
            max_waiting,
            waiting: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            metrics,
        }
    }

    /// Whether `token` is one of this stage's sockets.
    pub(crate) fn owns(token: Token) -> bool {
        token.0 >= TOKEN_BASE
    }

    /// Count a header's outcome; done before its socket is closed, so that
    /// whoever sees the close sees the count.
    fn count(&self, outcome: ProxyOutcome) {
        if let Some(shard) = &self.metrics {
            shard.proxy_header(outcome);
        }
    }

    /// Count a socket closed before it was served, with this outcome;
    /// whether its log line may be written (`Some(note)` to append: a peer
    /// can make these at will, so they are throttled).
    fn rejected(&self, outcome: ProxyOutcome) -> Option<String> {
        self.count(outcome);
        TcpLine::ProxyRejected(outcome).admit()
    }

    /// [`rejected`](Self::rejected), then close the socket in `slot`.
    fn close(&mut self, registry: &Registry, slot: usize, outcome: ProxyOutcome) -> Option<String> {
        let note = self.rejected(outcome);
        self.remove(registry, slot);
        note
    }

    /// A socket was accepted from `peer` on `local`: close it unless the
    /// peer is trusted, else wait for its header.
    pub(crate) fn accept(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
    ) {
        if !Cidr::any_contains(&self.trusted, peer.ip()) {
            if let Some(note) = self.rejected(ProxyOutcome::Untrusted) {
                warn!(
                    "{peer}: closed: the PROXY protocol is on and {} is not a --trusted-proxy{note}",
                    peer.ip()
                );
            }
            return;
        }
        let waiting = self.waiting.len() - self.free.len();
        if waiting >= self.max_waiting {
            if let Some(note) = self.rejected(ProxyOutcome::Overflow) {
                warn!(
                    "{peer}: closed: {waiting} connections are already waiting for their PROXY header{note}"
                );
            }
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.waiting.push(None);
            self.waiting.len() - 1
        });
        if let Err(error) =
            registry.register(&mut stream, Token(TOKEN_BASE + slot), Interest::READABLE)
        {
            self.free.push(slot);
            return warn!("{peer}: cannot register the connection: {error}");
        }
        let deadline = now + self.timeout;
        self.waiting[slot] = Some(Waiting {
            stream,
            local,
            peer,
            deadline,
        });
        self.deadlines.push_back((deadline, slot));
    }

    /// The socket of `token` is readable: look for its header. `scratch`
    /// must hold at least [`MAX_V2_HEADER`] bytes.
    pub(crate) fn readable(
        &mut self,
        registry: &Registry,
        token: Token,
        scratch: &mut [u8],
    ) -> Option<HeaderDone> {
        let slot = token.0 - TOKEN_BASE;
        let waiting = self.waiting.get_mut(slot)?.as_mut()?;
        let peer = waiting.peer;
        let window = &mut scratch[..MAX_V2_HEADER];
        let peeked = match waiting.stream.peek(window) {
            Ok(0) => {
                if let Some(note) = self.close(registry, slot, ProxyOutcome::Invalid) {
                    warn!("{peer}: closed before sending its PROXY header{note}");
                }
                return None;
            }
            Ok(peeked) => peeked,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return None;
            }
            Err(error) => {
                if let Some(note) = self.close(registry, slot, ProxyOutcome::Invalid) {
                    warn!("{peer}: closed before its PROXY header: socket error: {error}{note}");
                }
                return None;
            }
        };
        match parse_proxy_header(&window[..peeked]) {
            ProxyHeaderStatus::NeedMore => None,
            ProxyHeaderStatus::Invalid(error) => {
                if let Some(note) = self.close(registry, slot, ProxyOutcome::Invalid) {
                    warn!("{peer}: closed: {error}{note}");
                }
                None
            }
            ProxyHeaderStatus::Done { header, consumed } => {
                let mut waiting = self.remove(registry, slot)?;
                // The header's bytes are in the socket (just peeked): take
                // them, leaving the protocol's.
                if let Err(error) = waiting.stream.read_exact(&mut window[..consumed]) {
                    if let Some(note) = self.rejected(ProxyOutcome::Invalid) {
                        warn!("{peer}: closed while reading its PROXY header: {error}{note}");
                    }
                    return None;
                }
                self.count(match header.addresses {
                    ProxiedAddresses::Proxied { .. } => ProxyOutcome::Proxied,
                    ProxiedAddresses::Local => ProxyOutcome::Local,
                    ProxiedAddresses::Unknown => ProxyOutcome::Unknown,
                });
                Some(done(waiting, &header))
            }
        }
    }

    /// When the earliest header deadline falls, if any socket is waiting.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|&(deadline, _)| deadline)
    }

    /// Close the sockets whose header is overdue.
    pub(crate) fn expire(&mut self, registry: &Registry, now: Instant) {
        while let Some(&(deadline, slot)) = self.deadlines.front() {
            if deadline > now {
                return;
            }
            self.deadlines.pop_front();
            let current = self.waiting[slot]
                .as_ref()
                .is_some_and(|waiting| waiting.deadline == deadline);
            if !current {
                continue;
            }
            let admitted = self.rejected(ProxyOutcome::Timeout);
            if let Some(waiting) = self.remove(registry, slot)
                && let Some(note) = admitted
            {
                warn!(
                    "{}: closed: no complete PROXY header within {} s{note}",
                    waiting.peer,
                    self.timeout.as_secs_f64()
                );
            }
        }
    }

    /// Shutdown: close every socket still waiting (nothing was received
    /// from them that needs an answer).
    pub(crate) fn close_all(&mut self, registry: &Registry) {
        for slot in 0..self.waiting.len() {
            if let Some(waiting) = self.remove(registry, slot) {
                debug!(
                    "{}: closed before its PROXY header: server shutdown",
                    waiting.peer
                );
            }
        }
        self.deadlines.clear();
    }

    fn remove(&mut self, registry: &Registry, slot: usize) -> Option<Waiting> {
        let mut waiting = self.waiting.get_mut(slot)?.take()?;
        let _ = registry.deregister(&mut waiting.stream);
        self.free.push(slot);
        Some(waiting)
    }
}

fn done(waiting: Waiting, header: &ProxyHeader) -> HeaderDone {
    let (local, peer) = header.resolve(waiting.local, waiting.peer);
    let via = match header.addresses {
        ProxiedAddresses::Proxied { .. } => {
            format!(" via {} (PROXY v{})", waiting.peer, header.version)
        }
        ProxiedAddresses::Local => format!(" via PROXY v{} LOCAL (a health check)", header.version),
        ProxiedAddresses::Unknown => {
            format!(" via {} (PROXY v{} UNKNOWN)", waiting.peer, header.version)
        }
    };
    HeaderDone {
        stream: waiting.stream,
        local,
        peer,
        via,
    }
}
