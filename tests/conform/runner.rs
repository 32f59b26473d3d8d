//! `upcase conform --server-cmd`: the runner starts `upcase serve` itself,
//! and reports what a server it started gets wrong about its own life:
//! no BYE at SIGTERM, dying during a case, not starting again.

use std::path::PathBuf;

use super::options;
use upcase_cli::conform::{CaseOutcome, SuiteReport, run_managed};

fn upcase() -> &'static str {
    env!("CARGO_BIN_EXE_upcase")
}

fn run(template: &str, filters: &[&str]) -> SuiteReport {
    let base = options(([127, 0, 0, 1], 0).into(), filters);
    run_managed(template, &base, |_| {}).expect("the server starts")
}

fn failure_of<'a>(report: &'a SuiteReport, name: &str) -> &'a str {
    match &report
        .results
        .iter()
        .find(|r| r.name == name)
        .expect(name)
        .outcome
    {
        CaseOutcome::Failed(failure) => &failure.message,
        other => panic!("{name}: {other:?}\n{}", report.render_failures()),
    }
}

/// A file name for a flag the shell wrappers below leave, unique per test.
fn flag_file(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("upcase-runner-{test}-{}", std::process::id()))
}

#[test]
fn upcase_serve_passes_every_option_set_and_the_runner_cases() {
    let template = format!("{} serve --listen {{addr}}", upcase());
    let report = run(
        &template,
        &["framed/5.4", "framed/9", "raw/7.3", "framed/2.2"],
    );
    assert!(report.all_passed(), "{}", report.render_failures());
    let ran: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
    for name in [
        "framed/5.4/shutdown-answers-then-bye",
        "framed/9.2/restart-on-the-same-port",
        "framed/9.1/idle-timeout",
        "framed/9.3/busy-at-the-limit",
        "framed/9.2/framed-only-half-closes-a-raw-client",
        "raw/7.3/held-bytes-and-half-close-at-idle-timeout",
    ] {
        assert!(ran.contains(&name), "{name} did not run: {ran:?}");
    }
    assert!(
        report
            .results
            .iter()
            .all(|r| !matches!(r.outcome, CaseOutcome::Skipped { .. })),
        "every option set was started: {}",
        report.summary()
    );
}

#[test]
fn a_server_that_exits_at_sigterm_without_bye_fails_the_shutdown_case() {
    // The wrapper takes SIGTERM and kills the server outright: no BYE.
    let template = format!(
        "sh -c '{} serve --listen {{addr}} & pid=$!; trap \"kill -9 $pid; exit 3\" TERM; wait'",
        upcase()
    );
    let report = run(&template, &["framed/5.4/shutdown-answers-then-bye"]);
    let message = failure_of(&report, "framed/5.4/shutdown-answers-then-bye");
    // Killed before or after it answered the requests: no BYE either way.
    assert!(
        message.contains("BYE") || message.contains("of 20, received before SIGTERM"),
        "{message}"
    );
}

#[test]
fn a_server_that_dies_during_a_case_is_reported_with_its_status_and_stderr() {
    // Killed once it has logged its 8th connection, whenever that comes.
    let template = format!(
        "sh -c 'log=$(mktemp); {} serve --listen {{addr}} 2>$log & pid=$!; while [ $(grep -c \" connected to \" $log) -lt 8 ]; do sleep 0.05; done; kill -9 $pid; rm -f $log; echo dying now >&2; exit 7'",
        upcase()
    );
    let report = run(
        &template,
        &["framed/11", "framed/5.6", "framed/6", "framed/3"],
    );
    let notices: Vec<&str> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            CaseOutcome::Failed(failure) if failure.message.contains("exited during the case") => {
                Some(failure.message.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(!notices.is_empty(), "{}", report.render_failures());
    assert!(
        notices[0].contains("exit status: 7") && notices[0].contains("dying now"),
        "{}",
        notices[0]
    );
}

#[test]
fn a_server_that_cannot_start_again_on_its_port_is_reported() {
    // Starts once; a second start fails as a server without SO_REUSEADDR
    // does while its port holds a TIME_WAIT.
    let flag = flag_file("restart");
    let _ = std::fs::remove_file(&flag);
    let template = format!(
        "sh -c 'if [ -e {flag} ]; then echo \"bind: Address already in use\" >&2; exit 1; fi; touch {flag}; exec {} serve --listen {{addr}}'",
        upcase(),
        flag = flag.display()
    );
    let report = run(&template, &["framed/9.2/restart-on-the-same-port"]);
    let _ = std::fs::remove_file(&flag);
    let message = failure_of(&report, "framed/9.2/restart-on-the-same-port");
    assert!(
        message.contains("could not start again") && message.contains("Address already in use"),
        "{message}"
    );
}
