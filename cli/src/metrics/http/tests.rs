//! Loopback tests of the endpoint's bounds, each beside a polite scrape
//! that must still be answered. Limits are made small (or the deadlines
//! long) where that lets a test tell one bound from another.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use upcase::net::{Client, Server, ServerMetrics};

use super::{Limits, MetricsEndpoint};

/// Generous for a loaded 2-core machine; no test waits this long when the
/// endpoint works.
const PATIENCE: Duration = Duration::from_secs(30);

const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";

fn endpoint(limits: Limits) -> MetricsEndpoint {
    let metrics = Arc::new(ServerMetrics::new(1));
    MetricsEndpoint::start_with("127.0.0.1:0".parse().unwrap(), metrics, limits).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A connection from another loopback address than 127.0.0.1.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Everything the endpoint sends until it closes. A reset after the
/// answer (the endpoint closed with bytes of ours unread) ends it too.
///
/// # Panics
/// When nothing ends it within [`PATIENCE`].
fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    // What was read before an error stays in `answer`.
    match stream.read_to_end(&mut answer) {
        Err(error) if error.kind() != ErrorKind::ConnectionReset => panic!(
            "the endpoint did not close ({error}) after sending {:?}",
            String::from_utf8_lossy(&answer)
        ),
        _ => {}
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Send `request` on a fresh connection; the whole answer.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(addr);
    // The endpoint may close before taking all of a long request.
    let _ = stream.write_all(request);
    read_until_closed(&mut stream)
}

/// A polite scrape is answered in full: the exposition, as long as its
/// `Content-Length` says.
fn assert_scrape_answered(addr: SocketAddr) {
    let answer = exchange(addr, SCRAPE);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("no length in {head}"));
    assert_eq!(length, body.len().to_string(), "{answer}");
    assert!(
        body.starts_with("# HELP upcase_connections_accepted_total "),
        "{answer}"
    );
}

