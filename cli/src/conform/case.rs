//! A conformance case: a named check of one SPEC.md rule.

use std::fmt::Display;
use std::time::Duration;

use serde::Serialize;

use super::Options;
use super::wire_log::WireBytes;
use upcase::conn::ServerMode;

/// A case's deadline in read timeouts (`--timeout`), before what it waits
/// on the server's timers ([`Case::deadline`]): 10, 20 s by default, far
/// more than any case takes against a server that answers.
pub const CASE_READS: u32 = 10;

/// What a case's check returns: `Err` at the first difference from SPEC.md.
pub type CheckResult = Result<(), Failure>;

/// What a server must be set up with for a case to run. Independently of
/// this, a case named `framed/…` is skipped against a raw-only server and one
/// named `raw/…` against a framed-only one (`--server-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Default settings: always runs.
    Nothing,
    /// Unicode raw mode (the default): skipped when the suite is told the
    /// server runs ASCII raw mode (`--raw-ascii`).
    UnicodeRaw,
    /// ASCII raw mode: runs only with `--raw-ascii`.
    RawAscii,
    /// A short idle timeout: runs only with `--idle-timeout SECS`.
    IdleTimeout,
    /// A known connection limit: runs only with `--max-connections N`.
    MaxConnections,
    /// This many connections at once: skipped when `--max-connections` is lower.
    Connections(usize),
    /// A server configured for exactly this mode (`--server-mode`).
    ServerMode(ServerMode),
    /// Raw datagrams answered (UDP): skipped against a framed-only server.
    RawDatagrams,
    /// Raw datagrams answered with Unicode rules: skipped against a
    /// framed-only server and with `--raw-ascii`.
    UnicodeRawDatagrams,
    /// Framed datagrams answered (UDP): skipped against a raw-only server.
    FramedDatagrams,
}

/// Which transport a case speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP, raw or framed.
    Tcp,
    /// UDP datagrams.
    Udp,
}

impl Transport {
    /// "TCP" or "UDP".
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

/// One conformance case (see the [module docs](super) for how to add one).
#[derive(Debug)]
pub struct Case {
    /// `mode/section/slug`, e.g. `framed/5.1/split-code-point-at-every-offset`.
    pub name: &'static str,
    /// The rule checked, in one line.
    pub description: &'static str,
    /// Whether the expected output depends on the Unicode version of the oracle.
    pub unicode_dependent: bool,
    /// What the server must be set up with.
    pub needs: Needs,
    /// The check.
    pub check: fn(&mut super::Ctx) -> CheckResult,
}

impl Case {
    /// The transport the case speaks: UDP for `udp/…` names, TCP otherwise.
    pub fn transport(&self) -> Transport {
        if self.name.starts_with("udp/") {
            Transport::Udp
        } else {
            Transport::Tcp
        }
    }

    /// The SPEC.md section it checks: `5.1` for `framed/5.1/ascii`.
    pub fn section(&self) -> &'static str {
        self.name.split('/').nth(1).unwrap_or_default()
    }

    /// Why this case cannot run against a server set up as `options` say, if so.
    pub fn skip_reason(&self, options: &Options) -> Option<String> {
        let mode = options.server_mode;
        let only = |what: &str| Some(format!("the server runs {what} only (--server-mode)"));
        if self.name.starts_with("framed/") && mode == ServerMode::Raw {
            return only("raw mode");
        }
        if self.name.starts_with("raw/") && mode == ServerMode::Framed {
            return only("framed mode");
        }
        let oracle = super::unicode_version();
        if self.unicode_dependent
            && let Some(claimed) = &options.unicode
            && super::cases::answers_differ(self.name, claimed)
        {
            return Some(format!(
                "expects the case mappings of Unicode {oracle}; the server uses Unicode {claimed} (--unicode), which SPEC.md §10 allows to differ exactly here"
            ));
        }
        match self.needs {
            Needs::Nothing => None,
            Needs::UnicodeRaw | Needs::UnicodeRawDatagrams if options.raw_ascii => {
                Some("the server runs ASCII raw mode (--raw-ascii)".into())
            }
            Needs::UnicodeRaw => None,
            Needs::RawDatagrams | Needs::UnicodeRawDatagrams if mode == ServerMode::Framed => {
                Some("the server runs framed mode only (--server-mode); raw datagrams are dropped".into())
            }
            Needs::RawDatagrams | Needs::UnicodeRawDatagrams => None,
            Needs::FramedDatagrams if mode == ServerMode::Raw => Some(
                "the server runs raw mode only (--server-mode); every datagram is raw".into(),
            ),
            Needs::FramedDatagrams => None,
            Needs::RawAscii if !options.raw_ascii => Some(
                "needs a server in ASCII raw mode; start it with --raw-ascii and pass --raw-ascii"
                    .into(),
            ),
            Needs::RawAscii => None,
            Needs::IdleTimeout if options.idle_timeout.is_none() => Some(
                "needs a server with a short idle timeout; pass --idle-timeout SECS (the server's setting)"
                    .into(),
            ),
            Needs::IdleTimeout => None,
            Needs::MaxConnections if options.max_connections.is_none() => Some(
                "needs the server's connection limit; pass --max-connections N (the server's setting)"
                    .into(),
            ),
            Needs::MaxConnections => None,
            Needs::Connections(needed) => match options.max_connections {
                Some(limit) if limit < needed => Some(format!(
                    "needs {needed} connections at once; the server's limit is {limit} (--max-connections)"
                )),
                _ => None,
            },
            Needs::ServerMode(wanted) if wanted != mode => Some(format!(
                "needs a server started with --mode {0}; pass --server-mode {0}",
                mode_name(wanted)
            )),
            Needs::ServerMode(_) => None,
        }
    }

