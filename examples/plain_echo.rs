//! The ceiling for `upcase serve`: a TCP server with the same threading model
//! (a thread per connection, TCP_NODELAY, blocking sockets) that copies bytes
//! back unchanged. No protocol, no upper case: what is left is the cost of
//! the sockets and threads, which `benches/loopback.sh` compares ours with.
//!
//! Prints its listen address as the first line of stdout.
//!
//! ```text
//! cargo run --release --example plain_echo -- --listen 127.0.0.1:0
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

/// Read buffer per connection, as large as a server's usual read.
const BUFFER_LEN: usize = 64 * 1024;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:0");
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(addr)) => listen = addr,
            _ => {
                eprintln!("usage: plain_echo [--listen ADDR]   (default 127.0.0.1:0)");
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
    match listener.local_addr() {
        Ok(addr) => println!("plain_echo listening on tcp {addr}"),
        Err(error) => {
            eprintln!("plain_echo: {error}");
            return ExitCode::FAILURE;
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
