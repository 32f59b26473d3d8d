//! The TCP server: listeners, an accept loop per listener, a thread per
//! connection, the connection limit, and shutdown from another thread.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{error, info, warn};

use super::connection::{self, POLL_INTERVAL};
use super::listen::{bind_tcp, connectable};
use super::udp::{UdpRateLimit, UdpStats, bind_udp, serve_udp};
use crate::conn::{DatagramConfig, ServerConfig, ServerConnection};

/// Where `upcase serve` listens when told nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9999";

/// The stack of a connection thread. The loop keeps its buffers on the heap
/// and never recurses, so 64 KiB is plenty, and 1000 connections reserve
/// 64 MiB of address space instead of 2 GiB.
const CONNECTION_STACK: usize = 64 * 1024;

/// The longest a connection over the limit may take to say which mode it
/// speaks (it gets BUSY or is closed right after).
const BUSY_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often [`ServerBuilder::bind`] picks a new port when port 0's TCP
/// port is taken for UDP.
const PORT_ZERO_ATTEMPTS: usize = 8;

/// How to build a [`Server`]; see [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    config: ServerConfig,
    listen: Vec<SocketAddr>,
    max_connections: usize,
    backlog: i32,
    udp: bool,
    udp_rate_limit: UdpRateLimit,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder {
            config: ServerConfig::default(),
            listen: Vec::new(),
            max_connections: 1024,
            backlog: 128,
            udp: true,
            udp_rate_limit: UdpRateLimit::default(),
        }
    }
}

impl ServerBuilder {
    /// The protocol settings every connection gets.
    pub fn config(mut self, config: ServerConfig) -> ServerBuilder {
        self.config = config;
        self
    }

    /// Listen on `addr` too (port 0 picks a free port). Without any,
    /// [`DEFAULT_LISTEN`].
    pub fn listen(mut self, addr: SocketAddr) -> ServerBuilder {
        self.listen.push(addr);
        self
    }

    /// Connections served at once; more get BUSY (framed) or are closed (raw).
    pub fn max_connections(mut self, max: usize) -> ServerBuilder {
        self.max_connections = max;
        self
    }

    /// The kernel's queue of connections not yet accepted.
    pub fn backlog(mut self, backlog: i32) -> ServerBuilder {
        self.backlog = backlog;
        self
    }

    /// Whether to answer UDP datagrams on each listener's address and port
    /// too (SPEC.md §8). On by default.
    pub fn udp(mut self, udp: bool) -> ServerBuilder {
        self.udp = udp;
        self
    }

    /// How many datagrams a second each source address may send
    /// (SPEC.md §8.6); [`UdpRateLimit::default`] unless told.
    pub fn udp_rate_limit(mut self, limit: UdpRateLimit) -> ServerBuilder {
        self.udp_rate_limit = limit;
        self
    }

