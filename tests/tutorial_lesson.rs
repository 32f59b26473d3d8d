//! The lesson README.md shows in "What conform finds in the tutorial's
//! server": `upcase conform --server-mode raw --unicode 14.0` against the
//! Python tutorial's server (tests/interop/tutorial_server.py) fails exactly
//! the cases of its bugs — code points split across reads, invalid bytes,
//! an incomplete code point at end of input — and passes the rest; against
//! the tutorial's one-client server, the first case gets the only
//! connection; and `upcase client` without `--raw` says to use it.

#[path = "support/tutorial_server.rs"]
mod tutorial_server;

use tutorial_server::{TutorialServer, upcase};

/// The names of the cases on lines starting with `mark` (`✘`, `✔`).
fn cases_marked(stdout: &str, mark: char) -> Vec<String> {
    let mut names: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix(mark))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// `upcase conform ARGS`: its exit code, its stdout, and both its streams
/// to show when an assertion fails.
fn conform(args: &[&str]) -> (Option<i32>, String, String) {
    let out = upcase(&[&["conform"], args].concat(), b"");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout, shown)
}

#[test]
fn conform_fails_exactly_the_tutorial_servers_utf8_bugs() {
    let server = TutorialServer::start(&["--forever"]);
    let addr = server.addr.to_string();
    let (code, stdout, shown) = conform(&[&addr, "--server-mode", "raw", "--unicode", "14.0"]);
    assert_eq!(code, Some(1), "{shown}");
    // Each of these sends a byte that is not UTF-8 (the preface's 0xC0, a
    // lone continuation byte), a code point split across two writes, or one
    // left incomplete at the end: the tutorial's `recv(1024).decode()`
    // raises and the connection ends without a reply.
    assert_eq!(
        cases_marked(&stdout, '✘'),
        [
            "raw/2.1/preface-after-start-is-text",
            "raw/2.1/preface-prefix-then-mismatch",
            "raw/2.1/short-input-then-eof",
            "raw/2.2/raw-only-preface-echoed",
            "raw/7.1/invalid-bytes-kept",
            "raw/7.2/split-at-every-offset",
            "raw/7.3/incomplete-at-eof-copied",
        ],
        "{shown}"
    );
    // Valid UTF-8 in one read is what the tutorial gets right.
    assert_eq!(
        cases_marked(&stdout, '✔'),
        [
            "raw/2.1/first-differing-byte-means-raw",
            "raw/7.1/utf8-classes-upper-cased",
            "raw/7.2/interactive-replies",
        ],
        "{shown}"
    );
    assert!(
        stdout.contains("does not conform to UPCASE/1: 7 cases failed"),
        "{shown}"
    );
    // Both READMEs show this run: its command, and the same ✔ and ✘.
    for (readme, heading) in [
        (
            "README.md",
            "## What conform finds in the tutorial's server",
        ),
        ("README.zh-CN.md", "## 用 conform 检查教程的服务器"),
    ] {
        let path = format!("{}/../{readme}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let section = text
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("{readme} has no {heading:?}"));
        let section = section.split("\n## ").next().unwrap_or_default();
        assert!(
            section.contains("tutorial_server.py 127.0.0.1 9998 --forever")
                && section.contains("conform 127.0.0.1:9998 --server-mode raw --unicode 14.0"),
            "{readme}: the commands differ from the test's"
        );
        for mark in ['✘', '✔'] {
            assert_eq!(
                cases_marked(section, mark),
                cases_marked(&stdout, mark),
                "{readme}'s report differs from the run's {mark}: {shown}"
            );
        }
    }
    assert!(
        server.stderr_says("UnicodeDecodeError"),
        "the failures are the tutorial's decode() raising; its stderr:\n{}",
        server.stderr()
    );
}

#[test]
fn the_one_client_tutorial_server_gives_its_only_connection_to_the_first_case() {
    let server = TutorialServer::start(&[]);
    let addr = server.addr.to_string();
    let (code, stdout, shown) = conform(&[
        &addr,
        "raw/2.1/first-differing-byte-means-raw",
        "raw/7.1/invalid-bytes-kept",
        "raw/7.3/incomplete-at-eof-copied",
        // A second case that reached the listen queue before the
        // server exited waits for that exit (its reset) this long at
        // most, so that the third one meets a closed port.
        "--timeout",
        "10",
    ]);
    // No probe connection spent the server's one accept: the first case
    // (one connection) talked to it and passed.
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        stdout.contains("✔ raw/2.1/first-differing-byte-means-raw"),
        "{shown}"
    );
    // The server has exited: the last case finds nobody there, and the
    // report says why. (The second may still have reached the kernel's
    // backlog before the server closed its socket.)
    assert!(
        stdout.contains("✘ raw/7.3/incomplete-at-eof-copied"),
        "{shown}"
    );
    assert!(
        stdout.contains("note: the server refused connections after raw/"),
        "{shown}"
    );
}

#[test]
fn the_framed_client_hints_raw_when_the_tutorial_server_closes_after_the_preface() {
    let server = TutorialServer::start(&[]);
    let out = upcase(
        &["client", "--timeout", "30", &server.addr.to_string()],
        b"hello\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint: for a raw-only server (the Python tutorial's, `nc -l`) use --raw"),
        "{stderr}"
    );
}
