//! The Python tutorial's server (tests/interop/tutorial_server.py) as a
//! child process on a free loopback port, its output kept for the test and
//! shown when it fails; and `upcase` run to its end with a deadline. Both
//! through `child.rs`.

#![allow(dead_code)] // each test file uses its own part of this

// A test that also loads serve_process.rs (report_schema.rs) gets a second
// copy of child.rs through it; each copy works on its own.
#[allow(clippy::duplicate_mod)]
#[path = "child.rs"]
mod child;

use std::net::SocketAddr;
use std::process::{Command, Output};

use child::{Process, READY};

/// `python3 tests/interop/tutorial_server.py 127.0.0.1 0 [--forever]`,
/// killed when dropped; its stderr (a crash's traceback) is kept and shown
/// when the test fails.
pub struct TutorialServer {
    process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl TutorialServer {
    /// Start it with `args` after HOST and PORT (`--forever`), once it says
    /// where it listens (at most [`READY`]).
    pub fn start(args: &[&str]) -> TutorialServer {
        let script = format!(
            "{}/../tests/interop/tutorial_server.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut process = Process::spawn(
            "the tutorial's server",
            Command::new("python3")
                .args([script.as_str(), "127.0.0.1", "0"])
                .args(args),
        );
        let line = process.stdout_line();
        let port: u16 = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        TutorialServer {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr().text()
    }

    /// Whether its stderr says `needle` within [`READY`] (the pipe is read
    /// by a thread of its own, which may lag behind).
    pub fn stderr_says(&self, needle: &str) -> bool {
        self.process.stderr().wait_for(needle, READY).is_ok()
    }
}

/// Run `upcase ARGS` with `stdin` (then closed), killed past
/// [`child::RUN`].
pub fn upcase(args: &[&str], stdin: &[u8]) -> Output {
    child::run(
        "upcase",
        Command::new(env!("CARGO_BIN_EXE_upcase")).args(args),
        stdin,
    )
}
