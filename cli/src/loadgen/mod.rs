//! A load generator for any UPCASE/1 server (`upcase bench`).
//!
//! ```text
//!   client thread ×N ──request──▶ server
//!        ▲  │         ◀──reply───
//!        │  └─ time it, compare with the oracle's answer
//!   merge histograms ─▶ Report (requests/s, MB/s, latency quantiles, errors)
//! ```
//!
//! Every client connects first; the clock starts when all have. Each client
//! then repeats one request (built by [`Workload`]) with up to `pipeline` in
//! flight, until the duration is over or its share of the requests is done,
//! and waits for the replies still in flight.
//!
//! Over UDP ([`Config::udp`]) each client is a socket sending one datagram
//! per request, numbered so that replies can be matched; a request without
//! a reply in time is lost, which is counted apart from wrong replies.

mod check;
mod connection;
mod datagram;
mod histogram;
mod report;
mod udp;
mod workload;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

pub use histogram::Histogram;
pub use report::{ErrorCount, Latency, Report, Transport};
pub use workload::{Expect, PayloadType, WireMode, Workload};

use connection::{Live, Outcome, STACK_SIZE, Settings, StartGate};
use datagram::Datagrams;

/// When the run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Issue requests for this long (then collect the replies in flight).
    Duration(Duration),
    /// Issue this many requests in all, shared among the clients.
    Requests(u64),
}

/// A load test.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub addr: SocketAddr,
    /// How it is addressed in the report (as the user wrote it).
    pub target: String,
    /// Concurrent connections.
    pub clients: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// When to stop.
    pub limit: Limit,
    /// The request and its expected reply.
    pub workload: Workload,
    /// Connect and reply timeout (TCP).
    pub timeout: Duration,
    /// Send datagrams instead of using TCP connections.
    pub udp: Option<UdpOptions>,
    /// Print a `\r`-updated progress line on stderr once a second (only
    /// when stderr is a terminal and the run lasts over 2 s).
    pub progress: bool,
}

/// How a UDP load test treats missing replies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpOptions {
    /// How long a request waits for its reply before it counts as lost.
    pub reply_timeout: Duration,
    /// The run fails when more than this percentage of requests is lost.
    pub max_loss_percent: f64,
}

/// Run the load test and report what was measured.
///
/// # Errors
/// A message when the workload does not fit a datagram (UDP) or the client
/// threads cannot be started.
pub fn run(config: &Config) -> Result<Report, String> {
    let live = Arc::new(Live::default());
    let start = Arc::new(StartGate::default());
    let workload = Arc::new(config.workload.clone());
    let datagrams = match config.udp {
        Some(_) => Some(Datagrams::new(&config.workload)?),
        None => None,
    };
    let mut handles = Vec::with_capacity(config.clients);
    for client in 0..config.clients {
        let settings = Settings {
            pipeline: config.pipeline,
            timeout: config
                .udp
                .map_or(config.timeout, |options| options.reply_timeout),
            duration: match config.limit {
                Limit::Duration(duration) => Some(duration),
                Limit::Requests(_) => None,
            },
            requests: match config.limit {
                Limit::Duration(_) => u64::MAX,
                Limit::Requests(total) => share(total, config.clients, client),
            },
        };
        let (live, gate, workload) = (live.clone(), start.clone(), workload.clone());
        let datagrams = datagrams.clone();
        let addr = config.addr;
        let handle = thread::Builder::new()
            .name(format!("client-{client}"))
            .stack_size(STACK_SIZE)
            .spawn(move || match datagrams {
                Some(datagrams) => udp::run(addr, datagrams, settings, &gate, &live),
                None => connection::run(addr, &workload, settings, &gate, &live),
            });
        match handle {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                start.open();
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(format!(
                    "cannot start client thread {client}: {error} \
                     (try fewer --clients, or raise `ulimit -u`)"
                ));
            }
        }
    }
    start.wait_for(config.clients);
    start.open();
    let started = Instant::now();
    show_progress(config, &handles, &live, started);
    let outcomes: Vec<Outcome> = handles
        .into_iter()
        .map(|handle| {
            handle.join().unwrap_or_else(|_| Outcome {
                error: Some("a client thread panicked".into()),
                ..Outcome::default()
            })
        })
        .collect();
    let elapsed = started.elapsed();
    Ok(Report::new(config, &outcomes, elapsed))
}

/// Client `index`'s share of `total` requests.
fn share(total: u64, clients: usize, index: usize) -> u64 {
    let clients = clients as u64;
    total / clients + u64::from((index as u64) < total % clients)
}

/// Update a progress line once a second until every client is done.
fn show_progress(
    config: &Config,
    handles: &[thread::JoinHandle<Outcome>],
    live: &Live,
    started: Instant,
) {
    let long_run = match config.limit {
        Limit::Duration(duration) => duration > Duration::from_secs(2),
        Limit::Requests(_) => true,
    };
    if !(config.progress && long_run && std::io::stderr().is_terminal()) {
        return;
    }
    let mut shown = false;
    let mut next = started + Duration::from_secs(1);
    while handles.iter().any(|handle| !handle.is_finished()) {
        thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now < next {
            continue;
        }
        next += Duration::from_secs(1);
        let elapsed = now - started;
        if elapsed < Duration::from_secs(2) && matches!(config.limit, Limit::Requests(_)) {
            continue;
        }
        let replies = live.replies.load(Ordering::Relaxed);
        let wrong = live.wrong.load(Ordering::Relaxed);
        let _ = write!(
            std::io::stderr(),
            "\r{:>5.0} s  {replies} replies  {:.0} req/s  {wrong} wrong   ",
            elapsed.as_secs_f64(),
            replies as f64 / elapsed.as_secs_f64()
        );
        shown = true;
    }
    if shown {
        let _ = write!(std::io::stderr(), "\r{:60}\r", "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_shared_out_exactly() {
        let shares: Vec<u64> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!((0..7).map(|i| share(5, 7, i)).sum::<u64>(), 5);
    }
}
