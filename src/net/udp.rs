//! The UDP service (SPEC.md §8): a thread per socket answering each datagram
//! with [`respond_to_datagram`], after a per-source rate limit (§8.6). The
//! state is bounded: one receive buffer and a table of at most
//! [`MAX_SOURCES`] token buckets.

mod source_limit;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use socket2::{Domain, Protocol, Socket, Type};

use super::log_throttle::{LOG_INTERVAL, LogThrottle, suppressed_note};
use crate::conn::{AMPLIFICATION_LIMIT, DatagramConfig, DatagramReply, respond_to_datagram};
pub use source_limit::SourceKey;
use source_limit::SourceLimiter;
pub use source_limit::{MAX_SOURCES, UdpRateLimit};

/// How often a blocked receive wakes up to check for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A kernel receive buffer big enough to absorb a burst of small datagrams
/// while the thread answers earlier ones.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// The most worker threads one UDP socket gets.
const MAX_UDP_WORKERS: usize = 4;

/// The largest datagram that can arrive (IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65_535;

/// Counters of the UDP service, shared with whoever wants to log or test them.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Datagrams answered.
    pub answered: AtomicU64,
    /// Datagrams dropped by the per-source rate limit (SPEC.md §8.6).
    pub rate_limited: AtomicU64,
    /// Datagrams not answered for what they hold: raw ones whose reply
    /// would not fit a datagram, any raw one on a framed-only server, and
    /// framed ones too short for an ERROR within three times their size
    /// (SPEC.md §8.4).
    pub dropped: AtomicU64,
    /// Replies the kernel refused to send (logged).
    pub send_errors: AtomicU64,
}

/// Bind a UDP socket on `addr` (`SO_REUSEADDR`, `IPV6_V6ONLY` for v6, a
/// large receive buffer), the datagram twin of the TCP listener.
///
/// # Errors
/// The socket, option or bind call's error, with the address added.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // A smaller buffer than asked for is fine: the kernel caps it at rmem_max.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    socket.bind(&addr.into()).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen on udp {addr}: {error}"),
        )
    })?;
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    Ok(socket.into())
}

/// Answer datagrams on `socket` until `stop` is set, each source held to
/// `limit`, on one worker thread per core (at most four).
///
/// The workers share the socket, its one queue and one table of sources:
/// a flood then costs each datagram one receive and one table look-up,
/// spread over the cores, and no other sender's datagram waits behind a
/// queue of its own.
///
/// Each worker drains the socket in one batch per wake-up: a blocking
/// receive returns at once while the queue holds datagrams, so a worker
/// reads back to back until the queue is empty and sleeps only then (or
/// 100 ms pass, to see `stop`). A batch receive would save
/// system calls only through `recvmmsg`, which needs the `unsafe` this
/// crate forbids.
///
/// # Errors
/// A receive error other than a timeout or an ICMP report, or a worker
/// that cannot be started.
pub fn serve_udp(
    socket: &UdpSocket,
    config: &DatagramConfig,
    limit: UdpRateLimit,
    stop: &AtomicBool,
    stats: &UdpStats,
) -> io::Result<()> {
    let workers = thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_UDP_WORKERS);
    let sources = Mutex::new(SourceLimiter::new(limit, MAX_SOURCES));
    let shared = Shared {
        config,
        limit,
        stop,
        stats,
        sources: &sources,
    };
    thread::scope(|scope| {
        let mut others = Vec::new();
        for _ in 1..workers {
            let socket = socket.try_clone()?;
            let worker = thread::Builder::new()
                .name(thread::current().name().unwrap_or("udp").to_string())
                .spawn_scoped(scope, move || serve_worker(&socket, shared));
            match worker {
                Ok(worker) => others.push(worker),
                Err(error) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            }
        }
        let mut result = serve_worker(socket, shared);
        for worker in others {
            let outcome = worker.join().expect("a UDP worker does not panic");
            result = result.and(outcome);
        }
        result
    })
}

/// What the workers of one socket share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    config: &'a DatagramConfig,
    limit: UdpRateLimit,
    stop: &'a AtomicBool,
    stats: &'a UdpStats,
    sources: &'a Mutex<SourceLimiter>,
}

