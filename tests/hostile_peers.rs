//! `upcase conform`, `bench` and `client` against a server that misbehaves
//! on purpose (tests/support/hostile_server.rs, issue 19): each tool, each
//! misbehaviour. A tool must end and say what was wrong: memory is held by
//! a receive limit (asserted through the limit error it reports, not by
//! sampling memory), time by a deadline per reply (asserted generously:
//! the tool ended, well before the trickle could have finished, and named
//! the late reply), and the server's bytes never reach the terminal raw.
//!
//! Plus the conventions the three share: `-` for stdout, a closed stdout,
//! Ctrl-C in bench, one table of exit codes.

#[path = "support/hostile_server.rs"]
mod hostile_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hostile_server::{HOSTILE_MESSAGE, HostileServer, Misbehaviour};

/// How long any tool may take here before the test calls it hung: far over
/// every deadline involved (a loaded 2-core machine), far under what the
/// trickled replies would take to arrive in full (a minute and more).
const HUNG: Duration = Duration::from_secs(45);

/// What a finished tool left.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Both streams, for failure messages.
    fn shown(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Nothing the server sent reached either stream raw: no ESC, BEL or
    /// bidi override.
    fn assert_no_raw_escapes(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains(['\x1b', '\x07', '\u{202e}']),
                "raw escapes: {}",
                self.shown()
            );
        }
    }
}

