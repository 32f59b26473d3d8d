//! What a load test measured, for people and as JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::Config;
use super::tally::{ClientEnd, Tally};
use super::workload::{PayloadType, RequestMode};
use crate::provenance::Provenance;

/// The JSON report's format (IMPLEMENTING.md, "Reports for machines").
pub const SCHEMA: &str = "upcase-bench-report";

/// Its version: raised when a field is removed, renamed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The result of a load test.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Which format, tool and protocol this is (in JSON, the first fields).
    #[serde(flatten)]
    pub head: Provenance,
    /// The server, as the user named it.
    pub target: String,
    /// TCP connections or UDP datagrams.
    pub transport: BenchTransport,
    /// Raw or framed.
    pub mode: RequestMode,
    /// Text or bytes.
    #[serde(rename = "type")]
    pub payload_type: PayloadType,
    /// Payload bytes per request (the line, or the frame's data).
    pub size: usize,
    /// Connections asked for.
    pub clients: usize,
    /// Connections established.
    pub connected: usize,
    /// Event-loop threads that drove them.
    pub threads: usize,
    /// Seconds from the start until every client was connected (or had
    /// failed to).
    pub connect_s: f64,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Seconds from the moment every client was connected until the last
    /// one finished.
    pub elapsed_s: f64,
    /// Replies received, right or wrong.
    pub requests: u64,
    /// Replies per second.
    pub requests_per_s: f64,
    /// Request payload bytes per second, in MB (10^6 bytes): each byte also
    /// comes back upper-cased, so the wire carries about twice this.
    pub mb_per_s: f64,
    /// Reply latency from the first byte written to the last byte read, µs.
    pub latency_us: Latency,
    /// Replies that differ from the oracle's answer: some of `requests`,
    /// never more.
    pub wrong_replies: u64,
    /// UDP: requests without a reply within the reply timeout (0 for TCP).
    pub lost: u64,
    /// UDP: `lost` as a percentage of the requests sent.
    pub loss_percent: f64,
    /// UDP: the loss above which the run fails (`None` for TCP).
    pub max_loss_percent: Option<f64>,
    /// UDP: replies that came after their request was answered or counted
    /// as lost (not timed, not in `requests`).
    pub late_replies: u64,
    /// Connections that failed to connect or ended early (I/O error, timeout,
    /// server closed).
    pub failed_connections: usize,
    /// Distinct error messages (first wrong reply of each connection,
    /// connection errors) with how many connections saw each.
    pub errors: Vec<ErrorCount>,
    /// The run was stopped by Ctrl-C: these are the counts until then.
    pub interrupted: bool,
    /// No wrong reply, no failed connection, at least one reply, and (UDP)
    /// no more loss than allowed.
    pub ok: bool,
}

/// How requests reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchTransport {
    /// One TCP connection per client.
    Tcp,
    /// One UDP socket per client, one datagram per request.
    Udp,
}

/// Latency quantiles in microseconds (about 1 % precision).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Slowest reply.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// One error message and how many connections reported it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    /// What went wrong.
    pub message: String,
    /// Connections that saw it.
    pub count: usize,
}

