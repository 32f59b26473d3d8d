//! The server with the PROXY protocol on (SPEC.md §13), over loopback: the
//! header's addresses are the connection's, LOCAL keeps the socket's, and
//! untrusted peers, missing, malformed and late headers are closed without
//! a reply. The headers are written out byte by byte from the PROXY
//! protocol spec, not by the parser under test.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use upcase::conn::ServerConfig;
use upcase::net::{Cidr, Server, ServerHandle, ServerMetrics};
use upcase::wire::{Address, ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A running server with the PROXY protocol on, trusting `trusted`.
struct ProxiedServer {
    handle: ServerHandle,
    addr: SocketAddr,
    metrics: Arc<ServerMetrics>,
}

impl ProxiedServer {
    fn start(trusted: &[&str], header_timeout: Duration) -> ProxiedServer {
        Self::start_with(trusted, header_timeout, Server::builder())
    }

    fn start_with(
        trusted: &[&str],
        header_timeout: Duration,
        builder: upcase::net::ServerBuilder,
    ) -> ProxiedServer {
        let server = builder
            .listen("127.0.0.1:0".parse().unwrap())
            .udp(false)
            .metrics(true)
            .proxy_protocol(
                trusted
                    .iter()
                    .map(|net| net.parse::<Cidr>().unwrap())
                    .collect(),
            )
            .proxy_header_timeout(header_timeout)
            .bind()
            .unwrap();
        let addr = server.local_addrs()[0];
        let metrics = Arc::clone(server.metrics().unwrap());
        ProxiedServer {
            handle: server.spawn().unwrap(),
            addr,
            metrics,
        }
    }

    /// PROXY headers seen so far, by outcome (`ProxyOutcome::ALL` order:
    /// proxied, local, unknown, invalid, timeout, untrusted, overflow).
    fn outcomes(&self) -> [u64; 7] {
        self.metrics.snapshot().proxy_headers
    }
}

/// Connect from `from` (a loopback address) to `to`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect_timeout(&to.into(), TIMEOUT).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";

/// The v2 signature (PROXY protocol spec §2.2).
const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// v2 PROXY, TCP over IPv6, from [2001:db8::1]:1000 to [2001:db8::2]:2000.
fn v2_tcp6() -> Vec<u8> {
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x21, 0, 36]);
    header.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    header.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    header.extend_from_slice(&1000u16.to_be_bytes());
    header.extend_from_slice(&2000u16.to_be_bytes());
    header
}

/// v2 LOCAL, as a health check sends it.
fn v2_local() -> Vec<u8> {
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&[0x20, 0x00, 0, 0]);
    header
}

/// The preface and a TEXT frame with unspecified addresses.
fn framed_request() -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(&FrameRepr::new(FrameType::Text, &b"who am i"[..]).to_bytes());
    bytes
}

/// Read the preface and one frame.
fn read_reply(stream: &mut TcpStream) -> FrameRepr {
    let mut preface = [0; 8];
    stream.read_exact(&mut preface).unwrap();
    assert_eq!(preface, PREFACE);
    let mut buffer = BytesMut::new();
    let decoder = FrameDecoder::new(1 << 20);
    loop {
        if let Some(frame) = decoder.decode(&mut buffer).unwrap() {
            return frame;
        }
        let mut chunk = [0; 4096];
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "closed before the reply");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the server closed the connection without sending anything.
fn closed_without_reply(stream: &mut TcpStream) -> Result<(), String> {
    let mut buffer = [0; 64];
    match stream.read(&mut buffer) {
        Ok(0) => Ok(()),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => Ok(()),
        Ok(read) => Err(format!("got {:?}", &buffer[..read])),
        Err(error) => Err(format!("not closed: {error}")),
    }
}

fn addr(text: &str) -> Address {
    text.parse::<SocketAddr>().unwrap().into()
}

#[test]
fn a_v1_header_gives_the_connection_its_addresses() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    let mut bytes = V1_TCP4.to_vec();
    bytes.extend_from_slice(&framed_request());
    stream.write_all(&bytes).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(&reply.data[..], b"WHO AM I");
    assert_eq!(
        reply.src,
        addr("198.51.100.2:443"),
        "the destination the client named"
    );
    assert_eq!(reply.dst, addr("192.0.2.1:56324"), "the client");
    assert_eq!(server.outcomes(), [1, 0, 0, 0, 0, 0, 0]);
    drop(stream);
    server.handle.shutdown();
}

