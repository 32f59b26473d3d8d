//! The conformance suite for any UPCASE/1 server: what h2spec is to HTTP/2.
//!
//! ```text
//!   Options ──▶ select cases ──▶ run each case ──▶ SuiteReport
//!               (transport,       (own sockets,      (✔/✘/skipped, expected
//!                name prefix)      std::net only)     vs actual, wire log)
//! ```
//!
//! One run tests one transport: TCP (raw and framed) by default, UDP
//! (SPEC.md §8) with [`Options::udp`] (`upcase conform --udp`). To test both,
//! run the suite twice against the same address.
//!
//! # What a case is
//!
//! A [`Case`] checks one rule of SPEC.md against a live server. It has
//!
//! * a **name**: mode, SPEC.md section, slug — `framed/5.1/split-code-point-at-every-offset`,
//!   `raw/7.1/invalid-bytes-kept`, `udp/8.2/more-set-malformed`. Filters
//!   select cases by name prefix (`framed/5.1` runs every case of §5.1 in
//!   framed mode). `udp/` cases are the UDP set; `framed/` cases are skipped
//!   against a raw-only server and `raw/` cases against a framed-only one
//!   ([`Options::server_mode`]);
//! * a one-line **description** of the rule it checks;
//! * whether its expected output depends on the **Unicode version**
//!   (SPEC.md §10): the oracle is this build's `std`, so such cases report
//!   which version they expect, e.g. "(Unicode 17.0)", and are skipped when
//!   the suite is told the server follows a version older than the one
//!   that first mapped their code points ([`Options::unicode`], `--unicode
//!   16.0` skips the 17.0 cases only). Only the §10 cases are: every other sample uses code
//!   points whose upper case is the same in Unicode 14.0 and 17.0;
//! * what it **needs** ([`Needs`]): most cases run against any server with
//!   default settings; a case that needs a server setting (a short idle
//!   timeout, ASCII raw mode, a known connection limit, one mode only) is
//!   skipped unless the options say the server under test has it. The BUSY
//!   case opens as many connections as the limit: run it against a server
//!   with a small one (`serve --max-connections 4`, `conform --max-connections 4
//!   framed/9.3`); with such a limit, cases that need more connections at
//!   once are skipped or use fewer;
//! * a **check**: a plain function `fn(&mut Ctx) -> CheckResult` that opens its own
//!   connections (or UDP sockets) through [`Ctx`], sends bytes, and compares
//!   what comes back with what an independent oracle says. It returns a
//!   [`Failure`] (what was expected, what arrived) at the first difference.
//!   A case never sends a frame over the server's limit ([`Options::max_frame`]):
//!   where its samples do not fit, it stops with [`Failure::cannot_run`] and
//!   is reported as skipped, with the reason. What SPEC.md only recommends
//!   against (SHOULD NOT) is a warning ([`Ctx::warn`]), not a failure.
//!
//! # Under a connection limit
//!
//! With [`Options::max_connections`], one case's connections must not fill
//! the limit for the next: when a case ends, the suite half-closes every
//! connection it left open and waits (at most the read timeout) until the
//! server has closed each, and a case that fails after meeting an
//! unexpected ERROR(BUSY), or a close before any reply (how a server turns
//! away a raw client over its limit, SPEC.md §9.3), runs again, up to 5
//! times with a doubling wait (50 ms to 400 ms); the wire log says so.
//!
//! # UDP
//!
//! Each datagram case opens its own socket ([`Ctx::datagram`], usually one
//! per datagram, so a late reply cannot be mistaken for the next one) with
//! the read timeout. UDP may lose a datagram, even on loopback (rarely): a
//! datagram that gets no reply is sent once more before the case fails, and
//! the wire log says so. Cases that expect no reply (a raw reply over 65,507
//! bytes, raw datagrams to a framed-only server) wait only 300 ms, then send
//! a datagram that must be answered, so the suite stays fast. A reply source
//! filled in by the server must be the address the suite sent to; a server
//! bound to a wildcard address may report that instead (same port), as
//! SPEC.md §8.5 allows, and the wire log notes it.
//!
//! Expected outputs never come from the server code of this crate: text uses
//! `str::to_uppercase`, bytes `to_ascii_uppercase`, raw mode
//! `std::str::Utf8Chunks` and `Utf8Error::error_len` (see `oracle`). The
//! suite uses only `std::net` and the crate's wire types ([`FrameRepr`],
//! [`FrameDecoder`], [`ErrorPayload`], [`PREFACE`]) to encode and decode.
//!
//! # How to add a case
//!
//! 1. Write `fn my_rule(ctx: &mut Ctx) -> CheckResult` in the `cases/` file of its
//!    SPEC.md section. Use [`Ctx::framed`] (connect and exchange prefaces) or
//!    [`Ctx::connect`] (raw), then `send`/`expect`/`expect_error`/`expect_raw`;
//!    for UDP, [`Ctx::datagram`], then [`Dgram::expect_raw`],
//!    [`Dgram::expect_frame`], [`Dgram::expect_error_reply`].
//!    Never sleep to make a result come out right: replies must not depend
//!    on timing. To check that something happened *before* more input was
//!    sent (fail-fast, carried code points), read the reply before writing
//!    the rest.
//! 2. Add a `Case { name, description, unicode_dependent, needs, check }`
//!    line to that file's `CASES` table. Names are unique (a unit test
//!    checks it) and start with `framed/`, `raw/` or `udp/`.
//! 3. Make sure it can fail: `tests/conform.rs` runs the suite against
//!    deliberately broken servers (TCP: `tests/conform/harness.rs`, UDP:
//!    `tests/conform/broken_udp.rs`); add or extend one so the new case
//!    catches it.
//!
//! [`FrameRepr`]: upcase::wire::FrameRepr
//! [`FrameDecoder`]: upcase::wire::FrameDecoder
//! [`ErrorPayload`]: upcase::wire::ErrorPayload
//! [`PREFACE`]: upcase::wire::PREFACE