impl BenchReport {
    /// Sum up the clients' tallies and ends.
    pub(super) fn new(
        config: &Config,
        tally: &Tally,
        ends: &[ClientEnd],
        elapsed: Duration,
        connect_elapsed: Duration,
        threads: usize,
    ) -> BenchReport {
        let mut errors = BTreeMap::<String, usize>::new();
        for end in ends {
            for message in end.first_wrong.iter().chain(&end.error) {
                *errors.entry(message.clone()).or_default() += 1;
            }
        }
        let latencies = &tally.latencies;
        let (requests, wrong_replies, lost) = (tally.replies, tally.wrong, tally.lost);
        let loss_percent = if lost == 0 {
            0.0
        } else {
            100.0 * lost as f64 / (requests + lost) as f64
        };
        let max_loss_percent = config.udp.map(|options| options.max_loss_percent);
        let loss_ok = max_loss_percent.is_none_or(|max| loss_percent <= max);
        let failed_connections = ends.iter().filter(|end| end.error.is_some()).count();
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let size = config.workload.payload.len();
        let us = |ns: u64| ns as f64 / 1000.0;
        let mut errors: Vec<ErrorCount> = errors
            .into_iter()
            .map(|(message, count)| ErrorCount { message, count })
            .collect();
        errors.sort_by_key(|error| std::cmp::Reverse(error.count));
        BenchReport {
            head: Provenance::new(SCHEMA, SCHEMA_VERSION),
            target: config.target.clone(),
            transport: if config.udp.is_some() {
                BenchTransport::Udp
            } else {
                BenchTransport::Tcp
            },
            mode: config.workload.mode,
            payload_type: match config.workload.frame_type {
                upcase::wire::FrameType::Bytes => PayloadType::Bytes,
                _ => PayloadType::Text,
            },
            size,
            clients: config.clients,
            connected: ends.iter().filter(|end| end.connected).count(),
            threads,
            connect_s: connect_elapsed.as_secs_f64(),
            pipeline: config.pipeline,
            elapsed_s: seconds,
            requests,
            requests_per_s: requests as f64 / seconds,
            mb_per_s: (requests as f64 * size as f64) / seconds / 1e6,
            latency_us: Latency {
                p50: us(latencies.quantile(0.50)),
                p90: us(latencies.quantile(0.90)),
                p99: us(latencies.quantile(0.99)),
                p99_9: us(latencies.quantile(0.999)),
                max: us(latencies.max()),
                mean: latencies.mean() / 1000.0,
            },
            wrong_replies,
            lost,
            loss_percent,
            max_loss_percent,
            late_replies: tally.late,
            failed_connections,
            errors,
            interrupted: config.stop.load(std::sync::atomic::Ordering::Relaxed),
            ok: wrong_replies == 0 && failed_connections == 0 && requests > 0 && loss_ok,
        }
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            RequestMode::Raw => "raw",
            RequestMode::Framed => "framed",
        };
        let kind = match self.payload_type {
            PayloadType::Text => "text",
            PayloadType::Bytes => "bytes",
        };
        let transport = match self.transport {
            BenchTransport::Tcp => "",
            BenchTransport::Udp => "udp ",
        };
        writeln!(
            f,
            "{}{} — {mode} {kind}, {} bytes, {} clients ({} connected in {:.2} s, {} threads), pipeline {}",
            transport,
            self.target,
            self.size,
            self.clients,
            self.connected,
            self.connect_s,
            self.threads,
            self.pipeline
        )?;
        writeln!(
            f,
            "  {} replies in {:.2} s: {:.0} requests/s, {:.2} MB/s{}",
            self.requests,
            self.elapsed_s,
            self.requests_per_s,
            self.mb_per_s,
            if self.interrupted {
                " (interrupted by Ctrl-C: the counts so far)"
            } else {
                ""
            }
        )?;
        let l = &self.latency_us;
        writeln!(
            f,
            "  latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (mean {:.1})",
            l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        )?;
        if let Some(max) = self.max_loss_percent {
            writeln!(
                f,
                "  lost: {} requests ({:.3} %, at most {max} % allowed), {} late replies",
                self.lost, self.loss_percent, self.late_replies
            )?;
        }
        if self.ok {
            writeln!(f, "  every reply matched the oracle")?;
        } else {
            writeln!(
                f,
                "  FAILED: {} of them wrong, {} failed connections{}{}",
                self.wrong_replies,
                self.failed_connections,
                match self.max_loss_percent {
                    Some(max) if self.loss_percent > max => {
                        format!(", {:.3} % lost (over --max-loss {max})", self.loss_percent)
                    }
                    _ => String::new(),
                },
                if self.requests == 0 {
                    ", no reply at all"
                } else {
                    ""
                }
            )?;
            for error in self.errors.iter().take(5) {
                writeln!(f, "    {} × {}", error.count, error.message)?;
            }
        }
        Ok(())
    }
}
