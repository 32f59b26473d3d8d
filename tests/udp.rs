//! UPCASE over UDP on loopback (SPEC.md §8): round trips, every rejected
//! datagram answered with the right ERROR or dropped as the spec says, and
//! bursts from several sockets. Every server binds 127.0.0.1:0.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use upcase::net::{
    Client, ClientError, Server, ServerBuilder, ServerHandle, UdpClient, UdpRateLimit,
};
use upcase::wire::{
    ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameRepr, FrameType, PREFACE,
    encode_framed_datagram,
};

const TIMEOUT: Duration = Duration::from_secs(5);

fn start() -> (ServerHandle, SocketAddr) {
    start_with(Server::builder())
}

fn start_with(builder: ServerBuilder) -> (ServerHandle, SocketAddr) {
    let server = builder
        .listen("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap();
    let tcp = server.local_addrs()[0];
    assert_eq!(
        server.udp_addrs(),
        [tcp],
        "UDP on the same address and port"
    );
    (server.spawn().unwrap(), tcp)
}

/// The counter's value once it reaches `expected` (or [`TIMEOUT`] passes):
/// the server counts a datagram just after answering it, so a client can
/// see the reply before the count.
fn counted(counter: &AtomicU64, expected: u64) -> u64 {
    let deadline = Instant::now() + TIMEOUT;
    while counter.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    counter.load(Ordering::Relaxed)
}

fn datagram(frame: &FrameRepr) -> Vec<u8> {
    encode_framed_datagram(frame).to_vec()
}

/// The ERROR code of a reply datagram, which must be preface + one ERROR frame.
fn error_code_of(reply: &[u8]) -> ErrorCode {
    assert_eq!(&reply[..8], &PREFACE);
    let mut rest = BytesMut::from(&reply[8..]);
    let frame = FrameDecoder::new(u32::MAX)
        .decode(&mut rest)
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "exactly one frame");
    assert_eq!(frame.frame_type, FrameType::Error);
    ErrorPayload::parse(&frame.data)
        .expect("ERROR data holds a code")
        .code
}

#[test]
fn raw_and_framed_round_trips() {
    let (handle, addr) = start();
    let mut client = UdpClient::connect(addr, TIMEOUT).unwrap();
    assert_eq!(
        client.exchange("straße\n".as_bytes()).unwrap(),
        b"STRASSE\n"
    );
    assert_eq!(
        client.exchange(b"\xc3").unwrap(),
        b"\xc3",
        "an incomplete tail is copied"
    );
    let reply = client
        .request(&FrameRepr::new(FrameType::Text, "ΐ".as_bytes().to_vec()))
        .unwrap();
    assert_eq!(&reply.data[..], "\u{399}\u{308}\u{301}".as_bytes());
    assert_eq!(
        reply.src.to_socket_addr(),
        addr,
        "filled with the server's address"
    );
    let ours = client.local_addr().unwrap();
    assert_eq!(
        reply.dst.to_socket_addr(),
        SocketAddr::new([127, 0, 0, 1].into(), ours.port()),
        "filled with our address as the server saw it"
    );
    handle.shutdown();
}

