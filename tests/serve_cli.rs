//! `upcase serve` as a process: its options and signals. Spawns the built binary.

#[path = "support/serve_process.rs"]
mod serve_process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serve_process::child::{self, Process, READY};
use serve_process::listening_tcp;
use upcase::wire::{FrameRepr, FrameType, PREFACE};

use serve_process::ServeProcess;

/// How long the server may take to exit once a signal should end it.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Start `upcase serve` on a free port with `extra` options; the process
/// and the TCP address it printed.
fn serve(extra: &[&str]) -> (Process, String) {
    let (process, line) = serve_first_line(extra);
    let addr = listening_tcp(&line)
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .to_string();
    (process, addr)
}

/// Start `upcase serve` on a free port with `extra` options; the process
/// and the first line it printed (within [`child::READY`]).
fn serve_first_line(extra: &[&str]) -> (Process, String) {
    serve_at(&[&["--listen", "127.0.0.1:0"], extra].concat())
}

/// Start `upcase serve -q` with `args` (which say where to listen); the
/// process and the first line it printed (within [`child::READY`]).
fn serve_at(args: &[&str]) -> (Process, String) {
    let mut process = Process::spawn(
        "upcase serve",
        Command::new(env!("CARGO_BIN_EXE_upcase"))
            .args(["serve", "-q"])
            .args(args),
    );
    let line = process.stdout_line();
    (process, line)
}

#[test]
fn a_second_sigterm_exits_at_once_with_128_plus_its_number() {
    let (mut server, addr) = serve(&["--linger", "15"]);
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.set_read_timeout(Some(child::READY)).unwrap();
    raw.write_all(b"x").unwrap();
    let mut reply = [0; 1];
    raw.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"X");

    server.signal("TERM");
    // Shutdown has begun once the server ends our raw stream; it then waits
    // up to the 15 s linger for us to close, which we do not.
    assert_eq!(raw.read(&mut reply).unwrap(), 0);
    server.signal("TERM");
    assert_eq!(server.wait(TIMEOUT).code(), Some(143), "128 + SIGTERM (15)");
}

