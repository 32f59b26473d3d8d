//! A server on loopback that misbehaves on purpose, one way per
//! [`Misbehaviour`]: what a broken first draft or a hostile host does to
//! `upcase conform`, `bench` and `client`. Each tool must report a failure
//! against it, never hang, run out of memory or write its bytes raw to a
//! terminal (issue 19).
//!
//! TCP and UDP share one port, as with `upcase serve`. Every connection
//! gets a thread; all of them, and the listener, stop when the server is
//! dropped, even while a tool still reads (writes time out every 100 ms to
//! look at the stop flag).

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use upcase::conn::{DatagramConfig, DatagramReply, respond_to_datagram};
use upcase::wire::{
    ErrorCode, ErrorPayload, FrameRepr, FrameType, HEADER_LEN, PREFACE, parse_header,
};

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Framed: its preface, then a TEXT header announcing 0xFFFFFFF0 data
    /// bytes, then data without end.
    EndlessFrame,
    /// Framed: its preface, then to each request a TEXT reply one byte over
    /// the receive limit the request allows (3 × (N + 3) + 1, SPEC.md §3.4).
    OverLimitHeader,
    /// Raw (and framed, after a preface): lower-case `a`s, no newline, without end.
    EndlessRawLine,
    /// A real UPCASE server's bytes, right, but one byte per second.
    Trickle,
    /// A real UPCASE server's bytes, each read of them held 300 ms: every
    /// reply in time, a case of many exchanges slow in all.
    SlowReplies,
    /// Accepts, reads, answers nothing.
    SilentAccept,
    /// Answers like `python3 -m http.server`: a 400 page, then closes.
    Http,
    /// Sends back every byte it reads, unchanged (a plain echo server).
    Echo,
    /// UDP: every reply datagram (a real server's) sent twice. TCP: a
    /// real server.
    DuplicateUdp,
    /// Framed: its preface, then to each request an ERROR whose message
    /// holds terminal escapes (retitle, clear screen) and a bidi override.
    EscapesInError,
}

/// The ERROR message of [`Misbehaviour::EscapesInError`].
pub const HOSTILE_MESSAGE: &str = "owned\x1b]0;pwned\x07\x1b[2J\u{202e}txt";

/// The page [`Misbehaviour::Http`] sends.
const HTTP_PAGE: &[u8] = b"HTTP/1.0 400 Bad request\r\nContent-Type: text/html\r\n\r\n<!DOCTYPE HTML>\n<html><body>Bad request syntax</body></html>\n";

/// A running hostile server.
pub struct HostileServer {
    /// Its TCP and UDP address.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The real server behind [`Misbehaviour::Trickle`] and
    /// [`Misbehaviour::DuplicateUdp`].
    real: Option<upcase::net::ServerHandle>,
}

impl HostileServer {
    /// Start one on a free loopback port.
    pub fn start(misbehaviour: Misbehaviour) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let real = matches!(
            misbehaviour,
            Misbehaviour::Trickle | Misbehaviour::SlowReplies | Misbehaviour::DuplicateUdp
        )
        .then(real_server);
        let behind = real.as_ref().map(|handle| handle.local_addrs()[0]);
        let udp = UdpSocket::bind(addr).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let udp_stop = stop.clone();
        thread::spawn(move || answer_datagrams(&udp, misbehaviour, &udp_stop));
        let accept_stop = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let stop = accept_stop.clone();
                thread::spawn(move || {
                    let _ = serve(stream, misbehaviour, behind, &stop);
                });
            }
        });
        HostileServer { addr, stop, real }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(real) = self.real.take() {
            real.shutdown();
        }
    }
}

/// The library's server, default settings, on a free port (TCP only).
pub fn real_server() -> upcase::net::ServerHandle {
    upcase::net::Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .udp(false)
        .bind()
        .unwrap()
        .spawn()
        .unwrap()
}

fn answer_datagrams(socket: &UdpSocket, misbehaviour: Misbehaviour, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 65_536];
    let local = socket.local_addr().unwrap();
    let config = DatagramConfig::default();
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let copies = match misbehaviour {
            Misbehaviour::DuplicateUdp => 2,
            Misbehaviour::SilentAccept => 0,
            _ => 1,
        };
        if let DatagramReply::Send(reply) =
            respond_to_datagram(&buffer[..len], local, peer, &config)
        {
            for _ in 0..copies {
                let _ = socket.send_to(&reply, peer);
            }
        }
    }
}

