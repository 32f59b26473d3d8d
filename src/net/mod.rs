//! The `std::net` shell around the sans-IO core: a threaded TCP server and a
//! blocking client.
//!
//! Why threads and blocking sockets: the core ([`crate::conn`]) makes every
//! protocol decision, so the shell's only jobs are moving bytes and time.
//! A thread per connection does that in a loop of some thirty lines with no
//! runtime and no `unsafe`; a client that is slow, silent, malformed or
//! gone ties up only its own thread. Threads get a 64 KiB stack and a read
//! buffer that starts at 512 bytes, so idle connections are cheap (see the
//! measured cost below); a server meant for many
//! thousands of connections would swap this shell for an event loop and keep
//! the core unchanged.
//!
//! What the shell adds to the core:
//! - **time**: socket timeouts derived from `poll_timeout()`, sliced so that
//!   shutdown is noticed and a blocked write still meets its deadlines;
//! - **backpressure**: it reads at most `read_capacity()` bytes, and nothing
//!   when that is 0, so a client that never reads its replies is held back
//!   by TCP flow control instead of growing the server's memory
//!   ([`ServerHandle::pending_output_bytes`] shows the bounded figure);
//! - **limits**: the connection limit (over it, `ServerConnection::new_busy`
//!   says BUSY or closes, with a short life of its own);
//! - **shutdown**: [`ServerHandle::begin_shutdown`] makes each connection
//!   read what its socket already holds, answer it, say BYE, and close.

mod client;
mod connection;
mod listen;
mod metrics;
mod proxy;
mod server;
mod udp;
mod udp_client;

pub use client::{Client, ClientError, connect_stream};
pub use listen::bind_tcp;
pub use metrics::{
    ConnectionMeter, MetricsShard, MetricsSnapshot, ModeLabel, ProxyOutcome,
    REPLY_DELAY_BUCKETS_MICROS, ServerMetrics,
};
pub use proxy::{
    Cidr, CidrParseError, MAX_V1_HEADER, MAX_V2_HEADER, ProxiedAddresses, ProxyHeader,
    ProxyHeaderError, ProxyHeaderReader, ProxyHeaderStatus, parse_proxy_header,
};
pub use server::{DEFAULT_LISTEN, Server, ServerBuilder, ServerHandle};
pub use udp::{UdpStats, bind_udp, serve_udp};
pub use udp_client::UdpClient;
