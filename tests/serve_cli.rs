//! `upcase serve` as a process: its options and signals. Spawns the built binary.

#[path = "support/serve_process.rs"]
mod serve_process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serve_process::child::{self, Process};
use serve_process::listening_tcp;

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
