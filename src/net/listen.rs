//! Binding listening sockets the way a restartable server needs them.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Bind a TCP listener on `addr` with a listen queue of `backlog`.
///
/// `SO_REUSEADDR` is set before `bind` so that a server restarted right after
/// serving clients binds at once, although its old connections still sit in
/// TIME_WAIT (std's `TcpListener::bind` sets it too on Unix, but only as an
/// undocumented detail; here it is the contract). A v6 listener is
/// `IPV6_V6ONLY`, so `[::]:9999` and `0.0.0.0:9999` can be listened on side
/// by side, and what the startup line says is what is listened on.
///
/// # Errors
/// The socket, option, bind or listen call's error, with the address added.
pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = new_socket(addr)?;
    socket
        .bind(&addr.into())
        .and_then(|()| socket.listen(backlog))
        .map_err(|error| in_context(addr, error))?;
    Ok(socket.into())
}

/// Bind `count` TCP listeners on the same address and port, one per event
/// loop, so that the kernel spreads new connections over the loops
/// (`SO_REUSEPORT`) and no loop hands a connection to another.
///
/// A first, plain socket is bound and dropped before the group: it picks the
/// port when `addr`'s is 0, and it fails with "address in use" when another
/// process listens there, even one that set `SO_REUSEPORT` itself (which
/// would otherwise silently share the port with this server).
///
/// # Errors
/// As [`bind_tcp`].
pub(crate) fn bind_tcp_group(
    addr: SocketAddr,
    backlog: i32,
    count: usize,
) -> io::Result<Vec<TcpListener>> {
    if count <= 1 {
        return Ok(vec![bind_tcp(addr, backlog)?]);
    }
    let probe = new_socket(addr)?;
    probe
        .bind(&addr.into())
        .map_err(|error| in_context(addr, error))?;
    let port = probe.local_addr()?.as_socket().map_or(0, |a| a.port());
    drop(probe);
    let mut addr = addr;
    addr.set_port(port);
    (0..count)
        .map(|_| {
            let socket = new_socket(addr)?;
            socket.set_reuse_port(true)?;
            socket
                .bind(&addr.into())
                .and_then(|()| socket.listen(backlog))
                .map_err(|error| in_context(addr, error))?;
            Ok(socket.into())
        })
        .collect()
}

/// A TCP socket for `addr` with the options every listener gets.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

fn in_context(addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot listen on tcp {addr}: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Whether a socket that sets `SO_REUSEPORT` can bind `addr` too.
    fn can_share(addr: SocketAddr) -> bool {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&addr.into()).is_ok()
    }

    #[test]
    fn a_group_has_one_listener_per_loop_on_one_port() {
        let group = bind_tcp_group(loopback(), 16, 3).unwrap();
        let addrs: Vec<SocketAddr> = group.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|&addr| addr == addrs[0]), "{addrs:?}");
    }

    #[test]
    fn a_single_loops_listener_shares_its_port_with_no_one() {
        let group = bind_tcp_group(loopback(), 16, 1).unwrap();
        assert_eq!(group.len(), 1);
        let addr = group[0].local_addr().unwrap();
        assert!(!can_share(addr), "another socket bound {addr} too");
    }
}
