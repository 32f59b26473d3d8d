//! `upcase serve` as a process: its options and signals. Spawns the built binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Start `upcase serve` on a free port with `extra` options; the child and
/// the TCP address it printed.
fn serve(extra: &[&str]) -> (Child, String) {
    let (child, line) = serve_first_line(extra);
    let addr = line
        .trim_end()
        .strip_prefix("upcase listening on tcp ")
        .and_then(|rest| rest.split(", ").next())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
        .to_string();
    (child, addr)
}

/// Start `upcase serve` on a free port with `extra` options; the child and
/// the first line it printed.
fn serve_first_line(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args(["serve", "--listen", "127.0.0.1:0", "-q"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Wait for `child` at most [`TIMEOUT`]; kill it and fail past that.
fn wait_with_timeout(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`upcase serve` did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_sigterm_exits_at_once_with_128_plus_its_number() {
    let (mut child, addr) = serve(&["--linger", "15"]);
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    raw.write_all(b"x").unwrap();
    let mut reply = [0; 1];
    raw.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"X");

    signal(&child, "TERM");
    // Shutdown has begun once the server ends our raw stream; it then waits
    // up to the 15 s linger for us to close, which we do not.
    assert_eq!(raw.read(&mut reply).unwrap(), 0);
    signal(&child, "TERM");
    assert_eq!(
        wait_with_timeout(&mut child).code(),
        Some(143),
        "128 + SIGTERM (15)"
    );
}

#[test]
fn bad_sizes_are_refused_with_a_hint() {
    let output = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--memory-budget",
            "lots",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("256M"), "{stderr}");
}

#[test]
fn the_first_line_names_every_socket_listened_on() {
    let (mut child, line) = serve_first_line(&[]);
    child.kill().unwrap();
    child.wait().unwrap();
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

    let (mut child, line) = serve_first_line(&["--no-udp"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("upcase listening on tcp 127.0.0.1:") && !line.contains(", "),
        "TCP only with --no-udp: {line:?}"
    );
}