/// Run `upcase serve` with `args`, which it must refuse; what it said.
fn refusal(args: &[&str]) -> String {
    let output = child::run(
        "upcase serve",
        Command::new(env!("CARGO_BIN_EXE_upcase"))
            .arg("serve")
            .args(args),
        b"",
    );
    assert!(!output.status.success(), "{args:?} accepted: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_sizes_are_refused_with_a_hint() {
    let stderr = refusal(&["--listen", "127.0.0.1:0", "--memory-budget", "lots"]);
    assert!(stderr.contains("256M"), "{stderr}");
}

#[test]
fn the_first_line_names_every_socket_listened_on() {
    let (_server, line) = serve_first_line(&[]);
    let sockets = line
        .trim_end()
        .strip_prefix("upcase listening on ")
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    let (tcp, udp) = sockets
        .split_once(", ")
        .unwrap_or_else(|| panic!("TCP and UDP expected: {line:?}"));
    let port = tcp
        .strip_prefix("tcp 127.0.0.1:")
        .unwrap_or_else(|| panic!("TCP first: {line:?}"));
    assert_ne!(port, "0", "the real port, not the one asked for");
    assert_eq!(udp, format!("udp 127.0.0.1:{port}"), "UDP on the same port");

    let (_server, line) = serve_first_line(&["--no-udp"]);
    assert!(
        line.starts_with("upcase listening on tcp 127.0.0.1:") && !line.contains(", "),
        "TCP only with --no-udp: {line:?}"
    );
}

#[test]
fn port_is_shorthand_for_listening_on_127_0_0_1() {
    let (_server, line) = serve_at(&["--port", "0", "--no-udp"]);
    let addr = listening_tcp(&line).unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    assert!(addr.starts_with("127.0.0.1:"), "{line:?}");
    TcpStream::connect(addr).expect("it listens where it says");
}

#[test]
fn port_and_listen_together_are_refused() {
    let stderr = refusal(&["--port", "0", "--listen", "127.0.0.1:0"]);
    assert!(
        stderr.contains("--port") && stderr.contains("--listen"),
        "{stderr}"
    );
}

#[test]
fn listen_takes_a_host_name() {
    let (_server, line) = serve_at(&["--listen", "localhost:0", "--no-udp"]);
    let sockets = line
        .trim_end()
        .strip_prefix("upcase listening on ")
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    // localhost names 127.0.0.1, ::1 or both; each is listened on.
    for socket in sockets.split(", ") {
        let addr: std::net::SocketAddr = socket
            .strip_prefix("tcp ")
            .unwrap_or_else(|| panic!("TCP only: {line:?}"))
            .parse()
            .unwrap();
        assert!(addr.ip().is_loopback(), "{line:?}");
        TcpStream::connect(addr).expect("it listens where it says");
    }
}

#[test]
fn listen_without_a_port_says_to_add_one() {
    let stderr = refusal(&["--listen", "localhost"]);
    assert!(stderr.contains("localhost:9999"), "{stderr}");
}

/// `upcase serve -v --log-queue 4K --metrics …` whose stderr is a pipe the
/// test does not read until it says so. Killed on drop; a failure shows
/// what it had logged.
struct StarvedServe {
    child: Child,
    tcp: SocketAddr,
    metrics: SocketAddr,
    stderr: Option<ChildStderr>,
}

impl StarvedServe {
    fn start() -> StarvedServe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics",
                "127.0.0.1:0",
            ])
            .args(["--no-udp", "-v", "--log-queue", "4K"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (lines, first_two) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().take(2) {
                let _ = lines.send(line.unwrap_or_default());
            }
        });
        let mut server = StarvedServe {
            child,
            tcp: "127.0.0.1:0".parse().unwrap(),
            metrics: "127.0.0.1:0".parse().unwrap(),
            stderr: None,
        };
        server.stderr = server.child.stderr.take();
        let next_line = |prefix: &str| {
            let line = first_two.recv_timeout(READY).unwrap_or_default();
            line.strip_prefix(prefix)
                .and_then(|rest| rest.split([',', '/']).next())
                .and_then(|addr| addr.parse().ok())
        };
        match next_line("upcase listening on tcp ") {
            Some(tcp) => server.tcp = tcp,
            None => server.fail("no listening line"),
        }
        match next_line("upcase metrics on http://") {
            Some(metrics) => server.metrics = metrics,
            None => server.fail("no metrics line"),
        }
        server
    }

    /// `upcase_log_lines_dropped_total` now.
    fn dropped(&mut self) -> u64 {
        let scrape = (|| {
            let mut stream = TcpStream::connect(self.metrics).ok()?;
            stream.set_read_timeout(Some(TIMEOUT)).ok()?;
            write!(stream, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).ok()?;
            answer
                .lines()
                .find_map(|line| line.strip_prefix("upcase_log_lines_dropped_total "))?
                .parse()
                .ok()
        })();
        scrape.unwrap_or_else(|| self.fail("no upcase_log_lines_dropped_total scraped"))
    }

    /// Start reading stderr into the returned buffer.
    fn read_stderr(&mut self) -> Arc<Mutex<String>> {
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = self.stderr.take() {
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buffer = [0; 4096];
                while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                    let text = String::from_utf8_lossy(&buffer[..read]);
                    sink.lock().unwrap().push_str(&text);
                }
            });
        }
        log
    }

    /// Kill it and panic with `why` and the end of what it logged.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        panic!("{why}; the server's log ended with:\n{}", tail(&log));
    }
}

impl Drop for StarvedServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last 4,000 bytes or so of `log`, cut at a character boundary.
/// (`str::floor_char_boundary` does this from Rust 1.91; rust-version is
/// 1.88.)
fn tail(log: &str) -> &str {
    let from = log.len().saturating_sub(4000);
    let start = (from..=log.len())
        .find(|&at| log.is_char_boundary(at))
        .unwrap_or(log.len());
    &log[start..]
}

/// One framed connection pipelining TEXT frames (each logged with `-v`)
/// and unknown-type frames (each a protocol error) until told to stop,
/// reading every reply on a thread of its own.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut replies = stream.try_clone()?;
    std::thread::spawn(move || std::io::copy(&mut replies, &mut std::io::sink()));
    let mut batch = PREFACE.to_vec();
    stream.write_all(&batch)?;
    batch.clear();
    for _ in 0..100 {
        let text = FrameRepr::new(FrameType::Text, &b"a message logged with -v"[..]);
        batch.extend_from_slice(&text.to_bytes());
        let unknown = FrameRepr::new(FrameType::Unknown(0x7f), &b""[..]);
        batch.extend_from_slice(&unknown.to_bytes());
    }
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&batch)?;
    }
    stream.shutdown(Shutdown::Both)
}

