// The same sans-IO `ServerConnection` as examples/std_server.rs, driven by
// tokio instead: one task per connection, and `select!` between the socket
// and the connection's next deadline. Nothing in the core changes; this
// file is all the glue. tests/tokio_conform.rs runs the conformance suite
// against it.
//
//     cargo run --example tokio_server -- 127.0.0.1:9999

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use upcase::conn::{ServerConfig, ServerConnection};

/// How long a peer may leave our output unread before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:9999")).await?;
    println!("listening on {}", listener.local_addr()?);
    accept_all(listener, ServerConfig::default()).await
}

/// Serve every connection `listener` accepts, each in its own task.
pub async fn accept_all(listener: TcpListener, config: ServerConfig) -> io::Result<()> {
    loop {
        let (socket, _) = listener.accept().await?;
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(socket, config).await {
                eprintln!("connection failed: {error}");
            }
        });
    }
}

/// Serve one connection until it closes: write out everything pending, then
/// wait for input or the next deadline, whichever comes first.
pub async fn serve(mut socket: TcpStream, config: ServerConfig) -> io::Result<()> {
    let (local, peer) = (socket.local_addr()?, socket.peer_addr()?);
    let mut conn = ServerConnection::new(config, local, peer, Instant::now());
    let mut buf = vec![0; 64 * 1024];
    let mut write_shut = false;
    loop {
        let pending = conn.pending_output().len();
        if pending > 0 {
            let write = socket.write_all(conn.pending_output());
            tokio::time::timeout(WRITE_TIMEOUT, write)
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading")
                })??;
            conn.mark_sent(Instant::now(), pending)
                .expect("wrote what was pending");
        }
        if conn.wants_write_shutdown() && !write_shut {
            // A raw client learns from end of stream that the server is done.
            let _ = socket.shutdown().await;
            write_shut = true;
        }
        while let Some(event) = conn.poll_event() {
            eprintln!("{peer}: {event:?}");
        }
        if conn.is_closed() {
            return Ok(());
        }
        let deadline = conn
            .poll_timeout()
            .expect("an open connection has a deadline");
        // No room means end of stream was seen: only the deadline is left.
        let room = conn.read_capacity().min(buf.len());
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => conn.handle_timeout(Instant::now()),
            read = socket.read(&mut buf[..room]), if room > 0 => match read? {
                0 => conn.handle_eof(Instant::now()),
                n => conn
                    .handle_input(Instant::now(), &buf[..n])
                    .expect("read at most read_capacity"),
            },
        }
    }
}