    /// Bind every listener; nothing is accepted before [`Server::spawn`].
    ///
    /// # Errors
    /// The first address that cannot be bound (in use, not local...).
    pub fn bind(self) -> io::Result<Server> {
        let addrs = if self.listen.is_empty() {
            vec![DEFAULT_LISTEN.parse().expect("the default address parses")]
        } else {
            self.listen.clone()
        };
        let any_port_zero = addrs.iter().any(|addr| addr.port() == 0);
        let mut attempt = 0;
        loop {
            match self.bind_once(&addrs) {
                // Port 0 lets the kernel pick a TCP port; UDP then needs the
                // same number, which another program may hold: pick again.
                Err(error)
                    if error.kind() == io::ErrorKind::AddrInUse
                        && any_port_zero
                        && attempt < PORT_ZERO_ATTEMPTS =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn bind_once(&self, addrs: &[SocketAddr]) -> io::Result<Server> {
        let listeners = addrs
            .iter()
            .map(|&addr| bind_tcp(addr, self.backlog))
            .collect::<io::Result<Vec<_>>>()?;
        let local_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        // UDP on the port TCP actually got, so port 0 means one port for both.
        let udp_sockets = if self.udp {
            local_addrs
                .iter()
                .map(|&addr| bind_udp(addr))
                .collect::<io::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let udp_addrs = udp_sockets
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Server {
            listeners,
            local_addrs,
            udp_sockets,
            udp_addrs,
            settings: Arc::new(Settings {
                config: self.config.clone(),
                max_connections: self.max_connections,
                udp_rate_limit: self.udp_rate_limit,
            }),
        })
    }
}

/// A bound UPCASE/1 TCP server, raw and framed on the same port.
///
/// Each listener gets an accept thread and each connection a thread of its
/// own (with a small stack): a slow, silent or misbehaving client only ever
/// holds its own thread. The seam for UDP is [`ServerBuilder::bind`] and
/// [`Server::spawn`]: a datagram socket bound on each listener's address
/// gets its own thread next to the accept loops, and joins
/// [`listening_line`](Self::listening_line).
///
/// ```
/// use upcase::net::{Client, Server};
/// use std::time::Duration;
///
/// let server = Server::builder().listen("127.0.0.1:0".parse()?).bind()?;
/// let addr = server.local_addrs()[0];
/// let handle = server.spawn()?;
///
/// let mut client = Client::connect(addr, Duration::from_secs(5))?;
/// assert_eq!(client.upcase("straße")?, "STRASSE");
/// client.bye()?;
///
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    listeners: Vec<TcpListener>,
    local_addrs: Vec<SocketAddr>,
    udp_sockets: Vec<UdpSocket>,
    udp_addrs: Vec<SocketAddr>,
    settings: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    config: ServerConfig,
    max_connections: usize,
    udp_rate_limit: UdpRateLimit,
}

impl Server {
    /// Start configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The addresses listened on, with the real port where 0 was asked for.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The UDP addresses answered on (empty when UDP is off).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The line `upcase serve` prints first, naming every socket listened on:
    /// `upcase listening on tcp 127.0.0.1:9999, udp 127.0.0.1:9999`. Scripts
    /// find the port by splitting after `listening on ` at `, ` and then at
    /// the first space.
    pub fn listening_line(&self) -> String {
        let tcp = self.local_addrs.iter().map(|addr| format!("tcp {addr}"));
        let udp = self.udp_addrs.iter().map(|addr| format!("udp {addr}"));
        let sockets: Vec<String> = tcp.chain(udp).collect();
        format!("upcase listening on {}", sockets.join(", "))
    }

    /// Start accepting on background threads.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let shared = Arc::new(Shared::default());
        let mut accept_threads = Vec::new();
        let datagram_config = DatagramConfig {
            mode: self.settings.config.mode,
            raw_case: self.settings.config.raw_case,
            max_data_len: self.settings.config.max_data_len,
        };
        let udp_rate_limit = self.settings.udp_rate_limit;
        for socket in self.udp_sockets {
            let thread_shared = Arc::clone(&shared);
            let addr = socket.local_addr()?;
            let thread = thread::Builder::new()
                .name(format!("udp {addr}"))
                .spawn(move || {
                    let stats = &thread_shared.udp;
                    let stop = &thread_shared.shutdown;
                    if let Err(error) =
                        serve_udp(&socket, &datagram_config, udp_rate_limit, stop, stats)
                    {
                        error!("udp {addr} stopped: {error}");
                    }
                })?;
            accept_threads.push(thread);
        }
        for (listener, addr) in self.listeners.into_iter().zip(&self.local_addrs) {
            let thread_shared = Arc::clone(&shared);
            let settings = Arc::clone(&self.settings);
            let thread = thread::Builder::new()
                .name(format!("accept {addr}"))
                .spawn(move || accept_loop(&listener, &thread_shared, &settings));
            match thread {
                Ok(thread) => accept_threads.push(thread),
                Err(error) => {
                    let handle = ServerHandle {
                        local_addrs: self.local_addrs,
                        shared,
                        accept_threads,
                    };
                    handle.shutdown();
                    return Err(error);
                }
            }
        }
        Ok(ServerHandle {
            local_addrs: self.local_addrs,
            shared,
            accept_threads,
        })
    }
}

/// A running server: its addresses, its load, and the way to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    accept_threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The addresses listened on.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Connections whose thread is still running, those over the limit
    /// (being told BUSY) included.
    pub fn live_connections(&self) -> usize {
        *self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Counters of the UDP service.
    pub fn udp_stats(&self) -> &UdpStats {
        &self.shared.udp
    }

    /// Output bytes produced for clients and not yet taken by them, summed
    /// over every connection. Bounded by about `max_pending_output` per
    /// connection however little the clients read: the backpressure figure.
    pub fn pending_output_bytes(&self) -> usize {
        self.shared.pending_output.load(Ordering::Relaxed)
    }

    /// Stop accepting and tell every connection to finish: answer what it
    /// already received, say BYE (framed) or flush (raw), and close. Returns
    /// at once; see [`wait`](Self::wait).
    pub fn begin_shutdown(&self) {
        if self.shared.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake each accept loop blocked in accept() with a connection of our own.
        for &addr in &self.local_addrs {
            let _ = TcpStream::connect_timeout(&connectable(addr), Duration::from_secs(1));
        }
    }

    /// Wait until every connection has closed, at most `timeout` (`None`:
    /// no limit). Whether they all did.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut threads = self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while *threads > 0 {
            let wait = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
                None => POLL_INTERVAL,
            };
            threads = self
                .shared
                .threads_done
                .wait_timeout(threads, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Shut down gracefully and wait for every thread. Takes at most about
    /// the linger time plus the 0.2 s poll interval when clients cooperate.
    pub fn shutdown(mut self) {
        self.begin_shutdown();
        for thread in std::mem::take(&mut self.accept_threads) {
            let _ = thread.join();
        }
        self.wait(None);
    }
}

/// State every thread of one server shares.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    shutdown: AtomicBool,
    /// Connections within the limit.
    served: AtomicUsize,
    /// Connections over the limit, being refused.
    refusing: AtomicUsize,
    /// Connection threads alive (both kinds), guarded for [`ServerHandle::wait`].
    threads: Mutex<usize>,
    threads_done: Condvar,
    pending_output: AtomicUsize,
    udp: UdpStats,
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// One connection's pending output went from `before` to `after` bytes.
    pub(crate) fn adjust_pending(&self, before: usize, after: usize) {
        if after > before {
            self.pending_output
                .fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.pending_output
                .fetch_sub(before - after, Ordering::Relaxed);
        }
    }
}

