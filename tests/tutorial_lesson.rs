//! The lesson README.md shows in "What conform finds in the tutorial's
//! server": `upcase conform --server-mode raw --unicode 14.0` against the
//! Python tutorial's server (tests/interop/tutorial_server.py) fails exactly
//! the cases of its bugs — code points split across reads, invalid bytes,
//! an incomplete code point at end of input — and passes the rest; against
//! the tutorial's one-client server, the first case gets the only
//! connection; and `upcase client` without `--raw` says to use it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the tutorial's server may take to say it listens, and the
/// commands to finish, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// `python3 tests/interop/tutorial_server.py 127.0.0.1 0 [--forever]`,
/// killed when dropped; its stderr (a crash's traceback) is kept and shown
/// when the test fails.
struct TutorialServer {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl TutorialServer {
    fn start(args: &[&str]) -> TutorialServer {
        let script = format!(
            "{}/../tests/interop/tutorial_server.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("python3")
            .args([script.as_str(), "127.0.0.1", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs (these tests need it)");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let (lines, first) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            // Keep reading, so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut server = TutorialServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let line = first.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            panic!(
                "the tutorial's server did not say it listens within {DEADLINE:?} ({e}); its stderr:\n{}",
                server.stderr()
            )
        });
        let port: u16 = line
            .strip_prefix("listening on ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        server.addr.set_port(port);
        server
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether its stderr says `needle` within [`DEADLINE`] (the pipe is
    /// read by a thread of its own, which may lag behind).
    fn stderr_says(&self, needle: &str) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while !self.stderr().contains(needle) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for TutorialServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the tutorial's server's stderr ---\n{}", self.stderr());
        }
    }
}

/// Run `upcase ARGS`, with stdin closed, killed past [`DEADLINE`].
fn upcase(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("upcase runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("upcase {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

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

#[test]
fn conform_fails_exactly_the_tutorial_servers_utf8_bugs() {
    let server = TutorialServer::start(&["--forever"]);
    let addr = server.addr.to_string();
    let out = upcase(
        &[
            "conform",
            &addr,
            "--server-mode",
            "raw",
            "--unicode",
            "14.0",
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{shown}");
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
    let out = upcase(
        &[
            "conform",
            &addr,
            "raw/2.1/first-differing-byte-means-raw",
            "raw/7.1/invalid-bytes-kept",
            "raw/7.3/incomplete-at-eof-copied",
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No probe connection spent the server's one accept: the first case
    // (one connection) talked to it and passed.
    assert_eq!(out.status.code(), Some(1), "{shown}");
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
