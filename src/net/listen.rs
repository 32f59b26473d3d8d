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
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket
        .bind(&addr.into())
        .and_then(|()| socket.listen(backlog))
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot listen on tcp {addr}: {error}"),
            )
        })?;
    Ok(socket.into())
}

/// The address a local client can connect to in order to reach a listener on
/// `addr`: the loopback address when `addr` is a wildcard. Used to wake an
/// accept loop blocked in `accept`.
pub(crate) fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(ref mut v4) => v4.set_ip(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(ref mut v6) => v6.set_ip(std::net::Ipv6Addr::LOCALHOST),
        }
    }
    addr
}
