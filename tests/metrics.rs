//! `upcase serve --metrics`: the scrape checked by Debian's `promtool`, and
//! a real Prometheus scraping the server and answering a query about it.
//!
//! Each of those is skipped, with the reason printed, when its tool is not
//! installed (`.ci/run` installs the `prometheus` package, which has both).
//! The others attack the endpoint of a child `upcase serve` the way issue
//! 17 did and check that the process, its UPCASE port and its later
//! scrapes are unharmed. Every program a test starts keeps its stderr,
//! and a failing test prints it.

#[path = "support/serve_process.rs"]
mod serve_process;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_process::child::{Process, TempPath};
use serve_process::{ServeProcess, free_port, tool_available};
use upcase::net::Client;
use upcase::wire::{FrameRepr, FrameType};

/// How long a test waits for a program to be ready or to answer: generous
/// for a loaded 2-core machine, and never waited in full when all is well.
const PATIENCE: Duration = serve_process::child::READY;

macro_rules! require {
    ($tool:literal, $($arg:literal),*) => {
        if let Err(reason) = tool_available($tool, &[$($arg),*]) {
            println!("skipped: {reason}; install Debian's prometheus package (apt-get install prometheus)");
            return;
        }
    };
}

/// `GET path` over HTTP/1.0; the status line and the body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// The value of the series named exactly `series` in a scrape.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{scrape}"))
        .parse()
        .unwrap()
}

/// Traffic of every kind the metrics count: three TEXT round trips and a
/// PING on one framed connection, an unknown frame type (a non-fatal
/// ERROR), a raw connection, and a UDP datagram.
fn traffic(server: &ServeProcess) {
    let mut client = Client::connect(server.tcp, PATIENCE).unwrap();
    for text in ["one", "two", "three"] {
        assert_eq!(client.upcase(text).unwrap(), text.to_uppercase());
    }
    client.ping(b"p").unwrap();
    client
        .send(FrameRepr::new(FrameType::Unknown(0x42), &b"?"[..]))
        .unwrap();
    assert!(client.receive().is_err(), "an unknown type is an ERROR");
    client.bye().unwrap();

    let mut raw = TcpStream::connect(server.tcp).unwrap();
    raw.write_all(b"raw\n").unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "RAW\n");

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(PATIENCE)).unwrap();
    udp.send_to(b"datagram", server.tcp).unwrap();
    let mut buffer = [0; 64];
    let (len, _) = udp.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"DATAGRAM");
}

