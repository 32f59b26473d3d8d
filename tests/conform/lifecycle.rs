//! The lifecycle cases (issue 23): our server passes them, and each fails
//! the broken server of `broken_ends.rs` that has the bug it is about.

use std::time::Duration;

use super::broken_ends::{EndBug, EndServer};
use super::broken_udp::{BrokenUdp, Bug};
use super::ours::OurServer;
use super::{assert_all_passed, check_report, options, run};
use upcase::conn::{ServerConfig, ServerMode};
use upcase_cli::conform::Options;

const IDLE: Duration = Duration::from_secs(1);

fn idle_config() -> ServerConfig {
    ServerConfig {
        idle_timeout: IDLE,
        ..ServerConfig::default()
    }
}

/// Run `filters` against `bug`'s server (started with `config`, limited to
/// `limit`), told `tell`, and require `must_fail` to fail and `must_pass`
/// to pass.
fn check_bug(
    bug: EndBug,
    config: ServerConfig,
    limit: Option<usize>,
    tell: impl Fn(&mut Options),
    must_fail: &[&str],
    must_pass: &[&str],
) {
    let server = EndServer::start(bug, config, limit);
    let filters: Vec<&str> = must_fail.iter().chain(must_pass).copied().collect();
    let mut told = options(server.addr, &filters);
    tell(&mut told);
    let report = run(&told);
    check_report(&report, &format!("{bug:?}"), must_fail, must_pass);
}

fn told_idle(options: &mut Options) {
    options.idle_timeout = Some(IDLE);
}

#[test]
fn our_server_passes_the_lifecycle_cases_with_a_short_idle_timeout() {
    let server = OurServer::with(idle_config(), 1024);
    let mut told = options(
        server.addr,
        &[
            "framed/9.1",
            "framed/9.2",
            "framed/9.4",
            "framed/11",
            "raw/7.3",
            "raw/9.1",
        ],
    );
    told_idle(&mut told);
    let report = run(&told);
    assert_all_passed(&report);
    assert!(
        report.results.iter().all(|r| r.warnings.is_empty()),
        "our server breaks no SHOULD here: {}",
        report.summary()
    );
}

#[test]
fn our_framed_only_server_half_closes_a_raw_client() {
    let config = ServerConfig {
        mode: ServerMode::Framed,
        ..ServerConfig::default()
    };
    let server = OurServer::with(config, 1024);
    let mut told = options(
        server.addr,
        &["framed/9.2/framed-only-half-closes-a-raw-client"],
    );
    told.server_mode = ServerMode::Framed;
    assert_eq!(run(&told).summary(), "1 passed, 0 failed, 0 skipped");
}

#[test]
fn our_server_answers_a_late_preface_with_busy_at_a_limit_of_4() {
    let server = OurServer::with(ServerConfig::default(), 4);
    let mut told = options(
        server.addr,
        &[
            "framed/9.3",
            "framed/5.6/disconnect-mid-frame-others-served",
        ],
    );
    told.max_connections = Some(4);
    let report = run(&told);
    assert_eq!(
        report.summary(),
        "4 passed, 0 failed, 0 skipped",
        "{}",
        report.render_failures()
    );
}

#[test]
fn closing_with_unread_input_after_bye_is_caught() {
    check_bug(
        EndBug::ClosesWithUnreadInput,
        ServerConfig::default(),
        None,
        |_| {},
        &["framed/9.2/no-reset-with-unread-input"],
        &[
            "framed/9.2/no-half-close-after-bye",
            "framed/5.3/pong-echoes-data",
        ],
    );
}

#[test]
fn half_closing_after_bye_is_caught() {
    check_bug(
        EndBug::HalfClosesAfterBye,
        ServerConfig::default(),
        None,
        |_| {},
        &["framed/9.2/no-half-close-after-bye"],
        &[
            "framed/9.2/no-reset-with-unread-input",
            "framed/5.4/bye-then-linger",
        ],
    );
}

#[test]
fn an_idle_timer_armed_at_accept_and_never_restarted_is_caught() {
    check_bug(
        EndBug::IdleFromAcceptOnly,
        idle_config(),
        None,
        told_idle,
        &["framed/9.1/idle-timer-armed-at-the-preface-restarted-by-frames"],
        &["framed/9.1/idle-timeout"],
    );
}

