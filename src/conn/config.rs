//! Settings of a server connection.

use std::time::Duration;

use crate::transform::LosslessMode;
use crate::wire::DEFAULT_MAX_DATA_LEN;

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
    /// byte (raw) while it reads, and how long the client may take no output
    /// while the server has stopped reading for it (SPEC.md §9.1).
    pub idle_timeout: Duration,
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
            linger: Duration::from_secs(2),
            max_pending_output: 256 * 1024,
            report_messages: false,
        }
    }
}

/// The most raw (or not yet sniffed) input a connection buffers.
pub(crate) const RAW_INPUT_LIMIT: usize = 64 * 1024;
