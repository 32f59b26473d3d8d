//! `upcase serve` as a child process on a free loopback port: its TCP
//! address (and metrics address) parsed from what it prints, and its log
//! kept for the test to read and printed when the test fails.

#![allow(dead_code)] // each test file uses its own part of this

#[path = "child.rs"]
pub mod child;

use std::net::SocketAddr;
use std::process::{Command, ExitStatus};

use child::{Process, READY};

/// A running `upcase serve`.
pub struct ServeProcess {
    process: Process,
    /// The TCP address it listens on.
    pub tcp: SocketAddr,
    /// Where it serves `/metrics`, when started with `--metrics`.
    pub metrics: Option<SocketAddr>,
}

impl ServeProcess {
    /// `upcase serve --listen 127.0.0.1:0` plus `args`, once it has printed
    /// where it listens (at most [`READY`]).
    pub fn start(args: &[&str]) -> ServeProcess {
        let mut process = Process::spawn(
            "upcase serve",
            Command::new(env!("CARGO_BIN_EXE_upcase"))
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(args),
        );
        let line = process.stdout_line();
        let tcp = listening_tcp(&line)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let metrics = args.contains(&"--metrics").then(|| {
            let line = process.stdout_line();
            line.trim_end()
                .strip_prefix("upcase metrics on http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"))
                .parse()
                .unwrap()
        });
        ServeProcess {
            process,
            tcp,
            metrics,
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.process.stderr().text()
    }

    /// Wait (at most [`READY`]) until its log contains `needle`; the log
    /// then, or the log so far.
    pub fn wait_for_log(&self, needle: &str) -> Result<String, String> {
        self.process.stderr().wait_for(needle, READY)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.process.try_wait()
    }

    /// SIGTERM (a graceful shutdown), then wait (at most [`READY`]) for the
    /// exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process.signal("TERM");
        self.process.wait(READY)
    }
}

/// The TCP address in `upcase serve`'s first line (`upcase listening on tcp
/// ADDR, udp ADDR`), as text.
pub fn listening_tcp(line: &str) -> Option<&str> {
    line.trim_end()
        .strip_prefix("upcase listening on tcp ")
        .and_then(|rest| rest.split(", ").next())
}

/// Whether `tool --version`-like `args` run; the reason to skip when not.
pub fn tool_available(tool: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(tool).args(args).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(error) => Err(format!("`{tool}` cannot run ({error})")),
    }
}

/// A loopback port nobody listens on now (it could be taken before it is
/// used, which the caller would see as a bind error).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