/// Scrape until each series reaches its value (the server counts a
/// closed connection, or a UDP reply sent, a moment after the client has
/// seen it happen).
fn scrape_until(addr: SocketAddr, wanted: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = http_get(addr, "/metrics");
        assert!(status.contains(" 200 "), "{status}");
        let reached = wanted
            .iter()
            .all(|&(series, at_least)| sample(&body, series) >= at_least);
        if reached || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_scrape_counts_the_traffic_and_promtool_accepts_it() {
    require!("promtool", "--version");
    let server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = server.metrics.unwrap();
    traffic(&server);
    let scrape = scrape_until(
        metrics,
        &[
            ("upcase_connections_closed_total{mode=\"framed\"}", 1.0),
            ("upcase_connections_closed_total{mode=\"raw\"}", 1.0),
            ("upcase_udp_datagrams_total{event=\"sent\"}", 1.0),
        ],
    );

    for (series, expected) in [
        ("upcase_connections_accepted_total", 2.0),
        ("upcase_connections_closed_total{mode=\"framed\"}", 1.0),
        ("upcase_connections_closed_total{mode=\"raw\"}", 1.0),
        ("upcase_connections_open{mode=\"framed\"}", 0.0),
        ("upcase_frames_received_total{type=\"TEXT\"}", 3.0),
        ("upcase_frames_received_total{type=\"PING\"}", 1.0),
        ("upcase_frames_received_total{type=\"UNKNOWN\"}", 1.0),
        ("upcase_frames_received_total{type=\"BYE\"}", 1.0),
        ("upcase_frames_sent_total{type=\"TEXT\"}", 3.0),
        ("upcase_frames_sent_total{type=\"PONG\"}", 1.0),
        ("upcase_frames_sent_total{type=\"ERROR\"}", 1.0),
        ("upcase_errors_sent_total{code=\"UNKNOWN_TYPE\"}", 1.0),
        ("upcase_udp_datagrams_total{event=\"received\"}", 1.0),
        ("upcase_udp_datagrams_total{event=\"sent\"}", 1.0),
        ("upcase_reply_delay_seconds_count", 6.0),
        ("upcase_pending_output_bytes", 0.0),
    ] {
        assert_eq!(sample(&scrape, series), expected, "{series} in\n{scrape}");
    }
    assert!(sample(&scrape, "upcase_received_bytes_total") > 0.0);
    assert!(sample(&scrape, "upcase_sent_bytes_total") > 0.0);

    let output = serve_process::child::run(
        "promtool",
        Command::new("promtool").args(["check", "metrics"]),
        scrape.as_bytes(),
    );
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\nscrape:\n{scrape}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn other_paths_are_not_found_and_metrics_are_off_by_default() {
    let server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    let (status, _) = http_get(server.metrics.unwrap(), "/");
    assert!(status.contains(" 404 "), "{status}");
    let plain = ServeProcess::start(&[]);
    assert!(plain.metrics.is_none());
    assert!(
        !plain.log().contains("metrics"),
        "nothing said about metrics: {}",
        plain.log()
    );
}

/// A Prometheus server in its own temporary directory, on loopback: its
/// output kept and printed when a test fails, the directory removed however
/// the test ends.
struct Prometheus {
    /// Held, not read: dropping it kills Prometheus (declared first, so
    /// before its directory is removed).
    _process: Process,
    api: SocketAddr,
    _dir: TempPath,
}

impl Prometheus {
    /// Start it scraping `target` every second, once its API listens (at
    /// most [`PATIENCE`]).
    fn start(target: SocketAddr) -> Prometheus {
        let dir = TempPath::new(&format!("upcase-prometheus-{}", target.port()));
        std::fs::create_dir_all(dir.path()).unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: upcase\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut process = Process::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={api}")),
        );
        process.wait_for_port(api);
        Prometheus {
            _process: process,
            api,
            _dir: dir,
        }
    }

    /// The value of instant query `query`, once it has one.
    fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (byte as char).to_string(),
                _ => format!("%{byte:02X}"),
            })
            .collect();
        let (status, body) = http_get(self.api, &format!("/api/v1/query?query={encoded}"));
        if !status.contains(" 200 ") {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }
}