    /// How long the case may take in all, whatever the server does: it
    /// fails when this passes (each reply also has its own deadline, the
    /// read timeout from the moment it is owed). `CASE_READS` (10) read
    /// timeouts, plus what the case waits on the server's own timers: eight
    /// idle timeouts for an idle case (the slow reader of §9.4 reads for
    /// about seven), one read timeout per connection of
    /// the limit for a BUSY case.
    pub fn deadline(&self, options: &Options) -> Duration {
        let mut deadline = options.timeout * CASE_READS;
        match self.needs {
            Needs::IdleTimeout => deadline += options.idle_timeout.unwrap_or_default() * 8,
            Needs::MaxConnections => {
                let connections = options.max_connections.unwrap_or_default() + 2;
                deadline += options.timeout * u32::try_from(connections).unwrap_or(u32::MAX);
            }
            _ => {}
        }
        deadline
    }

    /// What `--list` shows after the name: the deadline, requirements and
    /// Unicode dependence.
    pub fn tags(&self, options: &Options) -> Vec<String> {
        let mut tags = Vec::new();
        if self.unicode_dependent {
            tags.push(format!("Unicode {}", super::unicode_version()));
        }
        match self.needs {
            Needs::RawAscii => tags.push("needs --raw-ascii".into()),
            Needs::IdleTimeout => tags.push("needs --idle-timeout".into()),
            Needs::MaxConnections => tags.push("needs --max-connections".into()),
            Needs::ServerMode(mode) => {
                tags.push(format!("needs --server-mode {}", mode_name(mode)));
            }
            _ => {}
        }
        tags.push(format!(
            "deadline {:.0} s",
            self.deadline(options).as_secs_f64()
        ));
        tags
    }
}

/// `auto`, `raw` or `framed`, as the command line spells it.
pub fn mode_name(mode: ServerMode) -> &'static str {
    match mode {
        ServerMode::Auto => "auto",
        ServerMode::Raw => "raw",
        ServerMode::Framed => "framed",
    }
}

/// How a case failed: what was expected and what arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What went wrong, in one line.
    pub message: String,
    /// What SPEC.md requires (frames shown decoded, bytes in hex).
    pub expected: Option<String>,
    /// What the server did.
    pub actual: Option<String>,
    /// `expected` as raw bytes (length and hex), when it is bytes: a raw
    /// reply, or a frame as it is encoded on the wire. (Boxed, as is
    /// `actual_bytes`: every check returns a `Result` with a `Failure`.)
    pub expected_bytes: Option<Box<WireBytes>>,
    /// `actual` as raw bytes, likewise.
    pub actual_bytes: Option<Box<WireBytes>>,
    /// The case stopped before sending something the server was said not to
    /// take (e.g. a frame over `--max-frame`): it is reported as skipped,
    /// with `message` as the reason, not as failed.
    #[serde(skip)]
    pub cannot_run: bool,
}

impl Failure {
    /// A failure without an expected/actual pair (e.g. cannot connect).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            expected: None,
            actual: None,
            expected_bytes: None,
            actual_bytes: None,
            cannot_run: false,
        }
    }

    /// The case cannot go on against a server set up as the options say
    /// (`reason` says why and how to run it): it is skipped, not failed.
    pub fn cannot_run(reason: impl Into<String>) -> Failure {
        Failure {
            cannot_run: true,
            ..Failure::new(reason)
        }
    }

    /// A difference between what SPEC.md requires and what arrived.
    pub fn mismatch(
        message: impl Into<String>,
        expected: impl Display,
        actual: impl Display,
    ) -> Failure {
        Failure {
            message: message.into(),
            expected: Some(expected.to_string()),
            actual: Some(actual.to_string()),
            cannot_run: false,
            ..Failure::new("")
        }
    }

    /// The same failure, with the raw bytes of what was expected and what
    /// arrived (for the JSON report; the text shows them already).
    pub fn with_bytes(mut self, expected: &[u8], actual: &[u8]) -> Failure {
        self.expected_bytes = Some(Box::new(WireBytes::new(expected)));
        self.actual_bytes = Some(Box::new(WireBytes::new(actual)));
        self
    }

    /// Prefix the message with where in the case it happened.
    pub fn context(mut self, context: impl Display) -> Failure {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, "\n  expected: {expected}")?;
        }
        if let Some(actual) = &self.actual {
            write!(f, "\n  actual:   {actual}")?;
        }
        Ok(())
    }
}
