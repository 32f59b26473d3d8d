//! `upcase serve` behind a real HAProxy (Debian's `haproxy`), configured by
//! `contrib/haproxy/haproxy.cfg`, the file README.md shows: two instances,
//! round robin, PROXY protocol v2, health checks.
//!
//! Skipped, with the reason printed, when `haproxy` is not installed
//! (`.ci/run` installs it).

#[path = "support/serve_process.rs"]
mod serve_process;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use serve_process::child::{self, Process, TempPath};
use serve_process::{ServeProcess, free_port, tool_available};

/// The configuration the README documents.
fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/haproxy/haproxy.cfg")
}

/// `upcase serve` as HAProxy's configuration expects it behind a balancer.
/// (HAProxy balances TCP only, so UDP is off.)
const PROXIED: &[&str] = &[
    "--no-udp",
    "--proxy-protocol",
    "--trusted-proxy",
    "127.0.0.1",
];

/// The same without the PROXY protocol.
const PLAIN: &[&str] = &["--no-udp"];

/// Why this test cannot run here, if it cannot.
fn missing_haproxy() -> Option<String> {
    tool_available("haproxy", &["-v"]).err()
}

macro_rules! require_haproxy {
    () => {
        if let Some(reason) = missing_haproxy() {
            println!("skipped: {reason}; install Debian's haproxy (apt-get install haproxy)");
            return;
        }
    };
}

/// HAProxy in the foreground (`-db`: its log on stderr, printed if the test
/// fails), balancing a new loopback port over `servers`.
struct Haproxy {
    _process: Process,
    frontend: SocketAddr,
}

impl Haproxy {
    /// Once its frontend accepts connections (at most [`child::READY`]).
    fn start(config: &Path, servers: [SocketAddr; 2]) -> Haproxy {
        let frontend: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut process = Process::spawn(
            "haproxy",
            Command::new("haproxy")
                .args(["-db", "-f"])
                .arg(config)
                .env("UPCASE_FRONTEND", frontend.to_string())
                .env("UPCASE_SERVER_A", servers[0].to_string())
                .env("UPCASE_SERVER_B", servers[1].to_string()),
        );
        process.wait_for_port(frontend);
        Haproxy {
            _process: process,
            frontend,
        }
    }
}

/// `upcase conform ADDR --json`: its exit code and the outcome of each case.
fn conform(addr: SocketAddr) -> (Option<i32>, Vec<(String, String, String)>) {
    let json = TempPath::new(&format!("upcase-haproxy-conform-{}.json", addr.port()));
    let output = child::run(
        "upcase conform",
        Command::new(env!("CARGO_BIN_EXE_upcase"))
            .args(["conform", &addr.to_string(), "--json"])
            .arg(json.path()),
        b"",
    );
    // Shown with the test's failure, if it fails.
    eprintln!(
        "---- upcase conform {addr} ----\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(json.path())
        .unwrap_or_else(|error| panic!("conform wrote no JSON report ({error}): {output:?}"));
    let report: Value = serde_json::from_str(&text).unwrap();
    let results = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            (
                result["name"].as_str().unwrap().to_string(),
                result["outcome"]["status"].as_str().unwrap().to_string(),
                result["outcome"].to_string(),
            )
        })
        .collect();
    (output.status.code(), results)
}

fn outcome<'a>(results: &'a [(String, String, String)], name: &str) -> &'a str {
    results
        .iter()
        .find(|(case, ..)| case == name)
        .map(|(_, status, _)| status.as_str())
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn conform_passes_through_haproxy_with_the_proxy_protocol() {
    require_haproxy!();
    let a = ServeProcess::start(PROXIED);
    let b = ServeProcess::start(PROXIED);
    let haproxy = Haproxy::start(&config(), [a.tcp, b.tcp]);
    let (code, results) = conform(haproxy.frontend);
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, status, _)| status == "failed")
        .collect();
    assert!(failed.is_empty(), "failed through HAProxy: {failed:#?}");
    assert_eq!(code, Some(0));
    // The address cases ran and passed: replies named the client's address
    // and the address it connected to (HAProxy's), not HAProxy's own
    // connection to the server.
    for case in [
        "framed/5.5/unspecified-filled-in",
        "framed/5.5/one-side-unspecified",
    ] {
        assert_eq!(outcome(&results, case), "passed", "{case}");
    }
    // Both instances served: the balancer really balanced.
    for server in [&a, &b] {
        assert!(
            server
                .log()
                .contains(&format!("connected to {}", haproxy.frontend)),
            "an instance logged no proxied connection:\n{}",
            server.log()
        );
    }
}

