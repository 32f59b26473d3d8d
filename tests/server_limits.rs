//! How the server's limits show at its edges, over loopback: binding a
//! port whose UDP twin is taken, the listen backlog, how many loops run,
//! how much a connection that never reads may make the server hold, and
//! the smallest work budget of a turn.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use upcase::conn::ServerConfig;
use upcase::net::{Server, ServerBuilder};
use upcase::wire::{ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE};

const TIMEOUT: Duration = Duration::from_secs(10);

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A UDP socket on a port whose TCP twin is free (just checked).
fn udp_port_with_tcp_free() -> (UdpSocket, SocketAddr) {
    loop {
        let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return (holder, addr);
        }
    }
}

#[test]
fn a_fixed_port_whose_udp_is_taken_is_in_use_even_beside_port_0() {
    // Picking another port for the port-0 address cannot help: after its
    // few retries, bind says which address is in use (and returns).
    let (_holder, taken) = udp_port_with_tcp_free();
    let (done, bound) = mpsc::channel();
    thread::spawn(move || {
        let result = Server::builder()
            .listen("127.0.0.1:0".parse::<SocketAddr>().unwrap())
            .listen(taken)
            .bind();
        done.send(result.map(|_| ())).unwrap();
    });
    let result = bound
        .recv_timeout(Duration::from_secs(60))
        .expect("bind returns");
    let error = result.expect_err("the UDP port is taken");
    assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
    assert!(
        error.to_string().contains(&format!("udp {taken}")),
        "{error}"
    );
}

#[test]
fn connections_beyond_the_backlog_wait_while_nothing_accepts() {
    // Bound, not spawned: nothing accepts. Linux queues backlog + 1
    // connections and drops further handshakes (the client retries later).
    let server = Server::builder()
        .backlog(1)
        .listen("127.0.0.1:0".parse().unwrap())
        .udp(false)
        .bind()
        .unwrap();
    let addr = server.local_addrs()[0];
    let connected: Vec<TcpStream> = (0..6)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .collect();
    assert!(
        connected.len() < 6,
        "{} connections queued with a backlog of 1",
        connected.len()
    );
}

/// Output bytes the server holds for one raw client that writes until the
/// server stops reading it, and never reads.
fn held_for_a_client_that_never_reads(
    configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    max_data_len: u32,
) -> usize {
    // The core alone would hold up to 64 MiB of output: here only the
    // connection's buffer bound holds the client back.
    let config = ServerConfig {
        max_pending_output: 64 * MIB,
        max_data_len,
        ..ServerConfig::default()
    };
    let builder = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .udp(false);
    let server = configure(builder).config(config).bind().unwrap();
    let addr = server.local_addrs()[0];
    let handle = server.spawn().unwrap();
    let mut greedy = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let chunk = [b'a'; 16 * 1024];
    let mut sent = 0usize;
    loop {
        assert!(sent < 512 * MIB, "the server never stopped reading");
        match greedy.write(&chunk) {
            Ok(n) => sent += n,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break;
            }
            Err(error) => panic!("write failed: {error}"),
        }
    }
    let held = handle.pending_output_bytes();
    drop(greedy);
    let deadline = Instant::now() + TIMEOUT;
    while handle.live_connections() > 0 {
        assert!(Instant::now() < deadline, "the connection stays open");
        thread::sleep(Duration::from_millis(10));
    }
    handle.shutdown();
    held
}

#[test]
fn a_connection_holds_up_to_2_mib_by_default() {
    let held = held_for_a_client_that_never_reads(|builder| builder, 16 * 1024);
    assert!((MIB..=3 * MIB).contains(&held), "{held} bytes held");
}

#[test]
fn a_connection_holds_up_to_its_max_buffer() {
    let held =
        held_for_a_client_that_never_reads(|builder| builder.max_buffer(256 * KIB), 16 * 1024);
    assert!(held <= MIB, "{held} bytes held under a bound of 256 KiB");
}

#[test]
fn the_max_buffer_never_goes_below_one_whole_frame() {
    // One maximum-size frame (1 MiB by default) must fit, whatever the
    // bound says.
    let held = held_for_a_client_that_never_reads(|builder| builder.max_buffer(0), 1 << 20);
    assert!((MIB / 2..=3 * MIB).contains(&held), "{held} bytes held");
}

