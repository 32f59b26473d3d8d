//! The conformance suite must pass against our server (`upcase::net::Server`,
//! TCP and UDP) and fail, in the right cases, against deliberately broken ones.

#[path = "conform/broken_ends.rs"]
mod broken_ends;
#[path = "conform/broken_udp.rs"]
mod broken_udp;
#[path = "conform/harness.rs"]
mod harness;
#[path = "conform/lifecycle.rs"]
mod lifecycle;
#[path = "conform/ours.rs"]
mod ours;
#[path = "conform/runner.rs"]
mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use broken_udp::{BrokenUdp, Bug};
use harness::{Flavor, Limit, TestServer};
use ours::OurServer;
use upcase::conn::{RawCase, ServerConfig, ServerMode};
use upcase_cli::conform::{self, CaseOutcome, Options, SelectError, SuiteReport, WireEvent};

fn options(addr: SocketAddr, filters: &[&str]) -> Options {
    let mut options = Options::new(addr);
    options.filters = filters.iter().map(|f| f.to_string()).collect();
    options
}

fn udp_options(addr: SocketAddr, filters: &[&str]) -> Options {
    let mut options = options(addr, filters);
    options.udp = true;
    options
}

fn skipped(report: &SuiteReport) -> BTreeSet<String> {
    names(report, |o| matches!(o, CaseOutcome::Skipped { .. }))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn names(report: &SuiteReport, pick: impl Fn(&CaseOutcome) -> bool) -> BTreeSet<String> {
    report.names_where(pick)
}

fn failed(report: &SuiteReport) -> BTreeSet<String> {
    names(report, |o| matches!(o, CaseOutcome::Failed(_)))
}

fn passed(report: &SuiteReport) -> BTreeSet<String> {
    names(report, |o| matches!(o, CaseOutcome::Passed))
}

/// Run the suite; the filters must match.
fn run(options: &Options) -> SuiteReport {
    conform::run(options).expect("filters match")
}

fn assert_all_passed(report: &SuiteReport) {
    assert!(
        report.all_passed(),
        "failures:\n{}",
        report.render_failures()
    );
}

fn assert_summary(report: &SuiteReport, summary: &str) {
    assert_eq!(report.summary(), summary, "{}", report.render_failures());
}

/// Run `filters` (the UDP set when `udp`) against `addr`, told of the
/// server's setting by `tell`, and require every case to pass.
fn passes_told(
    addr: SocketAddr,
    filters: &[&str],
    udp: bool,
    tell: fn(&mut Options),
) -> SuiteReport {
    let mut options = options(addr, filters);
    options.udp = udp;
    tell(&mut options);
    let report = run(&options);
    assert_all_passed(&report);
    report
}

/// Told nothing of the server's setting, the suite must notice it: every
/// case `filter` selects runs and fails.
fn fails_untold(addr: SocketAddr, filter: &str) {
    let report = run(&options(addr, &[filter]));
    assert!(!report.all_passed(), "{filter} passed against {addr}");
    assert!(
        report.results.iter().all(|r| r.failed()),
        "{filter} against {addr}: {}",
        report.summary()
    );
}

/// Require every case in `must_fail` to have failed and every case in
/// `must_pass` to have passed.
fn check_report(report: &SuiteReport, who: &str, must_fail: &[&str], must_pass: &[&str]) {
    let failed = failed(report);
    let passed = passed(report);
    for name in must_fail {
        assert!(
            failed.contains(*name),
            "{who}: {name} should fail; failed: {failed:?}"
        );
    }
    for name in must_pass {
        assert!(
            passed.contains(*name),
            "{who}: {name} should pass; failures:\n{}",
            report.render_failures()
        );
    }
}

/// Run `filters` against a broken TCP server and check the outcome.
fn check_broken(flavor: Flavor, filters: &[&str], must_fail: &[&str], must_pass: &[&str]) {
    let server = TestServer::start(flavor, ServerConfig::default());
    let report = run(&options(server.addr, filters));
    check_report(&report, &format!("{flavor:?}"), must_fail, must_pass);
}

/// Run the UDP cases against a broken UDP responder and check the outcome.
fn check_broken_udp(bug: Bug, must_fail: &[&str], must_pass: &[&str]) {
    let responder = BrokenUdp::start(bug);
    let report = run(&udp_options(responder.addr, &[]));
    check_report(&report, &format!("{bug:?}"), must_fail, must_pass);
}

#[test]
fn our_server_passes_every_tcp_case() {
    let server = OurServer::start();
    let report = run(&options(server.addr, &[]));
    assert_all_passed(&report);
    let expected_skips = set(&[
        "raw/2.2/raw-only-preface-echoed",
        "framed/2.2/framed-only-closes-raw",
        "raw/7.4/ascii-option",
        "framed/9.1/idle-timeout",
        "framed/9.1/idle-timer-restarts-on-complete-frames-only",
        "raw/9.1/idle-timeout",
        "framed/9.3/busy-at-the-limit",
        "framed/9.3/busy-for-any-version",
        "framed/9.1/idle-timer-armed-at-the-preface-restarted-by-frames",
        "raw/7.3/held-bytes-and-half-close-at-idle-timeout",
        "framed/9.2/framed-only-half-closes-a-raw-client",
        "framed/9.3/busy-for-a-late-preface",
        "framed/9.4/slow-steady-reader-served",
    ]);
    assert_eq!(skipped(&report), expected_skips);
    // Our server lingers after BYE: no SHOULD NOT is broken.
    assert!(
        report.results.iter().all(|r| r.warnings.is_empty()),
        "{}",
        report.summary()
    );
    assert!(report.results.iter().all(|r| !r.name.starts_with("udp/")));
}

#[test]
fn our_server_passes_every_udp_case() {
    let server = OurServer::start();
    let report = run(&udp_options(server.addr, &[]));
    assert_all_passed(&report);
    let expected_skips = set(&[
        "udp/8.1/framed-only-drops-raw",
        "udp/8.1/raw-only-treats-preface-as-raw",
    ]);
    assert_eq!(skipped(&report), expected_skips);
    assert!(report.results.iter().all(|r| r.name.starts_with("udp/")));
    assert!(passed(&report).len() >= 25, "{}", report.summary());
}

#[test]
fn our_server_passes_the_idle_timeout_cases() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let mut options = options(server.addr, &["framed/9.1", "raw/9.1"]);
    options.idle_timeout = Some(Duration::from_secs(1));
    assert_summary(&run(&options), "4 passed, 0 failed, 0 skipped");
}

