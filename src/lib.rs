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
//! Write out everything pending, wait for input until the next deadline,
//! feed what arrived, repeat until closed. This is `examples/std_server.rs`,
//! a whole server; `tests/std_server_example.rs` runs its `serve` against
//! peers that stall mid-frame, so what you copy is what is tested:
//!
#![doc = concat!("```no_run\n", include_str!("../examples/std_server.rs"), "```")]
//!
//! The real shell (`upcase::net`) adds a connection limit, backpressure on
//! writes, and graceful shutdown. The same core driven by tokio is
//! `examples/tokio_server.rs`, which passes the conformance suite's TCP
//! cases (`tests/tokio_conform.rs`).
//!
//! ## Features
//!
//! - `net` (default): `upcase::net`, the `std::net` shell: a TCP and UDP server
//!   (mio, socket2) and a blocking client. Without it (`default-features =
//!   false`) the crate is the sans-IO core alone, depending on `bytes` and
//!   `thiserror` only.
//! - `arbitrary`: `Arbitrary` derives for the wire types and the shared
//!   property functions the fuzz targets call (`fuzz/`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (Cargo.toml's [package.metadata.docs.rs]) marks what a feature gates.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod conn;
#[cfg(feature = "net")]
#[cfg_attr(docsrs, doc(cfg(feature = "net")))]
pub mod net;
pub mod transform;
pub mod wire;

#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod properties;
#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod testing;
