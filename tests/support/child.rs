//! Other programs run by the tests (haproxy, tshark, tcpdump, python3, a
//! child `upcase`), so that none of them makes a test flaky for a reason of
//! its own:
//!
//! - their stdout and stderr are kept ([`Pipe`]) and printed when the test
//!   fails (a [`Process`] dropped while its thread panics prints them; libtest
//!   shows that output with the failure);
//! - readiness (a port that accepts, or the program's own "ready" line) is
//!   awaited with a deadline a loaded 2-core machine meets ([`READY`]), and
//!   a program that exits first fails the test at once with its stderr;
//! - scratch files are removed however the test ends ([`TempPath`]).

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a program may take to become ready (listen, print its first
/// line). Generous: six engineers' builds share this machine's two cores.
pub const READY: Duration = Duration::from_secs(60);

/// How long a program run to completion ([`run`]) may take before it is
/// killed and the test fails with its output.
pub const RUN: Duration = Duration::from_secs(300);

/// One output stream of a child, drained line by line by a thread: kept
/// whole for [`Pipe::text`] and handed out line by line to
/// [`Pipe::next_line`]. Draining also means the child never blocks on a
/// full pipe.
pub struct Pipe {
    text: Arc<Mutex<String>>,
    lines: Receiver<String>,
    drain: Option<JoinHandle<()>>,
}

impl Pipe {
    /// Start draining `reader`.
    pub fn drain(reader: impl Read + Send + 'static) -> Pipe {
        let text = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let sink = Arc::clone(&text);
        let drain = std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut bytes = Vec::new();
            while let Ok(1..) = reader.read_until(b'\n', &mut bytes) {
                let line = String::from_utf8_lossy(&bytes).into_owned();
                sink.lock().unwrap().push_str(&line);
                // The receiver may be gone (nobody asked for lines).
                let _ = sender.send(line);
                bytes.clear();
            }
        });
        Pipe {
            text,
            lines,
            drain: Some(drain),
        }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// The next line (with its newline, if it had one), or `None` at the end
    /// of the stream or past `deadline`.
    pub fn next_line(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// Wait until the text contains `needle`, at most `within`: the text
    /// then, or (past the deadline) the text so far.
    pub fn wait_for(&self, needle: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (at most 5 s) for the drain thread to reach the end of the
    /// stream, so that [`Pipe::text`] is all the child wrote. A grandchild
    /// still holding the pipe open is not waited for.
    fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        if let Some(drain) = self.drain.take() {
            while !drain.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if drain.is_finished() {
                let _ = drain.join();
            }
        }
    }
}

/// A running program, killed when dropped; its stdout and stderr kept and,
/// when the test is failing, printed.
pub struct Process {
    name: String,
    child: Child,
    stdout: Pipe,
    stderr: Pipe,
}

impl Process {
    /// Start `command` (named `name` in messages) with its stdout and stderr
    /// captured and no stdin.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn spawn(name: &str, command: &mut Command) -> Process {
        let mut child = start(name, command, Stdio::null());
        Process {
            name: name.to_string(),
            stdout: Pipe::drain(child.stdout.take().unwrap()),
            stderr: Pipe::drain(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout.
    pub fn stdout(&self) -> &Pipe {
        &self.stdout
    }

    /// Its stderr.
    pub fn stderr(&self) -> &Pipe {
        &self.stderr
    }

    /// Fail the test with its output if it has exited.
    fn fail_if_exited(&mut self, waiting_for: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited ({status}) while the test waited for {waiting_for} \
                 (its output follows)",
                self.name
            );
        }
    }

    /// Its next line on stdout, waiting at most [`READY`].
    ///
    /// # Panics
    /// Past the deadline or at the end of its stdout (its output is then
    /// printed as it is dropped).
    pub fn stdout_line(&mut self) -> String {
        let deadline = Instant::now() + READY;
        match self.stdout.next_line(deadline) {
            Some(line) => line,
            None => {
                let waited = if Instant::now() >= deadline {
                    format!("no line on stdout within {READY:?}")
                } else {
                    "stdout ended".to_string()
                };
                self.fail_if_exited("a line on stdout");
                panic!("{}: {waited} (its output follows)", self.name);
            }
        }
    }

    /// Its next line on stderr, waiting at most [`READY`] (tcpdump says
    /// "listening on …" there).
    ///
    /// # Panics
    /// As [`Process::stdout_line`].
    pub fn stderr_line(&mut self) -> String {
        let deadline = Instant::now() + READY;
        match self.stderr.next_line(deadline) {
            Some(line) => line,
            None => {
                self.fail_if_exited("a line on stderr");
                panic!(
                    "{}: no line on stderr within {READY:?} (its output follows)",
                    self.name
                );
            }
        }
    }

    /// Wait at most [`READY`] until `addr` accepts a TCP connection.
    ///
    /// # Panics
    /// Past the deadline or when the program exits first.
    pub fn wait_for_port(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + READY;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            self.fail_if_exited(&format!("{addr} to accept"));
            assert!(
                Instant::now() < deadline,
                "{} never listened on {addr} within {READY:?} (its output follows)",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Send it the signal `name` (`TERM`, `INT`…).
    pub fn signal(&self, name: &str) {
        send_signal(self.child.id(), name);
    }

    /// Wait for it to exit, at most `within`.
    ///
    /// # Panics
    /// Past the deadline (it is killed as it is dropped).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let Some(status) = wait_at_most(&mut self.child, within) else {
            panic!(
                "{} did not exit within {within:?} (its output follows)",
                self.name
            );
        };
        self.stdout.finish();
        self.stderr.finish();
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            self.stdout.finish();
            self.stderr.finish();
            eprintln!(
                "---- {} stdout ----\n{}\n---- {} stderr ----\n{}",
                self.name,
                self.stdout.text(),
                self.name,
                self.stderr.text()
            );
        }
    }
}

