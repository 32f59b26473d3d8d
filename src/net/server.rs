//! The server: listeners, one event loop per core, the UDP threads, and
//! shutdown from another thread.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::error;
use mio::Waker;

use super::budget::MemoryBudget;
use super::event_loop::{EventLoop, LoopSettings};
use super::fd_limit::connection_descriptors;
use super::listen::bind_tcp_group;
use super::metrics::{GaugeSource, ServerGauges, ServerMetrics};
use super::proxy::Cidr;
use super::proxy_stage::DEFAULT_PROXY_HEADER_TIMEOUT;
use super::slots::ConnectionLimit;
use super::udp::{UdpRateLimit, UdpStats, bind_udp, serve_udp};
use super::work::DEFAULT_WORK_PER_TURN;
use crate::conn::{DatagramConfig, ServerConfig};
use crate::wire::HEADER_LEN;

/// Where `upcase serve` listens when told nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9999";

/// The default connection limit (`upcase serve` lowers it to what the
/// descriptor limit allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// The default memory budget for buffered input and output beyond each
/// connection's small reserve, over all connections.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// The default bound on what one connection buffers before it stops reading.
pub const DEFAULT_MAX_BUFFER: usize = 2 << 20;

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
    threads: Option<usize>,
    memory_budget: usize,
    max_buffer: usize,
    proxy_protocol: Option<Vec<Cidr>>,
    proxy_header_timeout: Duration,
    metrics: bool,
    work_per_turn: usize,
}

