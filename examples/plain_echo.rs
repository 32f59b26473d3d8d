//! The ceiling for `upcase serve`: a TCP server with the same threading model
//! (a thread per connection, TCP_NODELAY, blocking sockets) that copies bytes
//! back unchanged. No protocol, no upper case: what is left is the cost of
//! the sockets and threads, which `benches/loopback.sh` compares ours with.
//!
//! With `--udp`, one more thread answers datagrams on the same port number,
//! each with itself unchanged: the ceiling for `upcase serve`'s UDP thread
//! (one thread per socket, the same 4 MiB receive buffer).
//!
//! Prints its listen address as the first line of stdout.
//!
//! ```text
//! cargo run --release --example plain_echo -- --listen 127.0.0.1:0 [--udp]
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::thread;

use socket2::{Domain, Protocol, Socket, Type};

/// Read buffer per connection, as large as a server's usual read.
const BUFFER_LEN: usize = 64 * 1024;
/// The UDP receive buffer asked for, as `upcase serve` asks for.
const UDP_RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:0");
    let mut udp = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" if let Some(addr) = args.next() => listen = addr,
            "--udp" => udp = true,
            _ => {
                eprintln!("usage: plain_echo [--listen ADDR] [--udp]   (default 127.0.0.1:0)");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("plain_echo: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("plain_echo: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("plain_echo listening on tcp {addr}");
    if udp {
        match bind_udp(addr) {
            Ok(socket) => {
                println!("plain_echo listening on udp {addr}");
                thread::spawn(move || echo_datagrams(&socket));
            }
            Err(error) => {
                eprintln!("plain_echo: cannot listen on udp {addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let spawned = thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(move || echo(stream));
                if let Err(error) = spawned {
                    eprintln!("plain_echo: cannot start a connection thread: {error}");
                }
            }
            Err(error) => eprintln!("plain_echo: accept: {error}"),
        }
    }
    ExitCode::SUCCESS
}

/// Copy everything back until the peer closes or the connection fails.
fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buffer = vec![0u8; BUFFER_LEN];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A UDP socket on `addr` with a large receive buffer.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // The kernel caps it at rmem_max, as it does for `upcase serve`.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Send every datagram back to where it came from, unchanged.
fn echo_datagrams(socket: &UdpSocket) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((n, peer)) => {
                let _ = socket.send_to(&buffer[..n], peer);
            }
            // ICMP errors from earlier replies concern those peers only.
            Err(error) => eprintln!("plain_echo: udp receive: {error}"),
        }
    }
}
