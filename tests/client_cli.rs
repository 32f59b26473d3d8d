//! The `upcase` command: `serve`'s startup line and signals, `client` over a pipe
//! and its errors. Spawns the built binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

fn upcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upcase"))
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
            panic!("`upcase` did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `upcase client ARGS` with `input` on stdin: (status, stdout, stderr).
/// Output is read while the client runs, so a reply longer than a pipe's
/// buffer cannot stall it.
fn run_client(args: &[&str], input: &[u8]) -> (ExitStatus, String, String) {
    let mut child = upcase()
        .arg("client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    // The client may exit (on an error) before reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    let status = wait_with_timeout(&mut child);
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

/// A running `upcase serve` on a free port, and the address it printed.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = upcase()
            .args(["serve", "--listen", "127.0.0.1:0", "-q"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let sockets = line
            .trim_end()
            .strip_prefix("upcase listening on ")
            .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
        let addr = sockets
            .split(", ")
            .find_map(|socket| socket.strip_prefix("tcp "))
            .unwrap()
            .to_string();
        assert!(!addr.ends_with(":0"), "the real port is printed: {line}");
        Serve { child, addr }
    }

    fn terminate(mut self) -> ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        wait_with_timeout(&mut self.child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_prints_its_real_address_and_client_upcases_piped_lines() {
    let serve = Serve::start(&[]);
    let input = "hi\nstraße\n\nexit\nnot sent\n".as_bytes();
    let (status, stdout, stderr) = run_client(&[&serve.addr], input);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "HI\nSTRASSE\n\n");

    let (status, stdout, stderr) = run_client(&["--bytes", &serve.addr], b"caf\xc3\xa9 ok\n");
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "CAFé OK\n");

    let (status, stdout, stderr) = run_client(&["--raw", &serve.addr], b"raw line\n");
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "RAW LINE\n");

    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn client_pipelines_many_lines_in_order() {
    let serve = Serve::start(&[]);
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let (status, stdout, stderr) = run_client(&[&serve.addr], input.as_bytes());
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, input.to_uppercase());
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn client_to_a_closed_port_fails_and_says_how_to_start_a_server() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (status, stdout, stderr) = run_client(&[&format!("127.0.0.1:{port}")], b"hi\n");
    assert!(!status.success());
    assert!(stdout.is_empty());
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(stderr.contains("upcase serve"), "{stderr}");
}

#[test]
fn client_reports_a_server_error_by_name() {
    let serve = Serve::start(&["--max-frame", "4"]);
    let (status, stdout, stderr) = run_client(&[&serve.addr], b"ok\ntoo long\n");
    assert!(!status.success());
    assert_eq!(stdout, "OK\n");
    assert!(stderr.contains("FRAME_TOO_LARGE"), "{stderr}");
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn serve_exits_zero_on_sigterm_with_a_client_connected() {
    let serve = Serve::start(&["--linger", "1"]);
    let mut idle = std::net::TcpStream::connect(&serve.addr).unwrap();
    idle.set_read_timeout(Some(TIMEOUT)).unwrap();
    idle.write_all(b"x").unwrap();
    let mut reply = [0; 1];
    idle.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"X");
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn serve_answers_udp_on_the_same_port_and_client_udp_uses_it() {
    let serve = Serve::start(&[]);
    let (status, stdout, stderr) = run_client(&["--udp", &serve.addr], "straße\nhi\n".as_bytes());
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "STRASSE\nHI\n");
    let (status, stdout, stderr) = run_client(&["--udp", "--raw", &serve.addr], b"raw\n");
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "RAW\n");
}

#[test]
fn client_udp_without_an_answer_fails_and_says_why() {
    let serve = Serve::start(&["--no-udp"]);
    let (status, _, stderr) = run_client(&["--udp", "--timeout", "0.3", &serve.addr], b"hi\n");
    assert!(!status.success());
    assert!(stderr.contains("no reply datagram"), "{stderr}");
    assert!(
        stderr.contains("--no-udp"),
        "says how a server may have UDP off: {stderr}"
    );
}

/// An in-process server (the library's, default settings) on a free port.
fn library_server() -> (upcase::net::ServerHandle, String) {
    let server = upcase::net::Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap();
    let addr = server.local_addrs()[0].to_string();
    (server.spawn().unwrap(), addr)
}

/// SPEC.md §3.4: a client MUST accept a TEXT reply of up to 3 × (N + 3).
/// 800 KB of ΐ (2 bytes each) upper-case to 2.4 MB, over the default
/// 1 MiB receive limit.
#[test]
fn client_accepts_a_reply_three_times_its_line() {
    let (handle, addr) = library_server();
    let line = "ΐ".repeat(400_000);
    let input = format!("{line}\n");
    let (status, stdout, stderr) = run_client(&[&addr], input.as_bytes());
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.len(), 3 * line.len() + 1);
    assert!(
        stdout == format!("{}\n", line.to_uppercase()),
        "wrong upper case"
    );
    handle.shutdown();
}

/// A line longer than the server's 1 MiB frame limit goes as MORE
/// fragments instead of getting FRAME_TOO_LARGE.
#[test]
fn client_sends_a_line_over_the_frame_limit_as_fragments() {
    let (handle, addr) = library_server();
    // 14 bytes, code points of every UTF-8 length.
    let line: String = "abcdé€𝔞 ".repeat(2_000_000 / 14 + 1);
    assert!(line.len() > 2_000_000);
    let input = format!("{line}\nafter\n");
    let (status, stdout, stderr) = run_client(&[&addr], input.as_bytes());
    assert!(status.success(), "{stderr}");
    assert!(
        stdout == format!("{}\nAFTER\n", line.to_uppercase()),
        "wrong reply of {} bytes",
        stdout.len()
    );
    let (status, stdout, stderr) = run_client(&["--bytes", &addr], input.as_bytes());
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.as_bytes() == format!("{line}\nafter\n").to_ascii_uppercase().as_bytes(),
        "wrong BYTES reply"
    );
    handle.shutdown();
}

/// SPEC.md §2.4 (checklist C3): the probe PING comes back from a raw
/// server, so the client fails instead of printing the echo as a reply.
#[test]
fn client_takes_no_raw_servers_echo_for_a_framed_reply() {
    let serve = Serve::start(&["--mode", "raw"]);
    let (status, stdout, stderr) = run_client(&[&serve.addr], b"hello\n");
    assert!(!status.success(), "{stdout}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("raw server"), "{stderr}");
    assert!(stderr.contains("--raw"), "{stderr}");
    assert_eq!(serve.terminate().code(), Some(0));
}

/// SPEC.md §3.4: `--max-frame N` fragments lines for a server whose limit is N.
#[test]
fn client_max_frame_fragments_lines_for_a_server_with_a_small_limit() {
    let serve = Serve::start(&["--max-frame", "4"]);
    let (status, stdout, stderr) = run_client(
        &["--max-frame", "4", &serve.addr],
        "too long, straße\n".as_bytes(),
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "TOO LONG, STRASSE\n");
    assert_eq!(serve.terminate().code(), Some(0));
}