impl Default for ServerBuilder {
    fn default() -> ServerBuilder {
        ServerBuilder {
            config: ServerConfig::default(),
            listen: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            backlog: 1024,
            udp: true,
            udp_rate_limit: UdpRateLimit::default(),
            threads: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            max_buffer: DEFAULT_MAX_BUFFER,
            proxy_protocol: None,
            proxy_header_timeout: DEFAULT_PROXY_HEADER_TIMEOUT,
            metrics: false,
            work_per_turn: DEFAULT_WORK_PER_TURN,
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

    /// Connections served at once, over all event loops (default
    /// [`DEFAULT_MAX_CONNECTIONS`]); more get BUSY (framed) or are closed
    /// (raw), SPEC.md §9.3.
    pub fn max_connections(mut self, max: usize) -> ServerBuilder {
        self.max_connections = max;
        self
    }

    /// The kernel's queue of connections not yet accepted, per loop.
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

    /// Event loops (threads) serving TCP; default: one per available core.
    /// Never more than `max_connections`.
    pub fn threads(mut self, threads: usize) -> ServerBuilder {
        self.threads = Some(threads.max(1));
        self
    }

    /// Bytes of buffered input and output, over all connections, beyond the
    /// small reserve each connection has (default [`DEFAULT_MEMORY_BUDGET`]).
    /// Once spent, connections over their reserve stop reading.
    pub fn memory_budget(mut self, bytes: usize) -> ServerBuilder {
        self.memory_budget = bytes;
        self
    }

    /// Bytes one connection may buffer before it stops reading (default
    /// [`DEFAULT_MAX_BUFFER`]; never less than one maximum-size frame).
    pub fn max_buffer(mut self, bytes: usize) -> ServerBuilder {
        self.max_buffer = bytes;
        self
    }

    /// Work units one connection may use of its loop before the loop serves
    /// the others (default [`DEFAULT_WORK_PER_TURN`]; at least 1): each
    /// read call, byte read, byte of output, frame and ERROR costs units
    /// (SPEC.md §11, "CPU"). Smaller turns share a loop more finely.
    pub fn work_per_turn(mut self, units: usize) -> ServerBuilder {
        self.work_per_turn = units.max(1);
        self
    }

    /// Accept HAProxy's PROXY protocol (v1 and v2, TCP; SPEC.md §13) from
    /// peers in `trusted`, and close connections from any other peer. Each
    /// connection must then start with a header, whose addresses the
    /// connection uses (reply fill-in, logs, limits, metrics).
    pub fn proxy_protocol(mut self, trusted: Vec<Cidr>) -> ServerBuilder {
        self.proxy_protocol = Some(trusted);
        self
    }

    /// With [`proxy_protocol`](Self::proxy_protocol): how long a trusted
    /// peer has to send its whole header (default
    /// [`DEFAULT_PROXY_HEADER_TIMEOUT`]) before it is closed.
    pub fn proxy_header_timeout(mut self, timeout: Duration) -> ServerBuilder {
        self.proxy_header_timeout = timeout;
        self
    }

    /// Keep [`ServerMetrics`] (see [`Server::metrics`]). Off by default:
    /// without it nothing is counted.
    pub fn metrics(mut self, on: bool) -> ServerBuilder {
        self.metrics = on;
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
        retry_port_clashes(&addrs, || self.bind_once(&addrs))
    }

    /// How many event loops to run.
    fn thread_count(&self) -> usize {
        let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
        self.threads
            .unwrap_or(cores)
            .min(self.max_connections)
            .max(1)
    }

    fn bind_once(&self, addrs: &[SocketAddr]) -> io::Result<Server> {
        let threads = self.thread_count();
        // groups[a][t]: address a's listener for loop t.
        let groups = addrs
            .iter()
            .map(|&addr| bind_tcp_group(addr, self.backlog, threads))
            .collect::<io::Result<Vec<_>>>()?;
        let local_addrs = groups
            .iter()
            .map(|group| group[0].local_addr())
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
        let mut per_loop: Vec<Vec<TcpListener>> = (0..threads).map(|_| Vec::new()).collect();
        for group in groups {
            for (listeners, listener) in per_loop.iter_mut().zip(group) {
                listeners.push(listener);
            }
        }
        // Never stop reading below one whole frame (or raw read), or it
        // could never complete.
        let max_frame = (HEADER_LEN + self.config.max_data_len as usize).max(64 * 1024);
        Ok(Server {
            per_loop,
            local_addrs,
            udp_sockets,
            udp_addrs,
            udp_rate_limit: self.udp_rate_limit,
            max_connections: self.max_connections,
            settings: Arc::new(LoopSettings {
                config: self.config.clone(),
                proxy_protocol: self
                    .proxy_protocol
                    .clone()
                    .map(|trusted| (trusted, self.proxy_header_timeout)),
                // A shard per loop.
                metrics: self.metrics.then(|| Arc::new(ServerMetrics::new(threads))),
                work_per_turn: self.work_per_turn,
            }),
            budget: MemoryBudget::new(self.memory_budget, self.max_buffer.max(max_frame)),
        })
    }
}

/// Call `bind_once` (binding `addrs`) until it succeeds or fails for good.
/// Port 0 lets the kernel pick a TCP port; UDP then needs the same number,
/// which another program may hold: when a port was picked and it is in
/// use, pick again, a few times. Any other error is returned at once.
fn retry_port_clashes<T>(
    addrs: &[SocketAddr],
    mut bind_once: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let port_picked = addrs.iter().any(|addr| addr.port() == 0);
    let mut retries = 0;
    loop {
        match bind_once() {
            Err(error)
                if error.kind() == io::ErrorKind::AddrInUse
                    && port_picked
                    && retries < PORT_ZERO_ATTEMPTS =>
            {
                retries += 1;
            }
            result => return result,
        }
    }
}

/// A bound UPCASE/1 server, raw and framed on the same port, over TCP and
/// (unless turned off) UDP.
///
/// TCP is served by one event loop per core (see
/// [`ServerBuilder::threads`]), each with its own listening socket on the
/// same port, so the kernel spreads connections over them. Each listener's
/// address also gets a UDP socket with a thread of its own.
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
    /// The listeners of each loop, one per listen address.
    per_loop: Vec<Vec<TcpListener>>,
    local_addrs: Vec<SocketAddr>,
    udp_sockets: Vec<UdpSocket>,
    udp_addrs: Vec<SocketAddr>,
    udp_rate_limit: UdpRateLimit,
    max_connections: usize,
    settings: Arc<LoopSettings>,
    budget: MemoryBudget,
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

    /// The event loops that will serve TCP.
    pub fn threads(&self) -> usize {
        self.per_loop.len()
    }

    /// The counters the server will keep, when built with
    /// [`ServerBuilder::metrics`]: hand them to an exposition (`upcase serve
    /// --metrics` serves them to Prometheus).
    pub fn metrics(&self) -> Option<&Arc<ServerMetrics>> {
        self.settings.metrics.as_ref()
    }

    /// Start serving on background threads.
    ///
    /// # Errors
    /// When a loop or a thread cannot be started.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let shared = Arc::new(Shared {
            shutdown: AtomicBool::new(false),
            live: Mutex::new(0),
            all_closed: Condvar::new(),
            budget: self.budget,
            limit: ConnectionLimit::new(self.max_connections),
            descriptor_cap: connection_descriptors(self.per_loop.len(), self.local_addrs.len()),
            udp: UdpStats::default(),
        });
        if let Some(metrics) = &self.settings.metrics {
            metrics.attach(Arc::clone(&shared) as Arc<dyn GaugeSource>);
        }
        let mut handle = ServerHandle {
            local_addrs: self.local_addrs,
            shared: Arc::clone(&shared),
            wakers: Vec::new(),
            threads: Vec::new(),
        };
        let loops = self.per_loop.len();
        let mut loops_built = Vec::with_capacity(loops);
        for listeners in self.per_loop {
            let (event_loop, waker) = EventLoop::new(
                listeners,
                loops,
                self.max_connections,
                Arc::clone(&self.settings),
                Arc::clone(&shared),
            )?;
            handle.wakers.push(waker);
            loops_built.push(event_loop);
        }
        let datagram_config = DatagramConfig {
            mode: self.settings.config.mode,
            raw_case: self.settings.config.raw_case,
            max_data_len: self.settings.config.max_data_len,
        };
        let udp_rate_limit = self.udp_rate_limit;
        for socket in self.udp_sockets {
            let thread_shared = Arc::clone(&shared);
            let addr = socket.local_addr()?;
            let spawned = thread::Builder::new()
                .name(format!("udp {addr}"))
                .spawn(move || {
                    let stats = &thread_shared.udp;
                    let stop = &thread_shared.shutdown;
                    if let Err(error) =
                        serve_udp(&socket, &datagram_config, udp_rate_limit, stop, stats)
                    {
                        error!("udp {addr} stopped: {error}");
                    }
                });
            match spawned {
                Ok(thread) => handle.threads.push(thread),
                Err(error) => {
                    handle.shutdown();
                    return Err(error);
                }
            }
        }
        for (index, event_loop) in loops_built.into_iter().enumerate() {
            let spawned = thread::Builder::new()
                .name(format!("loop {index}"))
                .spawn(move || event_loop.run());
            match spawned {
                Ok(thread) => handle.threads.push(thread),
                Err(error) => {
                    handle.shutdown();
                    return Err(error);
                }
            }
        }
        Ok(handle)
    }
}