#[test]
fn a_v2_header_sent_byte_by_byte_then_raw_bytes() {
    let server = ProxiedServer::start(&["127.0.0.0/8"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    for byte in v2_tcp6() {
        stream.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    // Raw mode after the header: nothing of the header is upper-cased back.
    stream.write_all(b"raw text\n").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"RAW TEXT\n");
    assert_eq!(server.outcomes(), [1, 0, 0, 0, 0, 0, 0]);
    server.handle.shutdown();
}

#[test]
fn a_v2_header_names_ipv6_addresses_in_replies() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    let mut bytes = v2_tcp6();
    bytes.extend_from_slice(&framed_request());
    stream.write_all(&bytes).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.src, addr("[2001:db8::2]:2000"));
    assert_eq!(reply.dst, addr("[2001:db8::1]:1000"));
    drop(stream);
    server.handle.shutdown();
}

#[test]
fn a_local_header_keeps_the_sockets_addresses() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    let mut bytes = v2_local();
    bytes.extend_from_slice(&framed_request());
    stream.write_all(&bytes).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(reply.src, server.addr.into());
    assert_eq!(reply.dst, stream.local_addr().unwrap().into());
    assert_eq!(server.outcomes(), [0, 1, 0, 0, 0, 0, 0]);
    drop(stream);
    server.handle.shutdown();
}

