//! Interoperability with the Python tutorial's server and client
//! (tests/interop/*.py), run with `python3` as subprocesses.

#[path = "support/child.rs"]
mod child;

use std::process::Command;

use child::Process;
use upcase::conn::{ServerConfig, ServerMode};
use upcase::net::Server;

fn script(name: &str) -> String {
    format!("{}/../tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
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
    let output = child::run(
        "the tutorial client",
        Command::new("python3").args([script("tutorial_client.py"), "127.0.0.1".into(), port]),
        "hello\nstraße\nexit\nnever sent\n".as_bytes(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO\nSTRASSE\n"
    );
    assert!(handle.wait(Some(child::READY)));
    handle.shutdown();
}

#[test]
fn our_raw_client_talks_to_the_tutorial_server() {
    assert!(python_available(), "these tests need python3");
    let mut server = Process::spawn(
        "the tutorial server",
        Command::new("python3").args([
            script("tutorial_server.py"),
            "127.0.0.1".into(),
            "0".into(),
        ]),
    );
    let first = server.stdout_line();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    let output = child::run(
        "upcase client",
        Command::new(env!("CARGO_BIN_EXE_upcase")).args([
            "client",
            "--raw",
            "--timeout",
            "60",
            &format!("127.0.0.1:{port}"),
        ]),
        b"hello tutorial\nsecond line\nexit\n",
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "HELLO TUTORIAL\nSECOND LINE\n"
    );
    let status = server.wait(child::READY);
    assert!(
        status.success(),
        "the tutorial server: {status}; its stderr:\n{}",
        server.stderr().text()
    );
}
