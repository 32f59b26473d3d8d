//! Deliberately broken TCP servers for the conformance tests: a
//! `ServerConnection` per connection (thread per connection), broken by
//! rewriting the client's frames before our connection sees them, rewriting
//! its output frames, or replacing the loop. Our real server is in `ours.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use upcase::conn::{ServerConfig, ServerConnection};
use upcase::wire::{
    ErrorCode, ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE, PREFACE_LEN,
};

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// TEXT fragments are decoded one by one (lossily): no carried code points.
    NoCarry,
    /// Reply addresses are the request's, not swapped (unspecified ones still filled in).
    NoSwap,
    /// Invalid UTF-8 inside a fragmented message is only reported at the last fragment.
    LateUtf8,
    /// BYTES get Unicode upper case when they happen to be UTF-8.
    UnicodeBytes,
    /// The connection is closed after ERROR(UNKNOWN_TYPE).
    ClosesOnUnknownType,
    /// One client at a time: the tutorial's accept loop.
    Serial,
    /// Raw only; each recv() is upper-cased on its own (split code points lost).
    RawPerRecv,
}

/// A server on 127.0.0.1:0, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(flavor: Flavor, config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let config = config.clone();
                if flavor == Flavor::Serial {
                    serve(stream, flavor, config);
                } else {
                    std::thread::spawn(move || serve(stream, flavor, config));
                }
            }
        });
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; connection threads end with their clients.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, flavor: Flavor, config: ServerConfig) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    if flavor == Flavor::RawPerRecv {
        return raw_per_recv(stream);
    }
    let _ = drive(stream, flavor, config);
}