/// Whether a connection is served or refused (over the limit).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Served,
    Refusing,
}

impl Shared {
    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Served => &self.served,
            Kind::Refusing => &self.refusing,
        }
    }
}

/// Counts a connection thread for its whole life, even if it panics.
struct ThreadGuard {
    shared: Arc<Shared>,
    kind: Kind,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.shared
            .counter(self.kind)
            .fetch_sub(1, Ordering::SeqCst);
        let mut threads = self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *threads -= 1;
        self.shared.threads_done.notify_all();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, settings: &Arc<Settings>) {
    loop {
        let accepted = listener.accept();
        if shared.is_shutting_down() {
            return;
        }
        match accepted {
            Ok((stream, peer)) => start_connection(stream, peer, shared, settings),
            Err(error) => {
                // Out of file descriptors and the like: do not spin.
                warn!("accept failed: {error}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Give an accepted socket its thread: a normal connection within the limit,
/// a refusing one (BUSY) over it, or none at all when even the refusers are
/// too many.
fn start_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    settings: &Arc<Settings>,
) {
    let local = match stream.local_addr() {
        Ok(local) => local,
        Err(error) => return warn!("{peer}: cannot read the local address: {error}"),
    };
    let _ = stream.set_nodelay(true);
    let now = Instant::now();
    let max = settings.max_connections;
    let over_limit = shared.served.fetch_add(1, Ordering::SeqCst) >= max;
    let (conn, kind) = if over_limit {
        shared.served.fetch_sub(1, Ordering::SeqCst);
        // Refusing costs a thread too; bound those threads and their life.
        if shared.refusing.fetch_add(1, Ordering::SeqCst) >= max / 8 + 16 {
            shared.refusing.fetch_sub(1, Ordering::SeqCst);
            return info!("{peer} dropped: over the connection limit of {max}");
        }
        info!("{peer} connected over the connection limit of {max}");
        let mut config = settings.config.clone();
        config.idle_timeout = config.idle_timeout.min(BUSY_IDLE_TIMEOUT);
        config.linger = config.linger.min(BUSY_IDLE_TIMEOUT);
        let conn = ServerConnection::new_busy(config, local, peer, now, max);
        (conn, Kind::Refusing)
    } else {
        info!("{peer} connected to {local}");
        let conn = ServerConnection::new(settings.config.clone(), local, peer, now);
        (conn, Kind::Served)
    };
    *shared.threads.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    let guard = ThreadGuard {
        shared: Arc::clone(shared),
        kind,
    };
    let spawned = thread::Builder::new()
        .name(format!("conn {peer}"))
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let guard = guard;
            connection::run(stream, conn, peer, &guard.shared);
        });
    if let Err(error) = spawned {
        // The closure (and with it the guard and the socket) was dropped.
        error!("{peer}: cannot start a connection thread: {error}");
    }
}
