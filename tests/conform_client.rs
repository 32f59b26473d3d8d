//! `upcase conform --client` must pass correct clients (`upcase client`, a
//! Python client following the contract) and catch, case by case, a client
//! with one deliberate bug (`tests/conform_client/client.py --bug NAME`),
//! as tests/conform.rs does for servers. The example client's run is
//! tests/example_client.rs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use upcase_cli::conform::client_suite::{self, ClientOptions, Flag};
use upcase_cli::conform::{CaseOutcome, SuiteReport};

fn upcase() -> String {
    env!("CARGO_BIN_EXE_upcase").to_string()
}

fn python_client() -> Vec<String> {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tests",
        "conform_client",
        "client.py",
    ]
    .iter()
    .collect();
    vec!["python3".into(), script.to_string_lossy().into_owned()]
}

fn run(command: Vec<String>, filters: &[&str], supports: &[Flag]) -> SuiteReport {
    let options = ClientOptions {
        command,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        supports: supports.to_vec(),
    };
    client_suite::run_with(&options, |_| {}).expect("the filters match")
}

fn names(report: &SuiteReport, pick: impl Fn(&CaseOutcome) -> bool) -> BTreeSet<String> {
    report.names_where(pick)
}

fn assert_all_passed(report: &SuiteReport) {
    assert!(
        report.all_passed(),
        "failures:\n{}",
        report.render_failures()
    );
}

#[test]
fn upcase_client_passes_every_case_with_every_flag() {
    let report = run(vec![upcase(), "client".into()], &[], &Flag::ALL);
    assert_all_passed(&report);
    assert_eq!(report.counts().2, 0, "nothing skipped");
    let warned: Vec<_> = report
        .results
        .iter()
        .filter(|r| !r.warnings.is_empty())
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
}

#[test]
fn upcase_client_passes_without_optional_flags_and_the_cases_that_need_them_are_skipped() {
    let report = run(vec![upcase(), "client".into()], &[], &[]);
    assert_all_passed(&report);
    let skipped = names(&report, |o| matches!(o, CaseOutcome::Skipped { .. }));
    let needing: BTreeSet<String> = client_suite::all_cases()
        .into_iter()
        .filter(|case| !case.needs.is_empty())
        .map(|case| case.name.to_string())
        .collect();
    assert_eq!(skipped, needing);
}

#[test]
fn the_python_client_passes_every_case() {
    let report = run(python_client(), &[], &Flag::ALL);
    assert_all_passed(&report);
    assert_eq!(report.counts().2, 0);
}

/// Each bug of client.py, and the cases that must fail because of it.
const BUGS: &[(&[&str], &[&str])] = &[
    (&["no-preface"], &["client/2.4/preface-first"]),
    (
        &["no-preface-check"],
        &["client/2.4/wrong-magic", "client/2.4/wrong-version"],
    ),
    (&["magic-only"], &["client/2.4/wrong-version"]),
    (
        &["one-read-preface"],
        &["client/2.4/server-preface-one-byte-per-write"],
    ),
    (
        &["no-type-check"],
        &[
            "client/2.4/wrong-reply-type",
            "client/8.2/udp-reply-of-wrong-type",
        ],
    ),
    (&["udp-no-preface"], &["client/8.2/udp-replies-printed"]),
    (
        &["udp-no-preface-check"],
        &["client/8.2/udp-reply-without-preface"],
    ),
    (
        &["udp-error-is-fatal"],
        &["client/8.2/udp-error-is-a-reply"],
    ),
    (&["no-more-check"], &["client/2.4/more-not-mirrored"]),
    (
        &["skip-until-bye"],
        &["client/2.4/reply-with-nothing-waiting"],
    ),
    (&["no-utf8-check"], &["client/2.4/text-reply-not-utf8"]),
    (
        &["bytes-length-unchecked"],
        &["client/2.4/bytes-reply-longer-than-request"],
    ),
    (
        &["no-reply-timeout"],
        &[
            "client/2.4/silent-server",
            "client/5.6/stalled-reply",
            "client/8.4/udp-no-reply",
        ],
    ),
    (
        &["swap-addresses"],
        &["client/3.2/request-addresses-unspecified-or-true"],
    ),
    (
        &["ipv4-compatible"],
        &["client/3.2/request-addresses-unspecified-or-true"],
    ),
    (&["ignore-reserved"], &["client/3.3/reserved-flag-bit"]),
    (&["accept-more-on-control"], &["client/3.3/more-on-error"]),
    (
        &["sends-error-on-failure"],
        &[
            "client/3.3/reserved-flag-bit",
            "client/2.4/wrong-reply-type",
        ],
    ),
    (
        &["limit-is-request-length"],
        &["client/3.4/text-reply-three-times-its-request"],
    ),
    (
        &["limit-after-data"],
        &["client/3.4/over-limit-decided-from-header"],
    ),
    (
        &["no-fragmenting"],
        &[
            "client/3.4/long-line-in-fragments-of-at-most-65536",
            "client/3.4/max-frame-option",
        ],
    ),
    (
        &["never-clear-more"],
        &[
            "client/3.4/long-line-in-fragments-of-at-most-65536",
            "client/3.4/max-frame-option",
        ],
    ),
    (
        &["no-join"],
        &[
            "client/3.4/long-line-in-fragments-of-at-most-65536",
            "client/3.4/max-frame-option",
        ],
    ),
    (
        &["one-read-frame"],
        &["client/3.5/reply-one-byte-per-write"],
    ),
    (&["accept-ping"], &["client/4.1/ping-from-server"]),
    (
        &["skip-unknown-type"],
        &["client/4.1/unknown-type-from-server"],
    ),
    (&["no-bye"], &["client/5.4/ends-with-bye-and-nothing-after"]),
    (
        &["ping-after-bye"],
        &["client/5.4/ends-with-bye-and-nothing-after"],
    ),
    (
        &["bye-data-is-fault"],
        &[
            "client/5.4/bye-reply-with-data",
            "client/5.4/server-bye-after-every-reply",
        ],
    ),
    (
        &["server-bye-is-normal"],
        &["client/5.4/server-bye-while-requests-wait"],
    ),
    (
        &["reject-reply-addresses"],
        &["client/5.5/reply-addresses-not-checked"],
    ),
    (&["short-timeout"], &["client/5.6/late-replies"]),
    (
        &["exit-zero-on-failure"],
        &[
            "client/6.5/fatal-error-then-close",
            "client/2.4/wrong-reply-type",
        ],
    ),
    (
        &["unknown-code-fatal"],
        &[
            "client/6.6/unknown-code-is-a-reply",
            "client/6.6/unknown-code-then-close",
        ],
    ),
    (&["short-error-skipped"], &["client/6.6/short-error"]),
    (
        &["idle-timeout-is-a-reply"],
        &["client/9.1/idle-timeout-answers-no-request"],
    ),
    (
        &["no-probe", "idle-timeout-is-a-reply"],
        &["client/9.3/busy-answers-no-request"],
    ),
];