/// One connection, until the tool closes it or the server stops.
fn serve(
    mut stream: TcpStream,
    misbehaviour: Misbehaviour,
    behind: Option<SocketAddr>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.set_write_timeout(Some(Duration::from_millis(100)))?;
    let _ = stream.set_nodelay(true);
    match misbehaviour {
        Misbehaviour::SilentAccept => drain(&mut stream, stop),
        Misbehaviour::Echo => loop {
            let mut input = Vec::new();
            read_some(&mut stream, &mut input, stop)?;
            write_all(&mut stream, &input, stop)?;
        },
        Misbehaviour::Http => {
            let mut input = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(1);
            while !input.contains(&b'\n') && Instant::now() < deadline {
                read_some(&mut stream, &mut input, stop)?;
            }
            stream.write_all(HTTP_PAGE)
        }
        Misbehaviour::EndlessRawLine => {
            let mut input = Vec::new();
            read_some(&mut stream, &mut input, stop)?;
            if input.starts_with(&PREFACE[..1]) {
                write_all(&mut stream, &PREFACE, stop)?;
            }
            let chunk = [b'a'; 16 * 1024];
            loop {
                write_all(&mut stream, &chunk, stop)?;
            }
        }
        Misbehaviour::EndlessFrame => {
            read_preface(&mut stream, stop)?;
            let mut header = FrameRepr::new(FrameType::Text, &b""[..])
                .to_bytes()
                .to_vec();
            header[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
            write_all(&mut stream, &PREFACE, stop)?;
            write_all(&mut stream, &header, stop)?;
            let chunk = [b'A'; 16 * 1024];
            loop {
                write_all(&mut stream, &chunk, stop)?;
            }
        }
        Misbehaviour::OverLimitHeader | Misbehaviour::EscapesInError => {
            let mut input = read_preface(&mut stream, stop)?;
            write_all(&mut stream, &PREFACE, stop)?;
            loop {
                while parse_header(&input)
                    .is_none_or(|h| input.len() < HEADER_LEN + h.data_len as usize)
                {
                    read_some(&mut stream, &mut input, stop)?;
                }
                let header = parse_header(&input).expect("checked");
                input.drain(..HEADER_LEN + header.data_len as usize);
                let reply = if misbehaviour == Misbehaviour::OverLimitHeader {
                    let over = 3 * (header.data_len as usize + 3) + 1;
                    FrameRepr::new(FrameType::Text, vec![b'A'; over])
                } else {
                    let error = ErrorPayload::new(ErrorCode::UNKNOWN_TYPE, HOSTILE_MESSAGE);
                    FrameRepr::new(FrameType::Error, error.to_bytes())
                };
                write_all(&mut stream, &reply.to_bytes(), stop)?;
            }
        }
        Misbehaviour::Trickle | Misbehaviour::SlowReplies | Misbehaviour::DuplicateUdp => {
            let real = TcpStream::connect(behind.expect("a real server behind"))?;
            let pace = match misbehaviour {
                Misbehaviour::Trickle => Pace::PerByte(Duration::from_secs(1)),
                Misbehaviour::SlowReplies => Pace::PerRead(Duration::from_millis(300)),
                _ => Pace::AsTheyCome,
            };
            relay(stream, real, pace, stop)
        }
    }
}

/// How [`relay`] sends the real server's bytes back.
#[derive(Clone, Copy)]
enum Pace {
    AsTheyCome,
    /// One byte, then this wait.
    PerByte(Duration),
    /// This wait, then what one read got.
    PerRead(Duration),
}

/// Forward the tool's bytes to `real` as they come, and `real`'s bytes
/// back at `pace`.
fn relay(
    mut tool: TcpStream,
    real: TcpStream,
    pace: Pace,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut to_real = real.try_clone()?;
    // The forwarding thread blocks until the tool closes (a tool always
    // does, when it ends): its reads must not time out.
    tool.set_read_timeout(None)?;
    let mut from_tool = tool.try_clone()?;
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_tool, &mut to_real);
        let _ = to_real.shutdown(std::net::Shutdown::Write);
    });
    let mut from_real = real;
    from_real.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut pending = Vec::new();
    loop {
        read_some(&mut from_real, &mut pending, stop)?;
        let per_byte = match pace {
            Pace::AsTheyCome => Duration::ZERO,
            Pace::PerRead(wait) if !pending.is_empty() => {
                thread::sleep(wait);
                Duration::ZERO
            }
            Pace::PerRead(_) => continue,
            Pace::PerByte(wait) => wait,
        };
        if per_byte.is_zero() {
            write_all(&mut tool, &pending, stop)?;
            pending.clear();
            continue;
        }
        while !pending.is_empty() {
            write_all(&mut tool, &pending[..1], stop)?;
            pending.remove(0);
            let until = Instant::now() + per_byte;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(50));
                // Keep reading, so the real server is never stuck writing.
                let _ = read_some(&mut from_real, &mut pending, stop);
            }
        }
    }
}

/// Read and throw away until the tool closes or the server stops.
fn drain(stream: &mut TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    let mut sink = Vec::new();
    loop {
        read_some(stream, &mut sink, stop)?;
        sink.clear();
    }
}

/// Read the tool's preface (any 8 bytes); what came after it.
fn read_preface(stream: &mut TcpStream, stop: &AtomicBool) -> std::io::Result<Vec<u8>> {
    let mut input = Vec::new();
    while input.len() < PREFACE.len() {
        read_some(stream, &mut input, stop)?;
    }
    input.drain(..PREFACE.len());
    Ok(input)
}

/// One read into `input`; `Ok` after a timeout too (nothing added). An
/// error when the tool closed or the server stops.
fn read_some(
    stream: &mut TcpStream,
    input: &mut Vec<u8>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    if stop.load(Ordering::Relaxed) {
        return Err(ErrorKind::Interrupted.into());
    }
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
        Ok(n) => {
            input.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write all of `bytes`, however slowly the tool reads, until the server stops.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8], stop: &AtomicBool) -> std::io::Result<()> {
    while !bytes.is_empty() {
        if stop.load(Ordering::Relaxed) {
            return Err(ErrorKind::Interrupted.into());
        }
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
