// A whole UPCASE/1 server: the sans-IO `ServerConnection` driven by blocking
// `std::net` sockets, one thread per connection. The crate's front page
// shows this file as it is, and tests/std_server_example.rs runs `serve`
// against peers that stall.
//
//     cargo run --example std_server -- 127.0.0.1:9999

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use upcase::conn::{ServerConfig, ServerConnection};

/// How long a peer may leave our output unread before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:9999"))?;
    println!("listening on {}", listener.local_addr()?);
    for socket in listener.incoming() {
        let socket = socket?;
        std::thread::spawn(move || {
            if let Err(error) = serve(socket, ServerConfig::default()) {
                eprintln!("connection failed: {error}");
            }
        });
    }
    Ok(())
}

/// Serve one connection until it closes: write out everything pending, wait
/// for input until the next deadline, feed what arrived, repeat.
pub fn serve(mut socket: TcpStream, config: ServerConfig) -> io::Result<()> {
    let (local, peer) = (socket.local_addr()?, socket.peer_addr()?);
    let mut conn = ServerConnection::new(config, local, peer, Instant::now());
    socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut buf = vec![0; 64 * 1024];
    let mut write_shut = false;
    loop {
        let pending = conn.pending_output().len();
        if pending > 0 {
            socket.write_all(conn.pending_output())?;
            conn.mark_sent(Instant::now(), pending)
                .expect("wrote what was pending");
        }
        if conn.wants_write_shutdown() && !write_shut {
            // A raw client learns from end of stream that the server is
            // done. The peer may be gone already: nothing to report then.
            let _ = socket.shutdown(Shutdown::Write);
            write_shut = true;
        }
        while let Some(event) = conn.poll_event() {
            eprintln!("{peer}: {event:?}");
        }
        if conn.is_closed() {
            return Ok(());
        }
        // Wait for input, never past the next deadline (an open connection
        // always has one: the idle timeout or the linger), so that a peer
        // that stops mid-frame is still timed out.
        let now = Instant::now();
        let deadline = conn
            .poll_timeout()
            .expect("an open connection has a deadline");
        if deadline <= now {
            conn.handle_timeout(now);
            continue;
        }
        let room = conn.read_capacity().min(buf.len());
        if room == 0 {
            // After end of stream there is nothing left to read.
            std::thread::sleep(deadline - now);
            continue;
        }
        socket.set_read_timeout(Some(deadline - now))?;
        match socket.read(&mut buf[..room]) {
            Ok(0) => conn.handle_eof(Instant::now()),
            Ok(n) => conn
                .handle_input(Instant::now(), &buf[..n])
                .expect("read at most read_capacity"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(Instant::now())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