/// A fresh raw connection's round trip: whether it was answered right.
fn served(addr: SocketAddr) -> bool {
    let round_trip = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.write_all(b"served?\n")?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    round_trip().is_ok_and(|reply| reply == "SERVED?\n")
}

#[test]
fn a_stderr_nobody_reads_costs_log_lines_not_service() {
    let mut server = StarvedServe::start();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (addr, stop) = (server.tcp, Arc::clone(&stop));
        std::thread::spawn(move || flood(addr, stop))
    };
    // The pipe fills (64 KiB on Linux), then the 4 KiB queue: lines drop.
    let deadline = Instant::now() + READY;
    while server.dropped() == 0 {
        if Instant::now() > deadline {
            server.fail("no log line dropped while the flood ran");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh = 5;
    let answered = (0..fresh).filter(|_| served(server.tcp)).count();
    if answered != fresh {
        server.fail(&format!("{answered} of {fresh} new clients served"));
    }
    stop.store(true, Ordering::Relaxed);
    if let Ok(Err(error)) = flooder.join() {
        server.fail(&format!("the flood failed: {error}"));
    }
    // Once stderr is read again, the exit says how many lines were lost.
    let log = server.read_stderr();
    child::send_signal(server.child.id(), "TERM");
    let status = child::wait_at_most(&mut server.child, TIMEOUT)
        .unwrap_or_else(|| server.fail(&format!("no exit within {TIMEOUT:?} of SIGTERM")));
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "{status}; log:\n{log}");
    assert!(
        log.contains("log lines were dropped: stderr did not take them"),
        "no exit summary of dropped lines in:\n{}",
        tail(&log)
    );
}

/// Protocol errors of the kind `what` the log accounts for: lines written,
/// and those it says it suppressed (in a line's note or a line of their own).
fn accounted(log: &str, what: &str) -> (u64, u64) {
    let (mut written, mut suppressed) = (0, 0);
    for line in log.lines() {
        let Some((_, after)) = line.split_once(what) else {
            continue;
        };
        // A line of its own: "<what>: N more like this suppressed".
        let alone = after
            .strip_prefix(": ")
            .and_then(|rest| rest.strip_suffix(" more like this suppressed"));
        if let Some(count) = alone.and_then(|count| count.parse::<u64>().ok()) {
            suppressed += count;
            continue;
        }
        written += 1;
        // A written line's note: "… (N more like this suppressed)".
        let note = line
            .strip_suffix(" more like this suppressed)")
            .and_then(|head| head.rsplit_once(" ("));
        suppressed += note.map_or(0, |(_, count)| count.parse::<u64>().unwrap_or(0));
    }
    (written, suppressed)
}

#[test]
fn a_flood_of_unknown_frames_writes_a_few_lines_and_counts_the_rest() {
    let server = ServeProcess::start(&["--no-udp"]);
    let frames = 500;
    let mut flood = PREFACE.to_vec();
    for _ in 0..frames {
        let unknown = FrameRepr::new(FrameType::Unknown(0x7f), &b""[..]);
        flood.extend_from_slice(&unknown.to_bytes());
    }
    let mut stream = TcpStream::connect(server.tcp).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(&flood).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let _ = stream.read_to_end(&mut Vec::new());
    // The connection is gone, and the server idle: the last count still
    // comes, in a line of its own, once its second is over.
    let what = "protocol error UNKNOWN_TYPE (5)";
    let deadline = Instant::now() + READY;
    let (written, suppressed) = loop {
        let (written, suppressed) = accounted(&server.log(), what);
        if written + suppressed >= frames || Instant::now() > deadline {
            break (written, suppressed);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = server.log();
    assert_eq!(
        written + suppressed,
        frames,
        "every frame accounted for in:\n{log}"
    );
    assert!(
        (1..=10).contains(&written),
        "{written} lines written: 5 a second, a flood of milliseconds may straddle two:\n{log}"
    );
}