/// Run `command` to completion with `input` on its stdin (then closed), at
/// most [`RUN`]; its status and output.
///
/// # Panics
/// When it cannot start, or past the deadline (after killing it), with its
/// stderr.
pub fn run(name: &str, command: &mut Command, input: &[u8]) -> Output {
    let mut child = start(name, command, Stdio::piped());
    let mut stdout = Pipe::drain(child.stdout.take().unwrap());
    let mut stderr = Pipe::drain(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    // A program that exits without reading its input is not an error here.
    let _ = stdin.write_all(input);
    drop(stdin);
    let Some(status) = wait_at_most(&mut child, RUN) else {
        let _ = child.kill();
        let _ = child.wait();
        stderr.finish();
        panic!(
            "{name} did not finish within {RUN:?}; its stderr:\n{}",
            stderr.text()
        );
    };
    stdout.finish();
    stderr.finish();
    Output {
        status,
        stdout: stdout.text().into_bytes(),
        stderr: stderr.text().into_bytes(),
    }
}

/// Send the process `pid` the signal `name` (`TERM`, `INT`…).
pub fn send_signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// Wait for `child` to exit, at most `within`: its status, or `None` (it is
/// then still running).
pub fn wait_at_most(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `command` with `stdin`, its stdout and stderr piped.
///
/// # Panics
/// When it cannot start.
fn start(name: &str, command: &mut Command, stdin: Stdio) -> Child {
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{name} cannot start: {error}"))
}

/// A scratch file or directory, removed when dropped (when the test fails
/// too), unless [`TempPath::keep`] was called.
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    /// `name`, made unique with the process id, in the system's temporary
    /// directory. Nothing is created.
    pub fn new(name: &str) -> TempPath {
        TempPath::at(std::env::temp_dir().join(format!("{}-{name}", std::process::id())))
    }

    /// `path` itself. Nothing is created.
    pub fn at(path: PathBuf) -> TempPath {
        TempPath { path, keep: false }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leave it in place when dropped.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Whichever it is; neither existing is fine.
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
