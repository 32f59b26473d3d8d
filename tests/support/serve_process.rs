//! `upcase serve` as a child process on a free loopback port: its TCP
//! address (and metrics address) parsed from what it prints, and its log
//! kept for the test to read.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `upcase serve`.
pub struct ServeProcess {
    child: Child,
    /// The TCP address it listens on.
    pub tcp: SocketAddr,
    /// Where it serves `/metrics`, when started with `--metrics`.
    pub metrics: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl ServeProcess {
    /// `upcase serve --listen 127.0.0.1:0` plus `args`.
    pub fn start(args: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("upcase serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let tcp = line
            .trim_end()
            .strip_prefix("upcase listening on tcp ")
            .and_then(|rest| rest.split(", ").next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let metrics = args.contains(&"--metrics").then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim_end()
                .strip_prefix("upcase metrics on http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"))
                .parse()
                .unwrap()
        });
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        ServeProcess {
            child,
            tcp,
            metrics,
            log,
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait (at most 5 s) until its log contains `needle`; the log then.
    pub fn wait_for_log(&self, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return Ok(log);
            }
            if Instant::now() > deadline {
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM (a graceful shutdown), then wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