/// Run `upcase ARGS` with `input` on stdin; fail the test if it has not
/// ended within [`HUNG`] (it is killed either way).
fn upcase(args: &[&str], input: &[u8]) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    // The tool may end before reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    let status = wait_or_kill(&mut child, HUNG);
    let ran = Ran {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(ran.status.code().is_some(), "killed: {}", ran.shown());
    ran
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Wait for `child`; past `limit`, kill it (the status then has no code).
fn wait_or_kill(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn server(misbehaviour: Misbehaviour) -> (HostileServer, String) {
    let server = HostileServer::start(misbehaviour);
    let addr = server.addr.to_string();
    (server, addr)
}

/// Run `upcase ARGS` against a server that misbehaves so, `ADDR` in
/// `args` standing for its address.
fn against(misbehaviour: Misbehaviour, args: &[&str], input: &[u8]) -> Ran {
    let (_server, addr) = server(misbehaviour);
    let args: Vec<&str> = args
        .iter()
        .map(|&arg| if arg == "ADDR" { addr.as_str() } else { arg })
        .collect();
    upcase(&args, input)
}

/// [`against`], which must fail (status 1) saying `what`.
fn fails_saying(misbehaviour: Misbehaviour, args: &[&str], input: &[u8], what: &str) -> Ran {
    let ran = against(misbehaviour, args, input);
    assert_failed_saying(&ran, what);
    ran
}

/// `ran` failed (status 1) and said `what`.
fn assert_failed_saying(ran: &Ran, what: &str) {
    assert_eq!(ran.code(), Some(1), "{}", ran.shown());
    assert!(
        ran.stdout.contains(what) || ran.stderr.contains(what),
        "expected {what:?} in {}",
        ran.shown()
    );
}

// conform

#[test]
fn conform_stops_reading_an_endless_frame_at_its_receive_limit() {
    fails_saying(
        Misbehaviour::EndlessFrame,
        &["conform", "ADDR", "framed/5.1/ascii", "--timeout", "2"],
        b"",
        "announcing 4294967280 data bytes, over the suite's receive limit",
    );
}

#[test]
fn conform_rejects_a_header_over_the_limit_of_its_request() {
    fails_saying(
        Misbehaviour::OverLimitHeader,
        &["conform", "ADDR", "framed/5.1/ascii", "--timeout", "2"],
        b"",
        "over the suite's receive limit",
    );
}

#[test]
fn conform_stops_reading_an_endless_raw_reply() {
    fails_saying(
        Misbehaviour::EndlessRawLine,
        &["conform", "ADDR", "raw/2.1", "--timeout", "2"],
        b"",
        "more than 3 × the 6 bytes sent can produce",
    );
}

#[test]
fn conform_ends_a_trickled_reply_at_its_deadline() {
    let (_server, addr) = server(Misbehaviour::Trickle);
    let started = Instant::now();
    let ran = upcase(
        &["conform", &addr, "framed/5.1/ascii", "--timeout", "2"],
        b"",
    );
    // The preface and the reply, at 1 byte/s, would take over a minute.
    assert!(started.elapsed() < HUNG);
    assert_failed_saying(&ran, "no whole reply within 2.0 s of it being owed");
}

#[test]
fn conform_ends_a_case_of_slow_replies_at_the_cases_deadline() {
    // Every reply within the 0.5 s timeout, but dozens of them: the case's
    // own deadline (10 timeouts) ends it.
    let started = Instant::now();
    fails_saying(
        Misbehaviour::SlowReplies,
        &[
            "conform",
            "ADDR",
            "raw/7.2/split-at-every-offset",
            "--timeout",
            "0.5",
        ],
        b"",
        "the case's deadline (5.0 s, see --list) passed",
    );
    assert!(started.elapsed() < HUNG);
}

/// Run the whole TCP suite against `misbehaviour`: it fails after the
/// first case with `verdict`, and skips the rest.
fn assert_early_verdict(misbehaviour: Misbehaviour, verdict: &str) -> Ran {
    let (_server, addr) = server(misbehaviour);
    let ran = upcase(&["conform", &addr, "--timeout", "1"], b"");
    assert_failed_saying(&ran, &format!("early verdict: {verdict}"));
    assert!(
        ran.stdout.contains("0 passed, 1 failed, "),
        "{}",
        ran.shown()
    );
    ran
}

#[test]
fn conform_against_a_silent_listener_gives_an_early_verdict_and_skips_the_rest() {
    let ran = assert_early_verdict(
        Misbehaviour::SilentAccept,
        "not an UPCASE/1 server: it accepts connections but answered neither the preface nor a raw line",
    );
    assert!(ran.stdout.contains("is the port right"), "{}", ran.shown());
}

#[test]
fn conform_against_an_http_server_gives_an_early_verdict_and_skips_the_rest() {
    assert_early_verdict(
        Misbehaviour::Http,
        "not an UPCASE/1 server but an HTTP server (it answered \"HTTP/1.0 400 Bad request\")",
    );
}

#[test]
fn conform_against_a_plain_echo_gives_an_early_verdict() {
    assert_early_verdict(
        Misbehaviour::Echo,
        "not an UPCASE/1 server but a plain echo (it sent the preface and a PING frame back unchanged, and a raw line too)",
    );
}

/// Each datagram case has a socket of its own per datagram: a duplicate
/// reply can never be taken for the next one.
#[test]
fn conform_over_udp_is_not_fooled_by_duplicated_replies() {
    let ran = against(
        Misbehaviour::DuplicateUdp,
        &["conform", "ADDR", "--udp", "udp/8.3", "udp/8.2"],
        b"",
    );
    assert_eq!(ran.code(), Some(0), "{}", ran.shown());
    assert!(ran.stdout.contains(" passed, 0 failed"), "{}", ran.shown());
}

#[test]
fn conform_shows_an_error_message_escaped() {
    let ran = fails_saying(
        Misbehaviour::EscapesInError,
        &["conform", "ADDR", "framed/5.1/ascii", "-v"],
        b"",
        r"owned\x1b]0;pwned\x07\x1b[2J\u{202e}txt",
    );
    ran.assert_no_raw_escapes();
}

// client

#[test]
fn client_stops_reading_an_endless_frame_at_its_receive_limit() {
    fails_saying(
        Misbehaviour::EndlessFrame,
        &["client", "ADDR"],
        b"hi\n",
        "the server sent a TEXT frame of 4294967280 bytes, over the limit of 15",
    );
}

#[test]
fn client_rejects_a_header_over_the_limit_of_its_request() {
    fails_saying(
        Misbehaviour::OverLimitHeader,
        &["client", "ADDR"],
        b"hi\n",
        "TEXT frame of 16 bytes, over the limit of 15",
    );
}

#[test]
fn client_raw_stops_reading_an_endless_line() {
    fails_saying(
        Misbehaviour::EndlessRawLine,
        &["client", "--raw", "ADDR"],
        b"hi\n",
        "more than the 9 the line can produce",
    );
}

#[test]
fn client_ends_a_trickled_reply_at_its_deadline() {
    let (_server, addr) = server(Misbehaviour::Trickle);
    for raw in [false, true] {
        let mut args = vec!["client", "--timeout", "2", &addr];
        if raw {
            args.insert(1, "--raw");
        }
        let started = Instant::now();
        // Framed, the preface and reply are 60 bytes: a minute at 1 byte/s.
        // Raw, a 40-byte line's reply is as long.
        let ran = upcase(&args, b"a line of forty bytes, to take a while.\n");
        assert!(started.elapsed() < HUNG);
        assert_failed_saying(&ran, "no answer from the server within 2s");
        assert_failed_saying(&ran, "the reply to line 1 was not whole within 2.0 s");
    }
}

#[test]
fn client_against_a_silent_server_times_out() {
    fails_saying(
        Misbehaviour::SilentAccept,
        &["client", "--timeout", "1", "ADDR"],
        b"hi\n",
        "no answer from the server within 1s",
    );
}

#[test]
fn client_against_an_http_server_says_it_is_no_upcase_server() {
    fails_saying(
        Misbehaviour::Http,
        &["client", "--timeout", "2", "ADDR"],
        b"hi\n",
        "did not answer with the UPCASE preface",
    );
}

#[test]
fn client_over_udp_never_prints_a_duplicate_as_the_next_answer() {
    let (_server, addr) = server(Misbehaviour::DuplicateUdp);
    for raw in [false, true] {
        let mut args = vec!["client", "--udp", &addr];
        if raw {
            args.insert(1, "--raw");
        }
        let ran = upcase(&args, b"one\ntwo\nthree\none\n");
        assert_eq!(ran.code(), Some(0), "{}", ran.shown());
        assert_eq!(ran.stdout, "ONE\nTWO\nTHREE\nONE\n", "{}", ran.shown());
        assert!(
            ran.stderr.contains("duplicate or late reply datagram"),
            "{}",
            ran.shown()
        );
    }
}

#[test]
fn client_shows_an_error_message_escaped() {
    let ran = fails_saying(
        Misbehaviour::EscapesInError,
        &["client", "ADDR"],
        b"hi\n",
        r"owned\x1b]0;pwned\x07\x1b[2J\u{202e}txt",
    );
    ran.assert_no_raw_escapes();
    assert!(HOSTILE_MESSAGE.contains('\x1b'));
}

// bench

/// `upcase bench ADDR --duration 1 --timeout 2 --json` plus `extra`, and its report.
fn bench(addr: &str, extra: &[&str]) -> (Ran, serde_json::Value) {
    let mut args = vec!["bench", addr, "--duration", "1", "--timeout", "2", "--json"];
    args.extend_from_slice(extra);
    let ran = upcase(&args, b"");
    let report = serde_json::from_str(ran.stdout.trim()).unwrap_or_else(|e| {
        panic!("no JSON report ({e}): {}", ran.shown());
    });
    (ran, report)
}

/// The first error message of a bench report.
fn first_error(report: &serde_json::Value) -> String {
    report["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `bench` against `misbehaviour` fails (status 1) and its first error says `what`.
fn assert_bench_fails_saying(misbehaviour: Misbehaviour, extra: &[&str], what: &str) {
    let (_server, addr) = server(misbehaviour);
    let (ran, report) = bench(&addr, extra);
    assert_eq!(ran.code(), Some(1), "{}", ran.shown());
    assert!(first_error(&report).contains(what), "{}", ran.shown());
}

#[test]
fn bench_stops_reading_an_endless_frame_at_its_receive_limit() {
    assert_bench_fails_saying(
        Misbehaviour::EndlessFrame,
        &["--mode", "framed"],
        "announces 4294967280 data bytes, over the 201",
    );
}

#[test]
fn bench_rejects_a_header_over_the_limit_of_its_request() {
    assert_bench_fails_saying(
        Misbehaviour::OverLimitHeader,
        &["--mode", "framed"],
        "announces 202 data bytes, over the 201",
    );
}

#[test]
fn bench_stops_reading_an_endless_raw_line() {
    assert_bench_fails_saying(
        Misbehaviour::EndlessRawLine,
        &[],
        "without a newline, more than the 192",
    );
}

#[test]
fn bench_ends_a_trickled_run_by_its_duration_and_one_timeout() {
    let (_server, addr) = server(Misbehaviour::Trickle);
    for mode in ["raw", "framed"] {
        let started = Instant::now();
        let (ran, report) = bench(&addr, &["--mode", mode, "--pipeline", "4"]);
        assert!(started.elapsed() < HUNG);
        assert_eq!(ran.code(), Some(1), "{}", ran.shown());
        assert!(
            first_error(&report).contains("no whole reply within 2 s of it being owed"),
            "{mode}: {}",
            ran.shown()
        );
        // Connected at once, then 1 s of run and 2 s for the reply: the
        // report's own clock, generously.
        let elapsed = report["elapsed_s"].as_f64().unwrap();
        assert!(elapsed < 20.0, "{mode}: {}", ran.shown());
    }
}

#[test]
fn bench_against_a_silent_server_reports_the_late_reply() {
    assert_bench_fails_saying(Misbehaviour::SilentAccept, &[], "no whole reply within 2 s");
}

#[test]
fn bench_against_an_http_server_counts_what_it_got_consistently() {
    let (_server, addr) = server(Misbehaviour::Http);
    let (ran, report) = bench(&addr, &[]);
    assert_eq!(ran.code(), Some(1), "{}", ran.shown());
    let (replies, wrong) = (
        report["requests"].as_u64().unwrap(),
        report["wrong_replies"].as_u64().unwrap(),
    );
    assert!(wrong <= replies, "{}", ran.shown());
    assert_eq!(report["failed_connections"], 1, "{}", ran.shown());
}

#[test]
fn bench_over_udp_counts_duplicates_as_late_not_wrong() {
    let (_server, addr) = server(Misbehaviour::DuplicateUdp);
    let (ran, report) = bench(&addr, &["--udp", "--max-loss", "50"]);
    assert_eq!(ran.code(), Some(0), "{}", ran.shown());
    assert_eq!(report["wrong_replies"], 0, "{}", ran.shown());
    assert!(
        report["late_replies"].as_u64().unwrap() > 0,
        "{}",
        ran.shown()
    );
}

#[test]
fn bench_shows_an_error_message_escaped() {
    let ran = fails_saying(
        Misbehaviour::EscapesInError,
        &["bench", "ADDR", "--mode", "framed", "--duration", "1"],
        b"",
        r"owned\x1b]0;pwned\x07\x1b[2J\u{202e}txt",
    );
    ran.assert_no_raw_escapes();
}

// conventions

#[test]
fn a_closed_stdout_ends_each_tool_quietly() {
    let (_server, addr) = server(Misbehaviour::DuplicateUdp);
    let runs: [&[&str]; 5] = [
        &["conform", "--list"],
        &["man"],
        &["completions", "bash"],
        // A generous timeout: on a loaded machine a case that fails for
        // time would exit 1 before the pipe is seen closed.
        &["conform", &addr, "framed/5.1", "--timeout", "30"],
        &["client", &addr, "--timeout", "30"],
    ];
    for args in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = read_all(child.stderr.take().unwrap());
        let mut stdin = child.stdin.take().unwrap();
        let input = std::thread::spawn(move || {
            let _ = stdin.write_all(&b"more and more lines\n".repeat(10_000));
        });
        // `| head -1`: read one line, then close the pipe (the tool's first
        // line comes at once: the test cannot hang here).
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let status = wait_or_kill(&mut child, HUNG);
        input.join().unwrap();
        let stderr = stderr.join().unwrap();
        assert!(
            matches!(status.code(), Some(0 | 141)),
            "{args:?}: {status:?}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_dash_writes_conform_reports_to_stdout() {
    let server = hostile_server::real_server();
    let addr = server.local_addrs()[0].to_string();
    let ran = upcase(&["conform", &addr, "framed/5.1/ascii", "--json", "-"], b"");
    assert_eq!(ran.code(), Some(0), "{}", ran.shown());
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap_or_else(|e| {
        panic!("stdout is not the JSON report ({e}): {}", ran.shown());
    });
    assert_eq!(report["results"][0]["outcome"]["status"], "passed");
    // The progress went to stderr.
    assert!(ran.stderr.contains("✔ framed/5.1/ascii"), "{}", ran.shown());
    assert!(!std::path::Path::new("-").exists());
    server.shutdown();
}

#[test]
fn ctrl_c_stops_bench_and_prints_the_partial_report() {
    let (_server, addr) = server(Misbehaviour::DuplicateUdp);
    let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args(["bench", &addr, "--duration", "60", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = wait_or_kill(&mut child, HUNG);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}\n{stderr}"));
    assert_eq!(report["interrupted"], true, "{stdout}");
    assert!(report["requests"].as_u64().unwrap() > 0, "{stdout}");
    assert!(report["elapsed_s"].as_f64().unwrap() < 50.0, "{stdout}");
}

#[test]
fn no_server_is_exit_2_for_each_tool() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    for args in [
        vec!["conform", &addr, "--timeout", "1"],
        vec!["client", &addr],
        vec!["bench", &addr, "--duration", "1"],
    ] {
        let ran = upcase(&args, b"hi\n");
        assert_eq!(ran.code(), Some(2), "{args:?}: {}", ran.shown());
    }
}

#[test]
fn help_shows_the_exit_codes_of_the_three_tools() {
    let ran = upcase(&["help"], b"");
    assert_eq!(ran.code(), Some(0), "{}", ran.shown());
    for line in [
        "Exit status of client, conform and bench:",
        "1    the peer failed",
        "2    bad usage, or nothing to talk to",
    ] {
        assert!(ran.stdout.contains(line), "{line:?}: {}", ran.shown());
    }
}