/// A running server: its addresses, its load, and the way to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    wakers: Vec<Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The addresses listened on.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Open TCP connections, those over the limit (being told BUSY) included.
    pub fn live_connections(&self) -> usize {
        *self.shared.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counters of the UDP service.
    pub fn udp_stats(&self) -> &UdpStats {
        &self.shared.udp
    }

    /// Output bytes produced for clients and not yet taken by them, summed
    /// over every connection. Bounded by about `max_pending_output` per
    /// connection however little the clients read: the backpressure figure.
    pub fn pending_output_bytes(&self) -> usize {
        self.shared.budget.pending_output()
    }

    /// Bytes buffered (input and output) beyond the connections' reserves:
    /// what is charged to the memory budget now.
    pub fn budget_used_bytes(&self) -> usize {
        self.shared.budget.charged()
    }

    /// Stop accepting and tell every connection to finish: answer what it
    /// already received, say BYE (framed) or flush (raw), and close. Returns
    /// at once; see [`wait`](Self::wait).
    pub fn begin_shutdown(&self) {
        if self.shared.shutdown.swap(true, Ordering::SeqCst) {
            return;
        }
        for waker in &self.wakers {
            if let Err(error) = waker.wake() {
                error!("cannot wake an event loop for shutdown: {error}");
            }
        }
    }

    /// Wait until every connection has closed, at most `timeout` (`None`:
    /// no limit). Whether they all did.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut live = self.shared.live.lock().unwrap_or_else(|e| e.into_inner());
        while *live > 0 {
            live = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.shared
                        .all_closed
                        .wait_timeout(live, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self
                    .shared
                    .all_closed
                    .wait(live)
                    .unwrap_or_else(|e| e.into_inner()),
            };
        }
        true
    }

    /// Shut down gracefully and wait for every thread. Takes at most about
    /// the linger time when clients cooperate.
    pub fn shutdown(mut self) {
        self.begin_shutdown();
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

/// State every thread of one server shares. Loops touch it only when a
/// connection opens or closes, and (the budget) when a connection's
/// buffered bytes change.
#[derive(Debug)]
pub(crate) struct Shared {
    shutdown: AtomicBool,
    /// Open connections, guarded for [`ServerHandle::wait`].
    live: Mutex<usize>,
    all_closed: Condvar,
    budget: MemoryBudget,
    limit: ConnectionLimit,
    /// Open connections the descriptor limit allows (see
    /// [`connection_descriptors`]).
    descriptor_cap: usize,
    udp: UdpStats,
}

/// What `--metrics` reads at each scrape.
impl GaugeSource for Shared {
    fn gauges(&self) -> ServerGauges {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        ServerGauges {
            memory_budget_used: self.budget.charged() as u64,
            memory_budget: self.budget.limit() as u64,
            pending_output: self.budget.pending_output() as u64,
            udp_received: load(&self.udp.received),
            udp_sent: load(&self.udp.answered),
            udp_dropped: load(&self.udp.dropped) + load(&self.udp.send_errors),
            udp_rate_limited: load(&self.udp.rate_limited),
        }
    }
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    pub(crate) fn limit(&self) -> &ConnectionLimit {
        &self.limit
    }

    /// Whether the process has a descriptor left for another connection.
    pub(crate) fn has_descriptor_for_another(&self) -> bool {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) < self.descriptor_cap
    }

    pub(crate) fn connection_opened(&self) {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    pub(crate) fn connection_closed(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        *live -= 1;
        if *live == 0 {
            self.all_closed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::mpsc;

    use super::*;

    fn shared(descriptor_cap: usize) -> Arc<Shared> {
        Arc::new(Shared {
            shutdown: AtomicBool::new(false),
            live: Mutex::new(0),
            all_closed: Condvar::new(),
            budget: MemoryBudget::new(1000, 100),
            limit: ConnectionLimit::new(10),
            descriptor_cap,
            udp: UdpStats::default(),
        })
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|addr| addr.parse().unwrap()).collect()
    }

    /// How many times [`retry_port_clashes`] binds `addrs` when every
    /// try fails with `error` (at most 100: more is "forever").
    fn tries(addrs: &[SocketAddr], error: io::ErrorKind) -> usize {
        let mut tries = 0;
        let result: io::Result<()> = retry_port_clashes(addrs, || {
            tries += 1;
            assert!(tries < 100, "retried forever");
            Err(io::Error::from(error))
        });
        assert_eq!(result.unwrap_err().kind(), error, "the last error");
        tries
    }

    #[test]
    fn a_picked_port_in_use_is_tried_again_eight_times_and_nothing_else() {
        let in_use = io::ErrorKind::AddrInUse;
        assert_eq!(tries(&addrs(&["127.0.0.1:0"]), in_use), 1 + 8);
        assert_eq!(tries(&addrs(&["127.0.0.1:9999", "[::1]:0"]), in_use), 1 + 8);
        assert_eq!(
            tries(&addrs(&["127.0.0.1:9999", "[::1]:9999"]), in_use),
            1,
            "no port was picked: trying again cannot help"
        );
        let denied = io::ErrorKind::PermissionDenied;
        assert_eq!(tries(&addrs(&["127.0.0.1:0"]), denied), 1);
    }

    #[test]
    fn a_clash_that_goes_away_is_bound() {
        let mut tries = 0;
        let result = retry_port_clashes(&addrs(&["127.0.0.1:0"]), || {
            tries += 1;
            if tries < 4 {
                Err(io::Error::from(io::ErrorKind::AddrInUse))
            } else {
                Ok(tries)
            }
        });
        assert_eq!(result.unwrap(), 4);
    }

    #[test]
    fn no_descriptor_is_left_once_the_cap_is_open() {
        let shared = shared(2);
        assert!(shared.has_descriptor_for_another());
        shared.connection_opened();
        assert!(shared.has_descriptor_for_another());
        shared.connection_opened();
        assert!(!shared.has_descriptor_for_another());
        shared.connection_closed();
        assert!(shared.has_descriptor_for_another());
    }

    #[test]
    fn the_dropped_udp_gauge_counts_replies_not_sent_too() {
        let shared = shared(1);
        shared.udp.received.store(7, Relaxed);
        shared.udp.answered.store(1, Relaxed);
        shared.udp.dropped.store(3, Relaxed);
        shared.udp.send_errors.store(2, Relaxed);
        shared.udp.rate_limited.store(1, Relaxed);
        assert_eq!(
            shared.gauges(),
            ServerGauges {
                memory_budget_used: 0,
                memory_budget: 1000,
                pending_output: 0,
                udp_received: 7,
                udp_sent: 1,
                udp_dropped: 5,
                udp_rate_limited: 1,
            }
        );
    }

    #[test]
    fn wait_returns_true_as_soon_as_the_last_connection_closes() {
        let shared = shared(10);
        shared.connection_opened();
        let handle = ServerHandle {
            local_addrs: Vec::new(),
            shared: Arc::clone(&shared),
            wakers: Vec::new(),
            threads: Vec::new(),
        };
        assert!(
            !handle.wait(Some(Duration::from_millis(10))),
            "a connection is open"
        );
        let (done, waited) = mpsc::channel();
        let waiter = thread::spawn(move || done.send(handle.wait(Some(Duration::from_secs(60)))));
        assert_eq!(
            waited.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "still waiting while a connection is open"
        );
        shared.connection_closed();
        assert_eq!(
            waited.recv_timeout(Duration::from_secs(30)),
            Ok(true),
            "woken by the close, long before its 60 s"
        );
        waiter.join().unwrap().unwrap();
    }
}