#[test]
fn an_idle_timer_running_while_output_waits_is_caught() {
    check_bug(
        EndBug::IdleRunsWhileOutputWaits,
        idle_config(),
        None,
        told_idle,
        &["framed/9.4/slow-steady-reader-served"],
        &[
            "framed/9.1/idle-timeout",
            "framed/9.1/idle-timer-armed-at-the-preface-restarted-by-frames",
        ],
    );
}

#[test]
fn no_backpressure_is_caught() {
    check_bug(
        EndBug::NoBackpressure,
        ServerConfig::default(),
        None,
        |_| {},
        &["framed/11/stops-reading-for-a-client-that-never-reads"],
        &[
            "framed/5.3/pong-echoes-data",
            "framed/5.6/pipelined-replies-in-order",
        ],
    );
}

#[test]
fn a_raw_end_without_a_half_close_or_without_its_held_bytes_is_caught() {
    for bug in [EndBug::RawNoHalfClose, EndBug::DropsHeldBytesAtIdle] {
        check_bug(
            bug,
            idle_config(),
            None,
            told_idle,
            &["raw/7.3/held-bytes-and-half-close-at-idle-timeout"],
            &["raw/9.1/idle-timeout", "raw/7.3/incomplete-at-eof-copied"],
        );
    }
}

#[test]
fn a_framed_only_server_closing_raw_clients_at_once_is_caught() {
    let config = ServerConfig {
        mode: ServerMode::Framed,
        ..ServerConfig::default()
    };
    check_bug(
        EndBug::FramedOnlyClosesRawAtOnce,
        config,
        None,
        |options| options.server_mode = ServerMode::Framed,
        &["framed/9.2/framed-only-half-closes-a-raw-client"],
        &["framed/2.2/framed-only-closes-raw"],
    );
}

#[test]
fn a_busy_wait_as_short_as_the_linger_is_caught() {
    check_bug(
        EndBug::BusyWaitIsTheLinger,
        ServerConfig::default(),
        Some(2),
        |options| options.max_connections = Some(2),
        &["framed/9.3/busy-for-a-late-preface"],
        &["framed/9.3/busy-at-the-limit"],
    );
}

#[test]
fn our_udp_rate_limit_is_seen_and_none_is_a_warning() {
    let server = OurServer::start();
    let mut told = options(server.addr, &["udp/8.6", "udp/10"]);
    told.udp = true;
    let report = run(&told);
    assert_eq!(
        report.summary(),
        "3 passed, 0 failed, 0 skipped",
        "{}",
        report.render_failures()
    );
    assert!(
        report.results.iter().all(|r| r.warnings.is_empty()),
        "{:?}",
        report.results
    );

    // Answers every datagram, however many: a SHOULD broken, a warning.
    let responder = BrokenUdp::start(Bug::NoPreface);
    let mut told = options(responder.addr, &["udp/8.6/rate-limit-per-source"]);
    told.udp = true;
    let report = run(&told);
    assert_all_passed(&report);
    assert_eq!(report.results[0].warnings.len(), 1, "{:?}", report.results);
    assert!(
        report.results[0].warnings[0].contains("SHOULD limit"),
        "{}",
        report.results[0].warnings[0]
    );
}

#[test]
fn unicode_16_skips_only_the_cases_mapped_in_17() {
    let server = OurServer::start();
    let mut told = options(server.addr, &["framed/10", "raw/10"]);
    told.unicode = Some("16.0".into());
    let report = run(&told);
    assert_eq!(
        report.summary(),
        "2 passed, 0 failed, 2 skipped",
        "{}",
        report.render_failures()
    );
    for result in &report.results {
        assert_eq!(
            result.failed() || result.name.ends_with("unicode-16-mappings"),
            !matches!(
                result.outcome,
                upcase_cli::conform::CaseOutcome::Skipped { .. }
            ),
            "{}",
            result.name
        );
    }
    told.udp = true;
    told.filters = vec!["udp/10".into()];
    assert_eq!(run(&told).summary(), "1 passed, 0 failed, 1 skipped");
}
