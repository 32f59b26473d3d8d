//! The conformance suite must pass against our server and fail, in the
//! right cases, against deliberately broken ones.

#[path = "conform/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use harness::{Flavor, TestServer};
use upcase::conform::{self, Options, Outcome, Report, SelectError};
use upcase::conn::ServerConfig;

fn options(server: &TestServer, filters: &[&str]) -> Options {
    let mut options = Options::new(server.addr);
    options.filters = filters.iter().map(|f| f.to_string()).collect();
    options
}

fn names(report: &Report, pick: impl Fn(&Outcome) -> bool) -> BTreeSet<String> {
    report
        .results
        .iter()
        .filter(|r| pick(&r.outcome))
        .map(|r| r.name.clone())
        .collect()
}

fn failed(report: &Report) -> BTreeSet<String> {
    names(report, |o| matches!(o, Outcome::Failed(_)))
}

fn passed(report: &Report) -> BTreeSet<String> {
    names(report, |o| matches!(o, Outcome::Passed))
}

fn explain(report: &Report) -> String {
    report
        .results
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.render(&report.unicode_version, true))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run `filters` against a broken server; require every case in `must_fail`
/// to fail and every case in `must_pass` to pass.
fn check_broken(flavor: Flavor, filters: &[&str], must_fail: &[&str], must_pass: &[&str]) {
    let server = TestServer::start(flavor, ServerConfig::default());
    let report = conform::run(&options(&server, filters)).expect("filters match");
    let failed = failed(&report);
    let passed = passed(&report);
    for name in must_fail {
        assert!(
            failed.contains(*name),
            "{flavor:?}: {name} should fail; failed: {failed:?}"
        );
    }
    for name in must_pass {
        assert!(
            passed.contains(*name),
            "{flavor:?}: {name} should pass; failures:\n{}",
            explain(&report)
        );
    }
}

#[test]
fn our_server_passes_every_tcp_case() {
    let server = TestServer::start(Flavor::Correct, ServerConfig::default());
    let report = conform::run(&options(&server, &[])).expect("no filters");
    assert!(report.all_passed(), "failures:\n{}", explain(&report));
    let skipped = names(&report, |o| matches!(o, Outcome::Skipped { .. }));
    let expected_skips: BTreeSet<String> = [
        "raw/7.4/ascii-option",
        "framed/9.1/idle-timeout",
        "raw/9.1/idle-timeout",
    ]
    .map(String::from)
    .into();
    assert_eq!(skipped, expected_skips);
}

#[test]
fn our_server_passes_the_idle_timeout_cases() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = TestServer::start(Flavor::Correct, config);
    let mut options = options(&server, &["framed/9", "raw/9"]);
    options.idle_timeout = Some(Duration::from_secs(1));
    let report = conform::run(&options).expect("filters match");
    assert_eq!(
        report.summary(),
        "2 passed, 0 failed, 0 skipped",
        "{}",
        explain(&report)
    );
}

#[test]
fn ascii_raw_server_passes_the_ascii_case_and_fails_unicode_ones() {
    let server = TestServer::start(Flavor::Correct, harness::ascii_config());
    let mut ascii = options(&server, &["raw/7"]);
    ascii.raw_ascii = true;
    let report = conform::run(&ascii).expect("filters match");
    assert_eq!(
        passed(&report),
        BTreeSet::from(["raw/7.4/ascii-option".to_string()])
    );
    assert!(failed(&report).is_empty(), "{}", explain(&report));

    // Told nothing, the suite expects Unicode raw mode and notices.
    let report = conform::run(&options(&server, &["raw/7.1/utf8-classes"])).expect("filters match");
    assert!(!report.all_passed());
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
    let mut udp = options;
    udp.udp = true;
    assert_eq!(
        conform::select(&udp).unwrap_err(),
        SelectError::Empty { transport: "UDP" }
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
    let server = TestServer::start(Flavor::Correct, ServerConfig::default());
    let addr = server.addr.to_string();
    let dir = std::env::temp_dir().join(format!("upcase-conform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("report.xml");
    let json = dir.join("report.json");

    let pass = upcase()
        .args(["conform", &addr, "framed/2", "--junit"])
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
    assert_eq!(no_match.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_match.stderr)
            .contains("no case name starts with \"framed/99\"")
    );

    let udp = upcase().args(["conform", &addr, "--udp"]).output().unwrap();
    assert_eq!(udp.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&udp.stderr).contains("no UDP cases yet"));

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
        listing.contains("framed/9.1/idle-timeout [needs --idle-timeout]"),
        "{listing}"
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
