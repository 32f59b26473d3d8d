//! The exposition's text and the endpoint's answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::*;
use upcase::conn::{ServerConfig, ServerConnection};
use upcase::net::{ConnectionMeter, GaugeSource, ServerGauges};
use upcase::wire::{ErrorCode, FrameRepr, FrameType, PREFACE};

/// Gauges as a running server would report them.
#[derive(Debug)]
struct FixedGauges;

impl GaugeSource for FixedGauges {
    fn gauges(&self) -> ServerGauges {
        ServerGauges {
            memory_budget_used: 10,
            memory_budget: 1000,
            pending_output: 7,
            udp_received: 3,
            udp_sent: 2,
            udp_dropped: 1,
            udp_rate_limited: 4,
        }
    }
}

/// Counters after one framed connection sent TEXT and PING and got answers
/// (not yet sent), and one BUSY.
fn some_metrics() -> Arc<ServerMetrics> {
    let metrics = Arc::new(ServerMetrics::new(2));
    let shard = metrics.claim_shard().unwrap();
    let addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let mut conn = ServerConnection::new(ServerConfig::default(), addr, addr, Instant::now());
    let mut meter = ConnectionMeter::accepted(&shard, false);
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Text, &b"abc"[..]).to_bytes());
    input.extend_from_slice(&FrameRepr::new(FrameType::Ping, &b""[..]).to_bytes());
    meter.read_at(Instant::now());
    conn.handle_input(Instant::now(), &input).unwrap();
    meter.report(&conn);
    meter.error_sent(ErrorCode::BUSY);
    metrics.attach(Arc::new(FixedGauges));
    metrics
}

fn line_value(text: &str, series: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .to_string()
}

#[test]
fn every_series_is_named_typed_and_labelled() {
    let text = render(&some_metrics());
    for (series, value) in [
        ("upcase_connections_accepted_total", "1"),
        ("upcase_connections_open{mode=\"framed\"}", "1"),
        ("upcase_connections_open{mode=\"undetected\"}", "0"),
        ("upcase_connections_closed_total{mode=\"raw\"}", "0"),
        ("upcase_connections_refused_total{mode=\"framed\"}", "0"),
        ("upcase_connections_evicted_total{mode=\"raw\"}", "0"),
        ("upcase_frames_received_total{type=\"TEXT\"}", "1"),
        ("upcase_frames_received_total{type=\"PING\"}", "1"),
        ("upcase_frames_received_total{type=\"UNKNOWN\"}", "0"),
        ("upcase_frames_sent_total{type=\"PONG\"}", "1"),
        ("upcase_errors_sent_total{code=\"BUSY\"}", "1"),
        ("upcase_errors_sent_total{code=\"other\"}", "0"),
        ("upcase_udp_datagrams_total{event=\"received\"}", "3"),
        ("upcase_udp_datagrams_total{event=\"sent\"}", "2"),
        ("upcase_udp_datagrams_total{event=\"dropped\"}", "1"),
        ("upcase_udp_datagrams_total{event=\"rate_limited\"}", "4"),
        ("upcase_proxy_headers_total{outcome=\"untrusted\"}", "0"),
        ("upcase_memory_budget_bytes", "1000"),
        ("upcase_memory_budget_used_bytes", "10"),
        ("upcase_pending_output_bytes", "7"),
        ("upcase_sent_bytes_total", "0"),
        ("upcase_reply_delay_seconds_count", "2"),
        ("upcase_reply_delay_seconds_bucket{le=\"+Inf\"}", "2"),
    ] {
        assert_eq!(line_value(&text, series), value, "{series}");
    }
    let bytes_in: u64 = line_value(&text, "upcase_received_bytes_total")
        .parse()
        .unwrap();
    assert!(bytes_in > 8, "{bytes_in}");
    for (family, kind) in [
        ("upcase_connections_accepted_total", "counter"),
        ("upcase_connections_open", "gauge"),
        ("upcase_memory_budget_used_bytes", "gauge"),
        ("upcase_reply_delay_seconds", "histogram"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind} in\n{text}"
        );
    }
}

#[test]
fn histogram_buckets_are_cumulative() {
    let text = render(&some_metrics());
    let buckets: Vec<u64> = text
        .lines()
        .filter(|line| line.starts_with("upcase_reply_delay_seconds_bucket"))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), REPLY_DELAY_BUCKETS_MICROS.len() + 1);
    assert!(
        buckets.windows(2).all(|pair| pair[0] <= pair[1]),
        "{buckets:?}"
    );
    assert_eq!(*buckets.last().unwrap(), 2);
}

fn get(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_endpoint_serves_metrics_at_one_path_only() {
    let endpoint = MetricsEndpoint::start("127.0.0.1:0".parse().unwrap(), some_metrics()).unwrap();
    let addr = endpoint.local_addr();
    assert_ne!(addr.port(), 0);
    let answer = get(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("text/plain; version=0.0.4"), "{answer}");
    assert!(
        answer.contains("upcase_connections_accepted_total 1"),
        "{answer}"
    );
    let answer = get(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let answer = get(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    drop(endpoint);
    // The drop joined the endpoint's thread, which closed the listener.
    assert!(
        TcpStream::connect(addr).is_err(),
        "the endpoint still accepts after it was dropped"
    );
}