#[test]
fn an_untrusted_peer_is_closed_even_with_a_valid_header() {
    let server = ProxiedServer::start(&["127.0.0.2"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    let mut bytes = V1_TCP4.to_vec();
    bytes.extend_from_slice(&framed_request());
    // The server may close before the write: a reset is fine.
    let _ = stream.write_all(&bytes);
    closed_without_reply(&mut stream).unwrap();
    assert_eq!(server.outcomes(), [0, 0, 0, 0, 0, 1, 0]);
    // The trusted address is served.
    let mut trusted = connect_from("127.0.0.2", server.addr);
    trusted.write_all(&bytes).unwrap();
    assert_eq!(&read_reply(&mut trusted).data[..], b"WHO AM I");
    drop(trusted);
    server.handle.shutdown();
}

#[test]
fn a_missing_or_malformed_header_is_closed_without_a_reply() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    for bytes in [
        framed_request(),
        b"hello\n".to_vec(),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n".to_vec(),
        b"PROXY TCP4 nonsense\r\n".to_vec(),
        {
            let mut v2 = v2_tcp6();
            v2[12] = 0x11; // version 1 in a v2 header
            v2
        },
    ] {
        let mut stream = connect_from("127.0.0.1", server.addr);
        let _ = stream.write_all(&bytes);
        closed_without_reply(&mut stream).unwrap_or_else(|why| panic!("{bytes:?}: {why}"));
    }
    assert_eq!(server.outcomes(), [0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(server.handle.live_connections(), 0);
    server.handle.shutdown();
}

/// [`v2_tcp6`] with `tlvs` after its addresses, the length raised to match.
fn v2_tcp6_with(tlvs: &[u8]) -> Vec<u8> {
    let mut header = v2_tcp6();
    header.extend_from_slice(tlvs);
    let length = u16::try_from(header.len() - 16).unwrap();
    header[14..16].copy_from_slice(&length.to_be_bytes());
    header
}

#[test]
fn a_v2_tlv_announcing_more_bytes_than_remain_closes_the_connection() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    // A NOOP TLV (type 0x04) announcing 255 bytes where none remain.
    let mut bytes = v2_tcp6_with(&[0x04, 0x00, 0xFF]);
    bytes.extend_from_slice(&framed_request());
    let mut stream = connect_from("127.0.0.1", server.addr);
    let _ = stream.write_all(&bytes);
    closed_without_reply(&mut stream).unwrap();
    assert_eq!(server.outcomes(), [0, 0, 0, 1, 0, 0, 0]);
    // The same header with a TLV that fits is served.
    let mut bytes = v2_tcp6_with(&[0x04, 0x00, 0x01, b'x']);
    bytes.extend_from_slice(&framed_request());
    let mut stream = connect_from("127.0.0.1", server.addr);
    stream.write_all(&bytes).unwrap();
    let reply = read_reply(&mut stream);
    assert_eq!(&reply.data[..], b"WHO AM I");
    assert_eq!(reply.dst, addr("[2001:db8::1]:1000"));
    assert_eq!(server.outcomes(), [1, 0, 0, 1, 0, 0, 0]);
    drop(stream);
    server.handle.shutdown();
}

#[test]
fn a_header_not_complete_in_time_is_closed() {
    let server = ProxiedServer::start(&["127.0.0.1"], Duration::from_millis(200));
    let mut stream = connect_from("127.0.0.1", server.addr);
    stream.write_all(&V1_TCP4[..10]).unwrap();
    let started = Instant::now();
    closed_without_reply(&mut stream).unwrap();
    assert!(started.elapsed() < TIMEOUT, "closed by the header timeout");
    assert_eq!(server.outcomes(), [0, 0, 0, 0, 1, 0, 0]);
    server.handle.shutdown();
}

#[test]
fn shutdown_closes_connections_still_waiting_for_their_header() {
    let server = ProxiedServer::start(&["127.0.0.1"], TIMEOUT);
    let mut stream = connect_from("127.0.0.1", server.addr);
    stream.write_all(b"PROX").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.handle.shutdown();
    assert!(started.elapsed() < Duration::from_secs(2));
    closed_without_reply(&mut stream).unwrap();
}

/// Read one frame after the preface was read.
fn read_frame(stream: &mut TcpStream) -> FrameRepr {
    let mut buffer = BytesMut::new();
    let decoder = FrameDecoder::new(1 << 20);
    loop {
        if let Some(frame) = decoder.decode(&mut buffer).unwrap() {
            return frame;
        }
        let mut chunk = [0; 4096];
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "closed before the frame");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[test]
fn the_connection_limit_counts_the_header_addresses_not_the_balancer() {
    // Full at two connections, both of client 192.0.2.1 (through one
    // balancer at 127.0.0.1): a newcomer from another client address takes
    // the slot of 192.0.2.1's longest idle connection (SPEC.md §9.3). Were
    // the balancer's address counted, all three would be one address and
    // the newcomer would be refused.
    let server = ProxiedServer::start_with(
        &["127.0.0.1"],
        TIMEOUT,
        Server::builder().threads(1).max_connections(2),
    );
    let open = |client: &str| {
        let mut stream = connect_from("127.0.0.1", server.addr);
        let mut bytes = format!("PROXY TCP4 {client} 198.51.100.2 40000 443\r\n").into_bytes();
        bytes.extend_from_slice(&PREFACE);
        stream.write_all(&bytes).unwrap();
        let mut preface = [0; 8];
        stream.read_exact(&mut preface).unwrap();
        stream
    };
    let mut oldest = open("192.0.2.1");
    std::thread::sleep(Duration::from_millis(20));
    let _second = open("192.0.2.1");
    std::thread::sleep(Duration::from_millis(20));
    let mut newcomer = open("192.0.2.2");
    newcomer
        .write_all(&FrameRepr::new(FrameType::Text, &b"in"[..]).to_bytes())
        .unwrap();
    assert_eq!(&read_frame(&mut newcomer).data[..], b"IN");
    let evicted = read_frame(&mut oldest);
    assert_eq!(evicted.frame_type, FrameType::Error);
    assert_eq!(
        ErrorPayload::parse(&evicted.data).unwrap().code,
        ErrorCode::BUSY
    );
    drop(oldest);
    // The eviction is counted when the evicted connection closes.
    let deadline = Instant::now() + TIMEOUT;
    while server.metrics.snapshot().connections_evicted[2] == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.metrics.snapshot());
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(newcomer);
    server.handle.shutdown();
}

/// v2 PROXY, TCP over IPv6, from `[source]:1000` to [2001:db8::2]:2000.
fn v2_tcp6_from(source: &str) -> Vec<u8> {
    let mut header = v2_tcp6();
    header[16..32].copy_from_slice(&source.parse::<std::net::Ipv6Addr>().unwrap().octets());
    header
}

#[test]
fn the_connection_limit_counts_an_ipv6_64_as_one_group() {
    // Full at three: two clients of 2001:db8::/64 and one of
    // 2001:db8:0:1::/64, each served once, through one balancer.
    let server = ProxiedServer::start_with(
        &["127.0.0.1"],
        TIMEOUT,
        Server::builder().threads(1).max_connections(3),
    );
    // The preface and a request from `client`, through the balancer.
    let request_from = |client: &str| {
        let mut stream = connect_from("127.0.0.1", server.addr);
        let mut bytes = v2_tcp6_from(client);
        bytes.extend_from_slice(&framed_request());
        stream.write_all(&bytes).unwrap();
        let reply = read_reply(&mut stream);
        (stream, reply)
    };
    let open = |client: &str| {
        let (stream, reply) = request_from(client);
        assert_eq!(&reply.data[..], b"WHO AM I", "{client}");
        stream
    };
    let served: Vec<TcpStream> = ["2001:db8::1", "2001:db8::2", "2001:db8:0:1::1"]
        .into_iter()
        .map(open)
        .collect();
    // A third address of 2001:db8::/64 belongs to the group holding the
    // most (two): it is refused. Were each address its own group, it would
    // hold none and evict one.
    let (same_64, refused) = request_from("2001:db8::3");
    assert_eq!(refused.frame_type, FrameType::Error);
    assert_eq!(
        ErrorPayload::parse(&refused.data).unwrap().code,
        ErrorCode::BUSY
    );
    // A client of another /64 holds none: it is served.
    let newcomer = open("2001:db8:0:2::1");
    drop((served, same_64, newcomer));
    server.handle.shutdown();
}

#[test]
fn sockets_waiting_for_their_header_are_bounded_by_the_connection_limit() {
    let server = ProxiedServer::start_with(
        &["127.0.0.1"],
        TIMEOUT,
        Server::builder().threads(1).max_connections(2),
    );
    let mut waiting: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect_from("127.0.0.1", server.addr);
            stream.write_all(&V1_TCP4[..5]).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut third = connect_from("127.0.0.1", server.addr);
    let started = Instant::now();
    closed_without_reply(&mut third).unwrap();
    assert!(
        started.elapsed() < TIMEOUT,
        "closed at once, not by the timeout"
    );
    assert_eq!(server.outcomes(), [0, 0, 0, 0, 0, 0, 1]);
    // The two waiting sockets are still served once their header is whole.
    for stream in &mut waiting {
        let mut rest = V1_TCP4[5..].to_vec();
        rest.extend_from_slice(&framed_request());
        stream.write_all(&rest).unwrap();
        assert_eq!(&read_reply(stream).data[..], b"WHO AM I");
    }
    drop(waiting);
    server.handle.shutdown();
}

#[test]
fn a_socket_whose_header_came_makes_room_for_another_to_wait() {
    // This loop lets two sockets wait for their header at once (its share
    // of the connection limit); one that finished waiting is not counted.
    let server = ProxiedServer::start_with(
        &["127.0.0.1"],
        TIMEOUT,
        Server::builder().threads(1).max_connections(2),
    );
    let mut served = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.1", server.addr);
        let mut bytes = V1_TCP4.to_vec();
        bytes.extend_from_slice(&framed_request());
        stream.write_all(&bytes).unwrap();
        assert_eq!(&read_reply(&mut stream).data[..], b"WHO AM I");
        served.push(stream);
    }
    assert_eq!(server.outcomes(), [2, 0, 0, 0, 0, 0, 0]);
    drop(served);
    server.handle.shutdown();
}

#[test]
fn a_peer_that_resets_before_its_header_is_closed_at_once() {
    // A header timeout far beyond the test's patience: only the reset
    // itself can close the socket in time.
    let server = ProxiedServer::start(&["127.0.0.1"], Duration::from_secs(120));
    let stream = connect_from("127.0.0.1", server.addr);
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    let deadline = Instant::now() + TIMEOUT;
    while server.outcomes() != [0, 0, 0, 1, 0, 0, 0] {
        assert!(
            Instant::now() < deadline,
            "{:?}: not counted invalid",
            server.outcomes()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.handle.shutdown();
}

#[test]
fn shutdown_closes_sockets_waiting_for_their_header_before_served_ones_finish() {
    // Served connections get up to their linger to finish; a socket still
    // waiting for its header has nothing to finish and is closed at once.
    let config = ServerConfig {
        linger: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    // A header timeout beyond the test's patience: only shutdown can close
    // the waiting socket in time.
    let server = ProxiedServer::start_with(
        &["127.0.0.1"],
        Duration::from_secs(120),
        Server::builder().threads(1).config(config),
    );
    let mut served = connect_from("127.0.0.1", server.addr);
    let mut bytes = V1_TCP4.to_vec();
    bytes.extend_from_slice(&framed_request());
    served.write_all(&bytes).unwrap();
    assert_eq!(&read_reply(&mut served).data[..], b"WHO AM I");
    let mut waiting = connect_from("127.0.0.1", server.addr);
    waiting.write_all(b"PROX").unwrap();
    // Time to be accepted (a socket still in the listen queue is only
    // closed with the listener).
    std::thread::sleep(Duration::from_millis(500));
    server.handle.begin_shutdown();
    closed_without_reply(&mut waiting).unwrap();
    assert_eq!(
        server.handle.live_connections(),
        1,
        "the served connection is still lingering"
    );
    drop(served);
    server.handle.shutdown();
}