mod case;
mod cases;
mod client;
pub mod client_suite;
mod datagram;
mod html;
mod oracle;
mod probe;
mod report;
mod runner;
mod show;
mod tap;
mod wire_log;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use case::{Case, CheckResult, Failure, Needs, Transport};
use client::Reach;
pub use client::{Conn, Ctx};
pub use datagram::Dgram;
pub use probe::{EarlyVerdict, Skip};

pub use report::{CaseOutcome, CaseResult, SuiteReport};
pub use runner::{IDLE_TIMEOUT, MAX_CONNECTIONS, RunnerError, run_managed};
use upcase::conn::ServerMode;
pub use wire_log::{Direction, WireBytes, WireEvent};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server under test.
    pub addr: SocketAddr,
    /// Name prefixes to select cases; empty selects every case.
    pub filters: Vec<String>,
    /// How long each reply may take from the moment it is owed (a
    /// deadline: bytes trickled in do not extend it); a case's own deadline
    /// is a multiple of it ([`Case::deadline`]).
    pub timeout: Duration,
    /// Run the UDP cases (and only those) instead of the TCP ones: datagrams
    /// to `addr`'s UDP port.
    pub udp: bool,
    /// The server's idle timeout, when it was started with a short one; enables the idle cases.
    pub idle_timeout: Option<Duration>,
    /// The server's receive limit on a frame's data (SPEC.md §3).
    pub max_frame: u32,
    /// The server runs ASCII-only raw mode: run the ASCII raw case, skip the Unicode raw ones.
    pub raw_ascii: bool,
    /// The mode the server was started in: `Raw` skips the framed cases,
    /// `Framed` the raw ones, and each runs its own §2.2 cases.
    pub server_mode: ServerMode,
    /// The server's connection limit, when known: enables the BUSY case,
    /// and makes the suite wait for the server to close each connection a
    /// case leaves behind (and retry a case that met an unexpected BUSY), so
    /// that one case's connections do not fill the limit for the next.
    pub max_connections: Option<usize>,
    /// The Unicode version the server's case mapping follows (`"14.0"`), when
    /// it is not the oracle's: the Unicode-dependent cases are skipped and
    /// the verdict says "with Unicode 14.0" (SPEC.md §10).
    pub unicode: Option<String>,
}

impl Options {
    /// Default options for a server at `addr`: every TCP case, 2 s timeout, 1 MiB limit.
    pub fn new(addr: SocketAddr) -> Options {
        Options {
            addr,
            filters: Vec::new(),
            timeout: Duration::from_secs(2),
            udp: false,
            idle_timeout: None,
            max_frame: upcase::wire::DEFAULT_MAX_DATA_LEN,
            raw_ascii: false,
            server_mode: ServerMode::Auto,
            max_connections: None,
            unicode: None,
        }
    }
}