#[test]
fn busy_case_passes_at_the_limit_and_fails_when_told_a_higher_one() {
    let server = OurServer::with(ServerConfig::default(), 2);
    let mut told = options(server.addr, &["framed/9.3"]);
    told.max_connections = Some(2);
    assert_summary(&run(&told), "3 passed, 0 failed, 0 skipped");

    // Told a limit of 3, the suite's third connection gets BUSY where it
    // expects a PONG: the cases can fail (after their reruns for BUSY).
    told.max_connections = Some(3);
    let report = run(&told);
    assert_eq!(
        failed(&report),
        set(&[
            "framed/9.3/busy-at-the-limit",
            "framed/9.3/busy-for-any-version",
            "framed/9.3/busy-for-a-late-preface",
        ])
    );
}

#[test]
fn raw_only_server_passes_its_mode_cases() {
    let config = ServerConfig {
        mode: ServerMode::Raw,
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let tell: fn(&mut Options) = |options| options.server_mode = ServerMode::Raw;
    let report = passes_told(server.addr, &["raw/2", "framed/2"], false, tell);
    assert!(passed(&report).contains("raw/2.2/raw-only-preface-echoed"));
    assert!(
        skipped(&report)
            .iter()
            .all(|name| name.starts_with("framed/")),
        "{:?}",
        skipped(&report)
    );

    let report = passes_told(server.addr, &["udp/8.1", "udp/8.3"], true, tell);
    assert!(passed(&report).contains("udp/8.1/raw-only-treats-preface-as-raw"));

    // Told nothing, the suite expects a framed reply to a preface.
    fails_untold(server.addr, "framed/2.1/preface-answered");

    // Told nothing, the suite sees a raw-only server before the cases: the
    // first framed case runs (and fails), the other framed ones are
    // skipped, the raw ones run.
    let report = run(&options(server.addr, &["framed/2", "raw/2.1"]));
    let early = report.early_verdict.clone().unwrap_or_default();
    assert!(early.contains("a raw-only server"), "{early}");
    assert!(early.contains("--server-mode raw"), "{early}");
    let (passed, failed, skipped) = report.counts();
    assert_eq!(failed, 1, "{}", report.render_failures());
    assert!(report.results[0].failed());
    assert!(passed > 0 && skipped > 0, "{}", report.summary());
    assert!(
        report
            .results
            .iter()
            .filter(|r| matches!(r.outcome, CaseOutcome::Skipped { .. }))
            .all(|r| r.name.starts_with("framed/")),
        "{}",
        report.summary()
    );
}

#[test]
fn framed_only_server_passes_its_mode_cases() {
    let config = ServerConfig {
        mode: ServerMode::Framed,
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let tell: fn(&mut Options) = |options| options.server_mode = ServerMode::Framed;
    let report = passes_told(
        server.addr,
        &["raw/2", "framed/2", "framed/5.6"],
        false,
        tell,
    );
    assert!(passed(&report).contains("framed/2.2/framed-only-closes-raw"));
    assert!(passed(&report).contains("framed/5.6/many-clients-interleaved"));

    let report = passes_told(server.addr, &["udp/8.1", "udp/8.2/ping"], true, tell);
    assert!(passed(&report).contains("udp/8.1/framed-only-drops-raw"));

    // Told nothing, the suite expects raw replies and notices they are missing.
    fails_untold(server.addr, "raw/2.1/first-differing-byte-means-raw");
}

#[test]
fn ascii_raw_server_passes_the_ascii_case_and_fails_unicode_ones() {
    let config = ServerConfig {
        raw_case: RawCase::Ascii,
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let tell: fn(&mut Options) = |options| options.raw_ascii = true;
    let report = passes_told(server.addr, &["raw/7"], false, tell);
    assert_eq!(passed(&report), set(&["raw/7.4/ascii-option"]));

    // Raw datagrams follow the same option.
    passes_told(server.addr, &["udp/8.3", "udp/8.4/raw"], true, tell);

    // Told nothing, the suite expects Unicode raw mode and notices.
    fails_untold(server.addr, "raw/7.1/utf8-classes");
}

#[test]
fn udp_replies_without_the_preface_are_caught_by_every_framed_case() {
    check_broken_udp(
        Bug::NoPreface,
        &[
            "udp/8.2/text-upper-cased",
            "udp/8.2/ping-pong",
            "udp/8.2/bye-answered",
            "udp/8.5/unspecified-filled-in",
            "udp/8.2/unsupported-version",
            "udp/8.2/more-set-malformed",
            "udp/8.4/text-reply-too-large",
        ],
        &[
            "udp/8.3/raw-upper-cased",
            "udp/8.3/raw-empty-datagram",
            "udp/8.4/raw-reply-over-limit-dropped",
        ],
    );
}

#[test]
fn udp_bytewise_lossy_raw_is_caught_by_the_raw_cases() {
    check_broken_udp(
        Bug::BytewiseLossy,
        &[
            "udp/8.3/raw-upper-cased",
            "udp/8.3/raw-invalid-bytes-kept",
            "udp/8.3/raw-incomplete-tail-copied",
            "udp/8.1/not-the-magic-is-raw",
            "udp/8.4/raw-reply-at-limit-sent",
        ],
        &["udp/8.3/raw-empty-datagram", "udp/8.2/text-upper-cased"],
    );
}

#[test]
fn udp_trusting_a_mismatched_length_is_caught() {
    check_broken_udp(
        Bug::IgnoresLengthMismatch,
        &[
            "udp/8.2/length-mismatch-malformed",
            "udp/8.2/checks-in-order",
        ],
        &[
            "udp/8.2/text-upper-cased",
            "udp/8.2/short-header-malformed",
            "udp/8.2/frame-too-large-before-length",
            "udp/8.2/more-set-malformed",
        ],
    );
}

#[test]
fn no_carry_is_caught_by_the_split_cases() {
    check_broken(
        Flavor::NoCarry,
        &["framed/5.1", "framed/5.5"],
        &[
            "framed/5.1/split-code-point-at-every-offset",
            "framed/5.1/one-byte-fragments",
            "framed/5.1/ping-between-fragments",
        ],
        &[
            "framed/5.1/ascii",
            "framed/5.1/utf8-classes-upper-cased",
            "framed/5.5/explicit-swapped",
        ],
    );
}

#[test]
fn no_address_swap_is_caught_by_the_address_cases() {
    check_broken(
        Flavor::NoSwap,
        &["framed/5.5", "framed/5.1/ascii", "framed/6.5/unknown"],
        &[
            "framed/5.5/explicit-swapped",
            "framed/5.5/one-side-unspecified",
            "framed/5.5/zero-ip-with-port-is-specified",
            "framed/5.5/error-reply-swapped",
        ],
        &[
            "framed/5.5/unspecified-filled-in",
            "framed/5.1/ascii",
            "framed/6.5/unknown-type-skipped",
        ],
    );
}

#[test]
fn late_utf8_failure_is_caught_by_the_fail_fast_case() {
    check_broken(
        Flavor::LateUtf8,
        &["framed/5.1", "framed/6.2/invalid"],
        &["framed/5.1/invalid-utf8-fails-fast"],
        &[
            "framed/5.1/invalid-utf8-classes-rejected",
            "framed/5.1/split-code-point-at-every-offset",
            "framed/5.1/incomplete-code-point-is-not-an-error-yet",
            "framed/6.2/invalid-utf8-fatal",
        ],
    );
}

#[test]
fn unicode_bytes_are_caught_by_the_bytes_cases() {
    check_broken(
        Flavor::UnicodeBytes,
        &["framed/5.2", "framed/5.1/ascii"],
        &[
            "framed/5.2/utf8-is-not-unicode-cased",
            "framed/5.2/fragments-split-anywhere",
        ],
        &["framed/5.2/every-byte-value", "framed/5.1/ascii"],
    );
}

#[test]
fn closing_on_unknown_type_is_caught() {
    check_broken(
        Flavor::ClosesOnUnknownType,
        &["framed/6"],
        &["framed/6.5/unknown-type-skipped"],
        &[
            "framed/6.5/unexpected-type-skipped",
            "framed/6.2/type-mismatch-fatal",
            "framed/6.2/frame-too-large-from-header",
        ],
    );
}

#[test]
fn one_client_at_a_time_is_caught_by_the_concurrency_cases() {
    check_broken(
        Flavor::Serial,
        &["framed/5.6", "framed/5.1/ascii"],
        &[
            "framed/5.6/many-clients-interleaved",
            "framed/5.6/disconnect-mid-frame-others-served",
        ],
        &["framed/5.6/pipelined-replies-in-order", "framed/5.1/ascii"],
    );
}

#[test]
fn raw_upcasing_each_recv_is_caught_by_the_split_case() {
    check_broken(
        Flavor::RawPerRecv,
        &["raw/7"],
        &["raw/7.2/split-at-every-offset"],
        // Copying an incomplete tail at once instead of holding it looks the
        // same at end of input: only the split case can tell.
        &[
            "raw/7.2/interactive-replies",
            "raw/7.1/utf8-classes-upper-cased",
            "raw/7.3/incomplete-at-eof-copied",
        ],
    );
}

#[test]
fn unexpected_type_before_malformed_is_caught() {
    check_broken(
        Flavor::UnexpectedBeforeMalformed,
        &["framed/6"],
        &["framed/6.3/more-on-pong-or-error-malformed"],
        &[
            "framed/6.5/unexpected-type-skipped",
            "framed/6.2/malformed-more-on-control-frame",
            "framed/6.5/non-fatal-error-keeps-open-message",
        ],
    );
}

#[test]
fn abandoning_the_open_message_on_a_non_fatal_error_is_caught() {
    check_broken(
        Flavor::AbandonsMessageOnError,
        &["framed/6.5", "framed/5.1/ping-between-fragments"],
        &["framed/6.5/non-fatal-error-keeps-open-message"],
        &[
            "framed/6.5/unknown-type-skipped",
            "framed/6.5/unexpected-type-skipped",
            "framed/5.1/ping-between-fragments",
        ],
    );
}

#[test]
fn answering_frames_behind_a_bye_is_caught() {
    check_broken(
        Flavor::AnswersFramesBehindBye,
        &["framed/5.4"],
        &["framed/5.4/frames-behind-bye-unanswered"],
        &[
            "framed/5.4/bye-then-linger",
            "framed/5.4/bye-reason-not-echoed",
            "framed/5.4/bye-between-fragments",
        ],
    );
}

#[test]
fn an_idle_timer_restarted_by_every_byte_is_caught() {
    let idle = Duration::from_secs(1);
    let config = ServerConfig {
        idle_timeout: idle,
        ..ServerConfig::default()
    };
    let server = TestServer::start(Flavor::IdleRestartsOnBytes, config);
    let mut told = options(server.addr, &["framed/9.1"]);
    told.idle_timeout = Some(idle);
    check_report(
        &run(&told),
        "IdleRestartsOnBytes",
        &["framed/9.1/idle-timer-restarts-on-complete-frames-only"],
        // With no byte at all, it times out like any server.
        &["framed/9.1/idle-timeout"],
    );
}

#[test]
fn busy_only_for_version_1_is_caught() {
    let limit = Limit {
        max: 2,
        free_delay: Duration::ZERO,
        free_after_close: false,
    };
    let server = TestServer::limited(
        Flavor::BusyOnlyForVersion1,
        ServerConfig::default(),
        Some(limit),
    );
    let mut told = options(server.addr, &["framed/9.3"]);
    told.max_connections = Some(2);
    check_report(
        &run(&told),
        "BusyOnlyForVersion1",
        &["framed/9.3/busy-for-any-version"],
        &["framed/9.3/busy-at-the-limit"],
    );
}

#[test]
fn closing_at_once_after_bye_passes_with_a_warning() {
    let server = TestServer::start(Flavor::NoLinger, ServerConfig::default());
    let report = run(&options(server.addr, &["framed/5.4"]));
    assert_all_passed(&report);
    let linger = report
        .results
        .iter()
        .find(|r| r.name == "framed/5.4/bye-then-linger")
        .expect("selected");
    assert_eq!(linger.warnings.len(), 1, "{:?}", linger.warnings);
    assert!(
        linger.warnings[0].contains("SHOULD NOT close first"),
        "{}",
        linger.warnings[0]
    );
    assert!(
        report.summary().ends_with(", 1 with warnings"),
        "{}",
        report.summary()
    );
    assert!(
        linger
            .render(&report.unicode_version, false)
            .contains("\n    warning: the server closed"),
        "{}",
        linger.render(&report.unicode_version, false)
    );
}

/// Why a case was skipped, by name.
fn skip_reasons(report: &SuiteReport) -> BTreeMap<String, String> {
    report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            CaseOutcome::Skipped { reason } => Some((r.name.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_small_frame_limit_skips_with_reasons_and_never_fails() {
    let config = ServerConfig {
        max_data_len: 16,
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let tell: fn(&mut Options) = |options| options.max_frame = 16;
    let tcp = passes_told(server.addr, &[], false, tell);
    let udp = passes_told(server.addr, &[], true, tell);
    for report in [&tcp, &udp] {
        let over_limit: Vec<_> = skip_reasons(report)
            .into_iter()
            .filter(|(_, reason)| reason.contains("(--max-frame)"))
            .collect();
        assert!(!over_limit.is_empty(), "{}", report.summary());
        for (name, reason) in over_limit {
            assert!(
                reason.contains("limit") && reason.contains("16"),
                "{name}: {reason}"
            );
        }
    }
    assert!(passed(&udp).contains("udp/8.2/text-upper-cased"));
    let udp_skips = skip_reasons(&udp);
    for name in [
        "udp/8.4/text-reply-at-limit-sent",
        "udp/8.4/text-reply-too-large",
    ] {
        assert!(
            udp_skips[name].contains("at least"),
            "{name}: {:?}",
            udp_skips.get(name)
        );
    }
    // Cases that fit their samples to the limit still run.
    for name in [
        "framed/5.1/utf8-classes-upper-cased",
        "framed/5.2/every-byte-value",
        "framed/5.6/pipelined-replies-in-order",
        "framed/10/unicode-17-mappings",
        "framed/3.5/frame-byte-by-byte",
        "framed/5.3/pong-echoes-data",
        "framed/5.6/many-clients-interleaved",
        "framed/5.6/disconnect-mid-frame-others-served",
        "framed/6.2/frame-too-large-from-header",
        "framed/3.4/frame-at-limit-accepted",
    ] {
        assert!(passed(&tcp).contains(name), "{name}: {}", tcp.summary());
    }
    // Every frame the suite sent fits: the server never said FRAME_TOO_LARGE
    // except where a case asked for it.
    for result in tcp.results.iter().chain(&udp.results) {
        let provoked = result.name.contains("too-large") || result.name.contains("checks-in-order");
        if !provoked {
            assert!(
                !result
                    .wire_log
                    .iter()
                    .any(|l| l.text.contains("FRAME_TOO_LARGE")),
                "{}: {:#?}",
                result.name,
                result.wire_log
            );
        }
    }
}

#[test]
fn an_older_unicode_skips_exactly_the_unicode_cases_when_told() {
    let server = TestServer::start(Flavor::Unicode14, ServerConfig::default());
    let filters = ["framed/5.1", "framed/10", "raw/10", "raw/7.1"];
    let untold = run(&options(server.addr, &filters));
    assert_eq!(
        failed(&untold),
        set(&[
            "framed/10/unicode-16-mappings",
            "framed/10/unicode-17-mappings",
            "raw/10/unicode-16-mappings",
            "raw/10/unicode-17-mappings"
        ]),
        "{}",
        untold.render_failures()
    );
    assert!(
        untold.verdict().starts_with("does not conform"),
        "{}",
        untold.verdict()
    );

    let mut told = options(server.addr, &filters);
    told.unicode = Some("14.0".into());
    let report = run(&told);
    assert_all_passed(&report);
    let skips = skip_reasons(&report);
    assert_eq!(
        skips.keys().cloned().collect::<BTreeSet<_>>(),
        set(&[
            "framed/10/unicode-16-mappings",
            "framed/10/unicode-17-mappings",
            "raw/10/unicode-16-mappings",
            "raw/10/unicode-17-mappings"
        ])
    );
    for reason in skips.values() {
        assert!(reason.contains("Unicode 14.0 (--unicode)"), "{reason}");
    }
    assert!(
        report
            .verdict()
            .starts_with("conforms to UPCASE/1 with Unicode 14.0"),
        "{}",
        report.verdict()
    );

    // Told the oracle's own version, the cases run.
    told.unicode = Some(conform::unicode_version());
    assert!(!run(&told).all_passed());
}

/// The cases that fill the connection limit or drop connections mid-way,
/// plus a few that need a free slot right after them.
const LIMIT_CASES: &[&str] = &[
    "framed/5.6/many-clients-interleaved",
    "framed/6.2/malformed-reserved-flag",
    "framed/9.3/busy-at-the-limit",
    "framed/9.3/busy-for-any-version",
    "framed/2.1/preface-answered",
];

#[test]
fn a_server_slow_to_free_slots_passes_100_runs_in_a_row() {
    // Notices a close 10 ms late: frees the slot, then closes its side.
    let limit = Limit {
        max: 2,
        free_delay: Duration::from_millis(10),
        free_after_close: false,
    };
    let server = TestServer::limited(Flavor::Conforming, ServerConfig::default(), Some(limit));
    let mut told = options(server.addr, LIMIT_CASES);
    told.max_connections = Some(2);
    for run_number in 1..=100 {
        let report = run(&told);
        assert!(
            report.all_passed(),
            "run {run_number}: failures:\n{}",
            report.render_failures()
        );
    }
}

#[test]
fn a_case_that_meets_busy_under_the_limit_runs_again_and_says_so() {
    // Closes at once but frees the slot 100 ms later: the next case's
    // connection gets BUSY, and its case runs again after a wait (the
    // reruns wait 50, 100, 200 and 400 ms: the slot is free in time).
    let limit = Limit {
        max: 1,
        free_delay: Duration::from_millis(100),
        free_after_close: true,
    };
    let server = TestServer::limited(Flavor::Conforming, ServerConfig::default(), Some(limit));
    let mut told = options(
        server.addr,
        &[
            "framed/2.1/preface-answered",
            "framed/5.1/ascii",
            "framed/5.3",
        ],
    );
    told.max_connections = Some(1);
    let report = run(&told);
    assert_all_passed(&report);
    let reran = report
        .results
        .iter()
        .filter(|r| {
            r.wire_log
                .iter()
                .any(|l| l.text.contains("running the case again"))
        })
        .count();
    assert!(reran >= 1, "no case ran again:\n{:#?}", report.results);
}

#[test]
fn a_raw_client_turned_away_under_the_limit_runs_the_case_again() {
    // Frees a slot 100 ms after closing. The previous case's connection
    // still holds its slot when many-clients opens its two: the second, a
    // raw client, is over the limit and closed without reply (SPEC.md §9.3),
    // which no ERROR(BUSY) announces. The case must run again, not fail.
    let limit = Limit {
        max: 2,
        free_delay: Duration::from_millis(100),
        free_after_close: true,
    };
    let server = TestServer::limited(Flavor::Conforming, ServerConfig::default(), Some(limit));
    let mut told = options(
        server.addr,
        &[
            "framed/2.1/preface-answered",
            "framed/5.6/many-clients-interleaved",
        ],
    );
    told.max_connections = Some(2);
    let report = run(&told);
    assert_all_passed(&report);
    let many = report
        .results
        .iter()
        .find(|r| r.name == "framed/5.6/many-clients-interleaved")
        .expect("the case ran");
    assert!(
        many.wire_log
            .iter()
            .any(|l| l.text.contains("running the case again")),
        "many-clients did not run again:\n{:#?}",
        many.wire_log
    );
}

#[test]
fn html_report_is_well_formed_and_has_a_row_per_case() {
    let server = TestServer::start(Flavor::NoSwap, ServerConfig::default());
    let mut report = run(&options(
        server.addr,
        &[
            "framed/5.5/explicit-swapped",
            "framed/5.1/ascii",
            "framed/9.3/busy-at-the-limit",
        ],
    ));
    // Text that must be escaped, wherever it can come from the server.
    report.results[1].wire_log.push(WireEvent::new(
        1.0,
        "c9",
        "← \"<script>alert(1)</script>\" & <b>",
    ));
    let html = report.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script"), "unescaped: {html}");
    // Written as well-formed XML, so a strict parser checks every tag.
    let strict = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, strict).expect("well-formed");
    let has_class = |node: &roxmltree::Node, class: &str| {
        node.attribute("class")
            .is_some_and(|c| c.split(' ').any(|c| c == class))
    };
    assert!(
        doc.descendants()
            .all(|n| !matches!(n.tag_name().name(), "script" | "link" | "img"))
    );
    let style = doc
        .descendants()
        .find(|n| n.has_tag_name("style"))
        .and_then(|n| n.text())
        .expect("inline style");
    assert!(!style.contains("url("), "no external asset: {style}");

    let rows: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr") && has_class(n, "case"))
        .collect();
    assert_eq!(rows.len(), 3);
    let cells = |row: &roxmltree::Node| -> Vec<String> {
        row.children()
            .filter(|n| n.has_tag_name("td"))
            .map(|td| {
                td.descendants()
                    .filter(|n| n.is_text())
                    .filter_map(|n| n.text())
                    .collect()
            })
            .collect()
    };
    let table: Vec<Vec<String>> = rows.iter().map(cells).collect();
    assert_eq!(table[0][0], "framed/5.1/ascii");
    assert_eq!(table[0][1..3], ["§5.1", "pass"]);
    assert_eq!(table[1][0], "framed/5.5/explicit-swapped");
    assert_eq!(table[1][1..3], ["§5.5", "fail"]);
    assert_eq!(table[2][2], "skip");

    // Each case's details: rule, expected vs actual, the wire log.
    let sections: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("section"))
        .collect();
    assert_eq!(sections.len(), 3);
    let text_of = |node: &roxmltree::Node| -> String {
        node.descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect()
    };
    let failed = text_of(&sections[1]);
    assert!(failed.contains("SPEC.md §5.5: "), "{failed}");
    assert!(
        failed.contains("expected") && failed.contains("TEXT src=198.51.100.7:80"),
        "{failed}"
    );
    let escaped = text_of(&sections[1]);
    assert!(
        escaped.contains("c9 ← \"<script>alert(1)</script>\" & <b>"),
        "the wire log reads back as it was: {escaped}"
    );
    assert!(text_of(&sections[2]).contains("Skipped: needs the server's connection limit"));
    let verdict = doc
        .descendants()
        .find(|n| n.has_tag_name("p") && has_class(n, "verdict"))
        .expect("verdict");
    assert_eq!(
        text_of(&verdict),
        "does not conform to UPCASE/1: 1 case failed"
    );
}

#[test]
fn a_lost_datagram_is_sent_once_more_and_the_log_says_so() {
    let responder = BrokenUdp::start(Bug::LosesFirstDatagram);
    let mut options = udp_options(responder.addr, &["udp/8.3/raw-empty", "udp/8.2/ping-pong"]);
    // How long each attempt may wait: long enough for a reply on a loaded
    // machine, since only the first attempt is lost.
    options.timeout = Duration::from_secs(2);
    let report = run(&options);
    assert_summary(&report, "2 passed, 0 failed, 0 skipped");
    for result in &report.results {
        assert!(
            result
                .wire_log
                .iter()
                .any(|line| line.text.contains("sending it once more")),
            "{}: {:?}",
            result.name,
            result.wire_log
        );
    }
}

#[test]
fn a_filter_that_matches_nothing_is_an_error() {
    let options = Options::new("127.0.0.1:9".parse().unwrap());
    let mut bad = options.clone();
    bad.filters = vec!["framed/5.1".into(), "framed/42".into()];
    assert_eq!(
        conform::select(&bad).unwrap_err(),
        SelectError::NoMatch {
            filter: "framed/42".into()
        }
    );
    // A TCP filter with --udp selects nothing of the UDP set.
    let mut udp = options;
    udp.udp = true;
    udp.filters = vec!["framed/5.1".into()];
    assert_eq!(
        conform::select(&udp).unwrap_err(),
        SelectError::Empty { transport: "UDP" }
    );
    udp.filters.clear();
    let selected = conform::select(&udp).unwrap();
    assert!(!selected.is_empty());
    assert!(selected.iter().all(|case| case.name.starts_with("udp/")));
}

#[test]
fn a_missing_server_is_one_error_from_the_first_cases_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut reported = 0;
    let error = conform::run_with(&options(addr, &["raw/", "framed/5.1"]), |_| reported += 1)
        .expect_err("nobody listens there");
    assert!(
        matches!(&error, SelectError::NoServer { addr: at, .. } if *at == addr),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("no server at {addr} (")),
        "{error}"
    );
    assert_eq!(
        reported, 0,
        "no case result is reported for a missing server"
    );
}

#[test]
fn filters_select_by_prefix() {
    let mut options = Options::new("127.0.0.1:9".parse().unwrap());
    options.filters = vec!["framed/5.1".into(), "raw/2".into()];
    let selected = conform::select(&options).unwrap();
    assert!(!selected.is_empty());
    for case in &selected {
        assert!(
            case.name.starts_with("framed/5.1/") || case.name.starts_with("raw/2."),
            "{}",
            case.name
        );
    }
    let all = conform::all_cases();
    let expected = all
        .iter()
        .filter(|c| c.name.starts_with("framed/5.1") || c.name.starts_with("raw/2"))
        .count();
    assert_eq!(selected.len(), expected);
}

fn upcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upcase"))
}

#[test]
fn cli_exit_codes_and_reports() {
    let server = OurServer::start();
    let addr = server.addr.to_string();
    let dir = std::env::temp_dir().join(format!("upcase-conform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("report.xml");
    let json = dir.join("report.json");

    let pass = upcase()
        .args(["conform", &addr, "framed/2.1", "framed/2.3", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(pass.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✔ framed/2.1/preface-answered"), "{stdout}");
    assert!(stdout.contains("3 passed, 0 failed, 0 skipped"), "{stdout}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"0\""), "{junit}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(json["results"][0]["outcome"]["status"], "passed");
    std::fs::remove_dir_all(&dir).unwrap();

    let no_match = upcase()
        .args(["conform", &addr, "framed/99"])
        .output()
        .unwrap();
    assert_eq!(no_match.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&no_match.stderr)
            .contains("no case name starts with \"framed/99\"")
    );

    let udp = upcase()
        .args(["conform", &addr, "--udp", "udp/8.3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&udp.stdout);
    assert_eq!(udp.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✔ udp/8.3/raw-empty-datagram"), "{stdout}");
    assert!(stdout.contains("4 passed, 0 failed, 0 skipped"), "{stdout}");

    let wrong_transport = upcase()
        .args(["conform", &addr, "--udp", "framed/2"])
        .output()
        .unwrap();
    assert_eq!(wrong_transport.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&wrong_transport.stderr).contains("--udp"),
        "{}",
        String::from_utf8_lossy(&wrong_transport.stderr)
    );

    let list = upcase()
        .args(["conform", &addr, "--list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.status.code(), Some(0));
    assert!(
        listing.contains("framed/10/unicode-17-mappings [Unicode "),
        "{listing}"
    );
    assert!(
        listing.contains("framed/9.1/idle-timeout [needs --idle-timeout, deadline 20 s]"),
        "{listing}"
    );
    assert!(
        listing.contains("framed/9.3/busy-at-the-limit [needs --max-connections, deadline 24 s]"),
        "{listing}"
    );
    assert!(
        listing
            .contains("raw/2.2/raw-only-preface-echoed [needs --server-mode raw, deadline 20 s]"),
        "{listing}"
    );
    assert!(listing.contains("udp/8.2/more-set-malformed"), "{listing}");

    // Each case's deadline follows the read timeout and the server's timers.
    let list = upcase()
        .args([
            "conform",
            "--list",
            "framed/9.1/idle-timeout",
            "--timeout",
            "1",
        ])
        .args(["--idle-timeout", "3"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("framed/9.1/idle-timeout [needs --idle-timeout, deadline 34 s]"),
        "{listing}"
    );

    // --list needs no server; a first argument with a '/' is a filter.
    let list = upcase()
        .args(["conform", "--list", "udp/8.4"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.status.code(), Some(0), "{listing}");
    assert!(listing.ends_with("4 cases\n"), "{listing}");
}

#[test]
fn cli_writes_html_and_takes_the_server_unicode_version() {
    let server = TestServer::start(Flavor::Unicode14, ServerConfig::default());
    let addr = server.addr.to_string();
    let html = std::env::temp_dir().join(format!("upcase-conform-{}.html", std::process::id()));
    let out = upcase()
        .args([
            "conform",
            &addr,
            "framed/10",
            "framed/5.1/ascii",
            "--unicode",
            "14.0.0",
            "--html",
        ])
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("the server's: Unicode 14.0"), "{stdout}");
    assert!(
        stdout.contains(
            "- framed/10/unicode-17-mappings (skipped: expects the case mappings of Unicode"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("conforms to UPCASE/1 with Unicode 14.0 (in the 1 cases that ran)\n"),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    std::fs::remove_file(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("framed/10/unicode-17-mappings"), "{page}");

    let bad = upcase()
        .args(["conform", &addr, "--unicode", "fourteen"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("expected a Unicode version such as 14.0"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn cli_fails_with_expected_and_actual_against_a_broken_server() {
    let server = TestServer::start(Flavor::NoSwap, ServerConfig::default());
    let out = upcase()
        .args([
            "conform",
            &server.addr.to_string(),
            "framed/5.5/explicit-swapped",
            "--verbose",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("✘ framed/5.5/explicit-swapped"), "{stdout}");
    assert!(
        stdout.contains("expected: TEXT src=198.51.100.7:80 dst=[2001:db8::1]:1234"),
        "{stdout}"
    );
    assert!(
        stdout.contains("actual:   TEXT src=[2001:db8::1]:1234 dst=198.51.100.7:80"),
        "{stdout}"
    );
    assert!(stdout.contains("c1 → TEXT"), "wire log: {stdout}");
    assert!(stdout.contains("0 passed, 1 failed, 0 skipped"), "{stdout}");
}

#[test]
fn cli_without_a_server_exits_2_and_says_how_to_start_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let out = upcase()
        .args(["conform", &addr, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("no server at {addr}")), "{stderr}");
    assert!(stderr.contains("cargo run --release -- serve"), "{stderr}");
}
