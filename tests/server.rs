//! The TCP server over real loopback sockets: concurrency, limits,
//! misbehaving clients, backpressure, restart and shutdown.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use upcase::conn::{ClientConfig, ClientConnection, ClientEvent, ServerConfig};
use upcase::net::{Client, ClientError, Server, ServerHandle};
use upcase::wire::{ErrorCode, FrameRepr, FrameType, PREFACE};

const TIMEOUT: Duration = Duration::from_secs(10);

fn start(config: ServerConfig, max_connections: usize) -> (ServerHandle, SocketAddr) {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .config(config)
        .max_connections(max_connections)
        .bind()
        .unwrap();
    let addr = server.local_addrs()[0];
    (server.spawn().unwrap(), addr)
}

fn start_default() -> (ServerHandle, SocketAddr) {
    start(ServerConfig::default(), 1024)
}

fn client(addr: SocketAddr) -> Client {
    Client::connect(addr, TIMEOUT).unwrap()
}

fn socket(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Read exactly `len` bytes (raw replies have no framing).
fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut reply = vec![0; len];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// Write `bytes` one at a time, with a pause after each, so that the server
/// reads them one at a time.
fn write_byte_by_byte(stream: &mut TcpStream, bytes: &[u8]) {
    for byte in bytes {
        stream.write_all(&[*byte]).unwrap();
        thread::sleep(Duration::from_micros(200));
    }
}

/// Require `result` to be the server's ERROR with `code`.
fn assert_server_error<T: std::fmt::Debug>(result: Result<T, ClientError>, code: ErrorCode) {
    match result {
        Err(ClientError::Server { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected {code}, got {other:?}"),
    }
}

/// Wait (bounded) until every connection thread has ended.
fn assert_no_connections_left(handle: &ServerHandle) {
    let deadline = Instant::now() + TIMEOUT;
    while handle.live_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections still open",
            handle.live_connections()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// After another connection ended: `survivor` is still served, a newcomer is
/// served too, and once both say BYE no connection is left.
fn assert_service_goes_on(handle: ServerHandle, addr: SocketAddr, mut survivor: Client) {
    assert_eq!(survivor.upcase("still here").unwrap(), "STILL HERE");
    let mut newcomer = client(addr);
    assert_eq!(newcomer.upcase("new one").unwrap(), "NEW ONE");
    survivor.bye().unwrap();
    newcomer.bye().unwrap();
    assert_no_connections_left(&handle);
    handle.shutdown();
}

/// Read from `stream` into `conn` until it reports `count` events or the
/// server closes.
fn read_events(
    stream: &mut TcpStream,
    conn: &mut ClientConnection,
    count: usize,
) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    let mut buffer = [0; 4096];
    while events.len() < count {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        conn.handle_input(Instant::now(), &buffer[..read]);
        while let Some(event) = conn.poll_event() {
            events.push(event);
        }
    }
    events
}

/// The type and data of each reply (addresses differ between connections).
fn replies(events: Vec<ClientEvent>) -> Vec<(FrameType, Vec<u8>)> {
    events
        .into_iter()
        .map(|event| match event {
            ClientEvent::Reply { frame, .. } => (frame.frame_type, frame.data.to_vec()),
            other => panic!("expected a reply, got {other:?}"),
        })
        .collect()
}

#[test]
fn many_concurrent_clients_raw_and_framed_on_one_port() {
    let (handle, addr) = start_default();
    let threads: Vec<_> = (0..16)
        .map(|n| {
            thread::spawn(move || {
                if n % 2 == 0 {
                    let mut client = client(addr);
                    for i in 0..30 {
                        let text = format!("client {n} straße {i}");
                        assert_eq!(client.upcase(&text).unwrap(), text.to_uppercase());
                        thread::yield_now();
                    }
                    client.bye().unwrap();
                } else {
                    let mut stream = socket(addr);
                    for i in 0..30 {
                        let text = format!("raw {n} ça {i}\n");
                        stream.write_all(text.as_bytes()).unwrap();
                        let expected = text.to_uppercase();
                        assert_eq!(read_exact(&mut stream, expected.len()), expected.as_bytes());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn one_client_leaving_with_bye_does_not_disturb_the_others() {
    let (handle, addr) = start_default();
    let mut first = client(addr);
    let mut second = client(addr);
    assert_eq!(first.upcase("hello").unwrap(), "HELLO");
    assert_eq!(second.upcase("world").unwrap(), "WORLD");
    first.bye().unwrap();
    assert_service_goes_on(handle, addr, second);
}

#[test]
fn a_restarted_server_binds_the_same_port_at_once() {
    let config = ServerConfig {
        linger: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let (handle, addr) = start(config.clone(), 1024);
    // Raw clients that stay: at shutdown the server closes first, so its
    // side of each connection goes to TIME_WAIT.
    let mut streams: Vec<TcpStream> = (0..3).map(|_| socket(addr)).collect();
    for stream in &mut streams {
        stream.write_all(b"abc").unwrap();
        assert_eq!(read_exact(stream, 3), b"ABC");
    }
    handle.shutdown();
    for stream in &mut streams {
        assert_eq!(stream.read(&mut [0; 16]).unwrap(), 0, "server closed");
    }
    let server = Server::builder()
        .listen(addr)
        .config(config)
        .bind()
        .unwrap();
    assert_eq!(server.local_addrs()[0], addr);
    let handle = server.spawn().unwrap();
    let mut client = client(addr);
    assert_eq!(client.upcase("again").unwrap(), "AGAIN");
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn a_client_writing_byte_by_byte_gets_the_same_replies() {
    let (handle, addr) = start_default();
    let mut request = PREFACE.to_vec();
    for text in ["héllo wörld €", "ß𝔞"] {
        request.extend_from_slice(
            &FrameRepr::new(FrameType::Text, text.as_bytes().to_vec()).to_bytes(),
        );
    }
    request.extend_from_slice(&FrameRepr::new(FrameType::Ping, b"p".to_vec()).to_bytes());

    let queue = |conn: &mut ClientConnection| {
        for text in ["héllo wörld €", "ß𝔞"] {
            conn.send_text(text).unwrap();
        }
        conn.ping(b"p").unwrap();
    };

    let mut whole = socket(addr);
    whole.write_all(&request).unwrap();
    let mut whole_conn = ClientConnection::new(Instant::now(), ClientConfig::default());
    queue(&mut whole_conn);
    let expected = replies(read_events(&mut whole, &mut whole_conn, 3));

    let mut slow = socket(addr);
    write_byte_by_byte(&mut slow, &request);
    let mut slow_conn = ClientConnection::new(Instant::now(), ClientConfig::default());
    queue(&mut slow_conn);
    let got = replies(read_events(&mut slow, &mut slow_conn, 3));
    assert_eq!(got, expected);
    assert_eq!(
        got,
        [
            (FrameType::Text, "HÉLLO WÖRLD €".as_bytes().to_vec()),
            (FrameType::Text, "SS𝔞".as_bytes().to_vec()),
            (FrameType::Pong, b"p".to_vec()),
        ]
    );

    // Raw, byte by byte through multi-byte code points.
    let mut raw = socket(addr);
    let text = "straße €𝔞!";
    write_byte_by_byte(&mut raw, text.as_bytes());
    let expected = text.to_uppercase();
    assert_eq!(read_exact(&mut raw, expected.len()), expected.as_bytes());
    drop((whole, slow, raw));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn disconnects_mid_frame_mid_code_point_and_by_reset_end_only_that_connection() {
    let (handle, addr) = start_default();
    let mut healthy = client(addr);
    assert_eq!(healthy.upcase("before").unwrap(), "BEFORE");

    // Mid-frame: the preface and half a header.
    let mut mid_frame = socket(addr);
    mid_frame.write_all(&PREFACE).unwrap();
    let frame = FrameRepr::new(FrameType::Text, b"lost".to_vec()).to_bytes();
    mid_frame.write_all(&frame[..20]).unwrap();
    drop(mid_frame);

    // Mid code point in raw mode: the held byte is copied back, then close.
    let mut mid_char = socket(addr);
    mid_char.write_all(b"ab\xc3").unwrap();
    mid_char.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    mid_char.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"AB\xc3");

    // Reset: SO_LINGER 0 makes close send RST, with a request in flight.
    let reset = socket2::Socket::from(socket(addr));
    reset.set_linger(Some(Duration::ZERO)).unwrap();
    let mut reset_stream: TcpStream = reset.into();
    reset_stream.write_all(&PREFACE).unwrap();
    reset_stream.write_all(&frame).unwrap();
    drop(reset_stream);

    assert_service_goes_on(handle, addr, healthy);
}

#[test]
fn an_idle_framed_client_gets_idle_timeout() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let (handle, addr) = start(config, 1024);
    let mut client = client(addr);
    assert_server_error(client.receive(), ErrorCode::IDLE_TIMEOUT);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_frame_over_the_limit_gets_frame_too_large() {
    let config = ServerConfig {
        max_data_len: 16,
        ..ServerConfig::default()
    };
    let (handle, addr) = start(config, 1024);
    let mut client = client(addr);
    assert_eq!(
        client.upcase("sixteen bytes ok").unwrap(),
        "SIXTEEN BYTES OK"
    );
    assert_server_error(
        client.upcase("seventeen bytes!!"),
        ErrorCode::FRAME_TOO_LARGE,
    );
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn over_the_connection_limit_framed_gets_busy_raw_is_closed() {
    let (handle, addr) = start(ServerConfig::default(), 1);
    let mut first = client(addr);
    assert_eq!(first.upcase("first").unwrap(), "FIRST");

    let mut second = client(addr);
    assert_server_error(second.upcase("second"), ErrorCode::BUSY);
    let mut raw = socket(addr);
    raw.write_all(b"raw\n").unwrap();
    let mut rest = Vec::new();
    // Closed without a reply (a reset is a close too).
    match raw.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty()),
        Err(error) => assert_eq!(error.kind(), ErrorKind::ConnectionReset),
    }

    assert_eq!(first.upcase("still served").unwrap(), "STILL SERVED");
    first.bye().unwrap();
    assert_no_connections_left(&handle);
    let mut third = client(addr);
    assert_eq!(third.upcase("room again").unwrap(), "ROOM AGAIN");
    third.bye().unwrap();
    handle.shutdown();
}

#[test]
fn a_client_that_never_reads_is_held_back_with_bounded_memory() {
    let max_pending_output = 64 * 1024;
    let config = ServerConfig {
        max_pending_output,
        ..ServerConfig::default()
    };
    let (handle, addr) = start(config, 1024);
    let mut greedy = socket(addr);
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let frame = FrameRepr::new(FrameType::Text, vec![b'a'; 4096]).to_bytes();
    greedy.write_all(&PREFACE).unwrap();
    let mut sent = 0usize;
    // Write until the server stops reading (a write times out).
    loop {
        assert!(sent < 512 << 20, "the server never stopped reading");
        match greedy.write(&frame) {
            Ok(n) => sent += n,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break;
            }
            Err(error) => panic!("write failed: {error}"),
        }
    }
    // The server holds at most its bound plus one reply beyond it.
    let pending = handle.pending_output_bytes();
    assert!(pending > 0, "replies should be waiting for the client");
    assert!(
        pending <= max_pending_output + 2 * frame.len(),
        "{pending} bytes pending"
    );

    // Others are still served meanwhile.
    let mut other = client(addr);
    assert_eq!(other.upcase("fine").unwrap(), "FINE");
    other.bye().unwrap();
    drop(greedy);
    assert_no_connections_left(&handle);
    assert_eq!(handle.pending_output_bytes(), 0);
    handle.shutdown();
}

#[test]
fn shutdown_answers_every_frame_received_then_says_bye() {
    let (handle, addr) = start_default();
    let mut stream = socket(addr);
    let mut conn = ClientConnection::new(Instant::now(), ClientConfig::default());
    conn.ping(b"ready").unwrap();
    stream.write_all(conn.pending_output()).unwrap();
    let len = conn.pending_output().len();
    conn.mark_sent(Instant::now(), len).unwrap();
    assert_eq!(read_events(&mut stream, &mut conn, 1).len(), 1);

    for i in 0..50 {
        conn.send_text(&format!("request {i}")).unwrap();
    }
    stream.write_all(conn.pending_output()).unwrap();
    handle.begin_shutdown();

    let events = read_events(&mut stream, &mut conn, 51);
    assert_eq!(events.len(), 51, "{events:?}");
    for (i, event) in events[..50].iter().enumerate() {
        match event {
            ClientEvent::Reply { frame, .. } => {
                assert_eq!(frame.data, format!("REQUEST {i}").as_bytes())
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }
    match &events[50] {
        ClientEvent::ServerBye { unanswered, .. } => assert!(unanswered.is_empty()),
        other => panic!("expected BYE, got {other:?}"),
    }
    drop(stream);
    assert!(handle.wait(Some(TIMEOUT)));
    handle.shutdown();
}