#[test]
fn a_real_prometheus_scrapes_the_server_and_answers_a_query() {
    require!("prometheus", "--version");
    let server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    traffic(&server);
    let prometheus = Prometheus::start(server.metrics.unwrap());
    let query = "sum(upcase_frames_received_total{job=\"upcase\",type=\"TEXT\"})";
    let deadline = Instant::now() + PATIENCE;
    let mut last = None;
    while Instant::now() < deadline {
        last = prometheus.query(query);
        if last == Some(3.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(last, Some(3.0), "Prometheus's answer to {query}");
    let up = prometheus.query("up{job=\"upcase\"}");
    assert_eq!(up, Some(1.0), "the target is up");
}

#[test]
fn the_readme_lists_every_series_the_server_serves() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    let (_, scrape) = http_get(server.metrics.unwrap(), "/metrics");
    let families: Vec<&str> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    assert!(families.len() >= 15, "{scrape}");
    for family in families {
        assert!(
            readme.contains(&format!("| `{family}` |")),
            "README.md's \"Metrics\" table does not list {family}"
        );
    }
}

#[test]
fn datagrams_over_the_source_rate_are_counted_as_rate_limited() {
    let server = ServeProcess::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--udp-rate",
        "1",
        "--udp-burst",
        "2",
    ]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..10 {
        udp.send_to(b"datagram", server.tcp).unwrap();
    }
    // The burst of 2 is answered; most of the rest is dropped unread.
    let deadline = Instant::now() + PATIENCE;
    let (limited, sent, scrape) = loop {
        let (_, scrape) = http_get(server.metrics.unwrap(), "/metrics");
        let limited = sample(
            &scrape,
            "upcase_udp_datagrams_total{event=\"rate_limited\"}",
        );
        let sent = sample(&scrape, "upcase_udp_datagrams_total{event=\"sent\"}");
        if limited + sent >= 10.0 || Instant::now() > deadline {
            break (limited, sent, scrape);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(limited >= 7.0, "{scrape}");
    assert_eq!(limited + sent, 10.0, "{scrape}");
}

/// Send `request` to the metrics endpoint on a fresh connection; all it
/// answers before closing (a reset after the answer, when the endpoint
/// closed with bytes of ours unread, ends it too).
fn answer_to(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // The endpoint may close before it takes all of a long request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    // What was read before a reset stays in `answer`.
    if let Err(error) = stream.read_to_end(&mut answer)
        && error.kind() != ErrorKind::ConnectionReset
    {
        panic!("no answer and no close from the endpoint: {error}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The process is alive, its UPCASE port serves, and a scrape is answered.
fn assert_unharmed(server: &mut ServeProcess) {
    assert_eq!(server.try_wait(), None, "upcase serve exited");
    let mut client = Client::connect(server.tcp, PATIENCE).unwrap();
    assert_eq!(client.upcase("still here").unwrap(), "STILL HERE");
    let (status, body) = http_get(server.metrics.unwrap(), "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        body.contains("upcase_connections_accepted_total "),
        "{body}"
    );
}

#[test]
fn a_huge_content_length_neither_kills_the_process_nor_stops_the_scrapes() {
    // tiny_http allocated the announced body to discard it: 1 TiB aborted
    // the process and 2^64-1 killed the metrics thread (issue 17).
    let mut server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    for length in ["1099511627776", "18446744073709551615"] {
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nthe start of a body"
        );
        let answer = answer_to(server.metrics.unwrap(), request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert_unharmed(&mut server);
    }
}

#[test]
fn a_head_over_8_kib_is_refused_and_the_server_is_unharmed() {
    let mut server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while request.len() < 1 << 20 {
        request.extend_from_slice(b"X-A: b\r\n");
    }
    let answer = answer_to(server.metrics.unwrap(), &request);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_unharmed(&mut server);
}

#[test]
fn one_sigterm_ends_the_server_while_metrics_peers_keep_stalling() {
    let mut server = ServeProcess::start(&["--metrics", "127.0.0.1:0"]);
    let metrics = server.metrics.unwrap();
    // A new half-sent request every 20 ms, each held open: whenever the
    // signal comes, some are younger than the endpoint's 5 s deadline,
    // so a server that waited for its metrics peers would never exit.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut stream) = TcpStream::connect(metrics) {
                    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
                    held.push(stream);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // One more whose announced body never comes.
    let mut waiting = TcpStream::connect(metrics).unwrap();
    waiting
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_unharmed(&mut server);

    let signalled = Instant::now();
    // At most child::READY, else the test fails with the server's log.
    let status = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(status.success(), "{status} after {:?}", signalled.elapsed());
    assert!(!server.log().contains("second signal"), "{}", server.log());
}

#[test]
fn the_metrics_listener_accepts_again_after_the_process_ran_out_of_descriptors() {
    require!("prlimit", "--version");
    let mut server = ServeProcess::start(&["--metrics", "127.0.0.1:0", "--threads", "1"]);
    let metrics = server.metrics.unwrap();
    // Leave the process room for only a few more descriptors.
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.id()))
        .unwrap()
        .count();
    set_descriptor_limit(&server, open + 4);
    let peers: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(metrics).unwrap();
            stream.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !server.log().contains("metrics: accept failed") {
        assert!(Instant::now() < deadline, "accept never failed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log().contains("pausing accepts"), "{}", server.log());
    // The peers leave and the limit is back: scrapes are answered again.
    drop(peers);
    set_descriptor_limit(&server, hard_descriptor_limit(&server));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = answer_to(metrics, b"GET /metrics HTTP/1.1\r\n\r\n");
        if answer.starts_with("HTTP/1.1 200 OK\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "no scrape answered: {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_unharmed(&mut server);
}

/// The server's hard descriptor limit, from /proc.
fn hard_descriptor_limit(server: &ServeProcess) -> usize {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

/// Set the soft descriptor limit of the running server (its hard limit,
/// which it raised the soft one to, stays).
fn set_descriptor_limit(server: &ServeProcess, soft: usize) {
    let output = Command::new("prlimit")
        .arg(format!("--pid={}", server.id()))
        .arg(format!("--nofile={soft}:"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