#[test]
fn bad_framed_datagrams_get_the_right_error() {
    let (handle, addr) = start();
    let mut client = UdpClient::connect(addr, TIMEOUT).unwrap();
    let text = FrameRepr::new(FrameType::Text, b"hi".to_vec());
    let whole = datagram(&text);

    let truncated = &whole[..8 + 10];
    assert_eq!(
        error_code_of(&client.exchange(truncated).unwrap()),
        ErrorCode::MALFORMED
    );
    let short_data = &whole[..whole.len() - 1];
    assert_eq!(
        error_code_of(&client.exchange(short_data).unwrap()),
        ErrorCode::MALFORMED
    );
    let mut long_data = whole.clone();
    long_data.push(b'!');
    assert_eq!(
        error_code_of(&client.exchange(&long_data).unwrap()),
        ErrorCode::MALFORMED
    );
    let mut more = text.clone();
    more.flags = Flags::more_if(true);
    assert_eq!(
        error_code_of(&client.exchange(&datagram(&more)).unwrap()),
        ErrorCode::MALFORMED
    );
    let mut version = whole.clone();
    version[7] = 2;
    assert_eq!(
        error_code_of(&client.exchange(&version).unwrap()),
        ErrorCode::UNSUPPORTED_VERSION
    );
    let invalid = FrameRepr::new(FrameType::Text, b"\xff".to_vec());
    assert_eq!(
        error_code_of(&client.exchange(&datagram(&invalid)).unwrap()),
        ErrorCode::INVALID_UTF8
    );
    let unknown = FrameRepr::new(FrameType::Unknown(0x33), b"".to_vec());
    assert_eq!(
        error_code_of(&client.exchange(&datagram(&unknown)).unwrap()),
        ErrorCode::UNKNOWN_TYPE
    );
    let expanding = FrameRepr::new(FrameType::Text, "ΐ".repeat(20_000).into_bytes());
    assert_eq!(
        error_code_of(&client.exchange(&datagram(&expanding)).unwrap()),
        ErrorCode::FRAME_TOO_LARGE,
        "a reply over 65,507 bytes becomes FRAME_TOO_LARGE"
    );
    // The library client turns an ERROR into a typed error.
    match client.request(&invalid) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::INVALID_UTF8),
        other => panic!("{other:?}"),
    }
    handle.shutdown();
}

#[test]
fn an_oversized_raw_reply_is_dropped_and_counted() {
    let (handle, addr) = start();
    let mut client = UdpClient::connect(addr, Duration::from_millis(300)).unwrap();
    let expanding = "ΐ".repeat(20_000);
    assert!(matches!(
        client.exchange(expanding.as_bytes()),
        Err(ClientError::NoDatagramReply { .. })
    ));
    assert_eq!(counted(&handle.udp_stats().dropped, 1), 1);
    // The service goes on (a fresh socket with a patient timeout, so that a
    // loaded machine cannot turn a slow reply into a failure).
    let mut patient = UdpClient::connect(addr, TIMEOUT).unwrap();
    assert_eq!(patient.exchange(b"ok").unwrap(), b"OK");
    handle.shutdown();
}

#[test]
fn garbage_datagrams_never_disturb_tcp_clients() {
    let (handle, addr) = start();
    let mut tcp = Client::connect(addr, TIMEOUT).unwrap();
    let noise = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x9e37_79b9_u32;
    for round in 0..200 {
        let len = (seed % 300) as usize;
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let mut datagram = if round % 2 == 0 {
            PREFACE.to_vec()
        } else {
            Vec::new()
        };
        datagram.extend_from_slice(&garbage);
        noise.send_to(&datagram, addr).unwrap();
        if round % 20 == 0 {
            assert_eq!(tcp.upcase("still served").unwrap(), "STILL SERVED");
        }
    }
    tcp.bye().unwrap();
    handle.shutdown();
}

#[test]
fn a_burst_from_several_sockets_is_answered_in_full() {
    let (handle, addr) = start();
    const SOCKETS: usize = 4;
    const PER_SOCKET: usize = 100;
    let sockets: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(TIMEOUT)).unwrap();
            socket
        })
        .collect();
    for (s, socket) in sockets.iter().enumerate() {
        for i in 0..PER_SOCKET {
            socket
                .send_to(format!("s{s} n{i}").as_bytes(), addr)
                .unwrap();
        }
    }
    let mut buf = [0u8; 256];
    for (s, socket) in sockets.iter().enumerate() {
        let mut replies: Vec<String> = (0..PER_SOCKET)
            .map(|_| {
                let (len, _) = socket.recv_from(&mut buf).unwrap();
                String::from_utf8(buf[..len].to_vec()).unwrap()
            })
            .collect();
        replies.sort();
        let mut expected: Vec<String> = (0..PER_SOCKET).map(|i| format!("S{s} N{i}")).collect();
        expected.sort();
        assert_eq!(replies, expected);
    }
    let stats = handle.udp_stats();
    let all = (SOCKETS * PER_SOCKET) as u64;
    assert_eq!(counted(&stats.answered, all), all);
    assert_eq!(stats.received.load(Ordering::Relaxed), all);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    handle.shutdown();
}

/// A socket at `ip` (any port) that waits at most `wait` for a reply.
fn socket_at(ip: &str, wait: Duration) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket
}

