//! The HTTP side of `--metrics`: a small HTTP/1.1 server made for hostile
//! peers, since Prometheus scrapes from another host and the port is
//! rarely loopback-only.
//!
//! `httparse` reads request heads (it never allocates and reports an
//! incomplete head as `Partial`); a mio poll on one thread of its own
//! drives the sockets. Nothing a peer does can reach the UPCASE service:
//!
//! * a head is at most [`Limits::max_head`] bytes (else 431) and must
//!   arrive within [`Limits::request_timeout`] (else 408);
//! * a body is never read, nor anything pipelined after the first head:
//!   one answer, `Connection: close`, and the connection is closed;
//! * the answer must be taken within [`Limits::write_timeout`];
//! * at most [`Limits::max_connections`] peers are open at once; more are
//!   accepted and closed at once, so the endpoint never holds more than
//!   [`Limits::descriptors`] descriptors (`upcase serve` keeps them out
//!   of what it fits `--max-connections` to); a newcomer from an address
//!   holding fewer than another takes the place of that address's
//!   longest-waiting peer instead ([`admission`]);
//! * dropping the endpoint wakes its thread, which closes every peer and
//!   ends: shutdown never waits for one.

mod admission;
mod event_loop;
mod head;
mod peer;
mod response;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use upcase::net::ServerMetrics;

use event_loop::{EndpointLoop, LISTENER, WAKE};

/// The bounds the endpoint holds every peer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of a request head (request line and headers).
    pub max_head: usize,
    /// Time from the accept to the end of the request head.
    pub request_timeout: Duration,
    /// Time from the answer's start to its last byte taken by the peer.
    pub write_timeout: Duration,
    /// Metrics connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    /// 8 KiB, 5 s, 5 s, 64 connections.
    fn default() -> Limits {
        Limits {
            max_head: 8 << 10,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_connections: 64,
        }
    }
}

impl Limits {
    /// The most descriptors the endpoint holds: one per connection, one
    /// being refused, the listener, the poll and the waker.
    pub fn descriptors(&self) -> u64 {
        self.max_connections as u64 + 4
    }
}

/// The running `/metrics` endpoint; dropping it stops answering and closes
/// every connection.
pub struct MetricsEndpoint {
    addr: SocketAddr,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Listen on `addr` (port 0 picks one) and answer scrapes of `metrics`
    /// on a thread of its own, with the default [`Limits`].
    ///
    /// # Errors
    /// When `addr` cannot be listened on.
    pub fn start(addr: SocketAddr, metrics: Arc<ServerMetrics>) -> io::Result<MetricsEndpoint> {
        MetricsEndpoint::start_with(addr, metrics, Limits::default())
    }

    /// [`MetricsEndpoint::start`] with other limits.
    ///
    /// # Errors
    /// When `addr` cannot be listened on.
    pub fn start_with(
        addr: SocketAddr,
        metrics: Arc<ServerMetrics>,
        limits: Limits,
    ) -> io::Result<MetricsEndpoint> {
        let mut listener = TcpListener::bind(addr).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot serve metrics on {addr}: {error}"),
            )
        })?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let endpoint = EndpointLoop::new(poll, listener, metrics, limits);
        let thread = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || endpoint.run())?;
        Ok(MetricsEndpoint {
            addr,
            waker,
            thread: Some(thread),
        })
    }

    /// The address listened on (the real port where 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for MetricsEndpoint {
    /// Wake the thread and wait for it: it never blocks on a peer, so it
    /// ends within one turn of its loop. (If the wake cannot be sent, the
    /// thread is left to end with the process rather than waited for.)
    fn drop(&mut self) {
        if self.waker.wake().is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests;
