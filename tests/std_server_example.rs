//! The crate front page's loop (`examples/std_server.rs`, compiled here as
//! it is) against peers that stall: it must still time them out, and tell a
//! raw peer it is done by shutting down its writing side.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use upcase::conn::ServerConfig;
use upcase::wire::{ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE};

#[path = "../examples/std_server.rs"]
#[allow(dead_code)] // the example's `main`
mod std_server;

/// Long enough for anything here to happen on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// Serve one connection with `config` on a thread; its result comes on the channel.
fn serve_one(config: ServerConfig) -> (SocketAddr, mpsc::Receiver<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let _ = done.send(std_server::serve(socket, config));
    });
    (addr, result)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Read until end of stream; fail if it does not come within [`PATIENCE`].
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => received,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no end of stream within {PATIENCE:?}; received {received:x?}")
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_peer_that_stops_mid_frame_gets_idle_timeout_and_is_closed() {
    // No linger: the deadline after the ERROR is already due when the loop
    // next looks at it, which must still be a timed read, never a blocking one.
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(100),
        linger: Duration::ZERO,
        ..ServerConfig::default()
    };
    let (addr, result) = serve_one(config);
    let mut peer = connect(addr);
    let frame = FrameRepr::new(FrameType::Text, &b"never finished"[..]).to_bytes();
    peer.write_all(&PREFACE).unwrap();
    peer.write_all(&frame[..frame.len() - 3]).unwrap();
    let started = Instant::now();
    let received = read_to_end(&mut peer);
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(received[..PREFACE.len()], PREFACE);
    let mut rest = bytes::BytesMut::from(&received[PREFACE.len()..]);
    let error = FrameDecoder::default().decode(&mut rest).unwrap().unwrap();
    assert_eq!(error.frame_type, FrameType::Error);
    assert_eq!(
        ErrorPayload::parse(&error.data).unwrap().code,
        ErrorCode::IDLE_TIMEOUT
    );
    assert!(rest.is_empty(), "nothing after the ERROR");
    result
        .recv_timeout(PATIENCE)
        .expect("serve returned")
        .unwrap();
}

#[test]
fn a_raw_peer_that_stalls_is_answered_then_told_the_server_is_done() {
    // A long linger: only the write shutdown can end the peer's read soon.
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(100),
        linger: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let (addr, result) = serve_one(config);
    let mut peer = connect(addr);
    peer.write_all("raw straße".as_bytes()).unwrap();
    assert_eq!(read_to_end(&mut peer), "RAW STRASSE".as_bytes());
    drop(peer);
    result
        .recv_timeout(PATIENCE)
        .expect("serve returned")
        .unwrap();
}
