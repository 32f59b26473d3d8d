//! The `std::net` shell around the sans-IO core: an event-loop TCP server
//! (with UDP beside it) and a blocking client.
//!
//! Why an event loop: the core ([`crate::conn`]) makes every protocol
//! decision, so the shell's only jobs are moving bytes and time. One loop
//! per core (`mio` readiness over non-blocking sockets) does that for
//! thousands of connections, and an idle connection costs its socket, its
//! core state and a few words of bookkeeping: no thread, no stack, no read
//! buffer (each loop reads into one scratch buffer, and the core gives its
//! buffers back while the connection waits).
//!
//! What the shell adds to the core:
//! - **time**: a heap of deadlines from each connection's `poll_timeout()`;
//!   `poll` sleeps until the first, so an idle server never wakes;
//! - **backpressure**: it reads at most `read_capacity()` bytes, and nothing
//!   when that is 0, so a client that never reads its replies is held back
//!   by TCP flow control instead of growing the server's memory
//!   ([`ServerHandle::pending_output_bytes`] shows the bounded figure);
//! - **limits**: the connection limit (at it, a newcomer evicts a
//!   connection that has done nothing, else the longest idle, of a group
//!   holding more than its own, `ServerConnection::evict`; otherwise
//!   `ServerConnection::new_busy`
//!   says BUSY or closes, within one short deadline), a memory budget for
//!   buffered bytes over all connections, a bound per connection, and the
//!   descriptor limit (the send timeout, for output the client does not
//!   take, is the core's: `ServerConfig::send_timeout`);
//! - **fairness**: a connection's turn on its loop is bounded by the work
//!   it causes (bytes, frames, ERRORs), not by bytes alone, so no input
//!   pattern buys one connection much more of the loop than another gets;
//! - **shutdown**: [`ServerHandle::begin_shutdown`] wakes every loop, and
//!   each connection reads what its socket already holds, answers it, says
//!   BYE, and closes.

mod budget;
mod client;
mod connection;
mod event_loop;
mod fd_limit;
mod listen;
mod log_escape;
mod log_throttle;
mod metrics;
mod proxy;
mod proxy_stage;
mod server;
mod slots;
mod timers;
mod udp;
mod udp_client;
mod work;

pub use client::{Answer, Client, ClientError, connect_stream};
pub use fd_limit::{connections_for_descriptors, raise_descriptor_limit};
pub use listen::bind_tcp;
pub use log_escape::escape_for_log;
pub use log_throttle::{LOG_INTERVAL, LogThrottle, suppressed_note};
pub use metrics::{
    ConnectionMeter, GaugeSource, MetricsShard, MetricsSnapshot, ModeLabel, ProxyOutcome,
    REPLY_DELAY_BUCKETS_MICROS, ServerGauges, ServerMetrics, ShardHandle,
};
pub use proxy::{
    Cidr, CidrParseError, MAX_V1_HEADER, MAX_V2_HEADER, ProxiedAddresses, ProxyHeader,
    ProxyHeaderError, ProxyHeaderReader, ProxyHeaderStatus, parse_proxy_header,
};
pub use proxy_stage::DEFAULT_PROXY_HEADER_TIMEOUT;
pub use server::{
    DEFAULT_LISTEN, DEFAULT_MAX_BUFFER, DEFAULT_MAX_CONNECTIONS, DEFAULT_MEMORY_BUDGET, Server,
    ServerBuilder, ServerHandle,
};
pub use udp::{MAX_SOURCES, SourceKey, UdpRateLimit, UdpStats, bind_udp, serve_udp};
pub use udp_client::UdpClient;
pub use work::DEFAULT_WORK_PER_TURN;