fn serve_worker(socket: &UdpSocket, shared: Shared<'_>) -> io::Result<()> {
    let mut service = UdpService::new(socket, shared)?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !shared.stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((len, peer)) => service.answer(&buf[..len], peer, Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                service.flush_logs(Instant::now());
            }
            // ICMP port-unreachable from an earlier reply surfaces here on
            // some systems; it concerns that peer only.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One socket's service: the responder, the rate limit, the throttled logs.
struct UdpService<'a> {
    socket: &'a UdpSocket,
    local: SocketAddr,
    shared: Shared<'a>,
    over_rate_log: LogThrottle,
    too_large_log: LogThrottle,
    amplification_log: LogThrottle,
    send_error_log: LogThrottle,
}

impl<'a> UdpService<'a> {
    fn new(socket: &'a UdpSocket, shared: Shared<'a>) -> io::Result<UdpService<'a>> {
        Ok(UdpService {
            socket,
            local: socket.local_addr()?,
            shared,
            over_rate_log: LogThrottle::new("udp: source over its rate limit", LOG_INTERVAL),
            too_large_log: LogThrottle::new("udp: raw reply over the UDP limit", LOG_INTERVAL),
            amplification_log: LogThrottle::new(
                "udp: datagram too short for its ERROR",
                LOG_INTERVAL,
            ),
            send_error_log: LogThrottle::new("udp: reply not sent", LOG_INTERVAL),
        })
    }

    /// Answer (or drop) one datagram from `peer` received at `now`.
    fn answer(&mut self, datagram: &[u8], peer: SocketAddr, now: Instant) {
        let Shared {
            config,
            limit,
            stats,
            sources,
            ..
        } = self.shared;
        stats.received.fetch_add(1, Ordering::Relaxed);
        let len = datagram.len();
        let admitted = sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(peer.ip(), now);
        if !admitted {
            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self.over_rate_log.admit(now) {
                info!(
                    "udp {peer}: over the limit of {}/s (burst {}) for its address; dropped{}",
                    limit.per_second,
                    limit.burst,
                    suppressed_note(suppressed)
                );
            }
            return;
        }
        match respond_to_datagram(datagram, self.local, peer, config) {
            DatagramReply::Send(reply) => match self.socket.send_to(&reply, peer) {
                Ok(_) => {
                    stats.answered.fetch_add(1, Ordering::Relaxed);
                    debug!("udp {peer}: {len} bytes in, {} out", reply.len());
                }
                Err(e) => {
                    stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(suppressed) = self.send_error_log.admit(now) {
                        warn!(
                            "udp {peer}: reply of {} bytes not sent: {e}{}",
                            reply.len(),
                            suppressed_note(suppressed)
                        );
                    }
                }
            },
            DatagramReply::Drop { reply_len } => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.too_large_log.admit(now) {
                    warn!(
                        "udp {peer}: raw datagram of {len} bytes dropped: its upper case is {reply_len} bytes, over the UDP limit{}",
                        suppressed_note(suppressed)
                    );
                }
            }
            DatagramReply::OverAmplificationLimit { reply_len } => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.amplification_log.admit(now) {
                    info!(
                        "udp {peer}: framed datagram of {len} bytes not answered: its ERROR of {reply_len} bytes would be over {AMPLIFICATION_LIMIT}× its size{}",
                        suppressed_note(suppressed)
                    );
                }
            }
            DatagramReply::NotFramed => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("udp {peer}: raw datagram dropped: this server is framed-only");
            }
        }
        self.flush_logs(now);
    }

    /// Report lines suppressed in throttle intervals that have ended.
    fn flush_logs(&mut self, now: Instant) {
        for throttle in [&mut self.over_rate_log, &mut self.amplification_log] {
            if let Some(line) = throttle.flush(now) {
                info!("{line}");
            }
        }
        for throttle in [&mut self.too_large_log, &mut self.send_error_log] {
            if let Some(line) = throttle.flush(now) {
                warn!("{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_udp_socket_gets_a_receive_buffer_of_four_mib_or_the_kernels_most() {
        let Ok(rmem_max) = std::fs::read_to_string("/proc/sys/net/core/rmem_max") else {
            println!("skipped: no /proc/sys/net/core/rmem_max to compare with");
            return;
        };
        let rmem_max: usize = rmem_max.trim().parse().unwrap();
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        // Linux caps the request at rmem_max and reports double what it
        // granted (its bookkeeping overhead).
        let granted = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        let asked = (4 << 20).min(rmem_max);
        assert!(granted >= asked, "{granted} bytes, {asked} asked for");
    }
}