/// The tutorial's loop, made lossless: every recv() upper-cased on its own.
fn raw_per_recv(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        let mut out = Vec::new();
        for chunk in buf[..n].utf8_chunks() {
            out.extend_from_slice(chunk.valid().to_uppercase().as_bytes());
            out.extend_from_slice(chunk.invalid());
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// The std::net loop around one `ServerConnection`, with the flavor's rewrites.
fn drive(mut stream: TcpStream, flavor: Flavor, config: ServerConfig) -> std::io::Result<()> {
    let max_frame = config.max_data_len;
    let mut conn = ServerConnection::new(
        config,
        stream.local_addr()?,
        stream.peer_addr()?,
        Instant::now(),
    );
    let mut input = InputRewriter::new(flavor, max_frame);
    let mut output = OutputRewriter::new(flavor);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let pending = conn.pending_output().len();
        if pending > 0 {
            let (bytes, close) = output.rewrite(conn.pending_output());
            stream.write_all(&bytes)?;
            conn.mark_sent(Instant::now(), pending)
                .expect("sent what was pending");
            if close {
                return Ok(());
            }
        }
        while let Some(_event) = conn.poll_event() {}
        if conn.is_closed() {
            return Ok(());
        }
        let now = Instant::now();
        let wait = conn
            .poll_timeout()
            .map_or(Duration::from_secs(1), |at| {
                at.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_secs(1));
        stream.set_read_timeout(Some(wait))?;
        // Rewritten input can be up to 3× longer (U+FFFD for one byte).
        let capacity = match conn.read_capacity() {
            0 => 0,
            all if input.passes_through() => all,
            some => (some / 3).max(1),
        }
        .min(buf.len());
        if capacity == 0 {
            conn.handle_timeout(Instant::now());
            continue;
        }
        match stream.read(&mut buf[..capacity]) {
            Ok(0) => {
                let rest = input.finish();
                if !rest.is_empty() {
                    let _ = conn.handle_input(Instant::now(), &rest);
                }
                conn.handle_eof(Instant::now());
            }
            Ok(n) => {
                let bytes = input.rewrite(&buf[..n]);
                conn.handle_input(Instant::now(), &bytes)
                    .expect("within capacity");
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Rewrites the client's frames (after the preface) for the flavors whose
/// bug is in how requests are read. Raw streams pass through.
struct InputRewriter {
    flavor: Flavor,
    decoder: FrameDecoder,
    held: BytesMut,
    state: InputState,
    /// LateUtf8: the open TEXT message had invalid bytes, not yet reported.
    tainted: bool,
}

#[derive(PartialEq)]
enum InputState {
    Sniffing,
    Frames,
    PassThrough,
}

impl InputRewriter {
    fn new(flavor: Flavor, max_frame: u32) -> InputRewriter {
        let rewrites = matches!(flavor, Flavor::NoCarry | Flavor::NoSwap | Flavor::LateUtf8);
        InputRewriter {
            flavor,
            decoder: FrameDecoder::new(max_frame),
            held: BytesMut::new(),
            state: if rewrites {
                InputState::Sniffing
            } else {
                InputState::PassThrough
            },
            tainted: false,
        }
    }

    fn rewrite(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.state == InputState::PassThrough {
            return bytes.to_vec();
        }
        self.held.extend_from_slice(bytes);
        let mut out = Vec::new();
        if self.state == InputState::Sniffing {
            let n = self.held.len().min(PREFACE_LEN);
            if self.held[..n] != PREFACE[..n] {
                self.state = InputState::PassThrough;
                return self.held.split().to_vec();
            }
            if n < PREFACE_LEN {
                return out;
            }
            out.extend_from_slice(&self.held.split_to(PREFACE_LEN));
            self.state = InputState::Frames;
        }
        loop {
            match self.decoder.decode(&mut self.held) {
                Ok(Some(frame)) => out.extend_from_slice(&self.rewrite_frame(frame).to_bytes()),
                Ok(None) => return out,
                Err(_) => {
                    self.state = InputState::PassThrough;
                    out.extend_from_slice(&self.held.split());
                    return out;
                }
            }
        }
    }

    fn passes_through(&self) -> bool {
        self.state == InputState::PassThrough
    }

    fn finish(&mut self) -> Vec<u8> {
        self.held.split().to_vec()
    }

    fn rewrite_frame(&mut self, mut frame: FrameRepr) -> FrameRepr {
        match self.flavor {
            Flavor::NoSwap => std::mem::swap(&mut frame.src, &mut frame.dst),
            Flavor::NoCarry if frame.frame_type == FrameType::Text => {
                frame.data = Bytes::from(String::from_utf8_lossy(&frame.data).into_owned());
            }
            Flavor::LateUtf8 if frame.frame_type == FrameType::Text => {
                let mut kept = Vec::new();
                let chunks: Vec<_> = frame.data.utf8_chunks().collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    kept.extend_from_slice(chunk.valid().as_bytes());
                    let incomplete_tail = i + 1 == chunks.len()
                        && std::str::from_utf8(chunk.invalid())
                            .err()
                            .is_some_and(|e| e.error_len().is_none());
                    if incomplete_tail || !frame.flags.more() {
                        kept.extend_from_slice(chunk.invalid());
                    } else if !chunk.invalid().is_empty() {
                        self.tainted = true;
                    }
                }
                if !frame.flags.more() && std::mem::take(&mut self.tainted) {
                    kept.push(0xff);
                }
                frame.data = Bytes::from(kept);
            }
            _ => {}
        }
        frame
    }
}

/// Rewrites our server's output frames for the flavors whose bug is in
/// the replies; says when to close the connection.
struct OutputRewriter {
    flavor: Flavor,
    preface_seen: bool,
    raw: bool,
}

impl OutputRewriter {
    fn new(flavor: Flavor) -> OutputRewriter {
        OutputRewriter {
            flavor,
            preface_seen: false,
            raw: false,
        }
    }

    fn rewrite(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        if self.raw
            || !matches!(
                self.flavor,
                Flavor::UnicodeBytes | Flavor::ClosesOnUnknownType
            )
        {
            return (bytes.to_vec(), false);
        }
        let mut rest = BytesMut::from(bytes);
        let mut out = Vec::new();
        if !self.preface_seen {
            if !rest.starts_with(&PREFACE) {
                self.raw = true;
                return (bytes.to_vec(), false);
            }
            self.preface_seen = true;
            out.extend_from_slice(&rest.split_to(PREFACE_LEN));
        }
        // Our output always holds whole frames.
        while let Ok(Some(mut frame)) = FrameDecoder::new(u32::MAX).decode(&mut rest) {
            let mut close = false;
            match frame.frame_type {
                FrameType::Bytes if self.flavor == Flavor::UnicodeBytes => {
                    if let Ok(text) = std::str::from_utf8(&frame.data) {
                        frame.data = Bytes::from(text.to_uppercase());
                    }
                }
                FrameType::Error if self.flavor == Flavor::ClosesOnUnknownType => {
                    close = ErrorPayload::parse(&frame.data)
                        .is_ok_and(|p| p.code == ErrorCode::UNKNOWN_TYPE);
                }
                _ => {}
            }
            out.extend_from_slice(&frame.to_bytes());
            if close {
                return (out, true);
            }
        }
        (out, false)
    }
}
