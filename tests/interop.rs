//! Interoperability with the Python tutorial's server and client
//! (tests/interop/*.py), run with `python3` as subprocesses.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use upcase::conn::{ServerConfig, ServerMode};
use upcase::net::Server;

const TIMEOUT: Duration = Duration::from_secs(20);

fn script(name: &str) -> String {
    format!("{}/../tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Run `command` with `input` on its standard input (closed after it) and
/// its output captured, waiting at most [`TIMEOUT`].
fn run_with_input(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    wait_with_timeout(child)
}

/// Wait for `child` at most [`TIMEOUT`]; kill it and fail past that.
fn wait_with_timeout(mut child: Child) -> Output {
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("subprocess did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Output {
        status: child.wait().unwrap(),
        stdout: read_all(child.stdout.take()),
        stderr: read_all(child.stderr.take()),
    }
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    pipe.unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

fn python_available() -> bool {
    Command::new("python3").arg("--version").output().is_ok()
}

#[test]
fn the_tutorial_client_talks_to_our_server_in_raw_mode() {
    assert!(python_available(), "these tests need python3");
    let config = ServerConfig {
        mode: ServerMode::Raw,
        ..ServerConfig::default()
    };
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .config(config)
        .bind()
        .unwrap();
    let port = server.local_addrs()[0].port().to_string();
    let handle = server.spawn().unwrap();
    let output = run_with_input(
        Command::new("python3").args([script("tutorial_client.py"), "127.0.0.1".into(), port]),
        "hello\nstraße\nexit\nnever sent\n".as_bytes(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO\nSTRASSE\n"
    );
    assert!(handle.wait(Some(TIMEOUT)));
    handle.shutdown();
}

#[test]
fn our_raw_client_talks_to_the_tutorial_server() {
    assert!(python_available(), "these tests need python3");
    let mut server = Command::new("python3")
        .args([script("tutorial_server.py"), "127.0.0.1".into(), "0".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut server_out = BufReader::new(server.stdout.take().unwrap());
    server_out.read_line(&mut first).unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    let output = run_with_input(
        Command::new(env!("CARGO_BIN_EXE_upcase")).args([
            "client",
            "--raw",
            "--timeout",
            "10",
            &format!("127.0.0.1:{port}"),
        ]),
        b"hello tutorial\nsecond line\nexit\n",
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO TUTORIAL\nSECOND LINE\n"
    );
    server.stdout = Some(server_out.into_inner());
    let server_output = wait_with_timeout(server);
    assert!(server_output.status.success(), "{server_output:?}");
}
