//! A load generator for any UPCASE/1 server (`upcase bench`), event-driven
//! like wrk: a few threads, each driving many connections on one `mio` poll.
//!
//! ```text
//!   event-loop thread ×T ──requests of its clients──▶ server
//!     (clients i ≡ t mod T)  ◀──replies───
//!        └─ time each reply, compare it with the oracle's answer
//!   merge tallies ─▶ BenchReport (requests/s, MB/s, latency quantiles, errors)
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

mod budget;
mod check;
mod connection;
mod datagram;
mod event_loop;
mod histogram;
mod progress;
mod reply;
mod report;
mod tally;
mod udp;
mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

pub use histogram::Histogram;
pub use report::{BenchReport, BenchTransport, ErrorCount, Latency};
pub use workload::{Expect, PayloadType, RequestMode, Workload};

use budget::Settings;
use connection::TcpClient;
use datagram::Datagrams;
use event_loop::{StartGate, ThreadResult, drive};
use tally::{ClientEnd, Live, Tally};
use udp::UdpClient;

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
    /// Concurrent connections (UDP: sockets).
    pub clients: usize,
    /// Event-loop threads the clients are shared among.
    pub threads: usize,
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
    /// Set it (from a Ctrl-C handler) to stop the run at once: the report
    /// then holds what was measured so far ([`BenchReport::interrupted`]).
    pub stop: Arc<AtomicBool>,
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
/// A message when the workload does not fit a datagram (UDP) or the
/// event-loop threads cannot be started.
pub fn run(config: &Config) -> Result<BenchReport, String> {
    let datagrams = match config.udp {
        Some(_) => Some(Datagrams::new(&config.workload)?),
        None => None,
    };
    let settings = Settings {
        pipeline: config.pipeline,
        timeout: config
            .udp
            .map_or(config.timeout, |options| options.reply_timeout),
        duration: match config.limit {
            Limit::Duration(duration) => Some(duration),
            Limit::Requests(_) => None,
        },
    };
    let threads = config.threads.clamp(1, config.clients.max(1));
    // Client i runs on thread i mod T, so every thread gets its share.
    let assigned: Vec<Vec<usize>> = (0..threads)
        .map(|thread_index| (thread_index..config.clients).step_by(threads).collect())
        .collect();
    let live = Arc::new(Live {
        stop: config.stop.clone(),
        ..Live::default()
    });
    let gate = Arc::new(StartGate::default());
    let workload = Arc::new(config.workload.clone());
    let connecting = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    for (thread_index, clients) in assigned.iter().enumerate() {
        let requests: Vec<u64> = clients
            .iter()
            .map(|&client| requests_of(config, client))
            .collect();
        let (live, thread_gate, workload) = (live.clone(), gate.clone(), workload.clone());
        let (addr, datagrams) = (config.addr, datagrams.clone());
        let spawned = thread::Builder::new()
            .name(format!("bench-{thread_index}"))
            .spawn(move || match datagrams {
                Some(datagrams) => {
                    let clients = requests
                        .into_iter()
                        .map(|requests| {
                            (
                                UdpClient::open(addr, datagrams.clone(), &settings),
                                requests,
                            )
                        })
                        .collect();
                    drive(clients, settings, &workload, &thread_gate, &live)
                }
                None => {
                    let clients = requests
                        .into_iter()
                        .map(|requests| {
                            let client = TcpClient::connect(
                                addr,
                                &workload,
                                settings.pipeline,
                                settings.timeout,
                            );
                            (client, requests)
                        })
                        .collect();
                    drive(clients, settings, &workload, &thread_gate, &live)
                }
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                // Release the threads already waiting, without running.
                gate.open(false);
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(format!(
                    "cannot start event-loop thread {thread_index}: {error} (try fewer --threads)"
                ));
            }
        }
    }
    gate.wait_for(threads);
    gate.open(true);
    let connect_elapsed = connecting.elapsed();
    let started = Instant::now();
    progress::show(config, &handles, &live, started);
    let mut tally = Tally::default();
    let mut ends = vec![ClientEnd::default(); config.clients];
    for (handle, clients) in handles.into_iter().zip(&assigned) {
        let result = handle.join().unwrap_or_else(|_| ThreadResult {
            tally: Tally::default(),
            ends: vec![
                ClientEnd {
                    error: Some("its event-loop thread panicked".into()),
                    ..ClientEnd::default()
                };
                clients.len()
            ],
        });
        tally.merge(&result.tally);
        for (&client, end) in clients.iter().zip(result.ends) {
            ends[client] = end;
        }
    }
    let elapsed = started.elapsed();
    Ok(BenchReport::new(
        config,
        &tally,
        &ends,
        elapsed,
        connect_elapsed,
        threads,
    ))
}

/// Client `client`'s share of the requests (all it can issue when the run
/// is timed).
fn requests_of(config: &Config, client: usize) -> u64 {
    match config.limit {
        Limit::Duration(_) => u64::MAX,
        Limit::Requests(total) => share(total, config.clients, client),
    }
}

/// Client `index`'s share of `total` requests.
fn share(total: u64, clients: usize, index: usize) -> u64 {
    let clients = clients as u64;
    total / clients + u64::from((index as u64) < total % clients)
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