#[test]
fn without_the_proxy_protocol_the_address_cases_fail() {
    require_haproxy!();
    // The same setup, but nobody speaks the PROXY protocol: HAProxy sends
    // no header and the servers expect none. Everything works except the
    // addresses, which name HAProxy's side of its connection to the server.
    let plain = TempPath::new("upcase-haproxy-plain.cfg");
    let text = std::fs::read_to_string(config()).unwrap();
    assert!(text.contains(" send-proxy-v2"));
    std::fs::write(plain.path(), text.replace(" send-proxy-v2", "")).unwrap();
    let a = ServeProcess::start(PLAIN);
    let b = ServeProcess::start(PLAIN);
    let haproxy = Haproxy::start(plain.path(), [a.tcp, b.tcp]);
    let (code, results) = conform(haproxy.frontend);
    assert_eq!(code, Some(1));
    let (_, _, why) = results
        .iter()
        .find(|(case, ..)| case == "framed/5.5/unspecified-filled-in")
        .unwrap();
    assert!(why.contains("misaddressed"), "{why}");
    assert_eq!(
        outcome(&results, "framed/5.5/one-side-unspecified"),
        "failed"
    );
    // What does not depend on the socket's addresses still passes.
    assert_eq!(outcome(&results, "framed/5.5/explicit-swapped"), "passed");
    let raw_passed = results
        .iter()
        .filter(|(case, status, _)| case.starts_with("raw/") && status == "passed")
        .count();
    assert!(raw_passed > 0, "{results:#?}");
}

/// A raw client: send `text`, close the sending side, read the answer.
/// The answer and the client's own address.
fn raw_round_trip(addr: SocketAddr, text: &str) -> std::io::Result<(String, SocketAddr)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(child::READY))?;
    stream.write_all(text.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok((reply, stream.local_addr()?))
}

#[test]
fn a_stopped_instance_loses_no_new_connection() {
    require_haproxy!();
    let mut a = ServeProcess::start(PROXIED);
    // -v: a line per message, which names its client and is not throttled
    // (connect lines are: README, "Logs").
    let b = ServeProcess::start(&[PROXIED, &["-v"]].concat());
    let haproxy = Haproxy::start(&config(), [a.tcp, b.tcp]);
    let mut client_addrs = Vec::new();
    for round in 0..40 {
        if round == 10 {
            // Mid-run: A shuts down gracefully and its port closes.
            assert!(a.terminate().success());
        }
        let (reply, client) = raw_round_trip(haproxy.frontend, &format!("round {round}\n"))
            .unwrap_or_else(|error| panic!("connection {round} lost: {error}"));
        assert_eq!(reply, format!("ROUND {round}\n"), "connection {round}");
        client_addrs.push(client);
    }
    // Every connection after the stop was answered (above) by B, which
    // logged each one with the client's own address (from the PROXY header).
    let message = |round: usize| {
        let addr = client_addrs[round];
        format!("{addr}: from connected user: round {round}")
    };
    let log = b
        .wait_for_log(&message(39))
        .unwrap_or_else(|log| panic!("B never logged the last client:\n{log}"));
    for round in 10..40 {
        assert!(log.contains(&message(round)), "round {round}: {log}");
    }
    assert!(
        log.contains(&format!("connected to {}", haproxy.frontend)),
        "B took no address from a PROXY header: {log}"
    );
}

#[test]
fn the_readme_shows_the_configuration_these_tests_run() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let config = std::fs::read_to_string(config()).unwrap();
    assert!(
        readme.contains(&format!("```haproxy\n{config}```")),
        "README.md's \"Running behind a load balancer\" must show contrib/haproxy/haproxy.cfg as it is"
    );
}