#[test]
fn each_bug_fails_the_cases_that_catch_it() {
    let mut missed = Vec::new();
    for (bugs, cases) in BUGS {
        let mut command = python_client();
        for bug in *bugs {
            command.extend(["--bug".to_string(), bug.to_string()]);
        }
        let report = run(command, cases, &Flag::ALL);
        let failed = names(&report, |o| matches!(o, CaseOutcome::Failed(_)));
        let wanted: BTreeSet<String> = cases.iter().map(|c| c.to_string()).collect();
        if failed != wanted {
            missed.push(format!(
                "--bug {bugs:?}: failed {failed:?}, wanted {wanted:?}"
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

/// The probe is a SHOULD (SPEC.md §2.4, C3): without it, a raw server's
/// echo passes with a warning, not a failure.
#[test]
fn a_client_without_the_probe_gets_a_warning_against_a_raw_server() {
    let mut command = python_client();
    command.extend(["--bug".to_string(), "no-probe".to_string()]);
    let report = run(command, &["client/2.4/raw-server-echo"], &Flag::ALL);
    assert_all_passed(&report);
    let warnings = &report.results[0].warnings;
    assert!(
        warnings.len() == 1 && warnings[0].contains("SHOULD"),
        "{warnings:?}"
    );
}

/// Every case is caught by some bug above (the probe case by the warning).
#[test]
fn every_client_case_is_caught_by_a_bug() {
    let caught: BTreeSet<&str> = BUGS
        .iter()
        .flat_map(|(_, cases)| cases.iter().copied())
        .chain(["client/2.4/raw-server-echo"])
        .collect();
    let uncaught: Vec<_> = client_suite::all_cases()
        .into_iter()
        .map(|case| case.name)
        .filter(|name| !caught.contains(name))
        .collect();
    assert!(uncaught.is_empty(), "no bug catches {uncaught:?}");
}

#[test]
fn the_command_line_writes_every_report_and_exits_1_on_a_failure() {
    let dir = std::env::temp_dir().join(format!("conform-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (junit, json, html) = (dir.join("r.xml"), dir.join("r.json"), dir.join("r.html"));
    let mut args: Vec<String> = ["conform", "--client", "client/6.6/short-error", "--junit"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(junit.to_string_lossy().into_owned());
    args.push("--json".into());
    args.push(json.to_string_lossy().into_owned());
    args.push("--html".into());
    args.push(html.to_string_lossy().into_owned());
    args.push("--".into());
    args.extend(python_client());
    args.extend(["--bug".into(), "short-error-skipped".into()]);
    let output = Command::new(upcase()).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("✘ client/6.6/short-error"), "{stdout}");
    assert!(stdout.contains("expected: "), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(json["schema"], "upcase-conform-report", "{json}");
    assert_eq!(json["results"][0]["outcome"]["status"], "failed");
    let sent_error = |entry: &serde_json::Value| {
        entry["direction"] == "sent" && entry["text"].as_str().unwrap().starts_with("ERROR")
    };
    assert!(
        json["results"][0]["wire_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(sent_error),
        "{json}"
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("client/6.6/short-error"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}
