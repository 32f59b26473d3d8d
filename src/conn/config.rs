//! Settings of a server and of a client connection.

use std::time::Duration;

use crate::transform::LosslessMode;
use crate::wire::DEFAULT_MAX_DATA_LEN;

/// The longest data frame a client sends by default: longer text goes as
/// fragments of this size, whose replies (at most 3 × (64 KiB + 3)) stay
/// under the default server's output bound.
pub const DEFAULT_MAX_FRAGMENT_LEN: u32 = 64 * 1024;

/// Which modes a server accepts (SPEC.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ServerMode {
    /// Sniff the first bytes: the preface means framed, anything else raw.
    Auto,
    /// Every byte is raw input, a preface included.
    Raw,
    /// Only framed clients; a connection without the preface is closed.
    Framed,
}

/// How raw mode upper-cases (SPEC.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RawCase {
    /// Lossless Unicode upper case (the default).
    Unicode,
    /// ASCII only: byte-exact with the tutorial's `bytes.upper()` server.
    Ascii,
}

impl RawCase {
    /// The transform mode raw input is upper-cased with.
    pub fn lossless_mode(self) -> LosslessMode {
        match self {
            RawCase::Unicode => LosslessMode::Unicode,
            RawCase::Ascii => LosslessMode::Ascii,
        }
    }
}

/// Settings for a [`ServerConnection`](super::ServerConnection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Which modes are accepted.
    pub mode: ServerMode,
    /// Raw mode's upper-case rules.
    pub raw_case: RawCase,
    /// The receive limit on a frame's data length (SPEC.md §3.4).
    pub max_data_len: u32,
    /// How long a connection may go without a complete frame (framed) or a
    /// byte (raw) while it reads (SPEC.md §9.1).
    pub idle_timeout: Duration,
    /// How long pending output may wait with no byte of it taken by the
    /// client before the connection is closed without sending more, in
    /// every phase (SPEC.md §9.4). The idle timeout applies instead if it
    /// is shorter.
    pub send_timeout: Duration,
    /// How long the server waits for the client to close after its last
    /// output (BYE, a fatal error, the end of a raw stream) is all written.
    /// The last output is written however short this is (SPEC.md §9.2).
    pub linger: Duration,
    /// Output the peer has not accepted yet beyond which the connection stops
    /// consuming input (backpressure).
    pub max_pending_output: usize,
    /// Whether to report every received message as a
    /// [`ServerEvent::Message`](super::ServerEvent::Message) (for `-v` logging).
    pub report_messages: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            mode: ServerMode::Auto,
            raw_case: RawCase::Unicode,
            max_data_len: DEFAULT_MAX_DATA_LEN,
            idle_timeout: Duration::from_secs(300),
            send_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            max_pending_output: 256 * 1024,
            report_messages: false,
        }
    }
}

/// Settings for a [`ClientConnection`](super::ClientConnection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The receive limit on frames no request bounds: ERROR and the server's
    /// BYE. A reply's limit is what its request allows (SPEC.md §3.4: up to
    /// 3 × (N + 3) for a TEXT request of N bytes), whatever this says.
    pub max_data_len: u32,
    /// The longest data frame sent: longer text and bytes go as MORE
    /// fragments (SPEC.md §4.2). Keep it under the server's receive limit.
    pub max_fragment_len: u32,
    /// Request data sent ahead of its replies beyond which further frames
    /// are held until replies come (one frame always goes, however long).
    pub max_in_flight: usize,
    /// How long the server may stay silent while it owes the preface or a reply.
    pub reply_timeout: Duration,
    /// Send the raw-server probe (SPEC.md §2.4, checklist C3) as the first
    /// frame: a PING with unspecified addresses and empty data, whose PONG
    /// is taken silently and whose echo (a PING coming back) fails the
    /// connection with [`PeerError::RawServer`](super::PeerError::RawServer).
    /// Off by default, since it costs a round trip and a tester driving
    /// frames by hand wants only its own; `upcase client` turns it on.
    pub probe: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            max_data_len: DEFAULT_MAX_DATA_LEN,
            max_fragment_len: DEFAULT_MAX_FRAGMENT_LEN,
            max_in_flight: 64 * 1024,
            reply_timeout: Duration::from_secs(30),
            probe: false,
        }
    }
}

/// The most raw (or not yet sniffed) input a connection buffers.
pub(crate) const RAW_INPUT_LIMIT: usize = 64 * 1024;
