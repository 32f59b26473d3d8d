//! The early verdict: when the first case that runs fails, one preface
//! exchange (and, when it gets no answer, one raw line) says whether the
//! address holds an UPCASE/1 server at all. An HTTP server, a listener that
//! answers nothing, or a plain echo fails every case in the same way,
//! slowly; the suite says so once, with the likely fix, and skips the
//! cases it rules out (the failed first case is the evidence). A passing
//! first case means no probe at all: a server that takes one client gives
//! it to the case.
//!
//! The frame probe is SPEC.md §2.4's: a PING with unspecified addresses and
//! empty data, which a raw server returns unchanged and a framed one
//! answers with PONG.
//!
//! ```text
//!   preface + PING ──▶ preface + a frame ....... UPCASE/1: run everything
//!                  ├─▶ "HTTP/…" ................ HTTP: skip all (wrong port?)
//!                  ├─▶ the same bytes back ──┐
//!                  └─▶ silence ──────────────┴─▶ raw line "upcase\n"
//!                         ├─▶ "UPCASE\n" ....... raw-only: skip framed (--server-mode raw)
//!                         ├─▶ "upcase\n" ....... a plain echo: skip all
//!                         ├─▶ "HTTP/…" ......... HTTP: skip all
//!                         └─▶ silence .......... answers nothing: skip all
//! ```
//!
//! Anything else (a wrong version, a broken preface, a close) is an
//! UPCASE/1 implementation with a bug, or a full server: every case runs,
//! to show it in full.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::Options;
use upcase::conn::ServerMode;
use upcase::wire::{FrameRepr, FrameType, PREFACE};

/// The raw line the probe sends when the preface got no answer.
const RAW_LINE: &[u8] = b"upcase\n";

/// The most the probe reads of one answer.
const PROBE_READ: usize = 256;

/// What the probe found, and what follows for the cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyVerdict {
    /// One line: what the server is and the likely fix.
    pub verdict: String,
    /// Which cases cannot run.
    pub skip: Skip,
}

/// The cases an early verdict rules out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The framed ones (`framed/…`): a raw-only server.
    Framed,
    /// All of them, after the first: not an UPCASE/1 server.
    All,
}

impl EarlyVerdict {
    /// Whether the verdict rules out `case_name`.
    pub fn skips(&self, case_name: &str) -> bool {
        match self.skip {
            Skip::All => true,
            Skip::Framed => case_name.starts_with("framed/"),
        }
    }

    fn not_upcase(verdict: String) -> EarlyVerdict {
        EarlyVerdict {
            verdict,
            skip: Skip::All,
        }
    }

    fn raw_only(what: &str) -> EarlyVerdict {
        EarlyVerdict {
            verdict: format!(
                "a raw-only server ({what}): the framed cases are skipped; pass --server-mode raw to say so"
            ),
            skip: Skip::Framed,
        }
    }
}

/// What one probe connection got back.
enum Answer {
    Bytes(Vec<u8>),
    Silence,
    /// Closed, reset or unreachable: the cases say which.
    Gone,
}

/// Probe the server at `options.addr` (TCP only); `None` when it answers
/// like an UPCASE/1 server or the probe cannot tell.
pub fn probe(options: &Options) -> Option<EarlyVerdict> {
    if options.udp {
        return None;
    }
    let mut before = "raw mode (--server-mode raw)";
    if options.server_mode != ServerMode::Raw {
        let mut sent = BytesMut::from(&PREFACE[..]);
        FrameRepr::new(FrameType::Ping, Bytes::new()).encode(&mut sent);
        match ask(options, &sent) {
            Answer::Bytes(bytes) if is_http(&bytes) => return Some(http(&bytes)),
            Answer::Bytes(bytes) if bytes == sent[..] => {
                before = "it sent the preface and a PING frame back unchanged";
            }
            Answer::Bytes(_) | Answer::Gone => return None,
            Answer::Silence => before = "it did not answer the preface",
        }
        if options.server_mode == ServerMode::Framed {
            return Some(EarlyVerdict::not_upcase(format!(
                "not an UPCASE/1 server ({before}, within {:.1} s); is the port right?",
                options.timeout.as_secs_f64()
            )));
        }
    }
    match ask(options, RAW_LINE) {
        Answer::Bytes(bytes) if is_http(&bytes) => Some(http(&bytes)),
        Answer::Bytes(bytes) if bytes == b"UPCASE\n" => (options.server_mode == ServerMode::Auto)
            .then(|| EarlyVerdict::raw_only(&format!("{before}, and upper-cased a raw line"))),
        Answer::Bytes(bytes) if bytes == RAW_LINE => Some(EarlyVerdict::not_upcase(format!(
            "not an UPCASE/1 server but a plain echo ({before}, and a raw line too); is the port right?"
        ))),
        Answer::Silence => Some(EarlyVerdict::not_upcase(format!(
            "not an UPCASE/1 server: it accepts connections but answered {} within {:.1} s each; is the port right (is the server stopped, or is this another program's port)?",
            if options.server_mode == ServerMode::Raw {
                "no raw line"
            } else {
                "neither the preface nor a raw line"
            },
            options.timeout.as_secs_f64()
        ))),
        Answer::Bytes(_) | Answer::Gone => None,
    }
}

fn is_http(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    let html =
        |tag: &[u8]| start.len() >= tag.len() && start[..tag.len()].eq_ignore_ascii_case(tag);
    bytes.starts_with(b"HTTP/") || html(b"<!doctype html") || html(b"<html")
}

fn http(bytes: &[u8]) -> EarlyVerdict {
    let status = bytes
        .trim_ascii_start()
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    EarlyVerdict {
        verdict: format!(
            "not an UPCASE/1 server but an HTTP server (it answered \"{}\"); is the port right?",
            upcase::net::escape_for_log(status)
        ),
        skip: Skip::All,
    }
}

/// Send `bytes` on a connection of its own and read the answer: as many
/// bytes as were sent (a frame's reply is as long), an HTTP status line,
/// or what came within the read timeout, at most [`PROBE_READ`]. The
/// connection is then closed, and under a known connection limit seen to
/// close, so that the first case finds every slot free.
fn ask(options: &Options, bytes: &[u8]) -> Answer {
    let Ok(mut stream) = TcpStream::connect_timeout(&options.addr, options.timeout) else {
        return Answer::Gone;
    };
    let _ = stream.set_nodelay(true);
    if stream.write_all(bytes).is_err() {
        return Answer::Gone;
    }
    let deadline = Instant::now() + options.timeout;
    let mut answer = Vec::new();
    let mut chunk = [0u8; PROBE_READ];
    let got = |answer: Vec<u8>| {
        if answer.is_empty() {
            Answer::Silence
        } else {
            Answer::Bytes(answer)
        }
    };
    let found = loop {
        let told = answer.len() >= bytes.len().min(PROBE_READ)
            || is_http(&answer) && answer.contains(&b'\n')
            || answer.len() == PROBE_READ;
        let left = deadline.saturating_duration_since(Instant::now());
        if told || left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break got(answer);
        }
        match stream.read(&mut chunk[..PROBE_READ - answer.len()]) {
            Ok(n) if n > 0 => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break got(answer);
            }
            // Closed or reset.
            _ if answer.is_empty() => break Answer::Gone,
            _ => break Answer::Bytes(answer),
        }
    };
    if options.max_connections.is_some() {
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(options.timeout));
        let _ = std::io::copy(&mut (&stream).take(1 << 20), &mut std::io::sink());
    }
    found
}