/// Why the suite did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// A filter matched no case name.
    #[error("no case name starts with {filter:?}; see `upcase conform --list`")]
    NoMatch {
        /// The filter.
        filter: String,
    },
    /// The filters select no case of the transport being run (UDP cases
    /// run only with `--udp`, TCP cases only without).
    #[error(
        "the filters select no {transport} case; UDP cases run only with --udp, TCP cases only without"
    )]
    Empty {
        /// "UDP" or "TCP".
        transport: &'static str,
    },
    /// The first TCP connection of the run could not be opened: nobody
    /// listens there. The suite opens no connection of its own to find out
    /// (a server that takes one client at a time, like the Python
    /// tutorial's, would spend it on the probe): the first case's is the test.
    #[error("no server at {addr} ({reason})")]
    NoServer {
        /// The address tried.
        addr: SocketAddr,
        /// Why the connection failed (refused, timed out).
        reason: String,
    },
}

/// Every case, in the order they run (SPEC.md section order).
pub fn all_cases() -> Vec<&'static Case> {
    cases::all()
}

/// The cases `options` selects: the transport's cases whose name starts with
/// any filter (all of them without filters).
///
/// # Errors
/// [`SelectError::NoMatch`] for a filter that matches nothing,
/// [`SelectError::Empty`] when nothing is left.
pub fn select(options: &Options) -> Result<Vec<&'static Case>, SelectError> {
    let transport = if options.udp {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let all = all_cases();
    for filter in &options.filters {
        if !all
            .iter()
            .any(|case| case.name.starts_with(filter.as_str()))
        {
            return Err(SelectError::NoMatch {
                filter: filter.clone(),
            });
        }
    }
    let selected: Vec<_> = all
        .into_iter()
        .filter(|case| case.transport() == transport)
        .filter(|case| {
            options.filters.is_empty()
                || options
                    .filters
                    .iter()
                    .any(|f| case.name.starts_with(f.as_str()))
        })
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty {
            transport: transport.name(),
        });
    }
    Ok(selected)
}

/// Run the selected cases one after the other and collect the results.
///
/// # Errors
/// As [`select`].
pub fn run(options: &Options) -> Result<SuiteReport, SelectError> {
    run_with(options, |_| {})
}

