//! # upcase — the reference implementation of UPCASE/1
//!
//! A client sends text; the server sends it back in upper case. SPEC.md is the
//! normative protocol; this crate is its reference: a sans-IO core that any
//! program can drive, and a thin `std::net` shell (the `upcase` command).
//!
//! ```text
//!                        ┌──────────────────── sans-IO core ─────────────────────┐
//!   socket bytes in ───► │ ServerConnection::handle_input(now, &[u8])            │
//!   end of stream   ───► │   handle_eof(now)      mode sniffing (≤ 8 bytes)       │
//!   clock reached   ───► │   handle_timeout(now)    ├─ raw:    LosslessUpcaser    │
//!                        │                          └─ framed: FrameDecoder ──►   │
//!                        │                               FramedSession ──► reply  │
//!   socket bytes out ◄── │ pending_output() / mark_sent(now, n)                   │
//!   events (logs)    ◄── │ poll_event()  → ModeDetected, ProtocolError, Closed   │
//!   next deadline    ◄── │ poll_timeout() → Option<Instant>                      │
//!   read budget      ◄── │ read_capacity() → 0 while the peer is not reading      │
//!                        └────────────────────────────────────────────────────────┘
//!                          uses: wire (frames, codes, addresses) · transform
//! ```
//!
//! Layers, each usable alone:
//!
//! - [`wire`]: the preface, the 42-byte frame header, types, ERROR codes, and a
//!   streaming [`FrameDecoder`](wire::FrameDecoder) that never copies data.
//! - [`transform`]: the streaming upper-caser, in strict, lossless and ASCII modes.
//! - [`conn`]: the server and client state machines and the stateless UDP
//!   responder. They never touch a socket or read a clock.
//!
//! ## Driving a connection with `std::net`
//!
//! Write out everything pending, wait for input or the next deadline, feed
//! what arrived, repeat until closed:
//!
//! ```no_run
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpListener;
//! use std::time::Instant;
//! use upcase::conn::{ServerConfig, ServerConnection};
//!
//! # fn main() -> std::io::Result<()> {
//! let listener = TcpListener::bind("127.0.0.1:9999")?;
//! let (mut socket, peer) = listener.accept()?;
//! let mut conn = ServerConnection::new(
//!     ServerConfig::default(), socket.local_addr()?, peer, Instant::now());
//! let mut buf = vec![0; 64 * 1024];
//! while !conn.is_closed() {
//!     let pending = conn.pending_output().len();
//!     if pending > 0 {
//!         socket.write_all(conn.pending_output())?;
//!         conn.mark_sent(Instant::now(), pending).expect("wrote what was pending");
//!     }
//!     while let Some(event) = conn.poll_event() {
//!         eprintln!("{event:?}");
//!     }
//!     if conn.is_closed() {
//!         break;
//!     }
//!     let deadline = conn.poll_timeout();
//!     let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
//!     socket.set_read_timeout(wait.filter(|w| !w.is_zero()))?;
//!     let room = conn.read_capacity().min(buf.len());
//!     if room == 0 {
//!         continue; // the peer has not taken our output yet: write before reading
//!     }
//!     match socket.read(&mut buf[..room]) {
//!         Ok(0) => conn.handle_eof(Instant::now()),
//!         Ok(n) => conn.handle_input(Instant::now(), &buf[..n]).expect("read at most read_capacity"),
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!             conn.handle_timeout(Instant::now())
//!         }
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The real shell (`upcase::net`) adds write timeouts, so a peer that never
//! reads cannot block a thread past its deadlines, and notices shutdown.
//!
//! ## Features
//!
//! - `arbitrary`: `Arbitrary` derives for the wire types and the shared
//!   property functions the fuzz targets call (`fuzz/`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
#[cfg(feature = "net")]
pub mod net;
pub mod transform;
pub mod wire;

#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod properties;
