//! The conformance suite for any UPCASE/1 server: what h2spec is to HTTP/2.
//!
//! ```text
//!   Options ──▶ select cases ──▶ run each case ──▶ Report
//!               (name prefix)     (own sockets,      (✔/✘/skipped, expected
//!                                  std::net only)     vs actual, wire log)
//! ```
//!
//! # What a case is
//!
//! A [`Case`] checks one rule of SPEC.md against a live server. It has
//!
//! * a **name**: mode, SPEC.md section, slug — `framed/5.1/split-code-point-at-every-offset`,
//!   `raw/7/invalid-bytes-kept`. Filters select cases by name prefix
//!   (`framed/5.1` runs every case of §5.1 in framed mode);
//! * a one-line **description** of the rule it checks;
//! * whether its expected output depends on the **Unicode version**
//!   (SPEC.md §10): the oracle is this build's `std`, so such cases report
//!   which version they expect, e.g. "(Unicode 17.0)". Only the §10 cases
//!   are: every other sample uses code points whose upper case is the same
//!   in Unicode 14.0 and 17.0;
//! * what it **needs** ([`Needs`]): most cases run against any server with
//!   default settings; a case that needs a short server setting (idle
//!   timeout, ASCII raw mode) is skipped unless the option says the server
//!   under test has it;
//! * a **check**: a plain function `fn(&mut Ctx) -> Check` that opens its own
//!   connections through [`Ctx`], sends bytes, and compares what comes back
//!   with what an independent oracle says. It returns a [`Failure`] (what was
//!   expected, what arrived) at the first difference.
//!
//! Expected outputs never come from the server code of this crate: text uses
//! `str::to_uppercase`, bytes `to_ascii_uppercase`, raw mode
//! `std::str::Utf8Chunks` and `Utf8Error::error_len` (see `oracle`). The
//! suite uses only `std::net` and the crate's wire types ([`FrameRepr`],
//! [`FrameDecoder`], [`ErrorPayload`], [`PREFACE`]) to encode and decode.
//!
//! # How to add a case
//!
//! 1. Write `fn my_rule(ctx: &mut Ctx) -> Check` in the `cases/` file of its
//!    SPEC.md section. Use [`Ctx::framed`] (connect and exchange prefaces) or
//!    [`Ctx::connect`] (raw), then `send`/`expect`/`expect_error`/`expect_raw`.
//!    Never sleep to make a result come out right: replies must not depend
//!    on timing. To check that something happened *before* more input was
//!    sent (fail-fast, carried code points), read the reply before writing
//!    the rest.
//! 2. Add a `Case { name, description, unicode_dependent, needs, check }`
//!    line to that file's `CASES` table. Names are unique (a unit test
//!    checks it) and start with `framed/`, `raw/` or `udp/`.
//! 3. Make sure it can fail: `tests/conform.rs` runs the suite against
//!    deliberately broken servers; add or extend one so the new case catches it.
//!
//! [`FrameRepr`]: crate::wire::FrameRepr
//! [`FrameDecoder`]: crate::wire::FrameDecoder
//! [`ErrorPayload`]: crate::wire::ErrorPayload
//! [`PREFACE`]: crate::wire::PREFACE

mod case;
mod cases;
mod client;
mod oracle;
mod report;
mod show;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use case::{Case, Check, Failure, Needs, Transport};
pub use client::{Conn, Ctx};
pub use report::{CaseResult, Outcome, Report};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server under test.
    pub addr: SocketAddr,
    /// Name prefixes to select cases; empty selects every case.
    pub filters: Vec<String>,
    /// How long any single read waits for the server.
    pub timeout: Duration,
    /// Run the UDP cases (and only those) instead of the TCP ones.
    pub udp: bool,
    /// The server's idle timeout, when it was started with a short one; enables the idle cases.
    pub idle_timeout: Option<Duration>,
    /// The server's receive limit on a frame's data (SPEC.md §3).
    pub max_frame: u32,
    /// The server runs ASCII-only raw mode: run the ASCII raw case, skip the Unicode raw ones.
    pub raw_ascii: bool,
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
            max_frame: crate::wire::DEFAULT_MAX_DATA_LEN,
            raw_ascii: false,
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
    /// The selection (e.g. `--udp`) holds no case at all.
    #[error("there are no {transport} cases yet; nothing to run")]
    Empty {
        /// "UDP" or "TCP".
        transport: &'static str,
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
pub fn run(options: &Options) -> Result<Report, SelectError> {
    run_with(options, |_| {})
}

/// Like [`run`], calling `on_result` as each case finishes (for progress output).
///
/// # Errors
/// As [`select`].
pub fn run_with(
    options: &Options,
    mut on_result: impl FnMut(&CaseResult),
) -> Result<Report, SelectError> {
    let cases = select(options)?;
    let started = Instant::now();
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let result = run_case(case, options);
        on_result(&result);
        results.push(result);
    }
    Ok(Report {
        addr: options.addr.to_string(),
        unicode_version: unicode_version(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        results,
    })
}

/// Run one case (or skip it when the server lacks what it needs).
pub fn run_case(case: &Case, options: &Options) -> CaseResult {
    let started = Instant::now();
    let mut ctx = Ctx::new(options);
    let outcome = match case.skip_reason(options) {
        Some(reason) => Outcome::Skipped { reason },
        None => match (case.check)(&mut ctx) {
            Ok(()) => Outcome::Passed,
            Err(failure) => Outcome::Failed(failure),
        },
    };
    CaseResult {
        name: case.name.to_string(),
        description: case.description.to_string(),
        unicode_dependent: case.unicode_dependent,
        outcome,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        wire_log: ctx.into_log(),
    }
}

/// The Unicode version of this build's `std`, whose case mapping is the
/// oracle: "17.0" for Rust 1.95.
pub fn unicode_version() -> String {
    let (major, minor, _) = std::char::UNICODE_VERSION;
    format!("{major}.{minor}")
}
