//! The TCP server over real loopback sockets: concurrency, limits,
//! eviction, misbehaving clients, backpressure, the memory budget, the send
//! timeout, restart and shutdown. Other loopback addresses (127.0.0.2)
//! play other clients.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use upcase::conn::{ClientConfig, ClientConnection, ClientEvent, PeerError, ServerConfig};
use upcase::net::{Client, ClientError, Server, ServerBuilder, ServerHandle, ServerMetrics};
use upcase::wire::{ErrorCode, ErrorPayload, Frame, FrameRepr, FrameType, PREFACE};

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

/// A server on one event loop (so that limits are exact and eviction
/// choices are predictable), as `configure` sets it up.
fn start_with(
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> (ServerHandle, SocketAddr) {
    let builder = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .threads(1);
    let server = configure(builder).bind().unwrap();
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

/// A socket connected from the loopback address `source`: another client
/// address on the same machine.
fn socket_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A framed client from a chosen loopback address, driving the sans-IO
/// client core by hand.
struct Framed {
    stream: TcpStream,
    conn: ClientConnection,
}

impl Framed {
    /// Connect from `source` and send the preface and a PING; the reply is
    /// read by [`Framed::reply`] or [`Framed::error`].
    fn connect(source: [u8; 4], addr: SocketAddr) -> Framed {
        let mut framed = Framed {
            stream: socket_from(source, addr),
            conn: ClientConnection::new(Instant::now(), ClientConfig::default()),
        };
        framed.conn.ping(b"hello").unwrap();
        framed.write();
        framed
    }

    fn write(&mut self) {
        self.stream.write_all(self.conn.pending_output()).unwrap();
        let len = self.conn.pending_output().len();
        self.conn.mark_sent(Instant::now(), len).unwrap();
    }

    /// The data of the next reply.
    fn reply(&mut self) -> Vec<u8> {
        match self.next() {
            ClientEvent::Reply { frame, .. } => frame.data.to_vec(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Send TEXT `text` and return the reply's text.
    fn upcase(&mut self, text: &str) -> String {
        self.conn.send_text(text).unwrap();
        self.write();
        String::from_utf8(self.reply()).unwrap()
    }

    /// The next thing the server says must be an ERROR.
    fn error(&mut self) -> ErrorPayload {
        match self.next() {
            ClientEvent::Error { error, .. }
            | ClientEvent::ConnectionLost {
                error: PeerError::Server(error),
                ..
            } => error,
            other => panic!("expected an ERROR, got {other:?}"),
        }
    }

    /// Nothing but bytes that make no event (the server's preface) come
    /// for `period`.
    fn assert_no_event_for(&mut self, period: Duration) {
        let until = Instant::now() + period;
        let mut buffer = [0; 4096];
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.stream.read(&mut buffer) {
                Ok(read) => {
                    assert!(read > 0, "the server closed");
                    self.conn.handle_input(Instant::now(), &buffer[..read]);
                    if let Some(event) = self.conn.poll_event() {
                        panic!("expected nothing yet, got {event:?}");
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => panic!("read failed: {error}"),
            }
        }
        self.stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    }

    /// Read until the client core reports an event (a failure is one too).
    fn next(&mut self) -> ClientEvent {
        let mut buffer = [0; 4096];
        loop {
            if let Some(event) = self.conn.poll_event() {
                return event;
            }
            let read = self.stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the server closed without a reply");
            self.conn.handle_input(Instant::now(), &buffer[..read]);
        }
    }
}

/// Write `frame` until the server stops reading (a write blocks for 2 s).
/// Returns the bytes written.
fn write_until_blocked(stream: &mut TcpStream, frame: &[u8]) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0usize;
    loop {
        assert!(sent < 512 << 20, "the server never stopped reading");
        match stream.write(frame) {
            Ok(n) => sent += n,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return sent;
            }
            Err(error) => panic!("write failed: {error}"),
        }
    }
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
fn with_linger_zero_the_last_output_is_still_written() {
    let config = ServerConfig {
        linger: Duration::ZERO,
        ..ServerConfig::default()
    };
    let (handle, addr) = start(config, 1024);
    let read_all = |request: &[u8], half_close: bool| {
        let mut stream = socket(addr);
        stream.write_all(request).unwrap();
        if half_close {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        reply
    };

    // A bad version: our preface, then ERROR(UNSUPPORTED_VERSION), 103 bytes.
    let reply = read_all(b"\xc0UPCASE\x02", false);
    assert_eq!(&reply[..PREFACE.len()], &PREFACE);
    let error = FrameRepr::parse(&Frame::new_checked(&reply[PREFACE.len()..]).unwrap()).unwrap();
    assert_eq!(error.frame_type, FrameType::Error);
    assert_eq!(reply.len(), 103, "preface + the whole ERROR");

    // BYE: the BYE that answers it.
    let mut request = PREFACE.to_vec();
    request.extend_from_slice(&FrameRepr::new(FrameType::Bye, Vec::new()).to_bytes());
    let reply = read_all(&request, false);
    let bye = FrameRepr::parse(&Frame::new_checked(&reply[PREFACE.len()..]).unwrap()).unwrap();
    assert_eq!(bye.frame_type, FrameType::Bye);

    // Raw end of input: the held e2 82 are copied.
    assert_eq!(read_all(b"a\xe2\x82", true), b"A\xe2\x82");
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

#[test]
fn an_idle_client_still_times_out_after_a_thousand_connections_came_and_went() {
    let idle_timeout = Duration::from_secs(5);
    let config = ServerConfig {
        idle_timeout,
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config));
    let started = Instant::now();
    let mut idle = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(idle.reply(), b"hello");
    // Each leaves its deadline behind in the loop's timers: enough of them
    // that the loop sweeps them out, which must keep the idle client's.
    for _ in 0..1100 {
        let mut passing = socket(addr);
        passing.write_all(b"x").unwrap();
        assert_eq!(read_exact(&mut passing, 1), b"X");
    }
    let error = idle.error();
    assert_eq!(error.code, ErrorCode::IDLE_TIMEOUT, "{}", error.message);
    assert!(started.elapsed() >= idle_timeout);
    drop(idle);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_full_server_evicts_the_longest_idle_connection_of_the_biggest_address() {
    let (handle, addr) = start_with(|builder| builder.max_connections(3));
    let mut first = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(first.reply(), b"hello");
    let mut idle = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(idle.reply(), b"hello");
    let mut third = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(third.reply(), b"hello");
    // `first` is active again, so `idle` is 127.0.0.1's longest idle.
    assert_eq!(first.upcase("again"), "AGAIN");

    // Full: a newcomer from another address is served in `idle`'s place.
    let mut other = Framed::connect([127, 0, 0, 2], addr);
    assert_eq!(other.reply(), b"hello");
    let evicted = idle.error();
    assert_eq!(evicted.code, ErrorCode::BUSY);
    assert!(evicted.message.contains("evicted"), "{}", evicted.message);

    // The others are still served.
    assert_eq!(first.upcase("first"), "FIRST");
    assert_eq!(third.upcase("third"), "THIRD");
    assert_eq!(other.upcase("other"), "OTHER");

    // 127.0.0.1 holds the most (2 of 3): its newcomers cannot evict its
    // own connections or 127.0.0.2's; they are refused.
    let mut refused = Framed::connect([127, 0, 0, 1], addr);
    let busy = refused.error();
    assert_eq!(busy.code, ErrorCode::BUSY);
    assert!(busy.message.contains("limit of 3"), "{}", busy.message);
    drop((first, idle, third, other, refused));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

impl Framed {
    /// Connect from `source` and send only the preface: a connection that
    /// never completes a frame. Returns once the server's preface came
    /// back (the server has read this one's: it is served, in framed mode).
    fn silent(source: [u8; 4], addr: SocketAddr) -> Framed {
        let mut framed = Framed {
            stream: socket_from(source, addr),
            conn: ClientConnection::new(Instant::now(), ClientConfig::default()),
        };
        framed.write();
        let preface = read_exact(&mut framed.stream, PREFACE.len());
        assert_eq!(preface, PREFACE);
        framed.conn.handle_input(Instant::now(), &preface);
        framed
    }
}

#[test]
fn silent_connections_from_many_addresses_are_evicted_oldest_first_before_an_active_client() {
    // Full at four: an active client at 127.0.0.2 and three connections
    // that never send a frame, each from an address of its own; then
    // newcomers, each from a new address, open more such connections.
    let (handle, addr) = start_with(|builder| builder.max_connections(4));
    let mut active = Framed::connect([127, 0, 0, 2], addr);
    assert_eq!(active.reply(), b"hello");
    let mut silent: Vec<Framed> = (1..=3)
        .map(|n| Framed::silent([127, 0, 1, n], addr))
        .collect();
    for n in 1..=20 {
        silent.push(Framed::silent([127, 0, 2, n], addr));
        // The oldest connection that never did anything made room: not
        // the active client, though it has been idle longer.
        let evicted = silent.remove(0).error();
        assert_eq!(evicted.code, ErrorCode::BUSY, "{}", evicted.message);
        if n % 5 == 0 {
            assert_eq!(active.upcase("still served"), "STILL SERVED");
        }
    }
    assert_eq!(active.upcase("to the end"), "TO THE END");
    drop((active, silent));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_client_trickling_an_incomplete_frame_stays_the_longest_idle() {
    let (handle, addr) = start_with(|builder| builder.max_connections(2));
    let mut trickler = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(trickler.reply(), b"hello");
    let mut later = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(later.reply(), b"hello");
    // Bytes that do not complete a frame are no activity.
    let frame = FrameRepr::new(FrameType::Text, b"never finished".to_vec()).to_bytes();
    trickler.stream.write_all(&frame[..10]).unwrap();
    thread::sleep(Duration::from_millis(200));

    // Full: the newcomer takes the place of the trickler, idle since its PING.
    let mut other = Framed::connect([127, 0, 0, 2], addr);
    assert_eq!(other.reply(), b"hello");
    assert_eq!(trickler.error().code, ErrorCode::BUSY);
    assert_eq!(later.upcase("still served"), "STILL SERVED");
    drop((trickler, later, other));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_connection_that_said_bye_is_not_evicted_in_place_of_a_live_one() {
    // It lingers after its BYE until its client closes.
    let config = ServerConfig {
        linger: Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config).max_connections(2));
    let mut live = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(live.reply(), b"hello");
    let mut leaving = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(leaving.reply(), b"hello");
    leaving.conn.bye().unwrap();
    leaving.write();
    match leaving.next() {
        ClientEvent::Reply { frame, .. } => assert_eq!(frame.frame_type, FrameType::Bye),
        other => panic!("expected BYE, got {other:?}"),
    }
    // `live` is the most recently active, yet the only one evictable.
    assert_eq!(live.upcase("recent"), "RECENT");

    let mut other = Framed::connect([127, 0, 0, 2], addr);
    assert_eq!(other.reply(), b"hello");
    assert_eq!(live.error().code, ErrorCode::BUSY);
    drop((live, leaving, other));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn an_idle_connection_gives_its_buffers_back_to_the_memory_budget() {
    let (handle, addr) = start_with(|builder| builder);
    let mut client = client(addr);
    // Far beyond a connection's reserve: its buffers are charged.
    let text = "give it back ".repeat(10_000);
    let sent_at = Instant::now();
    assert_eq!(client.upcase(&text).unwrap(), text.to_uppercase());
    let charged = handle.budget_used_bytes();
    // Kept for a second after the last byte moved, in case another
    // request follows (only checkable if this thread was not held up).
    if sent_at.elapsed() < Duration::from_millis(900) {
        assert!(charged > 0, "buffers given back at once");
    }
    // Then, though the client stays connected, they are given back.
    let deadline = Instant::now() + TIMEOUT;
    while handle.budget_used_bytes() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} bytes still charged",
            handle.budget_used_bytes()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client.upcase(&text).unwrap(), text.to_uppercase());
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn a_busy_clients_trickled_preface_does_not_extend_its_deadline() {
    // Over the limit, a connection has 2 s (the linger here) from its
    // accept to complete its preface, however its bytes trickle in.
    let config = ServerConfig {
        linger: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config).max_connections(1));
    let mut holder = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(holder.reply(), b"hello");

    let mut trickle = socket_from([127, 0, 0, 1], addr);
    trickle
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // One byte every 0.5 s: 7 bytes take 3.5 s, so the server must close
    // before the last one (a deadline restarted by each byte never would).
    let mut closed_after = None;
    for (sent, byte) in PREFACE[..7].iter().enumerate() {
        if trickle.write_all(&[*byte]).is_err() {
            closed_after = Some(sent);
            break;
        }
        match trickle.read(&mut [0; 64]) {
            Ok(0) => {
                closed_after = Some(sent + 1);
                break;
            }
            Ok(read) => panic!("unexpected {read} bytes before the preface was complete"),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed_after = Some(sent + 1);
                break;
            }
        }
    }
    let closed_after = closed_after.expect("the server waited past its deadline");
    assert!(closed_after < 7, "closed after {closed_after} bytes");
    assert_eq!(holder.upcase("still served"), "STILL SERVED");
    drop((holder, trickle));
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn the_memory_budget_stops_reading_from_clients_that_do_not_read() {
    let budget = 256 * 1024;
    // The core alone would buffer up to 64 MiB of output per connection:
    // here only the budget holds the greedy clients back.
    let config = ServerConfig {
        max_pending_output: 64 << 20,
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config).memory_budget(budget));
    // "ΐ" is 2 bytes in and 6 out: the worst expansion.
    let frame = FrameRepr::new(FrameType::Text, "ΐ".repeat(2048).into_bytes()).to_bytes();
    let mut greedy: Vec<TcpStream> = (0..2).map(|_| socket(addr)).collect();
    for stream in &mut greedy {
        stream.write_all(&PREFACE).unwrap();
        write_until_blocked(stream, &frame);
    }
    let used = handle.budget_used_bytes();
    assert!(used > 0, "the greedy clients should be charged");
    // Reads stop once the budget is spent; input is weighed at three times
    // its size (the most its reply can be) and buffers that grew by
    // doubling at their capacity, which can be up to twice what was
    // weighed. Without the budget each would hold up to its 2 MiB bound.
    assert!(
        used <= 2 * budget,
        "{used} bytes charged to a budget of {budget}"
    );

    // A client with small requests is still served from its own reserve.
    let mut polite = client(addr);
    for i in 0..20 {
        assert_eq!(
            polite.upcase(&format!("polite {i}")).unwrap(),
            format!("POLITE {i}")
        );
    }
    polite.bye().unwrap();
    drop(greedy);
    assert_no_connections_left(&handle);
    assert_eq!(handle.budget_used_bytes(), 0);
    assert_eq!(handle.pending_output_bytes(), 0);
    handle.shutdown();
}

/// Wait until the peer has acknowledged everything written on `stream`:
/// it is all in the peer's socket.
fn wait_until_delivered(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut unacknowledged: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
        let status = unsafe {
            libc::ioctl(
                stream.as_raw_fd(),
                libc::TIOCOUTQ,
                &mut unacknowledged as *mut libc::c_int,
            )
        };
        assert_eq!(status, 0, "{}", std::io::Error::last_os_error());
        if unacknowledged == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{unacknowledged} bytes never acknowledged"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The memory budget of [`spend_the_budget`]'s servers.
const SMALL_BUDGET: usize = 256 * 1024;

/// What [`spend_the_budget`] leaves: a server whose budget is spent, its
/// metrics, the greedy clients, and the held-back client with its request.
struct SpentBudget {
    handle: ServerHandle,
    metrics: Option<Arc<ServerMetrics>>,
    greedy: Vec<TcpStream>,
    held: Framed,
    text: String,
}

/// A server (one loop; with `metrics` if asked) whose memory budget two
/// greedy clients, which never read, have spent; and a framed client that
/// sent a request larger than its reserve, which the server reads only in
/// part.
fn spend_the_budget(metrics: bool) -> SpentBudget {
    // The core alone would buffer up to 64 MiB of output per connection:
    // here only the budget holds the greedy clients back.
    let config = ServerConfig {
        max_pending_output: 64 << 20,
        ..ServerConfig::default()
    };
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .config(config)
        .memory_budget(SMALL_BUDGET)
        .metrics(metrics)
        .bind()
        .unwrap();
    let addr = server.local_addrs()[0];
    let metrics = server.metrics().cloned();
    let handle = server.spawn().unwrap();
    let frame = FrameRepr::new(FrameType::Text, "ΐ".repeat(2048).into_bytes()).to_bytes();
    let mut greedy: Vec<TcpStream> = (0..2).map(|_| socket(addr)).collect();
    for stream in &mut greedy {
        stream.write_all(&PREFACE).unwrap();
        write_until_blocked(stream, &frame);
    }
    // The preface and the request in one write: the connection never
    // waits with empty buffers, so no timer of theirs wakes it later.
    let mut held = Framed {
        stream: socket_from([127, 0, 0, 1], addr),
        conn: ClientConnection::new(Instant::now(), ClientConfig::default()),
    };
    // Three times its size (what it may become) is beyond the reserve, yet
    // the whole request fits in the server's socket.
    let text = "held back ".repeat(1_200);
    held.conn.send_text(&text).unwrap();
    held.write();
    // All of it in the server's socket: no more of it arrives later, to
    // wake the held-back connection.
    wait_until_delivered(&held.stream);
    held.assert_no_event_for(Duration::from_millis(500));
    SpentBudget {
        handle,
        metrics,
        greedy,
        held,
        text,
    }
}

#[test]
fn a_connection_held_back_by_the_budget_resumes_once_the_greedy_clients_are_gone() {
    let SpentBudget {
        handle,
        greedy,
        mut held,
        text,
        ..
    } = spend_the_budget(false);
    // Once the greedy clients are gone, nobody else wakes the held-back
    // connection: the server itself must let it read on.
    drop(greedy);
    assert_eq!(held.reply(), text.to_uppercase().as_bytes());
    drop(held);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_client_that_does_not_read_may_leave_replies_up_to_the_budget_waiting() {
    let budget = 1 << 20;
    let config = ServerConfig {
        max_pending_output: 64 << 20,
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config).memory_budget(budget));
    let mut greedy = socket(addr);
    greedy.write_all(&PREFACE).unwrap();
    let frame = FrameRepr::new(FrameType::Text, vec![b'a'; 4096]).to_bytes();
    write_until_blocked(&mut greedy, &frame);
    // Replies are charged at their size (their buffers may have grown to
    // twice that): the server stops reading only once they fill a good
    // part of the budget.
    let pending = handle.pending_output_bytes();
    assert!(
        pending > budget / 4,
        "only {pending} bytes of replies held for a budget of {budget}"
    );
    drop(greedy);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn a_connection_its_client_resets_is_closed_at_once() {
    let (handle, addr) = start_with(|builder| builder);
    let mut framed = Framed::connect([127, 0, 0, 1], addr);
    assert_eq!(framed.reply(), b"hello");
    // SO_LINGER 0: close sends RST, to a server that waits for requests.
    let reset = socket2::Socket::from(framed.stream);
    reset.set_linger(Some(Duration::ZERO)).unwrap();
    drop(reset);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn shutdown_answers_a_request_the_budget_held_back() {
    let SpentBudget {
        handle,
        greedy,
        mut held,
        text,
        ..
    } = spend_the_budget(false);
    // The rest of the request is in the socket: shutdown reads it whatever
    // the budget, answers it, then says BYE.
    handle.begin_shutdown();
    assert_eq!(held.reply(), text.to_uppercase().as_bytes());
    match held.next() {
        ClientEvent::ServerBye { unanswered, .. } => assert!(unanswered.is_empty()),
        other => panic!("expected BYE, got {other:?}"),
    }
    drop((greedy, held));
    assert!(handle.wait(Some(TIMEOUT)));
    handle.shutdown();
}

#[test]
fn shutdown_closes_a_held_back_connection_its_client_reset_and_counts_it_closed() {
    let SpentBudget {
        handle,
        metrics,
        greedy,
        held,
        ..
    } = spend_the_budget(true);
    // Reset (SO_LINGER 0): unnoticed while the budget keeps the server
    // from reading, found when shutdown reads what the socket holds.
    let reset = socket2::Socket::from(held.stream);
    reset.set_linger(Some(Duration::ZERO)).unwrap();
    drop(reset);
    handle.begin_shutdown();
    drop(greedy);
    assert!(handle.wait(Some(TIMEOUT)));
    let snapshot = metrics.expect("metrics are on").snapshot();
    assert_eq!(snapshot.connections_open, [0; 3]);
    assert_eq!(
        snapshot.connections_closed.iter().sum::<u64>(),
        snapshot.connections_accepted
    );
    handle.shutdown();
}

#[test]
fn the_metrics_report_the_configured_memory_budget() {
    let budget = 3 * 1024 * 1024 + 17;
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .memory_budget(budget)
        .metrics(true)
        .bind()
        .unwrap();
    let metrics = Arc::clone(server.metrics().expect("metrics are on"));
    let handle = server.spawn().unwrap();
    let gauges = metrics.snapshot().gauges;
    assert_eq!(gauges.memory_budget, budget as u64);
    assert_eq!(gauges.memory_budget_used, 0);
    handle.shutdown();
}

/// A listener whose connections are accepted by hand (a server that never
/// reads or answers, or that hangs up).
fn bare_listener() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Client settings that let a whole large request go out at once.
fn unwindowed() -> ClientConfig {
    ClientConfig {
        max_in_flight: 64 << 20,
        ..ClientConfig::default()
    }
}

#[test]
fn the_blocking_client_gives_up_when_the_server_takes_none_of_its_bytes() {
    let (silent, addr) = bare_listener();
    let timeout = Duration::from_secs(1);
    let mut client = Client::connect_with(addr, timeout, unwindowed()).unwrap();
    let (_accepted, _) = silent.accept().unwrap();
    // Far more than the sockets' buffers hold: a write blocks.
    match client.send_bytes(&vec![b'a'; 32 << 20]) {
        Err(ClientError::Timeout { timeout: waited }) => assert_eq!(waited, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn the_blocking_client_reports_a_connection_the_server_reset() {
    let (listener, addr) = bare_listener();
    let mut client = Client::connect_with(addr, TIMEOUT, unwindowed()).unwrap();
    // Closed with the client's preface unread: the connection is reset.
    drop(listener.accept().unwrap());
    match client.send_bytes(&vec![b'a'; 32 << 20]) {
        Err(ClientError::Io(error)) => assert!(
            matches!(
                error.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{error}"
        ),
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[test]
fn the_blocking_client_reports_a_connection_reset_while_it_waits_for_a_reply() {
    let (listener, addr) = bare_listener();
    let mut client = client(addr);
    let (accepted, _) = listener.accept().unwrap();
    client.send_text("anyone there?").unwrap();
    // Closed with the client's bytes unread: the connection is reset.
    drop(accepted);
    match client.receive() {
        Err(ClientError::Io(error)) => assert_eq!(error.kind(), ErrorKind::ConnectionReset),
        other => panic!("expected a connection reset, got {other:?}"),
    }
}

#[test]
fn the_blocking_client_says_nobody_listens_when_the_connection_is_refused() {
    let (listener, addr) = bare_listener();
    drop(listener);
    match Client::connect(addr, TIMEOUT) {
        Err(ClientError::Refused { addr: tried }) => assert_eq!(tried, addr),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_blocking_client_says_when_a_connect_is_not_answered_in_time() {
    // A listener with a backlog of 0 that never accepts: once its queue is
    // full, the kernel ignores further connection requests.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let timeout = Duration::from_millis(300);
    let mut queued = Vec::new();
    for _ in 0..8 {
        match Client::connect(addr, timeout) {
            Ok(client) => queued.push(client),
            Err(ClientError::ConnectTimeout {
                addr: tried,
                timeout: waited,
            }) => {
                assert_eq!((tried, waited), (addr, timeout));
                return;
            }
            Err(other) => panic!("expected a connect timeout, got {other:?}"),
        }
    }
    panic!("{} connections queued, none timed out", queued.len());
}

extern "C" fn do_nothing(_signal: libc::c_int) {}

/// Catch SIGUSR1 with a handler that does nothing, as a program catching
/// SIGWINCH or SIGCHLD does: the signal then interrupts blocking calls.
fn catch_sigusr1() {
    // SAFETY: a zeroed sigaction is valid; the handler does nothing, so it
    // is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = do_nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// Send SIGUSR1 to `thread` every 20 ms for `period`.
fn interrupt_for(thread: libc::pthread_t, period: Duration) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        // SAFETY: `thread` is alive: it waits for this to end before it
        // goes on.
        assert_eq!(unsafe { libc::pthread_kill(thread, libc::SIGUSR1) }, 0);
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_do_not_break_the_blocking_clients_waits() {
    catch_sigusr1();
    // Connections wait in its queue, never accepted: nothing reads them.
    let (_silent, addr) = bare_listener();
    let timeout = Duration::from_secs(1);
    let (to_main, from_worker) = std::sync::mpsc::channel();
    let (to_worker, from_main) = std::sync::mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let mut writer = Client::connect_with(addr, timeout, unwindowed()).unwrap();
        to_main.send(me).unwrap();
        // Blocked writing to a server that does not read.
        let written = writer.send_bytes(&vec![b'a'; 32 << 20]);
        from_main.recv().unwrap();
        let mut reader = Client::connect(addr, timeout).unwrap();
        to_main.send(me).unwrap();
        // Blocked reading from a server that does not answer.
        let answered = reader.upcase("anyone there?");
        from_main.recv().unwrap();
        (written, answered)
    });
    for _ in 0..2 {
        let thread = from_worker.recv().unwrap();
        interrupt_for(thread, Duration::from_millis(500));
        to_worker.send(()).unwrap();
    }
    // The worker went on waiting through every signal, until its timeout.
    let (written, answered) = worker.join().unwrap();
    for result in [written.map(|_| ()), answered.map(|_| ())] {
        match result {
            Err(ClientError::Timeout { timeout: waited }) => assert_eq!(waited, timeout),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}

/// Send SIGUSR1 to every thread of this process named `name`. Whether
/// there was one.
fn signal_threads_named(name: &str) -> bool {
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let tid: libc::pid_t = task.file_name().to_string_lossy().parse().unwrap();
        // SAFETY: tgkill takes plain numbers; a thread that has exited
        // meanwhile makes it fail with ESRCH, which is ignored.
        unsafe {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1);
        }
        found = true;
    }
    found
}

#[test]
fn signals_do_not_stop_the_servers_event_loop() {
    catch_sigusr1();
    let (handle, addr) = start_with(|builder| builder);
    let mut client = client(addr);
    assert_eq!(client.upcase("before").unwrap(), "BEFORE");
    // The loop waits in poll, which a caught signal interrupts.
    assert!(signal_threads_named("loop 0"), "no event loop thread found");
    for _ in 0..4 {
        thread::sleep(Duration::from_millis(20));
        signal_threads_named("loop 0");
    }
    assert_eq!(client.upcase("after").unwrap(), "AFTER");
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn the_blocking_client_gives_up_after_its_reply_timeout() {
    let (silent, addr) = bare_listener();
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let mut client = Client::connect(addr, timeout).unwrap();
    let (_accepted, _) = silent.accept().unwrap();
    match client.upcase("anyone there?") {
        Err(ClientError::Timeout { timeout: waited }) => assert_eq!(waited, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Far more than 1 s on a loaded machine, far less than the 30 s a
    // client without its own reply timeout would wait.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "gave up after {elapsed:?}"
    );
}

#[test]
fn the_blocking_client_upcases_bytes_in_ascii_only_and_pings() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    assert_eq!(
        client.upcase_bytes(b"caf\xc3\xa9 \xff abc").unwrap(),
        b"CAF\xc3\xa9 \xff ABC"
    );
    assert_eq!(client.ping(b"are you there").unwrap(), b"are you there");
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn the_blocking_client_pipelines_requests_of_every_kind_and_counts_those_waiting() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    client.send_text("one").unwrap();
    client.send_bytes(b"two \xff").unwrap();
    client
        .send(FrameRepr::new(FrameType::Text, b"three".to_vec()))
        .unwrap();
    assert_eq!(client.waiting(), 3);
    assert_eq!(client.receive().unwrap(), b"ONE");
    assert_eq!(client.waiting(), 2);
    assert_eq!(client.receive().unwrap(), b"TWO \xff");
    assert_eq!(client.receive().unwrap(), b"THREE");
    assert_eq!(client.waiting(), 0);
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn the_blocking_clients_upcase_returns_its_own_reply_after_pipelined_requests() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    client.send_text("earlier").unwrap();
    client.send_text("earlier still").unwrap();
    assert_eq!(client.upcase("mine").unwrap(), "MINE");
    assert_eq!(client.waiting(), 0);
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn the_blocking_clients_ping_returns_its_own_pong_after_pipelined_requests() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    client.send_text("earlier").unwrap();
    client.send_bytes(b"earlier still").unwrap();
    assert_eq!(client.ping(b"mine").unwrap(), b"mine");
    assert_eq!(client.waiting(), 0);
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn the_blocking_client_takes_an_error_as_its_requests_answer_and_waits_for_the_next() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    client
        .send(FrameRepr::new(FrameType::Unknown(200), b"?".to_vec()))
        .unwrap();
    client.send_text("after").unwrap();
    assert_server_error(client.receive(), ErrorCode::UNKNOWN_TYPE);
    assert_eq!(client.waiting(), 1);
    assert_eq!(client.receive().unwrap(), b"AFTER");
    assert_eq!(client.waiting(), 0);
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn once_the_server_ends_the_connection_the_blocking_client_has_nothing_waiting() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    // Not UTF-8: a fatal error, so the request after it is never answered.
    client
        .send(FrameRepr::new(FrameType::Text, b"\xff".to_vec()))
        .unwrap();
    client.send_text("never answered").unwrap();
    assert_eq!(client.waiting(), 2);
    assert_server_error(client.receive(), ErrorCode::INVALID_UTF8);
    assert_eq!(client.waiting(), 0);
    drop(client);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn the_blocking_clients_bye_reports_an_error_owed_for_an_earlier_request() {
    let (handle, addr) = start_default();
    let mut client = client(addr);
    client.send_text("answered").unwrap();
    client
        .send(FrameRepr::new(FrameType::Unknown(200), b"?".to_vec()))
        .unwrap();
    // bye() reads the replies still owed before the server's BYE: the
    // first is fine, the second an ERROR it must not swallow.
    assert_server_error(client.bye(), ErrorCode::UNKNOWN_TYPE);
    assert_no_connections_left(&handle);
    handle.shutdown();
}

#[test]
fn output_that_makes_no_progress_for_the_send_timeout_closes_the_connection() {
    let config = ServerConfig {
        send_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let (handle, addr) = start_with(|builder| builder.config(config));
    let mut greedy = socket(addr);
    greedy.write_all(&PREFACE).unwrap();
    let frame = FrameRepr::new(FrameType::Text, vec![b'a'; 4096]).to_bytes();
    // Write and never read, until the server stops reading or gives up.
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0usize;
    while greedy.write_all(&frame).is_ok() {
        sent += frame.len();
        assert!(sent < 512 << 20, "the server never stopped reading");
    }
    // Within the 1 s timeout (and our generous bound) the server gives up
    // on it and frees what it held.
    assert_no_connections_left(&handle);
    assert_eq!(handle.pending_output_bytes(), 0);
    // A client that reads is untouched by the timeout.
    let mut reader = client(addr);
    assert_eq!(reader.upcase("fine").unwrap(), "FINE");
    reader.bye().unwrap();
    drop(greedy);
    handle.shutdown();
}

#[test]
fn shutdown_answers_every_frame_received_on_every_loop() {
    // Two loops, so that each shuts down its own connections.
    let (handle, addr) = start_with(|builder| builder.threads(2));
    let mut clients: Vec<Framed> = (0..8)
        .map(|n| Framed::connect([127, 0, 0, 1 + (n % 2)], addr))
        .collect();
    for client in &mut clients {
        assert_eq!(client.reply(), b"hello");
        for i in 0..20 {
            client.conn.send_text(&format!("request {i}")).unwrap();
        }
        client.write();
    }
    handle.begin_shutdown();
    for client in &mut clients {
        for i in 0..20 {
            assert_eq!(client.reply(), format!("REQUEST {i}").as_bytes());
        }
        match client.next() {
            ClientEvent::ServerBye { unanswered, .. } => assert!(unanswered.is_empty()),
            other => panic!("expected BYE, got {other:?}"),
        }
    }
    drop(clients);
    assert!(handle.wait(Some(TIMEOUT)));
    handle.shutdown();
}

#[test]
fn a_second_server_cannot_take_a_port_in_use_despite_reuseport() {
    // The loops of one server share their port (SO_REUSEPORT); another
    // server asking for it must still be told it is in use.
    let (handle, addr) = start_with(|builder| builder.threads(2));
    let second = Server::builder().listen(addr).threads(2).bind();
    match second {
        Err(error) => assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}"),
        Ok(server) => panic!("bound {:?} a second time", server.local_addrs()),
    }
    let mut client = client(addr);
    assert_eq!(client.upcase("still mine").unwrap(), "STILL MINE");
    client.bye().unwrap();
    handle.shutdown();
}

/// The environment variable that makes this test binary, run again, act as
/// the child of [`in_child_process`].
const CHILD_TEST: &str = "UPCASE_SERVER_TEST_CHILD";

/// Run the test `name` again, alone in a child process: for what would
/// disturb the tests running beside it (the descriptor limit) or be
/// disturbed by them (a thread's CPU time). True in the parent, once the
/// child passed; false in the child, which then runs the test's body.
fn in_child_process(name: &str) -> bool {
    if std::env::var(CHILD_TEST).is_ok_and(|child| child == name) {
        return false;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_TEST, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child process failed:\n{stdout}\n{stderr}"
    );
    true
}

#[test]
fn out_of_descriptors_a_waiting_client_is_closed_at_once_and_service_resumes() {
    if in_child_process("out_of_descriptors_a_waiting_client_is_closed_at_once_and_service_resumes")
    {
        return;
    }
    let (handle, addr) = start_with(|builder| builder);
    let mut served = client(addr);
    assert_eq!(served.upcase("before").unwrap(), "BEFORE");

    // Sockets for clients made beforehand; then every descriptor the
    // process may open is taken.
    let waiting: Vec<socket2::Socket> = (0..3)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, hard.min(256), hard).unwrap();
    let mut hogs = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => hogs.push(file),
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(24), "{error}");
                break;
            }
        }
    }
    // Clients the server has no descriptor to accept with, one alone and
    // then two at once: each must learn at once that it will not be
    // served, rather than wait in the queue.
    // (Each is kept open, so that its descriptor stays taken.)
    let mut waiting: Vec<TcpStream> = waiting.into_iter().map(TcpStream::from).collect();
    let (alone, together) = waiting.split_at_mut(1);
    socket2::SockRef::from(&alone[0])
        .connect(&addr.into())
        .unwrap();
    assert_closed_by_the_server(&mut alone[0]);
    // Still out of descriptors, it goes on serving its connections.
    assert_eq!(served.upcase("meanwhile").unwrap(), "MEANWHILE");
    for stream in together.iter() {
        socket2::SockRef::from(stream)
            .connect(&addr.into())
            .unwrap();
    }
    for stream in together {
        assert_closed_by_the_server(stream);
    }

    // With descriptors again, it serves as before.
    drop((hogs, waiting));
    assert_eq!(served.upcase("still served").unwrap(), "STILL SERVED");
    let mut newcomer = client(addr);
    assert_eq!(newcomer.upcase("after").unwrap(), "AFTER");
    served.bye().unwrap();
    newcomer.bye().unwrap();
    handle.shutdown();
}

/// The server closes `stream` without a word.
#[track_caller]
fn assert_closed_by_the_server(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    match stream.read(&mut [0; 16]) {
        Ok(0) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

/// The CPU time (user and system) used so far by this process's thread
/// named `name` (the only one: see [`in_child_process`]).
fn cpu_time_of_thread(name: &str) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // After "pid (comm) ", utime and stime are the 12th and 13th fields.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        return Duration::from_millis(ticks * 1000 / ticks_per_second);
    }
    panic!("no thread named {name}");
}

#[test]
fn an_idle_server_sleeps_until_something_happens() {
    if in_child_process("an_idle_server_sleeps_until_something_happens") {
        return;
    }
    let (handle, addr) = start_with(|builder| builder);
    let mut client = client(addr);
    assert_eq!(client.upcase("then quiet").unwrap(), "THEN QUIET");
    let before = cpu_time_of_thread("loop 0");
    thread::sleep(Duration::from_secs(2));
    // A loop that polled without sleeping would use a good part of a core.
    let used = cpu_time_of_thread("loop 0") - before;
    assert!(
        used < Duration::from_millis(100),
        "the idle event loop used {used:?} of CPU in 2 s"
    );
    client.bye().unwrap();
    handle.shutdown();
}

#[test]
fn a_server_whose_budget_is_spent_waits_without_spinning() {
    if in_child_process("a_server_whose_budget_is_spent_waits_without_spinning") {
        return;
    }
    let SpentBudget {
        handle,
        greedy,
        held,
        ..
    } = spend_the_budget(false);
    // Held-back connections retry a hundred times a second, which costs
    // next to nothing; a loop retrying without sleeping would use a core.
    let before = cpu_time_of_thread("loop 0");
    thread::sleep(Duration::from_secs(2));
    let used = cpu_time_of_thread("loop 0") - before;
    assert!(
        used < Duration::from_millis(200),
        "the waiting event loop used {used:?} of CPU in 2 s"
    );
    drop((greedy, held));
    assert_no_connections_left(&handle);
    handle.shutdown();
}