#[test]
fn the_max_buffer_never_goes_below_64_kib() {
    let held = held_for_a_client_that_never_reads(|builder| builder.max_buffer(0), 100);
    assert!((32 * KIB..=512 * KIB).contains(&held), "{held} bytes held");
}

fn bound(builder: ServerBuilder) -> Server {
    builder
        .listen("127.0.0.1:0".parse().unwrap())
        .udp(false)
        .bind()
        .unwrap()
}

#[test]
fn the_loops_are_as_many_as_asked_but_never_more_than_the_connection_limit() {
    assert_eq!(bound(Server::builder().threads(3)).threads(), 3);
    assert_eq!(
        bound(Server::builder().threads(3).max_connections(2)).threads(),
        2
    );
    assert_eq!(bound(Server::builder().threads(0)).threads(), 1);
}

#[test]
fn the_running_server_reports_the_addresses_it_was_bound_to() {
    let server = bound(Server::builder().listen("127.0.0.2:0".parse().unwrap()));
    let addrs = server.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert!(addrs.iter().all(|addr| addr.port() != 0), "{addrs:?}");
    let handle = server.spawn().unwrap();
    assert_eq!(handle.local_addrs(), addrs);
    handle.shutdown();
}

/// Read frames from `stream` (after the server's preface) until `count`
/// have come: their types and data.
fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<(FrameType, Vec<u8>)> {
    let mut preface = [0; 8];
    stream.read_exact(&mut preface).unwrap();
    assert_eq!(preface, PREFACE);
    let decoder = FrameDecoder::new(4 * MIB as u32);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::with_capacity(count);
    let mut chunk = vec![0; 64 * KIB];
    while frames.len() < count {
        while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
            frames.push((frame.frame_type, frame.data.to_vec()));
        }
        if frames.len() == count {
            break;
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "closed after {} of {count} replies", frames.len());
        buffer.extend_from_slice(&chunk[..read]);
    }
    frames
}

#[test]
fn the_smallest_work_budget_still_answers_every_frame_once_in_order_beside_another_client() {
    // One unit a turn: every read is a turn of its own (SPEC.md §11, "CPU").
    let server = bound(Server::builder().threads(1).work_per_turn(1));
    let addr = server.local_addrs()[0];
    let handle = server.spawn().unwrap();
    let large = "ΐa".repeat(100 * KIB);
    let mut burst = PREFACE.to_vec();
    let mut expected = Vec::new();
    for n in 0..300 {
        let text = format!("frame {n} ");
        burst.extend_from_slice(
            &FrameRepr::new(FrameType::Text, text.clone().into_bytes()).to_bytes(),
        );
        expected.push((FrameType::Text, text.to_uppercase().into_bytes()));
        burst.extend_from_slice(&FrameRepr::new(FrameType::Unknown(0x07), &b""[..]).to_bytes());
        expected.push((FrameType::Error, Vec::new()));
        burst.extend_from_slice(&FrameRepr::new(FrameType::Ping, vec![n as u8]).to_bytes());
        expected.push((FrameType::Pong, vec![n as u8]));
    }
    burst
        .extend_from_slice(&FrameRepr::new(FrameType::Text, large.clone().into_bytes()).to_bytes());
    expected.push((FrameType::Text, large.to_uppercase().into_bytes()));

    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&burst));
    // Another client is served meanwhile.
    let mut beside = upcase::net::Client::connect(addr, TIMEOUT).unwrap();
    assert_eq!(beside.upcase("beside").unwrap(), "BESIDE");
    let replies = read_frames(&mut stream, expected.len());
    sender.join().unwrap().unwrap();
    for (n, ((got_type, got), (want_type, want))) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(got_type, want_type, "reply {n}");
        if *want_type == FrameType::Error {
            assert_eq!(
                ErrorPayload::parse(got).unwrap().code,
                ErrorCode::UNKNOWN_TYPE,
                "reply {n}"
            );
        } else {
            assert!(got == want, "reply {n} differs");
        }
    }
    drop((stream, beside));
    handle.shutdown();
}