/// What [`run_with`] reports as it goes.
pub enum Progress<'a> {
    /// The early verdict (see the `probe` module): the address holds no
    /// UPCASE/1 server, or a raw-only one. Reported after the first case
    /// that ran, when it failed; the cases it rules out are skipped.
    Verdict(&'a EarlyVerdict),
    /// A case finished.
    Case(&'a CaseResult),
}

/// Like [`run`], calling `on_progress` as each case finishes (for progress
/// output), and with the early verdict when there is one.
///
/// When the first case that runs fails, one preface exchange (and maybe a
/// raw line) checks that the address holds an UPCASE/1 server. When it
/// does not (HTTP, silence, an echo), the failed case is the evidence and
/// the others are skipped; against a raw-only server (not told
/// `--server-mode raw`) the other framed cases are skipped.
///
/// # Errors
/// As [`select`]; [`SelectError::NoServer`] when the first TCP connection
/// of the run cannot be opened (the case's result is then not reported).
pub fn run_with(
    options: &Options,
    mut on_progress: impl FnMut(Progress),
) -> Result<SuiteReport, SelectError> {
    let cases = select(options)?;
    let started = Instant::now();
    let mut early: Option<EarlyVerdict> = None;
    let mut probed = false;
    let mut results: Vec<CaseResult> = Vec::with_capacity(cases.len());
    let mut last_reached: Option<String> = None;
    let mut refusing_after = None;
    for case in cases {
        let ruled_out = early.as_ref().filter(|early| early.skips(case.name));
        let (result, first_connect) = match ruled_out {
            Some(early) => (skipped(case, early), None),
            None => run_case_reaching(case, options),
        };
        match (first_connect, &last_reached) {
            (Some(Reach::Unreachable(reason)), None) => {
                return Err(SelectError::NoServer {
                    addr: options.addr,
                    reason,
                });
            }
            (Some(Reach::Unreachable(_)), Some(last)) => {
                refusing_after.get_or_insert_with(|| last.clone());
            }
            (Some(Reach::Connected), _) => last_reached = Some(result.name.clone()),
            (None, _) => {}
        }
        on_progress(Progress::Case(&result));
        // The first case that runs is the evidence: only when it fails does
        // the probe look at what kind of server this is (a server that
        // takes one client gives that one to the case).
        let ran = !matches!(result.outcome, CaseOutcome::Skipped { .. });
        if ran && !probed {
            probed = true;
            if result.failed() {
                early = probe::probe(options);
                if let Some(early) = &early {
                    on_progress(Progress::Verdict(early));
                }
            }
        }
        results.push(result);
    }
    Ok(SuiteReport {
        addr: options.addr.to_string(),
        unicode_version: unicode_version(),
        server_unicode: options.unicode.clone().unwrap_or_else(unicode_version),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        early_verdict: early.map(|early| early.verdict),
        results,
        refusing_after,
    })
}

/// A case the early verdict rules out.
fn skipped(case: &Case, early: &EarlyVerdict) -> CaseResult {
    let reason = match early.skip {
        Skip::All => "not run: the address holds no UPCASE/1 server (see the early verdict)",
        Skip::Framed => {
            "not run: the server is raw-only (see the early verdict; --server-mode raw)"
        }
    };
    result_of(
        case,
        CaseOutcome::Skipped {
            reason: reason.into(),
        },
        Vec::new(),
        0.0,
        Vec::new(),
    )
}

/// A case's result record.
fn result_of(
    case: &Case,
    outcome: CaseOutcome,
    warnings: Vec<String>,
    elapsed_ms: f64,
    wire_log: Vec<WireEvent>,
) -> CaseResult {
    CaseResult {
        name: case.name.to_string(),
        description: case.description.to_string(),
        section: case.section().to_string(),
        unicode_dependent: case.unicode_dependent,
        outcome,
        warnings,
        elapsed_ms,
        wire_log,
    }
}

/// How many times a case that met an unexpected BUSY runs in all, under a
/// known connection limit.
const BUSY_ATTEMPTS: u32 = 5;

/// The wait before the first rerun of a case that met BUSY; it doubles
/// with each rerun (50, 100, 200, 400 ms: 750 ms at most in all).
const BUSY_BACKOFF: Duration = Duration::from_millis(50);

/// Run one case (or skip it when the server lacks what it needs).
///
/// Under a known connection limit (`--max-connections`), a case that fails
/// after one of its connections got ERROR(BUSY), or was closed before the
/// server sent a byte (a raw client over the limit), is run again, up to
/// 5 times in all with a doubling wait: a server may free the slots
/// of the previous case's connections a moment after it has closed them.
/// The wire log keeps every attempt and says why it ran again.
pub fn run_case(case: &Case, options: &Options) -> CaseResult {
    run_case_reaching(case, options).0
}

/// [`run_case`], and how the case's first TCP connection went.
fn run_case_reaching(case: &Case, options: &Options) -> (CaseResult, Option<Reach>) {
    let started = Instant::now();
    let mut wire_log = Vec::new();
    let mut backoff = BUSY_BACKOFF;
    let mut attempt = 1;
    let mut first_connect = None;
    let (outcome, warnings) = loop {
        if let Some(reason) = case.skip_reason(options) {
            break (CaseOutcome::Skipped { reason }, Vec::new());
        }
        let mut ctx = Ctx::new(options, started + case.deadline(options));
        let checked = (case.check)(&mut ctx);
        let aftermath = ctx.finish();
        wire_log.extend(aftermath.log);
        first_connect = first_connect.or(aftermath.first_connect);
        let outcome = match checked {
            Ok(()) => CaseOutcome::Passed,
            Err(failure) if failure.cannot_run => CaseOutcome::Skipped {
                reason: failure.message,
            },
            Err(failure) => CaseOutcome::Failed(failure),
        };
        let retry = matches!(outcome, CaseOutcome::Failed(_))
            && aftermath.turned_away
            && options.max_connections.is_some()
            && attempt < BUSY_ATTEMPTS;
        if !retry {
            break (outcome, aftermath.warnings);
        }
        let at = started.elapsed().as_secs_f64() * 1000.0;
        wire_log.push(WireEvent::new(at, "--", &format!(
            "(attempt {attempt} met ERROR(BUSY), or a close without reply, under the connection limit: the server may not have freed the slots of earlier connections yet; running the case again in {} ms)",
            backoff.as_millis()
        )));
        std::thread::sleep(backoff);
        backoff *= 2;
        attempt += 1;
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let result = result_of(case, outcome, warnings, elapsed_ms, wire_log);
    (result, first_connect)
}

/// The Unicode version of this build's `std`, whose case mapping is the
/// oracle: "17.0" for Rust 1.95.
pub fn unicode_version() -> String {
    let (major, minor, _) = std::char::UNICODE_VERSION;
    format!("{major}.{minor}")
}