#[test]
fn no_reply_is_over_three_times_its_datagram() {
    let (handle, addr) = start();
    let socket = socket_at("127.0.0.1", Duration::from_millis(300));
    let mut buf = [0u8; 1024];
    // The 8 bytes that drew a 105-byte ERROR, and a bare preface (89).
    let version_ff = [0xc0, 0x55, 0x50, 0x43, 0x41, 0x53, 0x45, 0xff];
    for silent in [&version_ff[..], &PREFACE[..]] {
        socket.send_to(silent, addr).unwrap();
        assert!(
            socket.recv_from(&mut buf).is_err(),
            "{silent:02x?} got a reply"
        );
    }
    assert_eq!(counted(&handle.udp_stats().dropped, 2), 2);
    // 18 bytes: room for the ERROR with 2 bytes of its message, 54 in all.
    let mut short = PREFACE.to_vec();
    short[7] = 2;
    short.resize(18, 0);
    let patient = socket_at("127.0.0.1", TIMEOUT);
    patient.send_to(&short, addr).unwrap();
    let (len, _) = patient.recv_from(&mut buf).unwrap();
    assert_eq!(len, 54);
    assert_eq!(error_code_of(&buf[..len]), ErrorCode::UNSUPPORTED_VERSION);
    handle.shutdown();
}

#[test]
fn a_source_over_its_rate_limit_is_dropped_while_another_is_served() {
    let limit = UdpRateLimit {
        per_second: 1,
        burst: 5,
    };
    let (handle, addr) = start_with(Server::builder().udp_rate_limit(limit));
    let flood = socket_at("127.0.0.1", Duration::from_millis(300));
    let started = Instant::now();
    for n in 0..20 {
        flood
            .send_to(format!("flood {n}").as_bytes(), addr)
            .unwrap();
    }
    let stats = handle.udp_stats();
    assert_eq!(counted(&stats.received, 20), 20);
    let refilled = started.elapsed().as_secs() + 1;
    let mut buf = [0u8; 64];
    let mut replies = 0;
    while flood.recv_from(&mut buf).is_ok() {
        replies += 1;
    }
    assert!(
        (5..=5 + refilled).contains(&replies),
        "{replies} replies: the burst of 5, and 1 a second"
    );
    assert_eq!(stats.rate_limited.load(Ordering::Relaxed), 20 - replies);
    // Another address has a bucket of its own.
    let other = socket_at("127.0.0.2", TIMEOUT);
    for n in 0..5 {
        other
            .send_to(format!("other {n}").as_bytes(), addr)
            .unwrap();
        let (len, _) = other.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], format!("OTHER {n}").as_bytes());
    }
    handle.shutdown();
}

/// Every log line of this test binary, from every test.
struct CapturedLog(std::sync::Mutex<Vec<String>>);

impl log::Log for CapturedLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.push(record.args().to_string());
    }

    fn flush(&self) {}
}

static LOG: CapturedLog = CapturedLog(std::sync::Mutex::new(Vec::new()));

/// Capture log lines from now on (in this binary, once for all tests).
fn capture_log() {
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

#[test]
fn the_end_of_a_flood_is_logged_with_the_count_held_back() {
    capture_log();
    let limit = UdpRateLimit {
        per_second: 1,
        burst: 1,
    };
    let (handle, addr) = start_with(Server::builder().udp_rate_limit(limit));
    let flood = socket_at("127.0.0.1", TIMEOUT);
    // One answered, 19 over the rate: at least one worker (four at most)
    // logs one of those and holds back the count of the next ones.
    for n in 0..20 {
        flood
            .send_to(format!("flood {n}").as_bytes(), addr)
            .unwrap();
    }
    assert_eq!(counted(&handle.udp_stats().received, 20), 20);
    // Nothing more comes: the count is logged once the interval is over.
    let summary = |line: &String| {
        line.strip_prefix("udp: source over its rate limit: ")
            .and_then(|rest| rest.strip_suffix(" more like this suppressed"))
            .is_some_and(|count| count.parse::<u64>().is_ok_and(|n| n > 0))
    };
    let deadline = Instant::now() + 2 * TIMEOUT;
    while !LOG.0.lock().unwrap().iter().any(summary) {
        assert!(
            Instant::now() < deadline,
            "no summary line in {:?}",
            LOG.0.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.shutdown();
}
