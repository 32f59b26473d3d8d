//! The scripted server's side of one connection: what a case sends the
//! client under test, and what it reads from it, every read bounded by the
//! case's deadline and every frame by the client's fragment limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use upcase::wire::{
    Address, ErrorCode, ErrorPayload, Flags, FrameDecoder, FrameRepr, FrameType, PREFACE,
    PREFACE_LEN,
};

use super::Log;
use crate::conform::case::{CheckResult, Failure};
use crate::conform::show;

/// The connection to the client under test.
pub struct Peer {
    stream: TcpStream,
    deadline: Instant,
    input: BytesMut,
    /// The longest frame data the client may send (SPEC.md §3.4, C9).
    max_frame: u32,
    /// Bytes carried between the fragments of the TEXT message open.
    carry: Vec<u8>,
    bye_seen: bool,
    /// Whether this end has sent a BYE (its last frame).
    bye_sent: bool,
    /// The client's address as this end sees it, and this end's own.
    pub client_addr: SocketAddr,
    /// This end's address.
    pub server_addr: SocketAddr,
    /// What was sent and received, one entry each.
    pub log: Log,
}

impl Peer {
    /// Wrap an accepted connection; nothing is read past `deadline`.
    pub fn new(
        stream: TcpStream,
        deadline: Instant,
        max_frame: u32,
        log: Log,
    ) -> std::io::Result<Peer> {
        stream.set_nodelay(true)?;
        Ok(Peer {
            client_addr: stream.peer_addr()?,
            server_addr: stream.local_addr()?,
            stream,
            deadline,
            input: BytesMut::new(),
            max_frame,
            carry: Vec::new(),
            bye_seen: false,
            bye_sent: false,
            log,
        })
    }

    /// Write `bytes` as they are, described in the log as `what`.
    pub fn send_raw(&mut self, bytes: &[u8], what: &str) -> CheckResult {
        self.log.push(format!("→ {what} [{}]", show::hex(bytes)));
        self.write(bytes)
    }

