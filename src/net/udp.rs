//! The UDP service (SPEC.md §8): a thread per socket answering each datagram
//! with [`respond_to_datagram`]. No per-peer state, so nothing to bound but
//! the one receive buffer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use log::{debug, warn};
use socket2::{Domain, Protocol, Socket, Type};

use crate::conn::{DatagramConfig, DatagramReply, respond_to_datagram};

/// How often a blocked receive wakes up to check for shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A kernel receive buffer big enough to absorb a burst of small datagrams
/// while the thread answers earlier ones.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

/// The largest datagram that can arrive (IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65_535;

/// Counters of the UDP service, shared with whoever wants to log or test them.
#[derive(Debug, Default)]
pub struct UdpStats {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Datagrams answered.
    pub answered: AtomicU64,
    /// Datagrams not answered: raw ones whose reply would not fit a
    /// datagram, or any raw one on a framed-only server (SPEC.md §8).
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

/// Answer datagrams on `socket` until `stop` is set.
pub fn serve_udp(
    socket: &UdpSocket,
    config: &DatagramConfig,
    stop: &AtomicBool,
    stats: &UdpStats,
) -> io::Result<()> {
    let local = socket.local_addr()?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // ICMP port-unreachable from an earlier reply surfaces here on
            // some systems; it concerns that peer only.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        stats.received.fetch_add(1, Ordering::Relaxed);
        match respond_to_datagram(&buf[..len], local, peer, config) {
            DatagramReply::Send(reply) => match socket.send_to(&reply, peer) {
                Ok(_) => {
                    stats.answered.fetch_add(1, Ordering::Relaxed);
                    debug!("udp {peer}: {len} bytes in, {} out", reply.len());
                }
                Err(e) => {
                    stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    warn!("udp {peer}: reply of {} bytes not sent: {e}", reply.len());
                }
            },
            DatagramReply::Drop { reply_len } => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(
                    "udp {peer}: raw datagram of {len} bytes dropped: its upper case is {reply_len} bytes, over the UDP limit"
                );
            }
            DatagramReply::NotFramed => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("udp {peer}: raw datagram dropped: this server is framed-only");
            }
        }
    }
    Ok(())
}
