//! The Python tutorial's server (tests/interop/tutorial_server.py) as a
//! child process on a free loopback port, its stderr kept for the test;
//! and `upcase` run to its end with a deadline.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the tutorial's server may take to say it listens, and the
/// commands to finish, on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `python3 tests/interop/tutorial_server.py 127.0.0.1 0 [--forever]`,
/// killed when dropped; its stderr (a crash's traceback) is kept and shown
/// when the test fails.
pub struct TutorialServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl TutorialServer {
    /// Start it with `args` after HOST and PORT (`--forever`).
    pub fn start(args: &[&str]) -> TutorialServer {
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

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether its stderr says `needle` within [`DEADLINE`] (the pipe is
    /// read by a thread of its own, which may lag behind).
    pub fn stderr_says(&self, needle: &str) -> bool {
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
pub fn upcase(args: &[&str], stdin: &[u8]) -> Output {
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