    /// Write to the client. A client that closed (a reset or a broken
    /// pipe) is no failure here: whether it was right to close is judged
    /// by what it printed and how it exited.
    fn write(&mut self, bytes: &[u8]) -> CheckResult {
        match self.stream.write_all(bytes) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                self.log.push(format!("(the client has closed: {e})"));
                Ok(())
            }
            Err(e) => Err(Failure::new(format!("the client's connection failed: {e}"))),
        }
    }

    /// Write a frame.
    pub fn send(&mut self, frame: &FrameRepr) -> CheckResult {
        self.bye_sent |= frame.frame_type == FrameType::Bye;
        self.log.push(format!("→ {}", show::frame(frame)));
        self.write(&frame.to_bytes())
    }

    /// Write `bytes` one at a time, each its own segment (SPEC.md §3.5).
    pub fn send_trickled(&mut self, bytes: &[u8], what: &str) -> CheckResult {
        self.log.push(format!(
            "→ {what}, one byte per write [{}]",
            show::hex(bytes)
        ));
        for byte in bytes {
            self.write(&[*byte])?;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// The server's preface.
    pub fn send_preface(&mut self) -> CheckResult {
        self.send_raw(&PREFACE, "preface")
    }

    /// C1: the client's first 8 bytes are the preface.
    pub fn expect_preface(&mut self) -> CheckResult {
        self.fill(PREFACE_LEN, "its preface")?;
        let got = self.input.split_to(PREFACE_LEN);
        self.log.push(format!("← preface [{}]", show::hex(&got)));
        if got[..] != PREFACE {
            return Err(Failure::mismatch(
                "C1: the client's first bytes are not the preface",
                show::hex(&PREFACE),
                show::hex(&got),
            ));
        }
        Ok(())
    }

    /// Read until `len` bytes are buffered, or fail at end of input or the
    /// deadline.
    fn fill(&mut self, len: usize, what: &str) -> CheckResult {
        while self.input.len() < len {
            if self.read_some()? == 0 {
                return Err(Failure::new(format!(
                    "the client closed the connection before sending {what}"
                )));
            }
        }
        Ok(())
    }

    /// One read, at most until the deadline; 0 at end of input.
    fn read_some(&mut self) -> Result<usize, Failure> {
        let left = super::time_left(self.deadline, "nothing more")?;
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| Failure::new(format!("cannot set a read timeout: {e}")))?;
        let mut chunk = [0; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(read) => {
                self.input.extend_from_slice(&chunk[..read]);
                Ok(read)
            }
            // A reset ends the input like a close: what matters is what came before.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(Failure::new(
                    "the client sent nothing more before the case's deadline",
                ))
            }
            Err(e) => Err(Failure::new(format!("reading from the client failed: {e}"))),
        }
    }

    /// The client's next frame, `None` when it closed between frames.
    /// Checks what holds for every frame a client sends: within the
    /// fragment limit from the header (C9), no ERROR (clients never send
    /// one, C8), nothing after its BYE (C15), reserved bits clear (§3.3).
    pub fn next_frame(&mut self) -> Result<Option<FrameRepr>, Failure> {
        let decoder = FrameDecoder::new(self.max_frame);
        loop {
            match decoder.decode(&mut self.input) {
                Ok(Some(frame)) => {
                    self.log.push(format!("← {}", show::frame(&frame)));
                    return self.check_sent(frame).map(Some);
                }
                Ok(None) => {}
                Err(too_large) => {
                    return Err(Failure::mismatch(
                        "C9: the client sent a frame over the fragment size",
                        format!("at most {} data bytes", self.max_frame),
                        format!(
                            "a {} header announcing {} bytes",
                            too_large.header.frame_type, too_large.header.data_len
                        ),
                    ));
                }
            }
            if self.read_some()? == 0 {
                if self.input.is_empty() {
                    self.log.push("← <close>");
                    return Ok(None);
                }
                return Err(Failure::new(format!(
                    "the client closed inside a frame ({} bytes of it sent)",
                    self.input.len()
                )));
            }
        }
    }

    fn check_sent(&mut self, frame: FrameRepr) -> Result<FrameRepr, Failure> {
        if self.bye_seen {
            return Err(Failure::mismatch(
                "C15: the client sent a frame after its BYE",
                "nothing after BYE",
                show::frame(&frame),
            ));
        }
        if frame.frame_type == FrameType::Error {
            return Err(Failure::mismatch(
                "C8: the client sent an ERROR (clients never do)",
                "no ERROR from a client",
                show::frame(&frame),
            ));
        }
        if frame.flags.reserved() != 0 {
            return Err(Failure::mismatch(
                "§3.3: the client set a reserved flag bit",
                "flags 00 or 01",
                format!("flags 0x{:02x}", frame.flags.0),
            ));
        }
        self.bye_seen |= frame.frame_type == FrameType::Bye;
        Ok(frame)
    }

    /// The client's next request, its PINGs (the §2.4 probe among them)
    /// answered with PONG on the way.
    pub fn next_request(&mut self) -> Result<FrameRepr, Failure> {
        loop {
            let Some(frame) = self.next_frame()? else {
                return Err(Failure::new(
                    "the client closed the connection while a request was expected",
                ));
            };
            if frame.frame_type != FrameType::Ping {
                return Ok(frame);
            }
            let pong = self.reply_to(&frame, FrameType::Pong, frame.data.clone());
            self.send(&pong)?;
        }
    }

    /// A reply to `request`: addresses swapped and filled in (§5.5), MORE
    /// mirrored for data types.
    pub fn reply_to(
        &self,
        request: &FrameRepr,
        frame_type: FrameType,
        data: impl Into<bytes::Bytes>,
    ) -> FrameRepr {
        let mut reply = FrameRepr::new(frame_type, data);
        reply.src = request.dst.or_else(Address::from(self.server_addr));
        reply.dst = request.src.or_else(Address::from(self.client_addr));
        if frame_type.is_data() {
            reply.flags = Flags::more_if(request.flags.more());
        }
        reply
    }

    /// An ERROR with `code` answering `request` (or, without one, from the
    /// server: source = local, destination = peer).
    pub fn error(&self, request: Option<&FrameRepr>, code: u16, message: &str) -> FrameRepr {
        let data = ErrorPayload::new(ErrorCode(code), message).to_bytes();
        match request {
            Some(request) => self.reply_to(request, FrameType::Error, data),
            None => {
                let mut frame = FrameRepr::new(FrameType::Error, data);
                frame.src = Address::from(self.server_addr);
                frame.dst = Address::from(self.client_addr);
                frame
            }
        }
    }

    /// The correct reply to a TEXT or BYTES request (the upper case of its
    /// complete code points, SPEC.md §5.1; ASCII for BYTES, §5.2).
    pub fn correct_reply(&mut self, request: &FrameRepr) -> Result<FrameRepr, Failure> {
        let data = match request.frame_type {
            FrameType::Text => {
                let mut message = std::mem::take(&mut self.carry);
                message.extend_from_slice(&request.data);
                let complete = match std::str::from_utf8(&message) {
                    Ok(_) => message.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => {
                        return Err(Failure::new(
                            "the client's TEXT is not UTF-8 (its stdin was)",
                        ));
                    }
                };
                let carried = message.split_off(complete);
                if !request.flags.more() && !carried.is_empty() {
                    return Err(Failure::new(
                        "the client's TEXT message ends inside a code point (§5.1)",
                    ));
                }
                self.carry = carried;
                crate::conform::oracle::text_upper(&message)
            }
            FrameType::Bytes => request.data.to_ascii_uppercase(),
            other => {
                return Err(Failure::mismatch(
                    "the client sent another frame than a request",
                    "TEXT or BYTES",
                    other,
                ));
            }
        };
        Ok(self.reply_to(request, request.frame_type, data))
    }

    /// The end of a session: the client's BYE, answered with `reply_data`
    /// (empty for a correct server), then its close.
    pub fn end_with_bye(&mut self, reply_data: &'static [u8]) -> CheckResult {
        let bye = self.next_request()?;
        if bye.frame_type != FrameType::Bye {
            return Err(Failure::mismatch(
                "C15: the client did not end its session with BYE",
                "BYE",
                show::frame(&bye),
            ));
        }
        let reply = self.reply_to(&bye, FrameType::Bye, reply_data);
        self.send(&reply)?;
        self.expect_close()
    }

    /// C8: the client closes, sending no ERROR (frames it pipelined before
    /// it read the failure may still come). A BYE is answered (unless this
    /// end said BYE already), so that a client that missed the failure
    /// ends at once and shows it in its exit status.
    pub fn expect_close(&mut self) -> CheckResult {
        while let Some(frame) = self.next_frame()? {
            if frame.frame_type == FrameType::Bye && !self.bye_sent {
                let reply = self.reply_to(&frame, FrameType::Bye, bytes::Bytes::new());
                self.send(&reply)?;
            }
        }
        Ok(())
    }

    /// Play a raw server (SPEC.md §2.4): return every byte the client
    /// sends, ASCII upper-cased (its lines are ASCII), until it closes.
    pub fn echo_raw(&mut self) -> CheckResult {
        while self.read_some()? > 0 {
            let echo = self.input.split().to_ascii_uppercase();
            self.send_raw(&echo, "raw echo")?;
        }
        self.log.push("← <close>");
        Ok(())
    }

    /// Send nothing more and hold the connection open until the client
    /// closes it (its reply timeout, C16), reading what it sends.
    pub fn stall(&mut self) -> CheckResult {
        self.log.push("(the server says nothing more)");
        while self.read_some()? > 0 {
            self.input.clear();
        }
        self.log.push("← <close>");
        Ok(())
    }

    /// End this side: close after reading what the client sent, so the
    /// close is no reset (§6.5).
    pub fn close(&mut self) {
        self.log.push("→ <close>");
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}