#[test]
fn a_huge_content_length_is_never_read_and_the_scrape_is_answered() {
    let endpoint = endpoint(Limits::default());
    for length in [
        "1099511627776",
        "18446744073709551615",
        "99999999999999999999999",
    ] {
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n\r\nsome body"
        );
        let answer = exchange(endpoint.local_addr(), request.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{length}: {answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
    }
    assert_scrape_answered(endpoint.local_addr());
}

#[test]
fn headers_over_the_bound_are_answered_431_and_closed() {
    let endpoint = endpoint(Limits {
        max_head: 1024,
        ..Limits::default()
    });
    let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while request.len() < 64 << 10 {
        request.extend_from_slice(b"X-Small: header\r\n");
    }
    let answer = exchange(endpoint.local_addr(), &request);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    // Just under the bound is still a request.
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    request.resize(1024 - 4, b'a');
    request.extend_from_slice(b"\r\n\r\n");
    assert!(exchange(endpoint.local_addr(), &request).starts_with("HTTP/1.1 200 OK\r\n"));
    assert_scrape_answered(endpoint.local_addr());
}

#[test]
fn a_stalled_request_is_answered_408_and_closed_at_its_deadline() {
    let timeout = Duration::from_secs(1);
    let endpoint = endpoint(Limits {
        request_timeout: timeout,
        ..Limits::default()
    });
    let addr = endpoint.local_addr();
    let started = Instant::now();
    let mut slow = connect(addr);
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    // A slowloris: a header byte every 50 ms, never the blank line.
    slow.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 256];
    while slow.write_all(b"x").is_ok() {
        assert!(
            started.elapsed() < PATIENCE,
            "still open after {PATIENCE:?}"
        );
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    answer.extend_from_slice(read_until_closed(&mut slow).as_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        started.elapsed() >= timeout,
        "closed after {:?}",
        started.elapsed()
    );
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert_scrape_answered(addr);
}

#[test]
fn a_stalled_request_does_not_hold_up_other_scrapes() {
    let endpoint = endpoint(Limits::default());
    let addr = endpoint.local_addr();
    let mut stalled = connect(addr);
    stalled
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 10\r\n")
        .unwrap();
    let mut body_never_comes = connect(addr);
    body_never_comes
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    for _ in 0..3 {
        assert_scrape_answered(addr);
    }
    // The announced body is not waited for: the answer came at once.
    let answer = read_until_closed(&mut body_never_comes);
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}

#[test]
fn the_connection_over_the_cap_is_closed_at_once_while_upcase_serves() {
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .udp(false)
        .metrics(true)
        .bind()
        .unwrap();
    let metrics = Arc::clone(server.metrics().unwrap());
    let handle = server.spawn().unwrap();
    let limits = Limits {
        // Longer than the test: only the cap can close a connection.
        request_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let endpoint =
        MetricsEndpoint::start_with("127.0.0.1:0".parse().unwrap(), metrics, limits).unwrap();
    let addr = endpoint.local_addr();
    let mut held: Vec<TcpStream> = (0..limits.max_connections - 1)
        .map(|_| {
            let mut stream = connect(addr);
            stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    // Accepted in order: once the last slot's scrape is answered, the
    // 63 before it hold theirs.
    assert_scrape_answered(addr);
    let mut last = connect(addr);
    last.write_all(b"GET /metr").unwrap();
    held.push(last);
    // The 65th: answered 503 and closed at once, long before any deadline.
    let answer = exchange(addr, SCRAPE);
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    let mut client = Client::connect(handle.local_addrs()[0], PATIENCE).unwrap();
    assert_eq!(client.upcase("still served").unwrap(), "STILL SERVED");
    // The 64 are still open, and one that leaves frees its slot.
    for stream in &held {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0];
        let read = (&*stream).read(&mut byte);
        assert_eq!(read.map_err(|e| e.kind()), Err(ErrorKind::WouldBlock));
    }
    drop(held.pop());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = exchange(addr, SCRAPE);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        // The close and the new connection may come in one poll, the
        // connection first.
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(endpoint);
    handle.shutdown();
}

#[test]
fn an_address_holding_every_slot_crowds_out_only_itself() {
    let limits = Limits {
        max_connections: 4,
        request_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let endpoint = endpoint(limits);
    let addr = endpoint.local_addr();
    let half_sent = || {
        let mut stream = connect(addr);
        stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        stream
    };
    let mut held: Vec<TcpStream> = (0..3).map(|_| half_sent()).collect();
    // Accepted in order: the three hold their slots once this is answered.
    assert_scrape_answered(addr);
    held.push(half_sent());
    // Another from 127.0.0.1, which holds every slot: refused.
    let answer = exchange(addr, SCRAPE);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    // One from 127.0.0.2 takes the place of 127.0.0.1's oldest.
    let mut polite = connect_from("127.0.0.2", addr);
    polite.write_all(SCRAPE).unwrap();
    let answer = read_until_closed(&mut polite);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let answer = read_until_closed(&mut held[0]);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    for stream in &held[1..] {
        stream.set_nonblocking(true).unwrap();
        let read = (&*stream).read(&mut [0]);
        assert_eq!(read.map_err(|e| e.kind()), Err(ErrorKind::WouldBlock));
    }
}

#[test]
fn pipelined_scrapes_never_read_get_one_answer_and_a_close() {
    let endpoint = endpoint(Limits::default());
    let addr = endpoint.local_addr();
    let mut pipeliner = connect(addr);
    pipeliner.set_nonblocking(true).unwrap();
    let requests = SCRAPE.repeat(4000);
    let mut sent = 0;
    // As much as the sockets take, without reading a byte.
    while let Ok(written @ 1..) = pipeliner.write(&requests[sent..]) {
        sent += written;
    }
    assert!(sent > 8 << 10, "only {sent} bytes were taken");
    for _ in 0..3 {
        assert_scrape_answered(addr);
    }
    pipeliner.set_nonblocking(false).unwrap();
    let answer = read_until_closed(&mut pipeliner);
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 1, "{answer}");
}

#[test]
fn dropping_the_endpoint_does_not_wait_for_a_stuck_peer() {
    let endpoint = endpoint(Limits {
        request_timeout: Duration::from_secs(600),
        write_timeout: Duration::from_secs(600),
        ..Limits::default()
    });
    let addr = endpoint.local_addr();
    let mut stuck = connect(addr);
    stuck.write_all(b"GET /metrics HTTP/1.1\r\nHost").unwrap();
    // Accepted before this scrape, which is answered.
    assert_scrape_answered(addr);
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(endpoint);
        let _ = dropped.send(());
    });
    done.recv_timeout(PATIENCE)
        .expect("the drop waited for the stuck peer");
    // The stuck peer was closed, not left behind.
    assert_eq!(read_until_closed(&mut stuck), "");
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn odd_requests_get_their_status_and_a_close() {
    let endpoint = endpoint(Limits::default());
    let addr = endpoint.local_addr();
    for (request, status) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "404 Not Found"),
        (
            b"DELETE /metrics HTTP/1.1\r\n\r\n",
            "405 Method Not Allowed",
        ),
        (b"HEAD /metrics HTTP/1.0\r\n\r\n", "200 OK"),
        (b"GET /metrics HTTP/9.9\r\n\r\n", "400 Bad Request"),
        (b"\x00\x01\x02\r\n\r\n", "400 Bad Request"),
    ] {
        let answer = exchange(addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:?}: {answer}"
        );
    }
    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.ends_with("\r\n\r\n"), "no body after HEAD: {head}");
}
